//! Anthropic's Messages API.
//!
//! Differences from the normalised shape handled here: the system prompt is a
//! top-level field, consecutive same-role messages must be merged, tool
//! results are `tool_result` blocks inside a *user* message, `max_tokens` is
//! mandatory, there is no JSON mode (a forced tool carries a schema instead),
//! and usage splits cached input into separate counters.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{AdapterConfig, ConfigError, check_base_url};
use crate::error::{ErrorClass, ProviderError};
use crate::http::{Ctx, ErrorReading, EventError, PostUrl, StreamDecoder, Transport, body_text, join_url};
use crate::provider::{Capabilities, EventStream, Provider, default_finish};
use crate::sse::SseEvent;
use crate::types::{
    ChatRequest, ChatResponse, ContentPart, FinishReason, ResponseFormat, Role, StreamEvent, ToolCall, ToolChoice,
    Usage,
};

const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
const API_VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`; this is used when the caller set none.
const DEFAULT_MAX_TOKENS: u32 = 4096;
/// The forced tool that carries a JSON schema, since the API has no JSON mode.
const JSON_TOOL: &str = "json_response";

/// The Anthropic adapter.
#[derive(Debug)]
pub(crate) struct AnthropicAdapter {
    transport: Arc<Transport>,
    url: PostUrl,
    models: Vec<String>,
}

impl AnthropicAdapter {
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
        let auth = [
            ("x-api-key", ctx.key.expose().to_owned()),
            ("anthropic-version", API_VERSION.to_owned()),
        ];
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
            url: PostUrl::parse(&join_url(&base, "v1/messages")),
            models: config.models,
        })
    }

    async fn send(&self, model: &str, req: &ChatRequest, stream: bool) -> Result<reqwest::Response, ProviderError> {
        let body = encode_request(model, req, stream);
        let body = serde_json::to_vec(&body).map_err(|e| {
            self.transport
                .ctx
                .err(ErrorClass::BadRequest, &format!("request not encodable: {e}"))
        })?;
        self.transport.post(&self.url, body).await
    }
}

/// Normalised request → Messages API body.
pub(crate) fn encode_request(model: &str, req: &ChatRequest, stream: bool) -> Value {
    let mut system = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    for m in &req.messages {
        let (role, blocks) = match m.role {
            Role::System => {
                system.push(m.joined_text());
                continue;
            }
            Role::User => ("user", content_blocks(&m.content)),
            Role::Assistant => {
                let mut blocks = content_blocks(&m.content);
                for call in &m.tool_calls {
                    // The API wants the input as an object; keep unparseable
                    // model output as a string rather than drop it.
                    let input = serde_json::from_str::<Value>(&call.arguments)
                        .unwrap_or_else(|_| Value::String(call.arguments.clone()));
                    blocks.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": input}));
                }
                ("assistant", blocks)
            }
            Role::Tool => (
                "user",
                vec![json!({
                    "type": "tool_result",
                    "tool_use_id": m.tool_call_id.clone().unwrap_or_default(),
                    "content": m.joined_text(),
                })],
            ),
        };
        // Consecutive same-role messages (e.g. several tool results) merge:
        // the API requires alternating roles.
        match messages.last_mut() {
            Some(last) if last["role"] == role => {
                if let Some(existing) = last["content"].as_array_mut() {
                    existing.extend(blocks);
                }
            }
            _ => messages.push(json!({"role": role, "content": blocks})),
        }
    }

    let mut tools: Vec<Value> = req
        .tools
        .iter()
        .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
        .collect();
    let mut tool_choice = req.tool_choice.as_ref().map(|c| match c {
        ToolChoice::Auto => json!({"type": "auto"}),
        ToolChoice::None => json!({"type": "none"}),
        ToolChoice::Required => json!({"type": "any"}),
        ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
    });
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            system.push("Respond with a single JSON object and nothing else.".to_owned());
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            tools.push(json!({
                "name": JSON_TOOL,
                "description": "Respond with the answer as this tool's input.",
                "input_schema": schema,
            }));
            tool_choice = Some(json!({"type": "tool", "name": JSON_TOOL}));
        }
    }

    let mut body = json!({
        "model": model,
        "max_tokens": req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages,
    });
    let obj = body.as_object_mut();
    if let Some(obj) = obj {
        if !system.is_empty() {
            obj.insert("system".into(), Value::String(system.join("\n\n")));
        }
        if !tools.is_empty() {
            obj.insert("tools".into(), Value::Array(tools));
        }
        if let Some(choice) = tool_choice {
            obj.insert("tool_choice".into(), choice);
        }
        if let Some(t) = req.temperature {
            obj.insert("temperature".into(), json!(t));
        }
        if let Some(p) = req.top_p {
            obj.insert("top_p".into(), json!(p));
        }
        if !req.stop.is_empty() {
            obj.insert("stop_sequences".into(), json!(req.stop));
        }
        if let Some(user) = &req.user {
            obj.insert("metadata".into(), json!({"user_id": user}));
        }
        if stream {
            obj.insert("stream".into(), Value::Bool(true));
        }
    }
    body
}

fn content_blocks(parts: &[ContentPart]) -> Vec<Value> {
    parts
        .iter()
        // The API rejects empty text blocks; an empty part says nothing anyway.
        .filter(|p| !matches!(p, ContentPart::Text { text } if text.is_empty()))
        .map(|p| match p {
            ContentPart::Text { text } => json!({"type": "text", "text": text}),
            ContentPart::Image { url, .. } => match parse_data_url(url) {
                Some((media_type, data)) => {
                    json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}})
                }
                None => json!({"type": "image", "source": {"type": "url", "url": url}}),
            },
        })
        .collect()
}

/// Splits `data:<mime>;base64,<data>` into its mime type and data.
pub(crate) fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    Some((mime, data))
}

#[derive(Debug, Deserialize)]
struct WireResponse {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: String,
    content: Vec<WireBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlock {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    /// Extended-thinking and other blocks carry nothing the normalised shape has.
    #[serde(other)]
    Other,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Anthropic's `input_tokens` excludes cache reads and writes; the
    /// normalised count includes them (they are billed, at other rates).
    fn input(&self) -> u64 {
        self.input_tokens.unwrap_or(0)
            + self.cache_read_input_tokens.unwrap_or(0)
            + self.cache_creation_input_tokens.unwrap_or(0)
    }
}

fn stop_reason(reason: &str) -> FinishReason {
    match reason {
        "max_tokens" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        // end_turn, stop_sequence, pause_turn and anything newer.
        _ => FinishReason::Stop,
    }
}

/// Messages API body → normalised response.
pub(crate) fn decode_response(ctx: &Ctx, body: &[u8], json_tool: bool) -> Result<ChatResponse, ProviderError> {
    let wire: WireResponse = serde_json::from_slice(body).map_err(|e| {
        ctx.err(
            ErrorClass::MalformedResponse,
            &format!("response is not a message: {e}; body: {}", body_text(body)),
        )
    })?;
    let mut content = String::new();
    let mut tool_calls = Vec::new();
    for block in wire.content {
        match block {
            WireBlock::Text { text } => content.push_str(&text),
            WireBlock::ToolUse { name, input, .. } if json_tool && name == JSON_TOOL => {
                content.push_str(&input.to_string());
            }
            WireBlock::ToolUse { id, name, input } => tool_calls.push(ToolCall {
                id,
                name,
                arguments: input.to_string(),
            }),
            WireBlock::Other => {}
        }
    }
    let mut finish_reason = match wire.stop_reason.as_deref() {
        Some(r) => stop_reason(r),
        None => default_finish(&tool_calls),
    };
    if json_tool && finish_reason == FinishReason::ToolCalls && tool_calls.is_empty() {
        finish_reason = FinishReason::Stop;
    }
    if finish_reason == FinishReason::ContentFilter {
        return Err(refused(ctx));
    }
    Ok(ChatResponse {
        id: wire.id,
        model: wire.model,
        content,
        tool_calls,
        finish_reason,
        usage: Usage {
            input_tokens: wire.usage.input(),
            output_tokens: wire.usage.output_tokens.unwrap_or(0),
            cached_tokens: wire.usage.cache_read_input_tokens.unwrap_or(0),
        },
    })
}

#[derive(Debug, Deserialize)]
struct WireErrorBody {
    error: WireErrorDetail,
}

#[derive(Debug, Deserialize)]
struct WireErrorDetail {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
}

/// Reads `{"type":"error","error":{"type":…,"message":…}}`.
pub(crate) fn classify_error(status_class: ErrorClass, body: &[u8]) -> ErrorReading {
    let Ok(parsed) = serde_json::from_slice::<WireErrorBody>(body) else {
        return ErrorReading::unrecognised(status_class, body);
    };
    ErrorReading {
        class: class_of(status_class, &parsed.error),
        code: Some(parsed.error.kind.clone()),
        message: parsed.error.message,
        retry_after: None,
    }
}

/// A `refusal` stop: Claude declined on safety grounds, which is a refusal,
/// not a complete answer.
fn refused(ctx: &Ctx) -> ProviderError {
    ctx.err(
        ErrorClass::ContentPolicy,
        "the model refused to answer (stop reason `refusal`)",
    )
    .with_provider_code(Some("refusal".to_owned()))
}

fn class_of(status_class: ErrorClass, e: &WireErrorDetail) -> ErrorClass {
    let lower = e.message.to_ascii_lowercase();
    match e.kind.as_str() {
        "invalid_request_error"
            if lower.contains("prompt is too long")
                || lower.contains("exceed context limit")
                || lower.contains("context window") =>
        {
            ErrorClass::ContextLengthExceeded
        }
        "invalid_request_error" | "not_found_error" | "request_too_large" => ErrorClass::BadRequest,
        "authentication_error" | "permission_error" => ErrorClass::Auth,
        "rate_limit_error" => ErrorClass::RateLimited,
        "overloaded_error" => ErrorClass::Overloaded,
        // Anthropic overloads are 529, but a 503 carrying `api_error` is still overload.
        "api_error" if status_class == ErrorClass::Overloaded => ErrorClass::Overloaded,
        "api_error" => ErrorClass::ServerError,
        // A type this adapter does not know yet: the status already classified it.
        _ => status_class,
    }
}

/// Messages SSE (`message_start` … `message_stop`) → normalised events.
#[derive(Debug, Default)]
pub(crate) struct EventDecoder {
    json_tool: bool,
    usage: Usage,
    finish: Option<FinishReason>,
    /// Content-block index → tool-call index, for tool_use blocks.
    tool_index: Vec<(u64, u32)>,
    json_block: Option<u64>,
    next_tool: u32,
    done: bool,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        message: WireStartMessage,
    },
    ContentBlockStart {
        index: u64,
        content_block: WireStartBlock,
    },
    ContentBlockDelta {
        index: u64,
        delta: WireDelta,
    },
    ContentBlockStop {},
    MessageDelta {
        delta: WireMessageDelta,
        #[serde(default)]
        usage: WireUsage,
    },
    MessageStop {},
    Ping {},
    Error {
        error: WireErrorDetail,
    },
}

#[derive(Debug, Deserialize)]
struct WireStartMessage {
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireStartBlock {
    ToolUse {
        id: String,
        name: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct WireMessageDelta {
    #[serde(default)]
    stop_reason: Option<String>,
}

impl EventDecoder {
    pub(crate) fn new(json_tool: bool) -> Self {
        Self {
            json_tool,
            ..Self::default()
        }
    }
}

impl StreamDecoder for EventDecoder {
    fn on_event(&mut self, ctx: &Ctx, event: SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), EventError> {
        let wire: WireEvent = serde_json::from_str(&event.data)
            .map_err(|e| EventError::Malformed(format!("stream event `{}` is not valid: {e}", event.event)))?;
        match wire {
            WireEvent::MessageStart { message } => {
                self.usage.input_tokens = message.usage.input();
                self.usage.cached_tokens = message.usage.cache_read_input_tokens.unwrap_or(0);
                self.usage.output_tokens = message.usage.output_tokens.unwrap_or(0);
            }
            WireEvent::ContentBlockStart { index, content_block } => match content_block {
                WireStartBlock::ToolUse { name, .. } if self.json_tool && name == JSON_TOOL => {
                    self.json_block = Some(index);
                }
                WireStartBlock::ToolUse { id, name } => {
                    let tool = self.next_tool;
                    self.next_tool += 1;
                    self.tool_index.push((index, tool));
                    out.push(StreamEvent::ToolCallDelta {
                        index: tool,
                        id: Some(id),
                        name: Some(name),
                        arguments: String::new(),
                    });
                }
                WireStartBlock::Other => {}
            },
            WireEvent::ContentBlockDelta { index, delta } => match delta {
                WireDelta::TextDelta { text } => out.push(StreamEvent::TextDelta { text }),
                WireDelta::InputJsonDelta { partial_json } if self.json_block == Some(index) => {
                    out.push(StreamEvent::TextDelta { text: partial_json });
                }
                WireDelta::InputJsonDelta { partial_json } => {
                    let tool = self.tool_index.iter().find(|(i, _)| *i == index).map(|(_, t)| *t);
                    let Some(tool) = tool else {
                        return Err(EventError::Malformed(
                            "input_json_delta for a block that is not a tool_use".to_owned(),
                        ));
                    };
                    out.push(StreamEvent::ToolCallDelta {
                        index: tool,
                        id: None,
                        name: None,
                        arguments: partial_json,
                    });
                }
                WireDelta::Other => {}
            },
            WireEvent::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.stop_reason {
                    let mut reason = stop_reason(&reason);
                    if reason == FinishReason::ToolCalls && self.next_tool == 0 && self.json_block.is_some() {
                        reason = FinishReason::Stop;
                    }
                    self.finish = Some(reason);
                }
                if let Some(output) = usage.output_tokens {
                    self.usage.output_tokens = output;
                }
                // Newer streams repeat the input counts here, final; and a
                // `message_start` may carry none (routec's own gateway).
                if usage.input_tokens.is_some() {
                    self.usage.input_tokens = usage.input();
                    self.usage.cached_tokens = usage.cache_read_input_tokens.unwrap_or(0);
                }
            }
            WireEvent::MessageStop {} => {
                let finish_reason = self.finish.unwrap_or(FinishReason::Stop);
                self.finish_with(ctx, finish_reason, out)?;
            }
            WireEvent::ContentBlockStop {} | WireEvent::Ping {} => {}
            WireEvent::Error { error } => {
                // Mid-stream errors carry no status; the type alone decides.
                let class = class_of(ErrorClass::ServerError, &error);
                return Err(ctx
                    .err(class, &error.message)
                    .with_provider_code(Some(error.kind))
                    .into());
            }
        }
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.done
    }

    /// A body that ends cleanly after `message_delta` carried a stop reason
    /// is complete even without `message_stop`; before it, it is cut short.
    fn on_eof(&mut self, ctx: &Ctx, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        let Some(finish_reason) = self.finish else {
            return Err(ctx.err(ErrorClass::MalformedResponse, "event stream ended before a stop reason"));
        };
        self.finish_with(ctx, finish_reason, out)
    }
}

impl EventDecoder {
    fn finish_with(
        &mut self,
        ctx: &Ctx,
        finish_reason: FinishReason,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ProviderError> {
        if finish_reason == FinishReason::ContentFilter {
            return Err(refused(ctx));
        }
        out.push(StreamEvent::Usage(self.usage));
        out.push(StreamEvent::Done {
            finish_reason,
            skipped_events: 0,
        });
        self.done = true;
        Ok(())
    }
}

fn uses_json_tool(req: &ChatRequest) -> bool {
    matches!(req.response_format, Some(ResponseFormat::JsonSchema { .. }))
}

#[async_trait]
impl Provider for AnthropicAdapter {
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
                decode_response(&self.transport.ctx, &body, uses_json_tool(req))
            })
            .await
    }

    async fn stream(&self, model: &str, req: &ChatRequest) -> Result<EventStream, ProviderError> {
        let response = self.transport.with_total(self.send(model, req, true)).await?;
        self.transport
            .event_stream(response, EventDecoder::new(uses_json_tool(req)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Message;

    #[test]
    fn system_is_split_out_and_tool_results_merge_into_one_user_turn() {
        let mut req = ChatRequest::user("weather?");
        req.messages.insert(0, Message::text(Role::System, "be brief"));
        let mut assistant = Message::text(Role::Assistant, "");
        assistant.content.clear();
        assistant.tool_calls = vec![
            ToolCall {
                id: "a".into(),
                name: "w".into(),
                arguments: "{\"city\":\"Paris\"}".into(),
            },
            ToolCall {
                id: "b".into(),
                name: "w".into(),
                arguments: "{}".into(),
            },
        ];
        req.messages.push(assistant);
        for id in ["a", "b"] {
            let mut m = Message::text(Role::Tool, "sunny");
            m.tool_call_id = Some(id.into());
            req.messages.push(m);
        }
        let body = encode_request("claude", &req, false);
        assert_eq!(body["system"], "be brief");
        let messages = body["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[1]["content"][0]["input"]["city"], "Paris");
        assert_eq!(messages[2]["role"], "user");
        assert_eq!(messages[2]["content"].as_array().unwrap().len(), 2);
        assert_eq!(body["max_tokens"], DEFAULT_MAX_TOKENS);
    }

    #[test]
    fn json_schema_becomes_a_forced_tool_and_comes_back_as_text() {
        let mut req = ChatRequest::user("x");
        req.response_format = Some(ResponseFormat::JsonSchema {
            name: "r".into(),
            schema: json!({"type": "object"}),
            strict: true,
        });
        let body = encode_request("claude", &req, false);
        assert_eq!(body["tool_choice"]["name"], JSON_TOOL);
        let ctx = Ctx {
            name: "anthropic".into(),
            key: crate::ApiKey::none(),
        };
        let resp = br#"{"id":"m","type":"message","role":"assistant","model":"c","content":[{"type":"tool_use","id":"t","name":"json_response","input":{"ok":true}}],"stop_reason":"tool_use","usage":{"input_tokens":5,"output_tokens":3}}"#;
        let out = decode_response(&ctx, resp, true).unwrap();
        assert_eq!(out.content, "{\"ok\":true}");
        assert!(out.tool_calls.is_empty());
        assert_eq!(out.finish_reason, FinishReason::Stop);
    }

    #[test]
    fn data_urls_become_base64_sources() {
        assert_eq!(
            parse_data_url("data:image/png;base64,AAAA"),
            Some(("image/png", "AAAA"))
        );
        assert_eq!(parse_data_url("https://x/y.png"), None);
    }

    #[test]
    fn error_types_classify() {
        let body =
            |kind: &str, msg: &str| format!(r#"{{"type":"error","error":{{"type":"{kind}","message":"{msg}"}}}}"#);
        let c = |kind: &str, msg: &str| classify_error(ErrorClass::BadRequest, body(kind, msg).as_bytes()).class;
        assert_eq!(c("overloaded_error", "Overloaded"), ErrorClass::Overloaded);
        assert_eq!(c("rate_limit_error", "x"), ErrorClass::RateLimited);
        assert_eq!(
            c(
                "invalid_request_error",
                "prompt is too long: 208310 tokens > 200000 maximum"
            ),
            ErrorClass::ContextLengthExceeded
        );
        assert_eq!(
            c("invalid_request_error", "messages: field required"),
            ErrorClass::BadRequest
        );
        assert_eq!(c("authentication_error", "invalid x-api-key"), ErrorClass::Auth);
        assert_eq!(c("api_error", "x"), ErrorClass::ServerError);
        assert_eq!(c("brand_new_error", "x"), ErrorClass::BadRequest);
    }
}
