//! One conformance suite for every budget store: memory, SQLite (a real
//! file), Redis (a real server). Each scenario runs against all three.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Backend, NOON, policy};
use router_core::{Budget, Policy, Usd, WorkloadId};
use router_runtime::{BudgetLedger, BudgetStore, LimitKind, ManualClock, Metrics, Millis, ReserveError, Spend};
use tokio::sync::Barrier;

/// `capped`: 100 tokens and $1 a day, alert at 80 %. `monthly`: 1,000
/// tokens a month. `free`: unbudgeted.
fn test_policy() -> Policy {
    policy(&[
        (
            "capped",
            Budget {
                tokens_per_day: Some(100),
                usd_per_day: Some(Usd::from_dollars(1)),
                alert_percent: Some(80),
                ..Budget::default()
            },
        ),
        (
            "monthly",
            Budget {
                tokens_per_month: Some(1_000),
                ..Budget::default()
            },
        ),
        ("free", Budget::default()),
    ])
}

const CAPPED: WorkloadId = WorkloadId(0);
const MONTHLY: WorkloadId = WorkloadId(1);
const FREE: WorkloadId = WorkloadId(2);

/// A call that fits ten times in `capped`'s day: 10 tokens, $0.05.
const TENTH: Spend = Spend {
    tokens: 10,
    usd: Usd::from_nanos(50_000_000),
};

fn ledger(store: Arc<dyn BudgetStore>, clock: &ManualClock) -> BudgetLedger {
    BudgetLedger::builder(&test_policy(), store)
        .clock(Arc::new(clock.clone()))
        .build()
}

async fn line(ledger: &BudgetLedger, workload: WorkloadId, limit: LimitKind) -> router_runtime::LimitStatus {
    let status = ledger.status().await.unwrap();
    status[workload.0 as usize]
        .limits
        .iter()
        .find(|l| l.limit == limit)
        .cloned()
        .unwrap()
}

/// 200 concurrent calls, each holding its reservation until every call has
/// asked: exactly 10 are granted; after they commit, spend is at the cap.
async fn two_hundred_calls_fit_ten(backend: Backend, ledgers: usize) {
    let clock = ManualClock::new(NOON);
    let mut all = Vec::new();
    for _ in 0..ledgers {
        all.push(ledger(backend.store().await, &clock));
    }
    let barrier = Arc::new(Barrier::new(200));
    let granted = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..200 {
        let ledger = all[i % ledgers].clone();
        let barrier = Arc::clone(&barrier);
        let granted = Arc::clone(&granted);
        tasks.push(tokio::spawn(async move {
            let r = ledger.reserve(CAPPED, TENTH).await;
            barrier.wait().await;
            match r {
                Ok(res) => {
                    granted.fetch_add(1, Ordering::SeqCst);
                    res.commit(TENTH).await.unwrap();
                }
                Err(ReserveError::Busy(_) | ReserveError::Halted(_)) => {}
                Err(e) => panic!("unexpected refusal: {e}"),
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(granted.load(Ordering::SeqCst), 10);
    let tokens = line(&all[0], CAPPED, LimitKind::TokensPerDay).await;
    assert_eq!((tokens.committed, tokens.reserved, tokens.remaining), (100, 0, 0));
    assert!(tokens.halted, "committed spend reached the cap");
    let usd = line(&all[0], CAPPED, LimitKind::UsdPerDay).await;
    assert_eq!(usd.committed, 500_000_000);
}

/// 200 callers keep calling (reserve, commit at once, retry when busy)
/// until halted: the commits interleave with reservations, and the total
/// never passes the cap.
async fn interleaved_callers_never_overspend(backend: Backend, ledgers: usize) {
    let clock = ManualClock::new(NOON);
    let mut all = Vec::new();
    for _ in 0..ledgers {
        all.push(ledger(backend.store().await, &clock));
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..200 {
        let ledger = all[i % ledgers].clone();
        let calls = Arc::clone(&calls);
        tasks.push(tokio::spawn(async move {
            for _ in 0..10_000 {
                match ledger.reserve(CAPPED, TENTH).await {
                    Ok(res) => {
                        calls.fetch_add(1, Ordering::SeqCst);
                        // Actual use a little under the estimate.
                        res.commit(Spend { tokens: 9, ..TENTH }).await.unwrap();
                    }
                    Err(ReserveError::Busy(_)) => tokio::task::yield_now().await,
                    Err(ReserveError::Halted(_)) => return,
                    Err(e) => panic!("unexpected refusal: {e}"),
                }
            }
            panic!("a caller was never halted");
        }));
    }
    // Bounded in time as well as in count: a store that never halts (as a
    // Redis whose lines vanish at once would) fails here within seconds
    // instead of spinning through two million round trips.
    let all_halted = async {
        for t in tasks {
            t.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(20), all_halted)
        .await
        .unwrap_or_else(|_| panic!("waited 20 s for every caller to be halted by the cap; some never were"));
    let tokens = line(&all[0], CAPPED, LimitKind::TokensPerDay).await;
    assert!(tokens.committed <= 100, "overspent: {tokens:?}");
    assert_eq!(tokens.committed, 9 * calls.load(Ordering::SeqCst) as u64);
    // 9 per call: 11 calls fit (99); the 12th cannot, alone, so halts.
    assert_eq!(calls.load(Ordering::SeqCst), 11);
    assert!(tokens.halted);
}

/// A reservation whose holder is dropped (a cancelled call) is released.
async fn cancelled_calls_release_their_reservation(backend: Backend) {
    let clock = ManualClock::new(NOON);
    let ledger = ledger(backend.store().await, &clock);
    let l2 = ledger.clone();
    let (held_tx, held_rx) = tokio::sync::oneshot::channel();
    let call = tokio::spawn(async move {
        let _reservation = l2.reserve(CAPPED, Spend { tokens: 100, ..TENTH }).await.unwrap();
        let _ = held_tx.send(());
        std::future::pending::<()>().await;
    });
    held_rx.await.unwrap();
    assert_eq!(line(&ledger, CAPPED, LimitKind::TokensPerDay).await.reserved, 100);
    assert!(matches!(
        ledger.reserve(CAPPED, TENTH).await,
        Err(ReserveError::Busy(_))
    ));
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    ledger.settled().await;
    let tokens = line(&ledger, CAPPED, LimitKind::TokensPerDay).await;
    assert_eq!((tokens.reserved, tokens.committed), (0, 0));
    // The whole budget is available again.
    ledger
        .reserve(CAPPED, Spend { tokens: 100, ..TENTH })
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
}

/// Halts stay until the UTC day rolls over; the monthly limit does not
/// roll over with the day.
async fn halts_last_until_rollover(backend: Backend) {
    let clock = ManualClock::new(NOON);
    let ledger = ledger(backend.store().await, &clock);
    ledger
        .reserve(CAPPED, TENTH)
        .await
        .unwrap()
        .commit(Spend { tokens: 100, ..TENTH })
        .await
        .unwrap();
    let Err(ReserveError::Halted(h)) = ledger.reserve(CAPPED, Spend { tokens: 1, ..TENTH }).await else {
        panic!("expected a halt");
    };
    assert_eq!(
        (h.limit(), h.period(), h.committed(), h.cap()),
        (LimitKind::TokensPerDay, "2026-11-01", 100, 100)
    );
    assert_eq!(h.until(), router_runtime::Millis(NOON.0 + 12 * 3_600_000));
    let r = ledger.reserve(MONTHLY, Spend { tokens: 600, ..TENTH }).await.unwrap();
    r.commit(Spend { tokens: 600, ..TENTH }).await.unwrap();
    // One millisecond before midnight: still halted.
    clock.set(router_runtime::Millis(h.until().0 - 1));
    assert!(matches!(
        ledger.reserve(CAPPED, TENTH).await,
        Err(ReserveError::Halted(_))
    ));
    clock.set(h.until());
    ledger
        .reserve(CAPPED, TENTH)
        .await
        .unwrap()
        .commit(TENTH)
        .await
        .unwrap();
    let tokens = line(&ledger, CAPPED, LimitKind::TokensPerDay).await;
    assert_eq!(
        (tokens.period.as_str(), tokens.committed, tokens.halted),
        ("2026-11-02", 10, false)
    );
    // The month goes on: 600 of 1,000 already spent.
    assert!(matches!(
        ledger.reserve(MONTHLY, Spend { tokens: 500, ..TENTH }).await,
        Err(ReserveError::Halted(_))
    ));
}

/// Unlock lifts a halted limit until rollover; spend is still counted.
async fn unlock_lifts_the_halt_until_rollover(backend: Backend) {
    let clock = ManualClock::new(NOON);
    let ledger = ledger(backend.store().await, &clock);
    assert!(ledger.unlock(CAPPED).await.unwrap().is_empty(), "nothing halted yet");
    ledger
        .reserve(CAPPED, TENTH)
        .await
        .unwrap()
        .commit(Spend { tokens: 100, ..TENTH })
        .await
        .unwrap();
    assert!(matches!(
        ledger.reserve(CAPPED, TENTH).await,
        Err(ReserveError::Halted(_))
    ));
    // A second router (or the CLI) unlocks through its own connection.
    let other = self::ledger(backend.store().await, &clock);
    assert_eq!(other.unlock(CAPPED).await.unwrap(), vec![LimitKind::TokensPerDay]);
    ledger
        .reserve(CAPPED, TENTH)
        .await
        .unwrap()
        .commit(TENTH)
        .await
        .unwrap();
    let tokens = line(&ledger, CAPPED, LimitKind::TokensPerDay).await;
    assert_eq!((tokens.committed, tokens.halted, tokens.unlocked), (110, false, true));
    // The next day is enforced again.
    clock.set(router_runtime::Millis(NOON.0 + 86_400_000));
    let tokens = line(&ledger, CAPPED, LimitKind::TokensPerDay).await;
    assert_eq!((tokens.committed, tokens.unlocked), (0, false));
}

/// The alert fires once per period, whichever ledger crosses it, as a
/// metric too.
async fn alerts_fire_once_per_period(backend: Backend) {
    let clock = ManualClock::new(NOON);
    let metrics = Metrics::new();
    let a = BudgetLedger::builder(&test_policy(), backend.store().await)
        .clock(Arc::new(clock.clone()))
        .metrics(metrics.clone())
        .build();
    let b = ledger(backend.store().await, &clock);
    let mut alerts = Vec::new();
    for (i, l) in [&a, &b, &a, &b, &a, &b, &a, &b, &a].into_iter().enumerate() {
        let report = l.reserve(CAPPED, TENTH).await.unwrap().commit(TENTH).await.unwrap();
        alerts.extend(report.alerts.iter().map(|k| (i, *k)));
    }
    // 80 % of 100 tokens is reached by the 8th call; $0.45 of $1 alerts nothing.
    assert_eq!(alerts, vec![(7, LimitKind::TokensPerDay)]);
    assert!(!line(&a, CAPPED, LimitKind::UsdPerDay).await.alert_fired);
    assert!(line(&a, CAPPED, LimitKind::TokensPerDay).await.alert_fired);
    let text = metrics.render();
    assert!(
        !text.contains("routec_budget_alerts_total{"),
        "b crossed it, not a:\n{text}"
    );
    assert!(
        text.contains("routec_budget_remaining{workload=\"capped\",limit=\"tokens_per_day\"} 10"),
        "{text}"
    );
}

/// A reservation never settled (its router crashed) expires after the TTL.
async fn abandoned_reservations_expire(backend: Backend) {
    let clock = ManualClock::new(NOON);
    let store = backend.store().await;
    let crashed = BudgetLedger::builder(&test_policy(), Arc::clone(&store))
        .clock(Arc::new(clock.clone()))
        .reservation_ttl(Duration::from_secs(60))
        .build();
    let held = crashed.reserve(CAPPED, Spend { tokens: 100, ..TENTH }).await.unwrap();
    // The crash: the reservation is never settled, not even by Drop.
    std::mem::forget(held);
    let ledger = ledger(backend.store().await, &clock);
    assert!(matches!(
        ledger.reserve(CAPPED, TENTH).await,
        Err(ReserveError::Busy(_))
    ));
    clock.advance(Duration::from_secs(60));
    ledger
        .reserve(CAPPED, TENTH)
        .await
        .unwrap()
        .commit(TENTH)
        .await
        .unwrap();
    let tokens = line(&ledger, CAPPED, LimitKind::TokensPerDay).await;
    assert_eq!((tokens.committed, tokens.reserved), (10, 0));
}

/// Estimates above a whole limit are refused without halting; unbudgeted
/// workloads never touch the store.
async fn too_large_and_unbudgeted(backend: Backend) {
    let clock = ManualClock::new(NOON);
    let ledger = ledger(backend.store().await, &clock);
    let Err(ReserveError::TooLarge(e)) = ledger.reserve(CAPPED, Spend { tokens: 101, ..TENTH }).await else {
        panic!("expected too large");
    };
    assert_eq!((e.amount(), e.cap()), (101, 100));
    ledger.reserve(CAPPED, TENTH).await.unwrap().release().await.unwrap();
    let r = ledger
        .reserve(
            FREE,
            Spend {
                tokens: u64::MAX,
                usd: Usd::from_dollars(1_000_000),
            },
        )
        .await
        .unwrap();
    assert_eq!(r.id(), None);
    r.commit(TENTH).await.unwrap();
    assert!(ledger.status().await.unwrap()[FREE.0 as usize].limits.is_empty());
}

/// The ledger's clock, not the store's, decides periods and expiry: a
/// ledger whose clock stands ten years before or after the store's host
/// (a manual clock in a test, a skewed gateway host) keeps its lines, its
/// halts and its reservations exactly as one at the right time does.
async fn any_clock_keeps_its_lines(backend: Backend) {
    const TEN_YEARS_MS: u64 = 3_652 * 86_400_000;
    for noon in [Millis(NOON.0 - TEN_YEARS_MS), Millis(NOON.0 + TEN_YEARS_MS)] {
        let clock = ManualClock::new(noon);
        let ledger = ledger(backend.store().await, &clock);
        ledger
            .reserve(CAPPED, TENTH)
            .await
            .unwrap()
            .commit(TENTH)
            .await
            .unwrap();
        let held = ledger.reserve(CAPPED, Spend { tokens: 80, ..TENTH }).await.unwrap();
        let tokens = line(&ledger, CAPPED, LimitKind::TokensPerDay).await;
        assert_eq!(
            (tokens.committed, tokens.reserved),
            (10, 80),
            "lines written at {noon:?} were kept"
        );
        held.commit(Spend { tokens: 90, ..TENTH }).await.unwrap();
        assert!(matches!(
            ledger.reserve(CAPPED, TENTH).await,
            Err(ReserveError::Halted(_))
        ));
        let tokens = line(&ledger, CAPPED, LimitKind::TokensPerDay).await;
        assert_eq!(
            (tokens.committed, tokens.halted),
            (100, true),
            "the halt was kept at {noon:?}"
        );
    }
}

macro_rules! against_every_store {
    ($($scenario:ident $(($($arg:expr),*))?;)*) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                super::$scenario(super::Backend::memory() $($(, $arg)*)?).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario(super::Backend::sqlite() $($(, $arg)*)?).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                super::$scenario(super::Backend::redis() $($(, $arg)*)?).await;
            }
        }
    )*};
}

against_every_store! {
    two_hundred_calls_fit_ten(1);
    interleaved_callers_never_overspend(1);
    cancelled_calls_release_their_reservation;
    halts_last_until_rollover;
    unlock_lifts_the_halt_until_rollover;
    alerts_fire_once_per_period;
    abandoned_reservations_expire;
    too_large_and_unbudgeted;
    any_clock_keeps_its_lines;
}

/// Two ledgers, each with its own connection to one SQLite file or Redis.
mod shared_by_two_ledgers {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_file_200_calls_fit_ten() {
        two_hundred_calls_fit_ten(Backend::sqlite(), 2).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_200_calls_fit_ten() {
        two_hundred_calls_fit_ten(Backend::redis(), 2).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_file_interleaved_never_overspends() {
        interleaved_callers_never_overspend(Backend::sqlite(), 2).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_interleaved_never_overspends() {
        interleaved_callers_never_overspend(Backend::redis(), 2).await;
    }
}

/// A store whose commits wait for a gate, to cancel a commit mid-flight.
#[derive(Debug)]
struct GatedStore {
    inner: router_runtime::MemoryStore,
    gate: tokio::sync::Semaphore,
}

#[async_trait::async_trait]
impl BudgetStore for GatedStore {
    async fn reserve(
        &self,
        req: &router_runtime::ReserveRequest,
    ) -> Result<router_runtime::ReserveOutcome, router_runtime::StoreError> {
        self.inner.reserve(req).await
    }
    async fn commit(
        &self,
        req: &router_runtime::CommitRequest,
    ) -> Result<router_runtime::CommitOutcome, router_runtime::StoreError> {
        let _permit = self.gate.acquire().await;
        self.inner.commit(req).await
    }
    async fn release(
        &self,
        workload: &str,
        id: router_runtime::ReservationId,
    ) -> Result<(), router_runtime::StoreError> {
        self.inner.release(workload, id).await
    }
    async fn unlock(
        &self,
        workload: &str,
        lines: &[router_runtime::LineKey],
    ) -> Result<Vec<LimitKind>, router_runtime::StoreError> {
        self.inner.unlock(workload, lines).await
    }
    async fn status(
        &self,
        workload: &str,
        lines: &[router_runtime::LineKey],
        now: router_runtime::Millis,
    ) -> Result<Vec<router_runtime::LineState>, router_runtime::StoreError> {
        self.inner.status(workload, lines, now).await
    }
    fn describe(&self) -> String {
        "gated".into()
    }
}

/// A commit whose caller is cancelled while the store is still working
/// lands anyway, exactly once: the spend is never lost.
#[tokio::test]
async fn a_cancelled_commit_still_lands() {
    let clock = ManualClock::new(NOON);
    let store = Arc::new(GatedStore {
        inner: router_runtime::MemoryStore::new(),
        gate: tokio::sync::Semaphore::new(0),
    });
    let ledger = ledger(Arc::clone(&store) as Arc<dyn BudgetStore>, &clock);
    let r = ledger.reserve(CAPPED, TENTH).await.unwrap();
    let mut commit = Box::pin(r.commit(Spend { tokens: 7, ..TENTH }));
    assert!(
        futures::poll!(commit.as_mut()).is_pending(),
        "the gate holds the commit"
    );
    drop(commit);
    store.gate.add_permits(1);
    ledger.settled().await;
    let tokens = line(&ledger, CAPPED, LimitKind::TokensPerDay).await;
    assert_eq!((tokens.committed, tokens.reserved), (7, 0));
}
