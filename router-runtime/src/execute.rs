//! Executing a call: facts → snapshot → decision → attempts.
//!
//! Why this order: the engine is pure, so everything time-varying (health,
//! latency, budget remaining, providers left out) is read into one
//! snapshot before it decides; after that, each attempt re-checks what may
//! have changed since (another call's 429, a breaker that opened) and the
//! budget store has the last word.
//!
//! Per attempt: reserve its estimate (the workload's budget, and the
//! call's scope budget if any) → admit through the health book → dispatch
//! under `min(attempt timeout, time left before the deadline)` → record
//! health, latency and metrics → on success run the escalate check and
//! commit actual usage; on failure release, retry the same target where
//! the plan allows (jittered backoff, paid from the retry budget) or let
//! the plan's triggers decide whether to advance. Reserving before
//! admitting means a budget refusal never takes a half-open probe slot.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use providers::{
    ChatRequest, ChatResponse, ErrorClass, EventStream, Provider, ProviderError, StreamEvent, TimeoutKind,
};
use router_core::{Attempt, DataClass, Decision, Policy, QualityCheck, TargetId, Usd, WorkloadId, decide};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;
use tracing::Instrument;

use crate::attempt::{Next, backoff, clause_for, may_retry, next_after, outcome_of, placed, skip_clause};
use crate::budget::error::ReserveError;
use crate::clock::Millis;
use crate::decisions::{DecisionId, DecisionRecord};
use crate::error::{
    AttemptError, AttemptRecord, BudgetError, DeadlineExceededError, FallbackExhaustedError, NotSent, NotSentError,
    QualityCheckError, RefusedError, RouteError, TimedOutError, UpstreamRejectedError,
};
use crate::facts::{MergedMetadata, facts_of};
use crate::idempotency::Leader;
use crate::quality::{check_local, check_name, evaluator_passed, evaluator_request};
use crate::reserve::{Held, release, spend_of};
use crate::router::{Call, Completed, Inner, Routed};
use crate::stream::{Live, RoutedStream};
use router_state::Spend;
use router_state::{AttemptOutcome, HealthChange};

/// Evaluator calls may themselves be escalated and evaluated, this deep.
const MAX_EVALUATOR_DEPTH: u8 = 2;

/// Whether the caller wants the whole answer or a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Complete,
    Stream,
}

/// What a successful execution produced.
pub(crate) enum Answer {
    /// The whole answer; its spend is committed.
    Whole(ChatResponse),
    /// A stream whose first event has arrived; it holds the reservation
    /// and the provider's concurrency permit, if it has a limit.
    Stream {
        first: StreamEvent,
        rest: EventStream,
        held: Held,
        idle: Duration,
        permit: Option<OwnedSemaphorePermit>,
    },
}

pub(crate) struct Executed {
    pub(crate) answer: Answer,
    pub(crate) target: TargetId,
    pub(crate) attempts: u32,
    pub(crate) decision: DecisionId,
    pub(crate) input_tokens: u64,
}

/// One call's execution state.
struct Run<'a> {
    inner: &'a Arc<Inner>,
    call: &'a Call,
    wid: WorkloadId,
    workload: &'a str,
    scope: Option<WorkloadId>,
    mode: Mode,
    depth: u8,
    decision: DecisionId,
    seed: u64,
    data: DataClass,
    deadline: Option<(Instant, Duration)>,
    records: Vec<AttemptRecord>,
    dispatched: u32,
}

enum Got {
    Whole(ChatResponse),
    Stream(StreamEvent, EventStream),
}

/// A failed dispatch, classified.
struct Failure {
    class: ErrorClass,
    error: AttemptError,
    by_deadline: bool,
}

impl Inner {
    pub(crate) async fn complete_fresh(
        self: &Arc<Self>,
        call: &Call,
        wid: WorkloadId,
        depth: u8,
    ) -> Result<Completed, RouteError> {
        let done = self.execute(call, wid, Mode::Complete, depth).await?;
        match done.answer {
            Answer::Whole(response) => Ok(Completed {
                response,
                target: self.registry.label(done.target).to_owned(),
                attempts: done.attempts,
                decision: done.decision,
            }),
            // `Mode::Complete` never dispatches a stream; were it to, the
            // answer is not whole, so the call did not succeed.
            Answer::Stream { .. } => Err(RouteError::FallbackExhausted(FallbackExhaustedError {
                workload: self.policy.workload(wid).name.clone(),
                decision: done.decision,
                attempts: Vec::new(),
            })),
        }
    }

    pub(crate) async fn stream_fresh(
        self: &Arc<Self>,
        call: &Call,
        wid: WorkloadId,
        leader: Option<Leader<Arc<Completed>, RouteError>>,
    ) -> Result<Routed<RoutedStream>, RouteError> {
        let done = match self.execute(call, wid, Mode::Stream, 0).await {
            Ok(done) => done,
            Err(e) => {
                if let Some(leader) = leader {
                    leader.finish(Err(e.clone()));
                }
                return Err(e);
            }
        };
        let target = self.registry.label(done.target).to_owned();
        let value = match done.answer {
            Answer::Whole(response) => {
                let stream = RoutedStream::replay(&response);
                if let Some(leader) = leader {
                    leader.finish(Ok(Arc::new(Completed {
                        response,
                        target: target.clone(),
                        attempts: done.attempts,
                        decision: done.decision,
                    })));
                }
                stream
            }
            Answer::Stream {
                first,
                rest,
                held,
                idle,
                permit,
            } => RoutedStream::live(Live {
                inner: Arc::clone(self),
                workload: self.policy.workload(wid).name.clone(),
                target: done.target,
                label: target.clone(),
                decision: done.decision,
                attempts: done.attempts,
                input_tokens: done.input_tokens,
                first,
                rest,
                held,
                idle,
                leader,
                permit,
            }),
        };
        Ok(Routed {
            value,
            target,
            attempts: done.attempts,
            policy_hash: self.policy.hash(),
            decision_id: done.decision,
            served: crate::idempotency::Served::Fresh,
        })
    }

    /// Decides and runs the plan; keeps the decision record either way.
    async fn execute(
        self: &Arc<Self>,
        call: &Call,
        wid: WorkloadId,
        mode: Mode,
        depth: u8,
    ) -> Result<Executed, RouteError> {
        let policy = &*self.policy;
        let workload = policy.workload(wid);
        let now = self.clock.now();
        let scope = call.budget_scope.as_deref().and_then(|s| self.scopes.get(s)).copied();
        let snap = self.snapshot(wid, scope, now).await?;
        let (decision_id, seed) = self.next_ids();
        tracing::Span::current().record("decision_id", tracing::field::display(decision_id));

        // Facts borrow the call (and a `dyn Metadata`, which is not `Sync`):
        // they live only while the engine decides, never across an await.
        let (decision, input) = {
            let metadata = MergedMetadata::of(call);
            let facts = facts_of(call, wid, &metadata, mode == Mode::Stream, seed);
            (Arc::new(decide(policy, &facts, &snap)), facts.input_tokens)
        };
        let data = decision.explain().data_class;
        let notes = if self.registry.any_unavailable() {
            self.notes.clone()
        } else {
            Vec::new()
        };
        if let Err(refusal) = decision.outcome() {
            let mut notes = notes;
            if let (router_core::Refusal::BudgetExhausted { .. }, Some(name), Some(_)) =
                (refusal, call.budget_scope.as_deref(), scope)
            {
                notes.push(format!(
                    "the call is charged to budget scope `{name}` as well as the workload's budget"
                ));
            }
            let retry_after = match refusal {
                router_core::Refusal::Unhealthy { retry_at_ms } if retry_at_ms != u64::MAX => {
                    Some(Millis(retry_at_ms).since(now))
                }
                router_core::Refusal::Unhealthy { .. }
                | router_core::Refusal::DataClass { .. }
                | router_core::Refusal::BudgetExhausted { .. }
                | router_core::Refusal::NoEligibleTarget => None,
            };
            let err = RouteError::Refused(RefusedError {
                workload: workload.name.clone(),
                refusal,
                decision: decision_id,
                retry_after,
                notes: notes.clone(),
            });
            self.keep_record(
                decision_id,
                &workload.name,
                now,
                decision,
                notes,
                Vec::new(),
                &format!("refused: {}", err.code()),
            );
            return Err(err);
        }
        self.books().retries.deposit(now);
        let mut run = Run {
            inner: self,
            call,
            wid,
            workload: &workload.name,
            scope,
            mode,
            depth,
            decision: decision_id,
            seed,
            data,
            deadline: workload.latency_budget.map(|d| (Instant::now() + d, d)),
            records: Vec::new(),
            dispatched: 0,
        };
        let result = run.plan(&decision).await;
        let outcome = match &result {
            Ok((_, target)) => format!("answered by {}", self.registry.label(*target)),
            Err(e) => format!("failed: {}", e.code()),
        };
        self.keep_record(decision_id, &workload.name, now, decision, notes, run.records, &outcome);
        result.map(|(answer, target)| Executed {
            answer,
            target,
            attempts: run.dispatched,
            decision: decision_id,
            input_tokens: input,
        })
    }

    #[expect(clippy::too_many_arguments, reason = "one record's parts, assembled in one place")]
    fn keep_record(
        &self,
        id: DecisionId,
        workload: &str,
        at: Millis,
        decision: Arc<Decision>,
        notes: Vec<String>,
        attempts: Vec<AttemptRecord>,
        outcome: &str,
    ) {
        self.decisions.insert(
            DecisionRecord {
                id,
                workload: workload.to_owned(),
                policy_hash: self.policy.hash(),
                at,
                decision,
                notes,
                attempts,
                outcome: outcome.to_owned(),
            },
            self.clock.now(),
        );
    }

    /// Records an attempt's outcome in the health book, the latency window
    /// and the metrics.
    fn record_outcome(
        &self,
        workload: &str,
        target: TargetId,
        outcome: AttemptOutcome,
        elapsed: Duration,
        timeout: Duration,
    ) {
        let now = self.clock.now();
        let change = {
            let mut books = self.books();
            books
                .latency
                .record_attempt(target, now, outcome, elapsed, Some(timeout));
            books.health.record(target, outcome, now)
        };
        let label = self.registry.label(target);
        self.metrics.attempt(workload, label, outcome);
        self.metrics.latency(workload, label, elapsed);
        match change {
            HealthChange::None => {}
            HealthChange::Ejected { until } => {
                tracing::warn!(target = %label, until = %until, "target ejected after consecutive failures");
            }
            HealthChange::Recovered => tracing::info!(target = %label, "target recovered"),
            HealthChange::CoolingDown { until, .. } => {
                tracing::info!(target = %label, until = %until, "provider cools down after a 429");
            }
        }
    }
}

async fn dispatch(
    adapter: &Arc<dyn Provider>,
    model: &str,
    req: &ChatRequest,
    stream: bool,
) -> Result<Got, ProviderError> {
    if !stream {
        return adapter.complete(model, req).await.map(Got::Whole);
    }
    let mut s = adapter.stream(model, req).await?;
    match s.next().await {
        Some(Ok(first)) => Ok(Got::Stream(first, s)),
        Some(Err(e)) => Err(e),
        // Adapters end a stream with an error item, never silently; should
        // one end empty anyway, the stream collector classifies it (as a
        // malformed response), or, were that an answer, it is one.
        None => match providers::collect_stream(Box::pin(futures::stream::empty()), model).await {
            Err(e) => Err(e),
            Ok(answer) => Ok(Got::Whole(answer)),
        },
    }
}

impl Run<'_> {
    fn record(&mut self, attempt: &Attempt, retry: u8, elapsed: Duration, error: Option<AttemptError>, clause: String) {
        self.records.push(AttemptRecord {
            target: self.inner.registry.label(attempt.target).to_owned(),
            node: attempt.node,
            retry,
            elapsed,
            error,
            clause,
        });
    }

    fn deadline_exceeded(&mut self) -> RouteError {
        let deadline = self.deadline.map_or(Duration::ZERO, |(_, d)| d);
        RouteError::DeadlineExceeded(DeadlineExceededError {
            workload: self.workload.to_owned(),
            decision: self.decision,
            deadline,
            attempts: self.records.clone(),
        })
    }

    fn exhausted(&mut self) -> RouteError {
        let attempts = self.records.clone();
        RouteError::FallbackExhausted(FallbackExhaustedError {
            workload: self.workload.to_owned(),
            decision: self.decision,
            attempts,
        })
    }

    /// The attempt's time: its own timeout, or what is left of the
    /// deadline if that is shorter (then `true`). `None`: the deadline passed.
    fn time_for(&self, attempt: &Attempt) -> Option<(Duration, bool)> {
        let own = attempt.timeout.unwrap_or(self.inner.settings.default_attempt_timeout);
        match self.deadline {
            None => Some((own, false)),
            Some((at, _)) => {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    None
                } else if left < own {
                    Some((left, true))
                } else {
                    Some((own, false))
                }
            }
        }
    }

    /// Runs the plan's attempts in order.
    async fn plan(&mut self, decision: &Decision) -> Result<(Answer, TargetId), RouteError> {
        let inner = self.inner;
        let policy = &*inner.policy;
        let attempts = decision.plan().attempts();
        let mut first_budget_refusal: Option<ReserveError> = None;
        for (i, attempt) in attempts.iter().enumerate() {
            let last = i + 1 == attempts.len();
            if self.time_for(attempt).is_none() {
                return Err(self.deadline_exceeded());
            }
            // The engine already filtered these; the runtime checks again
            // before anything is sent.
            let provider = policy.provider(attempt.provider);
            if provider.max_data < self.data {
                let reason = NotSent::DataClass {
                    allowed: provider.max_data,
                    required: self.data,
                };
                self.record(
                    attempt,
                    0,
                    Duration::ZERO,
                    Some(AttemptError::NotSent(NotSentError { reason })),
                    "skipped: never sent below the call's data class".to_owned(),
                );
                continue;
            }
            let Some(adapter) = inner.registry.adapter(attempt.target) else {
                let why = inner
                    .registry
                    .unavailable(attempt.provider)
                    .unwrap_or("the provider has no adapter")
                    .to_owned();
                let reason = NotSent::Unavailable { why };
                self.record(
                    attempt,
                    0,
                    Duration::ZERO,
                    Some(AttemptError::NotSent(NotSentError { reason })),
                    "skipped: provider unavailable".to_owned(),
                );
                continue;
            };
            let estimate = Spend {
                tokens: attempt.estimate.tokens,
                usd: attempt.estimate.usd.unwrap_or(Usd::ZERO),
            };
            let held = match inner.reserve(self.wid, self.scope, estimate).await {
                Ok(held) => held,
                Err(e @ (ReserveError::Busy(_) | ReserveError::TooLarge(_))) => {
                    // Another attempt may be cheaper, so the plan goes on.
                    let clause = format!(
                        "skipped: the budget cannot hold this attempt's estimate ({} tokens)",
                        estimate.tokens
                    );
                    self.record(
                        attempt,
                        0,
                        Duration::ZERO,
                        Some(AttemptError::Budget(e.clone())),
                        clause,
                    );
                    first_budget_refusal.get_or_insert(e);
                    continue;
                }
                Err(
                    e
                    @ (ReserveError::Halted(_) | ReserveError::StoreUnavailable(_) | ReserveError::UnknownWorkload(_)),
                ) => {
                    let mut err = BudgetError::new(e, Some(self.decision), inner.clock.now());
                    err.attempts = self.records.clone();
                    return Err(RouteError::Budget(Box::new(err)));
                }
            };
            match self.attempt(attempt, adapter, held, last).await? {
                Some(answer) => return Ok((answer, attempt.target)),
                None => {
                    if !last {
                        inner.metrics.fallback(self.workload);
                    }
                }
            }
        }
        if self.dispatched == 0
            && let Some(e) = first_budget_refusal
        {
            let mut err = BudgetError::new(e, Some(self.decision), inner.clock.now());
            err.attempts = self.records.clone();
            return Err(RouteError::Budget(Box::new(err)));
        }
        Err(self.exhausted())
    }

    /// One attempt with its retries. `Ok(None)`: the plan moves on.
    async fn attempt(
        &mut self,
        attempt: &Attempt,
        adapter: &Arc<dyn Provider>,
        held: Held,
        last: bool,
    ) -> Result<Option<Answer>, RouteError> {
        let inner = self.inner;
        let policy = &*inner.policy;
        let target = policy.target(attempt.target);
        let label = inner.registry.label(attempt.target).to_owned();
        // An escalated answer is checked whole, even for a streaming caller.
        let stream = self.mode == Mode::Stream && attempt.check.is_none();
        let req = request_for(policy, self.call, self.wid, attempt, stream);
        let mut held = Some(held);
        let mut retry: u8 = 0;
        loop {
            let Some((timeout, by_deadline)) = self.time_for(attempt) else {
                release(&mut held).await;
                return Err(self.deadline_exceeded());
            };
            let permit = match inner.admit(attempt, inner.clock.now()) {
                Ok(permit) => permit,
                Err(reason) => {
                    release(&mut held).await;
                    if let NotSent::LocalLimit { limit } = &reason {
                        inner
                            .metrics
                            .local_limit_skip(&policy.provider(attempt.provider).name, limit);
                    }
                    let clause = skip_clause(policy, attempt, &reason, last);
                    self.record(
                        attempt,
                        retry,
                        Duration::ZERO,
                        Some(AttemptError::NotSent(NotSentError { reason })),
                        clause,
                    );
                    return Ok(None);
                }
            };
            self.dispatched += 1;
            let span = tracing::info_span!(
                "routec.attempt", target = %label, node = %attempt.node, retry,
                outcome = tracing::field::Empty
            );
            let started = Instant::now();
            let result = tokio::time::timeout(timeout, dispatch(adapter, &target.api_id, &req, stream))
                .instrument(span.clone())
                .await;
            let elapsed = started.elapsed();
            // The permit is held while the call is in flight: to the end of
            // a stream, else until the answer (or failure) is in.
            let mut permit = match &result {
                Ok(Ok(Got::Stream(..))) => permit,
                Ok(Ok(Got::Whole(_)) | Err(_)) | Err(_) => {
                    drop(permit);
                    None
                }
            };
            let failure = match result {
                Ok(Ok(got)) => {
                    span.record("outcome", "success");
                    inner.record_outcome(self.workload, attempt.target, AttemptOutcome::Success, elapsed, timeout);
                    match got {
                        Got::Stream(first, rest) => {
                            self.record(attempt, retry, elapsed, None, "answered: streaming".to_owned());
                            let idle = attempt.timeout.unwrap_or(inner.settings.default_attempt_timeout);
                            let Some(held) = held.take() else {
                                return Ok(None);
                            };
                            return Ok(Some(Answer::Stream {
                                first,
                                rest,
                                held,
                                idle,
                                permit: permit.take(),
                            }));
                        }
                        Got::Whole(answer) => {
                            let spend = spend_of(policy, attempt.target, answer.usage);
                            if let Some(h) = held.take() {
                                h.commit(inner, self.workload, spend, answer.usage).await;
                            }
                            return match self.check(attempt, &req, &answer).await {
                                Ok(()) => {
                                    self.record(attempt, retry, elapsed, None, "answered".to_owned());
                                    Ok(Some(Answer::Whole(answer)))
                                }
                                Err(e) => {
                                    let clause = if last {
                                        format!(
                                            "escalated: the check of {} failed and no attempt was left",
                                            placed(policy, attempt)
                                        )
                                    } else {
                                        format!("escalated: the check of {} failed", placed(policy, attempt))
                                    };
                                    self.record(attempt, retry, elapsed, Some(AttemptError::QualityCheck(e)), clause);
                                    Ok(None)
                                }
                            };
                        }
                    }
                }
                Ok(Err(e)) => {
                    let outcome = outcome_of(&e);
                    span.record("outcome", outcome.as_str());
                    inner.record_outcome(self.workload, attempt.target, outcome, elapsed, timeout);
                    Failure {
                        class: e.class(),
                        error: AttemptError::Upstream(e),
                        by_deadline: false,
                    }
                }
                Err(_) => {
                    span.record("outcome", "timeout");
                    inner.record_outcome(self.workload, attempt.target, AttemptOutcome::Timeout, elapsed, timeout);
                    Failure {
                        class: ErrorClass::Timeout(TimeoutKind::Total),
                        error: AttemptError::TimedOut(TimedOutError {
                            after: timeout,
                            deadline: by_deadline,
                        }),
                        by_deadline,
                    }
                }
            };
            if failure.by_deadline {
                release(&mut held).await;
                self.record(
                    attempt,
                    retry,
                    elapsed,
                    Some(failure.error),
                    "stopped: the call's deadline passed".to_owned(),
                );
                return Err(self.deadline_exceeded());
            }
            if retry < attempt.retries && may_retry(failure.class) {
                let pause = backoff(
                    inner.settings.backoff_base,
                    inner.settings.backoff_max,
                    retry + 1,
                    self.seed,
                );
                let fits = self.deadline.is_none_or(|(at, _)| Instant::now() + pause < at);
                let granted = fits && inner.books().retries.withdraw(inner.clock.now());
                if granted {
                    let clause = format!(
                        "retried after {}ms: `retry {}` of {}",
                        pause.as_millis(),
                        attempt.retries,
                        placed(policy, attempt)
                    );
                    self.record(attempt, retry, elapsed, Some(failure.error), clause);
                    tokio::time::sleep(pause).await;
                    retry += 1;
                    continue;
                }
                tracing::debug!(target = %label, "no retry: the retry budget is spent or the deadline is too close");
            }
            release(&mut held).await;
            let next = next_after(failure.class, attempt);
            let clause = clause_for(policy, attempt, next, last);
            return match next {
                Next::Advance(_) => {
                    self.record(attempt, retry, elapsed, Some(failure.error), clause);
                    Ok(None)
                }
                Next::Stop(_) => {
                    self.record(attempt, retry, elapsed, Some(failure.error), clause);
                    Err(self.exhausted())
                }
                Next::Reject => {
                    let error = match &failure.error {
                        AttemptError::Upstream(e) => Some(e.clone()),
                        AttemptError::TimedOut(_)
                        | AttemptError::NotSent(_)
                        | AttemptError::Budget(_)
                        | AttemptError::QualityCheck(_) => None,
                    };
                    self.record(attempt, retry, elapsed, Some(failure.error), clause);
                    match error {
                        Some(error) => Err(RouteError::UpstreamRejected(Box::new(UpstreamRejectedError {
                            workload: self.workload.to_owned(),
                            decision: self.decision,
                            target: label,
                            error,
                            attempts: self.records.clone(),
                        }))),
                        None => Err(self.exhausted()),
                    }
                }
            };
        }
    }

    /// Runs the attempt's escalate check, if it has one.
    async fn check(
        &self,
        attempt: &Attempt,
        req: &ChatRequest,
        answer: &ChatResponse,
    ) -> Result<(), QualityCheckError> {
        let inner = self.inner;
        let (Some(check), Some(node)) = (attempt.quality_check(&inner.policy), attempt.check) else {
            return Ok(());
        };
        let fail = |detail: String| QualityCheckError {
            check: check_name(check).to_owned(),
            detail,
        };
        if let Some(result) = check_local(check, node, &inner.regexes, req, answer) {
            return result.map_err(fail);
        }
        let QualityCheck::Evaluator(evaluator) = check else {
            return Ok(());
        };
        let name = inner.policy.workload(*evaluator).name.clone();
        if self.depth >= MAX_EVALUATOR_DEPTH {
            return Err(fail(format!(
                "evaluator `{name}` would nest deeper than {MAX_EVALUATOR_DEPTH} calls"
            )));
        }
        let call = Call {
            workload: name.clone(),
            request: evaluator_request(req, answer),
            user: self.call.user.clone(),
            metadata: Vec::new(),
            // The answer carries the call's data: the evaluator must be
            // cleared for it too.
            data_class: Some(self.data),
            idempotency_key: None,
            budget_scope: self.call.budget_scope.clone(),
        };
        inner.metrics.request(&name);
        match nested_call(Arc::clone(inner), call, *evaluator, self.depth + 1).await {
            Ok(verdict) if evaluator_passed(&verdict.value) => Ok(()),
            Ok(verdict) => {
                let said: String = verdict.value.content.chars().take(120).collect();
                Err(fail(format!("evaluator `{name}` said: {said}")))
            }
            Err(e) => {
                inner.metrics.error(e.code());
                Err(fail(format!("evaluator `{name}` failed: {e}")))
            }
        }
    }
}

/// A call made while checking another (an evaluator): boxed, with its
/// type spelled out, because the call that makes it is the same function.
fn nested_call(
    inner: Arc<Inner>,
    call: Call,
    wid: WorkloadId,
    depth: u8,
) -> std::pin::Pin<Box<dyn Future<Output = Result<Routed<ChatResponse>, RouteError>> + Send>> {
    let span = tracing::info_span!(
        "routec.request", workload = %call.workload, policy_hash = %inner.hash_short,
        decision_id = tracing::field::Empty, kind = "evaluator"
    );
    Box::pin(async move { inner.complete_call(call, wid, depth).await }.instrument(span))
}

/// The request as sent to `attempt`'s target: max output capped by the
/// workload's `max_tokens`, else the model's `max_output`, so actual
/// usage stays within what was reserved.
fn request_for<'c>(
    policy: &Policy,
    call: &'c Call,
    wid: WorkloadId,
    attempt: &Attempt,
    stream: bool,
) -> Cow<'c, ChatRequest> {
    let asked = call.request.max_tokens.map(u64::from);
    let cap = policy.workload(wid).max_tokens;
    let max_out = match (asked, cap) {
        (Some(a), Some(c)) => Some(a.min(c)),
        (a, c) => a.or(c),
    }
    .or(policy.target(attempt.target).max_output)
    .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    if max_out == call.request.max_tokens && call.request.stream == stream {
        Cow::Borrowed(&call.request)
    } else {
        let mut req = call.request.clone();
        req.max_tokens = max_out;
        req.stream = stream;
        Cow::Owned(req)
    }
}
