//! The OpenAI chat-completions JSON shape, in and out.
//!
//! Two users: the OpenAI and OpenAI-compatible adapters (normalised request →
//! wire request, wire response → normalised response) and the gateway, which
//! speaks this shape to its clients (wire request → normalised request,
//! normalised response and stream events → wire response and chunks). Keeping
//! both directions here means a field added once is carried both ways.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ErrorClass, ProviderError};
use crate::provider::default_finish;
use crate::types::{
    ChatRequest, ChatResponse, ContentPart, FinishReason, Message, ResponseFormat, Role, StreamEvent, Tool, ToolCall,
    ToolChoice, Usage,
};

/// `POST /v1/chat/completions` request body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionRequest {
    /// The model id.
    pub model: String,
    /// The conversation.
    pub messages: Vec<WireMessage>,
    /// Callable functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<WireTool>>,
    /// `"auto"`, `"none"`, `"required"` or `{"type":"function","function":{"name":…}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<WireToolChoice>,
    /// `{"type": "text" | "json_object" | "json_schema", …}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<WireResponseFormat>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// The older output-token limit field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// The current output-token limit field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    /// One stop string or several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<WireStop>,
    /// Sampling seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// End-user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Whether to answer as server-sent events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// `{"include_usage": true}` asks for a final usage chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// Caller metadata (string values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// OpenAI's switch for storing the completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<bool>,
    /// Fields this struct does not model, kept as sent (and used for
    /// per-service extensions such as OpenRouter's `provider` object).
    #[serde(flatten)]
    pub extra: serde_json::Map<String, Value>,
}

/// One message as sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WireMessage {
    /// `system`, `developer`, `user`, `assistant` or `tool`.
    pub role: String,
    /// A string or an array of parts; may be null on assistant tool-call messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<WireContent>,
    /// Participant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The assistant's calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<WireToolCall>>,
    /// The call a tool message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

/// Message content: a plain string or typed parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WireContent {
    /// A plain string.
    Text(String),
    /// Typed parts.
    Parts(Vec<WirePart>),
}

/// One typed content part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WirePart {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image by URL or data URL.
    ImageUrl {
        /// The image reference.
        image_url: WireImageUrl,
    },
}

/// `{"url": …, "detail": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireImageUrl {
    /// `https:` or `data:` URL.
    pub url: String,
    /// `low`, `high` or `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A tool call on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireToolCall {
    /// The call id.
    pub id: String,
    /// Always `function`.
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    /// Name and JSON-text arguments.
    pub function: WireFunctionCall,
}

/// `{"name": …, "arguments": "<json text>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireFunctionCall {
    /// The function.
    pub name: String,
    /// The arguments as JSON text.
    #[serde(default)]
    pub arguments: String,
}

/// A tool definition on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireTool {
    /// Always `function`.
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    /// The function's definition.
    pub function: WireFunction,
}

/// A function definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireFunction {
    /// Name.
    pub name: String,
    /// Description for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// Strict schema adherence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// Tool choice: a mode string or a named function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WireToolChoice {
    /// `auto`, `none` or `required`.
    Mode(String),
    /// `{"type": "function", "function": {"name": …}}`.
    Named(WireNamedTool),
}

/// A forced function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireNamedTool {
    /// Always `function`.
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    /// The function's name.
    pub function: WireName,
}

/// `{"name": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireName {
    /// The name.
    pub name: String,
}

/// The response format on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WireResponseFormat {
    /// Free text.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON matching a schema.
    JsonSchema {
        /// The schema and its name.
        json_schema: WireJsonSchema,
    },
}

/// `{"name", "schema", "strict"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireJsonSchema {
    /// Schema name.
    pub name: String,
    /// The JSON Schema.
    #[serde(default)]
    pub schema: Value,
    /// Strict adherence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// `stop`: a string or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WireStop {
    /// One stop string.
    One(String),
    /// Several.
    Many(Vec<String>),
}

/// `stream_options`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamOptions {
    /// Ask for a final chunk carrying usage.
    #[serde(default)]
    pub include_usage: bool,
}

/// A non-streamed response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionResponse {
    /// Response id.
    #[serde(default)]
    pub id: String,
    /// `chat.completion`.
    #[serde(default = "completion_object")]
    pub object: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: u64,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// Choices (one, as we never send `n`).
    pub choices: Vec<WireChoice>,
    /// Token counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<WireUsage>,
}

/// One choice of a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireChoice {
    /// Choice index.
    #[serde(default)]
    pub index: u32,
    /// The assistant message.
    pub message: WireResponseMessage,
    /// `stop`, `length`, `tool_calls`, `content_filter` (or `function_call`).
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// The assistant message of a response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WireResponseMessage {
    /// `assistant`.
    #[serde(default = "assistant_role")]
    pub role: String,
    /// The text, null when the model only called tools.
    #[serde(default)]
    pub content: Option<String>,
    /// Tool calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<WireToolCall>>,
    /// A refusal message (structured outputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
}

/// Token counts on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireUsage {
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Generated tokens.
    #[serde(default)]
    pub completion_tokens: u64,
    /// Their sum.
    #[serde(default)]
    pub total_tokens: u64,
    /// `{"cached_tokens": n}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    /// DeepSeek's name for cached prompt tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache_hit_tokens: Option<u64>,
}

/// Breakdown of prompt tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    /// Served from the prompt cache.
    #[serde(default)]
    pub cached_tokens: u64,
}

/// One `chat.completion.chunk` of a stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionChunk {
    /// Stream id (the same on every chunk).
    #[serde(default)]
    pub id: String,
    /// `chat.completion.chunk`.
    #[serde(default = "chunk_object")]
    pub object: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: u64,
    /// The model.
    #[serde(default)]
    pub model: String,
    /// Deltas (empty on the usage-only chunk).
    #[serde(default)]
    pub choices: Vec<WireChunkChoice>,
    /// Set on the final chunk when `include_usage` was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<WireUsage>,
    /// Groq puts stream usage here instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x_groq: Option<XGroq>,
}

/// Groq's extension object on chunks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct XGroq {
    /// Usage, on the last chunk.
    #[serde(default)]
    pub usage: Option<WireUsage>,
}

/// One choice of a chunk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WireChunkChoice {
    /// Choice index.
    #[serde(default)]
    pub index: u32,
    /// What is new.
    #[serde(default)]
    pub delta: WireDelta,
    /// Set on the choice's last chunk.
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// The new part of the message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WireDelta {
    /// `assistant` on the first chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// More text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Tool-call fragments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<WireToolCallDelta>>,
}

/// A fragment of one tool call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireToolCallDelta {
    /// Which call.
    #[serde(default)]
    pub index: u32,
    /// The id, on the first fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `function`, on the first fragment.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name (first fragment) and an arguments fragment.
    #[serde(default)]
    pub function: WireFunctionDelta,
}

/// Name and arguments fragment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireFunctionDelta {
    /// The name, on the first fragment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// More argument text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

/// `{"error": {...}}`, the error body OpenAI and its clients expect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The error object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Human-readable message.
    pub message: String,
    /// `invalid_request_error`, `rate_limit_error`, `server_error`, …
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The offending parameter.
    #[serde(default)]
    pub param: Option<String>,
    /// A machine code: a string for OpenAI, a number for some compatible services.
    #[serde(default)]
    pub code: Option<Value>,
}

/// Why a wire request or response does not map onto the normalised shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// A role this router does not know (e.g. the legacy `function`).
    #[error("unknown message role `{0}`")]
    UnknownRole(String),
    /// A `tool` message must say which call it answers.
    #[error("tool message without `tool_call_id`")]
    ToolMessageWithoutId,
    /// A tool choice mode other than `auto`, `none`, `required`.
    #[error("unknown tool_choice `{0}`")]
    UnknownToolChoice(String),
    /// A response with no choices.
    #[error("response has no choices")]
    NoChoices,
}

fn function_type() -> String {
    "function".to_owned()
}
fn assistant_role() -> String {
    "assistant".to_owned()
}
fn completion_object() -> String {
    "chat.completion".to_owned()
}
fn chunk_object() -> String {
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
            StreamEvent::Done { finish_reason } => {
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

#[cfg(test)]
#[path = "openai_wire_tests.rs"]
mod tests;
