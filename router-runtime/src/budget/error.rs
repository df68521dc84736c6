//! Errors of the budget operations: one enum per operation, each variant
//! wrapping a struct with private fields and accessors.

use std::fmt;

use thiserror::Error;

use crate::clock::Millis;
use router_state::LimitKind;

/// An amount as the limit counts it: `1200 tokens` or `$0.27`.
fn show(limit: LimitKind, n: u64) -> String {
    if limit.is_usd() {
        router_core::Usd::from_nanos(n).to_string()
    } else {
        format!("{n} tokens")
    }
}

/// What went wrong talking to a store, in a word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The store could not be reached or refused the operation (connection
    /// refused, file unopenable, disk error, busy past the timeout).
    Unavailable,
    /// The store did not answer in time.
    Timeout,
    /// The store answered something this version does not understand.
    Corrupt,
    /// The URL names no store routec knows.
    BadUrl,
    /// The amount cannot be held exactly by this store.
    OutOfRange,
}

impl StoreErrorKind {
    /// The kind in a word: `unavailable`, `timeout`, `corrupt`, `bad_url`,
    /// `out_of_range`.
    pub const fn as_str(self) -> &'static str {
        match self {
            StoreErrorKind::Unavailable => "unavailable",
            StoreErrorKind::Timeout => "timeout",
            StoreErrorKind::Corrupt => "corrupt",
            StoreErrorKind::BadUrl => "bad_url",
            StoreErrorKind::OutOfRange => "out_of_range",
        }
    }
}

/// A store failure. Budgeted calls fail closed on it.
#[derive(Clone, Debug, Error)]
#[error("budget store `{store}` {}: {detail}", self.kind_text())]
pub struct StoreError {
    kind: StoreErrorKind,
    store: String,
    detail: String,
}

impl StoreError {
    pub(crate) fn new(kind: StoreErrorKind, store: impl Into<String>, detail: impl fmt::Display) -> Self {
        StoreError {
            kind,
            store: store.into(),
            detail: detail.to_string(),
        }
    }

    pub(crate) fn bad_url(url: &str, help: &str) -> Self {
        // Only URLs routec does not recognise reach here, so no password of
        // a recognised scheme is echoed.
        StoreError::new(StoreErrorKind::BadUrl, url, help)
    }

    /// What kind of failure.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    /// The store, as [`crate::BudgetStore::describe`] gives it.
    pub fn store(&self) -> &str {
        &self.store
    }

    /// The underlying cause, in words.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    fn kind_text(&self) -> &'static str {
        match self.kind {
            StoreErrorKind::Unavailable => "is unavailable",
            StoreErrorKind::Timeout => "timed out",
            StoreErrorKind::Corrupt => "answered something unexpected",
            StoreErrorKind::BadUrl => "is not a budget store url",
            StoreErrorKind::OutOfRange => "cannot hold the amount",
        }
    }
}

/// Why [`crate::BudgetLedger::reserve`] refused a call.
#[derive(Clone, Debug, Error)]
pub enum ReserveError {
    /// The workload is halted on a limit until rollover or unlock.
    #[error(transparent)]
    Halted(HaltedError),
    /// Other in-flight calls hold the rest of a limit; try again later.
    #[error(transparent)]
    Busy(BusyError),
    /// The call's estimate alone exceeds a limit.
    #[error(transparent)]
    TooLarge(TooLargeError),
    /// The store could not be asked: the call fails closed.
    #[error(transparent)]
    StoreUnavailable(StoreUnavailableError),
    /// The workload id is not from this ledger's policy.
    #[error(transparent)]
    UnknownWorkload(UnknownWorkloadError),
}

impl ReserveError {
    /// The stable error class, for metrics (`routec_errors_total{class}`),
    /// logs and the gateway's error body.
    pub const fn code(&self) -> &'static str {
        match self {
            ReserveError::Halted(_) => "budget_halted",
            ReserveError::Busy(_) => "budget_busy",
            ReserveError::TooLarge(_) => "budget_too_large",
            ReserveError::StoreUnavailable(_) => "budget_store_unavailable",
            ReserveError::UnknownWorkload(_) => "unknown_workload",
        }
    }

    /// Whether the same call may succeed later without anyone acting:
    /// busy budgets free up and stores come back; halts wait for rollover.
    pub const fn is_transient(&self) -> bool {
        match self {
            ReserveError::Busy(_) | ReserveError::StoreUnavailable(_) => true,
            ReserveError::Halted(_) | ReserveError::TooLarge(_) | ReserveError::UnknownWorkload(_) => false,
        }
    }
}

/// A workload halted on one limit.
#[derive(Clone, Debug, Error)]
#[error(
    "workload `{workload}` is halted: its {limit} budget for {period} is spent ({} of {}); it resumes at rollover or `routec budget unlock {workload}`",
    show(*.limit, *.committed),
    show(*.limit, *.cap)
)]
pub struct HaltedError {
    pub(crate) workload: String,
    pub(crate) limit: LimitKind,
    pub(crate) period: String,
    pub(crate) committed: u64,
    pub(crate) cap: u64,
    pub(crate) until: Millis,
}

impl HaltedError {
    /// The workload.
    pub fn workload(&self) -> &str {
        &self.workload
    }
    /// The limit that halted it.
    pub fn limit(&self) -> LimitKind {
        self.limit
    }
    /// The period key (`2026-11-01` or `2026-11`).
    pub fn period(&self) -> &str {
        &self.period
    }
    /// Committed spend on the limit.
    pub fn committed(&self) -> u64 {
        self.committed
    }
    /// The limit's cap.
    pub fn cap(&self) -> u64 {
        self.cap
    }
    /// When the period rolls over (and the halt lifts by itself).
    pub fn until(&self) -> Millis {
        self.until
    }
}

/// A refusal caused only by other in-flight reservations.
#[derive(Clone, Debug, Error)]
#[error(
    "workload `{workload}` has no {limit} budget free right now: {} in flight, {} committed of {}, this call needs {}",
    show(*.limit, *.reserved),
    show(*.limit, *.committed),
    show(*.limit, *.cap),
    show(*.limit, *.amount)
)]
pub struct BusyError {
    pub(crate) workload: String,
    pub(crate) limit: LimitKind,
    pub(crate) committed: u64,
    pub(crate) reserved: u64,
    pub(crate) cap: u64,
    pub(crate) amount: u64,
}

impl BusyError {
    /// The workload.
    pub fn workload(&self) -> &str {
        &self.workload
    }
    /// The limit without room.
    pub fn limit(&self) -> LimitKind {
        self.limit
    }
    /// Committed spend on the limit.
    pub fn committed(&self) -> u64 {
        self.committed
    }
    /// Spend other calls hold in flight.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }
    /// The cap.
    pub fn cap(&self) -> u64 {
        self.cap
    }
    /// What this call asked for.
    pub fn amount(&self) -> u64 {
        self.amount
    }
}

/// A call whose estimate exceeds a whole limit.
#[derive(Clone, Debug, Error)]
#[error(
    "a call of workload `{workload}` is estimated at {}, more than its whole {limit} budget of {}",
    show(*.limit, *.amount),
    show(*.limit, *.cap)
)]
pub struct TooLargeError {
    pub(crate) workload: String,
    pub(crate) limit: LimitKind,
    pub(crate) amount: u64,
    pub(crate) cap: u64,
}

impl TooLargeError {
    /// The workload.
    pub fn workload(&self) -> &str {
        &self.workload
    }
    /// The limit.
    pub fn limit(&self) -> LimitKind {
        self.limit
    }
    /// The estimate.
    pub fn amount(&self) -> u64 {
        self.amount
    }
    /// The cap.
    pub fn cap(&self) -> u64 {
        self.cap
    }
}

/// The store failed while a budgeted workload asked it.
#[derive(Clone, Debug, Error)]
#[error("workload `{workload}` is budgeted and its budget store cannot be reached, so the call is refused: {source}")]
pub struct StoreUnavailableError {
    pub(crate) workload: String,
    #[source]
    pub(crate) source: StoreError,
}

impl StoreUnavailableError {
    /// The workload.
    pub fn workload(&self) -> &str {
        &self.workload
    }
    /// The store failure.
    pub fn store_error(&self) -> &StoreError {
        &self.source
    }
}

/// A workload id or name the policy does not have.
#[derive(Clone, Debug, Error)]
#[error("no workload `{name}` in the policy")]
pub struct UnknownWorkloadError {
    pub(crate) name: String,
}

impl UnknownWorkloadError {
    /// The id or name asked for.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Why [`crate::Reservation::commit`] could not record spend.
#[derive(Clone, Debug, Error)]
pub enum CommitError {
    /// The store failed; the reservation stays reserved until its TTL, so
    /// the budget errs on the side of having spent.
    #[error(transparent)]
    StoreUnavailable(StoreUnavailableError),
}

/// Why [`crate::BudgetLedger::status`] or
/// [`crate::BudgetLedger::workload_status`] failed.
#[derive(Clone, Debug, Error)]
pub enum StatusError {
    /// The store failed.
    #[error(transparent)]
    StoreUnavailable(StoreUnavailableError),
    /// The workload id is not from this ledger's policy.
    #[error(transparent)]
    UnknownWorkload(UnknownWorkloadError),
}

/// Why [`crate::BudgetLedger::unlock`] failed.
#[derive(Clone, Debug, Error)]
pub enum UnlockError {
    /// The policy has no such workload.
    #[error(transparent)]
    UnknownWorkload(UnknownWorkloadError),
    /// The store failed.
    #[error(transparent)]
    StoreUnavailable(StoreUnavailableError),
}
