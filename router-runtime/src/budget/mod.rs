//! Budgets that fail closed.
//!
//! Why: an LLM bill is the one failure that gets worse the longer the
//! router keeps working. So a budgeted call *reserves* its estimated tokens
//! and dollars before dispatch, *commits* the actual usage after, and the
//! rest is released; concurrent callers (and several routers sharing a
//! store) cannot overspend because the store checks and reserves in one
//! atomic step; and when the store cannot be asked, budgeted calls are
//! refused rather than let through.
//!
//! ```
//! # async fn demo(policy: &router_core::Policy, id: router_core::WorkloadId) -> Result<(), Box<dyn std::error::Error>> {
//! use router_runtime::{BudgetLedger, Spend, store_from_url};
//! use router_core::Usd;
//!
//! let ledger = BudgetLedger::builder(policy, store_from_url("memory:").await?).build();
//! let reservation = ledger.reserve(id, Spend { tokens: 1_200, usd: Usd::from_nanos(900_000) }).await?;
//! // … dispatch the call …
//! reservation.commit(Spend { tokens: 1_050, usd: Usd::from_nanos(780_000) }).await?;
//! # Ok(()) }
//! ```

pub(crate) mod error;
mod health;
pub(crate) mod memory;
pub(crate) mod redis;
pub(crate) mod sqlite;
pub(crate) mod store;

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use router_core::{Budget, Policy, WorkloadId};
use serde::Serialize;
use tokio::sync::{Notify, mpsc};

use crate::budget::error::{
    BusyError, CommitError, HaltedError, ReserveError, StatusError, StoreError, StoreUnavailableError, TooLargeError,
    UnknownWorkloadError, UnlockError,
};
use crate::budget::health::StoreHealth;
use crate::budget::store::BudgetStore;
use crate::clock::{Clock, Millis, SystemClock};
use crate::metrics::Metrics;
use router_state::LimitKind;
use router_state::{
    CommitOutcome, CommitRequest, DEFAULT_RESERVATION_TTL, LineAmount, LineKey, RefusalReason, ReservationId,
    ReserveOutcome, ReserveRequest, Spend, WorkloadStatus, budget_lines,
};

#[derive(Debug)]
struct Entry {
    name: String,
    budget: Budget,
}

/// Background settlement of dropped reservations: what [`Drop`] cannot await.
enum Job {
    Release { workload: String, id: ReservationId },
}

#[derive(Debug, Default)]
struct Pending {
    count: AtomicUsize,
    idle: Notify,
}

impl Pending {
    fn start(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    fn finish(&self) {
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }
}

struct Inner {
    store: Arc<dyn BudgetStore>,
    clock: Arc<dyn Clock>,
    workloads: Vec<Entry>,
    ttl: Duration,
    metrics: Option<Metrics>,
    health: Arc<StoreHealth>,
    jobs: mpsc::UnboundedSender<Job>,
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Job>>>,
    pending: Arc<Pending>,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BudgetLedger")
            .field("store", &self.store.describe())
            .field("workloads", &self.workloads.len())
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Builds a [`BudgetLedger`]; see [`BudgetLedger::builder`].
#[derive(Debug)]
pub struct BudgetLedgerBuilder {
    store: Arc<dyn BudgetStore>,
    workloads: Vec<Entry>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    metrics: Option<Metrics>,
}

impl BudgetLedgerBuilder {
    /// Reads the time (and so the UTC day and month) from `clock` instead
    /// of the system clock.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// How long an unsettled reservation lives in the store
    /// (default [`DEFAULT_RESERVATION_TTL`]).
    #[must_use]
    pub fn reservation_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Reports alerts and remaining budget to `metrics`.
    #[must_use]
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Adds a budget that is not a policy workload's (a gateway tenant's,
    /// say), kept under `name` in the store and listed by
    /// [`BudgetLedger::status`] after the workloads. Find its id with
    /// [`BudgetLedger::workload_id`]. Use a name no workload can have
    /// (the router uses `scope:NAME`).
    #[must_use]
    pub fn extra_budget(mut self, name: impl Into<String>, budget: Budget) -> Self {
        self.workloads.push(Entry {
            name: name.into(),
            budget,
        });
        self
    }

    /// The ledger. Reservations dropped without commit are released by a
    /// background task started on the first reservation.
    pub fn build(self) -> BudgetLedger {
        let (jobs, receiver) = mpsc::unbounded_channel();
        let health = Arc::new(StoreHealth::new(self.store.describe(), self.metrics.clone()));
        BudgetLedger {
            inner: Arc::new(Inner {
                health,
                store: self.store,
                clock: self.clock,
                workloads: self.workloads,
                ttl: self.ttl,
                metrics: self.metrics,
                jobs,
                receiver: Mutex::new(Some(receiver)),
                pending: Arc::new(Pending::default()),
            }),
        }
    }
}

/// The budgets of a policy's workloads over one [`BudgetStore`]: reserve
/// before dispatch, commit after. Cheap to clone; clones share everything.
#[derive(Clone, Debug)]
pub struct BudgetLedger {
    inner: Arc<Inner>,
}

/// What a commit recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CommitReport {
    /// Limits whose alert threshold this commit crossed.
    pub alerts: Vec<LimitKind>,
    /// Limits this commit halted.
    pub halted: Vec<LimitKind>,
}

impl BudgetLedger {
    /// A ledger for `policy`'s workload budgets over `store`, on the system
    /// clock; call [`BudgetLedgerBuilder::build`] to finish.
    pub fn builder(policy: &Policy, store: Arc<dyn BudgetStore>) -> BudgetLedgerBuilder {
        let workloads = policy
            .workloads
            .iter()
            .map(|w| Entry {
                name: w.name.clone(),
                budget: w.budget,
            })
            .collect();
        BudgetLedgerBuilder {
            store,
            workloads,
            clock: Arc::new(SystemClock),
            ttl: DEFAULT_RESERVATION_TTL,
            metrics: None,
        }
    }

    /// The store behind the ledger.
    pub fn store(&self) -> &Arc<dyn BudgetStore> {
        &self.inner.store
    }

    /// The id of the workload called `name` (names only, not aliases).
    pub fn workload_id(&self, name: &str) -> Option<WorkloadId> {
        let i = self.inner.workloads.iter().position(|e| e.name == name)?;
        u32::try_from(i).ok().map(WorkloadId)
    }

    fn entry(&self, id: WorkloadId) -> Option<&Entry> {
        self.inner.workloads.get(id.0 as usize)
    }

    /// Reserves `estimate` against every limit of the workload, or refuses.
    ///
    /// Unbudgeted workloads never touch the store and always get a
    /// reservation (whose commit does nothing). Budgeted ones fail closed:
    /// a store error refuses the call.
    pub async fn reserve(&self, workload: WorkloadId, estimate: Spend) -> Result<Reservation, ReserveError> {
        let Some(entry) = self.entry(workload) else {
            return Err(ReserveError::UnknownWorkload(UnknownWorkloadError {
                name: format!("#{}", workload.0),
            }));
        };
        let mut reservation = Reservation {
            inner: Arc::clone(&self.inner),
            workload,
            estimate,
            held: None,
        };
        if !entry.budget.is_limited() {
            return Ok(reservation);
        }
        self.start_worker();
        let now = self.inner.clock.now();
        let req = ReserveRequest::new(&entry.name, &entry.budget, estimate, now, self.inner.ttl);
        let outcome = self.inner.health.observe(self.inner.store.reserve(&req).await);
        let outcome = outcome.map_err(|source| {
            ReserveError::StoreUnavailable(StoreUnavailableError {
                workload: entry.name.clone(),
                source,
            })
        })?;
        match outcome {
            ReserveOutcome::Granted(id) => {
                reservation.held = Some(Held { id, lines: req.lines });
                Ok(reservation)
            }
            ReserveOutcome::Refused(r) => {
                if r.newly_halted {
                    tracing::warn!(
                        workload = %entry.name, limit = %r.key.limit, period = %r.key.period,
                        committed = r.committed, cap = r.cap,
                        "budget halted: the call does not fit what is left"
                    );
                }
                Err(match r.reason {
                    RefusalReason::Halted => ReserveError::Halted(HaltedError {
                        workload: entry.name.clone(),
                        limit: r.key.limit,
                        until: r.key.limit.period_at(now).end(),
                        period: r.key.period,
                        committed: r.committed,
                        cap: r.cap,
                    }),
                    RefusalReason::Busy => ReserveError::Busy(BusyError {
                        workload: entry.name.clone(),
                        limit: r.key.limit,
                        committed: r.committed,
                        reserved: r.reserved,
                        cap: r.cap,
                        amount: r.amount,
                    }),
                    RefusalReason::TooLarge => ReserveError::TooLarge(TooLargeError {
                        workload: entry.name.clone(),
                        limit: r.key.limit,
                        amount: r.amount,
                        cap: r.cap,
                    }),
                })
            }
        }
    }

    /// The status of every workload (unbudgeted ones with no limits), in
    /// policy order, for the current periods.
    pub async fn status(&self) -> Result<Vec<WorkloadStatus>, StatusError> {
        let now = self.inner.clock.now();
        let mut out = Vec::with_capacity(self.inner.workloads.len());
        for entry in &self.inner.workloads {
            out.push(self.status_of_entry(entry, now).await?);
        }
        Ok(out)
    }

    async fn status_of_entry(&self, entry: &Entry, now: Millis) -> Result<WorkloadStatus, StatusError> {
        let lines = budget_lines(&entry.budget, Spend::default(), now);
        if lines.is_empty() {
            return Ok(WorkloadStatus {
                workload: entry.name.clone(),
                limits: Vec::new(),
            });
        }
        let keys: Vec<LineKey> = lines.iter().map(|l| l.key.clone()).collect();
        let states = self
            .inner
            .health
            .observe(self.inner.store.status(&entry.name, &keys, now).await);
        let states = states.map_err(|source| {
            StatusError::StoreUnavailable(StoreUnavailableError {
                workload: entry.name.clone(),
                source,
            })
        })?;
        let status = WorkloadStatus::from_lines(&entry.name, lines, states, now);
        if let Some(m) = &self.inner.metrics {
            for l in &status.limits {
                m.budget_remaining(&entry.name, l.limit, l.remaining);
            }
        }
        Ok(status)
    }

    /// The status of one workload (or extra budget), for the current periods.
    pub async fn workload_status(&self, workload: WorkloadId) -> Result<WorkloadStatus, StatusError> {
        let Some(entry) = self.entry(workload) else {
            return Err(StatusError::UnknownWorkload(UnknownWorkloadError {
                name: format!("#{}", workload.0),
            }));
        };
        self.status_of_entry(entry, self.inner.clock.now()).await
    }

    /// Whether the store answered the last operation that could tell
    /// (true until one fails). Budgeted calls fail closed while it is false.
    pub fn store_is_up(&self) -> bool {
        self.inner.health.is_up()
    }

    /// Whether `workload` has any limit (an unbudgeted one never touches the store).
    pub fn is_budgeted(&self, workload: WorkloadId) -> bool {
        self.entry(workload).is_some_and(|e| e.budget.is_limited())
    }

    /// Lifts every limit that halts `workload` until that limit's period
    /// rolls over: the limit is not enforced for the rest of the period
    /// (spend is still counted and shown). Limits not halted at the time
    /// stay enforced. Returns the limits lifted (empty when none was halted).
    pub async fn unlock(&self, workload: WorkloadId) -> Result<Vec<LimitKind>, UnlockError> {
        let Some(entry) = self.entry(workload) else {
            return Err(UnlockError::UnknownWorkload(UnknownWorkloadError {
                name: format!("#{}", workload.0),
            }));
        };
        let now = self.inner.clock.now();
        let keys: Vec<LineKey> = budget_lines(&entry.budget, Spend::default(), now)
            .into_iter()
            .map(|l| l.key)
            .collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let lifted = self
            .inner
            .health
            .observe(self.inner.store.unlock(&entry.name, &keys).await);
        let lifted = lifted.map_err(|source| {
            UnlockError::StoreUnavailable(StoreUnavailableError {
                workload: entry.name.clone(),
                source,
            })
        })?;
        for limit in &lifted {
            tracing::warn!(workload = %entry.name, limit = %limit, "budget unlocked until rollover");
        }
        Ok(lifted)
    }

    /// Waits until every release handed to the background (by dropped
    /// reservations or cancelled commits) has reached the store. For tests
    /// and graceful shutdown.
    pub async fn settled(&self) {
        loop {
            let idle = self.inner.pending.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.inner.pending.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }

    /// Starts the task that settles dropped reservations, once, on the
    /// runtime of the first budgeted reservation.
    fn start_worker(&self) {
        let mut slot = self
            .inner
            .receiver
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(mut rx) = slot.take() else { return };
        let store = Arc::clone(&self.inner.store);
        let pending = Arc::clone(&self.inner.pending);
        let health = Arc::clone(&self.inner.health);
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                let store = Arc::clone(&store);
                let pending = Arc::clone(&pending);
                let health = Arc::clone(&health);
                tokio::spawn(async move {
                    match job {
                        Job::Release { workload, id } => {
                            if let Err(e) = health.observe(store.release(&workload, id).await) {
                                tracing::warn!(
                                    workload = %workload, reservation = %id, error = %e,
                                    "could not release a dropped reservation; it expires by its ttl"
                                );
                            }
                        }
                    }
                    pending.finish();
                });
            }
        });
    }
}

#[derive(Debug)]
struct Held {
    id: ReservationId,
    lines: Vec<LineAmount>,
}

/// Budget held for one call. Settle it with [`Reservation::commit`] (actual
/// usage) or [`Reservation::release`]; dropping it unsettled (a cancelled
/// call, a disconnected client) releases it in the background.
#[must_use = "a reservation holds budget until it is committed or released"]
pub struct Reservation {
    inner: Arc<Inner>,
    workload: WorkloadId,
    estimate: Spend,
    held: Option<Held>,
}

impl fmt::Debug for Reservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reservation")
            .field("workload", &self.workload)
            .field("estimate", &self.estimate)
            .field("id", &self.held.as_ref().map(|h| h.id))
            .finish()
    }
}

impl Reservation {
    /// The workload it belongs to.
    pub fn workload(&self) -> WorkloadId {
        self.workload
    }

    /// What was reserved.
    pub fn estimate(&self) -> Spend {
        self.estimate
    }

    /// The store's id, when the workload is budgeted.
    pub fn id(&self) -> Option<ReservationId> {
        self.held.as_ref().map(|h| h.id)
    }

    /// Records the actual usage and frees the rest of the reservation.
    ///
    /// The store operation runs as its own task: if the caller's future is
    /// dropped mid-commit, the commit still completes exactly once. On a
    /// store error the reservation stays held until its TTL (erring on the
    /// side of spent) and the error says so.
    pub async fn commit(mut self, actual: Spend) -> Result<CommitReport, CommitError> {
        let Some(held) = self.held.take() else {
            return Ok(CommitReport::default());
        };
        let entry = &self.inner.workloads[self.workload.0 as usize];
        let req = CommitRequest {
            now: self.inner.clock.now(),
            workload: entry.name.clone(),
            id: held.id,
            lines: held
                .lines
                .into_iter()
                .map(|l| LineAmount {
                    amount: if l.key.limit.is_usd() {
                        actual.usd.nanos()
                    } else {
                        actual.tokens
                    },
                    ..l
                })
                .collect(),
        };
        let outcome = self
            .run_detached(req.clone(), |store, req| async move { store.commit(&req).await })
            .await;
        let outcome = outcome.map_err(|source| {
            CommitError::StoreUnavailable(StoreUnavailableError {
                workload: entry.name.clone(),
                source,
            })
        })?;
        Ok(self.report(&req, outcome))
    }

    /// Frees the whole reservation now (the call was not made).
    pub async fn release(mut self) -> Result<(), CommitError> {
        let Some(held) = self.held.take() else {
            return Ok(());
        };
        let workload = self.inner.workloads[self.workload.0 as usize].name.clone();
        let id = held.id;
        let w = workload.clone();
        self.run_detached((), move |store, ()| async move { store.release(&w, id).await })
            .await
            .map_err(|source| CommitError::StoreUnavailable(StoreUnavailableError { workload, source }))
    }

    /// Runs a store operation on its own task so cancelling the caller
    /// does not cancel it; inline when there is no tokio runtime.
    async fn run_detached<A, T, F, Fut>(&self, arg: A, op: F) -> Result<T, StoreError>
    where
        A: Send + 'static,
        T: Send + 'static,
        F: FnOnce(Arc<dyn BudgetStore>, A) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let store = Arc::clone(&self.inner.store);
        let fut = op(Arc::clone(&store), arg);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let pending = Arc::clone(&self.inner.pending);
                pending.start();
                let task = handle.spawn(async move {
                    let r = fut.await;
                    pending.finish();
                    r
                });
                match task.await {
                    Ok(r) => self.inner.health.observe(r),
                    Err(e) => Err(StoreError::new(
                        crate::budget::error::StoreErrorKind::Unavailable,
                        store.describe(),
                        format!("the store task ended abnormally: {e}"),
                    )),
                }
            }
            Err(_) => self.inner.health.observe(fut.await),
        }
    }

    fn report(&self, req: &CommitRequest, outcome: CommitOutcome) -> CommitReport {
        let name = &req.workload;
        for limit in &outcome.alerts {
            let line = req.lines.iter().find(|l| l.key.limit == *limit);
            tracing::warn!(
                workload = %name, limit = %limit,
                threshold = line.and_then(|l| l.alert_at), cap = line.map(|l| l.cap),
                "budget alert: spend reached the workload's alert threshold"
            );
            if let Some(m) = &self.inner.metrics {
                m.budget_alert(name, *limit);
            }
        }
        for limit in &outcome.halted {
            tracing::warn!(workload = %name, limit = %limit, "budget halted: committed spend reached the cap");
        }
        if let Some(m) = &self.inner.metrics {
            for (line, st) in req.lines.iter().zip(&outcome.states) {
                let remaining = line.cap.saturating_sub(st.committed.saturating_add(st.reserved));
                m.budget_remaining(name, line.key.limit, remaining);
            }
        }
        CommitReport {
            alerts: outcome.alerts,
            halted: outcome.halted,
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let Some(held) = self.held.take() else { return };
        let workload = self.inner.workloads[self.workload.0 as usize].name.clone();
        self.inner.pending.start();
        if self.inner.jobs.send(Job::Release { workload, id: held.id }).is_err() {
            // No worker (the runtime is gone): the store's TTL frees it.
            self.inner.pending.finish();
        }
    }
}

#[cfg(test)]
mod tests {
    use router_core::{Usd, WorkloadState};
    use router_state::LimitStatus;

    use super::*;

    fn limit(limit: LimitKind, remaining: u64, halted: bool, unlocked: bool) -> LimitStatus {
        LimitStatus {
            limit,
            period: String::new(),
            resets_at: Millis::ZERO,
            cap: 0,
            committed: 0,
            reserved: 0,
            remaining,
            halted,
            unlocked,
            alert_at: None,
            alert_fired: false,
        }
    }

    #[test]
    fn the_snapshot_state_takes_the_tightest_enforced_limit() {
        let s = WorkloadStatus {
            workload: "w".into(),
            limits: vec![
                limit(LimitKind::TokensPerDay, 500, false, false),
                limit(LimitKind::TokensPerMonth, 100, false, true),
                limit(LimitKind::UsdPerDay, 7, false, false),
                limit(LimitKind::UsdPerMonth, 9, true, false),
            ],
        };
        let st = s.to_state();
        assert_eq!(st.tokens_remaining, Some(500), "the unlocked month is not enforced");
        assert_eq!(st.usd_remaining, Some(Usd::from_nanos(7)));
        assert!(st.halted);
        let none = WorkloadStatus {
            workload: "w".into(),
            limits: Vec::new(),
        }
        .to_state();
        assert_eq!(none, WorkloadState::default());
    }

    #[test]
    fn error_classes_are_stable() {
        let e = ReserveError::Busy(BusyError {
            workload: "w".into(),
            limit: LimitKind::TokensPerDay,
            committed: 1,
            reserved: 2,
            cap: 3,
            amount: 4,
        });
        assert_eq!((e.code(), e.is_transient()), ("budget_busy", true));
        assert_eq!(
            e.to_string(),
            "workload `w` has no tokens_per_day budget free right now: 2 tokens in flight, 1 tokens committed of 3 tokens, this call needs 4 tokens"
        );
    }
}
