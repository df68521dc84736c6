//! Reading a chat-completions body: media type, size, nesting depth, shape
//! — each refused with its own code before anything reaches the router.
//!
//! Why by hand and not axum's `Json` extractor: its rejections are plain
//! text, its size error comes only after buffering, and serde's messages
//! name Rust types. Here a declared `Content-Length` over the limit is
//! refused before a byte of the body is read, a chunked body is cut off as
//! soon as it passes the limit, and nesting is checked by a byte scan
//! before the parser recurses into it.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::BytesMut;
use futures::FutureExt;
use http_body_util::BodyExt;
use providers::openai_wire::ChatCompletionRequest;
use tokio::time::Instant;

use crate::error::{ApiError, Code};

/// Limits on request bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest body accepted, in bytes (default 4 MiB).
    pub body_bytes: usize,
    /// The deepest nesting of JSON arrays and objects (default 64).
    pub json_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_bytes: 4 * 1024 * 1024,
            json_depth: 64,
        }
    }
}

/// Reads and parses a `POST /v1/chat/completions` body; the whole body
/// must arrive within `timeout` of the first read.
pub(crate) async fn read_chat_request(
    headers: &HeaderMap,
    body: Body,
    limits: Limits,
    timeout: Duration,
) -> Result<ChatCompletionRequest, ApiError> {
    let buf = read_json_body(headers, body, limits, timeout).await?;
    parse_chat_request(&buf, limits.json_depth)
}

/// Reads a JSON body whole (media type, size, read timeout), unparsed.
pub(crate) async fn read_json_body(
    headers: &HeaderMap,
    body: Body,
    limits: Limits,
    timeout: Duration,
) -> Result<BytesMut, ApiError> {
    // Requiring `application/json` also keeps browsers out: a cross-site
    // form post cannot set it without a CORS preflight, which we never
    // answer, so a web page cannot spend an open gateway's budget.
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::new(
            Code::UnsupportedMediaType,
            "the body must be sent as `Content-Type: application/json`",
        ));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.body_bytes as u64) {
        discard(body, limits);
        return Err(too_large(limits));
    }
    let mut body = body;
    let mut buf = BytesMut::with_capacity(declared.map_or(8 * 1024, |n| usize::try_from(n).unwrap_or(0)));
    // `None`: a timeout too long to represent, i.e. none.
    let deadline = Instant::now().checked_add(timeout);
    loop {
        // A small body usually arrives with its headers: take what is ready
        // without arming a timer. Arming one per call is not free: tokio
        // wakes its parked I/O thread whenever a timer is armed earlier than
        // every other, and this 30 s timer always is — two wake-ups and
        // context switches per call when it was tower-http's per-frame one.
        let next = match body.frame().now_or_never() {
            Some(next) => next,
            None => match deadline {
                Some(at) => tokio::time::timeout_at(at, body.frame())
                    .await
                    .map_err(|_| ApiError::new(Code::RequestTimeout, "the request body did not arrive in time"))?,
                None => body.frame().await,
            },
        };
        let Some(frame) = next else { break };
        let frame = match frame {
            Ok(f) => f,
            Err(_) => {
                return Err(ApiError::new(
                    Code::InvalidRequest,
                    "the request body could not be read",
                ));
            }
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limits.body_bytes {
                discard(body, limits);
                return Err(too_large(limits));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf)
}

/// Reads and drops the rest of a refused body in the background, up to a
/// bound, so the client (still sending) gets to read the 413 instead of a
/// connection reset: closing a socket with unread data makes the kernel
/// answer with RST, which discards our answer on the client's side. Past
/// four times the limit (at most 64 MiB) or 10 s, the connection is dropped.
fn discard(body: Body, limits: Limits) {
    let cap = limits.body_bytes.saturating_mul(4).min(64 * 1024 * 1024);
    tokio::spawn(async move {
        let mut body = body;
        let mut seen = 0usize;
        let drain = async {
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    seen += data.len();
                    if seen > cap {
                        break;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(10), drain).await;
    });
}

fn too_large(limits: Limits) -> ApiError {
    ApiError::new(
        Code::BodyTooLarge,
        format!("the request body is larger than {} bytes", limits.body_bytes),
    )
}

/// Parses a buffered body: depth first, then shape.
pub(crate) fn parse_chat_request(bytes: &[u8], max_depth: usize) -> Result<ChatCompletionRequest, ApiError> {
    let request: ChatCompletionRequest = parse_json(bytes, max_depth)?;
    if request.messages.is_empty() {
        return Err(ApiError::new(Code::InvalidRequest, "`messages` must hold at least one message").param("messages"));
    }
    Ok(request)
}

/// Parses a buffered body into `T`: depth first, then shape, each refused
/// in the request's words.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], max_depth: usize) -> Result<T, ApiError> {
    if let Some(depth) = too_deep(bytes, max_depth) {
        return Err(ApiError::new(
            Code::JsonTooDeep,
            format!("the JSON body nests deeper than {max_depth} levels (at least {depth})"),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| shape_error(bytes, &e))
}

/// The first depth above `max` reached by `[` and `{` outside strings, if any.
fn too_deep(bytes: &[u8], max: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(depth);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// A client-facing message for a body serde refused, in the request's
/// words (field names), never the gateway's Rust type names.
fn shape_error(bytes: &[u8], e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::new(Code::InvalidJson, format!("the body is not valid JSON: {}", plain(e)))
        }
        Category::Data => {
            let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
            if first != Some(&b'{') {
                return ApiError::new(Code::InvalidRequest, "the request body must be a JSON object");
            }
            let msg = e.to_string();
            if let Some(field) = msg
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next())
            {
                return ApiError::new(Code::InvalidRequest, format!("missing required field `{field}`")).param(field);
            }
            ApiError::new(
                Code::InvalidRequest,
                format!("the request does not have the expected shape: {}", plain(e)),
            )
        }
    }
}

/// serde's message with Rust type names replaced by what a client sent.
fn plain(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    let mut out = String::with_capacity(msg.len());
    let mut words = msg.split(' ').peekable();
    while let Some(w) = words.next() {
        if (w == "struct" || w == "enum") && words.peek().is_some() {
            // "expected struct WireMessage" → "expected an object".
            let _ = words.next();
            out.push_str(if w == "struct" {
                "an object"
            } else {
                "one of the allowed values"
            });
        } else {
            out.push_str(w);
        }
        out.push(' ');
    }
    out.pop();
    out
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    fn code(body: &str) -> (&'static str, String, Option<String>) {
        let e = parse_chat_request(body.as_bytes(), 64).unwrap_err();
        let json = serde_json::to_value(e.body()).unwrap();
        (
            e.code(),
            json["error"]["message"].as_str().unwrap().to_owned(),
            json["error"]["param"].as_str().map(str::to_owned),
        )
    }

    #[test]
    fn malformed_json_is_invalid_json() {
        assert_eq!(code("{\"model\": ").0, "invalid_json");
        assert_eq!(code("not json").0, "invalid_json");
    }

    #[test]
    fn a_non_object_body_says_so() {
        for body in ["[1, 2]", "\"hello\"", "42", "null"] {
            let (c, msg, _) = code(body);
            assert_eq!(
                (c, msg.as_str()),
                ("invalid_request", "the request body must be a JSON object"),
                "{body}"
            );
        }
    }

    #[test]
    fn a_missing_field_names_its_param() {
        let (c, msg, param) = code(r#"{"model": "w"}"#);
        assert_eq!(c, "invalid_request");
        assert_eq!(msg, "missing required field `messages`");
        assert_eq!(param.as_deref(), Some("messages"));
        let (_, _, param) = code(r#"{"model": "w", "messages": []}"#);
        assert_eq!(param.as_deref(), Some("messages"));
    }

    #[test]
    fn wrong_types_never_name_rust_types() {
        let (c, msg, _) = code(r#"{"model": "w", "messages": [42]}"#);
        assert_eq!(c, "invalid_request");
        assert!(!msg.contains("Wire"), "{msg}");
        assert!(msg.contains("an object"), "{msg}");
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let (c, msg, _) = code(&deep);
        assert_eq!(c, "json_too_deep");
        assert!(msg.contains("64 levels"), "{msg}");
        // Brackets inside strings do not count.
        let body = format!(
            r#"{{"model": "w", "messages": [{{"role": "user", "content": "{}"}}]}}"#,
            "[".repeat(500)
        );
        assert!(parse_chat_request(body.as_bytes(), 64).is_ok());
        // An escaped quote does not end the string.
        assert_eq!(too_deep(br#"["\"[[[[", 1]"#, 1), None);
        assert_eq!(too_deep(b"[[", 1), Some(2));
    }

    const T: Duration = Duration::from_secs(30);

    fn json_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        headers
    }

    // Paused time: the 30 s pass at once when nothing else can happen.
    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_arriving_times_out() {
        let first = futures::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"{\"mod"))]);
        let stalled = first.chain(futures::stream::pending());
        let e = read_chat_request(&json_headers(), Body::from_stream(stalled), Limits::default(), T)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "request_timeout");
    }

    /// `text` in 12-byte pieces, each 10 s after the last (50 s in all).
    fn slow_pieces(text: &'static [u8]) -> Body {
        let pieces = futures::stream::iter(text.chunks(12)).then(|piece| async move {
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok::<_, std::io::Error>(bytes::Bytes::from_static(piece))
        });
        Body::from_stream(pieces)
    }

    #[tokio::test(start_paused = true)]
    async fn the_timeout_bounds_the_whole_body_not_each_piece() {
        let text = br#"{"model":"w","messages":[{"role":"user","content":"hi"}]}"#;
        let limits = Limits::default();
        let read = read_chat_request(&json_headers(), slow_pieces(text), limits, Duration::from_secs(60)).await;
        assert_eq!(read.unwrap().model, "w");
        // Every wait is under 30 s but the body takes 50: a client trickling
        // bytes cannot hold a request open for ever.
        let e = read_chat_request(&json_headers(), slow_pieces(text), limits, T)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "request_timeout");
    }

    #[tokio::test]
    async fn size_and_media_type_are_checked_first() {
        let limits = Limits {
            body_bytes: 16,
            json_depth: 64,
        };
        let mut headers = HeaderMap::new();
        let e = read_chat_request(&headers, Body::from("{}"), limits, T)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "unsupported_media_type");
        headers.insert(header::CONTENT_TYPE, "application/json; charset=utf-8".parse().unwrap());
        headers.insert(header::CONTENT_LENGTH, "17".parse().unwrap());
        let e = read_chat_request(&headers, Body::from("x"), limits, T)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "body_too_large");
        // Without a declared length, the read stops at the limit.
        headers.remove(header::CONTENT_LENGTH);
        let chunks =
            futures::stream::iter((0..100).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"0123456789"))));
        let e = read_chat_request(&headers, Body::from_stream(chunks), limits, T)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "body_too_large");
    }
}
