//! The compiled form of a routec policy (the IR) and the pure decision engine
//! that turns it, plus request facts and a state snapshot, into an explained
//! attempt plan.
//!
//! **Architecture invariant:** this crate has no clock, no I/O, no async and
//! no randomness of its own. Time and randomness come in through arguments.
//!
//! ```
//! use router_core::{Price, Usd};
//!
//! // Claude Opus list price: $15 per million input tokens, $75 per million output.
//! let opus = Price { input_per_mtok: Usd::from_dollars(15), output_per_mtok: Usd::from_dollars(75) };
//! assert_eq!(opus.cost(2_000, 1_000).to_string(), "$0.105");
//! ```

mod bounds;
mod decide;
mod draw;
mod explain;
mod facts;
mod failure;
mod origin;
mod passes;
mod plan;
mod policy;
mod provider;
mod render;
mod route;
mod split;
mod state;
#[cfg(test)]
mod testkit;
mod units;
mod workload;

pub use bounds::{DEFAULT_ATTEMPT_TIMEOUT, DEFAULT_BACKOFF_MAX, DEFAULT_RETRY_AFTER_WAIT, WorstCase, worst_case};
pub use decide::{DEFAULT_OUTPUT_ESTIMATE, DEFAULT_P95_PRIOR_MS, Decider, MAX_ROUTE_DEPTH, MAX_ROUTE_VISITS, decide};
pub use draw::{DrawFormat, condition_text, draw};
pub use explain::{Candidate, Explain, KeySource, LatencySource, MatchBranch, Reason, Step, Verdict};
pub use facts::{Facts, FactsError, Features, Metadata, NoMetadata, RequestFacts};
pub use failure::{AttemptTimeouts, BreakerSettings, CooldownScope, FailureSettings, RetryClasses};
pub use plan::{Attempt, AttemptPlan, Decision, Estimate, Refusal};
pub use render::{
    AttemptReport, CallReport, CandidateReport, EstimateReport, RefusalReport, Report, node_text, reason_text,
    render_text, step_text,
};
pub use split::{BUCKETS, Split, SplitPick, split_bucket};
pub use state::{ProviderState, StateError, StateFile, StateSnapshot, TargetState, WorkloadState, WorkloadStateFile};

pub use origin::Origin;
pub use policy::{DEFAULT_MAX_ATTEMPTS, Defaults, Policy, PolicyHash};
pub use provider::{
    Adapter, Capabilities, Capability, DataClass, Header, KeyRef, Limits, Provider, ProviderId, SimProfile, Target,
    TargetId, Tier,
};
pub use route::{
    ChainRules, ChildEdge, CmpOp, Condition, Feature, NodeId, NodeKind, NumericFact, QualityCheck, RouteGraph,
    RouteNode, SplitKey, Strategy, Trigger, Triggers,
};
pub use units::{Price, Usd, duration_ms, opt_duration_ms};
pub use workload::{Budget, Quality, StreamRecovery, Task, Workload, WorkloadId};
