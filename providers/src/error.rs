//! One error type for every adapter, and the classification the runtime's
//! fallback and retry decisions are made from.
//!
//! The class is decided here and in each adapter's body inspection, never by
//! the caller re-reading status codes, so a provider quirk (Anthropic's 529,
//! Gemini's "API key not valid" sent as a 400) is handled once.

use std::fmt;
use std::time::{Duration, SystemTime};

/// Longest upstream text quoted in an error: enough to read the provider's
/// message, short enough that a 50 MB HTML page never lands in a log line.
pub(crate) const MAX_QUOTED_BYTES: usize = 512;

/// Longest provider error code kept: real ones are a few words.
const MAX_PROVIDER_CODE_BYTES: usize = 64;

/// Which timeout fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutKind {
    /// The TCP/TLS connection was not established in time.
    Connect,
    /// Connected, but the response headers did not arrive in time.
    FirstByte,
    /// The body stopped arriving: no bytes for longer than the idle timeout.
    Idle,
    /// The whole call (or a CLI process) ran past its overall deadline.
    Total,
}

/// What went wrong, in the terms the router's fallback triggers use.
///
/// Deliberately not `#[non_exhaustive]`: the runtime matches on it to decide
/// retries and fallbacks, and a new class must be handled there on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// 429 or an equivalent body; see [`ProviderError::retry_after`].
    RateLimited,
    /// The provider says it is overloaded (503, Anthropic 529 `overloaded_error`).
    Overloaded,
    /// Any other 5xx, or a CLI that exited with failure.
    ServerError,
    /// A timeout, and which one.
    Timeout(TimeoutKind),
    /// The connection could not be made or broke mid-response.
    Connection,
    /// The key was missing, wrong or lacks permission (401, 403, Gemini's invalid key).
    Auth,
    /// The provider rejected the request itself (400, 404, 413, 422).
    BadRequest,
    /// The prompt does not fit the model's context window.
    ContextLengthExceeded,
    /// The provider refused on safety / content policy grounds.
    ContentPolicy,
    /// The response could not be understood: not JSON, wrong shape, cut short.
    MalformedResponse,
    /// The answer is larger than the body cap. Another target may answer
    /// shorter; asking the same one again would fetch (and pay for) the same
    /// oversized answer, so it is never retried.
    ResponseTooLarge,
}

impl ErrorClass {
    /// Whether trying a *different* provider or model can help.
    ///
    /// A bad request or a policy refusal would fail the same way elsewhere
    /// (and routing around a safety refusal is a decision for the policy, not
    /// a default); a context-length error can succeed on a bigger window.
    pub fn can_fallback(self) -> bool {
        match self {
            Self::RateLimited
            | Self::Overloaded
            | Self::ServerError
            | Self::Timeout(_)
            | Self::Connection
            | Self::Auth
            | Self::ContextLengthExceeded
            | Self::MalformedResponse
            | Self::ResponseTooLarge => true,
            Self::BadRequest | Self::ContentPolicy => false,
        }
    }

    /// Whether sending the *same* request to the *same* provider again can help.
    pub fn can_retry(self) -> bool {
        match self {
            Self::RateLimited
            | Self::Overloaded
            | Self::ServerError
            | Self::Timeout(_)
            | Self::Connection
            | Self::MalformedResponse => true,
            Self::Auth
            | Self::BadRequest
            | Self::ContextLengthExceeded
            | Self::ContentPolicy
            | Self::ResponseTooLarge => false,
        }
    }

    /// A short lowercase name, used in messages and traces.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RateLimited => "rate limited",
            Self::Overloaded => "overloaded",
            Self::ServerError => "server error",
            Self::Timeout(TimeoutKind::Connect) => "connect timeout",
            Self::Timeout(TimeoutKind::FirstByte) => "first-byte timeout",
            Self::Timeout(TimeoutKind::Idle) => "idle timeout",
            Self::Timeout(TimeoutKind::Total) => "timeout",
            Self::Connection => "connection failed",
            Self::Auth => "auth failed",
            Self::BadRequest => "bad request",
            Self::ContextLengthExceeded => "context length exceeded",
            Self::ContentPolicy => "content policy",
            Self::MalformedResponse => "malformed response",
            Self::ResponseTooLarge => "response too large",
        }
    }

    /// The class an HTTP error status implies before the body is read.
    ///
    /// Ranges instead of a wildcard so that every status lands in a class
    /// chosen here; adapters refine it from the body afterwards.
    pub(crate) fn from_status(status: u16) -> Self {
        match status {
            0..=399 => Self::MalformedResponse,
            401 | 403 => Self::Auth,
            408 => Self::Timeout(TimeoutKind::FirstByte),
            429 => Self::RateLimited,
            400 | 402 | 404..=407 | 409..=428 | 430..=499 => Self::BadRequest,
            503 | 529 => Self::Overloaded,
            500..=502 | 504..=528 | 530..=599 => Self::ServerError,
            600..=u16::MAX => Self::MalformedResponse,
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed provider call, classified.
///
/// Fields are private: the message has already been truncated and had the API
/// key redacted, and keeping construction inside the crate keeps it that way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("provider `{provider}` {class}{}: {message}", status_suffix(*status))]
pub struct ProviderError {
    provider: String,
    class: ErrorClass,
    status: Option<u16>,
    retry_after: Option<Duration>,
    provider_code: Option<String>,
    message: String,
}

fn status_suffix(status: Option<u16>) -> String {
    status.map(|s| format!(" ({s})")).unwrap_or_default()
}

impl ProviderError {
    /// Builds an error; `message` must already be redacted (see [`crate::ApiKey::redact`]).
    pub(crate) fn new(provider: &str, class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            provider: provider.to_owned(),
            class,
            status: None,
            retry_after: None,
            provider_code: None,
            message: truncate(&message.into(), MAX_QUOTED_BYTES),
        }
    }

    /// Attaches the provider's own error code; an empty code is none.
    pub(crate) fn with_provider_code(mut self, code: Option<String>) -> Self {
        self.provider_code = code
            .filter(|c| !c.is_empty())
            .map(|c| truncate(&c, MAX_PROVIDER_CODE_BYTES));
        self
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub(crate) fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// The provider name the adapter was configured with.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The classification the runtime decides on.
    pub fn class(&self) -> ErrorClass {
        self.class
    }

    /// The HTTP status, when the error came from one.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// How long the provider asked us to wait (`retry-after-ms`, `Retry-After`
    /// in seconds or as an HTTP date, or Gemini's `RetryInfo.retryDelay`).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The provider's own error code, as it sent it: OpenAI's `code`
    /// (`content_policy_violation`) or a `content_filter` finish reason,
    /// Anthropic's error `type` or a `refusal` stop reason, Gemini's `status`
    /// or its `SAFETY`-style finish or block reason. For reading and logging
    /// only: decisions are made on [`ProviderError::class`].
    pub fn provider_code(&self) -> Option<&str> {
        self.provider_code.as_deref()
    }

    /// The provider's own message, truncated and redacted.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Shorthand for `self.class().can_fallback()`.
    pub fn can_fallback(&self) -> bool {
        self.class.can_fallback()
    }

    /// Shorthand for `self.class().can_retry()`.
    pub fn can_retry(&self) -> bool {
        self.class.can_retry()
    }
}

/// Cuts `text` to at most `max` bytes on a char boundary, marking the cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

/// Parses the retry hint from response headers: `retry-after-ms` first (more
/// precise, sent by OpenAI and Anthropic), then `Retry-After` as delta-seconds
/// or an HTTP-date relative to `now`. A date in the past means "now".
pub(crate) fn parse_retry_after(
    retry_after_ms: Option<&str>,
    retry_after: Option<&str>,
    now: SystemTime,
) -> Option<Duration> {
    if let Some(ms) = retry_after_ms.and_then(|v| v.trim().parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = retry_after?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // Some servers send fractional seconds; the RFC does not allow it, but the
    // intent is unambiguous.
    if let Ok(secs) = value.parse::<f64>()
        && secs.is_finite()
        && secs >= 0.0
    {
        return Some(Duration::from_secs_f64(secs));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses a protobuf-JSON duration such as Gemini's `"retryDelay": "23s"` or `"1.5s"`.
pub(crate) fn parse_proto_duration(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().strip_suffix('s')?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_status_has_a_class() {
        assert_eq!(ErrorClass::from_status(400), ErrorClass::BadRequest);
        assert_eq!(ErrorClass::from_status(401), ErrorClass::Auth);
        assert_eq!(ErrorClass::from_status(403), ErrorClass::Auth);
        assert_eq!(ErrorClass::from_status(404), ErrorClass::BadRequest);
        assert_eq!(ErrorClass::from_status(422), ErrorClass::BadRequest);
        assert_eq!(ErrorClass::from_status(429), ErrorClass::RateLimited);
        assert_eq!(ErrorClass::from_status(500), ErrorClass::ServerError);
        assert_eq!(ErrorClass::from_status(502), ErrorClass::ServerError);
        assert_eq!(ErrorClass::from_status(503), ErrorClass::Overloaded);
        assert_eq!(ErrorClass::from_status(529), ErrorClass::Overloaded);
        assert_eq!(ErrorClass::from_status(200), ErrorClass::MalformedResponse);
    }

    #[test]
    fn fallback_and_retry_follow_the_table() {
        assert!(ErrorClass::RateLimited.can_fallback() && ErrorClass::RateLimited.can_retry());
        assert!(ErrorClass::ContextLengthExceeded.can_fallback());
        assert!(!ErrorClass::ContextLengthExceeded.can_retry());
        assert!(!ErrorClass::BadRequest.can_fallback() && !ErrorClass::BadRequest.can_retry());
        assert!(ErrorClass::Auth.can_fallback() && !ErrorClass::Auth.can_retry());
        assert!(!ErrorClass::ContentPolicy.can_fallback());
        assert!(ErrorClass::ResponseTooLarge.can_fallback());
        assert!(!ErrorClass::ResponseTooLarge.can_retry());
    }

    #[test]
    fn retry_after_seconds_date_and_ms() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after(None, Some("120"), now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after(None, Some("Wed, 21 Oct 2015 07:28:30 GMT"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after(None, Some("Wed, 21 Oct 2015 07:27:00 GMT"), now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after(Some("1500"), Some("2"), now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after(Some("junk"), Some("2"), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(parse_retry_after(None, Some("soon"), now), None);
        assert_eq!(parse_retry_after(None, None, now), None);
    }

    #[test]
    fn proto_durations() {
        assert_eq!(parse_proto_duration("23s"), Some(Duration::from_secs(23)));
        assert_eq!(parse_proto_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_proto_duration("23"), None);
    }

    #[test]
    fn truncation_marks_the_cut_and_respects_utf8() {
        let long = "é".repeat(1000);
        let out = truncate(&long, 11);
        assert!(out.starts_with("ééééé…"));
        assert!(out.ends_with("(2000 bytes)"));
    }

    #[test]
    fn display_is_one_lowercase_line() {
        let e = ProviderError::new("anthropic", ErrorClass::Overloaded, "Overloaded").with_status(529);
        assert_eq!(e.to_string(), "provider `anthropic` overloaded (529): Overloaded");
    }
}
