//! Redis stops mid-run: budgeted calls fail closed with a clear error,
//! unbudgeted ones carry on, the store is reported down, and service (and
//! the report) resumes when Redis is back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{NOON, RedisServer, policy};
use router_core::{Budget, Usd, WorkloadId};
use router_runtime::{
    BudgetLedger, CommitError, ManualClock, Metrics, RedisStore, ReserveError, Spend, StoreErrorKind,
};

const CALL: Spend = Spend {
    tokens: 10,
    usd: Usd::ZERO,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_means_budgeted_calls_are_refused() {
    let mut server = RedisServer::start();
    let port = server.port();
    let store = Arc::new(RedisStore::connect(&server.url(), "routec-test").await.unwrap());
    let policy = policy(&[
        (
            "budgeted",
            Budget {
                tokens_per_day: Some(1_000),
                ..Budget::default()
            },
        ),
        ("unbudgeted", Budget::default()),
    ]);
    let metrics = Metrics::new();
    let ledger = BudgetLedger::builder(&policy, store)
        .clock(Arc::new(ManualClock::new(NOON)))
        .metrics(metrics.clone())
        .build();
    ledger
        .reserve(WorkloadId(0), CALL)
        .await
        .unwrap()
        .commit(CALL)
        .await
        .unwrap();
    let in_flight = ledger.reserve(WorkloadId(0), CALL).await.unwrap();
    assert!(ledger.store_is_up());

    server.stop();

    let Err(ReserveError::StoreUnavailable(e)) = ledger.reserve(WorkloadId(0), CALL).await else {
        panic!("a budgeted call went through without its store");
    };
    assert_eq!(e.workload(), "budgeted");
    assert!(matches!(
        e.store_error().kind(),
        StoreErrorKind::Unavailable | StoreErrorKind::Timeout
    ));
    let msg = e.to_string();
    assert!(
        msg.contains("workload `budgeted` is budgeted and its budget store cannot be reached"),
        "{msg}"
    );
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(!ledger.store_is_up());
    let text = metrics.render();
    assert!(text.contains("routec_budget_store_up 0\n"), "{text}");
    assert!(text.contains("routec_budget_store_errors_total{kind="), "{text}");
    // The call that was in flight cannot record its spend either, and says so.
    let Err(CommitError::StoreUnavailable(_)) = in_flight.commit(CALL).await else {
        panic!("a commit succeeded without its store");
    };
    // Unbudgeted workloads never needed the store.
    ledger
        .reserve(WorkloadId(1), CALL)
        .await
        .unwrap()
        .commit(CALL)
        .await
        .unwrap();
    assert!(ledger.status().await.is_err());

    // Redis comes back (empty: no persistence in this test); the connection
    // recovers by itself within a bounded number of tries.
    let _server = RedisServer::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut recovered = false;
    for _ in 0..200 {
        match ledger.reserve(WorkloadId(0), CALL).await {
            Ok(r) => {
                r.commit(CALL).await.unwrap();
                recovered = true;
                break;
            }
            Err(ReserveError::StoreUnavailable(_)) if Instant::now() < deadline => {
                // A bounded retry, not a wait for an event: the store's
                // connection manager reconnects on its own and says nothing
                // when it has, so only a call can tell.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("no recovery: {e}"),
        }
    }
    assert!(recovered);
    assert!(ledger.store_is_up());
    assert!(metrics.render().contains("routec_budget_store_up 1\n"));
}
