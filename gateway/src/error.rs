//! Every error the gateway answers with, in OpenAI's error shape.
//!
//! Why one type: clients (the `openai` SDKs, LangChain, curl scripts)
//! branch on the HTTP status and `error.code`, so every failure — our own
//! request checks and the router's — leaves through [`ApiError`], with a
//! stable snake_case code from one place ([`Code`]) or from
//! [`RouteError::code`]. The router's errors keep their own status
//! ([`RouteError::http_status`]); nothing here re-decides it.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use router_runtime::{DecisionId, RouteError};
use serde::Serialize;

/// The gateway's own error codes (the router's come from [`RouteError::code`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// No `Authorization: Bearer` key, or one the keys file does not hold.
    InvalidApiKey,
    /// The body is larger than the limit.
    BodyTooLarge,
    /// The body nests deeper than the limit.
    JsonTooDeep,
    /// The body is not JSON.
    InvalidJson,
    /// The body is JSON but not a chat-completions request.
    InvalidRequest,
    /// The body is not declared as `application/json`.
    UnsupportedMediaType,
    /// The body did not arrive within the read timeout.
    RequestTimeout,
    /// No such endpoint.
    NotFound,
    /// The endpoint exists, not with this method.
    MethodNotAllowed,
    /// `/v1/routec/decisions/{id}`: unknown or expired id.
    DecisionNotFound,
    /// A bug: a handler panicked or state could not be read.
    Internal,
}

impl Code {
    /// The stable code string.
    pub const fn as_str(self) -> &'static str {
        match self {
            Code::InvalidApiKey => "invalid_api_key",
            Code::BodyTooLarge => "body_too_large",
            Code::JsonTooDeep => "json_too_deep",
            Code::InvalidJson => "invalid_json",
            Code::InvalidRequest => "invalid_request",
            Code::UnsupportedMediaType => "unsupported_media_type",
            Code::RequestTimeout => "request_timeout",
            Code::NotFound => "not_found",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::DecisionNotFound => "decision_not_found",
            Code::Internal => "internal_error",
        }
    }

    /// The HTTP status it is answered with.
    pub const fn status(self) -> StatusCode {
        match self {
            Code::InvalidApiKey => StatusCode::UNAUTHORIZED,
            Code::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::JsonTooDeep | Code::InvalidJson | Code::InvalidRequest => StatusCode::BAD_REQUEST,
            Code::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Code::NotFound | Code::DecisionNotFound => StatusCode::NOT_FOUND,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Every code, for the documentation test.
    #[cfg(test)]
    pub(crate) const ALL: [Code; 11] = [
        Code::InvalidApiKey,
        Code::BodyTooLarge,
        Code::JsonTooDeep,
        Code::InvalidJson,
        Code::InvalidRequest,
        Code::UnsupportedMediaType,
        Code::RequestTimeout,
        Code::NotFound,
        Code::MethodNotAllowed,
        Code::DecisionNotFound,
        Code::Internal,
    ];
}

/// An error answer: status, OpenAI error body and the headers that help a
/// client (`Retry-After`, the decision behind it).
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    param: Option<String>,
    // Boxed: an `ApiError` is every handler's `Err`, kept small.
    provider_code: Option<Box<str>>,
    retry_after: Option<Duration>,
    decision: Option<DecisionId>,
}

impl ApiError {
    /// A gateway error with `message` (lowercase, names in backticks).
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            status: code.status(),
            code: code.as_str(),
            message: message.into(),
            param: None,
            provider_code: None,
            retry_after: None,
            decision: None,
        }
    }

    /// The request parameter at fault.
    #[must_use]
    pub fn param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// The same error under another stable code (one the router also uses).
    #[must_use]
    pub(crate) fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }

    /// The router's error, with the router's own status and code.
    pub fn route(e: &RouteError) -> Self {
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError {
            status,
            code: e.code(),
            message: e.to_string(),
            param: None,
            provider_code: e.provider_code().map(Box::from),
            retry_after: e.retry_after(),
            decision: e.decision_id(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The decision behind the error, when the router made one.
    pub fn decision(&self) -> Option<DecisionId> {
        self.decision
    }

    /// The body, as OpenAI shapes it.
    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            error: ErrorDetail {
                message: &self.message,
                kind: error_type(self.status),
                code: self.code,
                param: self.param.as_deref(),
                provider_code: self.provider_code.as_deref(),
            },
        }
    }

    /// The body as one SSE `data:` line, for an error after a stream started.
    pub(crate) fn sse_event(&self) -> String {
        let json = serde_json::to_string(&self.body()).unwrap_or_default();
        format!("data: {json}\n\n")
    }
}

/// `{"error": {...}}`.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Debug, Serialize)]
struct ErrorDetail<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    code: &'a str,
    param: Option<&'a str>,
    /// The provider's own code behind `code`, when a provider refused the
    /// request (`content_policy_violation` behind `content_filtered`).
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_code: Option<&'a str>,
}

/// OpenAI's `type` for a status: what the SDKs and most clients show.
fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "server_error",
    }
}

/// Which wire format an error is written in: the one the endpoint speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// `{"error": {"message", "type", "code", "param"}}`.
    OpenAi,
    /// `{"type": "error", "error": {"type", "message", "code"}}`, the
    /// `type` one of Anthropic's, so its SDKs raise their usual classes.
    Anthropic,
}

impl ApiError {
    /// The body in Anthropic's error shape; `code` is routec's stable code.
    pub(crate) fn anthropic_body(&self) -> serde_json::Value {
        let mut error = serde_json::json!({
            "type": providers::anthropic_wire::error_type_for_status(self.status.as_u16()),
            "message": self.message,
            "code": self.code,
        });
        if let (Some(provider_code), Some(obj)) = (&self.provider_code, error.as_object_mut()) {
            obj.insert("provider_code".into(), serde_json::Value::from(provider_code.as_ref()));
        }
        serde_json::json!({"type": "error", "error": error})
    }

    /// The error as one Anthropic SSE `error` event, after a stream started.
    pub(crate) fn anthropic_sse_event(&self) -> String {
        format!("event: error\ndata: {}\n\n", self.anthropic_body())
    }

    /// The answer in `shape`.
    pub(crate) fn into_shaped_response(self, shape: Shape) -> Response {
        match shape {
            Shape::OpenAi => self.into_response(),
            Shape::Anthropic => {
                let body = serde_json::to_vec(&self.anthropic_body()).unwrap_or_default();
                let mut response = self.into_response();
                *response.body_mut() = axum::body::Body::from(body);
                response
            }
        }
    }
}

pub(crate) static DECISION_HEADER: HeaderName = HeaderName::from_static("x-routec-decision-id");

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(after) = self.retry_after {
            // Whole seconds, rounded up: `Retry-After: 0` would invite a hammering retry.
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        if let Some(id) = self.decision
            && let Ok(v) = HeaderValue::from_str(&id.to_string())
        {
            headers.insert(DECISION_HEADER.clone(), v);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_has_openais_shape() {
        let e = ApiError::new(Code::InvalidRequest, "missing field `messages`").param("messages");
        let json = serde_json::to_value(e.body()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"error": {
                "message": "missing field `messages`",
                "type": "invalid_request_error",
                "code": "invalid_request",
                "param": "messages",
            }})
        );
    }

    #[test]
    fn every_code_is_documented() {
        let doc = include_str!("../../docs/gateway.md");
        for code in Code::ALL {
            assert!(
                doc.contains(&format!("`{}`", code.as_str())),
                "docs/gateway.md lacks `{}`",
                code.as_str()
            );
        }
    }
}
