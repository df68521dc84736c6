//! How a replay is configured, how it reports progress, and how it fails.

use router_core::QualityCheck;
use router_state::HealthConfig;
use thiserror::Error;

use crate::baseline::BaselineError;
use crate::traffic::TrafficError;

/// Simulated pass rates of `escalate` quality checks, in basis points.
///
/// The simulator has no answer text, so whether an answer passes its check
/// is a draw at these rates, the same for every model: cheap and strong
/// models alike fail `json_valid` 3 % of the time by default. An assumption
/// to vary (`routec simulate --check-pass-rate`), not a measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CheckPassRates {
    /// `json_valid`.
    pub json_valid: u32,
    /// `json_schema`.
    pub json_schema: u32,
    /// `non_empty`.
    pub non_empty: u32,
    /// `regex("…")`.
    pub regex: u32,
    /// `evaluator(WORKLOAD)`; the evaluator's own call is not simulated or billed.
    pub evaluator: u32,
}

impl Default for CheckPassRates {
    fn default() -> Self {
        CheckPassRates {
            json_valid: 9_700,
            json_schema: 9_500,
            non_empty: 9_950,
            regex: 9_500,
            evaluator: 9_000,
        }
    }
}

impl CheckPassRates {
    /// The same rate for every check.
    pub fn uniform(bp: u32) -> Self {
        let bp = bp.min(10_000);
        CheckPassRates {
            json_valid: bp,
            json_schema: bp,
            non_empty: bp,
            regex: bp,
            evaluator: bp,
        }
    }

    pub(crate) fn rate(&self, check: &QualityCheck) -> u32 {
        match check {
            QualityCheck::JsonValid => self.json_valid,
            QualityCheck::JsonSchema => self.json_schema,
            QualityCheck::NonEmpty => self.non_empty,
            QualityCheck::Regex(_) => self.regex,
            QualityCheck::Evaluator(_) => self.evaluator,
        }
    }
}

/// How to run a simulation.
#[derive(Clone, Debug, Default)]
pub struct SimOptions {
    /// Seeds every random draw: same seed and traffic, same report.
    pub seed: u64,
    /// The frontier target all traffic is priced on for the savings ratio,
    /// as `provider/model`; default: the policy's most expensive target by
    /// output price (then input price).
    pub baseline: Option<String>,
    /// Simulated pass rates of quality checks.
    pub check_pass: CheckPassRates,
    /// Health book tuning (breaker threshold, ejection, cool-downs).
    pub health: HealthConfig,
}

/// Why a simulation could not run.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SimError {
    /// A traffic line could not be read or parsed.
    #[error(transparent)]
    Traffic(#[from] TrafficError),
    /// The named baseline is not a priced target of the policy.
    #[error(transparent)]
    Baseline(#[from] BaselineError),
}

/// How far a replay has got, for progress bars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Requests replayed.
    pub requests: u64,
    /// Traffic bytes read.
    pub bytes: u64,
}
