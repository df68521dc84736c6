//! The attempt machine: every rule for running one call's plan, with no
//! I/O, no clock and no sleeping.
//!
//! Why one machine: the runtime (real adapters, tokio time) and the
//! simulator (sampled outcomes, a virtual clock) must run a call's attempts
//! the same way, or `routec simulate` predicts something production does
//! not do. Both drive this machine: it says what to do next ([`Action`]),
//! the driver does it and reports back what happened with `now`. Each
//! action carries the clause that decided it, so a driver can record why.
//!
//! The rules, per attempt in plan order:
//! - the driver first asks whether the attempt may go at all (data class,
//!   adapter, budget, health, provider limits); one that may not is
//!   skipped and the next is tried at once;
//! - a dispatch is bounded by the attempt's timeout, cut to what is left
//!   of the workload's deadline;
//! - after a failure, the same target is tried again only for a class that
//!   is retried (see [`Failure::retried`]), within the attempt's `retry N`,
//!   when the retry budget pays and the wait ends before the deadline. The
//!   wait is the provider's `Retry-After` when it gave one no longer than
//!   [`FailureRules::retry_after_wait_max`], else a jittered backoff. A
//!   silent or timed-out upstream, a 429 with a long or no `Retry-After`,
//!   an oversized answer and client errors are never retried on the same
//!   target;
//! - then the plan's triggers decide: advance to the next attempt, stop,
//!   or, for a request no provider would take, reject.

use std::time::Duration;

use router_core::{Attempt, Capability, DataClass, Policy, Trigger, node_text};

use crate::clock::Millis;
use crate::health::AttemptOutcome;
use crate::splitmix64;

/// Which of an attempt's timeouts fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeoutKind {
    /// The connection was not made in time.
    Connect,
    /// Connected, but no first token (no first byte of a whole answer).
    FirstToken,
    /// A stream went quiet between two events.
    Idle,
    /// The attempt as a whole ran out of time.
    Total,
}

/// How a dispatched attempt failed, in the terms the policy's rules use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// HTTP 429, with the provider's `Retry-After` if it gave one.
    RateLimited {
        /// The parsed `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// HTTP 503 / 529, with the provider's `Retry-After` if it gave one.
    Overloaded {
        /// The parsed `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// Any other 5xx.
    ServerError,
    /// An answer that could not be understood (garbage, cut short).
    MalformedResponse,
    /// An answer larger than the body cap: fetching it again costs as much.
    ResponseTooLarge,
    /// One of the attempt's timeouts fired.
    Timeout(TimeoutKind),
    /// The connection could not be made or broke before an answer.
    Connection,
    /// The prompt does not fit the model's window.
    ContextLength,
    /// The key was refused: another provider may still take the call.
    Auth,
    /// The request itself was refused (400, 404, 422).
    BadRequest,
    /// A content-filter refusal.
    ContentPolicy,
}

impl Failure {
    /// The policy trigger it is, for a chain's `on …` list.
    pub const fn trigger(self) -> Option<Trigger> {
        match self {
            Failure::RateLimited { .. } => Some(Trigger::RateLimited),
            Failure::Overloaded { .. } => Some(Trigger::Overloaded),
            Failure::ServerError | Failure::MalformedResponse | Failure::ResponseTooLarge => Some(Trigger::ServerError),
            Failure::Timeout(_) => Some(Trigger::Timeout),
            Failure::Connection => Some(Trigger::ConnectionError),
            Failure::ContextLength => Some(Trigger::ContextLength),
            Failure::Auth | Failure::BadRequest | Failure::ContentPolicy => None,
        }
    }

    /// How it counts for health, latency and metrics.
    pub const fn outcome(self) -> AttemptOutcome {
        match self {
            Failure::RateLimited { retry_after } => AttemptOutcome::RateLimited { retry_after },
            Failure::Overloaded { .. } => AttemptOutcome::Overloaded,
            Failure::ServerError | Failure::MalformedResponse | Failure::ResponseTooLarge => {
                AttemptOutcome::ServerError
            }
            Failure::Timeout(_) => AttemptOutcome::Timeout,
            Failure::Connection => AttemptOutcome::ConnectionError,
            Failure::ContextLength => AttemptOutcome::ContextLength,
            Failure::Auth | Failure::BadRequest | Failure::ContentPolicy => AttemptOutcome::ClientError,
        }
    }

    /// Whether trying the same target again can help, and after what, when
    /// the attempt's rules allow retries for this class. `named`: the chain
    /// named the class in its `retry` clause (`retry timeout 1`), which
    /// opts in classes not retried by default.
    ///
    /// By default a transient server-side failure is retried after a
    /// backoff; a 429 or 503 only when the provider said how long to wait
    /// and that wait is at most `retry_after_wait` (a longer one cools the
    /// target down). Timeouts are not: a silent upstream is usually still
    /// silent, and waiting for it twice costs the caller twice the timeout.
    /// An oversized answer, a prompt too long and refusals never are.
    pub fn retried(self, retry_after_wait: Duration, named: bool, retry_timeouts: bool) -> Option<RetryWait> {
        let short = |after: Option<Duration>| after.filter(|d| *d <= retry_after_wait);
        match self {
            Failure::RateLimited { retry_after } | Failure::Overloaded { retry_after } => match retry_after {
                Some(d) => short(Some(d)).map(RetryWait::RetryAfter),
                None if named || matches!(self, Failure::Overloaded { .. }) => Some(RetryWait::Backoff),
                None => None,
            },
            Failure::ServerError | Failure::MalformedResponse | Failure::Connection => Some(RetryWait::Backoff),
            Failure::Timeout(_) if named || retry_timeouts => Some(RetryWait::Backoff),
            Failure::Timeout(_)
            | Failure::ResponseTooLarge
            | Failure::ContextLength
            | Failure::Auth
            | Failure::BadRequest
            | Failure::ContentPolicy => None,
        }
    }

    /// Whether another provider could take the call after this failure,
    /// when the policy's triggers do not name it (auth: yes; a refused
    /// request or a content-filter refusal: no).
    pub const fn another_provider_can_help(self) -> bool {
        match self {
            Failure::Auth => true,
            Failure::RateLimited { .. }
            | Failure::Overloaded { .. }
            | Failure::ServerError
            | Failure::MalformedResponse
            | Failure::ResponseTooLarge
            | Failure::Timeout(_)
            | Failure::Connection
            | Failure::ContextLength => true,
            Failure::BadRequest | Failure::ContentPolicy => false,
        }
    }
}

/// What a retry on the same target waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryWait {
    /// The provider's `Retry-After`.
    RetryAfter(Duration),
    /// A jittered exponential backoff.
    Backoff,
}

/// The runtime's failure settings: what the policy does not say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureRules {
    /// An attempt's total timeout when the plan gives none.
    pub default_attempt_timeout: Duration,
    /// The wait for a stream's first event when the plan gives none.
    pub default_first_token: Duration,
    /// The longest gap between two stream events when the plan gives none.
    pub default_idle: Duration,
    /// The first retry's backoff; each further retry doubles it.
    pub backoff_base: Duration,
    /// The longest backoff.
    pub backoff_max: Duration,
    /// A `Retry-After` up to this long is waited out and the same target
    /// retried; a longer one cools the target down and the plan moves on.
    pub retry_after_wait_max: Duration,
    /// Whether a timed-out attempt is retried on the same target (off: a
    /// silent upstream is left for the next target at once).
    pub retry_timeouts: bool,
}

impl Default for FailureRules {
    fn default() -> Self {
        FailureRules {
            // A whole answer's headers usually arrive only when the answer
            // is complete, so its bound is the total; a stream that has not
            // started after 30 s is better left for the next target.
            default_attempt_timeout: router_core::DEFAULT_ATTEMPT_TIMEOUT,
            default_first_token: Duration::from_secs(30),
            default_idle: Duration::from_secs(30),
            backoff_base: Duration::from_millis(100),
            backoff_max: router_core::DEFAULT_BACKOFF_MAX,
            retry_after_wait_max: router_core::DEFAULT_RETRY_AFTER_WAIT,
            retry_timeouts: false,
        }
    }
}

/// The pause before retry `n` (1 for the first): exponential from `base`,
/// capped at `max`, with "equal jitter" (half fixed, half drawn from the
/// call's seed) so retries of many calls spread out, yet a fixed seed sees
/// the same pauses every run.
pub fn backoff(base: Duration, max: Duration, n: u8, seed: u64) -> Duration {
    let exp = base
        .saturating_mul(1u32 << u32::from(n.saturating_sub(1)).min(16))
        .min(max);
    let half = exp / 2;
    let r = splitmix64(seed ^ u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let frac = (r >> 11) as f64 / (1u64 << 53) as f64;
    half + half.mul_f64(frac)
}

/// What the driver does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Ask whether attempt `index` may go (data class, adapter, budget,
    /// health, limits), then dispatch it bounded by `timeout`, and report
    /// with [`CallMachine::not_sent`], [`CallMachine::answered`] or
    /// [`CallMachine::failed`]. `by_deadline`: the workload's deadline, not
    /// the attempt's own timeout, set `timeout`.
    Dispatch {
        /// The attempt's place in the plan.
        index: usize,
        /// 0 for the first try of this attempt, then 1, 2, …
        retry: u8,
        /// The most the dispatch may take.
        timeout: Duration,
        /// The most a stream may take to its first event (never above
        /// `timeout`).
        first_token: Duration,
        /// The longest gap between two stream events.
        idle: Duration,
        /// Whether the deadline cut the timeout.
        by_deadline: bool,
    },
    /// Wait until `until`, then call [`CallMachine::resume`]; the same
    /// attempt is retried.
    Wait {
        /// When to resume.
        until: Millis,
        /// Why it waits.
        clause: String,
    },
    /// The call is over.
    Finish(Ending),
}

/// How the call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Attempt `index` answered.
    Answered {
        /// The attempt that answered.
        index: usize,
    },
    /// Every attempt was tried or skipped.
    Exhausted,
    /// A failure the plan does not advance on ended the call.
    Stopped {
        /// The attempt whose failure ended it.
        index: usize,
    },
    /// The request itself was refused; no provider is tried again.
    Rejected {
        /// The attempt whose failure ended it.
        index: usize,
    },
    /// The workload's deadline passed.
    DeadlineExceeded,
}

/// What the machine decided about a failure, for the driver's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The next action.
    pub action: Action,
    /// The clause that decided it, in the policy's words.
    pub clause: String,
}

/// One call's attempts in progress.
#[derive(Debug)]
pub struct CallMachine<'p> {
    policy: &'p Policy,
    attempts: &'p [Attempt],
    rules: FailureRules,
    seed: u64,
    deadline: Option<Millis>,
    index: usize,
    retry: u8,
    dispatched: u32,
}

impl<'p> CallMachine<'p> {
    /// A machine for `attempts` (a plan of `policy`, in order), started at `now`,
    /// with the workload's `latency` deadline if it has one and the call's
    /// seed for jitter.
    pub fn new(
        policy: &'p Policy,
        attempts: &'p [Attempt],
        rules: FailureRules,
        now: Millis,
        deadline: Option<Duration>,
        seed: u64,
    ) -> Self {
        CallMachine {
            policy,
            attempts,
            rules,
            seed,
            deadline: deadline.map(|d| now.after(d)),
            index: 0,
            retry: 0,
            dispatched: 0,
        }
    }

    /// The first action.
    pub fn start(&mut self, now: Millis) -> Action {
        self.next_dispatch(now)
    }

    /// Attempts dispatched so far, retries included.
    pub fn dispatched(&self) -> u32 {
        self.dispatched
    }

    /// The attempt the last [`Action::Dispatch`] named.
    pub fn current(&self) -> Option<&'p Attempt> {
        self.attempts.get(self.index)
    }

    /// Whether the last attempt of the plan is the current one.
    pub fn is_last(&self) -> bool {
        self.index + 1 >= self.attempts.len()
    }

    /// The attempt could not be sent (skipped before dispatch): the next
    /// attempt goes at once.
    pub fn not_sent(&mut self, now: Millis) -> Action {
        self.advance();
        self.next_dispatch(now)
    }

    /// The dispatch was made (it counts whether it answered or failed).
    pub fn sent(&mut self) {
        self.dispatched = self.dispatched.saturating_add(1);
    }

    /// The attempt answered (and passed its check, if it has one).
    pub fn answered(&mut self) -> Action {
        Action::Finish(Ending::Answered { index: self.index })
    }

    /// The attempt's answer failed its quality check: escalate to the next.
    pub fn escalate(&mut self, now: Millis) -> Action {
        self.advance();
        self.next_dispatch(now)
    }

    /// The dispatch failed with `failure` at `now`; `by_deadline` when it
    /// was the deadline-cut timeout that fired. `pay` is asked once, when a
    /// retry on the same target would be made, and says whether the retry
    /// budget (a [`crate::RetryBudget`], on the driver's clock) grants it.
    pub fn failed(&mut self, now: Millis, failure: Failure, by_deadline: bool, pay: impl FnOnce() -> bool) -> Verdict {
        let index = self.index;
        let Some(attempt) = self.attempts.get(index) else {
            return Verdict {
                action: Action::Finish(Ending::Exhausted),
                clause: "no attempt was left".to_owned(),
            };
        };
        if by_deadline {
            return Verdict {
                action: Action::Finish(Ending::DeadlineExceeded),
                clause: "stopped: the call's deadline passed".to_owned(),
            };
        }
        let class = failure.trigger();
        let named = class.and_then(|c| attempt.retry_on.get(c));
        let allowed = named.unwrap_or(attempt.retries);
        let wait_max = self.retry_after_wait(attempt);
        if self.retry < allowed
            && let Some(wait) = failure.retried(wait_max, named.is_some(), self.rules.retry_timeouts)
        {
            let n = self.retry + 1;
            let pause = match wait {
                RetryWait::RetryAfter(d) => d,
                RetryWait::Backoff => backoff(self.rules.backoff_base, self.rules.backoff_max, n, self.seed),
            };
            let until = now.after(pause);
            let fits = self.deadline.is_none_or(|d| until < d);
            if fits && pay() {
                self.retry = n;
                let why = match wait {
                    RetryWait::RetryAfter(d) => format!("waited out `Retry-After: {}ms`", d.as_millis()),
                    RetryWait::Backoff => format!("retried after {}ms", pause.as_millis()),
                };
                let rule = match (named, class) {
                    (Some(k), Some(c)) => format!("`retry {c} {k}`"),
                    _ => format!("`retry {}`", attempt.retries),
                };
                let clause = format!("{why}: {rule} of {}", placed(self.policy, attempt));
                return Verdict {
                    action: Action::Wait {
                        until,
                        clause: clause.clone(),
                    },
                    clause,
                };
            }
        }
        let last = self.is_last();
        let at = placed(self.policy, attempt);
        match failure.trigger() {
            Some(t) if attempt.advance_on.has(t) => {
                let clause = if last {
                    format!("advanced on `{t}` (placed by {at}), but no attempt was left")
                } else {
                    format!("advanced: `{t}` is among the triggers after this attempt (placed by {at})")
                };
                self.advance();
                Verdict {
                    action: self.next_dispatch(now),
                    clause,
                }
            }
            Some(t) => {
                let on: Vec<&str> = attempt.advance_on.iter().map(Trigger::as_str).collect();
                let on = if on.is_empty() {
                    "nothing".to_owned()
                } else {
                    on.join(", ")
                };
                Verdict {
                    action: Action::Finish(Ending::Stopped { index }),
                    clause: format!(
                        "stopped: `{t}` is not among the triggers after this attempt (`on {on}`, placed by {at})"
                    ),
                }
            }
            None if failure.another_provider_can_help() => {
                let clause = if last {
                    format!("another provider could help, but no attempt was left (placed by {at})")
                } else {
                    format!("advanced: another provider can help with this error (placed by {at})")
                };
                self.advance();
                Verdict {
                    action: self.next_dispatch(now),
                    clause,
                }
            }
            None => Verdict {
                action: Action::Finish(Ending::Rejected { index }),
                clause: "stopped: the request itself was rejected, so no provider is tried again".to_owned(),
            },
        }
    }

    /// The wait of an [`Action::Wait`] is over: dispatch the same attempt again.
    pub fn resume(&mut self, now: Millis) -> Action {
        self.next_dispatch(now)
    }

    /// The longest `Retry-After` waited out on the same target: the
    /// provider's `retry_after_wait`, else the policy's default, else the
    /// runtime's.
    fn retry_after_wait(&self, attempt: &Attempt) -> Duration {
        let provider = self.policy.providers.get(attempt.provider.0 as usize);
        provider
            .and_then(|p| p.failure.retry_after_wait)
            .or(self.policy.defaults.failure.retry_after_wait)
            .unwrap_or(self.rules.retry_after_wait_max)
    }

    fn advance(&mut self) {
        self.index += 1;
        self.retry = 0;
    }

    fn next_dispatch(&mut self, now: Millis) -> Action {
        let Some(attempt) = self.attempts.get(self.index) else {
            return Action::Finish(Ending::Exhausted);
        };
        let own = attempt.timeout.unwrap_or(self.rules.default_attempt_timeout);
        let first_token = attempt.first_token.unwrap_or(self.rules.default_first_token);
        let idle = attempt.idle.unwrap_or(self.rules.default_idle);
        let (timeout, by_deadline) = match self.deadline {
            None => (own, false),
            Some(d) => {
                let left = d.since(now);
                if left.is_zero() {
                    return Action::Finish(Ending::DeadlineExceeded);
                }
                if left < own { (left, true) } else { (own, false) }
            }
        };
        Action::Dispatch {
            index: self.index,
            retry: self.retry,
            timeout,
            first_token: first_token.min(timeout),
            idle,
            by_deadline,
        }
    }
}

/// `stream_recovery continue`: the attempts after `index` that may continue
/// a stream broken at attempt `index`, in plan order: their model accepts a
/// prefill and their provider may receive data of `class`. The runtime and
/// the simulator both ask here; each candidate still passes the usual
/// admission (limits, health, budget) when its turn comes.
pub fn continuation_candidates<'a>(
    policy: &'a Policy,
    attempts: &'a [Attempt],
    index: usize,
    class: DataClass,
) -> impl Iterator<Item = &'a Attempt> + 'a {
    attempts.iter().skip(index + 1).filter(move |a| {
        policy.target(a.target).capabilities.has(Capability::Prefill) && policy.provider(a.provider).max_data >= class
    })
}

/// Where an attempt sits in the policy, for clause texts.
pub fn placed(policy: &Policy, attempt: &Attempt) -> String {
    match attempt.placed_by {
        Some(n) => node_text(policy, n),
        None => "the workload's route".to_owned(),
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
