//! routec's runtime: the [`Router`] that executes a policy's attempt plans
//! over provider adapters, and the state it keeps between calls — budgets
//! and their stores, target health, provider limits, rolling latency, the
//! retry budget, idempotency and metrics.
//!
//! A call flows: [`Router::complete`] or [`Router::stream`] → idempotency
//! (join or replay an identical call) → facts from the request → a state
//! snapshot → the engine's decision (`router_core::decide`) → attempts in
//! plan order, each reserving budget, passing the provider's `limits` and
//! the health book, dispatched under a timeout inside the workload's
//! deadline, then committed or released. See `docs/runtime.md`.
//!
//! The synchronous state pieces — [`HealthBook`], [`LimitBook`],
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

mod attempt;
mod budget;
mod clock;
mod decisions;
mod error;
mod execute;
mod facts;
mod idempotency;
mod limits;
mod metrics;
mod quality;
mod registry;
mod reserve;
mod router;
mod shared;
mod stream;
#[cfg(test)]
#[path = "../../router-state/src/testkit.rs"]
mod testkit;

pub use budget::error::{
    BusyError, CommitError, HaltedError, ReserveError, StatusError, StoreError, StoreErrorKind, StoreUnavailableError,
    TooLargeError, UnknownWorkloadError, UnlockError,
};
pub use budget::memory::MemoryStore;
pub use budget::redis::RedisStore;
pub use budget::sqlite::SqliteStore;
pub use budget::store::{BudgetStore, split_prefix, store_from_url};
pub use budget::{BudgetLedger, BudgetLedgerBuilder, CommitReport, Reservation};
pub use clock::{Clock, ManualClock, Millis, SystemClock, TokioClock};
pub use decisions::{DecisionId, DecisionRecord, DecisionReport, ParseDecisionIdError};
pub use error::{
    AttemptError, AttemptRecord, BudgetError, DeadlineExceededError, FallbackExhaustedError, NotSent, NotSentError,
    QualityCheckError, RefusedError, RouteError, StreamInterruptedError, TimedOutError, UpstreamRejectedError,
};
pub use idempotency::{Claim, IdempotencyCache, IdempotencyKey, KeyReusedError, Leader, RedisIdempotency, Served};
pub use metrics::{Direction, LATENCY_BUCKETS_MS, Metrics};
pub use router::{
    BuildError, Call, DuplicateScopeError, EmbedCall, Routed, Router, RouterBuilder, UnknownProviderError,
};
pub use shared::{SharedState, SharedStateError};
pub use stream::RoutedStream;
// The synchronous books and budget-line types live in `router-state`, shared
// with the simulator; they are re-exported for the stores' and the gateway's
// callers, which name them in signatures.
pub use router_state::{
    CommitOutcome, CommitRequest, HealthConfig, LimitKind, LimitStatus, LineAmount, LineKey, LineState, LocalLimit,
    Period, ReservationId, ReserveOutcome, ReserveRequest, RetryBudget, Spend, WorkloadStatus,
};
