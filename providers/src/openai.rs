//! The OpenAI chat-completions adapter, which also serves every
//! OpenAI-compatible preset: one code path, quirks read from the preset row.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::config::{AdapterConfig, ConfigError, check_base_url};
use crate::error::{ErrorClass, ProviderError};
use crate::http::{Ctx, ErrorReading, EventError, PostUrl, StreamDecoder, Transport, body_text, join_url};
use crate::openai_wire::{
    self, ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ErrorBody, ErrorDetail, StreamOptions,
    WireContent, WireMessage, WireResponseFormat, finish_reason_from_wire, usage_from_wire,
};
use crate::presets::{MaxTokensField, NoStore, Preset};
use crate::provider::{Capabilities, EventStream, Provider};
use crate::sse::SseEvent;
use crate::types::{ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, FinishReason, StreamEvent, Usage};

/// An OpenAI or OpenAI-compatible endpoint.
#[derive(Debug)]
pub(crate) struct OpenAiAdapter {
    transport: Arc<Transport>,
    url: PostUrl,
    embeddings_url: PostUrl,
    preset: &'static Preset,
    no_store: bool,
    models: Vec<String>,
}

impl OpenAiAdapter {
    pub(crate) fn new(config: AdapterConfig, preset: &'static Preset) -> Result<Self, ConfigError> {
        let base = match (&config.base_url, preset.base_url) {
            (Some(url), _) => check_base_url(&config.name, url)?,
            (None, "") => return Err(ConfigError::MissingBaseUrl { provider: config.name }),
            (None, url) => url.to_owned(),
        };
        if preset.key_required && config.api_key.is_empty() {
            return Err(ConfigError::MissingKey { provider: config.name });
        }
        let ctx = Ctx {
            name: config.name.as_str().into(),
            key: config.api_key,
        };
        let key = ctx.key.expose();
        let auth = if key.is_empty() {
            Vec::new()
        } else {
            vec![("authorization", format!("Bearer {key}"))]
        };
        let transport = Transport::new(
            ctx,
            config.timeouts,
            config.max_body_bytes,
            &config.extra_headers,
            &auth,
            classify_error,
        )?;
        Ok(Self {
            transport: Arc::new(transport),
            url: PostUrl::parse(&join_url(&base, "chat/completions")),
            embeddings_url: PostUrl::parse(&join_url(&base, "embeddings")),
            preset,
            no_store: config.no_store,
            models: config.models,
        })
    }

    async fn send(&self, model: &str, req: &ChatRequest, stream: bool) -> Result<reqwest::Response, ProviderError> {
        let wire = encode_request(self.preset, self.no_store, model, req, stream);
        let body = serde_json::to_vec(&wire).map_err(|e| {
            self.transport
                .ctx
                .err(ErrorClass::BadRequest, &format!("request not encodable: {e}"))
        })?;
        self.transport.post(&self.url, body).await
    }
}

/// Builds the wire request with the preset's quirks applied.
pub(crate) fn encode_request(
    preset: &Preset,
    no_store: bool,
    model: &str,
    req: &ChatRequest,
    stream: bool,
) -> ChatCompletionRequest {
    let mut wire = openai_wire::request_to_wire(model, req);
    wire.stream = stream.then_some(true);
    wire.stream_options = (stream && preset.stream_usage_option).then_some(StreamOptions { include_usage: true });
    if preset.max_tokens_field == MaxTokensField::MaxTokens {
        wire.max_tokens = wire.max_completion_tokens.take();
    }
    match preset.seed_field {
        Some("seed") => {}
        Some(field) => {
            if let Some(seed) = wire.seed.take() {
                wire.extra.insert(field.to_owned(), Value::from(seed));
            }
        }
        None => wire.seed = None,
    }
    if !preset.json_schema
        && let Some(WireResponseFormat::JsonSchema { json_schema }) = &wire.response_format
    {
        // Without native schemas, ask for a JSON object and state the schema
        // where the model reads instructions.
        let instruction = format!(
            "Respond with a JSON object that matches this JSON Schema:\n{}",
            json_schema.schema
        );
        wire.messages.insert(
            0,
            WireMessage {
                role: "system".into(),
                content: Some(WireContent::Text(instruction)),
                ..WireMessage::default()
            },
        );
        wire.response_format = Some(WireResponseFormat::JsonObject);
    }
    if no_store {
        match preset.no_store {
            NoStore::Unsupported => {}
            NoStore::StoreFalse => wire.store = Some(false),
            NoStore::OpenRouterDataCollection => {
                wire.extra
                    .insert("provider".into(), serde_json::json!({"data_collection": "deny"}));
            }
        }
    }
    // Metadata is routing input; OpenAI only accepts it with `store`, and
    // compatible servers reject it, so it is not forwarded.
    wire.metadata = None;
    wire
}

/// Decodes a non-streamed body; OpenRouter and some proxies answer 200 with
/// an error object, which is classified like an error status.
pub(crate) fn decode_response(ctx: &Ctx, body: &[u8]) -> Result<ChatResponse, ProviderError> {
    // The typed parse is the fast path; only a body that fails it is looked
    // at again for an error object.
    match serde_json::from_slice::<ChatCompletionResponse>(body) {
        Ok(wire) => {
            let response = openai_wire::response_from_wire(wire)
                .map_err(|e| ctx.err(ErrorClass::MalformedResponse, &e.to_string()))?;
            if response.finish_reason == FinishReason::ContentFilter {
                return Err(content_filtered(ctx));
            }
            Ok(response)
        }
        Err(e) => {
            let value = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
            if value.get("error").is_some_and(|e| !e.is_null()) {
                return Err(classify_error(ErrorClass::ServerError, body).into_error(ctx));
            }
            Err(ctx.err(
                ErrorClass::MalformedResponse,
                &format!("response is not a chat completion: {e}; body: {}", body_text(body)),
            ))
        }
    }
}

/// Reads an OpenAI-shaped error body.
///
/// The code is the reliable signal (`context_length_exceeded`,
/// `content_policy_violation`); messages are checked too because compatible
/// servers (vLLM, Mistral, Together) say "maximum context length" without it.
pub(crate) fn classify_error(status_class: ErrorClass, body: &[u8]) -> ErrorReading {
    // OpenAI nests the error under `error`; vLLM and some others answer with
    // the object itself (`{"object":"error","message":…}`).
    let parsed = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.error)
        .or_else(|_| serde_json::from_slice::<ErrorDetail>(body));
    let Ok(detail) = parsed else {
        return ErrorReading::unrecognised(status_class, body);
    };
    let code = match &detail.code {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    };
    let kind = detail.kind.clone().unwrap_or_default();
    let lower = detail.message.to_ascii_lowercase();
    let class = if code == "context_length_exceeded"
        || lower.contains("maximum context length")
        || lower.contains("context length exceeded")
        || lower.contains("context_length_exceeded")
        || lower.contains("too many tokens")
    {
        ErrorClass::ContextLengthExceeded
    } else if code == "content_policy_violation"
        || code == "content_filter"
        || kind == "content_policy_violation"
        || lower.contains("content management policy")
    {
        ErrorClass::ContentPolicy
    } else if code == "invalid_api_key" {
        ErrorClass::Auth
    } else if code == "rate_limit_exceeded" || code == "insufficient_quota" || kind == "rate_limit_error" {
        // Also reached on a 200 carrying an error object (OpenRouter).
        ErrorClass::RateLimited
    } else if code == "429" || code == "503" || code == "502" || code == "500" || code == "401" || code == "403" {
        // OpenRouter puts the upstream HTTP status in a numeric `code`.
        code.parse::<u16>().map(ErrorClass::from_status).unwrap_or(status_class)
    } else {
        status_class
    };
    // The code when there is one, else the type (OpenAI's content filter
    // sometimes sends only `type: content_policy_violation`).
    let provider_code = if code.is_empty() { kind } else { code };
    ErrorReading {
        class,
        message: detail.message,
        retry_after: None,
        code: Some(provider_code),
    }
}

/// A `content_filter` finish: the provider refused or cut the answer on
/// policy grounds, which is a refusal, not a complete answer.
fn content_filtered(ctx: &Ctx) -> ProviderError {
    ctx.err(
        ErrorClass::ContentPolicy,
        "the provider's content filter stopped the answer (finish reason `content_filter`)",
    )
    .with_provider_code(Some("content_filter".to_owned()))
}

/// Chunk stream → normalised events. Usage may arrive on a choice-less final
/// chunk (OpenAI with `include_usage`), on the finishing chunk (Mistral,
/// vLLM) or under `x_groq` (Groq); all are read.
#[derive(Debug, Default)]
pub(crate) struct ChunkDecoder {
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    saw_tool_call: bool,
    done: bool,
}

impl StreamDecoder for ChunkDecoder {
    fn on_event(&mut self, ctx: &Ctx, event: SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), EventError> {
        if event.data.trim() == "[DONE]" {
            return Ok(self.finish(ctx, out)?);
        }
        let value: Value = serde_json::from_str(&event.data).map_err(|e| {
            EventError::Malformed(format!(
                "stream chunk is not json: {e}; data: {}",
                ctx.key.redact(&body_text(event.data.as_bytes()))
            ))
        })?;
        if value.get("error").is_some_and(|e| !e.is_null()) {
            return Err(classify_error(ErrorClass::ServerError, event.data.as_bytes())
                .into_error(ctx)
                .into());
        }
        let chunk: ChatCompletionChunk = serde_json::from_value(value)
            .map_err(|e| EventError::Malformed(format!("stream chunk has the wrong shape: {e}")))?;
        if let Some(u) = chunk
            .usage
            .as_ref()
            .or(chunk.x_groq.as_ref().and_then(|x| x.usage.as_ref()))
        {
            self.usage = Some(usage_from_wire(u));
        }
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(text) = choice.delta.content
                && !text.is_empty()
            {
                out.push(StreamEvent::TextDelta { text });
            }
            for call in choice.delta.tool_calls.unwrap_or_default() {
                self.saw_tool_call = true;
                out.push(StreamEvent::ToolCallDelta {
                    index: call.index,
                    id: call.id,
                    name: call.function.name,
                    arguments: call.function.arguments.unwrap_or_default(),
                });
            }
            if let Some(reason) = choice.finish_reason {
                self.finish = Some(finish_reason_from_wire(&reason));
            }
        }
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.done
    }

    /// Some compatible servers end the body after the finishing chunk (and
    /// the usage chunk) without `[DONE]`: that answer is complete. Without a
    /// finish reason it is cut short.
    fn on_eof(&mut self, ctx: &Ctx, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if self.finish.is_none() {
            return Err(ctx.err(
                ErrorClass::MalformedResponse,
                "event stream ended before a finish reason",
            ));
        }
        self.finish(ctx, out)
    }
}

impl ChunkDecoder {
    fn finish(&mut self, ctx: &Ctx, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        let Some(finish_reason) = self.finish else {
            return Err(ctx.err(
                ErrorClass::MalformedResponse,
                "event stream sent `[DONE]` without a finish reason",
            ));
        };
        if finish_reason == FinishReason::ContentFilter {
            return Err(content_filtered(ctx));
        }
        if let Some(usage) = self.usage {
            out.push(StreamEvent::Usage(usage));
        }
        out.push(StreamEvent::Done {
            finish_reason,
            skipped_events: 0,
        });
        self.done = true;
        Ok(())
    }
}

#[async_trait]
impl Provider for OpenAiAdapter {
    fn name(&self) -> &str {
        &self.transport.ctx.name
    }

    fn models(&self) -> &[String] {
        &self.models
    }

    fn capabilities(&self, _model: &str) -> Capabilities {
        Capabilities {
            tools: true,
            // Emulated with a system instruction where not native, which is
            // not a guarantee, so only native support counts.
            json_schema: self.preset.json_schema,
            vision: self.preset.vision,
            stream: true,
        }
    }

    async fn complete(&self, model: &str, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        self.transport
            .with_total(async {
                let response = self.send(model, req, false).await?;
                let body = self.transport.read_json_body(response).await?;
                decode_response(&self.transport.ctx, &body)
            })
            .await
    }

    async fn stream(&self, model: &str, req: &ChatRequest) -> Result<EventStream, ProviderError> {
        let response = self.transport.with_total(self.send(model, req, true)).await?;
        self.transport.event_stream(response, ChunkDecoder::default())
    }

    async fn embed(&self, model: &str, req: &EmbedRequest) -> Result<EmbedResponse, ProviderError> {
        let ctx = &self.transport.ctx;
        let wire = openai_wire::EmbeddingsRequest::from_normalised(model, req);
        let body = serde_json::to_vec(&wire)
            .map_err(|e| ctx.err(ErrorClass::BadRequest, &format!("request not encodable: {e}")))?;
        self.transport
            .with_total(async {
                let response = self.transport.post(&self.embeddings_url, body).await?;
                let body = self.transport.read_json_body(response).await?;
                decode_embeddings(ctx, req, model, &body)
            })
            .await
    }
}

/// An embeddings response body → vectors in input order. Usage the
/// provider leaves out is estimated, so budgets still see the call.
pub(crate) fn decode_embeddings(
    ctx: &Ctx,
    req: &EmbedRequest,
    model: &str,
    body: &[u8],
) -> Result<EmbedResponse, ProviderError> {
    let wire: openai_wire::EmbeddingsResponse = serde_json::from_slice(body).map_err(|e| {
        ctx.err(
            ErrorClass::MalformedResponse,
            &format!("embeddings response is not the expected JSON: {e}"),
        )
    })?;
    let got = wire
        .into_vectors()
        .map_err(|why| ctx.err(ErrorClass::MalformedResponse, &format!("embeddings response: {why}")))?;
    crate::provider::check_vectors(&ctx.name, req, &got.vectors)?;
    Ok(EmbedResponse {
        model: if got.model.is_empty() {
            model.to_owned()
        } else {
            got.model
        },
        vectors: got.vectors,
        usage: got.usage.unwrap_or(Usage {
            input_tokens: crate::provider::estimate_embed_tokens(req),
            output_tokens: 0,
            cached_tokens: 0,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presets;

    fn ctx() -> Ctx {
        Ctx {
            name: "openai".into(),
            key: crate::ApiKey::new("sk-CANARY-unit"),
        }
    }

    #[test]
    fn preset_quirks_shape_the_body() {
        let mut req = ChatRequest::user("hi");
        req.max_tokens = Some(10);
        req.seed = Some(7);
        let openai = encode_request(&presets::OPENAI, true, "gpt-4o", &req, true);
        assert_eq!(openai.max_completion_tokens, Some(10));
        assert_eq!(openai.store, Some(false));
        assert_eq!(openai.stream_options, Some(StreamOptions { include_usage: true }));

        let mistral = encode_request(presets::find("mistral").unwrap(), false, "m", &req, true);
        let json = serde_json::to_value(&mistral).unwrap();
        assert_eq!(json["random_seed"], 7);
        assert!(json.get("seed").is_none());
        assert!(json.get("stream_options").is_none());
        assert_eq!(json["max_tokens"], 10);

        let openrouter = encode_request(presets::find("openrouter").unwrap(), true, "m", &req, false);
        let json = serde_json::to_value(&openrouter).unwrap();
        assert_eq!(json["provider"]["data_collection"], "deny");
        assert!(json.get("store").is_none());
    }

    #[test]
    fn deepseek_gets_json_object_and_the_schema_as_instruction() {
        let mut req = ChatRequest::user("hi");
        req.response_format = Some(crate::ResponseFormat::JsonSchema {
            name: "x".into(),
            schema: serde_json::json!({"type": "object"}),
            strict: true,
        });
        let wire = encode_request(presets::find("deepseek").unwrap(), false, "m", &req, false);
        assert_eq!(wire.response_format, Some(WireResponseFormat::JsonObject));
        assert_eq!(wire.messages[0].role, "system");
    }

    #[test]
    fn error_bodies_classify() {
        let ctx_len = br#"{"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
        assert_eq!(
            classify_error(ErrorClass::BadRequest, ctx_len).class,
            ErrorClass::ContextLengthExceeded
        );
        let vllm = br#"{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens","type":"BadRequestError","param":null,"code":400}"#;
        assert_eq!(
            classify_error(ErrorClass::BadRequest, vllm).class,
            ErrorClass::ContextLengthExceeded
        );
        let openrouter_200 = br#"{"error":{"message":"Rate limit exceeded","code":429}}"#;
        assert_eq!(
            classify_error(ErrorClass::ServerError, openrouter_200).class,
            ErrorClass::RateLimited
        );
        assert_eq!(
            classify_error(ErrorClass::ServerError, b"<html>").class,
            ErrorClass::ServerError
        );
        let policy = include_bytes!("../testdata/openai/error_400_content_policy.json");
        let reading = classify_error(ErrorClass::BadRequest, policy);
        assert_eq!(
            (reading.class, reading.code.as_deref()),
            (ErrorClass::ContentPolicy, Some("content_policy_violation"))
        );
        assert_eq!(classify_error(ErrorClass::ServerError, b"<html>").code, None);
    }

    #[test]
    fn a_content_filter_finish_is_a_refusal_with_its_code() {
        let body = br#"{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":""},"finish_reason":"content_filter"}]}"#;
        let err = decode_response(&ctx(), body).unwrap_err();
        assert_eq!(err.class(), ErrorClass::ContentPolicy);
        assert_eq!(err.provider_code(), Some("content_filter"));
    }

    #[test]
    fn an_error_object_in_a_200_body_is_an_error() {
        let err = decode_response(&ctx(), br#"{"error":{"message":"No endpoints found","code":503}}"#).unwrap_err();
        assert_eq!(err.class(), ErrorClass::Overloaded);
    }

    #[test]
    fn garbage_bodies_are_malformed_and_key_free() {
        for body in [
            &b"<html>sk-CANARY-unit</html>"[..],
            b"{\"id\": \"x\", \"choi",
            b"",
            b"{\"choices\": []}",
        ] {
            let err = decode_response(&ctx(), body).unwrap_err();
            assert_eq!(err.class(), ErrorClass::MalformedResponse);
            assert!(!format!("{err} {err:?}").contains("CANARY"));
        }
    }
}
