//! Budgets cannot be overspent by concurrent calls: 200 calls against a
//! budget that fits 10, through real HTTP to a fake upstream, for every
//! store and for two routers sharing one store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(unused_imports, reason = "the shared helpers export more than this file uses")]
mod common;
mod support;

use std::collections::BTreeMap;

use common::Backend;
use fake_upstream::{FakeUpstream, Flavor};
use router_runtime::Router;
use support::{ask, openai, router};
use tokio::task::JoinSet;

const CALLS: usize = 200;
/// Input plus output tokens the fake reports for every answer (`chat_ok.json`).
const USAGE: u64 = 29;

fn text(fake: &FakeUpstream, budget: &str) -> String {
    format!(
        "{}\nworkload w {{ data public; max_tokens 25; {budget} route fake/m }}",
        openai("fake", fake, "")
    )
}

/// A budget of ten calls' estimates: ten reservations fit at once, and the
/// ten commits leave less than an eleventh needs.
async fn cap_for_ten(fake: &FakeUpstream) -> u64 {
    let estimate = support::estimate_of(&text(fake, ""), "w").await;
    assert!(
        (USAGE..=32).contains(&estimate),
        "the test needs an estimate within 10 % of the fake's usage, got {estimate}"
    );
    10 * estimate
}

/// Fires `CALLS` calls spread over `routers`; returns the successes and the
/// error codes seen.
async fn hammer(routers: &[Router]) -> (u64, BTreeMap<&'static str, usize>) {
    let mut tasks = JoinSet::new();
    for i in 0..CALLS {
        let r = routers[i % routers.len()].clone();
        tasks.spawn(async move { r.complete(ask("w")).await });
    }
    let (mut ok, mut errors) = (0, BTreeMap::new());
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => *errors.entry(e.code()).or_insert(0) += 1,
        }
    }
    (ok, errors)
}

async fn at_most_ten(backend: Backend, instances: usize) {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let cap = cap_for_ten(&fake).await;
    let probe_calls = fake.calls();
    let text = text(&fake, &format!("budget {cap} tokens/day;"));
    let mut routers = Vec::new();
    for _ in 0..instances {
        routers.push(router(&text).budget_store(backend.store().await).build().unwrap());
    }
    let (ok, errors) = hammer(&routers).await;
    let dispatched = fake.calls() - probe_calls;
    assert!(
        dispatched <= 10,
        "{dispatched} calls reached the upstream; errors {errors:?}"
    );
    assert_eq!(ok, dispatched, "every dispatched call answered");
    assert_eq!(ok, 10, "the budget fits exactly ten; errors {errors:?}");
    for code in errors.keys() {
        assert!(
            ["budget_busy", "budget_halted", "budget_exhausted"].contains(code),
            "unexpected error {code}: {errors:?}"
        );
    }
    let (committed, reserved) = support::tokens(&routers[0], "w").await;
    assert_eq!(committed, ok * USAGE, "actual usage is committed");
    assert!(committed <= cap, "{committed} committed over a cap of {cap}");
    assert_eq!(reserved, 0, "nothing stays reserved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_admits_ten_of_two_hundred() {
    at_most_ten(Backend::memory(), 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_admits_ten_of_two_hundred() {
    at_most_ten(Backend::sqlite(), 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_admits_ten_of_two_hundred() {
    at_most_ten(Backend::redis(), 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routers_sharing_one_sqlite_file_admit_ten() {
    at_most_ten(Backend::sqlite(), 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routers_sharing_one_redis_admit_ten() {
    at_most_ten(Backend::redis(), 2).await;
}

/// The states a budget line can be in, as a call meets them, for every
/// store: the engine finds no target the budget covers, and the ledger
/// (the one definition `routec budget status` shows and `unlock` lifts)
/// says which state it is.
/// Each state gets a fresh store (`backend()`), since one store keeps the
/// workload's lines across routers.
async fn budget_states_reach_the_caller(backend: fn() -> Backend) {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let estimate = support::estimate_of(&text(&fake, ""), "w").await;
    let probe_calls = fake.calls();

    // Halted: three calls fit, the fourth cannot with nothing in flight.
    let cap = 3 * USAGE + estimate / 2;
    let store = backend();
    let r = router(&text(&fake, &format!("budget {cap} tokens/day;")))
        .budget_store(store.store().await)
        .build()
        .unwrap();
    for _ in 0..3 {
        r.complete(ask("w")).await.unwrap();
    }
    let e = r.complete(ask("w")).await.unwrap_err();
    assert_eq!((e.code(), e.http_status()), ("budget_halted", 429), "{e}");
    assert!(
        e.retry_after().is_some_and(|d| d > std::time::Duration::from_secs(60)),
        "a halted line retries after its rollover: {:?}",
        e.retry_after()
    );
    let status = r.ledger().workload_status(router_core::WorkloadId(0)).await.unwrap();
    assert!(status.halted(), "status shows the halt the caller got: {status:?}");
    assert_eq!(r.ledger().unlock(router_core::WorkloadId(0)).await.unwrap().len(), 1);
    r.complete(ask("w"))
        .await
        .expect("the unlocked line takes the next call");
    assert_eq!(fake.calls() - probe_calls, 4, "the refused call reached no upstream");

    // Too large: the call could never fit, so 413, and nothing halts.
    let small = estimate / 2;
    let store = backend();
    let r = router(&text(&fake, &format!("budget {small} tokens/day;")))
        .budget_store(store.store().await)
        .build()
        .unwrap();
    let e = r.complete(ask("w")).await.unwrap_err();
    assert_eq!((e.code(), e.http_status()), ("budget_too_large", 413), "{e}");
    let status = r.ledger().workload_status(router_core::WorkloadId(0)).await.unwrap();
    assert!(!status.halted(), "a call too large for the line does not halt it");

    // Busy: calls in flight hold the rest, so a short wait, and no halt.
    let store = backend();
    let r = router(&text(&fake, &format!("budget {} tokens/day;", 2 * estimate)))
        .budget_store(store.store().await)
        .build()
        .unwrap();
    let held = r
        .ledger()
        .reserve(
            router_core::WorkloadId(0),
            router_runtime::Spend {
                tokens: estimate + estimate / 2,
                usd: router_core::Usd::ZERO,
            },
        )
        .await
        .unwrap();
    let e = r.complete(ask("w")).await.unwrap_err();
    assert_eq!((e.code(), e.http_status()), ("budget_busy", 429), "{e}");
    assert!(
        e.retry_after().is_some_and(|d| d <= std::time::Duration::from_secs(60)),
        "a busy line asks for a short wait: {:?}",
        e.retry_after()
    );
    held.release().await.unwrap();
    r.complete(ask("w"))
        .await
        .expect("once the call in flight settles, the next fits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_states_memory() {
    budget_states_reach_the_caller(Backend::memory).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_states_sqlite() {
    budget_states_reach_the_caller(Backend::sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_states_redis() {
    budget_states_reach_the_caller(Backend::redis).await;
}
