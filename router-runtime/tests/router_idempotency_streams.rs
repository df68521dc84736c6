//! Idempotency and streaming against a real HTTP fake: replays make no
//! upstream call and no new spend; a stream cut mid-way ends with an
//! explicit error item; streamed usage is committed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use fake_upstream::{Behaviour, FakeUpstream, Flavor};
use futures::StreamExt;
use providers::{ChatRequest, StreamEvent};
use router_runtime::{RouteError, Served};
use support::{ask, openai, router, tokens};
use tokio::task::JoinSet;

/// The fake's usage for a chat answer and a streamed one.
const USAGE: u64 = 29;

async fn setup(workload_extra: &str) -> (FakeUpstream, router_runtime::Router) {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let text = format!(
        "{}workload w {{ data public; max_tokens 100; budget 100000 tokens/day; {workload_extra} route a/m }}",
        openai("a", &fake, "")
    );
    let r = router(&text).build().unwrap();
    (fake, r)
}

#[tokio::test]
async fn a_replay_makes_no_upstream_call_and_no_new_spend() {
    let (fake, r) = setup("idempotent 5m;").await;
    let first = r.complete(ask("w")).await.unwrap();
    let replay = r.complete(ask("w")).await.unwrap();
    assert_eq!((first.served, replay.served), (Served::Fresh, Served::Replayed));
    assert_eq!(replay.value, first.value);
    assert_eq!(fake.calls(), 1);
    assert_eq!(tokens(&r, "w").await, (USAGE, 0));

    // A caller's key with another body is refused, and nothing is sent.
    let mut keyed = ask("w");
    keyed.idempotency_key = Some("order-7".into());
    r.complete(keyed.clone()).await.unwrap();
    keyed.request = ChatRequest::user("something else entirely");
    let err = r.complete(keyed).await.unwrap_err();
    assert!(matches!(err, RouteError::IdempotencyKeyReused(_)), "{err}");
    assert_eq!(fake.calls(), 2);
    assert_eq!(tokens(&r, "w").await, (2 * USAGE, 0));
}

#[tokio::test]
async fn identical_calls_in_flight_share_one_upstream_call() {
    let (fake, r) = setup("idempotent 5m;").await;
    // Slow enough that every caller arrives while the first is in flight.
    fake.push(Behaviour::Trickle {
        chunk_bytes: 64,
        interval_ms: 20,
    });
    let mut tasks = JoinSet::new();
    for _ in 0..8 {
        let r = r.clone();
        tasks.spawn(async move { r.complete(ask("w")).await.map(|d| d.served) });
    }
    let mut served = Vec::new();
    while let Some(done) = tasks.join_next().await {
        served.push(done.unwrap().unwrap());
    }
    assert_eq!(fake.calls(), 1, "{served:?}");
    assert_eq!(served.iter().filter(|s| **s == Served::Fresh).count(), 1, "{served:?}");
    assert_eq!(tokens(&r, "w").await, (USAGE, 0), "billed once");
}

#[tokio::test]
async fn a_stream_commits_the_usage_of_its_final_chunk() {
    let (fake, r) = setup("").await;
    let routed = r.stream(ask("w")).await.unwrap();
    assert_eq!(routed.target, "a/m");
    let events: Vec<StreamEvent> = routed.value.map(Result::unwrap).collect().await;
    assert!(matches!(events.last(), Some(StreamEvent::Done { .. })), "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, StreamEvent::Usage(u) if u.input_tokens + u.output_tokens == USAGE))
    );
    assert_eq!(fake.calls(), 1);
    assert_eq!(tokens(&r, "w").await, (USAGE, 0));
}

#[tokio::test]
async fn a_stream_cut_mid_way_ends_with_an_explicit_error_not_a_short_answer() {
    let (fake, r) = setup("").await;
    fake.push(Behaviour::CutStream { abort: false });
    let routed = r.stream(ask("w")).await.unwrap();
    let events: Vec<Result<StreamEvent, RouteError>> = routed.value.collect().await;
    let (last, before) = events.split_last().unwrap();
    let Err(err) = last else {
        panic!("the stream ended without an error: {events:?}")
    };
    assert_eq!(err.code(), "stream_interrupted");
    assert!(before.iter().all(Result::is_ok));
    assert!(!before.iter().any(|e| matches!(e, Ok(StreamEvent::Done { .. }))));
    let (committed, reserved) = tokens(&r, "w").await;
    assert!(committed > 0, "a cut stream still records spend");
    assert_eq!(reserved, 0);
    let metrics = r.metrics().render();
    assert!(
        metrics.contains("routec_errors_total{class=\"stream_interrupted\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_failure_before_the_first_event_falls_back_transparently() {
    let (a, b) = (
        FakeUpstream::start(Flavor::OpenAi).await.unwrap(),
        FakeUpstream::start(Flavor::OpenAi).await.unwrap(),
    );
    a.push(Behaviour::error(503));
    let text = format!(
        "{}{}workload w {{ data public; route fallback [a/m, b/m] }}",
        openai("a", &a, ""),
        openai("b", &b, "")
    );
    let r = router(&text).build().unwrap();
    let routed = r.stream(ask("w")).await.unwrap();
    assert_eq!((routed.target.as_str(), routed.attempts), ("b/m", 2));
    let events: Vec<StreamEvent> = routed.value.map(Result::unwrap).collect().await;
    assert!(matches!(events.last(), Some(StreamEvent::Done { .. })));
}
