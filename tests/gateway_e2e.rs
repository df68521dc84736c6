//! `routec serve` end to end, as a separate process over real loopback
//! HTTP, with fake providers (in-process `FakeUpstream`s) behind it: bodies
//! refused before any upstream call, headers and key hygiene, hot reload,
//! graceful drain, and two gateways sharing one Redis budget.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_support;

use std::time::Duration;

use fake_upstream::redis::RedisServer;
use fake_upstream::{Behaviour, FakeUpstream, Flavor};
use gateway_support::{PROVIDER_KEY, Serve, assert_metric, chat_body, get, policy, post};

struct Setup {
    dir: tempfile::TempDir,
    primary: FakeUpstream,
    secondary: FakeUpstream,
    policy: std::path::PathBuf,
}

async fn setup() -> Setup {
    let primary = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let secondary = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.route");
    std::fs::write(&path, policy(&primary.base_url(), &secondary.base_url())).unwrap();
    Setup {
        dir,
        primary,
        secondary,
        policy: path,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_refused_in_the_error_shape_before_any_upstream_call() {
    let s = setup().await;
    let policy = s.policy.to_str().unwrap();
    let gw = Serve::start("bodies", &["--policy", policy], "info").await;
    let chat = "/v1/chat/completions";

    let deep = format!(
        r#"{{"model": "chat", "messages": [{{"role": "user", "content": "x"}}], "x": {}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let ten_mb = format!(r#"{{"model": "chat", "pad": "{}"}}"#, "a".repeat(10 * 1024 * 1024));
    let cases: Vec<(&str, reqwest::Body, u16, &str)> = vec![
        (
            "malformed JSON",
            r#"{"model": "chat", "messages": ["#.into(),
            400,
            "invalid_json",
        ),
        ("a non-object body", r#"["chat", "hi"]"#.into(), 400, "invalid_request"),
        (
            "missing messages",
            r#"{"model": "chat"}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "empty messages",
            r#"{"model": "chat", "messages": []}"#.into(),
            400,
            "invalid_request",
        ),
        (
            "an unknown role",
            r#"{"model": "chat", "messages": [{"role": "wizard", "content": "x"}]}"#.into(),
            400,
            "invalid_request",
        ),
        ("10,000-deep nesting", deep.into(), 400, "json_too_deep"),
        ("a 10 MB body", ten_mb.clone().into(), 413, "body_too_large"),
        (
            "an unknown workload",
            chat_body("no-such-workload").into(),
            404,
            "unknown_workload",
        ),
    ];
    for (name, body, status, code) in cases {
        let a = post(&gw.base, chat, body, &[]).await;
        assert_eq!(a.status, status, "{name}: {}", a.body);
        assert_eq!(a.error_code(), code, "{name}");
    }
    // A 10 MB body sent chunked (a file body has no Content-Length) is cut
    // off at the limit too.
    let file = s.dir.path().join("ten_mb.json");
    std::fs::write(&file, &ten_mb).unwrap();
    let chunked = reqwest::Body::from(tokio::fs::File::open(&file).await.unwrap());
    let a = post(&gw.base, chat, chunked, &[]).await;
    assert_eq!((a.status, a.error_code().as_str()), (413, "body_too_large"), "chunked");
    // Not declared as JSON: refused (a browser form cannot reach the router).
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}{chat}", gw.base))
        .header("content-type", "text/plain")
        .body(chat_body("chat"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    // Wrong method and unknown paths answer in the same shape.
    let a = get(&gw.base, chat, &[]).await;
    assert_eq!((a.status, a.error_code().as_str()), (405, "method_not_allowed"));
    let a = get(&gw.base, "/v1/nothing", &[]).await;
    assert_eq!((a.status, a.error_code().as_str()), (404, "not_found"));

    assert_eq!(
        s.primary.calls() + s.secondary.calls(),
        0,
        "no upstream call for any of them"
    );
    // And the gateway still serves.
    let a = post(&gw.base, chat, chat_body("chat"), &[]).await;
    assert_eq!(a.status, 200, "{}", a.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_headers_and_no_secret_anywhere() {
    let s = setup().await;
    let valid = "rk-valid-CANARY-3f9a1c";
    let invalid = "sk-invalid-CANARY-b42e77";
    let keys = s.dir.path().join("keys.toml");
    std::fs::write(
        &keys,
        format!(
            "[tenants.growth]\nkeys = [\"{}\"]\nworkloads = [\"gpt-4o-mini\"]\n\n[tenants.other]\nkeys = [\"{}\"]\nworkloads = [\"budgeted\"]\n",
            gateway::hash_key(valid),
            gateway::hash_key("rk-other")
        ),
    )
    .unwrap();
    let policy = s.policy.to_str().unwrap();
    // Everything logged, every crate, every level.
    let gw = Serve::start("keys", &["--policy", policy, "--keys", keys.to_str().unwrap()], "trace").await;
    let chat = "/v1/chat/completions";
    let bearer = |k: &str| format!("Bearer {k}");

    let a = post(&gw.base, chat, chat_body("chat"), &[]).await;
    assert_eq!((a.status, a.error_code().as_str()), (401, "invalid_api_key"));
    let a = post(
        &gw.base,
        chat,
        chat_body("chat"),
        &[("authorization", &bearer(invalid))],
    )
    .await;
    assert_eq!((a.status, a.error_code().as_str()), (401, "invalid_api_key"));
    let a = get(&gw.base, "/v1/models", &[("authorization", &bearer(invalid))]).await;
    assert_eq!(a.status, 401);
    let mut answers = vec![a];

    // A valid key, with hop-by-hop headers and fields that try to steer the
    // call: none of it reaches the provider.
    let steering = serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Say hi"}],
        "base_url": "http://127.0.0.1:9/evil",
        "provider": {"order": ["secondary"]},
    });
    let a = post(
        &gw.base,
        chat,
        steering.to_string(),
        &[
            ("authorization", &bearer(valid)),
            ("connection", "x-hop-canary"),
            ("x-hop-canary", "hop-CANARY"),
            ("x-routec-data-class", "internal"),
        ],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.header("x-routec-target"), Some("primary/m1"));
    assert_eq!(a.header("x-routec-attempts"), Some("1"));
    assert_eq!(a.header("x-routec-served"), Some("fresh"));
    assert_eq!(a.header("x-routec-policy-hash").map(str::len), Some(32));
    let decision = a.header("x-routec-decision-id").unwrap().to_owned();
    assert_eq!(a.json()["id"], format!("chatcmpl-{decision}"));
    assert_eq!(
        a.json()["choices"][0]["message"]["content"],
        "Hello! How can I assist you today?"
    );
    let upstream = s.primary.last_request().unwrap();
    assert_eq!(
        upstream.header("authorization"),
        Some(format!("Bearer {PROVIDER_KEY}").as_str()),
        "the provider gets the policy's key"
    );
    assert!(upstream.header("x-hop-canary").is_none());
    let sent = upstream.json();
    assert!(
        sent.get("base_url").is_none() && sent.get("provider").is_none(),
        "{sent}"
    );
    assert_eq!(sent["model"], "gpt-4o-mini", "the policy's model id");
    answers.push(a);

    // The tenant may not use `budgeted`: answered as if it did not exist.
    let a = post(
        &gw.base,
        chat,
        chat_body("budgeted"),
        &[("authorization", &bearer(valid))],
    )
    .await;
    assert_eq!((a.status, a.error_code().as_str()), (404, "unknown_workload"));
    answers.push(a);
    // It sees only its workload (and alias) in /v1/models.
    let a = get(&gw.base, "/v1/models", &[("authorization", &bearer(valid))]).await;
    let ids: Vec<String> = a.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["chat", "gpt-4o-mini"]);
    answers.push(a);
    // The decision is explainable with a key.
    let a = get(
        &gw.base,
        &format!("/v1/routec/decisions/{decision}"),
        &[("authorization", &bearer(valid))],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["workload"], "chat");
    assert_eq!(a.json()["attempts"][0]["target"], "primary/m1");
    answers.push(a);
    let a = get(&gw.base, "/v1/routec/budgets", &[("authorization", &bearer(valid))]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    answers.push(a);
    answers.push(get(&gw.base, "/metrics", &[]).await);

    let log = gw.log_text();
    assert!(log.contains("answered"), "the log has the call: {log}");
    for canary in [valid, invalid, PROVIDER_KEY, "CANARY"] {
        assert!(!log.contains(canary), "`{canary}` in the log:\n{log}");
        for a in &answers {
            assert!(!a.body.contains(canary), "`{canary}` in a body: {}", a.body);
            for (name, value) in &a.headers {
                assert!(
                    !value.as_bytes().windows(canary.len()).any(|w| w == canary.as_bytes()),
                    "`{canary}` in {name}"
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_policy_is_refused_on_reload_and_the_old_one_keeps_serving() {
    let s = setup().await;
    let policy = s.policy.to_str().unwrap();
    let mut gw = Serve::start("reload", &["--policy", policy], "info").await;
    let chat = "/v1/chat/completions";
    let first = post(&gw.base, chat, chat_body("chat"), &[]).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let hash = first.header("x-routec-policy-hash").unwrap().to_owned();

    // A broken policy, written as editors do (new file, renamed over).
    let good = std::fs::read_to_string(&s.policy).unwrap();
    let tmp = s.dir.path().join("policy.route.tmp");
    std::fs::write(&tmp, good.replace("route primary/m1", "route primary/no-such-model")).unwrap();
    std::fs::rename(&tmp, &s.policy).unwrap();
    // The gateway logs a reload's outcome once it has counted it.
    gw.wait_for_log("reload refused", Duration::from_secs(20)).await;
    assert_metric(&gw.base, "routec_policy_reloads_total{result=\"refused\"} 1").await;
    let a = post(&gw.base, chat, chat_body("chat"), &[]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.header("x-routec-policy-hash"),
        Some(hash.as_str()),
        "the old policy serves"
    );
    assert!(gw.log_text().contains("reload refused"), "the refusal is logged");

    // A valid change is picked up on SIGHUP too (file watching stays on).
    std::fs::write(
        &tmp,
        good.replace("alias \"gpt-4o-mini\"", "alias \"gpt-4o-mini\", \"renamed\""),
    )
    .unwrap();
    std::fs::rename(&tmp, &s.policy).unwrap();
    gw.signal("HUP");
    gw.wait_for_log("reload: new policy serving", Duration::from_secs(20))
        .await;
    assert_metric(&gw.base, "routec_policy_reloads_total{result=\"ok\"} 1").await;
    let a = post(&gw.base, chat, chat_body("renamed"), &[]).await;
    assert_eq!(a.status, 200, "the new alias works: {}", a.body);
    assert_ne!(a.header("x-routec-policy-hash"), Some(hash.as_str()));

    // Graceful shutdown: a slow call in flight finishes, then the process exits 0.
    s.primary.push(Behaviour::Trickle {
        chunk_bytes: 64,
        interval_ms: 60,
    });
    let base = gw.base.clone();
    let slow = tokio::spawn(async move { post(&base, chat, chat_body("chat"), &[]).await });
    // Until the fake has the slow call; the count is checked below.
    s.primary.wait_calls(4, Duration::from_secs(5)).await;
    assert_eq!(s.primary.calls(), 4, "the slow call reached the provider");
    gw.signal("TERM");
    let a = slow.await.unwrap();
    assert_eq!(a.status, 200, "the call in flight completes: {}", a.body);
    let code = tokio::task::spawn_blocking(move || gw.wait_exit(Duration::from_secs(20)))
        .await
        .unwrap();
    assert_eq!(code, Some(0), "exits 0 after draining");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_sharing_one_redis_budget_do_not_overspend_it() {
    let s = setup().await;
    let redis = RedisServer::start();
    let policy = s.policy.to_str().unwrap();
    let args = ["--policy", policy, "--budget-store", &redis.url()];
    let a = Serve::start("redis-a", &args, "info").await;
    let b = Serve::start("redis-b", &args, "info").await;
    // `budgeted` has 1k tokens a day; each call reserves its prompt plus
    // 600 output tokens, so only one reservation fits at a time. The
    // provider never answers the call it gets, so that reservation stays
    // held while ten calls arrive, alternating between the two gateways.
    s.primary.push(Behaviour::Hang);
    let body = serde_json::json!({
        "model": "budgeted",
        "max_tokens": 600,
        "messages": [{"role": "user", "content": "Summarise the budget rules"}],
    })
    .to_string();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..10 {
        let base = if i % 2 == 0 { a.base.clone() } else { b.base.clone() };
        let (body, tx) = (body.clone(), tx.clone());
        tokio::spawn(async move {
            let _ = tx.send(post(&base, "/v1/chat/completions", body, &[]).await);
        });
    }
    // Nine answers come back at once; the tenth waits on the provider.
    let mut refused = 0;
    for _ in 0..9 {
        let r = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("nine calls answered within 30 s")
            .unwrap();
        assert_eq!(r.status, 429, "{}", r.body);
        assert!(r.error_code().starts_with("budget"), "{}", r.body);
        refused += 1;
    }
    assert_eq!(refused, 9);
    assert!(
        rx.try_recv().is_err(),
        "the admitted call is still waiting on the provider"
    );
    // The refusals can come back before the admitted call has reached the
    // provider (its reservation is taken before it leaves): wait for it.
    s.primary.wait_calls(1, Duration::from_secs(10)).await;
    assert_eq!(
        s.primary.calls(),
        1,
        "one call reached the provider, from either gateway"
    );
    // Both gateways see the one reservation in the shared store.
    for gw in [&a, &b] {
        let status = get(&gw.base, "/v1/routec/budgets", &[]).await.json();
        let line = status["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["workload"] == "budgeted")
            .unwrap()["limits"][0]
            .clone();
        assert_eq!(line["cap"], 1000, "{line}");
        assert_eq!(line["committed"], 0, "{line}");
        let reserved = line["reserved"].as_u64().unwrap();
        assert!((600..=1000).contains(&reserved), "one reservation held: {line}");
    }
}
