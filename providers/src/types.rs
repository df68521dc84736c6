//! The normalised chat shape every adapter speaks. Provider quirks live in the
//! adapters; these types only hold what a caller means.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One chat completion request, independent of any provider's wire format.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The conversation, system messages included, in order.
    pub messages: Vec<Message>,
    /// Functions the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    /// Whether and which tool the model must call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Plain text, any JSON object, or JSON matching a schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    /// Nucleus sampling mass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f32>,
    /// Upper bound on generated tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Sequences that end generation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// Sampling seed, where the provider supports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// An end-user id, forwarded for the provider's abuse monitoring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Whether the caller asked for a stream (the router decides which method it calls).
    #[serde(default)]
    pub stream: bool,
    /// Caller metadata; used by routing, forwarded only where a provider accepts it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

impl ChatRequest {
    /// A request holding a single user message.
    pub fn user(text: impl Into<String>) -> Self {
        Self {
            messages: vec![Message::text(Role::User, text)],
            ..Self::default()
        }
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions from the application.
    System,
    /// The end user.
    User,
    /// The model.
    Assistant,
    /// The result of a tool call, answering `tool_call_id`.
    Tool,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Text and images, in order.
    #[serde(default)]
    pub content: Vec<ContentPart>,
    /// Calls the assistant made (assistant messages only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// The call this message answers (tool messages only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// An optional participant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Message {
    /// A message holding one text part.
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            content: vec![ContentPart::Text { text: text.into() }],
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
        }
    }

    /// All text parts joined, ignoring images.
    pub fn joined_text(&self) -> String {
        let mut out = String::new();
        for part in &self.content {
            if let ContentPart::Text { text } = part {
                out.push_str(text);
            }
        }
        out
    }
}

/// One piece of message content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
    /// An image, as an `https:` URL or a `data:<mime>;base64,…` URL.
    Image {
        /// Where the image is, or the image itself as a data URL.
        url: String,
        /// OpenAI's `detail` hint (`low`, `high`, `auto`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
}

/// A function the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// The function name.
    pub name: String,
    /// What it does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tool may be called.
    None,
    /// Some tool must be called.
    Required,
    /// This named tool must be called.
    Tool(String),
}

/// A call the model made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's call id (generated for providers that have none).
    pub id: String,
    /// The function called.
    pub name: String,
    /// The arguments as JSON text, exactly as the model produced them.
    pub arguments: String,
}

/// The output format asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Free text (the default).
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON matching `schema`.
    JsonSchema {
        /// The schema's name (OpenAI requires one).
        name: String,
        /// The JSON Schema.
        schema: serde_json::Value,
        /// Whether the provider should enforce the schema strictly.
        #[serde(default)]
        strict: bool,
    },
}

/// A normalised embedding request: texts in, one vector per text out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbedRequest {
    /// The texts to embed, in order.
    pub input: Vec<String>,
    /// The vectors' length, for models that can shorten them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// The end user, passed on where the provider takes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// The vectors of an [`EmbedRequest`], one per input text, in its order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbedResponse {
    /// The model that answered, as the provider names it.
    pub model: String,
    /// One vector per input text.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens billed: input only (an estimate where the provider reports none).
    pub usage: Usage,
}

/// A completed response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The provider's response id, when it sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The model that answered, as the provider reported it.
    pub model: String,
    /// The generated text (empty when the model only called tools).
    pub content: String,
    /// Tool calls, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Why generation stopped.
    pub finish_reason: FinishReason,
    /// Token counts.
    pub usage: Usage,
}

impl ChatResponse {
    /// The whole answer as the events of a complete stream: its text (one
    /// delta), its tool calls, its usage, then `Done`. What a replayed,
    /// joined or cached answer sends a streaming caller.
    pub fn stream_events(&self) -> Vec<StreamEvent> {
        let mut events = Vec::with_capacity(3 + self.tool_calls.len());
        if !self.content.is_empty() {
            events.push(StreamEvent::TextDelta {
                text: self.content.clone(),
            });
        }
        for (i, call) in self.tool_calls.iter().enumerate() {
            events.push(StreamEvent::ToolCallDelta {
                index: u32::try_from(i).unwrap_or(u32::MAX),
                id: Some(call.id.clone()),
                name: Some(call.name.clone()),
                arguments: call.arguments.clone(),
            });
        }
        events.push(StreamEvent::Usage(self.usage));
        events.push(StreamEvent::Done {
            finish_reason: self.finish_reason,
            skipped_events: 0,
        });
        events
    }
}

/// Why generation stopped, one enum across providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// Natural end or a stop sequence.
    Stop,
    /// The max-tokens limit.
    Length,
    /// The model called tools and waits for their results.
    ToolCalls,
    /// The provider's content filter cut the output.
    ContentFilter,
}

/// Token counts for one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens billed, cached ones included.
    pub input_tokens: u64,
    /// Generated tokens.
    pub output_tokens: u64,
    /// Of `input_tokens`, how many were served from the provider's prompt cache.
    #[serde(default)]
    pub cached_tokens: u64,
}

/// One event of a streamed response.
///
/// A successful stream is zero or more deltas, at most one [`StreamEvent::Usage`],
/// then exactly one [`StreamEvent::Done`]; a stream that ends without `Done`
/// yields an error item instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// More generated text.
    TextDelta {
        /// The new text.
        text: String,
    },
    /// Part of a tool call; `id` and `name` arrive on the first delta of an index.
    ToolCallDelta {
        /// Which tool call (0-based, in order of appearance).
        index: u32,
        /// The call id, on the first delta.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The function name, on the first delta.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// A fragment of the arguments JSON text.
        arguments: String,
    },
    /// Final token counts.
    Usage(Usage),
    /// The end of a successful stream.
    Done {
        /// Why generation stopped.
        finish_reason: FinishReason,
        /// Malformed upstream events skipped on the way (at most a handful;
        /// more end the stream with an error), for the runtime to count.
        #[serde(default, skip_serializing_if = "is_zero")]
        skipped_events: u32,
    },
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
