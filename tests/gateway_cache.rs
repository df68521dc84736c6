//! The response cache end to end: `routec serve` as a separate process, a
//! workload with `cache 1h` on a fake provider. A repeated request is
//! answered with `x-routec-cache: hit` and no upstream call, in either wire
//! format and streamed or not; tenants never share entries; errors and
//! bypassed requests are not cached; and with a Redis budget store the
//! cache lives in Redis, shared by two gateways.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_support;

use fake_upstream::redis::RedisServer;
use fake_upstream::{Behaviour, FakeUpstream, Flavor};
use gateway_support::{Answer, Serve, assert_metric, get, keys_file, policy, post};
use serde_json::{Value, json};

const KEY_A: &str = "rk-cache-tenant-a";
const KEY_B: &str = "rk-cache-tenant-b";

struct Setup {
    dir: tempfile::TempDir,
    primary: FakeUpstream,
    _secondary: FakeUpstream,
}

impl Setup {
    async fn new() -> Setup {
        let primary = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
        let secondary = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{}\nworkload cached {{\n  task chat\n  data public\n  max_tokens 1000\n  cache 1h\n  alias \"cached-alias\"\n  route primary/m1\n}}\n",
            policy(&primary.base_url(), &secondary.base_url())
        );
        std::fs::write(dir.path().join("policy.route"), text).unwrap();
        keys_file(dir.path(), &[("a", KEY_A), ("b", KEY_B)]);
        Setup {
            dir,
            primary,
            _secondary: secondary,
        }
    }

    async fn serve(&self, name: &str, extra: &[&str]) -> Serve {
        let policy = self.dir.path().join("policy.route");
        let keys = self.dir.path().join("keys.toml");
        let mut args = vec!["--policy", policy.to_str().unwrap(), "--keys", keys.to_str().unwrap()];
        args.extend_from_slice(extra);
        Serve::start(name, &args, "info").await
    }
}

fn chat(model: &str, text: &str, stream: bool) -> String {
    json!({"model": model, "messages": [{"role": "user", "content": text}], "stream": stream}).to_string()
}

async fn ask(gw: &Serve, key: &str, body: String, extra: &[(&str, &str)]) -> Answer {
    let bearer = format!("Bearer {key}");
    let mut headers = vec![("authorization", bearer.as_str())];
    headers.extend_from_slice(extra);
    post(&gw.base, "/v1/chat/completions", body, &headers).await
}

fn content(a: &Answer) -> Value {
    a.json()["choices"][0]["message"]["content"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_request_is_answered_from_the_cache() {
    let s = Setup::new().await;
    let gw = s.serve("cache-memory", &[]).await;

    let first = ask(&gw, KEY_A, chat("cached", "Say hi", false), &[]).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.header("x-routec-cache"), Some("miss"));
    assert_eq!(s.primary.calls(), 1);

    // The same request, by alias: a hit, no upstream call.
    let again = ask(&gw, KEY_A, chat("cached-alias", "Say hi", false), &[]).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.header("x-routec-cache"), Some("hit"));
    assert_eq!(again.header("x-routec-served"), Some("cached"));
    assert_eq!(again.header("x-routec-attempts"), Some("0"));
    assert_eq!(again.header("x-routec-target"), Some("primary/m1"));
    assert_eq!(content(&again), content(&first));
    assert_eq!(again.json()["usage"], first.json()["usage"]);

    // Streamed: replayed as server-sent events.
    let streamed = ask(&gw, KEY_A, chat("cached", "Say hi", true), &[]).await;
    assert_eq!(streamed.header("x-routec-cache"), Some("hit"));
    assert_eq!(streamed.header("content-type"), Some("text/event-stream"));
    assert!(streamed.body.ends_with("data: [DONE]\n\n"), "{}", streamed.body);
    assert!(
        streamed.body.contains("Hello! How can I assist you today?"),
        "{}",
        streamed.body
    );

    // Through the Anthropic endpoint: the same normalised request, a hit.
    let bearer = format!("Bearer {KEY_A}");
    let messages = post(
        &gw.base,
        "/v1/messages",
        json!({"model": "cached", "max_tokens": 1000, "messages": [{"role": "user", "content": "Say hi"}]}).to_string(),
        &[("authorization", &bearer)],
    )
    .await;
    // `max_tokens` shapes the answer, so this is another key: a miss …
    assert_eq!(messages.header("x-routec-cache"), Some("miss"), "{}", messages.body);
    let messages_again = post(
        &gw.base,
        "/v1/messages",
        chat("cached", "Say hi", false),
        &[("authorization", &bearer)],
    )
    .await;
    // … and without it, the chat-completions entry answers the Anthropic client.
    assert_eq!(
        messages_again.header("x-routec-cache"),
        Some("hit"),
        "{}",
        messages_again.body
    );
    assert_eq!(messages_again.json()["content"][0]["text"], content(&first));
    assert_eq!(s.primary.calls(), 2);

    // Another tenant never gets tenant a's entry.
    let other = ask(&gw, KEY_B, chat("cached", "Say hi", false), &[]).await;
    assert_eq!(other.header("x-routec-cache"), Some("miss"));
    assert_eq!(s.primary.calls(), 3);

    // Bypass: neither read nor filled.
    let bypass = ask(
        &gw,
        KEY_A,
        chat("cached", "Say hi", false),
        &[("x-routec-cache", "bypass")],
    )
    .await;
    assert_eq!(bypass.status, 200);
    assert_eq!(bypass.header("x-routec-cache"), None);
    assert_eq!(s.primary.calls(), 4);
    let bad = ask(
        &gw,
        KEY_A,
        chat("cached", "Say hi", false),
        &[("x-routec-cache", "sometimes")],
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.body);

    // An error is never cached: the retry goes upstream and then fills it.
    s.primary.script(vec![Behaviour::error(400)]);
    let failed = ask(&gw, KEY_A, chat("cached", "fails once", false), &[]).await;
    assert_eq!(failed.status, 400, "{}", failed.body);
    let retried = ask(&gw, KEY_A, chat("cached", "fails once", false), &[]).await;
    assert_eq!(retried.header("x-routec-cache"), Some("miss"));
    assert_eq!(s.primary.calls(), 6);

    // A whole stream fills the cache for the next (unstreamed) request.
    let first_stream = ask(&gw, KEY_A, chat("cached", "stream me", true), &[]).await;
    assert_eq!(first_stream.header("x-routec-cache"), Some("miss"));
    assert!(first_stream.body.ends_with("data: [DONE]\n\n"));
    let after_stream = ask(&gw, KEY_A, chat("cached", "stream me", false), &[]).await;
    assert_eq!(
        after_stream.header("x-routec-cache"),
        Some("hit"),
        "{}",
        after_stream.body
    );
    assert!(content(&after_stream).as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(s.primary.calls(), 7);

    // A workload without `cache` is never cached and never says so.
    let plain = ask(&gw, KEY_A, chat("chat", "Say hi", false), &[]).await;
    assert_eq!(plain.header("x-routec-cache"), None);

    assert_metric(&gw.base, "routec_response_cache_hits_total 4").await;
    assert_metric(&gw.base, "routec_response_cache_misses_total 6").await;
    let metrics = get(&gw.base, "/metrics", &[]).await.body;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("routec_response_cache_bytes ") && l != "routec_response_cache_bytes 0"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_redis_store_two_gateways_share_the_cache() {
    let s = Setup::new().await;
    let redis = RedisServer::start();
    let url = redis.url();
    let one = s.serve("cache-redis-1", &["--budget-store", &url]).await;
    let two = s.serve("cache-redis-2", &["--budget-store", &url]).await;

    let first = ask(&one, KEY_A, chat("cached", "shared", false), &[]).await;
    assert_eq!(first.header("x-routec-cache"), Some("miss"), "{}", first.body);
    // A whole answer is in Redis before it is sent: the other gateway hits.
    let hit = ask(&two, KEY_A, chat("cached", "shared", false), &[]).await;
    assert_eq!(hit.header("x-routec-cache"), Some("hit"), "{}", hit.body);
    assert_eq!(content(&hit), content(&first));
    assert_eq!(s.primary.calls(), 1);
    let other = ask(&two, KEY_B, chat("cached", "shared", false), &[]).await;
    assert_eq!(other.header("x-routec-cache"), Some("miss"));

    // Another deployment on the same Redis, under its own `?prefix=`,
    // never gets the first one's answers; two of its gateways share theirs.
    let staging = format!("{url}?prefix=staging");
    let three = s.serve("cache-redis-3", &["--budget-store", &staging]).await;
    let four = s.serve("cache-redis-4", &["--budget-store", &staging]).await;
    let apart = ask(&three, KEY_A, chat("cached", "shared", false), &[]).await;
    assert_eq!(apart.header("x-routec-cache"), Some("miss"), "{}", apart.body);
    let shared = ask(&four, KEY_A, chat("cached", "shared", false), &[]).await;
    assert_eq!(shared.header("x-routec-cache"), Some("hit"), "{}", shared.body);
    assert_eq!(
        s.primary.calls(),
        3,
        "the first deployment's, KEY_B's, the staging one's"
    );
}
