//! The explanation of a decision: every candidate the engine looked at, kept
//! or dropped with a stable reason code, and the choices combinators made.
//!
//! Entries hold ids and small `Copy` values, never strings, so recording them
//! costs no allocation on the hot path; [`crate::render_text`] and
//! [`crate::Report`] turn them into words with the policy at hand.

use serde::Serialize;

use crate::policy::PolicyHash;
use crate::provider::{Capabilities, DataClass, TargetId};
use crate::route::{NodeId, Strategy};
use crate::units::Usd;
use crate::workload::WorkloadId;

/// Why a candidate target was dropped. Each variant has a stable snake_case
/// [`Reason::code`] for logs, headers and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Reason {
    /// The provider may not receive data of the call's class.
    DataClass {
        /// The most sensitive class the provider may receive.
        allowed: DataClass,
        /// The call's class (the workload's, possibly raised by the request).
        required: DataClass,
    },
    /// The provider's `jurisdiction` is not one the workload's
    /// `jurisdiction` list allows (or the provider names none).
    Jurisdiction,
    /// The model lacks a capability the workload or request needs.
    Capability {
        /// What it lacks.
        missing: Capabilities,
    },
    /// An embedding model (`supports embeddings`), and the call is a chat
    /// call.
    EmbeddingModel,
    /// The call asks for more output tokens than the model can give.
    MaxOutput {
        /// The model's limit.
        limit: u64,
        /// What the call asks for.
        requested: u64,
    },
    /// Input plus requested output does not fit the model's context window.
    ContextWindow {
        /// The model's window.
        window: u64,
        /// Input plus requested output tokens.
        needed: u64,
    },
    /// The estimated cost is above the workload's `max_cost … per call`.
    OverCostCeiling {
        /// The estimate.
        cost: Usd,
        /// The ceiling.
        ceiling: Usd,
    },
    /// A paid model without a price, where a cost ceiling or dollar budget
    /// needs one: the engine fails closed rather than guess.
    Unpriced,
    /// The workload's budget cannot cover the call's reservation.
    OverBudget {
        /// Tokens the call would reserve.
        tokens_needed: u64,
        /// Tokens left, when tracked.
        tokens_remaining: Option<u64>,
        /// Dollars the call would reserve, when known.
        usd_needed: Option<Usd>,
        /// Dollars left, when tracked.
        usd_remaining: Option<Usd>,
        /// The workload is halted until its budget window rolls over.
        halted: bool,
    },
    /// The runtime has no adapter for the provider (its key is not set, or
    /// it could not be configured), so none of its models can be called.
    Unavailable,
    /// The circuit breaker has ejected the target.
    Ejected {
        /// Back in rotation at this time (ms, caller's clock).
        until_ms: u64,
    },
    /// The provider is cooling down after a 429.
    CoolingDown {
        /// Cool-down ends at this time (ms, caller's clock).
        until_ms: u64,
    },
    /// The target is already earlier in the plan.
    Duplicate {
        /// The route node of the earlier occurrence.
        first: NodeId,
    },
    /// The plan already uses the workload's attempt bound.
    AttemptBound {
        /// The bound (`max_attempts`).
        bound: u8,
    },
    /// The target is under a split arm this call's key did not pick.
    SplitArmNotChosen {
        /// The split.
        split: NodeId,
    },
    /// The target is under a `match` arm whose condition did not decide.
    MatchArmNotTaken {
        /// The match.
        matched: NodeId,
    },
    /// The route node is broken (unresolved name, cycle, dangling id); only
    /// in policies that fail `routec check`.
    BrokenRoute,
}

impl Reason {
    /// Every reason code, in the order filters run.
    pub const CODES: [&'static str; 17] = [
        "data_class",
        "jurisdiction",
        "capability",
        "embedding_model",
        "max_output",
        "context_window",
        "over_cost_ceiling",
        "unpriced",
        "over_budget",
        "unavailable",
        "ejected",
        "cooling_down",
        "duplicate",
        "attempt_bound",
        "split_arm_not_chosen",
        "match_arm_not_taken",
        "broken_route",
    ];

    /// The stable snake_case code.
    pub const fn code(&self) -> &'static str {
        match self {
            Reason::DataClass { .. } => "data_class",
            Reason::Jurisdiction => "jurisdiction",
            Reason::Capability { .. } => "capability",
            Reason::EmbeddingModel => "embedding_model",
            Reason::MaxOutput { .. } => "max_output",
            Reason::ContextWindow { .. } => "context_window",
            Reason::OverCostCeiling { .. } => "over_cost_ceiling",
            Reason::Unpriced => "unpriced",
            Reason::OverBudget { .. } => "over_budget",
            Reason::Unavailable => "unavailable",
            Reason::Ejected { .. } => "ejected",
            Reason::CoolingDown { .. } => "cooling_down",
            Reason::Duplicate { .. } => "duplicate",
            Reason::AttemptBound { .. } => "attempt_bound",
            Reason::SplitArmNotChosen { .. } => "split_arm_not_chosen",
            Reason::MatchArmNotTaken { .. } => "match_arm_not_taken",
            Reason::BrokenRoute => "broken_route",
        }
    }
}

/// What became of a candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// In the plan.
    Kept {
        /// 1-based position in the plan.
        position: u8,
        /// Moved later so two attempts in a row do not go to the same
        /// provider (note code `same_provider_deferred`).
        deferred: bool,
    },
    /// Not in the plan.
    Dropped {
        /// Why.
        reason: Reason,
    },
}

/// Where a latency figure for `fastest` came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LatencySource {
    /// The rolling p95 in the state snapshot.
    Observed,
    /// The model's (else provider's) `simulate … p95`, as a prior.
    Simulated,
    /// Nothing known: [`crate::DEFAULT_P95_PRIOR_MS`].
    Prior,
}

/// One target the engine looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// The target.
    pub target: TargetId,
    /// Its leaf node in the route graph.
    pub node: NodeId,
    /// The combinator it was written in (`None` when it is the whole route).
    pub parent: Option<NodeId>,
    /// Kept or dropped, and why.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Estimated cost of the call at this target; `None` for an unpriced
    /// paid model.
    pub estimated_cost: Option<Usd>,
    /// Latency used to rank it under `fastest`, in ms.
    pub p95_ms: u32,
    /// Where `p95_ms` came from.
    pub p95_source: LatencySource,
}

/// Where a split's key came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// The request's user id.
    User,
    /// A metadata value.
    Metadata,
    /// The request seed (`split by request`).
    Request,
    /// The split's key was missing from the request, so the request seed was
    /// used: the call lands in an arm at random, in proportion to weights.
    MissingUsedSeed,
}

/// Which branch of a `match` decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "branch", content = "index", rename_all = "snake_case")]
pub enum MatchBranch {
    /// The `when` arm at this index (0-based).
    When(u16),
    /// The `else` arm.
    Else,
    /// Nothing held and there is no `else` (only in unchecked policies).
    None,
}

/// A choice a combinator made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// A split picked an arm.
    Split {
        /// The split node.
        node: NodeId,
        /// Where the hashed key came from.
        key: KeySource,
        /// The key's bucket, `0..10_000`.
        bucket: u16,
        /// The arm chosen (0-based); `None` when every weight is 0.
        arm: Option<u16>,
    },
    /// A match took a branch.
    Match {
        /// The match node.
        node: NodeId,
        /// The branch.
        branch: MatchBranch,
    },
    /// A select ordered its candidates.
    Select {
        /// The select node.
        node: NodeId,
        /// The strategy.
        strategy: Strategy,
        /// Under `weighted`: the child index drawn first, if any was eligible.
        drawn: Option<u16>,
    },
}

/// The full explanation of one decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Explain {
    /// The policy that decided.
    pub policy_hash: PolicyHash,
    /// The workload.
    pub workload: WorkloadId,
    /// The call's data class: the workload's, raised by the request if it
    /// declared a higher one.
    pub data_class: DataClass,
    /// Whether the request raised the class.
    pub data_raised: bool,
    /// Capabilities every target needed (the workload's and the request's).
    pub requires: Capabilities,
    /// Output tokens the call asks for: the request's, capped by the
    /// workload's `max_tokens`, else the workload's.
    pub max_output_tokens: Option<u64>,
    /// The attempt bound.
    pub max_attempts: u8,
    /// The snapshot's time.
    pub now_ms: u64,
    /// Every target looked at, in the order the route graph was walked.
    pub candidates: Vec<Candidate>,
    /// Combinator choices, in walk order.
    pub steps: Vec<Step>,
}

impl Explain {
    /// Candidates dropped for `code`.
    pub fn dropped_for<'a>(&'a self, code: &'a str) -> impl Iterator<Item = &'a Candidate> + 'a {
        self.candidates
            .iter()
            .filter(move |c| matches!(c.verdict, Verdict::Dropped { reason } if reason.code() == code))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_listed_once_each() {
        let mut codes = Reason::CODES.to_vec();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Reason::CODES.len());
    }

    #[test]
    fn reasons_serialise_with_their_code() {
        let r = Reason::Ejected { until_ms: 5 };
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"code":"ejected","until_ms":5}"#);
        assert_eq!(
            serde_json::to_string(&Reason::Unpriced).unwrap(),
            r#"{"code":"unpriced"}"#
        );
        let c = Candidate {
            target: TargetId(1),
            node: NodeId(2),
            parent: None,
            verdict: Verdict::Dropped { reason: r },
            estimated_cost: None,
            p95_ms: 10,
            p95_source: LatencySource::Prior,
        };
        let json = serde_json::to_value(c).unwrap();
        assert_eq!(json["verdict"], "dropped");
        assert_eq!(json["reason"]["code"], "ejected");
    }
}
