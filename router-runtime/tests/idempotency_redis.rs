//! Idempotency keys shared through a real `redis-server`: two routers on
//! one Redis (as two gateway processes would be) replay each other's
//! answers, refuse a reused key, make one upstream call when they race,
//! never store a failure, recover from a claim whose owner died, keep a
//! claim renewed while a stream outlives it (and never renew a settled
//! key), and fall back to their local cache when Redis is gone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use fake_upstream::redis::RedisServer;
use fake_upstream::{Behaviour, FakeUpstream, Flavor};
use futures::StreamExt;
use providers::{ChatRequest, StreamEvent};
use router_runtime::{Call, RedisIdempotency, RouteError, Router, Served};
use support::{openai, router};

const PREFIX: &str = "routec-test";

struct Setup {
    fake: FakeUpstream,
    redis: RedisServer,
    text: String,
}

async fn setup(workload_extra: &str) -> Setup {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let redis = RedisServer::start();
    let text = format!(
        "{}workload w {{ data public; max_tokens 100; max_attempts 1; {workload_extra} route a/m }}",
        openai("a", &fake, "")
    );
    Setup { fake, redis, text }
}

impl Setup {
    /// A router of its own connection to the shared Redis: another gateway.
    async fn instance(&self) -> Router {
        let store = RedisIdempotency::connect(&self.redis.url(), PREFIX).await.unwrap();
        router(&self.text).idempotency_store(store).build().unwrap()
    }

    fn conn(&self) -> redis::Connection {
        redis::Client::open(self.redis.url()).unwrap().get_connection().unwrap()
    }
}

fn keyed(key: &str, text: &str) -> Call {
    let mut call = Call::new("w", ChatRequest::user(text));
    call.idempotency_key = Some(key.into());
    call
}

#[tokio::test]
async fn a_key_answered_by_one_router_replays_on_another() {
    let s = setup("").await;
    let (a, b) = (s.instance().await, s.instance().await);
    let first = a.complete(keyed("k", "hi")).await.unwrap();
    let again = b.complete(keyed("k", "hi")).await.unwrap();
    assert_eq!((first.served, again.served), (Served::Fresh, Served::Replayed));
    assert_eq!(again.value, first.value);
    assert_eq!((again.target.as_str(), again.decision_id), ("a/m", first.decision_id));
    assert_eq!(s.fake.calls(), 1);
    // The entry lives for the replay window (10 minutes), by Redis's clock.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{PREFIX}:idem:*"))
        .query(&mut s.conn())
        .unwrap();
    assert_eq!(keys, [format!("{PREFIX}:idem:{{w}}:c:k")]);
    let ttl: i64 = redis::cmd("PTTL").arg(&keys[0]).query(&mut s.conn()).unwrap();
    assert!((590_000..=600_000).contains(&ttl), "{ttl}");
}

#[tokio::test]
async fn a_key_reused_with_another_body_is_refused_on_another_router() {
    let s = setup("").await;
    let (a, b) = (s.instance().await, s.instance().await);
    a.complete(keyed("k", "hi")).await.unwrap();
    let err = b.complete(keyed("k", "something else")).await.unwrap_err();
    let RouteError::IdempotencyKeyReused(e) = &err else {
        panic!("{err}")
    };
    assert!(!e.in_flight());
    assert_eq!(s.fake.calls(), 1);
}

#[tokio::test]
async fn routers_racing_on_one_key_make_one_upstream_call() {
    let s = setup("").await;
    let routers = [s.instance().await, s.instance().await, s.instance().await];
    // Slow enough that every router asks while the first is in flight.
    s.fake.push(Behaviour::Trickle {
        chunk_bytes: 64,
        interval_ms: 20,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for r in routers {
        tasks.spawn(async move { r.complete(keyed("race", "hi")).await.map(|d| d.served) });
    }
    let mut served = Vec::new();
    while let Some(done) = tasks.join_next().await {
        served.push(done.unwrap().unwrap());
    }
    assert_eq!(s.fake.calls(), 1, "{served:?}");
    served.sort_by_key(|s| format!("{s:?}"));
    assert_eq!(served, [Served::Fresh, Served::Replayed, Served::Replayed]);
}

#[tokio::test]
async fn a_failure_is_not_stored_and_frees_the_key_at_once() {
    let s = setup("").await;
    let (a, b) = (s.instance().await, s.instance().await);
    s.fake.push(Behaviour::error(500));
    a.complete(keyed("k", "hi")).await.unwrap_err();
    let started = Instant::now();
    let retry = b.complete(keyed("k", "hi")).await.unwrap();
    assert_eq!(retry.served, Served::Fresh);
    assert_eq!(s.fake.calls(), 2);
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
}

#[tokio::test]
async fn the_claim_of_a_router_that_died_expires_with_the_calls_worst_case() {
    // `latency 1s`: no call of `w` can take longer, so neither can its claim.
    let s = setup("latency 1s;").await;
    let (a, b) = (s.instance().await, s.instance().await);
    s.fake.push(Behaviour::Hang);
    let stuck = tokio::spawn(async move { a.complete(keyed("k", "hi")).await });
    assert!(
        s.fake.wait_calls(1, Duration::from_secs(5)).await,
        "the first call never reached the fake"
    );
    let key = format!("{PREFIX}:idem:{{w}}:c:k");
    let mut conn = s.conn();
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).unwrap();
    assert!((1..=1_000).contains(&ttl), "claim ttl {ttl}");
    // The owner dies: its claim stays, under a token nobody holds.
    let () = redis::cmd("HSET")
        .arg(&key)
        .arg("t")
        .arg("dead")
        .query(&mut conn)
        .unwrap();
    stuck.abort();
    let started = Instant::now();
    let after = b.complete(keyed("k", "hi")).await.unwrap();
    assert_eq!(after.served, Served::Fresh);
    assert_eq!(s.fake.calls(), 2);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_streamed_answer_is_shared_whole_and_replayed_as_a_stream() {
    let s = setup("").await;
    let (a, b) = (s.instance().await, s.instance().await);
    let text = |events: Vec<StreamEvent>| {
        events
            .into_iter()
            .filter_map(|e| match e {
                StreamEvent::TextDelta { text } => Some(text),
                _ => None,
            })
            .collect::<String>()
    };
    let first = a.stream(keyed("k", "hi")).await.unwrap();
    let first_text = text(first.value.map(Result::unwrap).collect().await);
    let again = b.stream(keyed("k", "hi")).await.unwrap();
    assert_eq!(again.served, Served::Replayed);
    let events: Vec<StreamEvent> = again.value.map(Result::unwrap).collect().await;
    assert!(matches!(events.last(), Some(StreamEvent::Done { .. })), "{events:?}");
    assert_eq!(text(events), first_text);
    assert!(!first_text.is_empty());
    // And a whole call of the same request replays it too.
    let whole = b.complete(keyed("k", "hi")).await.unwrap();
    assert_eq!(whole.value.content, first_text);
    assert_eq!(s.fake.calls(), 1);
}

#[tokio::test]
async fn without_redis_a_router_falls_back_to_its_own_cache() {
    let mut s = setup("").await;
    let a = s.instance().await;
    s.redis.stop();
    let started = Instant::now();
    let first = a.complete(keyed("k", "hi")).await.unwrap();
    let again = a.complete(keyed("k", "hi")).await.unwrap();
    assert_eq!((first.served, again.served), (Served::Fresh, Served::Replayed));
    assert_eq!(s.fake.calls(), 1);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_stream_outliving_its_claim_keeps_it_so_another_router_waits_and_replays() {
    // `latency 2s`: the claim lasts 2 s. After its first event a stream is
    // bounded by its idle timeout only, so this one (its first text after
    // about 1 s, a second inside the first-token bound even on a loaded
    // machine; the rest in about 3 s) outlives the claim; renewal keeps the
    // claim while it is in flight.
    let s = setup("latency 2s;").await;
    let (a, b) = (s.instance().await, s.instance().await);
    s.fake.push(Behaviour::Trickle {
        chunk_bytes: 256,
        interval_ms: 500,
    });
    let started = Instant::now();
    let first = a.stream(keyed("k", "hi")).await.unwrap();
    assert_eq!(first.served, Served::Fresh);
    let leader = tokio::spawn(async move {
        let events: Vec<StreamEvent> = first.value.map(Result::unwrap).collect().await;
        (events, started.elapsed())
    });
    let other = tokio::spawn(async move { b.complete(keyed("k", "hi")).await });
    let bound = Duration::from_secs(10);
    let (events, took) = tokio::time::timeout(bound, leader)
        .await
        .expect("the leader's stream did not end within 10 s")
        .unwrap();
    let again = tokio::time::timeout(bound, other)
        .await
        .expect("the second router did not answer within 10 s of the stream")
        .unwrap()
        .unwrap();
    assert!(
        took > Duration::from_millis(2_300),
        "the stream took {took:?}, not longer than its 2 s claim: this test shows nothing"
    );
    assert!(matches!(events.last(), Some(StreamEvent::Done { .. })), "{events:?}");
    assert_eq!(again.served, Served::Replayed);
    assert_eq!(
        s.fake.calls(),
        1,
        "the claim lapsed mid-stream and the second router called upstream"
    );
}

#[tokio::test]
async fn a_late_renewal_never_extends_a_finished_key_nor_brings_back_a_released_one() {
    let s = setup("").await;
    let (mut conn, mut other) = (s.conn(), s.conn());
    let script = redis::Script::new(include_str!("../src/idempotency/redis.lua"));
    let mut op = |key: &str, args: &[&str]| -> Vec<String> {
        let mut inv = script.prepare_invoke();
        inv.key(key);
        for a in args {
            inv.arg(*a);
        }
        inv.invoke(&mut conn).unwrap()
    };
    let body = "0".repeat(32);
    // The leader's own claim is renewed.
    assert_eq!(op("k1", &["claim", &body, "me", "1000"]), ["lead"]);
    assert_eq!(op("k1", &["renew", "me", "60000"]), ["renewed"]);
    let ttl: i64 = redis::cmd("PTTL").arg("k1").query(&mut other).unwrap();
    assert!((1_001..=60_000).contains(&ttl), "a renewed claim's ttl is {ttl} ms");
    // Another token's renewal is refused.
    assert_eq!(op("k1", &["renew", "someone", "90000"]), ["gone"]);
    // Finished: the answer's window stands.
    assert_eq!(op("k1", &["finish", &body, "me", "answer", "5000"]), ["stored"]);
    assert_eq!(op("k1", &["renew", "me", "60000"]), ["gone"]);
    // Released: the key stays gone.
    assert_eq!(op("k2", &["claim", &body, "me", "1000"]), ["lead"]);
    assert_eq!(op("k2", &["release", "me"]), ["released"]);
    assert_eq!(op("k2", &["renew", "me", "60000"]), ["gone"]);
    let mut conn = other;
    let ttl: i64 = redis::cmd("PTTL").arg("k1").query(&mut conn).unwrap();
    assert!(
        (1..=5_000).contains(&ttl),
        "a finished key's ttl is {ttl} ms, not its 5 s window"
    );
    let state: Option<String> = redis::cmd("HGET").arg("k1").arg("s").query(&mut conn).unwrap();
    assert_eq!(state.as_deref(), Some("d"));
    let exists: i64 = redis::cmd("EXISTS").arg("k2").query(&mut conn).unwrap();
    assert_eq!(exists, 0, "a released key came back");
}

#[tokio::test]
async fn a_stream_goes_on_when_redis_dies_under_its_claim() {
    // The claim (1 s) needs renewing while this stream runs (1.8 s); the
    // renewal fails, and the stream still completes.
    let mut s = setup("latency 1s;").await;
    let a = s.instance().await;
    s.fake.push(Behaviour::Trickle {
        chunk_bytes: 256,
        interval_ms: 300,
    });
    let first = a.stream(keyed("k", "hi")).await.unwrap();
    s.redis.stop();
    let events: Vec<StreamEvent> = tokio::time::timeout(Duration::from_secs(10), first.value.collect::<Vec<_>>())
        .await
        .expect("the stream did not end within 10 s of redis stopping")
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(matches!(events.last(), Some(StreamEvent::Done { .. })), "{events:?}");
    assert_eq!(s.fake.calls(), 1);
}
