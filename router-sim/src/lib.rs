//! Offline traffic simulation and policy diff for routec.
//!
//! [`simulate()`] replays a traffic file (one JSON request a line, see
//! [`TrafficRequest`]) through a policy with the real decision engine and the
//! runtime's health, latency, retry-budget and budget state machines on a
//! virtual clock, sampling each attempt from the simulated provider; the
//! [`SimReport`] gives cost, latency, fallbacks, budget halts, an independent
//! data-class check and the savings against one frontier model. [`generate()`]
//! writes the product brief's traffic mix; [`diff()`] says what changes
//! between two policies, and whether the new one widens any workload's
//! data-class exposure.
//!
//! Everything is deterministic: the same policy, traffic and seed give the
//! same report, byte for byte.
//!
//! ```
//! use router_sim::{SimOptions, simulate};
//!
//! let policy = policy_lang::compile(&[policy_lang::SourceFile::new("p.route", r#"
//!     provider groq { adapter groq; tier paid; data public
//!       model llama { price $0.05/M in, $0.08/M out; simulate latency 420ms p95 900ms } }
//!     provider anthropic { adapter anthropic; tier paid; data private
//!       model sonnet { price $3/M in, $15/M out; simulate latency 1.8s p95 4s } }
//!     workload qa { data public; route fallback [groq/llama, anthropic/sonnet] }
//! "#)]).unwrap().into_policy();
//! let traffic = r#"{"ts":"2026-11-01T09:00:00Z","workload":"qa","input_tokens":400,"output_tokens":200}"#;
//! let report = simulate(&policy, traffic.as_bytes(), SimOptions { seed: 7, ..Default::default() }, &mut |_| {})?;
//! assert_eq!(report.pii_violations, 0);
//! assert_eq!(report.baseline.target.as_deref(), Some("anthropic/sonnet"));
//! assert!(report.savings_ratio > 0.9);
//! # Ok::<(), router_sim::SimError>(())
//! ```

mod baseline;
mod diff;
mod generate;
mod html;
mod options;
mod pii;
mod profile;
mod report;
mod rng;
mod simulate;
mod stats;
mod time;
mod traffic;
mod witness;

pub use baseline::BaselineError;
pub use diff::{
    Change, Exposure, PolicyDiff, Presence, REFERENCE_INPUT_TOKENS, TrafficDiff, TrafficDiffRow, WorkloadDiff, diff,
    diff_traffic,
};
pub use generate::{DEFAULT_START_MS, Mix, generate};
pub use html::render_html;
pub use options::{CheckPassRates, Progress, SimError, SimOptions};
pub use profile::{DEFAULT_P50, DEFAULT_P95, SIM_RETRY_AFTER};
pub use report::{Assumptions, BaselineInfo, CostOverTime, SimReport, TargetRow, WorkloadRow};
pub use simulate::{Simulator, StepOutcome, simulate};
pub use traffic::{TrafficError, TrafficReader, TrafficRequest};
pub use witness::{MAX_CELLS, Witness, WitnessKind, WorkloadWitnesses, describe, witnesses};
