//! The one trait every adapter implements, so the runtime never knows which
//! wire format is behind a target.

use std::pin::Pin;

use async_trait::async_trait;
use futures::{Stream, StreamExt};

use crate::error::{ErrorClass, ProviderError};
use crate::types::{
    ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, FinishReason, StreamEvent, ToolCall, Usage,
};

/// A stream of normalised events; dropping it cancels the upstream call.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, ProviderError>> + Send>>;

/// What an adapter's wire format can carry for a model.
///
/// This is what the *adapter* can express; whether a given model supports it
/// is declared in the policy, which the compiler checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// Function / tool calling.
    pub tools: bool,
    /// JSON output constrained by a schema (natively or emulated faithfully).
    pub json_schema: bool,
    /// Image inputs.
    pub vision: bool,
    /// Incremental streaming (otherwise `stream` yields the whole answer at once).
    pub stream: bool,
}

/// A chat-completion backend.
///
/// Both calls are cancel-safe in the sense the runtime needs: dropping the
/// future (or the returned stream) aborts the upstream HTTP request or kills
/// the CLI child process.
#[async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    /// The provider's name from the policy (`anthropic`, `cerebras`, …).
    fn name(&self) -> &str;

    /// The model ids this provider was configured with (may be empty).
    fn models(&self) -> &[String];

    /// What this adapter can carry for `model`.
    fn capabilities(&self, model: &str) -> Capabilities;

    /// Sends `req` to `model` and waits for the whole answer.
    async fn complete(&self, model: &str, req: &ChatRequest) -> Result<ChatResponse, ProviderError>;

    /// Sends `req` to `model` and returns its events as they arrive.
    ///
    /// Errors before the first byte come back as `Err`; errors after it
    /// (including a stream cut short) as an `Err` item, after which the
    /// stream ends.
    async fn stream(&self, model: &str, req: &ChatRequest) -> Result<EventStream, ProviderError>;

    /// Sends `req` to the embedding model `model`: one vector per input
    /// text, in order. Adapters whose wire format has no embeddings
    /// endpoint keep this default, a bad-request error (the policy checker
    /// refuses `supports embeddings` on them, so a checked policy never
    /// routes an embedding call here).
    async fn embed(&self, model: &str, req: &EmbedRequest) -> Result<EmbedResponse, ProviderError> {
        let _ = (model, req);
        Err(ProviderError::new(
            self.name(),
            ErrorClass::BadRequest,
            "this adapter has no embeddings endpoint",
        ))
    }
}

/// Checks an upstream's vectors against the request: one per input text.
/// A short or long list would pair texts with the wrong vectors.
pub(crate) fn check_vectors(provider: &str, req: &EmbedRequest, vectors: &[Vec<f32>]) -> Result<(), ProviderError> {
    if vectors.len() != req.input.len() {
        return Err(ProviderError::new(
            provider,
            ErrorClass::MalformedResponse,
            format!("{} vectors for {} input texts", vectors.len(), req.input.len()),
        ));
    }
    Ok(())
}

/// Input tokens of an embedding request, as the estimator counts them: for
/// providers that bill embeddings but do not report usage.
pub fn estimate_embed_tokens(req: &EmbedRequest) -> u64 {
    req.input.iter().map(|t| crate::tokens::estimate_tokens(t)).sum()
}

/// Drains a stream into one response, as if `complete` had been called.
///
/// Useful for callers that want a provider's streaming path but a whole
/// answer (and for checking that both paths agree). `model` fills
/// [`ChatResponse::model`], which streams do not always repeat.
pub async fn collect_stream(mut stream: EventStream, model: &str) -> Result<ChatResponse, ProviderError> {
    let mut content = String::new();
    let mut tool_calls: Vec<ToolCall> = Vec::new();
    let mut usage = Usage::default();
    while let Some(event) = stream.next().await {
        match event? {
            StreamEvent::TextDelta { text } => content.push_str(&text),
            StreamEvent::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            } => {
                let index = index as usize;
                while tool_calls.len() <= index {
                    tool_calls.push(ToolCall {
                        id: String::new(),
                        name: String::new(),
                        arguments: String::new(),
                    });
                }
                let call = &mut tool_calls[index];
                if let Some(id) = id {
                    call.id = id;
                }
                if let Some(name) = name {
                    call.name = name;
                }
                call.arguments.push_str(&arguments);
            }
            StreamEvent::Usage(u) => usage = u,
            StreamEvent::Done { finish_reason, .. } => {
                return Ok(ChatResponse {
                    id: None,
                    model: model.to_owned(),
                    content,
                    tool_calls,
                    finish_reason,
                    usage,
                });
            }
        }
    }
    Err(ProviderError::new(
        "stream",
        ErrorClass::MalformedResponse,
        "stream ended without a done event",
    ))
}

/// The finish reason to report when a provider sent none.
pub(crate) fn default_finish(tool_calls: &[ToolCall]) -> FinishReason {
    if tool_calls.is_empty() {
        FinishReason::Stop
    } else {
        FinishReason::ToolCalls
    }
}
