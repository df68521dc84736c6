//! Budget reserve + commit per store, against the synchronous book as the
//! baseline measured in the same run.
//!
//! `cargo bench -p router-runtime --bench budget`. The Redis case starts its
//! own `redis-server` on a free loopback port (skipped, with a note, when it
//! cannot start).

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::panic,
    reason = "a benchmark binary: setup failures should stop it loudly"
)]

// The runtime's unit-test policy builder: one source for tests and benches.
#[path = "../../router-state/src/testkit.rs"]
mod testkit;

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use fake_upstream::redis::RedisServer;
use router_core::{Budget, Usd, WorkloadId};
use router_runtime::{
    BudgetLedger, BudgetStore, CommitRequest, ManualClock, MemoryStore, Millis, RedisStore, ReserveOutcome,
    ReserveRequest, Spend, SqliteStore,
};
use router_state::{BudgetBook, budget_lines};

const NOON: Millis = Millis(1_793_491_200_000 + 12 * 3_600_000);

fn budget() -> Budget {
    Budget {
        tokens_per_day: Some(u64::MAX / 4),
        usd_per_month: Some(Usd::from_dollars(1_000_000)),
        alert_percent: Some(80),
        ..Budget::default()
    }
}

const CALL: Spend = Spend {
    tokens: 1_200,
    usd: Usd::from_nanos(900_000),
};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let policy = testkit::policy(&[("w", budget())]);
    let mut group = c.benchmark_group("budget_reserve_commit");

    // Baseline: the synchronous rules with no store around them.
    let mut book = BudgetBook::new();
    let b = budget();
    group.bench_function("book (sync baseline)", |bench| {
        bench.iter(|| {
            let req = ReserveRequest::new("w", &b, CALL, NOON, Duration::from_secs(600));
            let ReserveOutcome::Granted(id) = book.reserve(&req) else {
                panic!("refused")
            };
            book.commit(&CommitRequest {
                workload: "w".into(),
                id,
                lines: budget_lines(&b, CALL, NOON),
                now: NOON,
            })
        });
    });

    let dir = tempfile::tempdir().unwrap();
    let mut stores: Vec<(&str, Arc<dyn BudgetStore>)> = vec![("memory", Arc::new(MemoryStore::new()))];
    let sqlite = rt.block_on(SqliteStore::open(dir.path().join("bench.db"))).unwrap();
    stores.push(("sqlite (WAL, synchronous=FULL)", Arc::new(sqlite)));
    let redis = RedisServer::try_start();
    match &redis {
        Ok(server) => {
            let store = rt.block_on(RedisStore::connect(&server.url(), "bench")).unwrap();
            stores.push(("redis (loopback)", Arc::new(store)));
        }
        Err(e) => eprintln!("skipping the Redis case: {e}"),
    }
    for (name, store) in stores {
        let ledger = rt.block_on(async {
            BudgetLedger::builder(&policy, store)
                .clock(Arc::new(ManualClock::new(NOON)))
                .build()
        });
        group.bench_function(name, |bench| {
            bench.iter(|| {
                rt.block_on(async {
                    let r = ledger.reserve(WorkloadId(0), CALL).await.unwrap();
                    r.commit(CALL).await.unwrap()
                })
            });
        });
    }
    group.finish();
    drop(redis);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
