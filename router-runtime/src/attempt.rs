//! One attempt's failure, read the way the attempt machine reads it.
//!
//! Why one place: the adapters classify wire errors into an
//! [`ErrorClass`]; this module is the only one that turns a class into the
//! machine's [`Failure`] (which then decides retries, waits and fallback,
//! for the runtime and the simulator alike), with no catch-all arm, so a
//! new class must be placed on purpose.

use providers::{ErrorClass, ProviderError};
use router_core::{Attempt, Policy};
use router_state::{AttemptOutcome, Failure, TimeoutKind};

use crate::error::NotSent;

/// The machine's reading of a provider error.
pub(crate) fn failure_of(e: &ProviderError) -> Failure {
    match e.class() {
        ErrorClass::RateLimited => Failure::RateLimited {
            retry_after: e.retry_after(),
        },
        ErrorClass::Overloaded => Failure::Overloaded {
            retry_after: e.retry_after(),
        },
        ErrorClass::ServerError => Failure::ServerError,
        // A garbage body comes from a live but misbehaving server.
        ErrorClass::MalformedResponse => Failure::MalformedResponse,
        ErrorClass::ResponseTooLarge => Failure::ResponseTooLarge,
        ErrorClass::Timeout(kind) => Failure::Timeout(match kind {
            providers::TimeoutKind::Connect => TimeoutKind::Connect,
            providers::TimeoutKind::FirstByte => TimeoutKind::FirstToken,
            providers::TimeoutKind::Idle => TimeoutKind::Idle,
            providers::TimeoutKind::Total => TimeoutKind::Total,
        }),
        ErrorClass::Connection => Failure::Connection,
        ErrorClass::ContextLengthExceeded => Failure::ContextLength,
        ErrorClass::Auth => Failure::Auth,
        ErrorClass::BadRequest => Failure::BadRequest,
        ErrorClass::ContentPolicy => Failure::ContentPolicy,
    }
}

/// How a provider error counts for health, latency and metrics.
pub(crate) fn outcome_of(e: &ProviderError) -> AttemptOutcome {
    failure_of(e).outcome()
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
