//! Idempotency keys across gateway processes: three `routec serve` on one
//! real `redis-server` (`--budget-store redis://…`). A key answered by one
//! instance replays on the others with the same answer and no upstream
//! call; the same key with another body is refused on any instance; a
//! tenant's keys are its own; and three instances racing on one key make
//! one upstream call.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_support;

use fake_upstream::redis::RedisServer;
use fake_upstream::{Behaviour, FakeUpstream, Flavor};
use gateway_support::{Answer, Serve, keys_file, policy, post};
use serde_json::json;

const KEY_A: &str = "rk-idem-tenant-a";
const KEY_B: &str = "rk-idem-tenant-b";

struct Setup {
    dir: tempfile::TempDir,
    primary: FakeUpstream,
    _secondary: FakeUpstream,
    redis: RedisServer,
}

impl Setup {
    async fn new() -> Setup {
        let primary = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
        let secondary = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("policy.route"),
            policy(&primary.base_url(), &secondary.base_url()),
        )
        .unwrap();
        keys_file(dir.path(), &[("a", KEY_A), ("b", KEY_B)]);
        Setup {
            dir,
            primary,
            _secondary: secondary,
            redis: RedisServer::start(),
        }
    }

    /// Three gateways on the one Redis.
    async fn instances(&self) -> [Serve; 3] {
        let policy = self.dir.path().join("policy.route");
        let keys = self.dir.path().join("keys.toml");
        let url = self.redis.url();
        let args = [
            "--policy",
            policy.to_str().unwrap(),
            "--keys",
            keys.to_str().unwrap(),
            "--budget-store",
            &url,
        ];
        let (a, b, c) = tokio::join!(
            Serve::start("idem-a", &args, "info"),
            Serve::start("idem-b", &args, "info"),
            Serve::start("idem-c", &args, "info"),
        );
        [a, b, c]
    }
}

fn chat(text: &str, stream: bool) -> String {
    json!({"model": "chat", "messages": [{"role": "user", "content": text}], "stream": stream}).to_string()
}

async fn ask(gw: &Serve, tenant: &str, key: &str, body: String) -> Answer {
    let bearer = format!("Bearer {tenant}");
    post(
        &gw.base,
        "/v1/chat/completions",
        body,
        &[("authorization", bearer.as_str()), ("idempotency-key", key)],
    )
    .await
}

fn served(a: &Answer) -> &str {
    a.header("x-routec-served").unwrap_or("(none)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_answered_on_one_instance_replays_on_another() {
    let s = Setup::new().await;
    let [a, b, c] = s.instances().await;

    let first = ask(&a, KEY_A, "k", chat("hello", false)).await;
    assert_eq!((first.status, served(&first)), (200, "fresh"), "{}", first.body);
    let again = ask(&b, KEY_A, "k", chat("hello", false)).await;
    assert_eq!((again.status, served(&again)), (200, "replayed"), "{}", again.body);
    assert_eq!(again.json()["choices"], first.json()["choices"]);
    assert_eq!(again.json()["id"], first.json()["id"]);
    assert_eq!(s.primary.calls(), 1);

    // A streaming client on a third instance gets it as server-sent events.
    let streamed = ask(&c, KEY_A, "k", chat("hello", true)).await;
    assert_eq!(
        (streamed.status, served(&streamed)),
        (200, "replayed"),
        "{}",
        streamed.body
    );
    let text = first.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!text.is_empty());
    assert!(streamed.body.contains("data: [DONE]"), "{}", streamed.body);
    assert!(
        streamed.body.contains(&serde_json::to_string(&text).unwrap()),
        "{}",
        streamed.body
    );
    assert_eq!(s.primary.calls(), 1);

    // The same key with another body is refused, on any instance.
    let reused = ask(&b, KEY_A, "k", chat("something else", false)).await;
    assert_eq!(
        (reused.status, reused.error_code().as_str()),
        (422, "idempotency_key_reused"),
        "{}",
        reused.body
    );
    // Another tenant's `k` is another key.
    let other = ask(&c, KEY_B, "k", chat("hello", false)).await;
    assert_eq!((other.status, served(&other)), (200, "fresh"), "{}", other.body);
    assert_eq!(s.primary.calls(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_racing_on_one_key_make_one_upstream_call() {
    let s = Setup::new().await;
    let [a, b, c] = s.instances().await;
    // Slow enough that every instance asks while the first is in flight.
    s.primary.push(Behaviour::Trickle {
        chunk_bytes: 64,
        interval_ms: 20,
    });
    let (x, y, z) = tokio::join!(
        ask(&a, KEY_A, "race", chat("hello", false)),
        ask(&b, KEY_A, "race", chat("hello", false)),
        ask(&c, KEY_A, "race", chat("hello", false)),
    );
    let mut how: Vec<&str> = [&x, &y, &z].iter().map(|r| served(r)).collect();
    how.sort_unstable();
    assert_eq!(
        how,
        ["fresh", "replayed", "replayed"],
        "{} {} {}",
        x.body,
        y.body,
        z.body
    );
    assert_eq!(s.primary.calls(), 1);
    assert_eq!(x.json()["choices"], y.json()["choices"]);
    assert_eq!(y.json()["choices"], z.json()["choices"]);
}
