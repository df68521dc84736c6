//! What a decision produces: an ordered [`AttemptPlan`] or a [`Refusal`],
//! always with its [`Explain`].

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::explain::Explain;
use crate::failure::RetryClasses;
use crate::policy::Policy;
use crate::provider::{DataClass, ProviderId, TargetId};
use crate::route::{NodeId, NodeKind, QualityCheck, Triggers};
use crate::units::{Usd, opt_duration_ms};

/// What one attempt would reserve from the workload's budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Estimate {
    /// Input tokens plus the output tokens the call may produce.
    pub tokens: u64,
    /// The dollar cost of those tokens at the target's price; `None` for a
    /// paid model without a price.
    pub usd: Option<Usd>,
}

/// One step of the plan: a call to one target, and what to do when it fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// Where to send the call.
    pub target: TargetId,
    /// The target's provider (for cool-downs and the same-provider rule).
    pub provider: ProviderId,
    /// The target's leaf node in the route graph.
    pub node: NodeId,
    /// The innermost combinator that placed it (fallback, select, escalate,
    /// split or match); `None` when the target is the workload's whole route.
    pub placed_by: Option<NodeId>,
    /// Per-attempt timeout: the innermost chain's `timeout(d)`, else the
    /// provider's `timeout`, capped by the workload's `latency`; `None` means
    /// the runtime's default.
    #[serde(with = "opt_duration_ms")]
    pub timeout: Option<Duration>,
    /// Failures of this attempt that move on to the next one: the triggers of
    /// the chain that joins this attempt to the next. Any other failure ends
    /// the call.
    pub advance_on: Triggers,
    /// Whether the policy allows the next attempt to go to the same provider.
    pub allow_repeat: bool,
    /// Time allowed for the first token of a stream (the first byte of a
    /// whole answer): the innermost chain's `timeouts first_token`, else the
    /// provider's, else `defaults`; `None` means the runtime's default.
    #[serde(with = "opt_duration_ms", skip_serializing_if = "Option::is_none")]
    pub first_token: Option<Duration>,
    /// The longest gap between two stream events, found the same way.
    #[serde(with = "opt_duration_ms", skip_serializing_if = "Option::is_none")]
    pub idle: Option<Duration>,
    /// Retries on this same target before advancing (within the attempt
    /// bound), for each failure class retried by default.
    pub retries: u8,
    /// Retries per failure class the chain names (`retry server_error 2,
    /// timeout 1`); a named class uses its own count instead of `retries`.
    #[serde(skip_serializing_if = "RetryClasses::is_unset")]
    pub retry_on: RetryClasses,
    /// The `escalate` node whose quality check runs on this attempt's answer;
    /// see [`Attempt::quality_check`].
    pub check: Option<NodeId>,
    /// What this attempt would reserve.
    pub estimate: Estimate,
    /// Index of this attempt's entry in [`Explain::candidates`].
    pub candidate: u32,
}

impl Attempt {
    /// The most retries any failure class may make on this attempt.
    pub fn max_retries(&self) -> u8 {
        self.retries.max(self.retry_on.max())
    }

    /// The quality check to run on this attempt's answer, if any.
    pub fn quality_check<'p>(&self, policy: &'p Policy) -> Option<&'p QualityCheck> {
        match &policy.routes.get(self.check?)?.kind {
            NodeKind::Escalate { check, .. } => Some(check),
            _ => None,
        }
    }
}

/// The ordered attempts for one call.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct AttemptPlan {
    pub(crate) attempts: Vec<Attempt>,
}

impl AttemptPlan {
    /// The attempts, first to try first.
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    /// Number of distinct targets in the plan.
    pub fn len(&self) -> usize {
        self.attempts.len()
    }

    /// Whether the plan is empty (only in a refused decision).
    pub fn is_empty(&self) -> bool {
        self.attempts.is_empty()
    }

    /// Calls the plan may make, retries included; never above the workload's
    /// attempt bound.
    pub fn tries(&self) -> u32 {
        self.attempts.iter().map(|a| 1 + u32::from(a.max_retries())).sum()
    }

    /// What to reserve before the first attempt, failing closed: any one
    /// attempt may be the one that answers, so the largest estimate; but each
    /// answer under an `escalate` check is paid for even when rejected, so
    /// those estimates add up. An unknown dollar cost anywhere makes the
    /// dollar figure unknown.
    pub fn reserve(&self) -> Estimate {
        let (mut checked_tokens, mut checked_usd) = (0u64, Some(Usd::ZERO));
        let (mut max_tokens, mut max_usd) = (0u64, Some(Usd::ZERO));
        for a in &self.attempts {
            if a.check.is_some() {
                checked_tokens = checked_tokens.saturating_add(a.estimate.tokens);
                checked_usd = checked_usd.zip(a.estimate.usd).map(|(x, y)| x + y);
            } else {
                max_tokens = max_tokens.max(a.estimate.tokens);
                max_usd = max_usd.zip(a.estimate.usd).map(|(x, y)| x.max(y));
            }
        }
        Estimate {
            tokens: checked_tokens.saturating_add(max_tokens),
            usd: checked_usd.zip(max_usd).map(|(x, y)| x + y),
        }
    }
}

/// Why no call is made. Not `non_exhaustive`: whoever maps refusals to
/// status codes should be told by the compiler about a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum Refusal {
    /// No target in the route may receive data of the call's class.
    DataClass {
        /// The call's class.
        required: DataClass,
    },
    /// The workload's budget cannot cover the call (or the workload is halted).
    BudgetExhausted {
        /// The workload is halted until its window rolls over or an unlock.
        halted: bool,
    },
    /// Every target that fits is ejected, or its provider cooling down or
    /// unavailable.
    Unhealthy {
        /// The earliest time (ms, caller's clock) one comes back: a
        /// `Retry-After` for the caller. `u64::MAX` when none has a time
        /// (every one is on an unavailable provider).
        retry_at_ms: u64,
    },
    /// No target fits the call (capabilities, token limits, cost ceiling…).
    NoEligibleTarget,
}

impl Refusal {
    /// The stable snake_case code.
    pub const fn code(&self) -> &'static str {
        match self {
            Refusal::DataClass { .. } => "data_class",
            Refusal::BudgetExhausted { .. } => "budget_exhausted",
            Refusal::Unhealthy { .. } => "unhealthy",
            Refusal::NoEligibleTarget => "no_eligible_target",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::DataClass { required } => {
                write!(
                    f,
                    "no target in the route may receive `{required}` data; nothing was sent"
                )
            }
            Refusal::BudgetExhausted { halted: true } => f.write_str("the workload is halted: its budget is spent"),
            Refusal::BudgetExhausted { halted: false } => {
                f.write_str("the workload's remaining budget cannot cover this call")
            }
            Refusal::Unhealthy { retry_at_ms: u64::MAX } => {
                f.write_str("every target that fits is unavailable or out of rotation with no end time")
            }
            Refusal::Unhealthy { retry_at_ms } => {
                write!(
                    f,
                    "every target that fits is ejected or cooling down until {retry_at_ms} ms"
                )
            }
            Refusal::NoEligibleTarget => f.write_str("no target in the route fits this call"),
        }
    }
}

/// The engine's answer for one call: a plan or a refusal, and the
/// explanation either way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub(crate) plan: AttemptPlan,
    pub(crate) refusal: Option<Refusal>,
    pub(crate) explain: Explain,
}

impl Decision {
    /// The plan, or why there is none. A plan is never empty.
    pub fn outcome(&self) -> Result<&AttemptPlan, Refusal> {
        match self.refusal {
            Some(r) => Err(r),
            None => Ok(&self.plan),
        }
    }

    /// The plan; empty when refused.
    pub fn plan(&self) -> &AttemptPlan {
        &self.plan
    }

    /// The refusal, if the call must not be sent.
    pub fn refusal(&self) -> Option<Refusal> {
        self.refusal
    }

    /// How the decision was reached.
    pub fn explain(&self) -> &Explain {
        &self.explain
    }
}
