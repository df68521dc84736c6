//! The cost per call of the provider-limit check shared through Redis,
//! against the local-only check measured in the same run.
//!
//! `cargo bench -p router-runtime --bench shared`. Rows:
//! - `local check`: `LimitBook::admit` (and its refund, so it never runs
//!   dry), the check every call pays without Redis;
//! - `call, local limits` and `call, shared limits (redis loopback)`: one
//!   whole `Router::complete` over the mock provider, without and with a
//!   `SharedState`; their difference is what the shared check adds to a
//!   call (one script round trip to a `redis-server` this bench starts on a
//!   free loopback port; skipped with a note when it cannot start).

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr,
    clippy::panic,
    reason = "a benchmark binary: setup failures should stop it loudly"
)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use fake_upstream::redis::RedisServer;
use policy_lang::{SourceFile, compile};
use providers::ChatRequest;
use router_runtime::{Call, Millis, Router, SharedState};
use router_state::LimitBook;

const POLICY: &str = r#"
    provider lim { adapter mock; tier free; limits rpm 1000000000, tpm 1000000000; model m { price free } }
    workload w { data public; route lim/m }
"#;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let policy = Arc::new(
        compile(&[SourceFile::new("bench.route", POLICY)])
            .map_err(|r| format!("{r:?}"))
            .unwrap()
            .into_policy(),
    );
    let provider = policy.target(policy.target_named("lim", "m").unwrap()).provider;
    let mut group = c.benchmark_group("provider_limits");

    let mut book = LimitBook::new(&policy);
    group.bench_function("local check (LimitBook)", |b| {
        b.iter(|| {
            book.admit(provider, 500, Millis(1_000)).unwrap();
            book.refund(provider, 500, Millis(1_000));
        });
    });

    let call = || Call::new("w", ChatRequest::user("hi"));
    let local = Router::builder(Arc::clone(&policy)).build().unwrap();
    group.bench_function("call, local limits", |b| {
        b.iter(|| rt.block_on(local.complete(call())).unwrap());
    });

    let redis = RedisServer::try_start();
    match &redis {
        Ok(server) => {
            let state = Arc::new(rt.block_on(SharedState::connect(&server.url(), 1)).unwrap());
            let shared = Router::builder(Arc::clone(&policy))
                .shared_state(state)
                .build()
                .unwrap();
            group.bench_function("call, shared limits (redis loopback)", |b| {
                b.iter(|| rt.block_on(shared.complete(call())).unwrap());
            });
        }
        Err(e) => eprintln!("skipping the Redis case: {e}"),
    }
    group.finish();
    drop(redis);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
