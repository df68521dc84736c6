//! The control API over HTTP, and the binary as a separate process.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use fake_upstream::{Behaviour, FakeUpstream, Flavor};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

async fn chat(client: &reqwest::Client, base: &str) -> reqwest::Response {
    client
        .post(format!("{base}/chat/completions"))
        .header("authorization", "Bearer sk-x")
        .header("content-type", "application/json")
        .body(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn script_calls_requests_and_reset_over_http() {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let client = reqwest::Client::new();
    let root = format!("http://{}", fake.addr());
    let script = json!([{"kind": "error", "status": 429, "retry_after": "3"}, {"kind": "ok"}]);
    let r = client
        .post(format!("{root}/__fake/script"))
        .header("content-type", "application/json")
        .body(script.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    let first = chat(&client, &fake.base_url()).await;
    assert_eq!(first.status(), 429);
    assert_eq!(first.headers()["retry-after"], "3");
    let body: Value = json_of(first).await;
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    let second = chat(&client, &fake.base_url()).await;
    assert_eq!(second.status(), 200);
    let body: Value = json_of(second).await;
    assert_eq!(body["object"], "chat.completion");

    let calls: Value = json_of(client.get(format!("{root}/__fake/calls")).send().await.unwrap()).await;
    assert_eq!(calls, json!({"calls": 2}));
    assert_eq!(fake.calls(), 2);
    let requests: Value = json_of(client.get(format!("{root}/__fake/requests")).send().await.unwrap()).await;
    assert_eq!(requests[0]["path_and_query"], "/v1/chat/completions");

    client.post(format!("{root}/__fake/reset")).send().await.unwrap();
    assert_eq!(fake.calls(), 0);
    fake.push(Behaviour::fixture("error_400_context_length.json", 400));
    assert_eq!(chat(&client, &fake.base_url()).await.status(), 400);
}

#[tokio::test]
async fn requests_the_real_api_would_reject_are_rejected_without_using_the_script() {
    let fake = FakeUpstream::start(Flavor::Anthropic).await.unwrap();
    fake.push(Behaviour::error(529));
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/messages", fake.addr()))
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .body(json!({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body = json_of(r).await;
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(fake.calls(), 1);
    // The scripted 529 is still waiting for a valid request.
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/messages", fake.addr()))
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .body(json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 529);
}

#[tokio::test]
async fn fixture_placeholders_are_filled_with_the_presented_key() {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    fake.push(Behaviour::fixture("error_401_echoes_key.json", 401));
    let body = chat(&reqwest::Client::new(), &fake.base_url())
        .await
        .text()
        .await
        .unwrap();
    assert!(body.contains("Incorrect API key provided: sk-x."));
}

#[tokio::test]
async fn binary_prints_its_address_and_serves() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fake-upstream"))
        .args(["--listen", "127.0.0.1:0", "--flavor", "anthropic"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(20), BufReader::new(stdout).read_line(&mut line))
        .await
        .expect("no address printed")
        .unwrap();
    let addr: std::net::SocketAddr = line.trim().parse().unwrap();
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/v1/messages"))
        .header("content-type", "application/json")
        .header("x-api-key", "sk-ant-x")
        .header("anthropic-version", "2023-06-01")
        .body(json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}).to_string())
        .send()
        .await
        .unwrap();
    let body: Value = json_of(r).await;
    assert_eq!(body["type"], "message");
    child.kill().await.unwrap();
}

async fn json_of(r: reqwest::Response) -> Value {
    serde_json::from_slice(&r.bytes().await.unwrap()).unwrap()
}

#[tokio::test]
async fn wait_calls_wakes_when_a_request_arrives() {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    // The call never gets an answer, so only the fake's own signal ends the wait.
    fake.push(Behaviour::Hang);
    let base = fake.base_url();
    let call = tokio::spawn(async move { chat(&reqwest::Client::new(), &base).await });
    assert!(fake.wait_calls(1, Duration::from_secs(20)).await, "the call arrived");
    assert_eq!(fake.calls(), 1);
    call.abort();
}

#[tokio::test(start_paused = true)]
async fn wait_calls_gives_up_at_its_bound() {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    assert!(fake.wait_calls(0, Duration::ZERO).await, "already there");
    // Paused time: the bound passes as soon as nothing else can happen.
    assert!(!fake.wait_calls(1, Duration::from_secs(20)).await, "nothing arrived");
}
