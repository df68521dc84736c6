#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use fake_upstream::redis::RedisServer;
use fake_upstream::{Behaviour, FakeUpstream, Flavor};
use policy_lang::{SourceFile, compile};
use providers::ChatRequest;

use super::*;
use crate::clock::ManualClock;
use crate::{Call, Router};

fn policy(text: &str) -> Arc<Policy> {
    Arc::new(
        compile(&[SourceFile::new("t.route", text)])
            .map_err(|r| format!("{r:?}"))
            .unwrap()
            .into_policy(),
    )
}

const PACED: &str = r#"
    provider lim { adapter mock; tier free; limits rpm 3; model m { price free } }
    provider spare { adapter mock; tier free; model m { price free } }
    workload w { data public; route fallback [lim/m, spare/m] }
"#;

async fn router(policy: &Arc<Policy>, state: &Arc<SharedState>, at: Millis) -> Router {
    Router::builder(Arc::clone(policy))
        .clock(Arc::new(ManualClock::new(at)))
        .shared_state(Arc::clone(state))
        .build()
        .unwrap()
}

async fn target(router: &Router) -> String {
    router
        .complete(Call::new("w", ChatRequest::user("hi")))
        .await
        .unwrap()
        .target
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routers_share_one_rpm_bucket_whatever_their_clocks_read() {
    let redis = RedisServer::start();
    let state = Arc::new(SharedState::connect(&redis.url(), 2).await.unwrap());
    let policy = policy(PACED);
    // One router's clock stands at 1970, the other's in 2100: the bucket
    // runs on Redis's clock, so neither matters.
    let a = router(&policy, &state, Millis(0)).await;
    let b = router(&policy, &state, Millis(4_102_444_800_000)).await;
    let up = a.metrics().render();
    assert!(up.lines().any(|l| l == "routec_shared_state_up 1"), "{up}");
    let started = Instant::now();
    let mut limited = 0;
    for i in 0..8 {
        let r = if i % 2 == 0 { &a } else { &b };
        if target(r).await == "lim/m" {
            limited += 1;
        }
    }
    // `rpm 3` refills one every 20 s of Redis's time.
    let most = 3 + started.elapsed().as_secs() / 20;
    assert!(
        (3..=most).contains(&limited),
        "{limited} calls reached `lim`; 3 to {most} fit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_lease_counts_until_released_and_a_refund_gives_back() {
    let redis = RedisServer::start();
    let state = SharedState::connect(&redis.url(), 1).await.unwrap();
    let keys = state.keys("p", "m");
    let ask = |lease| Ask {
        rpm: Some(2),
        tpm: None,
        tokens: 10,
        concurrency: Some(1),
        lease,
    };
    assert_eq!(state.admit(&keys, ask(Some("one"))).await.unwrap(), Verdict::Admitted);
    assert_eq!(
        state.admit(&keys, ask(Some("two"))).await.unwrap(),
        Verdict::Concurrency
    );
    state.release(&keys, "one").await.unwrap();
    assert_eq!(state.admit(&keys, ask(Some("two"))).await.unwrap(), Verdict::Admitted);
    // Both requests of `rpm 2` are taken; a refund gives one back.
    state.release(&keys, "two").await.unwrap();
    assert!(matches!(
        state.admit(&keys, ask(Some("three"))).await.unwrap(),
        Verdict::Rpm(Some(d)) if d > Duration::from_secs(25) && d <= Duration::from_secs(30)
    ));
    state.refund(&keys, ask(None)).await.unwrap();
    assert_eq!(state.admit(&keys, ask(Some("three"))).await.unwrap(), Verdict::Admitted);
    // A published ejection refuses until its TTL ends.
    state
        .publish(&keys, Published::Ejected, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(matches!(
        state.admit(&keys, ask(Some("four"))).await.unwrap(),
        Verdict::Ejected(d) if d > Duration::from_secs(55)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_seen_by_one_router_cools_the_model_down_for_the_other() {
    let redis = RedisServer::start();
    let state = Arc::new(SharedState::connect(&redis.url(), 2).await.unwrap());
    let hot = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let text = format!(
        r#"
        provider hot {{ adapter openai_compatible; base_url "{}"; key env("K"); tier paid
          model m {{ price $1/M in, $1/M out }} }}
        provider spare {{ adapter mock; tier free; model m {{ price free }} }}
        workload w {{ data public; route fallback [hot/m, spare/m] on rate_limited }}
    "#,
        hot.base_url()
    );
    let policy = policy(&text);
    let build = |at| {
        Router::builder(Arc::clone(&policy))
            .clock(Arc::new(ManualClock::new(at)))
            .env_vars([("K", "sk-test")])
            .shared_state(Arc::clone(&state))
            .build()
            .unwrap()
    };
    let (a, b) = (build(Millis(1_000)), build(Millis(9_000_000)));
    hot.push(Behaviour::rate_limited("30"));
    assert_eq!(target(&a).await, "spare/m");
    assert_eq!(hot.calls(), 1);
    // The publish runs in the background; `settled` waits for it.
    a.settled().await;
    assert_eq!(target(&b).await, "spare/m");
    assert_eq!(hot.calls(), 1, "b did not call `hot` while it cools down");
    // B wrote the cool-down into its own book: its decision says so.
    let r = b.complete(Call::new("w", ChatRequest::user("hi"))).await.unwrap();
    let text = b.decision(&r.decision_id).unwrap().render(b.policy());
    assert!(text.contains("cooling"), "{text}");
    assert_eq!(hot.calls(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_gone_each_router_keeps_to_its_share() {
    let mut redis = RedisServer::start();
    let state = Arc::new(SharedState::connect(&redis.url(), 3).await.unwrap());
    let policy = policy(PACED);
    let a = router(&policy, &state, Millis(0)).await;
    redis.stop();
    // `rpm 3` over 3 instances: a share of 1 a minute on this clock.
    assert_eq!(target(&a).await, "lim/m");
    assert_eq!(target(&a).await, "spare/m");
    let metrics = a.metrics().render();
    assert!(metrics.lines().any(|l| l == "routec_shared_state_up 0"), "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("routec_shared_state_errors_total{kind=\"unavailable\"}")),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpm_takes_the_estimate_and_refuses_one_above_the_limit_outright() {
    let redis = RedisServer::start();
    let state = SharedState::connect(&redis.url(), 1).await.unwrap();
    let keys = state.keys("p", "m");
    let ask = |tokens| Ask {
        rpm: None,
        tpm: Some(1_000),
        tokens,
        concurrency: None,
        lease: None,
    };
    assert_eq!(state.admit(&keys, ask(600)).await.unwrap(), Verdict::Admitted);
    // 400 left; 600 more are 200 short, free in 200 / 1,000 of a minute.
    assert!(matches!(
        state.admit(&keys, ask(600)).await.unwrap(),
        Verdict::Tpm(Some(d)) if d > Duration::from_secs(11) && d <= Duration::from_secs(12)
    ));
    assert_eq!(state.admit(&keys, ask(400)).await.unwrap(), Verdict::Admitted);
    assert_eq!(state.admit(&keys, ask(1_001)).await.unwrap(), Verdict::Tpm(None));
}
