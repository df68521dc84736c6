//! The simulator's own data-class check, independent of the engine.
//!
//! Why: the report's `pii_violations` is a claim that no simulated request
//! reached a provider below its data class. If it were computed from the
//! engine's explanation, an engine bug would hide itself. So for every
//! dispatch the simulator recomputes the request's class from the IR (the
//! workload's class, raised by a class the request declares) and compares
//! it with the provider's `max_data`, reading nothing the engine produced
//! but the target it was told to call.

use router_core::{DataClass, Policy, TargetId, Workload};

/// The class a request's data has: its workload's, raised (never lowered)
/// by a class the request declares.
pub(crate) fn effective_class(workload: &Workload, declared: Option<DataClass>) -> DataClass {
    match declared {
        Some(d) if d > workload.data => d,
        Some(_) | None => workload.data,
    }
}

/// Whether sending data of `class` to `target` is allowed by its provider's
/// `max_data`. A target id outside the policy is a violation: nothing
/// proves it safe.
pub(crate) fn dispatch_allowed(policy: &Policy, target: TargetId, class: DataClass) -> bool {
    let Some(t) = policy.targets.get(target.0 as usize) else {
        return false;
    };
    policy
        .providers
        .get(t.provider.0 as usize)
        .is_some_and(|p| class <= p.max_data)
}
