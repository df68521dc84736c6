use super::*;
use crate::error::{ErrorClass, ProviderError};
use crate::types::{
    ChatResponse, ContentPart, FinishReason, ResponseFormat, Role, StreamEvent, ToolCall, ToolChoice, Usage,
};
use serde_json::json;

fn wire_request(v: Value) -> ChatCompletionRequest {
    serde_json::from_value(v).unwrap()
}

#[test]
fn a_full_client_request_maps_in() {
    let wire = wire_request(json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "developer", "content": "be brief"},
            {"role": "user", "content": [
                {"type": "text", "text": "what is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":1}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "42"}
        ],
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "lookup"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}, "strict": true}},
        "temperature": 0.2, "top_p": 0.9, "max_tokens": 50, "stop": "END", "seed": 3, "user": "u1",
        "stream": true, "stream_options": {"include_usage": true}, "metadata": {"team": "x"},
        "logit_bias": {"1": 2}
    }));
    assert!(wire.extra.contains_key("logit_bias"));
    let (model, req) = request_from_wire(wire).unwrap();
    assert_eq!(model, "gpt-4o");
    assert_eq!(req.messages[0].role, Role::System);
    assert!(matches!(req.messages[1].content[1], ContentPart::Image { .. }));
    assert_eq!(req.messages[2].tool_calls[0].arguments, "{\"q\":1}");
    assert_eq!(req.messages[3].tool_call_id.as_deref(), Some("call_1"));
    assert_eq!(req.tool_choice, Some(ToolChoice::Tool("lookup".into())));
    assert!(matches!(
        req.response_format,
        Some(ResponseFormat::JsonSchema { strict: true, .. })
    ));
    assert_eq!(req.max_tokens, Some(50));
    assert_eq!(req.stop, vec!["END".to_owned()]);
    assert_eq!(req.metadata.get("team").map(String::as_str), Some("x"));
    assert!(req.stream);
}

#[test]
fn request_round_trips_through_the_wire() {
    let wire = wire_request(json!({
        "model": "m",
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
        "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}],
        "tool_choice": "required",
        "response_format": {"type": "json_object"},
        "max_completion_tokens": 9, "stop": ["a", "b"], "seed": 1
    }));
    let (model, req) = request_from_wire(wire).unwrap();
    let back = request_to_wire(&model, &req);
    let (model2, req2) = request_from_wire(back).unwrap();
    assert_eq!(model, model2);
    assert_eq!(req, req2);
}

#[test]
fn bad_requests_are_rejected() {
    let unknown = wire_request(json!({"model": "m", "messages": [{"role": "function", "content": "x"}]}));
    assert_eq!(
        request_from_wire(unknown).unwrap_err(),
        WireError::UnknownRole("function".into())
    );
    let no_id = wire_request(json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}));
    assert_eq!(request_from_wire(no_id).unwrap_err(), WireError::ToolMessageWithoutId);
    let choice = wire_request(json!({"model": "m", "messages": [], "tool_choice": "sometimes"}));
    assert!(matches!(
        request_from_wire(choice),
        Err(WireError::UnknownToolChoice(_))
    ));
}

#[test]
fn response_round_trips() {
    let resp = ChatResponse {
        id: Some("r".into()),
        model: "m".into(),
        content: String::new(),
        tool_calls: vec![ToolCall {
            id: "c".into(),
            name: "f".into(),
            arguments: "{}".into(),
        }],
        finish_reason: FinishReason::ToolCalls,
        usage: Usage {
            input_tokens: 10,
            output_tokens: 2,
            cached_tokens: 4,
        },
    };
    let wire = response_to_wire(&resp, "r", 7);
    let json = serde_json::to_value(&wire).unwrap();
    assert_eq!(json["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(json["usage"]["total_tokens"], 12);
    assert_eq!(response_from_wire(wire).unwrap(), resp);
}

#[test]
fn chunks_follow_openai_order() {
    let mut enc = ChunkEncoder::new("c1", "m", 1, true);
    let mut chunks = Vec::new();
    for ev in [
        StreamEvent::TextDelta { text: "Hi".into() },
        StreamEvent::Usage(Usage {
            input_tokens: 3,
            output_tokens: 1,
            cached_tokens: 0,
        }),
        StreamEvent::Done {
            finish_reason: FinishReason::Stop,
            skipped_events: 0,
        },
    ] {
        chunks.extend(enc.encode(&ev));
    }
    assert_eq!(chunks.len(), 3);
    assert_eq!(chunks[0].choices[0].delta.role.as_deref(), Some("assistant"));
    assert_eq!(chunks[1].choices[0].finish_reason.as_deref(), Some("stop"));
    assert!(chunks[2].choices.is_empty());
    assert_eq!(chunks[2].usage.map(|u| u.prompt_tokens), Some(3));
}

#[test]
fn provider_errors_render_as_openai_errors() {
    let err = ProviderError::new("groq", ErrorClass::RateLimited, "slow down").with_status(429);
    let (status, body) = error_to_wire(&err);
    assert_eq!(status, 429);
    assert_eq!(body.error.kind.as_deref(), Some("rate_limit_error"));
}
