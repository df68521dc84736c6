//! How each target behaves in the simulation: the policy's `simulate` line
//! (the model's, else its provider's) turned into the providers crate's
//! [`providers::SimProfile`], whose `sample` decides each attempt.

use std::time::Duration;

use providers::{ErrorClass, SimProfile};
use router_core::{Policy, TargetId};

/// Median latency assumed for a target whose policy has no `simulate` line.
pub const DEFAULT_P50: Duration = Duration::from_millis(800);
/// 95th-percentile latency assumed for a target with no `simulate` line.
pub const DEFAULT_P95: Duration = Duration::from_secs(2);

/// The `Retry-After` a simulated 429 carries, so the provider cools down
/// for this long in the health book.
pub const SIM_RETRY_AFTER: Duration = Duration::from_secs(1);

/// The profile of every target of `policy`, indexed by target id, and
/// whether each came from the policy (`false`: the documented default).
pub(crate) fn profiles(policy: &Policy) -> Vec<(SimProfile, bool)> {
    (0..policy.targets.len())
        .map(|i| {
            let id = TargetId(i as u32);
            let declared = policy.target(id).simulate.or(policy.provider_of(id).simulate);
            let mut p = SimProfile::with_latency(DEFAULT_P50, DEFAULT_P95);
            p.retry_after = SIM_RETRY_AFTER;
            // The answer's length comes from the traffic line, not the profile.
            p.error_class = ErrorClass::ServerError;
            if let Some(s) = declared {
                p.p50 = s.latency_p50;
                p.p95 = s.latency_p95.max(s.latency_p50);
                p.error_bp = u32::from(s.error_bp);
                p.rate_limit_bp = u32::from(s.rate_limit_bp);
                p.stream_break_bp = u32::from(s.stream_break_bp);
            }
            (p, declared.is_some())
        })
        .collect()
}
