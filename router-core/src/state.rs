//! The runtime state a decision reads: the time, target health, provider
//! cool-downs, observed latency and what each workload's budget has left.
//!
//! The engine has no clock and keeps no state; the runtime (or `routec
//! explain --state`, or the simulator) hands it a [`StateSnapshot`]. The dense
//! form is vectors indexed by id so a lookup is one bounds check; the named
//! form, [`StateFile`], is what people write.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::policy::Policy;
use crate::provider::{ProviderId, TargetId};
use crate::units::Usd;
use crate::workload::WorkloadId;

/// What the runtime knows about one target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TargetState {
    /// The circuit breaker has ejected the target until this time (ms on the
    /// caller's clock); from then on it is tried again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ejected_until_ms: Option<u64>,
    /// After a 429, this model cools down until then (ms on the caller's
    /// clock), when its provider's cool-downs are per model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cooling_until_ms: Option<u64>,
    /// Rolling 95th-percentile latency of recent calls, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p95_ms: Option<u32>,
}

/// What the runtime knows about one provider.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderState {
    /// After a 429, every model of the provider cools down until this time
    /// (ms on the caller's clock), when its cool-downs are per provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cooling_until_ms: Option<u64>,
    /// The runtime has no adapter for the provider (its key is not set, or
    /// it could not be configured): none of its models is called, at any
    /// time, until the runtime is set up again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unavailable: bool,
}

/// What one workload's budget has left. `None` means unlimited or not tracked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkloadState {
    /// Tokens still reservable in the tightest token window (day or month).
    pub tokens_remaining: Option<u64>,
    /// Dollars still reservable in the tightest dollar window.
    pub usd_remaining: Option<Usd>,
    /// The workload hit a limit and stays stopped until the window rolls over
    /// or someone unlocks it.
    pub halted: bool,
}

/// Everything time-varying a decision reads, indexed by id.
///
/// Vectors may be shorter than the policy's lists (or empty): a missing entry
/// reads as "healthy, unknown latency, unbudgeted", so
/// `StateSnapshot::default()` is a fresh runtime at time zero.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateSnapshot {
    /// The current time, in milliseconds on the caller's clock.
    pub now_ms: u64,
    /// Per target, indexed by [`TargetId`].
    pub targets: Vec<TargetState>,
    /// Per provider, indexed by [`ProviderId`].
    pub providers: Vec<ProviderState>,
    /// Per workload, indexed by [`WorkloadId`].
    pub workloads: Vec<WorkloadState>,
}

impl StateSnapshot {
    /// A healthy, unbudgeted state sized for `policy`, at `now_ms`.
    pub fn for_policy(policy: &Policy, now_ms: u64) -> StateSnapshot {
        StateSnapshot {
            now_ms,
            targets: vec![TargetState::default(); policy.targets.len()],
            providers: vec![ProviderState::default(); policy.providers.len()],
            workloads: vec![WorkloadState::default(); policy.workloads.len()],
        }
    }

    /// The state of a target (default when not recorded).
    pub fn target(&self, id: TargetId) -> TargetState {
        self.targets.get(id.0 as usize).copied().unwrap_or_default()
    }

    /// The state of a provider (default when not recorded).
    pub fn provider(&self, id: ProviderId) -> ProviderState {
        self.providers.get(id.0 as usize).copied().unwrap_or_default()
    }

    /// The state of a workload (default when not recorded).
    pub fn workload(&self, id: WorkloadId) -> WorkloadState {
        self.workloads.get(id.0 as usize).copied().unwrap_or_default()
    }

    /// A mutable entry for a target, growing the vector as needed.
    pub fn target_mut(&mut self, id: TargetId) -> &mut TargetState {
        grow(&mut self.targets, id.0 as usize)
    }

    /// A mutable entry for a provider, growing the vector as needed.
    pub fn provider_mut(&mut self, id: ProviderId) -> &mut ProviderState {
        grow(&mut self.providers, id.0 as usize)
    }

    /// A mutable entry for a workload, growing the vector as needed.
    pub fn workload_mut(&mut self, id: WorkloadId) -> &mut WorkloadState {
        grow(&mut self.workloads, id.0 as usize)
    }
}

fn grow<T: Default + Clone>(v: &mut Vec<T>, i: usize) -> &mut T {
    if v.len() <= i {
        v.resize(i + 1, T::default());
    }
    &mut v[i]
}

/// A workload's budget state as written in a state file; dollars as a
/// decimal number of dollars.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkloadStateFile {
    /// Tokens still reservable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_remaining: Option<u64>,
    /// Dollars still reservable, e.g. `1.25`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usd_remaining: Option<f64>,
    /// The workload is stopped until its window rolls over.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub halted: bool,
}

/// The state snapshot keyed by names, as in `routec explain --state
/// state.json`:
///
/// ```json
/// {
///   "now_ms": 60000,
///   "targets": { "anthropic/claude-opus-4.1": { "ejected_until_ms": 90000, "p95_ms": 1800 } },
///   "providers": { "cerebras": { "cooling_until_ms": 75000 }, "xai": { "unavailable": true } },
///   "workloads": { "content_summary": { "tokens_remaining": 1200, "usd_remaining": 0.5 } }
/// }
/// ```
///
/// [`StateFile::resolve`] turns it into the dense [`StateSnapshot`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateFile {
    /// The current time, ms on the caller's clock.
    pub now_ms: u64,
    /// Per target, keyed `provider/model`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub targets: BTreeMap<String, TargetState>,
    /// Per provider, keyed by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub providers: BTreeMap<String, ProviderState>,
    /// Per workload, keyed by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub workloads: BTreeMap<String, WorkloadStateFile>,
}

/// Why a state file does not fit a policy.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StateError {
    /// A target key is not `provider/model` of this policy.
    #[error("state names target `{0}`, which the policy does not have")]
    UnknownTarget(String),
    /// A provider key names no provider of this policy.
    #[error("state names provider `{0}`, which the policy does not have")]
    UnknownProvider(String),
    /// A workload key names no workload of this policy.
    #[error("state names workload `{0}`, which the policy does not have")]
    UnknownWorkload(String),
    /// A dollar amount is negative or not a number.
    #[error("workload `{0}` has a `usd_remaining` that is not a non-negative amount")]
    BadAmount(String),
}

impl StateFile {
    /// Resolves names against `policy` into the dense snapshot. Unknown names
    /// are errors: a typo in a state file should not silently mean "healthy".
    pub fn resolve(&self, policy: &Policy) -> Result<StateSnapshot, StateError> {
        let mut snap = StateSnapshot::for_policy(policy, self.now_ms);
        for (name, st) in &self.targets {
            let id = name
                .split_once('/')
                .and_then(|(p, m)| policy.target_named(p, m))
                .ok_or_else(|| StateError::UnknownTarget(name.clone()))?;
            *snap.target_mut(id) = *st;
        }
        for (name, st) in &self.providers {
            let idx = policy
                .providers
                .iter()
                .position(|p| &p.name == name)
                .ok_or_else(|| StateError::UnknownProvider(name.clone()))?;
            *snap.provider_mut(ProviderId(idx as u32)) = *st;
        }
        for (name, st) in &self.workloads {
            let id = policy
                .workload_id(name)
                .ok_or_else(|| StateError::UnknownWorkload(name.clone()))?;
            let usd_remaining = match st.usd_remaining {
                None => None,
                Some(d) if d.is_finite() && d >= 0.0 => {
                    // Display-grade input: rounding to the nearest nano-dollar is exact enough.
                    Some(Usd::from_nanos((d * Usd::NANOS_PER_DOLLAR as f64).round() as u64))
                }
                Some(_) => return Err(StateError::BadAmount(name.clone())),
            };
            *snap.workload_mut(id) = WorkloadState {
                tokens_remaining: st.tokens_remaining,
                usd_remaining,
                halted: st.halted,
            };
        }
        Ok(snap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_entries_read_as_healthy_and_unbudgeted() {
        let s = StateSnapshot::default();
        assert_eq!(s.target(TargetId(7)), TargetState::default());
        assert_eq!(s.provider(ProviderId(3)), ProviderState::default());
        assert_eq!(s.workload(WorkloadId(1)), WorkloadState::default());
    }

    #[test]
    fn mutable_entries_grow_the_vectors() {
        let mut s = StateSnapshot::default();
        s.target_mut(TargetId(2)).p95_ms = Some(400);
        assert_eq!(s.targets.len(), 3);
        assert_eq!(s.target(TargetId(2)).p95_ms, Some(400));
    }

    #[test]
    fn state_files_reject_unknown_fields() {
        let err = serde_json::from_str::<StateFile>(r#"{"now": 5}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `now`"), "{err}");
    }
}
