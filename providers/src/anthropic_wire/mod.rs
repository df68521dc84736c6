//! Anthropic's Messages JSON shape as a *server* speaks it: what the gateway
//! reads from `anthropic` SDK clients and writes back to them.
//!
//! The adapter in `anthropic.rs` speaks the same format as a *client* of
//! Anthropic (normalised request → Messages body, Messages answer →
//! normalised answer). This module holds the other direction, so a client
//! written for Anthropic can reach any target: Messages request →
//! normalised request, normalised answer → Messages answer, and normalised
//! stream events → Anthropic's event sequence (`message_start`, `ping`,
//! `content_block_start`/`_delta`/`_stop`, `message_delta`, `message_stop`).
//! The tests run both directions against each other.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::types::{
    ChatRequest, ChatResponse, ContentPart, FinishReason, Message, Role, StreamEvent, Tool, ToolCall, ToolChoice, Usage,
};

/// `POST /v1/messages` request body.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct MessagesRequest {
    /// The model id (for the gateway: a workload or an alias).
    pub model: String,
    /// The conversation, alternating `user` and `assistant`.
    pub messages: Vec<WireMessage>,
    /// The system prompt: a string or text blocks.
    #[serde(default)]
    pub system: Option<WireContent>,
    /// Upper bound on generated tokens (Anthropic requires it; optional here).
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// `{"user_id": …}`.
    #[serde(default)]
    pub metadata: Option<WireMetadata>,
    /// Sequences that end generation.
    #[serde(default)]
    pub stop_sequences: Option<Vec<String>>,
    /// Whether to answer as server-sent events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Sampling temperature.
    #[serde(default)]
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    #[serde(default)]
    pub top_p: Option<f32>,
    /// Callable tools.
    #[serde(default)]
    pub tools: Option<Vec<WireTool>>,
    /// `{"type": "auto" | "any" | "none" | "tool", "name": …}`.
    #[serde(default)]
    pub tool_choice: Option<WireToolChoice>,
    /// Fields this struct does not model (`top_k`, `thinking`, …), kept as
    /// sent and not forwarded: the policy decides what reaches a provider.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

/// `{"user_id": …}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct WireMetadata {
    /// An end-user id.
    #[serde(default)]
    pub user_id: Option<String>,
}

/// One message as sent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WireMessage {
    /// `user` or `assistant`.
    pub role: String,
    /// A string or content blocks.
    pub content: WireContent,
}

/// Content: a plain string or typed blocks.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum WireContent {
    /// A plain string.
    Text(String),
    /// Typed blocks.
    Blocks(Vec<WireBlock>),
}

/// One content block of a request.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WireBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image, inline (base64) or by URL.
    Image {
        /// Where the image is.
        source: WireImageSource,
    },
    /// A call the assistant made.
    ToolUse {
        /// The call id.
        id: String,
        /// The tool.
        name: String,
        /// The arguments object.
        #[serde(default)]
        input: Value,
    },
    /// The result of a call, in a user message.
    ToolResult {
        /// The call it answers.
        tool_use_id: String,
        /// A string or text and image blocks.
        #[serde(default)]
        content: Option<WireContent>,
        /// Whether the tool failed.
        #[serde(default)]
        is_error: Option<bool>,
    },
    /// The model's extended thinking, sent back in a conversation; carries
    /// nothing another provider could read, so it is dropped.
    Thinking {},
    /// Redacted thinking; dropped as `thinking` is.
    RedactedThinking {},
}

/// An image source.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WireImageSource {
    /// Inline data.
    Base64 {
        /// `image/png`, `image/jpeg`, …
        media_type: String,
        /// The base64 data.
        data: String,
    },
    /// An `https:` URL.
    Url {
        /// The URL.
        url: String,
    },
}

/// A tool definition.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WireTool {
    /// The tool's name.
    pub name: String,
    /// What it does, for the model.
    #[serde(default)]
    pub description: Option<String>,
    /// JSON Schema of the input; Anthropic's own server tools have none.
    #[serde(default)]
    pub input_schema: Option<Value>,
}

/// Whether and which tool the model must use.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WireToolChoice {
    /// The model decides.
    Auto {},
    /// Some tool must be used.
    Any {},
    /// No tool may be used.
    None {},
    /// This tool must be used.
    Tool {
        /// The tool's name.
        name: String,
    },
}

/// Why a Messages request does not map onto the normalised shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessagesWireError {
    /// A role other than `user` and `assistant` (`system` is a top-level field).
    #[error("unknown message role `{0}`: messages are `user` or `assistant`, the system prompt is the `system` field")]
    UnknownRole(String),
    /// A block in a message whose role cannot hold it.
    #[error("a `{block}` block cannot be in a `{role}` message")]
    Misplaced {
        /// The block type.
        block: &'static str,
        /// The message's role.
        role: String,
    },
    /// A tool without `input_schema` (Anthropic's server tools).
    #[error("tool `{0}` has no `input_schema`: only client tools can be routed")]
    ToolWithoutSchema(String),
    /// `messages` is empty.
    #[error("`messages` must hold at least one message")]
    NoMessages,
}

/// Messages request → the model asked for and the normalised request (the
/// gateway's entry point). `tool_result` blocks become tool messages, in
/// place; a failed tool's result is prefixed `error: ` (the normalised
/// shape has no error flag).
///
/// # Errors
/// [`MessagesWireError`] for an unknown role, a block in the wrong role, a
/// tool without a schema, or no messages.
pub fn request_from_wire(wire: MessagesRequest) -> Result<(String, ChatRequest), MessagesWireError> {
    if wire.messages.is_empty() {
        return Err(MessagesWireError::NoMessages);
    }
    let mut messages = Vec::with_capacity(wire.messages.len() + 1);
    if let Some(system) = wire.system {
        let content = parts_of(system, "system")?;
        if !content.is_empty() {
            messages.push(Message {
                content,
                ..Message::text(Role::System, "")
            });
        }
    }
    for m in wire.messages {
        match m.role.as_str() {
            "user" => user_messages(m.content, &mut messages)?,
            "assistant" => messages.push(assistant_message(m.content)?),
            _ => return Err(MessagesWireError::UnknownRole(m.role)),
        }
    }
    let mut tools = Vec::new();
    for t in wire.tools.unwrap_or_default() {
        let Some(parameters) = t.input_schema else {
            return Err(MessagesWireError::ToolWithoutSchema(t.name));
        };
        tools.push(Tool {
            name: t.name,
            description: t.description,
            parameters,
        });
    }
    let tool_choice = wire.tool_choice.map(|c| match c {
        WireToolChoice::Auto {} => ToolChoice::Auto,
        WireToolChoice::Any {} => ToolChoice::Required,
        WireToolChoice::None {} => ToolChoice::None,
        WireToolChoice::Tool { name } => ToolChoice::Tool(name),
    });
    let request = ChatRequest {
        messages,
        tools,
        tool_choice,
        response_format: None,
        temperature: wire.temperature,
        top_p: wire.top_p,
        max_tokens: wire.max_tokens,
        stop: wire.stop_sequences.unwrap_or_default(),
        seed: None,
        user: wire.metadata.and_then(|m| m.user_id),
        stream: wire.stream.unwrap_or(false),
        metadata: Default::default(),
    };
    Ok((wire.model, request))
}

fn block_name(b: &WireBlock) -> &'static str {
    match b {
        WireBlock::Text { .. } => "text",
        WireBlock::Image { .. } => "image",
        WireBlock::ToolUse { .. } => "tool_use",
        WireBlock::ToolResult { .. } => "tool_result",
        WireBlock::Thinking {} => "thinking",
        WireBlock::RedactedThinking {} => "redacted_thinking",
    }
}

fn image_url(source: WireImageSource) -> String {
    match source {
        WireImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        WireImageSource::Url { url } => url,
    }
}

/// Text and image content (a system prompt, a tool result).
fn parts_of(content: WireContent, role: &str) -> Result<Vec<ContentPart>, MessagesWireError> {
    match content {
        WireContent::Text(text) => Ok(vec![ContentPart::Text { text }]),
        WireContent::Blocks(blocks) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for b in blocks {
                match b {
                    WireBlock::Text { text } => parts.push(ContentPart::Text { text }),
                    WireBlock::Image { source } => parts.push(ContentPart::Image {
                        url: image_url(source),
                        detail: None,
                    }),
                    WireBlock::Thinking {} | WireBlock::RedactedThinking {} => {}
                    other => {
                        return Err(MessagesWireError::Misplaced {
                            block: block_name(&other),
                            role: role.to_owned(),
                        });
                    }
                }
            }
            Ok(parts)
        }
    }
}

/// A user message: its `tool_result` blocks become tool messages, the rest
/// user messages, in the order sent.
fn user_messages(content: WireContent, out: &mut Vec<Message>) -> Result<(), MessagesWireError> {
    let blocks = match content {
        WireContent::Text(text) => {
            out.push(Message::text(Role::User, text));
            return Ok(());
        }
        WireContent::Blocks(blocks) => blocks,
    };
    let mut pending: Vec<ContentPart> = Vec::new();
    let flush = |pending: &mut Vec<ContentPart>, out: &mut Vec<Message>| {
        if !pending.is_empty() {
            out.push(Message {
                content: std::mem::take(pending),
                ..Message::text(Role::User, "")
            });
        }
    };
    for b in blocks {
        match b {
            WireBlock::Text { text } => pending.push(ContentPart::Text { text }),
            WireBlock::Image { source } => pending.push(ContentPart::Image {
                url: image_url(source),
                detail: None,
            }),
            WireBlock::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => {
                flush(&mut pending, out);
                let mut parts = match content {
                    Some(c) => parts_of(c, "tool_result")?,
                    None => Vec::new(),
                };
                if is_error == Some(true) {
                    parts.insert(0, ContentPart::Text { text: "error: ".into() });
                }
                out.push(Message {
                    role: Role::Tool,
                    content: parts,
                    tool_calls: Vec::new(),
                    tool_call_id: Some(tool_use_id),
                    name: None,
                });
            }
            WireBlock::Thinking {} | WireBlock::RedactedThinking {} => {}
            WireBlock::ToolUse { .. } => {
                return Err(MessagesWireError::Misplaced {
                    block: "tool_use",
                    role: "user".into(),
                });
            }
        }
    }
    flush(&mut pending, out);
    Ok(())
}

fn assistant_message(content: WireContent) -> Result<Message, MessagesWireError> {
    let blocks = match content {
        WireContent::Text(text) => return Ok(Message::text(Role::Assistant, text)),
        WireContent::Blocks(blocks) => blocks,
    };
    let mut message = Message {
        content: Vec::new(),
        ..Message::text(Role::Assistant, "")
    };
    for b in blocks {
        match b {
            WireBlock::Text { text } => message.content.push(ContentPart::Text { text }),
            WireBlock::ToolUse { id, name, input } => message.tool_calls.push(ToolCall {
                id,
                name,
                arguments: input.to_string(),
            }),
            WireBlock::Thinking {} | WireBlock::RedactedThinking {} => {}
            other => {
                return Err(MessagesWireError::Misplaced {
                    block: block_name(&other),
                    role: "assistant".into(),
                });
            }
        }
    }
    Ok(message)
}

/// A non-streamed Messages answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesResponse {
    /// The message id.
    pub id: String,
    /// Always `message`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Always `assistant`.
    pub role: String,
    /// The model that answered.
    pub model: String,
    /// Text and tool-use blocks, in order.
    pub content: Vec<ResponseBlock>,
    /// `end_turn`, `max_tokens`, `tool_use` or `refusal`.
    pub stop_reason: Option<String>,
    /// The stop sequence that matched (never known across providers: null).
    pub stop_sequence: Option<String>,
    /// Token counts.
    pub usage: MessagesUsage,
}

/// One content block of an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// A tool call.
    ToolUse {
        /// The call id.
        id: String,
        /// The tool.
        name: String,
        /// The arguments object.
        input: Value,
    },
}

/// Anthropic's token counts: `input_tokens` excludes cache reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagesUsage {
    /// Input tokens not read from the prompt cache.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// Input tokens read from the prompt cache.
    #[serde(default)]
    pub cache_read_input_tokens: u64,
}

/// Normalised usage → Anthropic's counters.
pub fn usage_to_wire(u: &Usage) -> MessagesUsage {
    MessagesUsage {
        input_tokens: u.input_tokens.saturating_sub(u.cached_tokens),
        output_tokens: u.output_tokens,
        cache_read_input_tokens: u.cached_tokens,
    }
}

/// The `stop_reason` for a finish reason.
pub fn stop_reason_to_wire(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "refusal",
    }
}

/// A tool call's JSON-text arguments as the `input` object; text that is
/// not JSON is kept as a string rather than dropped.
fn input_of(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return json!({});
    }
    serde_json::from_str(arguments).unwrap_or_else(|_| Value::String(arguments.to_owned()))
}

/// Normalised answer → Messages answer with the gateway's `id`.
pub fn response_to_wire(resp: &ChatResponse, id: &str) -> MessagesResponse {
    let mut content = Vec::with_capacity(1 + resp.tool_calls.len());
    if !resp.content.is_empty() || resp.tool_calls.is_empty() {
        content.push(ResponseBlock::Text {
            text: resp.content.clone(),
        });
    }
    for c in &resp.tool_calls {
        content.push(ResponseBlock::ToolUse {
            id: c.id.clone(),
            name: c.name.clone(),
            input: input_of(&c.arguments),
        });
    }
    MessagesResponse {
        id: id.to_owned(),
        kind: "message".into(),
        role: "assistant".into(),
        model: resp.model.clone(),
        content,
        stop_reason: Some(stop_reason_to_wire(resp.finish_reason).to_owned()),
        stop_sequence: None,
        usage: usage_to_wire(&resp.usage),
    }
}

/// The block open in a stream: text, or a tool call's `tool_use`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Tool(u32),
}

/// Renders normalised stream events as Anthropic's event sequence. Each
/// event is `(name, data)`; the caller writes `event: NAME\ndata: DATA\n\n`.
/// The first call emits `message_start` and a `ping`; `Done` closes the
/// open block and emits `message_delta` (stop reason, final usage) and
/// `message_stop`.
#[derive(Debug, Clone)]
pub struct EventEncoder {
    id: String,
    model: String,
    started: bool,
    /// The open block and its index.
    open: Option<(Open, u32)>,
    next_index: u32,
    /// Tool index → (id, name), for a call whose deltas resume after another's.
    tools: Vec<(u32, String, String)>,
    usage: Usage,
}

impl EventEncoder {
    /// An encoder for one stream.
    pub fn new(id: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            model: model.into(),
            started: false,
            open: None,
            next_index: 0,
            tools: Vec::new(),
            usage: Usage::default(),
        }
    }

    /// The events for one normalised event, appended to `out`.
    pub fn encode(&mut self, event: &StreamEvent, out: &mut Vec<(&'static str, Value)>) {
        self.start(out);
        match event {
            StreamEvent::TextDelta { text } => {
                if text.is_empty() {
                    return;
                }
                let index = self.open_block(Open::Text, out);
                out.push((
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}),
                ));
            }
            StreamEvent::ToolCallDelta {
                index: tool,
                id,
                name,
                arguments,
            } => {
                if let (Some(id), Some(name)) = (id, name) {
                    self.tools.push((*tool, id.clone(), name.clone()));
                }
                let index = self.open_block(Open::Tool(*tool), out);
                if !arguments.is_empty() {
                    out.push((
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": index,
                               "delta": {"type": "input_json_delta", "partial_json": arguments}}),
                    ));
                }
            }
            StreamEvent::Usage(u) => self.usage = *u,
            StreamEvent::Done { finish_reason, .. } => {
                self.close(out);
                let usage = usage_to_wire(&self.usage);
                out.push((
                    "message_delta",
                    json!({"type": "message_delta",
                           "delta": {"stop_reason": stop_reason_to_wire(*finish_reason), "stop_sequence": null},
                           "usage": usage}),
                ));
                out.push(("message_stop", json!({"type": "message_stop"})));
            }
        }
    }

    /// `message_start` and a `ping`, once.
    pub fn start(&mut self, out: &mut Vec<(&'static str, Value)>) {
        if std::mem::replace(&mut self.started, true) {
            return;
        }
        out.push((
            "message_start",
            json!({"type": "message_start", "message": {
                "id": self.id, "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            }}),
        ));
        out.push(("ping", json!({"type": "ping"})));
    }

    /// The index of the block `kind`, opening it (and closing another) if needed.
    fn open_block(&mut self, kind: Open, out: &mut Vec<(&'static str, Value)>) -> u32 {
        if let Some((open, index)) = self.open
            && open == kind
        {
            return index;
        }
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        let block = match kind {
            Open::Text => json!({"type": "text", "text": ""}),
            Open::Tool(tool) => {
                let (id, name) = self
                    .tools
                    .iter()
                    .find(|(t, _, _)| *t == tool)
                    .map(|(_, id, name)| (id.as_str(), name.as_str()))
                    .unwrap_or_default();
                json!({"type": "tool_use", "id": id, "name": name, "input": {}})
            }
        };
        out.push((
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": block}),
        ));
        self.open = Some((kind, index));
        index
    }

    fn close(&mut self, out: &mut Vec<(&'static str, Value)>) {
        if let Some((_, index)) = self.open.take() {
            out.push((
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            ));
        }
    }
}

/// Anthropic's error `type` for an HTTP status, as its SDKs read it.
pub fn error_type_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    }
}

#[cfg(test)]
mod tests;
