//! Google's Gemini API (`generateContent`, `streamGenerateContent?alt=sse`).
//!
//! Differences handled here: roles are `user` / `model`, the system prompt is
//! `systemInstruction`, tool results are `functionResponse` parts that need
//! the function's *name* (looked up from the earlier call), calls have no ids
//! (we make them), the key goes in the `x-goog-api-key` header and never in
//! the URL, safety blocks arrive as successful bodies and become
//! content-policy errors, and rate limits carry their delay in the body.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::anthropic::parse_data_url;
use crate::config::{AdapterConfig, ConfigError, check_base_url};
use crate::error::{ErrorClass, ProviderError, TimeoutKind, parse_proto_duration};
use crate::http::{Ctx, ErrorReading, EventError, PostUrl, StreamDecoder, Transport, body_text, join_url};
use crate::provider::{Capabilities, EventStream, Provider, default_finish};
use crate::sse::SseEvent;
use crate::types::{
    ChatRequest, ChatResponse, ContentPart, EmbedRequest, EmbedResponse, FinishReason, ResponseFormat, Role,
    StreamEvent, ToolCall, ToolChoice, Usage,
};

const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";

/// The Gemini adapter.
#[derive(Debug)]
pub(crate) struct GeminiAdapter {
    transport: Arc<Transport>,
    base: String,
    models: Vec<String>,
}

impl GeminiAdapter {
    pub(crate) fn new(config: AdapterConfig) -> Result<Self, ConfigError> {
        let base = match &config.base_url {
            Some(url) => check_base_url(&config.name, url)?,
            None => DEFAULT_BASE_URL.to_owned(),
        };
        if config.api_key.is_empty() {
            return Err(ConfigError::MissingKey { provider: config.name });
        }
        let ctx = Ctx {
            name: config.name.as_str().into(),
            key: config.api_key,
        };
        let auth = [("x-goog-api-key", ctx.key.expose().to_owned())];
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
            base,
            models: config.models,
        })
    }

    async fn send(&self, model: &str, req: &ChatRequest, stream: bool) -> Result<reqwest::Response, ProviderError> {
        let ctx = &self.transport.ctx;
        check_model_id(ctx, model)?;
        let path = if stream {
            format!("models/{model}:streamGenerateContent?alt=sse")
        } else {
            format!("models/{model}:generateContent")
        };
        let body = serde_json::to_vec(&encode_request(req))
            .map_err(|e| ctx.err(ErrorClass::BadRequest, &format!("request not encodable: {e}")))?;
        // The model is in the path, so the URL is parsed per call.
        self.transport
            .post(&PostUrl::parse(&join_url(&self.base, &path)), body)
            .await
    }
}

/// Model ids go into the path; refuses anything that could change it.
fn check_model_id(ctx: &Ctx, model: &str) -> Result<(), ProviderError> {
    if model.is_empty() || !model.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c)) {
        return Err(ctx.err(ErrorClass::BadRequest, &format!("invalid gemini model id `{model}`")));
    }
    Ok(())
}

/// Normalised embedding request → `batchEmbedContents` body: one request
/// per text, each naming the model again, as the API wants.
pub(crate) fn encode_embed_request(model: &str, req: &EmbedRequest) -> Value {
    let requests: Vec<Value> = req
        .input
        .iter()
        .map(|text| {
            let mut one = json!({"model": format!("models/{model}"), "content": {"parts": [{"text": text}]}});
            if let Some(d) = req.dimensions {
                one["outputDimensionality"] = json!(d);
            }
            one
        })
        .collect();
    json!({ "requests": requests })
}

/// A `batchEmbedContents` response → vectors in input order. Gemini reports
/// no token usage for embeddings, so it is estimated.
pub(crate) fn decode_embed_response(
    ctx: &Ctx,
    req: &EmbedRequest,
    model: &str,
    body: &[u8],
) -> Result<EmbedResponse, ProviderError> {
    #[derive(serde::Deserialize)]
    struct Batch {
        #[serde(default)]
        embeddings: Vec<One>,
    }
    #[derive(serde::Deserialize)]
    struct One {
        values: Vec<f32>,
    }
    let batch: Batch = serde_json::from_slice(body).map_err(|e| {
        ctx.err(
            ErrorClass::MalformedResponse,
            &format!("batchEmbedContents response is not the expected JSON: {e}"),
        )
    })?;
    let vectors: Vec<Vec<f32>> = batch.embeddings.into_iter().map(|e| e.values).collect();
    crate::provider::check_vectors(&ctx.name, req, &vectors)?;
    Ok(EmbedResponse {
        model: model.to_owned(),
        vectors,
        usage: Usage {
            input_tokens: crate::provider::estimate_embed_tokens(req),
            output_tokens: 0,
            cached_tokens: 0,
        },
    })
}

/// Normalised request → generateContent body.
pub(crate) fn encode_request(req: &ChatRequest) -> Value {
    let mut system = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    for m in &req.messages {
        let (role, parts) = match m.role {
            Role::System => {
                system.push(json!({"text": m.joined_text()}));
                continue;
            }
            Role::User => ("user", parts_of(&m.content)),
            Role::Assistant => {
                let mut parts = parts_of(&m.content);
                for call in &m.tool_calls {
                    let args = serde_json::from_str::<Value>(&call.arguments).unwrap_or_else(|_| json!({}));
                    parts.push(json!({"functionCall": {"name": call.name, "args": args}}));
                }
                ("model", parts)
            }
            Role::Tool => {
                let name = function_name_for(req, m.tool_call_id.as_deref()).unwrap_or_default();
                let text = m.joined_text();
                // functionResponse.response must be an object.
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(o)) => Value::Object(o),
                    _ => json!({"result": text}),
                };
                (
                    "user",
                    vec![json!({"functionResponse": {"name": name, "response": response}})],
                )
            }
        };
        match contents.last_mut() {
            Some(last) if last["role"] == role => {
                if let Some(existing) = last["parts"].as_array_mut() {
                    existing.extend(parts);
                }
            }
            _ => contents.push(json!({"role": role, "parts": parts})),
        }
    }

    let mut body = json!({"contents": contents});
    let Some(obj) = body.as_object_mut() else {
        return body;
    };
    if !system.is_empty() {
        obj.insert("systemInstruction".into(), json!({"parts": system}));
    }
    if !req.tools.is_empty() {
        let decls: Vec<Value> = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "parameters": t.parameters}))
            .collect();
        obj.insert("tools".into(), json!([{"functionDeclarations": decls}]));
    }
    if let Some(choice) = &req.tool_choice {
        let config = match choice {
            ToolChoice::Auto => json!({"mode": "AUTO"}),
            ToolChoice::None => json!({"mode": "NONE"}),
            ToolChoice::Required => json!({"mode": "ANY"}),
            ToolChoice::Tool(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
        };
        obj.insert("toolConfig".into(), json!({"functionCallingConfig": config}));
    }
    let mut generation = serde_json::Map::new();
    if let Some(t) = req.temperature {
        generation.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        generation.insert("topP".into(), json!(p));
    }
    if let Some(m) = req.max_tokens {
        generation.insert("maxOutputTokens".into(), json!(m));
    }
    if !req.stop.is_empty() {
        generation.insert("stopSequences".into(), json!(req.stop));
    }
    if let Some(seed) = req.seed {
        generation.insert("seed".into(), json!(seed));
    }
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            generation.insert("responseMimeType".into(), json!("application/json"));
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            generation.insert("responseMimeType".into(), json!("application/json"));
            // `responseJsonSchema` takes standard JSON Schema; the older
            // `responseSchema` only an OpenAPI subset.
            generation.insert("responseJsonSchema".into(), schema.clone());
        }
    }
    if !generation.is_empty() {
        obj.insert("generationConfig".into(), Value::Object(generation));
    }
    body
}

fn parts_of(content: &[ContentPart]) -> Vec<Value> {
    content
        .iter()
        .map(|p| match p {
            ContentPart::Text { text } => json!({"text": text}),
            ContentPart::Image { url, .. } => match parse_data_url(url) {
                Some((mime, data)) => json!({"inlineData": {"mimeType": mime, "data": data}}),
                None => json!({"fileData": {"mimeType": guess_mime(url), "fileUri": url}}),
            },
        })
        .collect()
}

fn guess_mime(url: &str) -> &'static str {
    let lower = url.to_ascii_lowercase();
    if lower.ends_with(".png") {
        "image/png"
    } else if lower.ends_with(".webp") {
        "image/webp"
    } else {
        "image/jpeg"
    }
}

/// Gemini answers a function by name; the normalised message names the call id.
fn function_name_for(req: &ChatRequest, call_id: Option<&str>) -> Option<String> {
    let id = call_id?;
    req.messages
        .iter()
        .flat_map(|m| m.tool_calls.iter())
        .find(|c| c.id == id)
        .map(|c| c.name.clone())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireResponse {
    #[serde(default)]
    candidates: Vec<WireCandidate>,
    #[serde(default)]
    prompt_feedback: Option<WirePromptFeedback>,
    #[serde(default)]
    usage_metadata: Option<WireUsage>,
    #[serde(default)]
    model_version: Option<String>,
    #[serde(default)]
    response_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCandidate {
    #[serde(default)]
    content: Option<WireContent>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireContent {
    #[serde(default)]
    parts: Vec<WirePart>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePart {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thought: Option<bool>,
    #[serde(default)]
    function_call: Option<WireFunctionCall>,
}

#[derive(Debug, Deserialize)]
struct WireFunctionCall {
    #[serde(default)]
    id: Option<String>,
    name: String,
    #[serde(default)]
    args: Value,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireUsage {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
    #[serde(default)]
    cached_content_token_count: u64,
}

impl WireUsage {
    fn normalised(self) -> Usage {
        Usage {
            input_tokens: self.prompt_token_count,
            // Thinking tokens are billed as output.
            output_tokens: self.candidates_token_count + self.thoughts_token_count,
            cached_tokens: self.cached_content_token_count,
        }
    }
}

/// What a finish reason means: a normal end, or a refusal to report as an error.
fn finish_reason(reason: &str) -> Result<FinishReason, &str> {
    match reason {
        "MAX_TOKENS" => Ok(FinishReason::Length),
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => Err(reason),
        // STOP, FINISH_REASON_UNSPECIFIED, MALFORMED_FUNCTION_CALL, OTHER and newer values.
        _ => Ok(FinishReason::Stop),
    }
}

/// One parsed body or chunk: the text, calls, finish and usage it carries.
struct Piece {
    text: String,
    calls: Vec<(Option<String>, String, String)>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    model: Option<String>,
    id: Option<String>,
}

/// A safety block: the prompt or the answer, and Gemini's reason as the code.
fn blocked(ctx: &Ctx, what: &str, reason: &str) -> ProviderError {
    ctx.err(ErrorClass::ContentPolicy, &format!("{what} blocked: {reason}"))
        .with_provider_code(Some(reason.to_owned()))
}

/// Reads one body or stream chunk; a body that is not a response is
/// [`EventError::Malformed`], a safety block [`EventError::Failed`].
fn decode_piece(ctx: &Ctx, body: &[u8]) -> Result<Piece, EventError> {
    let wire: WireResponse = serde_json::from_slice(body).map_err(|e| {
        EventError::Malformed(format!(
            "response is not a generateContent response: {e}; body: {}",
            body_text(body)
        ))
    })?;
    if let Some(reason) = wire.prompt_feedback.and_then(|f| f.block_reason) {
        return Err(blocked(ctx, "prompt", &reason).into());
    }
    let mut piece = Piece {
        text: String::new(),
        calls: Vec::new(),
        finish: None,
        usage: wire.usage_metadata.map(WireUsage::normalised),
        model: wire.model_version,
        id: wire.response_id,
    };
    let Some(candidate) = wire.candidates.into_iter().next() else {
        return Ok(piece);
    };
    if let Some(reason) = candidate.finish_reason.as_deref() {
        piece.finish = Some(finish_reason(reason).map_err(|r| blocked(ctx, "response", r))?);
    }
    for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
        if part.thought == Some(true) {
            continue;
        }
        if let Some(text) = part.text {
            piece.text.push_str(&text);
        }
        if let Some(call) = part.function_call {
            piece.calls.push((call.id, call.name, call.args.to_string()));
        }
    }
    Ok(piece)
}

/// generateContent body → normalised response.
pub(crate) fn decode_response(ctx: &Ctx, body: &[u8], model: &str) -> Result<ChatResponse, ProviderError> {
    let piece = decode_piece(ctx, body).map_err(|e| match e {
        EventError::Failed(e) => e,
        EventError::Malformed(reason) => ctx.err(ErrorClass::MalformedResponse, &reason),
    })?;
    if piece.finish.is_none() && piece.text.is_empty() && piece.calls.is_empty() {
        return Err(ctx.err(ErrorClass::MalformedResponse, "response has no candidates"));
    }
    let tool_calls: Vec<ToolCall> = piece
        .calls
        .into_iter()
        .enumerate()
        .map(|(i, (id, name, arguments))| ToolCall {
            id: id.unwrap_or_else(|| format!("call_{i}")),
            name,
            arguments,
        })
        .collect();
    // Gemini says STOP even when it called a function.
    let finish_reason = match piece.finish {
        Some(FinishReason::Stop) | None => default_finish(&tool_calls),
        Some(other) => other,
    };
    Ok(ChatResponse {
        id: piece.id,
        model: piece.model.unwrap_or_else(|| model.to_owned()),
        content: piece.text,
        tool_calls,
        finish_reason,
        usage: piece.usage.unwrap_or_default(),
    })
}

#[derive(Debug, Deserialize)]
struct WireErrorBody {
    error: WireErrorDetail,
}

#[derive(Debug, Deserialize)]
struct WireErrorDetail {
    #[serde(default)]
    message: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    details: Vec<Value>,
}

/// Reads Google's `{"error":{"code","message","status","details"}}`.
pub(crate) fn classify_error(status_class: ErrorClass, body: &[u8]) -> ErrorReading {
    // Streams and some proxies wrap the error in a one-element array.
    let parsed = serde_json::from_slice::<WireErrorBody>(body)
        .or_else(|_| serde_json::from_slice::<Vec<WireErrorBody>>(body).map(|mut v| v.swap_remove(0)));
    let parsed = match parsed {
        Ok(p) => p,
        Err(_) => return ErrorReading::unrecognised(status_class, body),
    };
    let e = parsed.error;
    let reason = |wanted: &str| {
        e.details
            .iter()
            .any(|d| d.get("reason").and_then(Value::as_str) == Some(wanted))
    };
    let lower = e.message.to_ascii_lowercase();
    let class = match e.status.as_str() {
        // Google answers a bad key with 400 INVALID_ARGUMENT.
        "INVALID_ARGUMENT" if reason("API_KEY_INVALID") || lower.contains("api key not valid") => ErrorClass::Auth,
        "INVALID_ARGUMENT"
            if (lower.contains("input token count") && lower.contains("exceeds"))
                || lower.contains("exceeds the maximum number of tokens") =>
        {
            ErrorClass::ContextLengthExceeded
        }
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "NOT_FOUND" | "OUT_OF_RANGE" => ErrorClass::BadRequest,
        "UNAUTHENTICATED" | "PERMISSION_DENIED" => ErrorClass::Auth,
        "RESOURCE_EXHAUSTED" => ErrorClass::RateLimited,
        "UNAVAILABLE" => ErrorClass::Overloaded,
        "INTERNAL" | "UNKNOWN" => ErrorClass::ServerError,
        "DEADLINE_EXCEEDED" => ErrorClass::Timeout(TimeoutKind::Total),
        // An unknown or missing status: the HTTP status already classified it.
        _ => status_class,
    };
    let retry_after = e
        .details
        .iter()
        .filter(|d| d.get("@type").and_then(Value::as_str) == Some("type.googleapis.com/google.rpc.RetryInfo"))
        .find_map(|d| {
            d.get("retryDelay")
                .and_then(Value::as_str)
                .and_then(parse_proto_duration)
        });
    ErrorReading {
        class,
        code: Some(e.status),
        message: e.message,
        retry_after,
    }
}

/// `streamGenerateContent?alt=sse` → normalised events. Each event is a whole
/// `GenerateContentResponse`; there is no terminal event, so the stream is
/// complete only once a chunk carried a finish reason.
#[derive(Debug, Default)]
pub(crate) struct ChunkDecoder {
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    tools: u32,
    done: bool,
}

impl StreamDecoder for ChunkDecoder {
    fn on_event(&mut self, ctx: &Ctx, event: SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), EventError> {
        // A mid-stream failure arrives as an error object instead of a chunk.
        if serde_json::from_str::<WireErrorBody>(&event.data).is_ok() {
            return Err(classify_error(ErrorClass::ServerError, event.data.as_bytes())
                .into_error(ctx)
                .into());
        }
        let piece = decode_piece(ctx, event.data.as_bytes())?;
        if !piece.text.is_empty() {
            out.push(StreamEvent::TextDelta { text: piece.text });
        }
        for (id, name, arguments) in piece.calls {
            let index = self.tools;
            self.tools += 1;
            out.push(StreamEvent::ToolCallDelta {
                index,
                id: Some(id.unwrap_or_else(|| format!("call_{index}"))),
                name: Some(name),
                arguments,
            });
        }
        if piece.usage.is_some() {
            self.usage = piece.usage;
        }
        if piece.finish.is_some() {
            self.finish = piece.finish;
        }
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.done
    }

    fn on_eof(&mut self, ctx: &Ctx, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        let Some(finish) = self.finish else {
            return Err(ctx.err(
                ErrorClass::MalformedResponse,
                "event stream ended before a chunk with a finish reason",
            ));
        };
        let finish_reason = match finish {
            FinishReason::Stop if self.tools > 0 => FinishReason::ToolCalls,
            other => other,
        };
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
impl Provider for GeminiAdapter {
    fn name(&self) -> &str {
        &self.transport.ctx.name
    }

    fn models(&self) -> &[String] {
        &self.models
    }

    fn capabilities(&self, _model: &str) -> Capabilities {
        Capabilities {
            tools: true,
            json_schema: true,
            vision: true,
            stream: true,
        }
    }

    async fn complete(&self, model: &str, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        self.transport
            .with_total(async {
                let response = self.send(model, req, false).await?;
                let body = self.transport.read_json_body(response).await?;
                decode_response(&self.transport.ctx, &body, model)
            })
            .await
    }

    async fn embed(&self, model: &str, req: &EmbedRequest) -> Result<EmbedResponse, ProviderError> {
        let ctx = &self.transport.ctx;
        check_model_id(ctx, model)?;
        let body = serde_json::to_vec(&encode_embed_request(model, req))
            .map_err(|e| ctx.err(ErrorClass::BadRequest, &format!("request not encodable: {e}")))?;
        let url = PostUrl::parse(&join_url(&self.base, &format!("models/{model}:batchEmbedContents")));
        self.transport
            .with_total(async {
                let response = self.transport.post(&url, body).await?;
                let body = self.transport.read_json_body(response).await?;
                decode_embed_response(ctx, req, model, &body)
            })
            .await
    }

    async fn stream(&self, model: &str, req: &ChatRequest) -> Result<EventStream, ProviderError> {
        let response = self.transport.with_total(self.send(model, req, true)).await?;
        self.transport.event_stream(response, ChunkDecoder::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Message;

    fn ctx() -> Ctx {
        Ctx {
            name: "gemini".into(),
            key: crate::ApiKey::new("AIza-CANARY"),
        }
    }

    #[test]
    fn roles_system_and_function_responses() {
        let mut req = ChatRequest::user("weather?");
        req.messages.insert(0, Message::text(Role::System, "be brief"));
        let mut assistant = Message::text(Role::Assistant, "");
        assistant.content.clear();
        assistant.tool_calls = vec![ToolCall {
            id: "call_0".into(),
            name: "get_weather".into(),
            arguments: "{\"city\":\"Paris\"}".into(),
        }];
        req.messages.push(assistant);
        let mut tool = Message::text(Role::Tool, "sunny");
        tool.tool_call_id = Some("call_0".into());
        req.messages.push(tool);
        req.response_format = Some(ResponseFormat::JsonObject);
        let body = encode_request(&req);
        assert_eq!(body["systemInstruction"]["parts"][0]["text"], "be brief");
        assert_eq!(body["contents"][1]["role"], "model");
        assert_eq!(body["contents"][1]["parts"][0]["functionCall"]["args"]["city"], "Paris");
        assert_eq!(
            body["contents"][2]["parts"][0]["functionResponse"]["name"],
            "get_weather"
        );
        assert_eq!(
            body["contents"][2]["parts"][0]["functionResponse"]["response"]["result"],
            "sunny"
        );
        assert_eq!(body["generationConfig"]["responseMimeType"], "application/json");
    }

    #[test]
    fn safety_blocks_are_content_policy() {
        let blocked = br#"{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[]}}"#;
        assert_eq!(
            decode_response(&ctx(), blocked, "m").unwrap_err().class(),
            ErrorClass::ContentPolicy
        );
        let finish = br#"{"candidates":[{"content":{"parts":[{"text":""}],"role":"model"},"finishReason":"SAFETY"}]}"#;
        assert_eq!(
            decode_response(&ctx(), finish, "m").unwrap_err().class(),
            ErrorClass::ContentPolicy
        );
    }

    #[test]
    fn errors_classify_with_body_retry_delay() {
        let body = br#"{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"23s"}]}}"#;
        let r = classify_error(ErrorClass::RateLimited, body);
        assert_eq!(r.class, ErrorClass::RateLimited);
        assert_eq!(r.retry_after, Some(std::time::Duration::from_secs(23)));
        let key = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}"#;
        assert_eq!(classify_error(ErrorClass::BadRequest, key).class, ErrorClass::Auth);
        let long = br#"{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#;
        assert_eq!(
            classify_error(ErrorClass::BadRequest, long).class,
            ErrorClass::ContextLengthExceeded
        );
    }

    #[test]
    fn function_calls_get_ids_and_tool_finish() {
        let body = br#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{"a":1}}}],"role":"model"},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2}}"#;
        let r = decode_response(&ctx(), body, "m").unwrap();
        assert_eq!(r.tool_calls[0].id, "call_0");
        assert_eq!(r.finish_reason, FinishReason::ToolCalls);
        assert_eq!(r.usage.input_tokens, 3);
    }
}
