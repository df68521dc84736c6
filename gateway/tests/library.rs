//! The gateway as a library, in-process over real loopback HTTP with a
//! fake provider: what the process-level tests in the workspace's `tests/`
//! do not reach — key rotation by reload, tenant budgets, a stream that
//! breaks after it started, the open-gateway bind rule, decisions kept
//! across a reload. Uses only the crate's public API.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use fake_upstream::{Behaviour, FakeUpstream, Flavor};
use gateway::{Gateway, GatewayBuilder, PolicySource, ReloadOutcome, StartError, hash_key};

fn policy(base_url: &str) -> String {
    format!(
        r#"
provider up {{
  adapter openai_compatible
  base_url "{base_url}"
  tier paid
  data private
  model m {{
    price $1/M in, $2/M out
    context 128k
    max_output 8k
    supports tools, json_schema, stream
  }}
}}
workload chat {{
  data public
  max_tokens 1000
  route up/m
}}
workload other {{
  data public
  route up/m
}}
"#
    )
}

fn keys(entries: &[(&str, &str, &str)]) -> String {
    entries
        .iter()
        .map(|(tenant, key, extra)| {
            format!(
                "[tenants.{tenant}]\nkeys = [\"{}\"]\nworkloads = [\"*\"]\n{extra}\n",
                hash_key(key)
            )
        })
        .collect()
}

/// A builder over `policy` (routing to `fake`), written into `dir`.
fn builder(dir: &Path, fake: &FakeUpstream) -> GatewayBuilder {
    let policy_path = dir.join("p.route");
    std::fs::write(&policy_path, policy(&fake.base_url())).unwrap();
    Gateway::builder(PolicySource::Path(policy_path))
}

async fn start(dir: &Path, fake: &FakeUpstream, keys_text: &str) -> (Gateway, gateway::Running, String) {
    let keys_path = dir.join("keys.toml");
    std::fs::write(&keys_path, keys_text).unwrap();
    let gw = builder(dir, fake).keys_file(&keys_path).build().await.unwrap();
    let listener = gw.bind("127.0.0.1:0".parse().unwrap(), false).await.unwrap();
    let running = gw.clone().spawn(listener);
    let base = format!("http://{}", running.addr().unwrap());
    (gw, running, base)
}

async fn chat(base: &str, key: &str, body: serde_json::Value) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

fn hello() -> serde_json::Value {
    serde_json::json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_works_after_reload_and_the_old_one_stops() {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (gw, running, base) = start(dir.path(), &fake, &keys(&[("a", "old-key", "")])).await;
    assert_eq!(chat(&base, "old-key", hello()).await.0, 200);
    assert_eq!(chat(&base, "new-key", hello()).await.0, 401);

    std::fs::write(dir.path().join("keys.toml"), keys(&[("a", "new-key", "")])).unwrap();
    assert!(matches!(gw.reload().await, ReloadOutcome::Swapped(_)));
    assert_eq!(chat(&base, "new-key", hello()).await.0, 200);
    assert_eq!(chat(&base, "old-key", hello()).await.0, 401);
    // Nothing changed: nothing swapped.
    assert!(matches!(gw.reload().await, ReloadOutcome::Unchanged));
    // A broken keys file is refused; the current keys keep working.
    std::fs::write(
        dir.path().join("keys.toml"),
        "[tenants.a]\nkeys = [\"plain-key\"]\nworkloads = []\n",
    )
    .unwrap();
    assert!(matches!(gw.reload().await, ReloadOutcome::Refused(_)));
    assert_eq!(chat(&base, "new-key", hello()).await.0, 200);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_budget_stops_that_tenant_only() {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = keys(&[
        ("small", "small-key", "budget = { tokens_per_day = 200 }"),
        ("big", "big-key", ""),
    ]);
    let (_gw, running, base) = start(dir.path(), &fake, &text).await;
    let body = serde_json::json!({"model": "chat", "max_tokens": 150, "messages": [{"role": "user", "content": "hi"}]});
    // Each call reserves its prompt plus 150 tokens and spends 29 (the
    // fake's usage): the small tenant's 200 run out after a few calls.
    let mut answered = 0;
    let refusal = loop {
        let (status, text) = chat(&base, "small-key", body.clone()).await;
        match status {
            200 if answered < 6 => answered += 1,
            _ => break (status, text),
        }
    };
    assert_eq!(refusal.0, 429, "{}", refusal.1);
    let code = serde_json::from_str::<serde_json::Value>(&refusal.1).unwrap()["error"]["code"].clone();
    assert!(code.as_str().unwrap().starts_with("budget"), "{}", refusal.1);
    assert!(answered >= 1, "the first call fits");
    assert_eq!(
        chat(&base, "big-key", body).await.0,
        200,
        "other tenants are not limited"
    );
    let budgets = reqwest::Client::new()
        .get(format!("{base}/v1/routec/budgets"))
        .header("authorization", "Bearer small-key")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let budgets: serde_json::Value = serde_json::from_str(&budgets).unwrap();
    let scope = budgets["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["workload"] == "scope:small")
        .unwrap_or_else(|| panic!("{budgets}"));
    assert_eq!(scope["limits"][0]["committed"], 29 * answered, "{scope}");
    assert!(scope["limits"][0]["committed"].as_u64().unwrap() <= 200, "{scope}");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_breaks_ends_with_an_error_event_and_no_done() {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_gw, running, base) = start(dir.path(), &fake, &keys(&[("a", "k", "")])).await;
    let body = serde_json::json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "hi"}]});

    let (status, whole) = chat(&base, "k", body.clone()).await;
    assert_eq!(status, 200);
    assert!(whole.ends_with("data: [DONE]\n\n"), "{whole}");
    assert!(whole.contains("\"chat.completion.chunk\""), "{whole}");

    fake.push(Behaviour::CutStream { abort: false });
    let (status, cut) = chat(&base, "k", body).await;
    assert_eq!(status, 200, "the status was sent with the first chunk");
    assert!(!cut.contains("[DONE]"), "{cut}");
    let last = cut.trim_end().lines().last().unwrap();
    let err: serde_json::Value = serde_json::from_str(last.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(err["error"]["code"], "stream_interrupted", "{cut}");
    // The broken stream is a failed attempt (a cut mid-event reads as a
    // server error), not only the success its first event looked like.
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == r#"routec_attempts_total{workload="chat",target="up/m",outcome="server_error"} 1"#),
        "{metrics}"
    );
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_gateway_listens_on_loopback_only_unless_allowed() {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = builder(dir.path(), &fake).build().await.unwrap();
    assert!(gw.is_open());
    let public = "0.0.0.0:0".parse().unwrap();
    let err = gw.bind(public, false).await.unwrap_err();
    assert!(matches!(err, StartError::OpenOnPublicAddress { .. }));
    assert!(err.to_string().contains("--allow-open"), "{err}");
    assert!(gw.bind(public, true).await.is_ok(), "explicitly allowed");
    assert!(gw.bind("127.0.0.1:0".parse().unwrap(), false).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_stays_explainable_after_a_reload() {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (gw, running, base) = start(dir.path(), &fake, &keys(&[("a", "k", "")])).await;
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("authorization", "Bearer k")
        .body(hello().to_string())
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-routec-decision-id"].to_str().unwrap().to_owned();
    let text = std::fs::read_to_string(dir.path().join("p.route")).unwrap();
    std::fs::write(
        dir.path().join("p.route"),
        text.replace("workload other", "workload renamed"),
    )
    .unwrap();
    assert!(matches!(gw.reload().await, ReloadOutcome::Swapped(_)));
    let explained = reqwest::Client::new()
        .get(format!("{base}/v1/routec/decisions/{id}?format=text"))
        .header("authorization", "Bearer k")
        .send()
        .await
        .unwrap();
    assert_eq!(explained.status(), 200);
    let text = explained.text().await.unwrap();
    assert!(text.starts_with(&format!("decision {id}")), "{text}");
    assert!(text.contains("outcome: "), "{text}");
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_arriving_gets_a_408_and_reaches_no_provider() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = builder(dir.path(), &fake)
        .body_timeout(std::time::Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let listener = gw.bind("127.0.0.1:0".parse().unwrap(), false).await.unwrap();
    let running = gw.clone().spawn(listener);
    let addr = running.addr().unwrap();

    // Headers promise 200 bytes; 20 come, then nothing (the socket stays open).
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(br#"{"model":"chat","me"#).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    // Bounded: the gateway must answer long before this.
    let read = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            answer.extend_from_slice(&buf[..n]);
            if n == 0 || answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to a stalled body");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    assert_eq!(fake.calls(), 0);
    // A whole body on a new connection is still answered.
    let (status, _) = chat(&format!("http://{addr}"), "unused", hello()).await;
    assert_eq!(status, 200);
    running.shutdown().await.unwrap();
}

async fn send(base: &str, key: &str, body: &serde_json::Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(body.to_string());
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    tokio::time::timeout(std::time::Duration::from_secs(20), req.send())
        .await
        .expect("no answer from the gateway within 20 s")
        .unwrap()
}

async fn get_decision(base: &str, key: &str, id: &str) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .get(format!("{base}/v1/routec/decisions/{id}"))
        .header("authorization", format!("Bearer {key}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, serde_json::from_str(&r.text().await.unwrap()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_reads_its_own_decisions_and_not_the_other_tenants() {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_gw, running, base) = start(dir.path(), &fake, &keys(&[("a", "key-a", ""), ("b", "key-b", "")])).await;
    let id_of = |r: &reqwest::Response| r.headers()["x-routec-decision-id"].to_str().unwrap().to_owned();
    let of_a = id_of(&send(&base, "key-a", &hello(), &[]).await);
    // A failed call's decision is the tenant's too.
    fake.push(Behaviour::error(400));
    let failed_b = send(&base, "key-b", &hello(), &[]).await;
    assert_eq!(failed_b.status(), 400);
    let of_b = id_of(&failed_b);

    for (key, own, other) in [("key-a", &of_a, &of_b), ("key-b", &of_b, &of_a)] {
        let (status, json) = get_decision(&base, key, own).await;
        assert_eq!(status, 200, "{key} reads its own decision: {json}");
        assert_eq!(json["id"], own.as_str());
        let (status, json) = get_decision(&base, key, other).await;
        assert_eq!(status, 404, "{key} must not read the other tenant's decision: {json}");
        assert_eq!(json["error"]["code"], "decision_not_found");
        let (_, unknown) = get_decision(&base, key, "00000000deadbeef").await;
        assert_eq!(
            json["error"]["message"].as_str().unwrap().replace(other.as_str(), "ID"),
            unknown["error"]["message"]
                .as_str()
                .unwrap()
                .replace("00000000deadbeef", "ID"),
            "another tenant's decision is answered exactly as an unknown one"
        );
    }
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_keys_belong_to_one_tenant() {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_gw, running, base) = start(dir.path(), &fake, &keys(&[("a", "key-a", ""), ("b", "key-b", "")])).await;
    let other = serde_json::json!({"model": "chat", "messages": [{"role": "user", "content": "something else"}]});
    let served = |r: &reqwest::Response| r.headers()["x-routec-served"].to_str().unwrap().to_owned();

    // Both directions, once with the same body and once with another: the
    // first tenant's key is not the second's.
    for (first, second, key, body) in [("key-a", "key-b", "k1", hello()), ("key-b", "key-a", "k2", other)] {
        let calls = fake.calls();
        let r = send(&base, first, &hello(), &[("idempotency-key", key)]).await;
        assert_eq!((r.status().as_u16(), served(&r)), (200, "fresh".to_owned()));
        let r = send(&base, second, &body, &[("idempotency-key", key)]).await;
        assert_eq!(r.status(), 200, "{second} with {first}'s key");
        assert_eq!(served(&r), "fresh", "{second} with {first}'s key");
        assert_eq!(fake.calls(), calls + 2, "the second tenant's call reaches the upstream");
        // Each tenant keeps its own key: a replay for each.
        for (tenant, body) in [(first, &hello()), (second, &body)] {
            let r = send(&base, tenant, body, &[("idempotency-key", key)]).await;
            assert_eq!(served(&r), "replayed", "{tenant}");
        }
        assert_eq!(fake.calls(), calls + 2);
    }

    // While A's call is in flight (its answer trickles in for about a
    // second), B's call with the same key is not held or refused.
    fake.push(Behaviour::Trickle {
        chunk_bytes: 40,
        interval_ms: 100,
    });
    let calls = fake.calls();
    let held = {
        let base = base.clone();
        tokio::spawn(async move { send(&base, "key-a", &hello(), &[("idempotency-key", "k3")]).await })
    };
    assert!(
        fake.wait_calls(calls + 1, std::time::Duration::from_secs(10)).await,
        "tenant a's call did not reach the upstream within 10 s"
    );
    let r = send(&base, "key-b", &hello(), &[("idempotency-key", "k3")]).await;
    assert_eq!(r.status(), 200, "not 409: {}", r.text().await.unwrap());
    assert_eq!(fake.calls(), calls + 2);
    assert_eq!(held.await.unwrap().status(), 200);
    running.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_apart_are_served_on_their_own_listener_only() {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = builder(dir.path(), &fake).metrics_apart().build().await.unwrap();
    let listener = gw.bind("127.0.0.1:0".parse().unwrap(), false).await.unwrap();
    let scrape = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scrape_addr = scrape.local_addr().unwrap();
    let metrics = tokio::spawn(gw.serve_metrics(scrape));
    let running = gw.clone().spawn(listener);
    let base = format!("http://{}", running.addr().unwrap());
    let get = |url: String| async move {
        let r = reqwest::get(url).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(chat(&base, "unused", hello()).await.0, 200);
    let (status, _) = get(format!("{base}/metrics")).await;
    assert_eq!(status, 404, "not beside the API");
    let (status, text) = get(format!("http://{scrape_addr}/metrics")).await;
    assert_eq!(status, 200);
    assert!(text.contains("routec_requests_total{workload=\"chat\"} 1"), "{text}");
    let (status, _) = get(format!("http://{scrape_addr}/v1/models")).await;
    assert_eq!(status, 404, "the API is not on the metrics address");
    metrics.abort();
    running.shutdown().await.unwrap();
}

/// A gateway (open) over a fallback from `first` to `second`, both
/// advancing on every transient failure.
async fn fallback_gateway(dir: &Path, first: &FakeUpstream, second: &FakeUpstream) -> (gateway::Running, String) {
    let text = format!(
        r#"
provider one {{
  adapter openai_compatible
  base_url "{}"
  tier paid
  data private
  model m {{
    price $1/M in, $2/M out
    context 128k
    max_output 8k
  }}
}}
provider two {{
  adapter openai_compatible
  base_url "{}"
  tier paid
  data private
  model m {{
    price $1/M in, $2/M out
    context 128k
    max_output 8k
  }}
}}
workload chat {{
  data public
  max_tokens 1000
  route fallback [
    one/m
    two/m
  ] on rate_limited, overloaded, server_error, timeout(10s)
}}
"#,
        first.base_url(),
        second.base_url()
    );
    let path = dir.join("pair.route");
    std::fs::write(&path, text).unwrap();
    let gw = Gateway::builder(PolicySource::Path(path)).build().await.unwrap();
    let listener = gw.bind("127.0.0.1:0".parse().unwrap(), false).await.unwrap();
    let running = gw.spawn(listener);
    let base = format!("http://{}", running.addr().unwrap());
    (running, base)
}

fn failing(status: u16, retry_after: Option<&str>) -> Behaviour {
    Behaviour::Error {
        status,
        retry_after: retry_after.map(str::to_owned),
        retry_after_ms: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregated_failure_says_what_happened() {
    // (what the first provider does, what the second does) → status,
    // `Retry-After`, OpenAI `type`.
    let cases = [
        (
            "every attempt rate limited: the earliest Retry-After",
            failing(429, Some("7")),
            failing(429, Some("3")),
            429,
            Some("3"),
            "rate_limit_error",
        ),
        (
            "every attempt overloaded",
            failing(503, Some("5")),
            failing(503, None),
            503,
            Some("5"),
            "server_error",
        ),
        (
            "mixed causes",
            failing(429, Some("2")),
            failing(500, None),
            502,
            Some("2"),
            "server_error",
        ),
    ];
    for (case, first, second, status, retry_after, kind) in cases {
        let (one, two) = (
            FakeUpstream::start(Flavor::OpenAi).await.unwrap(),
            FakeUpstream::start(Flavor::OpenAi).await.unwrap(),
        );
        // Enough of each that a retry of the same target fails the same way.
        one.script(vec![first.clone(), first.clone(), first]);
        two.script(vec![second.clone(), second.clone(), second]);
        let dir = tempfile::tempdir().unwrap();
        let (running, base) = fallback_gateway(dir.path(), &one, &two).await;
        let r = send(&base, "unused", &hello(), &[]).await;
        assert_eq!(r.status().as_u16(), status, "{case}");
        assert_eq!(
            r.headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned())
                .as_deref(),
            retry_after,
            "{case}"
        );
        let json: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(json["error"]["code"], "fallback_exhausted", "{case}: {json}");
        assert_eq!(json["error"]["type"], kind, "{case}: {json}");
        assert!(
            one.calls() >= 1 && two.calls() >= 1,
            "{case}: both providers were tried"
        );
        running.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_filter_refusal_has_its_own_code() {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (_gw, running, base) = start(dir.path(), &fake, &keys(&[("a", "k", "")])).await;
    fake.push(Behaviour::raw(
        400,
        "application/json",
        r#"{"error":{"message":"The response was filtered due to the prompt triggering content management policy.","type":"invalid_request_error","param":"prompt","code":"content_filter"}}"#,
    ));
    let (status, text) = chat(&base, "k", hello()).await;
    assert_eq!(status, 400, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["error"]["code"], "content_filtered", "{json}");
    assert!(
        json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("content management policy"),
        "the provider's words: {json}"
    );
    // Any other rejection keeps its code.
    fake.push(Behaviour::error(400));
    let (status, text) = chat(&base, "k", hello()).await;
    assert_eq!(status, 400);
    assert!(text.contains(r#""code":"upstream_rejected""#), "{text}");
    running.shutdown().await.unwrap();
}

/// An upstream that answers one request with an endless event stream,
/// written as fast as it is taken; `closed` is notified when the gateway
/// drops the connection.
async fn endless_upstream(closed: std::sync::Arc<tokio::sync::Notify>) -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        // Headers and the (small) body arrive together or soon after.
        while !request.ends_with(b"}") {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "the gateway closed before sending its request");
            request.extend_from_slice(&buf[..n]);
        }
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        let delta = format!(
            "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{}\"}},\"finish_reason\":null}}]}}\n\n",
            "x".repeat(200)
        );
        let framed = format!("{:x}\r\n{delta}\r\n", delta.len());
        let mut result = socket.write_all(head.as_bytes()).await;
        while result.is_ok() {
            result = socket.write_all(framed.as_bytes()).await;
        }
        closed.notify_one();
    });
    (base, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_has_its_stream_ended() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let closed = std::sync::Arc::new(tokio::sync::Notify::new());
    let (upstream, upstream_task) = endless_upstream(std::sync::Arc::clone(&closed)).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.route");
    std::fs::write(&path, policy(&upstream)).unwrap();
    let gw = Gateway::builder(PolicySource::Path(path))
        .client_idle_timeout(std::time::Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    let listener = gw.bind("127.0.0.1:0".parse().unwrap(), false).await.unwrap();
    let running = gw.spawn(listener);
    let addr = running.addr().unwrap();

    // A client with a small receive buffer that sends its request and reads nothing.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut client = socket.connect(addr).await.unwrap();
    let body = r#"{"model":"chat","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    client.write_all(request.as_bytes()).await.unwrap();
    assert!(
        tokio::time::timeout(std::time::Duration::from_secs(10), closed.notified())
            .await
            .is_ok(),
        "the upstream call was not cancelled within 10 s of the client stopping to read"
    );
    // What the client finally reads ends in an abort: no `[DONE]`, no
    // final empty chunk that would make a cut answer look whole.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let read_all = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match client.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read_all.is_ok(), "the gateway kept the client's connection open");
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got[..got.len().min(200)])
    );
    assert!(!got.ends_with(b"0\r\n\r\n"), "the body ended cleanly");
    assert!(!String::from_utf8_lossy(&got).contains("[DONE]"));
    upstream_task.abort();
    running.shutdown().await.unwrap();
}
