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
    ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, EventStream, Provider, ProviderError, StreamEvent,
};
use router_core::{
    Attempt, DataClass, Decision, Policy, QualityCheck, StreamRecovery, TargetId, Usd, WorkloadId, decide,
};
use router_state::{Action, CallMachine, Ending, Failure, TimeoutKind, placed};
use tokio::time::Instant;
use tracing::Instrument;

use crate::attempt::{failure_of, skip_clause};
use crate::budget::error::ReserveError;
use crate::clock::Millis;
use crate::decisions::{DecisionId, DecisionRecord};
use crate::error::{
    AttemptError, AttemptRecord, BudgetError, DeadlineExceededError, FallbackExhaustedError, NotSent, NotSentError,
    QualityCheckError, RefusedError, RouteError, TimedOutError, UpstreamRejectedError,
};
use crate::facts::{MergedMetadata, facts_of};
use crate::idempotency::Leader;
use crate::limits::Permit;
use crate::quality::{check_local, check_name, evaluator_passed, evaluator_request};
use crate::reserve::{Held, spend_of};
use crate::router::{Call, Completed, Inner, Routed};
use crate::stream::{Live, Rescue, RoutedStream};
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
    /// An embedding call's vectors; their spend is committed.
    Embedded(EmbedResponse),
    /// A stream whose first event has arrived; it holds the reservation
    /// and the provider's concurrency permit, if it has a limit.
    Stream {
        first: StreamEvent,
        rest: EventStream,
        held: Held,
        idle: Duration,
        permit: Option<Permit>,
        /// `stream_recovery continue`: who may continue the answer (boxed:
        /// only such workloads carry one).
        rescue: Option<Box<Rescue>>,
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
    /// An embedding call's texts: dispatched to `embed`, not `complete`.
    embed: Option<&'a EmbedRequest>,
    depth: u8,
    decision: DecisionId,
    seed: u64,
    data: DataClass,
    deadline: Option<(Instant, Duration)>,
    started: Instant,
    records: Vec<AttemptRecord>,
    dispatched: u32,
}

enum Got {
    Whole(ChatResponse),
    Embedded(EmbedResponse),
    Stream(StreamEvent, EventStream),
}

/// What one dispatch produced. Short-lived and matched at once, so the
/// size of its largest variant costs nothing worth a box.
#[expect(clippy::large_enum_variant, reason = "one value per dispatch, consumed at once")]
enum Dispatched {
    Stream {
        first: StreamEvent,
        rest: EventStream,
        idle: Duration,
        permit: Option<Permit>,
        elapsed: Duration,
    },
    Whole {
        answer: ChatResponse,
        req: ChatRequest,
        elapsed: Duration,
    },
    Embedded {
        answer: EmbedResponse,
        elapsed: Duration,
    },
    Failed {
        failure: Failure,
        error: AttemptError,
        elapsed: Duration,
    },
}

/// What the checks before an attempt's first dispatch decided.
enum Prepared {
    /// It may go, holding this reservation.
    Held(Held),
    /// It is skipped; with the budget's refusal when that was why.
    Skipped(Option<ReserveError>),
}

impl Inner {
    pub(crate) async fn complete_fresh(
        self: &Arc<Self>,
        call: &Call,
        wid: WorkloadId,
        depth: u8,
    ) -> Result<Completed, RouteError> {
        let done = self.execute(call, wid, Mode::Complete, None, depth).await?;
        match done.answer {
            Answer::Whole(response) => Ok(Completed {
                response,
                target: self.registry.label(done.target).to_owned(),
                attempts: done.attempts,
                decision: done.decision,
            }),
            // `Mode::Complete` never dispatches a stream, nor a chat call
            // an embedding; were it to, the call did not succeed.
            Answer::Stream { .. } | Answer::Embedded(_) => Err(RouteError::FallbackExhausted(FallbackExhaustedError {
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
        let done = match self.execute(call, wid, Mode::Stream, None, 0).await {
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
            // A chat call never gets vectors; were it to, it did not succeed.
            Answer::Embedded(_) => {
                let e = RouteError::FallbackExhausted(FallbackExhaustedError {
                    workload: self.policy.workload(wid).name.clone(),
                    decision: done.decision,
                    attempts: Vec::new(),
                });
                if let Some(leader) = leader {
                    leader.finish(Err(e.clone()));
                }
                return Err(e);
            }
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
                rescue,
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
                rescue,
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

    /// An embedding call: decided on its texts' tokens, with the
    /// `embeddings` capability required, and run through the same attempt
    /// machine as a chat call (fallback, retries, limits, health, budgets).
    pub(crate) async fn embed_fresh(
        self: &Arc<Self>,
        call: &Call,
        request: &EmbedRequest,
        wid: WorkloadId,
    ) -> Result<(EmbedResponse, String, u32, DecisionId), RouteError> {
        let done = self.execute(call, wid, Mode::Complete, Some(request), 0).await?;
        match done.answer {
            Answer::Embedded(vectors) => Ok((
                vectors,
                self.registry.label(done.target).to_owned(),
                done.attempts,
                done.decision,
            )),
            Answer::Whole(_) | Answer::Stream { .. } => Err(RouteError::FallbackExhausted(FallbackExhaustedError {
                workload: self.policy.workload(wid).name.clone(),
                decision: done.decision,
                attempts: Vec::new(),
            })),
        }
    }

    /// Decides and runs the plan; keeps the decision record either way.
    async fn execute(
        self: &Arc<Self>,
        call: &Call,
        wid: WorkloadId,
        mode: Mode,
        embed: Option<&EmbedRequest>,
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
            let mut facts = facts_of(call, wid, &metadata, mode == Mode::Stream, seed);
            if let Some(e) = embed {
                facts.input_tokens = providers::estimate_embed_tokens(e);
                facts.max_output_tokens = None;
                facts.features = router_core::Features::NONE.with(router_core::Feature::Embedding);
            }
            (Arc::new(decide(policy, &facts, &snap)), facts.input_tokens)
        };
        let data = decision.explain().data_class;
        let notes = if self.registry.any_unavailable() {
            self.notes.clone()
        } else {
            Vec::new()
        };
        if let Err(router_core::Refusal::BudgetExhausted { .. }) = decision.outcome()
            && let Some(err) = self.budget_verdict(&decision, wid, scope, decision_id).await
        {
            self.keep_record(
                decision_id,
                &workload.name,
                now,
                Arc::clone(&decision),
                notes,
                Vec::new(),
                &format!("refused: {}", err.code()),
            );
            return Err(err);
        }
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
            embed,
            depth,
            decision: decision_id,
            seed,
            data,
            deadline: workload.latency_budget.map(|d| (Instant::now() + d, d)),
            started: Instant::now(),
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

    /// When the engine found no target the budget could cover, the ledger
    /// says which state the budget is in — the one definition that
    /// `routec budget status` shows and `unlock` lifts: asked for the
    /// smallest estimate the engine dropped, it halts a line that cannot
    /// take it with nothing in flight (429 until rollover), reports one
    /// whose rest is held by calls in flight as busy (429, a short wait),
    /// and one the call could never fit as too large (413). `None` when the
    /// ledger would take the call after all (its state moved since the
    /// snapshot): the engine's refusal stands.
    async fn budget_verdict(
        &self,
        decision: &Decision,
        wid: WorkloadId,
        scope: Option<WorkloadId>,
        decision_id: DecisionId,
    ) -> Option<RouteError> {
        let smallest = decision
            .explain()
            .candidates
            .iter()
            .filter_map(|c| match &c.verdict {
                router_core::Verdict::Dropped {
                    reason:
                        router_core::Reason::OverBudget {
                            tokens_needed,
                            usd_needed,
                            ..
                        },
                } => Some(Spend {
                    tokens: *tokens_needed,
                    usd: usd_needed.unwrap_or(Usd::ZERO),
                }),
                _ => None,
            })
            .min_by_key(|s| (s.tokens, s.usd))?;
        match self.reserve(wid, scope, smallest).await {
            Ok(held) => {
                held.release().await;
                None
            }
            Err(e) => Some(RouteError::Budget(Box::new(BudgetError::new(
                e,
                Some(decision_id),
                self.clock.now(),
            )))),
        }
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
    /// `counted`: whether the outcome goes into `routec_attempts_total`
    /// now; a stream's first event is not yet its outcome (the stream counts
    /// itself when it ends, complete or broken).
    pub(crate) fn record_outcome(
        &self,
        workload: &str,
        target: TargetId,
        outcome: AttemptOutcome,
        elapsed: Duration,
        timeout: Duration,
        counted: bool,
    ) {
        let now = self.clock.now();
        let change = {
            let mut books = self.books();
            books
                .latency
                .record_attempt(target, now, outcome, elapsed, Some(timeout));
            books.health.record(target, outcome, now)
        };
        if let Some(shared) = &self.shared {
            shared.publish(self, target, change, now);
        }
        let label = self.registry.label(target);
        if counted {
            self.metrics.attempt(workload, label, outcome);
        }
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
            HealthChange::ModelCoolingDown { until } => {
                tracing::info!(target = %label, until = %until, "model cools down after a 429");
            }
        }
    }
}

/// How an attempt is asked of its adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum How {
    /// A whole answer.
    Whole,
    /// A stream, handed to the caller from its first event.
    Stream,
    /// A stream, collected whole before anything reaches the caller.
    Buffered,
}

/// An attempt's time bounds, from the attempt machine.
#[derive(Clone, Copy)]
struct Bounds {
    total: Duration,
    first_token: Duration,
    idle: Duration,
}

/// Why a dispatch failed before its total timeout.
enum Cut {
    Upstream(ProviderError),
    /// A stream's first event did not come within its first-token timeout.
    FirstToken,
}

impl From<ProviderError> for Cut {
    fn from(e: ProviderError) -> Self {
        Cut::Upstream(e)
    }
}

async fn dispatch(
    adapter: &Arc<dyn Provider>,
    model: &str,
    req: &ChatRequest,
    how: How,
    first_token: Duration,
) -> Result<Got, Cut> {
    if let How::Whole = how {
        return Ok(adapter.complete(model, req).await.map(Got::Whole)?);
    }
    // Opening the stream and its first event, under the first-token bound.
    let opened = tokio::time::timeout(first_token, async {
        let mut s = adapter.stream(model, req).await?;
        let first = s.next().await;
        Ok::<_, ProviderError>((first, s))
    })
    .await;
    let (first, s) = match opened {
        Ok(r) => r?,
        Err(_) => return Err(Cut::FirstToken),
    };
    if let How::Buffered = how {
        let rest = futures::stream::iter(first).chain(s);
        return Ok(providers::collect_stream(Box::pin(rest), model).await.map(Got::Whole)?);
    }
    match first {
        Some(Ok(first)) => Ok(Got::Stream(first, s)),
        Some(Err(e)) => Err(Cut::Upstream(e)),
        // Adapters end a stream with an error item, never silently; should
        // one end empty anyway, the stream collector classifies it (as a
        // malformed response), or, were that an answer, it is one.
        None => match providers::collect_stream(Box::pin(futures::stream::empty()), model).await {
            Err(e) => Err(Cut::Upstream(e)),
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
            ended: self.started.elapsed(),
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

    /// Time since the call started, as the attempt machine counts it: the
    /// tokio clock (deadlines and timeouts follow `tokio::time::pause`),
    /// not the wall clock the books use.
    fn elapsed(&self) -> Millis {
        Millis(router_state::duration_to_ms(self.started.elapsed()))
    }

    /// Runs the plan's attempts, as the attempt machine directs.
    async fn plan(&mut self, decision: &Decision) -> Result<(Answer, TargetId), RouteError> {
        let inner = self.inner;
        let policy = &*inner.policy;
        let attempts = decision.plan().attempts();
        let mut machine = CallMachine::new(
            policy,
            attempts,
            inner.settings.failure_rules,
            self.elapsed(),
            self.deadline.map(|(_, d)| d),
            self.seed,
        );
        let mut first_budget_refusal: Option<ReserveError> = None;
        // The reservation of the attempt in progress, kept across its retries.
        let mut held: Option<(usize, Held)> = None;
        let mut action = machine.start(self.elapsed());
        loop {
            let (index, retry, bounds, by_deadline) = match action {
                Action::Finish(ending) => {
                    if let Some((_, h)) = held.take() {
                        h.release().await;
                    }
                    return Err(match ending {
                        Ending::DeadlineExceeded => self.deadline_exceeded(),
                        Ending::Rejected { .. } => self.rejected(attempts),
                        Ending::Exhausted if self.dispatched == 0 && first_budget_refusal.is_some() => {
                            let Some(e) = first_budget_refusal.take() else {
                                return Err(self.exhausted());
                            };
                            let mut err = BudgetError::new(e, Some(self.decision), inner.clock.now());
                            err.attempts = self.records.clone();
                            RouteError::Budget(Box::new(err))
                        }
                        Ending::Exhausted | Ending::Stopped { .. } | Ending::Answered { .. } => self.exhausted(),
                    });
                }
                Action::Wait { until, .. } => {
                    tokio::time::sleep(until.since(self.elapsed())).await;
                    action = machine.resume(self.elapsed());
                    continue;
                }
                Action::Dispatch {
                    index,
                    retry,
                    timeout,
                    first_token,
                    idle,
                    by_deadline,
                } => (
                    index,
                    retry,
                    Bounds {
                        total: timeout,
                        first_token,
                        idle,
                    },
                    by_deadline,
                ),
            };
            let Some(attempt) = attempts.get(index) else {
                action = Action::Finish(Ending::Exhausted);
                continue;
            };
            let last = machine.is_last();
            if held.as_ref().is_none_or(|(i, _)| *i != index) {
                if let Some((_, h)) = held.take() {
                    h.release().await;
                }
                match self.prepare(attempt).await? {
                    Prepared::Held(h) => held = Some((index, h)),
                    Prepared::Skipped(refusal) => {
                        if let Some(e) = refusal {
                            first_budget_refusal.get_or_insert(e);
                        }
                        action = machine.not_sent(self.elapsed());
                        continue;
                    }
                }
            }
            let Some(adapter) = inner.registry.adapter(attempt.target) else {
                action = machine.not_sent(self.elapsed());
                continue;
            };
            let admitted = match &inner.shared {
                None => inner.admit(attempt, inner.clock.now()),
                Some(shared) => shared.admit(inner, attempt).await,
            };
            let permit = match admitted {
                Ok(permit) => permit,
                Err(reason) => {
                    if let Some((_, h)) = held.take() {
                        h.release().await;
                    }
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
                    action = machine.not_sent(self.elapsed());
                    continue;
                }
            };
            machine.sent();
            self.dispatched += 1;
            let outcome = self
                .dispatch(attempt, adapter, retry, bounds, by_deadline, permit)
                .await;
            let (failure, error, elapsed) = match outcome {
                Dispatched::Stream {
                    first,
                    rest,
                    idle,
                    permit,
                    elapsed,
                } => {
                    self.record(attempt, retry, elapsed, None, "answered: streaming".to_owned());
                    let Some((_, held)) = held.take() else {
                        return Err(self.exhausted());
                    };
                    let rescue = self.rescue(attempts, index);
                    return Ok((
                        Answer::Stream {
                            first,
                            rest,
                            held,
                            idle,
                            permit,
                            rescue,
                        },
                        attempt.target,
                    ));
                }
                Dispatched::Whole { answer, req, elapsed } => {
                    let spend = spend_of(policy, attempt.target, answer.usage);
                    if let Some((_, h)) = held.take() {
                        h.commit(inner, self.workload, spend, answer.usage).await;
                    }
                    match self.check(attempt, &req, &answer).await {
                        Ok(()) => {
                            self.record(attempt, retry, elapsed, None, "answered".to_owned());
                            return Ok((Answer::Whole(answer), attempt.target));
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
                            action = machine.escalate(self.elapsed());
                            continue;
                        }
                    }
                }
                Dispatched::Embedded { answer, elapsed } => {
                    let spend = spend_of(policy, attempt.target, answer.usage);
                    if let Some((_, h)) = held.take() {
                        h.commit(inner, self.workload, spend, answer.usage).await;
                    }
                    self.record(attempt, retry, elapsed, None, "answered".to_owned());
                    return Ok((Answer::Embedded(answer), attempt.target));
                }
                Dispatched::Failed {
                    failure,
                    error,
                    elapsed,
                } => (failure, error, elapsed),
            };
            let verdict = machine.failed(
                self.elapsed(),
                failure,
                matches!(&error, AttemptError::TimedOut(t) if t.deadline),
                || inner.books().retries.withdraw(inner.clock.now()),
            );
            self.record(attempt, retry, elapsed, Some(error), verdict.clause);
            match &verdict.action {
                Action::Wait { .. } => {}
                Action::Dispatch { index: next, .. } if *next == index => {}
                Action::Dispatch { .. } | Action::Finish(_) => {
                    if let Some((_, h)) = held.take() {
                        h.release().await;
                    }
                    if matches!(verdict.action, Action::Dispatch { .. }) {
                        inner.metrics.fallback(self.workload);
                    }
                }
            }
            action = verdict.action;
        }
    }

    /// With `stream_recovery continue`, what a live stream needs to have its
    /// answer continued if it breaks: the later attempts of the plan whose
    /// model accepts a prefill and whose provider may take the call's data.
    fn rescue(&self, attempts: &[Attempt], index: usize) -> Option<Box<Rescue>> {
        let policy = &*self.inner.policy;
        if policy.workload(self.wid).stream_recovery != StreamRecovery::Continue {
            return None;
        }
        let candidates: std::collections::VecDeque<Attempt> =
            router_state::continuation_candidates(policy, attempts, index, self.data)
                .cloned()
                .collect();
        Some(Box::new(Rescue {
            call: self.call.clone(),
            wid: self.wid,
            scope: self.scope,
            candidates,
            rules: self.inner.settings.failure_rules,
        }))
    }

    /// The checks before an attempt's first dispatch: its provider may take
    /// the call's data class, has an adapter, and the budget holds its
    /// estimate. A budget that is halted (or cannot be asked) ends the call.
    async fn prepare(&mut self, attempt: &Attempt) -> Result<Prepared, RouteError> {
        let inner = self.inner;
        let policy = &*inner.policy;
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
            return Ok(Prepared::Skipped(None));
        }
        if inner.registry.adapter(attempt.target).is_none() {
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
            return Ok(Prepared::Skipped(None));
        }
        let estimate = Spend {
            tokens: attempt.estimate.tokens,
            usd: attempt.estimate.usd.unwrap_or(Usd::ZERO),
        };
        match inner.reserve(self.wid, self.scope, estimate).await {
            Ok(held) => Ok(Prepared::Held(held)),
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
                Ok(Prepared::Skipped(Some(e)))
            }
            Err(
                e @ (ReserveError::Halted(_) | ReserveError::StoreUnavailable(_) | ReserveError::UnknownWorkload(_)),
            ) => {
                let mut err = BudgetError::new(e, Some(self.decision), inner.clock.now());
                err.attempts = self.records.clone();
                Err(RouteError::Budget(Box::new(err)))
            }
        }
    }

    /// One dispatch within its bounds, recorded in health, latency and metrics.
    async fn dispatch(
        &mut self,
        attempt: &Attempt,
        adapter: &Arc<dyn Provider>,
        retry: u8,
        bounds: Bounds,
        by_deadline: bool,
        permit: Option<Permit>,
    ) -> Dispatched {
        let inner = self.inner;
        let policy = &*inner.policy;
        let target = policy.target(attempt.target);
        let label = inner.registry.label(attempt.target);
        // An escalated answer is checked whole, even for a streaming caller.
        let stream = self.mode == Mode::Stream && attempt.check.is_none();
        // `stream_recovery buffer`: the upstream streams, but the answer is
        // held until it completes, so a break can still fall back; the
        // caller's stream replays it whole.
        let how = match (stream, policy.workload(self.wid).stream_recovery) {
            (false, _) => How::Whole,
            (true, StreamRecovery::Off | StreamRecovery::Continue) => How::Stream,
            (true, StreamRecovery::Buffer) => How::Buffered,
        };
        let req = match self.embed {
            // An embedding call's chat request is empty and never sent.
            Some(_) => ChatRequest::default(),
            None => request_for(policy, self.call, self.wid, attempt, stream).into_owned(),
        };
        let span = tracing::info_span!(
            "routec.attempt", target = %label, node = %attempt.node, retry,
            outcome = tracing::field::Empty
        );
        let started = Instant::now();
        let timeout = bounds.total;
        let result = match self.embed {
            Some(texts) => {
                tokio::time::timeout(timeout, async {
                    adapter
                        .embed(&target.api_id, texts)
                        .await
                        .map(Got::Embedded)
                        .map_err(Cut::Upstream)
                })
                .instrument(span.clone())
                .await
            }
            None => {
                tokio::time::timeout(
                    timeout,
                    dispatch(adapter, &target.api_id, &req, how, bounds.first_token),
                )
                .instrument(span.clone())
                .await
            }
        };
        let elapsed = started.elapsed();
        match result {
            Ok(Ok(got)) => {
                span.record("outcome", "success");
                let whole = matches!(got, Got::Whole(_) | Got::Embedded(_));
                inner.record_outcome(
                    self.workload,
                    attempt.target,
                    AttemptOutcome::Success,
                    elapsed,
                    timeout,
                    whole,
                );
                match got {
                    // The permit is held while the call is in flight: to
                    // the end of a stream, else until the answer is in.
                    Got::Stream(first, rest) => Dispatched::Stream {
                        first,
                        rest,
                        idle: bounds.idle,
                        permit,
                        elapsed,
                    },
                    Got::Whole(answer) => Dispatched::Whole { answer, req, elapsed },
                    Got::Embedded(answer) => Dispatched::Embedded { answer, elapsed },
                }
            }
            Ok(Err(Cut::FirstToken)) => {
                span.record("outcome", "timeout");
                inner.record_outcome(
                    self.workload,
                    attempt.target,
                    AttemptOutcome::Timeout,
                    elapsed,
                    timeout,
                    true,
                );
                Dispatched::Failed {
                    failure: Failure::Timeout(TimeoutKind::FirstToken),
                    error: AttemptError::TimedOut(TimedOutError {
                        after: bounds.first_token,
                        deadline: by_deadline && bounds.first_token >= timeout,
                        first_token: true,
                    }),
                    elapsed,
                }
            }
            Ok(Err(Cut::Upstream(e))) => {
                let failure = failure_of(&e);
                span.record("outcome", failure.outcome().as_str());
                inner.record_outcome(self.workload, attempt.target, failure.outcome(), elapsed, timeout, true);
                Dispatched::Failed {
                    failure,
                    error: AttemptError::Upstream(e),
                    elapsed,
                }
            }
            Err(_) => {
                span.record("outcome", "timeout");
                inner.record_outcome(
                    self.workload,
                    attempt.target,
                    AttemptOutcome::Timeout,
                    elapsed,
                    timeout,
                    true,
                );
                Dispatched::Failed {
                    failure: Failure::Timeout(TimeoutKind::Total),
                    error: AttemptError::TimedOut(TimedOutError {
                        after: timeout,
                        deadline: by_deadline,
                        first_token: false,
                    }),
                    elapsed,
                }
            }
        }
    }

    /// The call ends with the upstream's refusal of the request itself.
    fn rejected(&mut self, attempts: &[Attempt]) -> RouteError {
        let last = self.records.iter().rev().find_map(|r| match &r.error {
            Some(AttemptError::Upstream(e)) => Some((r.target.clone(), e.clone())),
            Some(
                AttemptError::TimedOut(_)
                | AttemptError::NotSent(_)
                | AttemptError::Budget(_)
                | AttemptError::QualityCheck(_),
            )
            | None => None,
        });
        let _ = attempts;
        match last {
            Some((target, error)) => RouteError::UpstreamRejected(Box::new(UpstreamRejectedError {
                workload: self.workload.to_owned(),
                decision: self.decision,
                target,
                error,
                attempts: self.records.clone(),
            })),
            None => self.exhausted(),
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
pub(crate) fn request_for<'c>(
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
