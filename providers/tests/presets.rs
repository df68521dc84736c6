//! OpenAI-compatible presets against the OpenAI-flavored fake: base URL
//! paths, quirks in the request body, and keyless local servers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use fake_upstream::{Behaviour, FakeUpstream, Flavor};
use providers::{
    AdapterConfig, AdapterKind, ApiKey, ChatRequest, ConfigError, ErrorClass, ResponseFormat, adapter_for,
};

fn preset(name: &str) -> AdapterKind {
    AdapterKind::from_name(name).unwrap()
}

async fn fake_with_path(path: &str) -> (FakeUpstream, AdapterConfig) {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let mut config = AdapterConfig::new("p");
    config.base_url = Some(format!("http://{}{path}", fake.addr()));
    config.api_key = ApiKey::new("sk-test");
    (fake, config)
}

#[tokio::test]
async fn groq_base_url_path_is_kept() {
    let (fake, config) = fake_with_path("/openai/v1").await;
    let p = adapter_for(&preset("groq"), config).unwrap();
    p.complete("llama-3.1-8b-instant", &ChatRequest::user("hi"))
        .await
        .unwrap();
    let sent = fake.last_request().unwrap();
    assert_eq!(sent.path_and_query, "/openai/v1/chat/completions");
    assert_eq!(sent.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(sent.json()["model"], "llama-3.1-8b-instant");
}

#[tokio::test]
async fn openrouter_no_store_and_extra_headers() {
    let (fake, mut config) = fake_with_path("/api/v1").await;
    config.no_store = true;
    config.extra_headers = vec![("X-Title".into(), "routec".into())];
    let p = adapter_for(&preset("openrouter"), config).unwrap();
    p.complete("anthropic/claude-sonnet-4.5", &ChatRequest::user("hi"))
        .await
        .unwrap();
    let sent = fake.last_request().unwrap();
    assert_eq!(sent.json()["provider"]["data_collection"], "deny");
    assert_eq!(sent.header("x-title"), Some("routec"));
}

#[tokio::test]
async fn openrouter_error_in_a_200_body_is_classified() {
    let (fake, config) = fake_with_path("/api/v1").await;
    let p = adapter_for(&preset("openrouter"), config).unwrap();
    fake.push(Behaviour::fixture("openrouter_200_error.json", 200));
    let e = p.complete("m", &ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::RateLimited);
}

#[tokio::test]
async fn mistral_seed_and_stream_options() {
    let (fake, config) = fake_with_path("/v1").await;
    let p = adapter_for(&preset("mistral"), config).unwrap();
    let mut req = ChatRequest::user("hi");
    req.seed = Some(42);
    req.max_tokens = Some(100);
    providers::collect_stream(p.stream("mistral-small-latest", &req).await.unwrap(), "m")
        .await
        .unwrap();
    let body = fake.last_request().unwrap().json();
    assert_eq!(body["random_seed"], 42);
    assert!(body.get("seed").is_none());
    assert!(body.get("stream_options").is_none());
    assert_eq!(body["max_tokens"], 100);
}

#[tokio::test]
async fn deepseek_json_schema_falls_back_to_json_object() {
    let (fake, config) = fake_with_path("/v1").await;
    let p = adapter_for(&preset("deepseek"), config).unwrap();
    assert!(!p.capabilities("deepseek-chat").json_schema);
    let mut req = ChatRequest::user("hi");
    req.response_format = Some(ResponseFormat::JsonSchema {
        name: "x".into(),
        schema: serde_json::json!({"type": "object"}),
        strict: true,
    });
    fake.push(Behaviour::Json);
    p.complete("deepseek-chat", &req).await.unwrap();
    let body = fake.last_request().unwrap().json();
    assert_eq!(body["response_format"]["type"], "json_object");
    assert_eq!(body["messages"][0]["role"], "system");
}

#[tokio::test]
async fn vllm_context_length_error_shape_is_recognised() {
    let (fake, config) = fake_with_path("/v1").await;
    let p = adapter_for(&preset("vllm"), config).unwrap();
    fake.push(Behaviour::fixture("vllm_400_context_length.json", 400));
    let e = p.complete("m", &ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::ContextLengthExceeded);
}

#[tokio::test]
async fn local_servers_need_no_key() {
    let (fake, mut config) = fake_with_path("/v1").await;
    config.api_key = ApiKey::none();
    let p = adapter_for(&preset("ollama"), config).unwrap();
    p.complete("llama3.2", &ChatRequest::user("hi")).await.unwrap();
    assert!(fake.last_request().unwrap().header("authorization").is_none());
}

#[test]
fn hosted_presets_need_a_key_and_build_with_their_default_url() {
    for name in providers::AdapterKind::preset_names() {
        let kind = preset(name);
        let mut config = AdapterConfig::new(name);
        let no_key = adapter_for(&kind, config.clone());
        if !matches!(name, "vllm" | "ollama") {
            assert_eq!(no_key.unwrap_err(), ConfigError::MissingKey { provider: name.into() });
        }
        config.api_key = ApiKey::new("k");
        assert_eq!(adapter_for(&kind, config).unwrap().name(), name);
    }
}

#[tokio::test]
async fn bare_openai_compatible_uses_the_given_base_url() {
    let (fake, config) = fake_with_path("/custom/v1").await;
    let p = adapter_for(&AdapterKind::OpenAiCompatible { preset: None }, config).unwrap();
    p.complete("m", &ChatRequest::user("hi")).await.unwrap();
    assert_eq!(
        fake.last_request().unwrap().path_and_query,
        "/custom/v1/chat/completions"
    );
    assert!(fake.last_request().unwrap().json().get("max_tokens").is_none());
}
