//! Workloads: the tag every call carries, saying what the call needs.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::origin::Origin;
use crate::provider::{Capabilities, DataClass};
use crate::route::NodeId;
use crate::units::{Usd, opt_duration_ms};

/// What kind of work a call does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Open-ended generation (reports, drafts).
    Generate,
    /// Condensing a text.
    Summarise,
    /// Picking labels.
    Classify,
    /// Pulling structured fields out of text.
    Extract,
    /// Writing or changing code.
    Code,
    /// Multi-step reasoning.
    Reason,
    /// Translation between languages.
    Translate,
    /// Conversational question answering.
    Chat,
}

impl Task {
    /// Every task, in keyword order.
    pub const ALL: [Task; 8] = [
        Task::Generate,
        Task::Summarise,
        Task::Classify,
        Task::Extract,
        Task::Code,
        Task::Reason,
        Task::Translate,
        Task::Chat,
    ];

    /// The keyword used in policies.
    pub const fn as_str(self) -> &'static str {
        match self {
            Task::Generate => "generate",
            Task::Summarise => "summarise",
            Task::Classify => "classify",
            Task::Extract => "extract",
            Task::Code => "code",
            Task::Reason => "reason",
            Task::Translate => "translate",
            Task::Chat => "chat",
        }
    }

    /// The task named by a policy keyword.
    pub fn from_keyword(s: &str) -> Option<Task> {
        Task::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How good the answer must be; used by `select` and by reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    /// A small, cheap model will do.
    Low,
    /// A mid-size model.
    Medium,
    /// Frontier quality.
    High,
}

impl Quality {
    /// The keyword used in policies.
    pub const fn as_str(self) -> &'static str {
        match self {
            Quality::Low => "low",
            Quality::Medium => "medium",
            Quality::High => "high",
        }
    }
}

impl fmt::Display for Quality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Spending limits of one workload. Every limit is optional; a workload with
/// none is unbudgeted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Budget {
    /// Input plus output tokens per UTC day.
    pub tokens_per_day: Option<u64>,
    /// Input plus output tokens per UTC calendar month.
    pub tokens_per_month: Option<u64>,
    /// Dollars per UTC day.
    pub usd_per_day: Option<Usd>,
    /// Dollars per UTC calendar month.
    pub usd_per_month: Option<Usd>,
    /// Percentage of any limit at which an alert is raised (1–100).
    pub alert_percent: Option<u8>,
}

impl Budget {
    /// Whether any limit is set.
    pub fn is_limited(&self) -> bool {
        self.tokens_per_day.is_some()
            || self.tokens_per_month.is_some()
            || self.usd_per_day.is_some()
            || self.usd_per_month.is_some()
    }

    /// Whether a dollar limit is set (so every reachable paid model needs a price).
    pub fn has_cost_limit(&self) -> bool {
        self.usd_per_day.is_some() || self.usd_per_month.is_some()
    }
}

/// What a streamed call of a workload does about an upstream stream that
/// breaks after it started (`stream_recovery` in the policy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamRecovery {
    /// The client's stream ends with an explicit error; nothing is
    /// presented as a truncated success.
    #[default]
    Off,
    /// The answer is held until the upstream completes, so any failure
    /// before the end can still fall back; costs time to first token.
    Buffer,
    /// The client's stream stays open when the upstream breaks or stalls
    /// after its first event: the next target whose model accepts a
    /// prefill continues the answer from the text already sent.
    Continue,
}

/// Identifies a workload within one [`crate::Policy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WorkloadId(pub u32);

/// A workload block of the policy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Workload {
    /// The workload's name: what callers pass (or the gateway's `model`).
    pub name: String,
    /// Other names callers may use for it (e.g. a model name clients send).
    pub aliases: Vec<String>,
    /// What kind of work it does.
    pub task: Option<Task>,
    /// How good the answer must be.
    pub quality: Option<Quality>,
    /// The class of the data it carries; requests may raise it, never lower it.
    pub data: DataClass,
    /// Where its data may be processed: the providers' `jurisdiction`s it
    /// allows (`jurisdiction eu, local`); empty means anywhere.
    pub jurisdictions: Vec<String>,
    /// The most output tokens a call may ask for.
    pub max_tokens: Option<u64>,
    /// Overall deadline for a call, every fallback and retry included.
    #[serde(with = "opt_duration_ms")]
    pub latency_budget: Option<Duration>,
    /// The most one call may cost (estimated before dispatch).
    pub max_cost_per_call: Option<Usd>,
    /// Capabilities every call of this workload needs.
    pub requires: Capabilities,
    /// Spending limits.
    pub budget: Budget,
    /// The most attempts (targets tried, retries included) for one call.
    pub max_attempts: Option<u8>,
    /// Replay window for content-hash idempotency, when the workload opts in.
    #[serde(with = "opt_duration_ms")]
    pub idempotency_window: Option<Duration>,
    /// What a streamed call does about an upstream stream that breaks.
    pub stream_recovery: StreamRecovery,
    /// The root of its route graph.
    pub route: NodeId,
    /// Where the block is written.
    #[serde(skip)]
    pub origin: Origin,
}
