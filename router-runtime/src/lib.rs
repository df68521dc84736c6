//! routec's runtime state: budgets and their stores, target health,
//! rolling latency, the retry budget, idempotency and metrics.
//!
//! The execution half (the `Router` running attempt plans over provider
//! adapters) builds on these pieces. The synchronous ones — [`HealthBook`],
//! [`LatencyBook`], [`RetryBudget`], [`BudgetBook`] — take `now` as an
//! argument and never read a clock, so `routec simulate` runs them on a
//! virtual clock; the async ones hold a [`Clock`].
//!
//! ```
//! use std::time::Duration;
//! use router_runtime::{Millis, RetryBudget};
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
mod idempotency;
mod latency;
mod metrics;
mod retry_budget;
#[cfg(test)]
mod testkit;

pub use budget::book::BudgetBook;
pub use budget::error::{
    BusyError, CommitError, HaltedError, ReserveError, StatusError, StoreError, StoreErrorKind, StoreUnavailableError,
    TooLargeError, UnknownWorkloadError, UnlockError,
};
pub use budget::memory::MemoryStore;
pub use budget::period::{LimitKind, Period};
pub use budget::redis::RedisStore;
pub use budget::sqlite::SqliteStore;
pub use budget::store::{
    BudgetStore, CommitOutcome, CommitRequest, LineAmount, LineKey, LineState, Refusal, RefusalReason, ReservationId,
    ReserveOutcome, ReserveRequest, budget_lines, store_from_url,
};
pub use budget::{
    BudgetLedger, BudgetLedgerBuilder, CommitReport, DEFAULT_RESERVATION_TTL, LimitStatus, Reservation, Spend,
    WorkloadStatus,
};
pub use clock::{Clock, ManualClock, Millis, SystemClock, TokioClock};
pub use health::{Admission, AttemptOutcome, BreakerState, HealthBook, HealthChange, HealthConfig, parse_retry_after};
pub use idempotency::{Claim, IdempotencyCache, IdempotencyKey, KeyReusedError, Leader, Served};
pub use latency::{LatencyBook, LatencyWindow, Percentiles};
pub use metrics::{Direction, LATENCY_BUCKETS_MS, Metrics};
pub use retry_budget::RetryBudget;
