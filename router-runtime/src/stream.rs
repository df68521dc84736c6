//! Streaming after the first event: pass events through, settle the budget
//! exactly once, and never end a broken stream as if it were whole.
//!
//! Why a guard: once the first event has reached the caller, the call can
//! no longer fall back, and the caller may stop reading at any time. The
//! stream's state owns the reservation in a guard; whichever way the stream
//! ends, the guard commits: the usage the provider reported in its final
//! chunk, or, when there is none (a cut, a drop, a provider that does not
//! report usage), an estimate from the prompt and the text seen, so a
//! streamed call never records zero spend. A stream that breaks ends with
//! an explicit [`RouteError::StreamInterrupted`] item.
//!
//! With `stream_recovery continue`, a break (an error, a stall past the
//! idle timeout, an end without `Done`) after a text-only start is not the
//! end: the broken attempt is settled and counted as failed, then the next
//! target of the plan whose model accepts a prefill is asked to continue,
//! with the original messages plus the text already sent as a trailing
//! assistant message. Only its continuation reaches the caller, so the
//! caller reads one answer with nothing repeated or missing. A stream that
//! had begun a tool call is not continued (half a call's JSON arguments
//! cannot be resumed reliably): it ends with the explicit error.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use providers::{
    ChatResponse, EventStream, FinishReason, Message, ProviderError, Role, StreamEvent, ToolCall, Usage,
    estimate_tokens,
};
use router_core::{Attempt, TargetId, Usd, WorkloadId};
use router_state::{FailureRules, Spend};

use crate::attempt::outcome_of;
use crate::decisions::DecisionId;
use crate::error::{AttemptError, RouteError, StreamInterruptedError, TimedOutError};
use crate::idempotency::Leader;
use crate::limits::Permit;
use crate::reserve::{Held, spend_of};
use crate::router::{Call, Completed, Inner};
use router_state::AttemptOutcome;

type Events = Pin<Box<dyn Stream<Item = Result<StreamEvent, RouteError>> + Send>>;

/// A routed answer as a stream of events. A successful stream ends with
/// `Done`; a broken one with one `Err` item. Dropping it cancels the
/// upstream call and settles the budget.
pub struct RoutedStream {
    events: Events,
}

impl fmt::Debug for RoutedStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoutedStream").finish_non_exhaustive()
    }
}

impl Stream for RoutedStream {
    type Item = Result<StreamEvent, RouteError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.events.as_mut().poll_next(cx)
    }
}

impl RoutedStream {
    /// A whole answer as events: its text, tool calls, usage and `Done`.
    pub(crate) fn replay(response: &ChatResponse) -> RoutedStream {
        let events: Vec<Result<StreamEvent, RouteError>> = response.stream_events().into_iter().map(Ok).collect();
        RoutedStream {
            events: Box::pin(futures::stream::iter(events)),
        }
    }

    /// A stream whose first event has arrived.
    pub(crate) fn live(live: Live) -> RoutedStream {
        let Live {
            inner,
            workload,
            target,
            label,
            decision,
            attempts,
            input_tokens,
            first,
            rest,
            held,
            idle,
            leader,
            permit,
            rescue,
        } = live;
        let state = State {
            first: Some(first),
            rest,
            idle,
            rescue,
            guard: Guard {
                inner,
                workload,
                target,
                label,
                decision,
                attempts,
                input_tokens,
                held: Some(held),
                leader,
                seen: Seen::default(),
                _permit: permit,
            },
        };
        let events = futures::stream::unfold(Some(state), |state| async move {
            let mut state = state?;
            let next = match state.first.take() {
                Some(ev) => Some(Ok(ev)),
                None => match tokio::time::timeout(state.idle, state.rest.next()).await {
                    Ok(next) => next.map(|r| r.map_err(AttemptError::Upstream)),
                    Err(_) => Some(Err(AttemptError::TimedOut(TimedOutError {
                        after: state.idle,
                        deadline: false,
                        first_token: false,
                    }))),
                },
            };
            match next {
                Some(Ok(ev)) => {
                    state.guard.seen.push(&ev);
                    if let StreamEvent::Done {
                        finish_reason,
                        skipped_events,
                        ..
                    } = ev
                    {
                        if skipped_events > 0 {
                            let g = &state.guard;
                            g.inner
                                .metrics
                                .stream_events_skipped(&g.workload, &g.label, skipped_events);
                        }
                        state.guard.finish(finish_reason).await;
                        return Some((Ok(ev), None));
                    }
                    Some((Ok(ev), Some(state)))
                }
                Some(Err(cause)) => state.broke(cause).await,
                // Adapters end with `Done` or an error item; an end without
                // either is a cut all the same.
                None => {
                    let cause = match providers::collect_stream(Box::pin(futures::stream::empty()), "").await {
                        Err(e) => AttemptError::Upstream(e),
                        Ok(_) => AttemptError::TimedOut(TimedOutError {
                            after: Duration::ZERO,
                            deadline: false,
                            first_token: false,
                        }),
                    };
                    state.broke(cause).await
                }
            }
        });
        RoutedStream {
            events: Box::pin(events),
        }
    }
}

/// What `execute` hands over once the first event has arrived.
pub(crate) struct Live {
    pub(crate) inner: Arc<Inner>,
    pub(crate) workload: String,
    pub(crate) target: TargetId,
    pub(crate) label: String,
    pub(crate) decision: DecisionId,
    pub(crate) attempts: u32,
    pub(crate) input_tokens: u64,
    pub(crate) first: StreamEvent,
    pub(crate) rest: EventStream,
    pub(crate) held: Held,
    pub(crate) idle: Duration,
    pub(crate) leader: Option<Leader<Arc<Completed>, RouteError>>,
    pub(crate) permit: Option<Permit>,
    pub(crate) rescue: Option<Box<Rescue>>,
}

/// What `stream_recovery continue` needs to continue a broken stream.
pub(crate) struct Rescue {
    pub(crate) call: Call,
    pub(crate) wid: WorkloadId,
    pub(crate) scope: Option<WorkloadId>,
    /// The plan's later attempts whose model accepts a prefill, in order.
    pub(crate) candidates: VecDeque<Attempt>,
    pub(crate) rules: FailureRules,
}

struct State {
    first: Option<StreamEvent>,
    rest: EventStream,
    idle: Duration,
    rescue: Option<Box<Rescue>>,
    guard: Guard,
}

type Step = Option<(Result<StreamEvent, RouteError>, Option<State>)>;

impl State {
    /// The upstream broke after its first event: continue the answer at the
    /// next target that can, else end with the explicit error.
    async fn broke(mut self, cause: AttemptError) -> Step {
        if self.rescue.is_none() || !self.guard.seen.tool_calls.is_empty() || self.guard.seen.text.is_empty() {
            let err = self.guard.interrupted(cause).await;
            return Some((Err(err), None));
        }
        self.guard.failed(&cause).await;
        while let Some(next) = self.continuation().await {
            if let Ok((first, rest)) = next {
                self.guard.seen.push(&first);
                self.rest = rest;
                return Some((Ok(first), Some(self)));
            }
        }
        let err = self.guard.fail(cause);
        Some((Err(err), None))
    }

    /// Tries the next candidate: `None` when none is left, `Err` when this
    /// one could not continue (the next may).
    async fn continuation(&mut self) -> Option<Result<(StreamEvent, EventStream), ()>> {
        let rescue = self.rescue.as_mut()?;
        let attempt = rescue.candidates.pop_front()?;
        let inner = Arc::clone(&self.guard.inner);
        let policy = &*inner.policy;
        let Some(adapter) = inner.registry.adapter(attempt.target) else {
            return Some(Err(()));
        };
        let admitted = match &inner.shared {
            None => inner.admit(&attempt, inner.clock.now()),
            Some(shared) => shared.admit(&inner, &attempt).await,
        };
        let Ok(permit) = admitted else {
            return Some(Err(()));
        };
        let estimate = Spend {
            tokens: attempt.estimate.tokens,
            usd: attempt.estimate.usd.unwrap_or(Usd::ZERO),
        };
        let Ok(held) = inner.reserve(rescue.wid, rescue.scope, estimate).await else {
            return Some(Err(()));
        };
        let sent = self.guard.seen.text.clone();
        let mut req = crate::execute::request_for(policy, &rescue.call, rescue.wid, &attempt, true).into_owned();
        req.messages.push(Message::text(Role::Assistant, sent.clone()));
        let first_token = attempt
            .first_token
            .unwrap_or(rescue.rules.default_first_token)
            .min(attempt.timeout.unwrap_or(rescue.rules.default_attempt_timeout));
        let api_id = &policy.target(attempt.target).api_id;
        let started = tokio::time::Instant::now();
        let opened = tokio::time::timeout(first_token, async {
            let mut s = adapter.stream(api_id, &req).await?;
            let first = s.next().await;
            Ok::<_, ProviderError>((first, s))
        })
        .await;
        let elapsed = started.elapsed();
        let label = inner.registry.label(attempt.target).to_owned();
        let failure = match opened {
            Ok(Ok((Some(Ok(first)), rest))) => {
                inner.record_outcome(
                    &self.guard.workload,
                    attempt.target,
                    AttemptOutcome::Success,
                    elapsed,
                    first_token,
                    false,
                );
                tracing::info!(target = %label, sent = sent.len(), "stream continued after a break");
                inner.metrics.stream_continued(&self.guard.workload, &label);
                self.guard
                    .switch(attempt.target, label, held, permit, estimate_tokens(&sent));
                return Some(Ok((first, rest)));
            }
            Ok(Ok((Some(Err(e)), _)) | Err(e)) => outcome_of(&e),
            Ok(Ok((None, _))) => AttemptOutcome::ServerError,
            Err(_) => AttemptOutcome::Timeout,
        };
        inner.record_outcome(
            &self.guard.workload,
            attempt.target,
            failure,
            elapsed,
            first_token,
            true,
        );
        tracing::warn!(target = %label, outcome = failure.as_str(), "could not continue the stream here");
        held.release().await;
        drop(permit);
        Some(Err(()))
    }
}

/// What the caller has been sent so far.
#[derive(Default)]
struct Seen {
    text: String,
    tool_calls: Vec<ToolCall>,
    /// The usage the current attempt reported.
    usage: Option<Usage>,
    /// Where the current attempt's text starts in `text` (past what a
    /// broken attempt sent before it was continued).
    from: usize,
}

impl Seen {
    fn push(&mut self, ev: &StreamEvent) {
        match ev {
            StreamEvent::TextDelta { text } => self.text.push_str(text),
            StreamEvent::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            } => {
                let i = *index as usize;
                if i < 1_024 {
                    while self.tool_calls.len() <= i {
                        self.tool_calls.push(ToolCall {
                            id: String::new(),
                            name: String::new(),
                            arguments: String::new(),
                        });
                    }
                    let call = &mut self.tool_calls[i];
                    if let Some(id) = id {
                        call.id.clone_from(id);
                    }
                    if let Some(name) = name {
                        call.name.clone_from(name);
                    }
                    call.arguments.push_str(arguments);
                }
            }
            StreamEvent::Usage(u) => self.usage = Some(*u),
            StreamEvent::Done { .. } => {}
        }
    }

    /// The current attempt's reported usage, else an estimate from the
    /// prompt and the output it sent.
    fn usage(&self, input_tokens: u64) -> Usage {
        self.usage.unwrap_or_else(|| Usage {
            input_tokens,
            output_tokens: estimate_tokens(self.text.get(self.from..).unwrap_or_default()).saturating_add(
                self.tool_calls
                    .iter()
                    .map(|c| estimate_tokens(&c.name).saturating_add(estimate_tokens(&c.arguments)))
                    .sum(),
            ),
            cached_tokens: 0,
        })
    }
}

/// Owns the reservation (and the idempotency lead) of a live stream, and
/// its provider's concurrency permit: the stream counts as a call in flight
/// until it ends or is dropped.
struct Guard {
    inner: Arc<Inner>,
    workload: String,
    target: TargetId,
    label: String,
    decision: DecisionId,
    attempts: u32,
    input_tokens: u64,
    held: Option<Held>,
    leader: Option<Leader<Arc<Completed>, RouteError>>,
    seen: Seen,
    _permit: Option<Permit>,
}

impl Guard {
    /// Hands the stream to a continuing attempt: its target, reservation
    /// and permit; its prompt carries the text already sent.
    fn switch(&mut self, target: TargetId, label: String, held: Held, permit: Option<Permit>, prefill_tokens: u64) {
        self.target = target;
        self.label = label;
        self.held = Some(held);
        self._permit = permit;
        self.attempts = self.attempts.saturating_add(1);
        self.input_tokens = self.input_tokens.saturating_add(prefill_tokens);
        self.seen.usage = None;
        self.seen.from = self.seen.text.len();
    }

    async fn settle(&mut self) {
        let usage = self.seen.usage(self.input_tokens);
        if let Some(held) = self.held.take() {
            let spend = spend_of(&self.inner.policy, self.target, usage);
            held.commit(&self.inner, &self.workload, spend, usage).await;
        }
    }

    /// A complete stream: count the attempt a success, commit, and store
    /// the answer for idempotency.
    async fn finish(&mut self, finish_reason: FinishReason) {
        self.inner
            .metrics
            .attempt(&self.workload, &self.label, AttemptOutcome::Success);
        self.settle().await;
        if let Some(leader) = self.leader.take() {
            let seen = std::mem::take(&mut self.seen);
            let usage = seen.usage(self.input_tokens);
            leader.finish(Ok(Arc::new(Completed {
                response: ChatResponse {
                    id: None,
                    model: self.inner.policy.target(self.target).api_id.clone(),
                    content: seen.text,
                    tool_calls: seen.tool_calls,
                    finish_reason,
                    usage,
                },
                target: self.label.clone(),
                attempts: self.attempts,
                decision: self.decision,
            })));
        }
    }

    /// A broken stream: commit what was seen, count it against the target,
    /// and tell the caller.
    async fn interrupted(&mut self, cause: AttemptError) -> RouteError {
        self.failed(&cause).await;
        self.fail(cause)
    }

    /// The current attempt broke: count it against its target and commit
    /// what it sent.
    async fn failed(&mut self, cause: &AttemptError) {
        let outcome = match cause {
            AttemptError::Upstream(e) => outcome_of(e),
            AttemptError::TimedOut(_)
            | AttemptError::NotSent(_)
            | AttemptError::Budget(_)
            | AttemptError::QualityCheck(_) => AttemptOutcome::Timeout,
        };
        {
            let now = self.inner.clock.now();
            let change = self.inner.books().health.record(self.target, outcome, now);
            if let Some(shared) = &self.inner.shared {
                shared.publish(&self.inner, self.target, change, now);
            }
        }
        // The attempt's failure, under its own outcome, in
        // `routec_attempts_total`: a stream that broke is not a success.
        self.inner.metrics.attempt(&self.workload, &self.label, outcome);
        tracing::warn!(target = %self.label, error = %cause, "stream broke after its first event");
        self.settle().await;
    }

    /// Ends the stream with the explicit error.
    fn fail(&mut self, cause: AttemptError) -> RouteError {
        let err = RouteError::StreamInterrupted(Box::new(StreamInterruptedError {
            decision: self.decision,
            target: self.label.clone(),
            cause,
        }));
        self.inner.metrics.error(err.code());
        if let Some(leader) = self.leader.take() {
            leader.finish(Err(err.clone()));
        }
        err
    }
}

impl Drop for Guard {
    /// A stream dropped mid-way: the upstream call is cancelled with it;
    /// what was seen is committed in the background (see `Router::settled`).
    /// An unfinished idempotency lead passes to a waiting caller.
    fn drop(&mut self) {
        let Some(held) = self.held.take() else { return };
        let usage = self.seen.usage(self.input_tokens);
        let spend = spend_of(&self.inner.policy, self.target, usage);
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            // No runtime left: the reservation's own drop releases it.
            return;
        };
        let inner = Arc::clone(&self.inner);
        let workload = std::mem::take(&mut self.workload);
        inner.pending.start();
        handle.spawn(async move {
            held.commit(&inner, &workload, spend, usage).await;
            inner.pending.finish();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_replayed_answer_streams_text_tools_usage_and_done() {
        let response = ChatResponse {
            id: None,
            model: "m".into(),
            content: "hi".into(),
            tool_calls: vec![ToolCall {
                id: "c1".into(),
                name: "f".into(),
                arguments: "{}".into(),
            }],
            finish_reason: FinishReason::ToolCalls,
            usage: Usage {
                input_tokens: 3,
                output_tokens: 4,
                cached_tokens: 0,
            },
        };
        let events: Vec<StreamEvent> = RoutedStream::replay(&response)
            .map(|e| e.map_err(|e| e.to_string()))
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(events.len(), 4);
        let mut seen = Seen::default();
        for ev in &events {
            seen.push(ev);
        }
        assert_eq!(seen.text, "hi");
        assert_eq!(seen.tool_calls, response.tool_calls);
        assert_eq!(seen.usage(99), response.usage);
        assert_eq!(
            events.last(),
            Some(&StreamEvent::Done {
                finish_reason: FinishReason::ToolCalls,
                skipped_events: 0
            })
        );
    }

    #[test]
    fn without_reported_usage_the_estimate_counts_the_prompt_and_the_text_seen() {
        let mut seen = Seen::default();
        seen.push(&StreamEvent::TextDelta {
            text: "one two three".into(),
        });
        let usage = seen.usage(10);
        assert_eq!(usage.input_tokens, 10);
        assert!(usage.output_tokens >= 3, "{usage:?}");
        assert_eq!(Seen::default().usage(7).input_tokens, 7, "never zero spend");
    }
}
