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

mod convert;
mod embeddings;

pub use convert::{
    ChunkEncoder, error_to_wire, finish_reason_from_wire, finish_reason_to_wire, request_from_wire, request_to_wire,
    response_from_wire, response_to_wire, usage_from_wire, usage_to_wire,
};
use convert::{assistant_role, chunk_object, completion_object, function_type};
pub use embeddings::{
    DecodedEmbeddings, EmbeddingData, EmbeddingEncoding, EmbeddingInput, EmbeddingVector, EmbeddingsRequest,
    EmbeddingsRequestError, EmbeddingsResponse, EmbeddingsUsage, base64_of, floats_of_base64,
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

#[cfg(test)]
mod tests;
