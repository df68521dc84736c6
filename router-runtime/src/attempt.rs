//! One attempt's failure, read the way the policy and the health book
//! read it: which outcome it was, whether the plan moves on, whether the
//! same target may be tried again, and how long to wait first.
//!
//! Why one place: the adapters classify wire errors into an
//! [`ErrorClass`]; this module is the only one that turns a class into
//! a decision, with no catch-all arm, so a new class must be placed on
//! purpose.

use std::time::Duration;

use providers::{ErrorClass, ProviderError};
use router_core::{Attempt, Policy, Trigger, node_text};

use crate::error::NotSent;
use crate::health::AttemptOutcome;

/// How a provider error counts for health, latency and metrics.
pub(crate) fn outcome_of(e: &ProviderError) -> AttemptOutcome {
    match e.class() {
        ErrorClass::RateLimited => AttemptOutcome::RateLimited {
            retry_after: e.retry_after(),
        },
        ErrorClass::Overloaded => AttemptOutcome::Overloaded,
        // A garbage body comes from a live but misbehaving server.
        ErrorClass::ServerError | ErrorClass::MalformedResponse | ErrorClass::ResponseTooLarge => {
            AttemptOutcome::ServerError
        }
        ErrorClass::Timeout(_) => AttemptOutcome::Timeout,
        ErrorClass::Connection => AttemptOutcome::ConnectionError,
        ErrorClass::ContextLengthExceeded => AttemptOutcome::ContextLength,
        ErrorClass::Auth | ErrorClass::BadRequest | ErrorClass::ContentPolicy => AttemptOutcome::ClientError,
    }
}

/// What the plan does after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Move on to the next attempt: the trigger is among the attempt's
    /// `advance_on`, or (`None`) the class is outside the policy's trigger
    /// vocabulary and says another provider can help (auth).
    Advance(Option<Trigger>),
    /// The trigger is not among the attempt's `advance_on`: the call ends.
    Stop(Trigger),
    /// The request itself was rejected (400, content policy): no provider
    /// would take it, so the call ends with the upstream's answer.
    Reject,
}

/// The trigger a provider error class is, for the policy's `on …` list.
pub(crate) fn trigger_of(class: ErrorClass) -> Option<Trigger> {
    match class {
        ErrorClass::RateLimited => Some(Trigger::RateLimited),
        ErrorClass::Overloaded => Some(Trigger::Overloaded),
        ErrorClass::ServerError | ErrorClass::MalformedResponse | ErrorClass::ResponseTooLarge => {
            Some(Trigger::ServerError)
        }
        ErrorClass::Timeout(_) => Some(Trigger::Timeout),
        ErrorClass::Connection => Some(Trigger::ConnectionError),
        ErrorClass::ContextLengthExceeded => Some(Trigger::ContextLength),
        ErrorClass::Auth | ErrorClass::BadRequest | ErrorClass::ContentPolicy => None,
    }
}

/// Whether `attempt` advances after a failure of `class` (a timeout of the
/// runtime's own is `ErrorClass::Timeout`).
pub(crate) fn next_after(class: ErrorClass, attempt: &Attempt) -> Next {
    match trigger_of(class) {
        Some(t) if attempt.advance_on.has(t) => Next::Advance(Some(t)),
        Some(t) => Next::Stop(t),
        None if class.can_fallback() => Next::Advance(None),
        None => Next::Reject,
    }
}

/// Whether the same target may be tried again after `class`: transient
/// failures only, and never a 429 (its provider is cooling down) or a
/// client error.
pub(crate) fn may_retry(class: ErrorClass) -> bool {
    class.can_retry() && class != ErrorClass::RateLimited
}

/// The pause before retry `n` (1 for the first): exponential from `base`,
/// capped at `max`, with "equal jitter" (half fixed, half drawn from the
/// request's seed) so retries of many calls spread out, yet a test with a
/// fixed seed sees the same pauses every run.
pub(crate) fn backoff(base: Duration, max: Duration, n: u8, seed: u64) -> Duration {
    let exp = base
        .saturating_mul(1u32 << u32::from(n.saturating_sub(1)).min(16))
        .min(max);
    let half = exp / 2;
    let r = splitmix64(seed ^ u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let frac = (r >> 11) as f64 / (1u64 << 53) as f64;
    half + half.mul_f64(frac)
}

/// splitmix64's output function: a well-mixed 64-bit value from any input.
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Where the attempt sits in the policy, for clause texts.
pub(crate) fn placed(policy: &Policy, attempt: &Attempt) -> String {
    match attempt.placed_by {
        Some(n) => node_text(policy, n),
        None => "the workload's route".to_owned(),
    }
}

/// The clause text for an attempt skipped before it was sent: at one of
/// its provider's limits, or out of health since the plan was made.
pub(crate) fn skip_clause(policy: &Policy, attempt: &Attempt, reason: &NotSent, last: bool) -> String {
    match reason {
        NotSent::LocalLimit { limit } => {
            let then = if last {
                "no attempt was left"
            } else {
                "the next attempt goes at once"
            };
            format!(
                "skipped: provider `{}` is at its `limits {}`; {then}",
                policy.provider(attempt.provider).name,
                limit.clause()
            )
        }
        NotSent::Ejected { .. }
        | NotSent::CoolingDown { .. }
        | NotSent::DataClass { .. }
        | NotSent::Unavailable { .. } => {
            format!("skipped: {} since the plan was made", reason.code())
        }
    }
}

/// The clause text for what followed a failure.
pub(crate) fn clause_for(policy: &Policy, attempt: &Attempt, next: Next, last: bool) -> String {
    let at = placed(policy, attempt);
    match next {
        Next::Advance(Some(t)) if last => {
            format!("advanced on `{t}` (placed by {at}), but no attempt was left")
        }
        Next::Advance(Some(t)) => format!("advanced: `{t}` is among the triggers after this attempt (placed by {at})"),
        Next::Advance(None) if last => format!("another provider could help, but no attempt was left (placed by {at})"),
        Next::Advance(None) => format!("advanced: another provider can help with this error (placed by {at})"),
        Next::Stop(t) => {
            let on: Vec<&str> = attempt.advance_on.iter().map(Trigger::as_str).collect();
            let on = if on.is_empty() {
                "nothing".to_owned()
            } else {
                on.join(", ")
            };
            format!("stopped: `{t}` is not among the triggers after this attempt (`on {on}`, placed by {at})")
        }
        Next::Reject => "stopped: the request itself was rejected, so no provider is tried again".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use providers::TimeoutKind;
    use router_core::{Estimate, NodeId, ProviderId, TargetId, Triggers};

    use super::*;

    fn attempt(advance_on: Triggers) -> Attempt {
        Attempt {
            target: TargetId(0),
            provider: ProviderId(0),
            node: NodeId(0),
            placed_by: None,
            timeout: None,
            advance_on,
            allow_repeat: false,
            retries: 0,
            check: None,
            estimate: Estimate::default(),
            candidate: 0,
        }
    }

    #[test]
    fn the_plan_s_triggers_decide_and_client_errors_stop() {
        let a = attempt(Triggers::NONE.with(Trigger::RateLimited));
        assert_eq!(
            next_after(ErrorClass::RateLimited, &a),
            Next::Advance(Some(Trigger::RateLimited))
        );
        assert_eq!(
            next_after(ErrorClass::ServerError, &a),
            Next::Stop(Trigger::ServerError)
        );
        assert_eq!(next_after(ErrorClass::BadRequest, &a), Next::Reject);
        assert_eq!(next_after(ErrorClass::ContentPolicy, &a), Next::Reject);
        assert_eq!(next_after(ErrorClass::Auth, &a), Next::Advance(None));
        let all = attempt(Triggers::TRANSIENT);
        assert_eq!(
            next_after(ErrorClass::MalformedResponse, &all),
            Next::Advance(Some(Trigger::ServerError))
        );
        assert_eq!(
            next_after(ErrorClass::Timeout(TimeoutKind::Idle), &all),
            Next::Advance(Some(Trigger::Timeout))
        );
        assert_eq!(
            next_after(ErrorClass::ContextLengthExceeded, &all),
            Next::Stop(Trigger::ContextLength),
            "a bigger model is a policy choice"
        );
    }

    #[test]
    fn only_transient_server_side_failures_are_retried() {
        assert!(may_retry(ErrorClass::ServerError));
        assert!(may_retry(ErrorClass::Timeout(TimeoutKind::Total)));
        assert!(!may_retry(ErrorClass::RateLimited));
        assert!(!may_retry(ErrorClass::BadRequest));
        assert!(!may_retry(ErrorClass::Auth));
        assert!(!may_retry(ErrorClass::ContextLengthExceeded));
    }

    #[test]
    fn backoff_grows_is_capped_and_is_deterministic_per_seed() {
        let (base, max) = (Duration::from_millis(100), Duration::from_secs(1));
        for n in 1..=8u8 {
            let d = backoff(base, max, n, 42);
            let exp = (base * (1 << (n - 1))).min(max);
            assert!(
                d >= exp / 2 && d <= exp,
                "retry {n}: {d:?} outside [{:?}, {exp:?}]",
                exp / 2
            );
            assert_eq!(d, backoff(base, max, n, 42));
        }
        assert_ne!(backoff(base, max, 1, 1), backoff(base, max, 1, 2));
    }

    #[test]
    fn clauses_name_the_trigger_and_the_triggers_that_were_allowed() {
        let policy = crate::testkit::policy(&[("w", router_core::Budget::default())]);
        let text = clause_for(
            &policy,
            &attempt(Triggers::NONE.with(Trigger::RateLimited)),
            Next::Stop(Trigger::ServerError),
            false,
        );
        assert_eq!(
            text,
            "stopped: `server_error` is not among the triggers after this attempt (`on rate_limited`, placed by the workload's route)"
        );
    }
}
