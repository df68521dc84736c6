//! `POST /v1/messages` end to end: `routec serve` as a separate process,
//! Anthropic-format clients in front of it, and fake providers of both
//! formats behind it. An Anthropic client reaches an OpenAI-format
//! upstream and an Anthropic-format one; bad input, bad keys and unknown
//! models get Anthropic's error shape before any upstream call.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_support;

use fake_upstream::{Behaviour, FakeUpstream, Flavor};
use gateway_support::{Answer, Serve, keys_file, policy, post};
use serde_json::{Value, json};

const KEY: &str = "rk-messages-test-key";

struct Setup {
    _dir: tempfile::TempDir,
    primary: FakeUpstream,
    secondary: FakeUpstream,
    claude: FakeUpstream,
    gw: Serve,
}

/// The shared test policy plus a workload `claude` on a fake Anthropic
/// provider, behind a keys file holding [`KEY`].
async fn setup(name: &str) -> Setup {
    let primary = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let secondary = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let claude = FakeUpstream::start(Flavor::Anthropic).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"{}
provider anthro {{
  adapter anthropic
  base_url "{}"
  key env("ROUTEC_TEST_PROVIDER_KEY")
  tier paid
  data private
  model sonnet {{
    id "claude-sonnet-4-5"
    price $3/M in, $15/M out
    context 200k
    max_output 8k
    supports tools, json_schema, stream, vision
  }}
}}

workload claude {{
  task chat
  data public
  max_tokens 1000
  route anthro/sonnet
}}
"#,
        policy(&primary.base_url(), &secondary.base_url()),
        claude.base_url()
    );
    let policy_path = dir.path().join("policy.route");
    std::fs::write(&policy_path, text).unwrap();
    let keys = keys_file(dir.path(), &[("t", KEY)]);
    let gw = Serve::start(
        name,
        &[
            "--policy",
            policy_path.to_str().unwrap(),
            "--keys",
            keys.to_str().unwrap(),
        ],
        "info",
    )
    .await;
    Setup {
        _dir: dir,
        primary,
        secondary,
        claude,
        gw,
    }
}

async fn messages(gw: &Serve, body: &Value) -> Answer {
    post(
        &gw.base,
        "/v1/messages",
        body.to_string(),
        &[("x-api-key", KEY), ("anthropic-version", "2023-06-01")],
    )
    .await
}

/// The error `type`, asserting Anthropic's error shape.
fn anthropic_error(a: &Answer) -> (String, String) {
    let j = a.json();
    assert!(
        j["type"] == "error" && j["error"]["type"].is_string() && j["error"]["message"].is_string(),
        "not Anthropic's error shape: {} {}",
        a.status,
        a.body
    );
    (
        j["error"]["type"].as_str().unwrap().to_owned(),
        j["error"]["code"].as_str().unwrap_or_default().to_owned(),
    )
}

/// `(event name, data)` of an SSE body.
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e.lines().find_map(|l| l.strip_prefix("event: ")).unwrap_or_default();
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap_or("null");
            (name.to_owned(), serde_json::from_str(data).unwrap())
        })
        .collect()
}

fn hello(model: &str) -> Value {
    json!({"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": "Say hi"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anthropic_client_reaches_an_openai_upstream_whole_streamed_and_with_tools() {
    let s = setup("messages-openai").await;
    s.primary.script(vec![
        Behaviour::Ok,
        Behaviour::Ok,
        Behaviour::ToolCall,
        Behaviour::error(503),
    ]);

    // Whole, with a system prompt, by alias.
    let mut body = hello("gpt-4o-mini");
    body["system"] = json!("be brief");
    let a = messages(&s.gw, &body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let j = a.json();
    assert_eq!(j["type"], "message");
    assert_eq!(j["role"], "assistant");
    assert_eq!(j["content"][0]["text"], "Hello! How can I assist you today?");
    assert_eq!(j["stop_reason"], "end_turn");
    assert_eq!(j["usage"]["output_tokens"], 10);
    assert_eq!(
        j["id"].as_str().unwrap(),
        format!("msg_{}", a.header("x-routec-decision-id").unwrap())
    );
    assert_eq!(a.header("x-routec-target"), Some("primary/m1"));
    let sent = s.primary.requests()[0].json();
    assert_eq!(sent["messages"][0], json!({"role": "system", "content": "be brief"}));
    let max = sent["max_completion_tokens"].as_u64().or(sent["max_tokens"].as_u64());
    assert_eq!(max, Some(100), "{sent}");

    // Streamed: Anthropic's event sequence from OpenAI chunks.
    let mut body = hello("chat");
    body["stream"] = json!(true);
    let a = messages(&s.gw, &body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.header("content-type"), Some("text/event-stream"));
    let evs = events(&a.body);
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names[..3],
        ["message_start", "ping", "content_block_start"],
        "{names:?}"
    );
    assert_eq!(
        names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    let text: String = evs
        .iter()
        .filter(|(n, _)| n == "content_block_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap_or_default())
        .collect();
    assert!(!text.is_empty(), "{}", a.body);
    assert_eq!(evs[evs.len() - 2].1["delta"]["stop_reason"], "end_turn");
    assert_eq!(s.primary.requests()[1].json()["stream"], true);

    // Tools: Anthropic tool definitions out as OpenAI functions, the
    // call back as a `tool_use` block with an `input` object.
    let mut body = hello("chat");
    body["tools"] = json!([{"name": "get_current_weather", "description": "weather",
        "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}}]);
    body["tool_choice"] = json!({"type": "auto"});
    let a = messages(&s.gw, &body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let j = a.json();
    assert_eq!(j["stop_reason"], "tool_use");
    let block = j["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap();
    assert_eq!(block["name"], "get_current_weather");
    assert_eq!(block["input"]["location"], "Boston, MA");
    let sent = s.primary.requests()[2].json();
    assert_eq!(sent["tools"][0]["function"]["parameters"]["type"], "object");
    assert_eq!(sent["tool_choice"], "auto");

    // The tool's result goes back as an OpenAI tool message; the primary
    // is down this time, so the secondary answers (fallback).
    let body = json!({"model": "chat", "max_tokens": 100, "messages": [
        {"role": "user", "content": "weather in Boston?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "call_abc123",
            "name": "get_current_weather", "input": {"location": "Boston, MA"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_abc123", "content": "22C"}]}
    ]});
    let a = messages(&s.gw, &body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.header("x-routec-target"), Some("secondary/m2"));
    assert_eq!(a.header("x-routec-attempts"), Some("2"));
    let sent = s.secondary.requests()[0].json();
    assert_eq!(
        sent["messages"][2],
        json!({"role": "tool", "content": "22C", "tool_call_id": "call_abc123"})
    );
    assert_eq!(sent["messages"][1]["tool_calls"][0]["id"], "call_abc123");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anthropic_client_reaches_an_anthropic_upstream_with_images() {
    let s = setup("messages-anthropic").await;
    let body = json!({"model": "claude", "max_tokens": 100, "system": [{"type": "text", "text": "be brief"}],
    "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    ]}]});
    let a = messages(&s.gw, &body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let j = a.json();
    assert_eq!(j["content"][0]["text"], "Hi! My name is Claude.");
    // Cache reads are split out again, as Anthropic counts them.
    assert_eq!(j["usage"]["input_tokens"], 2095);
    assert_eq!(j["usage"]["cache_read_input_tokens"], 1024);
    let sent = s.claude.requests()[0].json();
    assert_eq!(sent["system"], "be brief");
    assert_eq!(sent["messages"][0]["content"], body["messages"][0]["content"]);
    // No client header reaches the upstream: it carries the policy's key.
    let up = &s.claude.requests()[0];
    assert!(
        !format!("{:?}", up.headers).contains(KEY),
        "the client's key reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_keys_and_models_get_anthropics_error_shape() {
    let s = setup("messages-errors").await;
    let path = "/v1/messages";
    let base = &s.gw.base;
    // What, body, headers, status, Anthropic's error type, routec's code.
    type Case<'a> = (&'a str, String, &'a [(&'a str, &'a str)], u16, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            "malformed JSON",
            r#"{"model": "chat", "messages": ["#.into(),
            &[("x-api-key", KEY)],
            400,
            "invalid_request_error",
            "invalid_json",
        ),
        (
            "no messages",
            r#"{"model": "chat", "messages": []}"#.into(),
            &[("x-api-key", KEY)],
            400,
            "invalid_request_error",
            "invalid_request",
        ),
        (
            "a system role in messages",
            json!({"model": "chat", "messages": [{"role": "system", "content": "x"}]}).to_string(),
            &[("x-api-key", KEY)],
            400,
            "invalid_request_error",
            "invalid_request",
        ),
        (
            "an unknown block type",
            json!({"model": "chat", "messages": [{"role": "user", "content": [{"type": "document"}]}]}).to_string(),
            &[("x-api-key", KEY)],
            400,
            "invalid_request_error",
            "invalid_request",
        ),
        (
            "an oversized body",
            format!(r#"{{"model": "chat", "pad": "{}"}}"#, "a".repeat(5 * 1024 * 1024)),
            &[("x-api-key", KEY)],
            413,
            "request_too_large",
            "body_too_large",
        ),
        (
            "an unknown model",
            hello("no-such-model").to_string(),
            &[("x-api-key", KEY)],
            404,
            "not_found_error",
            "unknown_workload",
        ),
        (
            "no key",
            hello("chat").to_string(),
            &[],
            401,
            "authentication_error",
            "invalid_api_key",
        ),
        (
            "a wrong x-api-key",
            hello("chat").to_string(),
            &[("x-api-key", "sk-wrong")],
            401,
            "authentication_error",
            "invalid_api_key",
        ),
    ];
    for (what, body, headers, status, kind, code) in cases {
        let a = post(base, path, body, headers).await;
        assert_eq!(a.status, status, "{what}: {}", a.body);
        assert_eq!(anthropic_error(&a), (kind.to_owned(), code.to_owned()), "{what}");
        assert!(!a.body.contains("sk-wrong"), "{what}: the key was echoed");
    }
    assert_eq!(s.primary.calls() + s.secondary.calls() + s.claude.calls(), 0);

    // The key as a bearer token works too; a router error keeps its status.
    s.primary.script(vec![Behaviour::error(429)]);
    s.secondary.script(vec![Behaviour::error(429)]);
    let bearer = format!("Bearer {KEY}");
    let a = post(base, path, hello("chat").to_string(), &[("authorization", &bearer)]).await;
    assert_eq!(a.status, 429, "{}", a.body);
    assert_eq!(anthropic_error(&a).0, "rate_limit_error");
    assert!(a.header("x-routec-decision-id").is_some());
}
