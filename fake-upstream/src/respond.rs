//! Turning a behaviour into an HTTP response in a provider's wire format.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::json;

use crate::listener::RESET_MARKER;
use crate::{Behaviour, Flavor, RecordedRequest, fixture};

pub(crate) async fn respond(flavor: Flavor, req: &RecordedRequest, behaviour: Behaviour) -> Response {
    let stream = wants_stream(flavor, req);
    if is_embeddings(req) {
        match behaviour {
            // Every answering behaviour answers an embeddings call with
            // vectors; failures fail it as they fail a chat call.
            Behaviour::Ok
            | Behaviour::ToolCall
            | Behaviour::Json
            | Behaviour::ContinuePrefill
            | Behaviour::RejectPrefill
            | Behaviour::ContentFilter => return embeddings(flavor, req),
            _ => {}
        }
    }
    match behaviour {
        Behaviour::Ok => success(flavor, Answer::Text, stream),
        Behaviour::ToolCall => success(flavor, Answer::Tool, stream),
        Behaviour::Json => success(flavor, Answer::Json, stream),
        Behaviour::Error {
            status,
            retry_after,
            retry_after_ms,
        } => {
            let mut response = with_body(status, "application/json", error_body(flavor, status).to_string());
            set_header(&mut response, "retry-after", retry_after.as_deref());
            set_header(&mut response, "retry-after-ms", retry_after_ms.as_deref());
            tag(flavor, response)
        }
        Behaviour::Fixture {
            name,
            status,
            retry_after,
        } => {
            let Some(text) = fixture(flavor, &name) else {
                return with_body(500, "text/plain", format!("fake-upstream: no fixture `{name}`"));
            };
            let text = text.replace("{{api_key}}", &presented_key(req));
            let content_type = if name.ends_with(".sse") {
                "text/event-stream"
            } else {
                "application/json"
            };
            let mut response = with_body(status, content_type, text);
            set_header(&mut response, "retry-after", retry_after.as_deref());
            tag(flavor, response)
        }
        Behaviour::Raw {
            status,
            content_type,
            body,
        } => with_body(status, &content_type, body),
        Behaviour::Hang => {
            std::future::pending::<()>().await;
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Behaviour::Trickle {
            chunk_bytes,
            interval_ms,
        } => {
            let (content_type, text) = success_text(flavor, Answer::Text, stream);
            let chunks: Vec<Bytes> = text
                .as_bytes()
                .chunks(chunk_bytes.max(1))
                .map(Bytes::copy_from_slice)
                .collect();
            let interval = Duration::from_millis(interval_ms);
            let body = futures::stream::iter(chunks).then(move |chunk| async move {
                tokio::time::sleep(interval).await;
                Ok::<_, Infallible>(chunk)
            });
            streamed(flavor, content_type, Body::from_stream(body))
        }
        Behaviour::StallAfter { bytes } => {
            let (content_type, text) = success_text(flavor, Answer::Text, stream);
            let head = Bytes::copy_from_slice(&text.as_bytes()[..bytes.min(text.len())]);
            let body = futures::stream::iter([Ok::<_, Infallible>(head)]).chain(futures::stream::pending());
            streamed(flavor, content_type, Body::from_stream(body))
        }
        Behaviour::CutStream { abort } => {
            let (content_type, text) = success_text(flavor, Answer::Text, true);
            let head = Bytes::copy_from_slice(&text.as_bytes()[..cut_point(text)]);
            let body = futures::stream::iter([Ok::<_, std::io::Error>(head)]);
            let body = if abort {
                // Yield once before breaking: the server flushes what it has
                // when the body is pending, so the client reads the head
                // before the break, as it would from a real mid-answer cut.
                let cut = futures::stream::once(async {
                    tokio::task::yield_now().await;
                    Err(std::io::Error::other("cut"))
                });
                Body::from_stream(body.chain(cut))
            } else {
                Body::from_stream(body)
            };
            streamed(flavor, content_type, body)
        }
        Behaviour::Huge { bytes } => {
            const CHUNK: usize = 64 * 1024;
            let pad = Bytes::from(vec![b'x'; CHUNK]);
            let count = bytes / CHUNK;
            let body = futures::stream::iter([Ok::<_, Infallible>(Bytes::from_static(b"{\"pad\":\""))])
                .chain(futures::stream::iter((0..count).map(move |_| Ok(pad.clone()))))
                .chain(futures::stream::iter([Ok(Bytes::from_static(b"\"}"))]));
            streamed(flavor, "application/json", Body::from_stream(body))
        }
        Behaviour::Reset => {
            let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            response
                .headers_mut()
                .insert(RESET_MARKER, HeaderValue::from_static("1"));
            response
        }
        Behaviour::SlowFirstToken { delay_ms } => {
            let (content_type, text) = success_text(flavor, Answer::Text, stream);
            let delay = Duration::from_millis(delay_ms);
            let first = futures::stream::once(async move {
                tokio::time::sleep(delay).await;
                Ok::<_, Infallible>(Bytes::new())
            });
            let events = futures::stream::iter(events_of(text).into_iter().map(Ok));
            streamed(flavor, content_type, Body::from_stream(first.chain(events)))
        }
        Behaviour::StallAfterEvents { events } => {
            let (content_type, text) = success_text(flavor, Answer::Text, true);
            let head: Vec<Result<Bytes, Infallible>> = events_of(text).into_iter().take(events).map(Ok).collect();
            let body = futures::stream::iter(head).chain(futures::stream::pending());
            streamed(flavor, content_type, Body::from_stream(body))
        }
        Behaviour::MalformedEvents { count } => {
            let (content_type, text) = success_text(flavor, Answer::Text, true);
            let mut events = events_of(text);
            let at = 1.min(events.len());
            for _ in 0..count {
                events.insert(at, Bytes::from_static(b"data: {\"choices\": [{\"delta\": oops\n\n"));
            }
            let body = futures::stream::iter(events.into_iter().map(Ok::<_, Infallible>));
            streamed(flavor, content_type, Body::from_stream(body))
        }
        Behaviour::NoDone => {
            let (content_type, text) = success_text(flavor, Answer::Text, true);
            let events: Vec<Result<Bytes, Infallible>> = events_of(text)
                .into_iter()
                .filter(|e| !is_terminal(e))
                .map(Ok)
                .collect();
            streamed(flavor, content_type, Body::from_stream(futures::stream::iter(events)))
        }
        Behaviour::ContextLength => {
            let name = match flavor {
                Flavor::OpenAi => "error_400_context_length.json",
                Flavor::Anthropic => "error_400_prompt_too_long.json",
                Flavor::Gemini => "error_400_token_count.json",
            };
            let text = fixture(flavor, name).unwrap_or_default();
            tag(flavor, with_body(400, "application/json", text.to_owned()))
        }
        Behaviour::ContentFilter => content_filter(flavor, stream),
        Behaviour::ContinuePrefill => match (flavor, prefill_of(req)) {
            (Flavor::OpenAi, Some(prefix)) => {
                let whole = openai_answer_text();
                let rest = whole.strip_prefix(prefix.as_str()).unwrap_or(&whole).to_owned();
                let events: Vec<Result<Bytes, Infallible>> = openai_stream_of(&rest).into_iter().map(Ok).collect();
                streamed(
                    flavor,
                    "text/event-stream",
                    Body::from_stream(futures::stream::iter(events)),
                )
            }
            _ => success(flavor, Answer::Text, stream),
        },
        Behaviour::RejectPrefill => {
            if ends_with_assistant(flavor, req) {
                let mut body = error_body(flavor, 400);
                body["error"]["message"] = json!(
                    "This model does not support assistant message prefill. The conversation must end with a user message."
                );
                tag(flavor, with_body(400, "application/json", body.to_string()))
            } else {
                success(flavor, Answer::Text, stream)
            }
        }
    }
}

/// A stream fixture split into its events, one chunk each, as servers flush them.
fn events_of(text: &str) -> Vec<Bytes> {
    text.split_inclusive("\n\n")
        .map(|e| Bytes::copy_from_slice(e.as_bytes()))
        .collect()
}

/// The event that ends a stream: OpenAI's `[DONE]`, Anthropic's `message_stop`.
fn is_terminal(event: &[u8]) -> bool {
    let text = String::from_utf8_lossy(event);
    text.contains("data: [DONE]") || text.contains("event: message_stop")
}

/// The text of a trailing assistant message (OpenAI shape), if there is one.
fn prefill_of(req: &RecordedRequest) -> Option<String> {
    let body = req.json();
    let last = body["messages"].as_array()?.last()?.clone();
    if last["role"] != "assistant" {
        return None;
    }
    match &last["content"] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(parts) => Some(parts.iter().filter_map(|p| p["text"].as_str()).collect()),
        _ => None,
    }
}

/// The text of the OpenAI flavor's successful answer.
fn openai_answer_text() -> String {
    let text = fixture(Flavor::OpenAi, "chat_ok.json").unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    v["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// An OpenAI stream whose answer is `text`: role, text, finish, usage, `[DONE]`.
fn openai_stream_of(text: &str) -> Vec<Bytes> {
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        json!({
            "id": "chatcmpl-continue", "object": "chat.completion.chunk", "created": 1_694_268_190,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        })
    };
    let usage = json!({
        "id": "chatcmpl-continue", "object": "chat.completion.chunk", "created": 1_694_268_190,
        "model": "gpt-4o-mini", "choices": [],
        "usage": {"prompt_tokens": 25, "completion_tokens": 8, "total_tokens": 33},
    });
    [
        chunk(json!({"role": "assistant", "content": ""}), serde_json::Value::Null),
        chunk(json!({"content": text}), serde_json::Value::Null),
        chunk(json!({}), json!("stop")),
        usage,
    ]
    .iter()
    .map(|v| Bytes::from(format!("data: {v}\n\n")))
    .chain([Bytes::from_static(b"data: [DONE]\n\n")])
    .collect()
}

/// Whether the conversation ends with the assistant's turn (a prefill).
fn ends_with_assistant(flavor: Flavor, req: &RecordedRequest) -> bool {
    let body = req.json();
    let (list, role) = match flavor {
        Flavor::OpenAi | Flavor::Anthropic => ("messages", "assistant"),
        Flavor::Gemini => ("contents", "model"),
    };
    body[list]
        .as_array()
        .and_then(|m| m.last())
        .is_some_and(|m| m["role"] == role)
}

/// The flavor's content-filter refusal, in the shape its API sends it.
fn content_filter(flavor: Flavor, stream: bool) -> Response {
    match flavor {
        Flavor::OpenAi => {
            let text = fixture(flavor, "error_400_content_policy.json").unwrap_or_default();
            tag(flavor, with_body(400, "application/json", text.to_owned()))
        }
        Flavor::Anthropic | Flavor::Gemini => {
            let (content_type, text) = success_text(flavor, Answer::Text, stream);
            let text = if flavor == Flavor::Anthropic {
                text.replace("\"end_turn\"", "\"refusal\"")
            } else if stream {
                let blocked = fixture(flavor, "finish_safety.json").unwrap_or_default();
                let one_line: serde_json::Value = serde_json::from_str(blocked).unwrap_or_default();
                format!("data: {one_line}\n\n")
            } else {
                fixture(flavor, "finish_safety.json").unwrap_or_default().to_owned()
            };
            let events: Vec<Result<Bytes, Infallible>> = events_of(&text).into_iter().map(Ok).collect();
            if stream {
                streamed(flavor, content_type, Body::from_stream(futures::stream::iter(events)))
            } else {
                tag(flavor, with_body(200, content_type, text))
            }
        }
    }
}

/// Whether the request is an embeddings call: OpenAI's `…/embeddings`,
/// Gemini's `:batchEmbedContents`.
fn is_embeddings(req: &RecordedRequest) -> bool {
    let path = req.path_and_query.split('?').next().unwrap_or_default();
    path.ends_with("/embeddings") || path.ends_with(":batchEmbedContents")
}

/// A vector per input text that depends only on the text: its length in
/// bytes, its word count, then two constants (so a test can tell which
/// text a vector belongs to).
fn vector_of(text: &str) -> Vec<f32> {
    vec![text.len() as f32, text.split_whitespace().count() as f32, 0.5, -0.25]
}

/// The flavor's successful embeddings answer.
fn embeddings(flavor: Flavor, req: &RecordedRequest) -> Response {
    let body = req.json();
    let texts: Vec<String> = match flavor {
        Flavor::OpenAi => match &body["input"] {
            serde_json::Value::String(s) => vec![s.clone()],
            serde_json::Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().unwrap_or_default().to_owned())
                .collect(),
            _ => Vec::new(),
        },
        Flavor::Gemini | Flavor::Anthropic => body["requests"]
            .as_array()
            .map(|r| {
                r.iter()
                    .map(|one| {
                        one["content"]["parts"]
                            .as_array()
                            .map(|p| p.iter().filter_map(|p| p["text"].as_str()).collect::<String>())
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    let answer = match flavor {
        Flavor::OpenAi => {
            let base64 = body["encoding_format"] == "base64";
            let data: Vec<serde_json::Value> = texts
                .iter()
                .enumerate()
                .map(|(index, t)| {
                    let v = vector_of(t);
                    let embedding = if base64 {
                        let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                        json!(base64::engine::general_purpose::STANDARD.encode(bytes))
                    } else {
                        json!(v)
                    };
                    json!({"object": "embedding", "index": index, "embedding": embedding})
                })
                .collect();
            let tokens: usize = texts.iter().map(|t| t.split_whitespace().count()).sum();
            json!({
                "object": "list", "data": data, "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            })
        }
        Flavor::Gemini | Flavor::Anthropic => {
            let embeddings: Vec<serde_json::Value> = texts.iter().map(|t| json!({"values": vector_of(t)})).collect();
            json!({ "embeddings": embeddings })
        }
    };
    tag(flavor, with_body(200, "application/json", answer.to_string()))
}

/// The checks the real APIs make that an adapter could get wrong.
pub(crate) fn validate(flavor: Flavor, req: &RecordedRequest) -> Option<Response> {
    let path = req.path_and_query.split('?').next().unwrap_or_default();
    let body = req.json();
    let problem: Option<(u16, &str)> = match flavor {
        Flavor::OpenAi if path.ends_with("/embeddings") => {
            let input_ok = body["input"].is_string() || body["input"].as_array().is_some_and(|a| !a.is_empty());
            if !body["model"].is_string() {
                Some((400, "you must provide a model parameter"))
            } else if !input_ok {
                Some((400, "'input' : input cannot be an empty string or array"))
            } else {
                None
            }
        }
        Flavor::OpenAi => {
            if !path.ends_with("/chat/completions") {
                Some((404, "Invalid URL"))
            } else if !body["model"].is_string() {
                Some((400, "you must provide a model parameter"))
            } else if !body["messages"].is_array() {
                Some((400, "Missing required parameter: 'messages'."))
            } else {
                None
            }
        }
        Flavor::Anthropic => {
            let roles_ok = body["messages"]
                .as_array()
                .is_some_and(|m| !m.is_empty() && m.iter().all(|m| m["role"] == "user" || m["role"] == "assistant"));
            if path != "/v1/messages" {
                Some((404, "Not Found"))
            } else if req.header("x-api-key").is_none() {
                Some((401, "x-api-key header is required"))
            } else if req.header("anthropic-version").is_none() {
                Some((400, "anthropic-version: header is required"))
            } else if !body["model"].is_string() {
                Some((400, "model: Field required"))
            } else if !body["max_tokens"].is_u64() {
                Some((400, "max_tokens: Field required"))
            } else if !roles_ok {
                Some((
                    400,
                    "messages: roles must be \"user\" or \"assistant\", and at least one message is required",
                ))
            } else {
                None
            }
        }
        Flavor::Gemini if path.ends_with(":batchEmbedContents") => {
            if !path.starts_with("/v1beta/models/") {
                Some((404, "Requested entity was not found."))
            } else if req.path_and_query.contains("key=") || req.header("x-goog-api-key").is_none() {
                Some((
                    403,
                    "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
                ))
            } else if body["requests"].as_array().is_none_or(|r| r.is_empty()) {
                Some((
                    400,
                    "* BatchEmbedContentsRequest.requests: at least one request is required",
                ))
            } else {
                None
            }
        }
        Flavor::Gemini => {
            let method_ok = path.starts_with("/v1beta/models/")
                && (path.ends_with(":generateContent") || path.ends_with(":streamGenerateContent"));
            let roles_ok = body["contents"]
                .as_array()
                .is_some_and(|c| c.iter().all(|c| c["role"] == "user" || c["role"] == "model"));
            if !method_ok {
                Some((404, "Requested entity was not found."))
            } else if req.path_and_query.contains("key=") || req.header("x-goog-api-key").is_none() {
                // The key belongs in the header (the fake refuses `?key=` so a leak into URLs is caught).
                Some((
                    403,
                    "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
                ))
            } else if !roles_ok {
                Some((400, "Please use a valid role: user, model."))
            } else {
                None
            }
        }
    };
    let (status, message) = problem?;
    let mut body = error_body(flavor, status);
    // Every flavor's error body keeps its message at `error.message`.
    body["error"]["message"] = json!(message);
    Some(tag(flavor, with_body(status, "application/json", body.to_string())))
}

#[derive(Clone, Copy)]
enum Answer {
    Text,
    Tool,
    Json,
}

fn wants_stream(flavor: Flavor, req: &RecordedRequest) -> bool {
    match flavor {
        Flavor::Gemini => req.path_and_query.contains(":streamGenerateContent"),
        Flavor::OpenAi | Flavor::Anthropic => {
            req.json().get("stream").and_then(serde_json::Value::as_bool) == Some(true)
        }
    }
}

/// The fixture for a successful answer: content type and text.
fn success_text(flavor: Flavor, answer: Answer, stream: bool) -> (&'static str, &'static str) {
    let name = match (flavor, answer, stream) {
        (Flavor::OpenAi, Answer::Text, false) => "chat_ok.json",
        (Flavor::OpenAi, Answer::Tool, false) => "chat_tool_call.json",
        (Flavor::OpenAi, Answer::Json, false) => "chat_json.json",
        (Flavor::OpenAi, Answer::Text | Answer::Json, true) => "stream_ok.sse",
        (Flavor::OpenAi, Answer::Tool, true) => "stream_tool_call.sse",
        (Flavor::Anthropic, Answer::Text, false) => "messages_ok.json",
        (Flavor::Anthropic, Answer::Tool, false) => "messages_tool_use.json",
        (Flavor::Anthropic, Answer::Json, false) => "messages_json_tool.json",
        (Flavor::Anthropic, Answer::Text | Answer::Json, true) => "stream_ok.sse",
        (Flavor::Anthropic, Answer::Tool, true) => "stream_tool_use.sse",
        (Flavor::Gemini, Answer::Text, false) => "generate_ok.json",
        (Flavor::Gemini, Answer::Tool, false) => "generate_function_call.json",
        (Flavor::Gemini, Answer::Json, false) => "generate_json.json",
        (Flavor::Gemini, Answer::Text | Answer::Json, true) => "stream_ok.sse",
        (Flavor::Gemini, Answer::Tool, true) => "stream_function_call.sse",
    };
    let content_type = if stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    (content_type, fixture(flavor, name).unwrap_or_default())
}

fn success(flavor: Flavor, answer: Answer, stream: bool) -> Response {
    let (content_type, text) = success_text(flavor, answer, stream);
    if stream {
        // One chunk per event, as real servers flush them.
        let events: Vec<Result<Bytes, Infallible>> = events_of(text).into_iter().map(Ok).collect();
        streamed(flavor, content_type, Body::from_stream(futures::stream::iter(events)))
    } else {
        tag(flavor, with_body(200, content_type, text.to_owned()))
    }
}

/// A cut inside the second half's first `data:` line, so the body ends mid-event.
fn cut_point(text: &str) -> usize {
    let half = text.len() / 2;
    match text[half..].find("data:") {
        Some(pos) => (half + pos + 12).min(text.len().saturating_sub(1)),
        None => half,
    }
}

/// An error body in the flavor's shape, with the type names its docs list.
fn error_body(flavor: Flavor, status: u16) -> serde_json::Value {
    match flavor {
        Flavor::OpenAi => {
            let (kind, code, message) = match status {
                400 => ("invalid_request_error", None, "Invalid request."),
                401 => (
                    "invalid_request_error",
                    Some("invalid_api_key"),
                    "Incorrect API key provided.",
                ),
                403 => (
                    "invalid_request_error",
                    Some("unsupported_country_region_territory"),
                    "Country, region, or territory not supported.",
                ),
                404 => (
                    "invalid_request_error",
                    Some("model_not_found"),
                    "The model does not exist or you do not have access to it.",
                ),
                429 => (
                    "requests",
                    Some("rate_limit_exceeded"),
                    "Rate limit reached for requests.",
                ),
                503 => (
                    "server_error",
                    None,
                    "The engine is currently overloaded, please try again later.",
                ),
                _ => (
                    "server_error",
                    None,
                    "The server had an error while processing your request.",
                ),
            };
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
        }
        Flavor::Anthropic => {
            let (kind, message) = match status {
                400 => (
                    "invalid_request_error",
                    "There was an issue with the format or content of your request.",
                ),
                401 => ("authentication_error", "invalid x-api-key"),
                403 => (
                    "permission_error",
                    "Your API key does not have permission to use the specified resource.",
                ),
                404 => ("not_found_error", "The requested resource was not found."),
                413 => (
                    "request_too_large",
                    "Request exceeds the maximum allowed number of bytes.",
                ),
                429 => ("rate_limit_error", "Your account has hit a rate limit."),
                529 => ("overloaded_error", "Overloaded"),
                _ => (
                    "api_error",
                    "An unexpected error has occurred internal to Anthropic's systems.",
                ),
            };
            json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"})
        }
        Flavor::Gemini => {
            let (state, message) = match status {
                400 => ("INVALID_ARGUMENT", "Request contains an invalid argument."),
                401 => ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
                403 => ("PERMISSION_DENIED", "The caller does not have permission."),
                404 => ("NOT_FOUND", "Requested entity was not found."),
                429 => ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
                500 => ("INTERNAL", "An internal error has occurred."),
                503 => ("UNAVAILABLE", "The model is overloaded. Please try again later."),
                504 => ("DEADLINE_EXCEEDED", "The request timed out."),
                _ => ("UNKNOWN", "Unknown error."),
            };
            json!({"error": {"code": status, "message": message, "status": state}})
        }
    }
}

/// The key a request presented, in whichever header its flavor uses.
fn presented_key(req: &RecordedRequest) -> String {
    if let Some(auth) = req.header("authorization") {
        return auth.strip_prefix("Bearer ").unwrap_or(auth).to_owned();
    }
    req.header("x-api-key")
        .or_else(|| req.header("x-goog-api-key"))
        .unwrap_or_default()
        .to_owned()
}

fn with_body(status: u16, content_type: &str, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body).into_response();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

fn streamed(flavor: Flavor, content_type: &str, body: Body) -> Response {
    let mut response = Response::new(body);
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    if content_type == "text/event-stream" {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    tag(flavor, response)
}

fn set_header(response: &mut Response, name: &'static str, value: Option<&str>) {
    if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
        response.headers_mut().insert(name, v);
    }
}

/// The request-id header OpenAI and Anthropic send (Gemini sends none).
fn tag(flavor: Flavor, mut response: Response) -> Response {
    let name = match flavor {
        Flavor::OpenAi => Some("x-request-id"),
        Flavor::Anthropic => Some("request-id"),
        Flavor::Gemini => None,
    };
    if let Some(name) = name {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static("req_fake_0001"));
    }
    response
}
