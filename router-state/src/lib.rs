//! routec's routing state without I/O: the synchronous books a router keeps
//! between calls — [`HealthBook`] (breakers, Retry-After cool-downs),
//! [`LimitBook`] (a provider's `rpm`/`tpm`), [`LatencyBook`] (rolling p95),
//! [`RetryBudget`], [`BudgetBook`] — and the attempt machine that runs one
//! call's plan over them.
//!
//! Nothing here reads a clock, sleeps, spawns or touches the network: time
//! arrives as `now: Millis`, randomness as a seed. `router-runtime` drives
//! it with tokio and real adapters; `router-sim` drives the same code on a
//! virtual clock, so a simulation follows the rules production follows.
//!
//! ```
//! use std::time::Duration;
//! use router_state::{Millis, RetryBudget};
//!
//! // Retries may add 20 % to the last 10 s of traffic, plus 1 per second.
//! let mut budget = RetryBudget::new(Duration::from_secs(10), 1, 20);
//! let now = Millis(0);
//! for _ in 0..100 {
//!     budget.deposit(now);
//! }
//! let retries = (0..100).filter(|_| budget.withdraw(now)).count();
//! assert_eq!(retries, 30);
//! ```

mod budget;
mod clock;
mod health;
mod latency;
mod limits;
mod machine;
mod retry_budget;
#[cfg(test)]
mod testkit;

pub use budget::book::{BudgetBook, ReserveDecision, apply_commit, decide_reserve};
pub use budget::lines::{
    CommitOutcome, CommitRequest, DEFAULT_RESERVATION_TTL, LimitStatus, LineAmount, LineKey, LineState, Refusal,
    RefusalReason, ReservationId, ReserveOutcome, ReserveRequest, Spend, WorkloadStatus, budget_lines,
};
pub use budget::period::{LimitKind, Period};
pub use clock::{Millis, duration_to_ms};
pub use health::{
    Admission, AttemptOutcome, BreakerState, HealthBook, HealthChange, HealthConfig, PeerReport, parse_retry_after,
};
pub use latency::{LatencyBook, LatencyWindow, Percentiles};
pub use limits::{LimitBook, LocalLimit};
pub use machine::{
    Action, CallMachine, Ending, Failure, FailureRules, RetryWait, TimeoutKind, Verdict, backoff,
    continuation_candidates, placed,
};
pub use retry_budget::RetryBudget;

/// splitmix64's output function: a well-mixed 64-bit value from any input.
/// Jitter and sampling draw from it, seeded per request, so the runtime and
/// the simulator draw the same numbers for the same call.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
