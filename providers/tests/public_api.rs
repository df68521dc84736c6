//! Uses only what the crate root exports, as the runtime and gateway will:
//! if an item needed here stops being public, this stops compiling.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use providers::openai_wire::{self, ChatCompletionRequest, ChunkEncoder};
use providers::{
    AdapterConfig, AdapterKind, ApiKey, Capabilities, ChatRequest, ChatResponse, ConfigError, ContentPart, ErrorClass,
    EventStream, FinishReason, Message, Provider, ProviderError, ResponseFormat, Role, SimOutcome, SimProfile,
    SimResult, SimulatedProvider, StreamEvent, TimeoutKind, Timeouts, Tool, ToolCall, ToolChoice, Usage, adapter_for,
    collect_stream, estimate_tokens,
};

#[tokio::test]
async fn gateway_round_trip_through_the_mock_adapter() {
    // The gateway's path: OpenAI JSON in → normalised → provider → OpenAI JSON out.
    let wire: ChatCompletionRequest = serde_json::from_str(
        r#"{"model":"demo","messages":[{"role":"user","content":"hello"}],"stream":true,"stream_options":{"include_usage":true}}"#,
    )
    .unwrap();
    let (model, req) = openai_wire::request_from_wire(wire).unwrap();
    let mut config = AdapterConfig::new("demo");
    config.simulation = Some(SimProfile::instant());
    let provider = adapter_for(&AdapterKind::Mock, config).unwrap();
    assert_eq!(provider.name(), "demo");
    let caps: Capabilities = provider.capabilities(&model);
    assert!(caps.stream);

    let stream: EventStream = provider.stream(&model, &req).await.unwrap();
    let mut encoder = ChunkEncoder::new("chatcmpl-1", &model, 0, true);
    let mut chunks = Vec::new();
    let events: Vec<StreamEvent> = futures::StreamExt::collect::<Vec<_>>(stream)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for event in &events {
        chunks.extend(encoder.encode(event));
    }
    assert!(chunks.last().unwrap().usage.is_some());

    let whole: ChatResponse = provider.complete(&model, &req).await.unwrap();
    let out = openai_wire::response_to_wire(&whole, "chatcmpl-2", 0);
    assert_eq!(out.choices[0].finish_reason.as_deref(), Some("stop"));
}

#[test]
fn every_exported_type_is_usable() {
    let _: ChatRequest = ChatRequest::user("x");
    let _: Option<&dyn Provider> = None;
    let _: Usage = Usage::default();
    let _: FinishReason = FinishReason::Stop;
    let _: ContentPart = ContentPart::Text { text: "x".into() };
    let _: Message = Message::text(Role::User, "x");
    let _: ToolChoice = ToolChoice::Auto;
    let _: ToolCall = ToolCall {
        id: "c".into(),
        name: "f".into(),
        arguments: "{}".into(),
    };
    let _: Tool = Tool {
        name: "f".into(),
        description: None,
        parameters: serde_json::json!({}),
    };
    let _: ResponseFormat = ResponseFormat::JsonObject;
    let _: Timeouts = Timeouts::default();
    let _: TimeoutKind = TimeoutKind::Idle;
    let outcome: SimOutcome = SimProfile::instant().sample(1, 2, 3, 4);
    assert!(matches!(outcome.result, SimResult::Ok { .. }));
    let _ = SimulatedProvider::new("s", SimProfile::with_latency(Duration::ZERO, Duration::ZERO));
    assert!(estimate_tokens("hello world") > 0);
    assert_eq!(format!("{}", ApiKey::new("secret")), "***");
    let err: ConfigError = adapter_for(&AdapterKind::Anthropic, AdapterConfig::new("a")).unwrap_err();
    assert_eq!(err.to_string(), "provider `a` needs an api key");
    assert!(ErrorClass::RateLimited.can_fallback());
    let _ = |e: ProviderError| e.retry_after();
    let _ = collect_stream;
}
