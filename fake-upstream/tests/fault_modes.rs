//! The fault modes of the failure-mode suite, seen from a plain HTTP client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use fake_upstream::{Behaviour, FakeUpstream, Flavor};
use serde_json::json;

async fn chat(fake: &FakeUpstream, stream: bool, last_role: &str) -> reqwest::Result<reqwest::Response> {
    let messages = json!([{"role": "user", "content": "hi"}, {"role": last_role, "content": "so"}]);
    reqwest::Client::new()
        .post(format!("{}/chat/completions", fake.base_url()))
        .header("authorization", "Bearer sk-x")
        .header("content-type", "application/json")
        .body(json!({"model": "m", "messages": messages, "stream": stream}).to_string())
        .timeout(Duration::from_secs(10))
        .send()
        .await
}

async fn body(fake: &FakeUpstream, behaviour: Behaviour) -> (u16, String) {
    fake.push(behaviour);
    let r = chat(fake, true, "user").await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn reset_sends_no_status_at_all() {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    fake.push(Behaviour::Reset);
    let e = chat(&fake, false, "user").await.expect_err("a reset is not a response");
    assert!(e.status().is_none(), "{e}");
    // The next call is served normally.
    assert_eq!(chat(&fake, false, "user").await.unwrap().status(), 200);
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn the_default_behaviour_is_an_outage_until_it_is_lifted() {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    fake.set_default(Behaviour::error(503));
    fake.push(Behaviour::error(429));
    assert_eq!(chat(&fake, false, "user").await.unwrap().status(), 429);
    for _ in 0..2 {
        assert_eq!(chat(&fake, false, "user").await.unwrap().status(), 503);
    }
    fake.set_default(Behaviour::Ok);
    assert_eq!(chat(&fake, false, "user").await.unwrap().status(), 200);
}

#[tokio::test]
async fn stream_faults_shape_the_body() {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let (status, text) = body(&fake, Behaviour::NoDone).await;
    assert_eq!(status, 200);
    assert!(
        text.contains("\"finish_reason\":\"stop\"") && text.contains("\"usage\":{"),
        "{text}"
    );
    assert!(!text.contains("[DONE]"), "{text}");

    let (_, text) = body(&fake, Behaviour::MalformedEvents { count: 2 }).await;
    assert_eq!(text.matches("oops").count(), 2);
    assert!(text.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn a_stalled_stream_sends_whole_events_then_nothing() {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    fake.push(Behaviour::StallAfterEvents { events: 2 });
    let mut r = chat(&fake, true, "user").await.unwrap();
    let mut got = String::new();
    while got.matches("\n\n").count() < 2 {
        let chunk = tokio::time::timeout(Duration::from_secs(5), r.chunk()).await;
        got.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap().unwrap()));
    }
    assert_eq!(got.matches("data: ").count(), 2);
    // Waiting for nothing: bounded, and a stall means nothing arrives.
    let more = tokio::time::timeout(Duration::from_millis(300), r.chunk()).await;
    assert!(more.is_err(), "the stream went on: {more:?}");
}

#[tokio::test]
async fn a_slow_first_token_arrives_after_its_delay() {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    fake.push(Behaviour::SlowFirstToken { delay_ms: 300 });
    let start = Instant::now();
    let r = chat(&fake, true, "user").await.unwrap();
    let text = r.text().await.unwrap();
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
}

#[tokio::test]
async fn refusals_context_length_and_prefill() {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let (status, text) = body(&fake, Behaviour::ContentFilter).await;
    assert_eq!(status, 400);
    assert!(text.contains("content_policy_violation"), "{text}");
    let (status, text) = body(&fake, Behaviour::ContextLength).await;
    assert_eq!(status, 400);
    assert!(text.contains("context_length_exceeded"), "{text}");

    fake.set_default(Behaviour::RejectPrefill);
    assert_eq!(chat(&fake, false, "assistant").await.unwrap().status(), 400);
    assert_eq!(chat(&fake, false, "user").await.unwrap().status(), 200);
}

#[tokio::test]
async fn anthropic_and_gemini_refuse_in_their_own_shape() {
    let anthropic = FakeUpstream::start(Flavor::Anthropic).await.unwrap();
    anthropic.push(Behaviour::ContentFilter);
    let r = reqwest::Client::new()
        .post(format!("{}/v1/messages", anthropic.base_url()))
        .header("x-api-key", "k")
        .header("anthropic-version", "2023-06-01")
        .body(json!({"model": "c", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("\"refusal\""));

    let gemini = FakeUpstream::start(Flavor::Gemini).await.unwrap();
    gemini.push(Behaviour::ContentFilter);
    let r = reqwest::Client::new()
        .post(format!("{}/models/g:streamGenerateContent?alt=sse", gemini.base_url()))
        .header("x-goog-api-key", "k")
        .body(json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}).to_string())
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(text.starts_with("data: {") && text.contains("SAFETY"), "{text}");
}
