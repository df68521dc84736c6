//! Conversions between the wire types and the normalised shape.

use serde_json::Value;

use super::*;
use crate::error::{ErrorClass, ProviderError};
use crate::provider::default_finish;
use crate::types::{
    ChatRequest, ChatResponse, ContentPart, FinishReason, Message, ResponseFormat, Role, StreamEvent, Tool, ToolCall,
    ToolChoice, Usage,
};

pub(super) fn function_type() -> String {
    "function".to_owned()
}
pub(super) fn assistant_role() -> String {
    "assistant".to_owned()
}
pub(super) fn completion_object() -> String {
    "chat.completion".to_owned()
}
pub(super) fn chunk_object() -> String {
    "chat.completion.chunk".to_owned()
}

/// Normalised request → wire request for `model`, with OpenAI's own field
/// choices (`max_completion_tokens`; usage asked for when streaming).
/// Compatible presets adjust the result (see the adapter).
pub fn request_to_wire(model: &str, req: &ChatRequest) -> ChatCompletionRequest {
    let messages = req.messages.iter().map(message_to_wire).collect();
    let tools = (!req.tools.is_empty()).then(|| req.tools.iter().map(tool_to_wire).collect());
    let tool_choice = req.tool_choice.as_ref().map(|c| match c {
        ToolChoice::Auto => WireToolChoice::Mode("auto".into()),
        ToolChoice::None => WireToolChoice::Mode("none".into()),
        ToolChoice::Required => WireToolChoice::Mode("required".into()),
        ToolChoice::Tool(name) => WireToolChoice::Named(WireNamedTool {
            kind: function_type(),
            function: WireName { name: name.clone() },
        }),
    });
    let response_format = req.response_format.as_ref().map(|f| match f {
        ResponseFormat::Text => WireResponseFormat::Text,
        ResponseFormat::JsonObject => WireResponseFormat::JsonObject,
        ResponseFormat::JsonSchema { name, schema, strict } => WireResponseFormat::JsonSchema {
            json_schema: WireJsonSchema {
                name: name.clone(),
                schema: schema.clone(),
                strict: Some(*strict),
            },
        },
    });
    ChatCompletionRequest {
        model: model.to_owned(),
        messages,
        tools,
        tool_choice,
        response_format,
        temperature: req.temperature,
        top_p: req.top_p,
        max_tokens: None,
        max_completion_tokens: req.max_tokens,
        stop: (!req.stop.is_empty()).then(|| WireStop::Many(req.stop.clone())),
        seed: req.seed,
        user: req.user.clone(),
        stream: req.stream.then_some(true),
        stream_options: req.stream.then_some(StreamOptions { include_usage: true }),
        metadata: None,
        store: None,
        extra: serde_json::Map::new(),
    }
}

fn message_to_wire(m: &Message) -> WireMessage {
    let role = match m.role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    };
    let only_text = m.content.iter().all(|p| matches!(p, ContentPart::Text { .. }));
    let content = if m.content.is_empty() && !m.tool_calls.is_empty() {
        None
    } else if only_text {
        Some(WireContent::Text(m.joined_text()))
    } else {
        Some(WireContent::Parts(
            m.content
                .iter()
                .map(|p| match p {
                    ContentPart::Text { text } => WirePart::Text { text: text.clone() },
                    ContentPart::Image { url, detail } => WirePart::ImageUrl {
                        image_url: WireImageUrl {
                            url: url.clone(),
                            detail: detail.clone(),
                        },
                    },
                })
                .collect(),
        ))
    };
    WireMessage {
        role: role.to_owned(),
        content,
        name: m.name.clone(),
        tool_calls: (!m.tool_calls.is_empty()).then(|| m.tool_calls.iter().map(tool_call_to_wire).collect()),
        tool_call_id: m.tool_call_id.clone(),
    }
}

fn tool_to_wire(t: &Tool) -> WireTool {
    WireTool {
        kind: function_type(),
        function: WireFunction {
            name: t.name.clone(),
            description: t.description.clone(),
            parameters: Some(t.parameters.clone()),
            strict: None,
        },
    }
}

fn tool_call_to_wire(c: &ToolCall) -> WireToolCall {
    WireToolCall {
        id: c.id.clone(),
        kind: function_type(),
        function: WireFunctionCall {
            name: c.name.clone(),
            arguments: c.arguments.clone(),
        },
    }
}

/// Wire request → the model asked for and the normalised request (the
/// gateway's entry point). `max_completion_tokens` wins over `max_tokens`.
///
/// # Errors
/// [`WireError`] for an unknown role or tool choice, or a tool message
/// without its call id.
pub fn request_from_wire(wire: ChatCompletionRequest) -> Result<(String, ChatRequest), WireError> {
    let mut messages = Vec::with_capacity(wire.messages.len());
    for m in wire.messages {
        let role = match m.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            "tool" => Role::Tool,
            other => return Err(WireError::UnknownRole(other.to_owned())),
        };
        if role == Role::Tool && m.tool_call_id.is_none() {
            return Err(WireError::ToolMessageWithoutId);
        }
        let content = match m.content {
            None => Vec::new(),
            Some(WireContent::Text(text)) => vec![ContentPart::Text { text }],
            Some(WireContent::Parts(parts)) => parts
                .into_iter()
                .map(|p| match p {
                    WirePart::Text { text } => ContentPart::Text { text },
                    WirePart::ImageUrl { image_url } => ContentPart::Image {
                        url: image_url.url,
                        detail: image_url.detail,
                    },
                })
                .collect(),
        };
        messages.push(Message {
            role,
            content,
            tool_calls: m
                .tool_calls
                .unwrap_or_default()
                .into_iter()
                .map(tool_call_from_wire)
                .collect(),
            tool_call_id: m.tool_call_id,
            name: m.name,
        });
    }
    let tool_choice = match wire.tool_choice {
        None => None,
        Some(WireToolChoice::Mode(mode)) => Some(match mode.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            _ => return Err(WireError::UnknownToolChoice(mode)),
        }),
        Some(WireToolChoice::Named(named)) => Some(ToolChoice::Tool(named.function.name)),
    };
    let response_format = wire.response_format.map(|f| match f {
        WireResponseFormat::Text => ResponseFormat::Text,
        WireResponseFormat::JsonObject => ResponseFormat::JsonObject,
        WireResponseFormat::JsonSchema { json_schema } => ResponseFormat::JsonSchema {
            name: json_schema.name,
            schema: json_schema.schema,
            strict: json_schema.strict.unwrap_or(false),
        },
    });
    let request = ChatRequest {
        messages,
        tools: wire
            .tools
            .unwrap_or_default()
            .into_iter()
            .map(|t| Tool {
                name: t.function.name,
                description: t.function.description,
                parameters: t
                    .function
                    .parameters
                    .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
            })
            .collect(),
        tool_choice,
        response_format,
        temperature: wire.temperature,
        top_p: wire.top_p,
        max_tokens: wire.max_completion_tokens.or(wire.max_tokens),
        stop: match wire.stop {
            None => Vec::new(),
            Some(WireStop::One(s)) => vec![s],
            Some(WireStop::Many(v)) => v,
        },
        seed: wire.seed,
        user: wire.user,
        stream: wire.stream.unwrap_or(false),
        metadata: wire.metadata.unwrap_or_default(),
    };
    Ok((wire.model, request))
}

fn tool_call_from_wire(c: WireToolCall) -> ToolCall {
    ToolCall {
        id: c.id,
        name: c.function.name,
        arguments: c.function.arguments,
    }
}

/// Maps a finish-reason string; unknown values (a newer API's) read as
/// `stop`, the only safe guess that claims nothing was cut.
pub fn finish_reason_from_wire(reason: &str) -> FinishReason {
    match reason {
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        _ => FinishReason::Stop,
    }
}

/// The wire string for a finish reason.
pub fn finish_reason_to_wire(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
    }
}

/// Wire usage → normalised usage (OpenAI's and DeepSeek's cache fields both read).
pub fn usage_from_wire(u: &WireUsage) -> Usage {
    Usage {
        input_tokens: u.prompt_tokens,
        output_tokens: u.completion_tokens,
        cached_tokens: u
            .prompt_tokens_details
            .map(|d| d.cached_tokens)
            .or(u.prompt_cache_hit_tokens)
            .unwrap_or(0),
    }
}

/// Normalised usage → wire usage.
pub fn usage_to_wire(u: &Usage) -> WireUsage {
    WireUsage {
        prompt_tokens: u.input_tokens,
        completion_tokens: u.output_tokens,
        total_tokens: u.input_tokens + u.output_tokens,
        prompt_tokens_details: Some(PromptTokensDetails {
            cached_tokens: u.cached_tokens,
        }),
        prompt_cache_hit_tokens: None,
    }
}

/// Wire response → normalised response (first choice).
///
/// # Errors
/// [`WireError::NoChoices`] when the response has no choice.
pub fn response_from_wire(wire: ChatCompletionResponse) -> Result<ChatResponse, WireError> {
    let choice = wire.choices.into_iter().next().ok_or(WireError::NoChoices)?;
    let tool_calls: Vec<ToolCall> = choice
        .message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .map(tool_call_from_wire)
        .collect();
    let content = choice.message.content.or(choice.message.refusal).unwrap_or_default();
    let finish_reason = match choice.finish_reason.as_deref() {
        Some(reason) => finish_reason_from_wire(reason),
        None => default_finish(&tool_calls),
    };
    Ok(ChatResponse {
        id: (!wire.id.is_empty()).then_some(wire.id),
        model: wire.model,
        content,
        tool_calls,
        finish_reason,
        usage: wire.usage.as_ref().map(usage_from_wire).unwrap_or_default(),
    })
}

/// Normalised response → wire response, with the gateway's `id` and `created`.
pub fn response_to_wire(resp: &ChatResponse, id: &str, created: u64) -> ChatCompletionResponse {
    ChatCompletionResponse {
        id: id.to_owned(),
        object: completion_object(),
        created,
        model: resp.model.clone(),
        choices: vec![WireChoice {
            index: 0,
            message: WireResponseMessage {
                role: assistant_role(),
                content: (!resp.content.is_empty() || resp.tool_calls.is_empty()).then(|| resp.content.clone()),
                tool_calls: (!resp.tool_calls.is_empty())
                    .then(|| resp.tool_calls.iter().map(tool_call_to_wire).collect()),
                refusal: None,
            },
            finish_reason: Some(finish_reason_to_wire(resp.finish_reason).to_owned()),
        }],
        usage: Some(usage_to_wire(&resp.usage)),
    }
}

/// Renders normalised stream events as `chat.completion.chunk`s, in OpenAI's
/// order: the first chunk carries the role, the finish reason comes on its
/// own chunk, then (if asked for) a usage chunk with no choices. The caller
/// writes each as `data: <json>\n\n` and ends with `data: [DONE]\n\n`.
#[derive(Debug, Clone)]
pub struct ChunkEncoder {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    sent_role: bool,
    usage: Option<Usage>,
}

impl ChunkEncoder {
    /// An encoder for one stream.
    pub fn new(id: impl Into<String>, model: impl Into<String>, created: u64, include_usage: bool) -> Self {
        Self {
            id: id.into(),
            model: model.into(),
            created,
            include_usage,
            sent_role: false,
            usage: None,
        }
    }

    /// The chunks for one event (none for a usage event, which is held until `Done`).
    pub fn encode(&mut self, event: &StreamEvent) -> Vec<ChatCompletionChunk> {
        match event {
            StreamEvent::TextDelta { text } => {
                let delta = WireDelta {
                    role: self.take_role(),
                    content: Some(text.clone()),
                    tool_calls: None,
                };
                vec![self.chunk(delta, None)]
            }
            StreamEvent::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            } => {
                let delta = WireDelta {
                    role: self.take_role(),
                    content: None,
                    tool_calls: Some(vec![WireToolCallDelta {
                        index: *index,
                        id: id.clone(),
                        kind: id.as_ref().map(|_| function_type()),
                        function: WireFunctionDelta {
                            name: name.clone(),
                            arguments: Some(arguments.clone()),
                        },
                    }]),
                };
                vec![self.chunk(delta, None)]
            }
            StreamEvent::Usage(u) => {
                self.usage = Some(*u);
                Vec::new()
            }
            StreamEvent::Done { finish_reason, .. } => {
                let delta = WireDelta {
                    role: self.take_role(),
                    ..WireDelta::default()
                };
                let mut out = vec![self.chunk(delta, Some(finish_reason_to_wire(*finish_reason)))];
                if self.include_usage {
                    out.push(ChatCompletionChunk {
                        id: self.id.clone(),
                        object: chunk_object(),
                        created: self.created,
                        model: self.model.clone(),
                        choices: Vec::new(),
                        usage: Some(usage_to_wire(&self.usage.unwrap_or_default())),
                        x_groq: None,
                    });
                }
                out
            }
        }
    }

    fn take_role(&mut self) -> Option<String> {
        (!std::mem::replace(&mut self.sent_role, true)).then(assistant_role)
    }

    fn chunk(&self, delta: WireDelta, finish_reason: Option<&str>) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: self.id.clone(),
            object: chunk_object(),
            created: self.created,
            model: self.model.clone(),
            choices: vec![WireChunkChoice {
                index: 0,
                delta,
                finish_reason: finish_reason.map(str::to_owned),
            }],
            usage: None,
            x_groq: None,
        }
    }
}

/// Renders a provider error as an OpenAI error body and the HTTP status a
/// gateway should answer with, so clients' own retry logic reacts as it would
/// to OpenAI.
pub fn error_to_wire(err: &ProviderError) -> (u16, ErrorBody) {
    let (status, kind, code) = match err.class() {
        ErrorClass::RateLimited => (429, "rate_limit_error", "rate_limit_exceeded"),
        ErrorClass::Overloaded => (503, "server_error", "overloaded"),
        ErrorClass::ServerError => (502, "server_error", "upstream_error"),
        ErrorClass::Timeout(_) => (504, "server_error", "upstream_timeout"),
        ErrorClass::Connection => (502, "server_error", "upstream_unreachable"),
        ErrorClass::Auth => (502, "server_error", "upstream_auth_failed"),
        ErrorClass::BadRequest => (400, "invalid_request_error", "invalid_request"),
        ErrorClass::ContextLengthExceeded => (400, "invalid_request_error", "context_length_exceeded"),
        ErrorClass::ContentPolicy => (400, "invalid_request_error", "content_policy_violation"),
        ErrorClass::MalformedResponse => (502, "server_error", "upstream_malformed_response"),
        ErrorClass::ResponseTooLarge => (502, "server_error", "upstream_response_too_large"),
    };
    (
        status,
        ErrorBody {
            error: ErrorDetail {
                message: err.to_string(),
                kind: Some(kind.to_owned()),
                param: None,
                code: Some(Value::String(code.to_owned())),
            },
        },
    )
}
