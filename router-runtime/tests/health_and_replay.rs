//! The state pieces together, through the public API only: a target is
//! ejected and recovers while traffic falls to its sibling; idempotent
//! replays return the stored answer without new spend, and a reused key
//! with another body is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{NOON, policy};
use router_core::{Budget, StateSnapshot, TargetId, Usd, WorkloadId};
use router_runtime::{
    BudgetLedger, HealthConfig, IdempotencyCache, IdempotencyKey, LimitKind, ManualClock, MemoryStore, Millis,
    RetryBudget, Served, Spend,
};
// The synchronous books are router-state's; the runtime no longer
// re-exports what an embedder never touches.
use router_state::{Admission, AttemptOutcome, HealthBook, LatencyBook};

#[test]
fn a_failing_target_is_ejected_and_recovers() {
    let policy = policy(&[("w", Budget::default())]);
    let mut health = HealthBook::new(&policy, HealthConfig::default());
    let mut latency = LatencyBook::new(policy.targets.len());
    let mut retries = RetryBudget::default();
    let (primary, sibling) = (TargetId(0), TargetId(1));
    let mut now = NOON;
    let mut served_by_sibling = 0;
    // 400 calls, one every 100 ms; the primary fails every attempt for the
    // first 30 s, then heals.
    for i in 0..400u64 {
        now = Millis(NOON.0 + i * 100);
        retries.deposit(now);
        let healed = now.0 >= NOON.0 + 30_000;
        match health.admit(primary, now) {
            Admission::Allowed | Admission::Probe => {
                let outcome = if healed {
                    AttemptOutcome::Success
                } else {
                    AttemptOutcome::ServerError
                };
                health.record(primary, outcome, now);
                latency.record_attempt(primary, now, outcome, Duration::from_millis(40), None);
                if outcome == AttemptOutcome::Success {
                    continue;
                }
                if !retries.withdraw(now) {
                    continue;
                }
            }
            Admission::Ejected { .. } | Admission::CoolingDown { .. } => {}
        }
        assert_eq!(health.admit(sibling, now), Admission::Allowed);
        health.record(sibling, AttemptOutcome::Success, now);
        served_by_sibling += 1;
    }
    // Ejected after 5 failures, re-ejected on failed probes until 30 s
    // (10 + 20 s), back on the first probe after healing.
    assert!(served_by_sibling > 250, "{served_by_sibling}");
    assert_eq!(health.admit(primary, now), Admission::Allowed);
    let mut snap = StateSnapshot::for_policy(&policy, now.0);
    health.fill_snapshot(&mut snap, now);
    latency.fill_snapshot(&mut snap, now);
    assert_eq!(snap.target(primary).ejected_until_ms, None);
    assert!(snap.target(primary).p95_ms.is_some());
}

#[tokio::test]
async fn replays_cost_nothing_and_reused_keys_are_refused() {
    let policy = policy(&[(
        "w",
        Budget {
            tokens_per_day: Some(1_000),
            ..Budget::default()
        },
    )]);
    let clock = ManualClock::new(NOON);
    let ledger = BudgetLedger::builder(&policy, Arc::new(MemoryStore::new()))
        .clock(Arc::new(clock.clone()))
        .build();
    let cache: IdempotencyCache<String, String> = IdempotencyCache::new(1_000, Arc::new(clock.clone()));
    let call = Spend {
        tokens: 100,
        usd: Usd::ZERO,
    };
    let billed_call = || async {
        let r = ledger.reserve(WorkloadId(0), call).await.map_err(|e| e.to_string())?;
        r.commit(call).await.map_err(|e| e.to_string())?;
        Ok::<_, String>("the answer".to_owned())
    };
    let key = || IdempotencyKey::Caller("req-42".to_owned());
    let window = Duration::from_secs(300);
    for (i, expected) in [Served::Fresh, Served::Replayed, Served::Replayed]
        .into_iter()
        .enumerate()
    {
        let (answer, served) = cache
            .run(WorkloadId(0), key(), 0xfeed, window, billed_call)
            .await
            .unwrap();
        assert_eq!((answer.unwrap().as_str(), served), ("the answer", expected), "call {i}");
    }
    let status = ledger.status().await.unwrap();
    let tokens = status[0]
        .limits
        .iter()
        .find(|l| l.limit == LimitKind::TokensPerDay)
        .unwrap();
    assert_eq!(tokens.committed, 100, "billed once for three calls");
    let err = cache
        .run(WorkloadId(0), key(), 0xbeef, window, billed_call)
        .await
        .unwrap_err();
    assert_eq!(router_runtime::KeyReusedError::CODE, "idempotency_key_reused");
    assert!(err.to_string().contains("different request body"));
    // After the window the key may be used afresh (and is billed again).
    clock.advance(window);
    let (_, served) = cache
        .run(WorkloadId(0), key(), 0xbeef, window, billed_call)
        .await
        .unwrap();
    assert_eq!(served, Served::Fresh);
}
