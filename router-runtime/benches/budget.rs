//! Budget reserve + commit per store, against the synchronous book as the
//! baseline measured in the same run.
//!
//! `cargo bench -p router-runtime --bench budget`. The Redis case starts its
//! own `redis-server` on a free loopback port (skipped, with a note, when
//! the binary is missing).

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::panic,
    reason = "a benchmark binary: setup failures should stop it loudly"
)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use router_core::{
    Adapter, Budget, Capabilities, DataClass, Defaults, Limits, NodeKind, Origin, Policy, Provider, ProviderId,
    RouteGraph, RouteNode, Target, TargetId, Tier, Usd, Workload, WorkloadId,
};
use router_runtime::{
    BudgetBook, BudgetLedger, BudgetStore, CommitRequest, ManualClock, MemoryStore, Millis, RedisStore, ReserveOutcome,
    ReserveRequest, Spend, SqliteStore, budget_lines,
};

const NOON: Millis = Millis(1_793_491_200_000 + 12 * 3_600_000);

fn budget() -> Budget {
    Budget {
        tokens_per_day: Some(u64::MAX / 4),
        usd_per_month: Some(Usd::from_dollars(1_000_000)),
        alert_percent: Some(80),
        ..Budget::default()
    }
}

fn policy() -> Policy {
    let mut routes = RouteGraph::new();
    let leaf = routes.add(RouteNode {
        name: None,
        kind: NodeKind::Target { target: TargetId(0) },
        origin: Origin::default(),
    });
    Policy::new(
        Vec::new(),
        vec![Provider {
            name: "p".into(),
            adapter: Adapter::Mock,
            base_url: None,
            key: None,
            tier: Tier::Paid,
            jurisdiction: None,
            max_data: DataClass::Private,
            trains_on_inputs: false,
            stores_inputs: false,
            no_store_header: None,
            headers: Vec::new(),
            limits: Limits::default(),
            timeout: None,
            simulate: None,
            targets: vec![TargetId(0)],
            origin: Origin::default(),
        }],
        vec![Target {
            provider: ProviderId(0),
            model: "m".into(),
            api_id: "m".into(),
            version: None,
            price: None,
            context_window: None,
            max_output: None,
            capabilities: Capabilities::NONE,
            simulate: None,
            origin: Origin::default(),
        }],
        vec![Workload {
            name: "w".into(),
            aliases: Vec::new(),
            task: None,
            quality: None,
            data: DataClass::Public,
            max_tokens: None,
            latency_budget: None,
            max_cost_per_call: None,
            requires: Capabilities::NONE,
            budget: budget(),
            max_attempts: None,
            idempotency_window: None,
            route: leaf,
            origin: Origin::default(),
        }],
        routes,
        Defaults::default(),
    )
}

const CALL: Spend = Spend {
    tokens: 1_200,
    usd: Usd::from_nanos(900_000),
};

struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis() -> Option<(Redis, String)> {
    let port = TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let guard = Redis(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some((guard, format!("redis://127.0.0.1:{port}/0")));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let policy = policy();
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
    let redis = start_redis();
    match &redis {
        Some((_, url)) => {
            let store = rt.block_on(RedisStore::connect(url, "bench")).unwrap();
            stores.push(("redis (loopback)", Arc::new(store)));
        }
        None => eprintln!("redis-server not available: skipping the Redis case"),
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
