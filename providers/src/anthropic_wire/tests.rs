//! Both directions against each other: what the gateway reads from an
//! Anthropic client must come out of the Anthropic adapter as the client
//! sent it, and what the gateway writes must read back, through the
//! adapter's own decoders, as the answer it started from.

use serde_json::json;

use super::*;
use crate::anthropic::{EventDecoder, decode_response, encode_request};
use crate::http::{Ctx, StreamDecoder};
use crate::openai_wire;
use crate::sse::SseEvent;

fn wire(v: Value) -> MessagesRequest {
    serde_json::from_value(v).unwrap()
}

fn ctx() -> Ctx {
    Ctx {
        name: "anthropic".into(),
        key: crate::ApiKey::none(),
    }
}

/// A conversation with everything the issue names: a system prompt, an
/// image, tools, a tool call and its result.
fn full_request() -> Value {
    json!({
        "model": "claude-sonnet",
        "max_tokens": 300,
        "system": [{"type": "text", "text": "be brief"}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "what is in this picture, and the weather?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "let me check"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                {"type": "text", "text": "thanks"}
            ]}
        ],
        "tools": [{"name": "get_weather", "description": "weather", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any"},
        "temperature": 0.5,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u1"},
        "top_k": 5,
        "stream": true
    })
}

#[test]
fn a_full_messages_request_maps_in() {
    let (model, req) = request_from_wire(wire(full_request())).unwrap();
    assert_eq!(model, "claude-sonnet");
    let roles: Vec<Role> = req.messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [Role::System, Role::User, Role::Assistant, Role::Tool, Role::User]
    );
    assert_eq!(req.messages[0].joined_text(), "be brief");
    assert_eq!(
        req.messages[1].content[1],
        ContentPart::Image {
            url: "data:image/png;base64,AAAA".into(),
            detail: None
        }
    );
    assert_eq!(req.messages[2].tool_calls[0].arguments, r#"{"city":"Paris"}"#);
    assert_eq!(req.messages[3].tool_call_id.as_deref(), Some("toolu_1"));
    assert_eq!(req.messages[3].joined_text(), "sunny");
    assert_eq!(req.tool_choice, Some(ToolChoice::Required));
    assert_eq!(req.max_tokens, Some(300));
    assert_eq!(req.stop, ["END"]);
    assert_eq!(req.user.as_deref(), Some("u1"));
    assert!(req.stream);
}

#[test]
fn a_request_read_here_leaves_the_anthropic_adapter_as_the_client_sent_it() {
    let sent = full_request();
    let (model, req) = request_from_wire(wire(sent.clone())).unwrap();
    let out = encode_request(&model, &req, true);
    assert_eq!(out["system"], "be brief");
    assert_eq!(out["messages"][0], sent["messages"][0]);
    assert_eq!(out["messages"][1], sent["messages"][1]);
    // The adapter writes tool results as text; the blocks are otherwise the client's.
    assert_eq!(
        out["messages"][2]["content"],
        json!([
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
            {"type": "text", "text": "thanks"}
        ])
    );
    assert_eq!(out["tools"][0]["input_schema"], sent["tools"][0]["input_schema"]);
    assert_eq!(out["tool_choice"], sent["tool_choice"]);
    assert_eq!(out["stop_sequences"], sent["stop_sequences"]);
    assert_eq!(out["max_tokens"], 300);
}

#[test]
fn a_request_read_here_reaches_an_openai_upstream_whole() {
    let (model, req) = request_from_wire(wire(full_request())).unwrap();
    let out = serde_json::to_value(openai_wire::request_to_wire(&model, &req)).unwrap();
    let messages = out["messages"].as_array().unwrap();
    assert_eq!(messages[0], json!({"role": "system", "content": "be brief"}));
    assert_eq!(
        messages[1]["content"][1]["image_url"]["url"],
        "data:image/png;base64,AAAA"
    );
    assert_eq!(
        messages[2]["tool_calls"][0]["function"],
        json!({"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"})
    );
    assert_eq!(
        messages[3],
        json!({"role": "tool", "content": "sunny", "tool_call_id": "toolu_1"})
    );
    assert_eq!(messages[4], json!({"role": "user", "content": "thanks"}));
    assert_eq!(out["tool_choice"], "required");
    assert_eq!(out["tools"][0]["function"]["parameters"], json!({"type": "object"}));
}

#[test]
fn bad_requests_are_named() {
    let base = |messages: Value| wire(json!({"model": "m", "messages": messages}));
    assert_eq!(
        request_from_wire(base(json!([]))).unwrap_err(),
        MessagesWireError::NoMessages
    );
    assert_eq!(
        request_from_wire(base(json!([{"role": "system", "content": "x"}]))).unwrap_err(),
        MessagesWireError::UnknownRole("system".into())
    );
    let e = request_from_wire(base(
        json!([{"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "f", "input": {}}]}]),
    ))
    .unwrap_err();
    assert_eq!(e.to_string(), "a `tool_use` block cannot be in a `user` message");
    let e = request_from_wire(wire(
        json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}]}),
    ))
    .unwrap_err();
    assert_eq!(e, MessagesWireError::ToolWithoutSchema("web_search".into()));
    // A block type nobody knows is a shape error, not a silent drop.
    assert!(
        serde_json::from_value::<MessagesRequest>(json!({"model": "m",
        "messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]}))
        .is_err()
    );
}

#[test]
fn an_error_result_and_thinking_blocks() {
    let (_, req) = request_from_wire(wire(json!({"model": "m", "messages": [
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"},
                                          {"type": "tool_use", "id": "a", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a", "is_error": true,
                                      "content": [{"type": "text", "text": "boom"}]}]}
    ]})))
    .unwrap();
    assert!(req.messages[0].content.is_empty());
    assert_eq!(req.messages[1].joined_text(), "error: boom");
}

fn answer(tool: bool) -> ChatResponse {
    ChatResponse {
        id: Some("up-1".into()),
        model: "gpt-4o-mini".into(),
        content: if tool { String::new() } else { "Hello".into() },
        tool_calls: if tool {
            vec![ToolCall {
                id: "call_1".into(),
                name: "get_weather".into(),
                arguments: r#"{"city":"Paris"}"#.into(),
            }]
        } else {
            Vec::new()
        },
        finish_reason: if tool {
            FinishReason::ToolCalls
        } else {
            FinishReason::Stop
        },
        usage: Usage {
            input_tokens: 20,
            output_tokens: 7,
            cached_tokens: 5,
        },
    }
}

#[test]
fn an_answer_written_here_reads_back_through_the_adapter() {
    for tool in [false, true] {
        let resp = answer(tool);
        let body = serde_json::to_vec(&response_to_wire(&resp, "msg_1")).unwrap();
        let back = decode_response(&ctx(), &body, false).unwrap();
        assert_eq!(back.id.as_deref(), Some("msg_1"));
        assert_eq!(back.content, resp.content);
        assert_eq!(back.tool_calls, resp.tool_calls);
        assert_eq!(back.finish_reason, resp.finish_reason);
        assert_eq!(back.usage, resp.usage, "cache reads are split out and added back");
    }
    let wire = serde_json::to_value(response_to_wire(&answer(true), "msg_1")).unwrap();
    assert_eq!(wire["content"][0]["input"], json!({"city": "Paris"}));
    assert_eq!(wire["stop_reason"], "tool_use");
    assert_eq!(wire["usage"]["input_tokens"], 15);
}

/// Encodes `events`, then decodes the SSE text with the adapter's decoder.
fn through_the_adapter(events: &[StreamEvent]) -> (Vec<&'static str>, Vec<StreamEvent>) {
    let mut encoder = EventEncoder::new("msg_1", "m");
    let mut wire = Vec::new();
    for e in events {
        encoder.encode(e, &mut wire);
    }
    let names = wire.iter().map(|(n, _)| *n).collect();
    let mut decoder = EventDecoder::new(false);
    let mut out = Vec::new();
    for (name, data) in wire {
        let event = SseEvent {
            event: name.to_owned(),
            data: data.to_string(),
        };
        assert!(decoder.on_event(&ctx(), event, &mut out).is_ok(), "{name}");
    }
    assert!(decoder.is_done());
    (names, out)
}

#[test]
fn a_stream_written_here_reads_back_through_the_adapter() {
    let usage = Usage {
        input_tokens: 20,
        output_tokens: 7,
        cached_tokens: 0,
    };
    let events = [
        StreamEvent::TextDelta { text: "Hel".into() },
        StreamEvent::TextDelta { text: "lo".into() },
        StreamEvent::ToolCallDelta {
            index: 0,
            id: Some("call_1".into()),
            name: Some("f".into()),
            arguments: String::new(),
        },
        StreamEvent::ToolCallDelta {
            index: 0,
            id: None,
            name: None,
            arguments: "{\"a\":".into(),
        },
        StreamEvent::ToolCallDelta {
            index: 0,
            id: None,
            name: None,
            arguments: "1}".into(),
        },
        StreamEvent::Usage(usage),
        StreamEvent::Done {
            finish_reason: FinishReason::ToolCalls,
            skipped_events: 0,
        },
    ];
    let (names, back) = through_the_adapter(&events);
    assert_eq!(
        names,
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(back.as_slice(), events.as_slice());
}

#[test]
fn an_empty_stream_still_starts_and_stops() {
    let done = StreamEvent::Done {
        finish_reason: FinishReason::Stop,
        skipped_events: 0,
    };
    let (names, back) = through_the_adapter(std::slice::from_ref(&done));
    assert_eq!(names, ["message_start", "ping", "message_delta", "message_stop"]);
    assert_eq!(back, [StreamEvent::Usage(Usage::default()), done]);
}
