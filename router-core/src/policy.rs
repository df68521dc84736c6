//! A compiled policy: providers, targets, workloads and the route graph, with
//! every name resolved to an id and a content hash that identifies it.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::failure::FailureSettings;
use crate::provider::{Provider, ProviderId, Target, TargetId};
use crate::route::{NodeId, RouteGraph, RouteNode};
use crate::workload::{Workload, WorkloadId};

/// The most attempts a call makes when neither the workload nor the policy's
/// defaults say otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u8 = 4;

/// Policy-wide defaults (the `defaults { … }` block).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Defaults {
    /// Attempts per call, for workloads that do not set `max_attempts`.
    pub max_attempts: u8,
    /// Timeouts, breaker, `Retry-After` wait and cool-down scope for every
    /// provider that does not set its own.
    #[serde(skip_serializing_if = "FailureSettings::is_unset")]
    pub failure: FailureSettings,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            failure: FailureSettings::default(),
        }
    }
}

/// A 128-bit content hash of a compiled policy (xxh3-128 of its canonical
/// JSON form, source locations excluded), shown as 32 hex digits.
///
/// Two policies with the same meaning written in the same order hash the
/// same; reformatting or editing comments does not change it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "String")]
pub struct PolicyHash(u128);

impl PolicyHash {
    /// The first 12 hex digits, for headers and log lines.
    pub fn short(&self) -> String {
        let mut s = self.to_string();
        s.truncate(12);
        s
    }
}

impl fmt::Display for PolicyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl From<PolicyHash> for String {
    fn from(h: PolicyHash) -> String {
        h.to_string()
    }
}

/// A compiled, name-resolved policy. Built by `policy_lang::lower`; read by
/// the decision engine, the runtime and the tools.
#[derive(Clone, Debug, Serialize)]
pub struct Policy {
    /// Source file paths, indexed by [`crate::Origin::file`].
    #[serde(skip)]
    pub files: Vec<String>,
    /// Provider blocks, indexed by [`ProviderId`].
    pub providers: Vec<Provider>,
    /// Targets (models at providers), indexed by [`TargetId`].
    pub targets: Vec<Target>,
    /// Workload blocks, indexed by [`WorkloadId`].
    pub workloads: Vec<Workload>,
    /// The route graph.
    pub routes: RouteGraph,
    /// Policy-wide defaults.
    pub defaults: Defaults,
    /// The gateway's response-cache lifetime per workload that opts in
    /// (`cache 1h`). Kept here rather than in [`Workload`] so that adding it
    /// changed no `Workload` literal; absent from the hash input when empty,
    /// so a policy without it hashes as before.
    #[serde(skip_serializing_if = "Vec::is_empty", with = "cache_ttls")]
    response_cache: Vec<(WorkloadId, Duration)>,
    #[serde(skip)]
    hash: PolicyHash,
    #[serde(skip)]
    by_name: HashMap<String, WorkloadId>,
}

/// `(workload, ttl)` pairs as `[[id, ms], …]`.
mod cache_ttls {
    use std::time::Duration;

    use serde::Serializer;
    use serde::ser::SerializeSeq;

    use crate::WorkloadId;

    pub(super) fn serialize<S: Serializer>(v: &[(WorkloadId, Duration)], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for (id, ttl) in v {
            seq.serialize_element(&(id.0, u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)))?;
        }
        seq.end()
    }
}

impl Policy {
    /// Assembles a policy from its parts, connecting the route graph and
    /// computing the content hash and the workload index (names and aliases).
    pub fn new(
        files: Vec<String>,
        providers: Vec<Provider>,
        targets: Vec<Target>,
        workloads: Vec<Workload>,
        mut routes: RouteGraph,
        defaults: Defaults,
    ) -> Policy {
        routes.connect();
        let mut by_name = HashMap::with_capacity(workloads.len());
        for (i, w) in workloads.iter().enumerate() {
            let id = WorkloadId(i as u32);
            for alias in &w.aliases {
                by_name.entry(alias.clone()).or_insert(id);
            }
        }
        // Names win over aliases.
        for (i, w) in workloads.iter().enumerate() {
            by_name.insert(w.name.clone(), WorkloadId(i as u32));
        }
        let mut policy = Policy {
            files,
            providers,
            targets,
            workloads,
            routes,
            defaults,
            response_cache: Vec::new(),
            hash: PolicyHash(0),
            by_name,
        };
        policy.hash = policy.compute_hash();
        policy
    }

    fn compute_hash(&self) -> PolicyHash {
        // Serialising plain data to a Vec cannot fail; an empty input would
        // still give a well-defined (if useless) hash.
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        PolicyHash(xxhash_rust::xxh3::xxh3_128(&bytes))
    }

    /// The same policy with response-cache lifetimes for some workloads
    /// (`cache D`); the hash covers them.
    #[must_use]
    pub fn with_response_cache(mut self, ttls: Vec<(WorkloadId, Duration)>) -> Policy {
        self.response_cache = ttls;
        self.hash = self.compute_hash();
        self
    }

    /// How long the gateway may answer a workload's identical requests
    /// from its response cache; `None` when the workload does not opt in.
    pub fn response_cache_ttl(&self, id: WorkloadId) -> Option<Duration> {
        self.response_cache.iter().find(|(w, _)| *w == id).map(|(_, d)| *d)
    }

    /// The policy's content hash.
    pub fn hash(&self) -> PolicyHash {
        self.hash
    }

    /// The workload a caller means by `name` (its name or an alias).
    pub fn workload_id(&self, name: &str) -> Option<WorkloadId> {
        self.by_name.get(name).copied()
    }

    /// The workload called `name` (or aliased so).
    pub fn workload_named(&self, name: &str) -> Option<&Workload> {
        self.workload_id(name).map(|id| self.workload(id))
    }

    /// A workload by id. Ids come from this policy, so they are in range.
    pub fn workload(&self, id: WorkloadId) -> &Workload {
        &self.workloads[id.0 as usize]
    }

    /// A target by id.
    pub fn target(&self, id: TargetId) -> &Target {
        &self.targets[id.0 as usize]
    }

    /// A provider by id.
    pub fn provider(&self, id: ProviderId) -> &Provider {
        &self.providers[id.0 as usize]
    }

    /// The provider of a target.
    pub fn provider_of(&self, id: TargetId) -> &Provider {
        self.provider(self.target(id).provider)
    }

    /// A route node by id.
    pub fn node(&self, id: NodeId) -> &RouteNode {
        &self.routes[id]
    }

    /// A target written as in policies: `provider/model`.
    pub fn target_label(&self, id: TargetId) -> String {
        let t = self.target(id);
        format!("{}/{}", self.provider(t.provider).name, t.model)
    }

    /// The target called `provider/model`.
    pub fn target_named(&self, provider: &str, model: &str) -> Option<TargetId> {
        let p = self.providers.iter().find(|p| p.name == provider)?;
        p.targets.iter().copied().find(|t| self.target(*t).model == model)
    }

    /// Ids of every workload.
    pub fn workload_ids(&self) -> impl Iterator<Item = WorkloadId> + '_ {
        (0..self.workloads.len() as u32).map(WorkloadId)
    }

    /// The maximum attempts for a workload: its own, else the policy default.
    pub fn max_attempts(&self, id: WorkloadId) -> u8 {
        self.workload(id).max_attempts.unwrap_or(self.defaults.max_attempts)
    }
}
