//! HTTP plumbing shared by the OpenAI, Anthropic and Gemini adapters: one
//! pooled client per provider, the three timeouts, capped body reads, error
//! responses turned into classified errors, and SSE bodies turned into
//! normalised event streams.
//!
//! Timeouts are applied here with `tokio::time::timeout` around each await
//! rather than reqwest's whole-request timeout, because the runtime needs to
//! know *which* one fired: a slow first byte and a stalled stream are
//! different signals about a provider's health.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use futures::FutureExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::config::{ConfigError, Timeouts};
use crate::error::{ErrorClass, MAX_QUOTED_BYTES, ProviderError, TimeoutKind, parse_retry_after};
use crate::provider::EventStream;
use crate::secret::ApiKey;
use crate::sse::{SseError, SseEvent, SseParser};
use crate::types::StreamEvent;

/// Error bodies are parsed for their class and message only; a megabyte is
/// far more than any real one.
const MAX_ERROR_BODY: usize = 1 << 20;

/// Who is calling, for building errors that never contain the key.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub name: Arc<str>,
    pub key: ApiKey,
}

impl Ctx {
    /// An error whose message is redacted of the key first.
    pub(crate) fn err(&self, class: ErrorClass, message: &str) -> ProviderError {
        let message = self.key.redact(message);
        tracing::debug!(provider = %self.name, class = %class, message = %message, "provider call failed");
        ProviderError::new(&self.name, class, message)
    }
}

/// What a provider's error body says, as read by its adapter.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ErrorReading {
    pub class: ErrorClass,
    pub message: String,
    /// A retry hint found in the body (Gemini's `RetryInfo`).
    pub retry_after: Option<Duration>,
    /// The provider's own code for the error (OpenAI `code`, Anthropic
    /// `type`, Gemini `status`), when the body had one.
    pub code: Option<String>,
}

impl ErrorReading {
    /// A body with no recognised shape: the status decides, the text is quoted.
    pub(crate) fn unrecognised(status_class: ErrorClass, body: &[u8]) -> Self {
        Self {
            class: status_class,
            message: body_text(body),
            retry_after: None,
            code: None,
        }
    }

    /// The classified, redacted error this reading describes.
    pub(crate) fn into_error(self, ctx: &Ctx) -> ProviderError {
        ctx.err(self.class, &self.message)
            .with_retry_after(self.retry_after)
            .with_provider_code(self.code)
    }
}

/// Reads an error body into a class; `status_class` is what the status alone says.
pub(crate) type ErrorDialect = fn(status_class: ErrorClass, body: &[u8]) -> ErrorReading;

/// A URL an adapter posts to, parsed once when the adapter is built: given
/// a `&str`, reqwest parses it again on every call.
#[derive(Debug, Clone)]
pub(crate) struct PostUrl(Result<reqwest::Url, String>);

impl PostUrl {
    pub(crate) fn parse(url: &str) -> Self {
        // A base URL that passed `check_base_url` but does not parse fails
        // each call as reqwest's own builder error would.
        PostUrl(reqwest::Url::parse(url).map_err(|e| format!("builder error: {e}")))
    }
}

/// One provider's HTTP client and its limits.
#[derive(Debug)]
pub(crate) struct Transport {
    pub ctx: Ctx,
    client: reqwest::Client,
    /// The credential headers, built once and marked sensitive; `Err` when
    /// the key is not a valid header value (each call then fails as `Auth`).
    auth: Result<Vec<(HeaderName, HeaderValue)>, ()>,
    timeouts: Timeouts,
    max_body: usize,
    dialect: ErrorDialect,
}

impl Transport {
    /// `auth` holds the headers that carry the key (the only place its raw
    /// value is read); `headers` the provider's extra headers from the policy.
    pub(crate) fn new(
        ctx: Ctx,
        timeouts: Timeouts,
        max_body: usize,
        headers: &[(String, String)],
        auth: &[(&'static str, String)],
        dialect: ErrorDialect,
    ) -> Result<Self, ConfigError> {
        let mut default_headers = HeaderMap::new();
        for (name, value) in headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ConfigError::InvalidHeader { name: name.clone() })?;
            let value = HeaderValue::from_str(value).map_err(|_| ConfigError::InvalidHeader { name: name.clone() })?;
            default_headers.insert(header, value);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .default_headers(default_headers)
            .build()
            .map_err(|e| ConfigError::HttpClient {
                reason: ctx.key.redact(&error_chain(&e)).into_owned(),
            })?;
        let auth = auth
            .iter()
            .map(|(name, value)| {
                let mut value = HeaderValue::from_str(value).map_err(|_| ())?;
                value.set_sensitive(true);
                Ok((HeaderName::from_static(name), value))
            })
            .collect();
        Ok(Self {
            ctx,
            client,
            auth,
            timeouts,
            max_body,
            dialect,
        })
    }

    /// POSTs `body` as JSON and returns the response once its headers
    /// arrived with a 2xx status; anything else becomes a classified error.
    pub(crate) async fn post(&self, url: &PostUrl, body: Vec<u8>) -> Result<reqwest::Response, ProviderError> {
        let auth = self
            .auth
            .as_ref()
            .map_err(|()| self.ctx.err(ErrorClass::Auth, "api key is not a valid header value"))?;
        let url = url
            .0
            .as_ref()
            .map_err(|reason| self.ctx.err(ErrorClass::Connection, reason))?;
        let mut builder = self
            .client
            .post(url.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )
            .body(body);
        for (name, value) in auth {
            builder = builder.header(name.clone(), value.clone());
        }
        let response = match tokio::time::timeout(self.timeouts.first_byte, builder.send()).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => return Err(self.send_error(&e)),
            Err(_) => {
                return Err(self.ctx.err(
                    ErrorClass::Timeout(TimeoutKind::FirstByte),
                    &format!("no response headers within {:?}", self.timeouts.first_byte),
                ));
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        Err(self.status_error(response).await)
    }

    /// Runs `call` under the total timeout, if one is configured. For streams
    /// it bounds the wait for the response headers only: a stream's length
    /// is the caller's to bound, and the idle timeout catches a stall.
    pub(crate) async fn with_total<T>(
        &self,
        call: impl Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        match self.timeouts.total {
            None => call.await,
            Some(limit) => tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
                Err(self.ctx.err(
                    ErrorClass::Timeout(TimeoutKind::Total),
                    &format!("call took longer than {limit:?}"),
                ))
            }),
        }
    }

    /// Reads a whole body with the idle timeout between chunks and the size cap.
    pub(crate) async fn read_body(&self, mut response: reqwest::Response, cap: usize) -> Result<Bytes, ProviderError> {
        if let Some(len) = response.content_length()
            && len > cap as u64
        {
            return Err(self.too_large(cap));
        }
        let mut buf = BytesMut::new();
        loop {
            // A chunk already here needs no timer; arming one per chunk costs
            // a timer-wheel insert and removal, and can wake the runtime's
            // parked I/O thread (see the gateway's body reader).
            let next = match response.chunk().now_or_never() {
                Some(next) => Ok(next),
                None => tokio::time::timeout(self.timeouts.idle, response.chunk()).await,
            };
            match next {
                Ok(Ok(Some(chunk))) => {
                    if buf.len() + chunk.len() > cap {
                        return Err(self.too_large(cap));
                    }
                    buf.extend_from_slice(&chunk);
                }
                Ok(Ok(None)) => return Ok(buf.freeze()),
                Ok(Err(e)) => return Err(self.body_error(&e)),
                Err(_) => return Err(self.idle_timeout()),
            }
        }
    }

    /// Reads a successful JSON body; a non-JSON content type is a malformed response.
    pub(crate) async fn read_json_body(&self, response: reqwest::Response) -> Result<Bytes, ProviderError> {
        let content_type = content_type(&response);
        let body = self.read_body(response, self.max_body).await?;
        if let Some(ct) = content_type
            && !ct.contains("json")
        {
            return Err(self.ctx.err(
                ErrorClass::MalformedResponse,
                &format!("expected a json body, got `{ct}`: {}", body_text(&body)),
            ));
        }
        Ok(body)
    }

    /// Turns an SSE response into normalised events through `decoder`.
    pub(crate) fn event_stream<D: StreamDecoder>(
        self: &Arc<Self>,
        response: reqwest::Response,
        decoder: D,
    ) -> Result<EventStream, ProviderError> {
        if let Some(ct) = content_type(&response)
            && !ct.contains("text/event-stream")
        {
            return Err(self.ctx.err(
                ErrorClass::MalformedResponse,
                &format!("expected an event stream, got `{ct}`"),
            ));
        }
        let state = StreamState {
            transport: Arc::clone(self),
            response,
            pump: EventPump::new(decoder, self.max_body),
            pending: VecDeque::new(),
            finished: false,
        };
        Ok(Box::pin(futures::stream::unfold(state, StreamState::next)))
    }

    async fn status_error(&self, response: reqwest::Response) -> ProviderError {
        let status = response.status().as_u16();
        let headers = response.headers();
        let header_retry = parse_retry_after(
            header_str(headers, "retry-after-ms"),
            header_str(headers, "retry-after"),
            SystemTime::now(),
        );
        let status_class = ErrorClass::from_status(status);
        // If the error body itself cannot be read, the status still classifies it.
        let body = self.read_body(response, MAX_ERROR_BODY).await.unwrap_or_default();
        let mut reading = (self.dialect)(status_class, &body);
        reading.retry_after = header_retry.or(reading.retry_after);
        reading.into_error(&self.ctx).with_status(status)
    }

    fn send_error(&self, e: &reqwest::Error) -> ProviderError {
        let class = if e.is_timeout() && e.is_connect() {
            ErrorClass::Timeout(TimeoutKind::Connect)
        } else if e.is_timeout() {
            ErrorClass::Timeout(TimeoutKind::FirstByte)
        } else {
            ErrorClass::Connection
        };
        self.ctx.err(class, &error_chain(e))
    }

    fn body_error(&self, e: &reqwest::Error) -> ProviderError {
        self.ctx.err(
            ErrorClass::Connection,
            &format!("response body broke off: {}", error_chain(e)),
        )
    }

    fn too_large(&self, cap: usize) -> ProviderError {
        self.ctx.err(
            ErrorClass::ResponseTooLarge,
            &format!("response body larger than {cap} bytes"),
        )
    }

    fn idle_timeout(&self) -> ProviderError {
        self.ctx.err(
            ErrorClass::Timeout(TimeoutKind::Idle),
            &format!("no bytes for {:?}", self.timeouts.idle),
        )
    }
}

/// Turns one provider's SSE events into normalised events.
pub(crate) trait StreamDecoder: Send + 'static {
    /// Handles one SSE event, appending what it means to `out`.
    fn on_event(&mut self, ctx: &Ctx, event: SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), EventError>;

    /// Whether the provider's terminal event has been seen (reading stops there).
    fn is_done(&self) -> bool;

    /// Called at a clean end of body before the terminal event: the last
    /// chance to finish (a finish reason already seen makes the answer
    /// complete), else an error.
    fn on_eof(&mut self, ctx: &Ctx, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError>;
}

/// Why one event could not be used.
#[derive(Debug)]
pub(crate) enum EventError {
    /// The event could not be read (not JSON, wrong shape): it is skipped and
    /// counted, and only too many of them end the stream.
    Malformed(String),
    /// The event reports a failure, or ends the stream wrongly: the stream ends.
    Failed(ProviderError),
}

impl From<ProviderError> for EventError {
    fn from(e: ProviderError) -> Self {
        Self::Failed(e)
    }
}

/// How many malformed events one stream may skip; one more is an error.
/// A stray bad line is a proxy's hiccup; several mean the stream is not
/// what the adapter thinks it is, and its text cannot be trusted.
pub(crate) const MAX_SKIPPED_EVENTS: u32 = 3;

/// Body chunks in, normalised events out: the SSE parser, one adapter's
/// decoder, and the count of skipped events, with no I/O, so the transport
/// and the fixture tests drive the same code.
#[derive(Debug)]
pub(crate) struct EventPump<D> {
    parser: SseParser,
    decoder: D,
    sse_events: Vec<SseEvent>,
    skipped: u32,
}

impl<D: StreamDecoder> EventPump<D> {
    /// A pump whose parser refuses lines over `max_line` bytes.
    pub(crate) fn new(decoder: D, max_line: usize) -> Self {
        Self {
            parser: SseParser::new(max_line),
            decoder,
            sse_events: Vec::new(),
            skipped: 0,
        }
    }

    /// Feeds one body chunk; appends the events it completes to `out`, up to
    /// and including the terminal one.
    pub(crate) fn push(&mut self, ctx: &Ctx, chunk: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        self.parser.push(chunk, &mut self.sse_events).map_err(|e| {
            let class = match e {
                SseError::LineTooLong(_) => ErrorClass::ResponseTooLarge,
                SseError::InvalidUtf8 => ErrorClass::MalformedResponse,
            };
            ctx.err(class, &e.to_string())
        })?;
        for event in std::mem::take(&mut self.sse_events) {
            let name = event.event.clone();
            match self.decoder.on_event(ctx, event, out) {
                Ok(()) => {}
                Err(EventError::Failed(e)) => return Err(e),
                Err(EventError::Malformed(reason)) => {
                    let reason = ctx.key.redact(&reason);
                    self.skipped += 1;
                    if self.skipped > MAX_SKIPPED_EVENTS {
                        return Err(ctx.err(
                            ErrorClass::MalformedResponse,
                            &format!("more than {MAX_SKIPPED_EVENTS} malformed stream events; the last: {reason}"),
                        ));
                    }
                    tracing::warn!(
                        provider = %ctx.name,
                        event = %name,
                        skipped = self.skipped,
                        "skipped a malformed stream event: {reason}"
                    );
                }
            }
            if self.decoder.is_done() {
                self.stamp(out);
                break;
            }
        }
        Ok(())
    }

    /// The body ended: complete if the terminal event was seen or the
    /// decoder can finish, an error if it ended mid-event or too early.
    pub(crate) fn eof(&mut self, ctx: &Ctx, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if self.decoder.is_done() {
            return Ok(());
        }
        if !self.parser.is_between_events() {
            return Err(ctx.err(ErrorClass::MalformedResponse, "event stream ended mid-event"));
        }
        self.decoder.on_eof(ctx, out)?;
        self.stamp(out);
        Ok(())
    }

    /// Whether the terminal event has been seen.
    pub(crate) fn is_done(&self) -> bool {
        self.decoder.is_done()
    }

    /// Writes the skip count into the final `Done` event.
    fn stamp(&self, out: &mut [StreamEvent]) {
        if let Some(StreamEvent::Done { skipped_events, .. }) = out.last_mut() {
            *skipped_events = self.skipped;
        }
    }
}

struct StreamState<D> {
    transport: Arc<Transport>,
    response: reqwest::Response,
    pump: EventPump<D>,
    pending: VecDeque<Result<StreamEvent, ProviderError>>,
    finished: bool,
}

impl<D: StreamDecoder> StreamState<D> {
    async fn next(mut self) -> Option<(Result<StreamEvent, ProviderError>, Self)> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                if item.is_err() {
                    // One error ends the stream; nothing after it is trustworthy.
                    self.pending.clear();
                    self.finished = true;
                }
                return Some((item, self));
            }
            if self.finished {
                return None;
            }
            self.fill().await;
        }
    }

    /// Reads until at least one item is pending or the stream is finished.
    async fn fill(&mut self) {
        let ctx = &self.transport.ctx;
        let mut out = Vec::new();
        let chunk = match tokio::time::timeout(self.transport.timeouts.idle, self.response.chunk()).await {
            Ok(Ok(chunk)) => chunk,
            Ok(Err(e)) => {
                self.pending.push_back(Err(self.transport.body_error(&e)));
                return;
            }
            Err(_) => {
                self.pending.push_back(Err(self.transport.idle_timeout()));
                return;
            }
        };
        let result = match chunk {
            Some(chunk) => self.pump.push(ctx, &chunk, &mut out),
            None => {
                self.finished = true;
                self.pump.eof(ctx, &mut out)
            }
        };
        self.pending.extend(out.into_iter().map(Ok));
        if let Err(e) = result {
            self.pending.push_back(Err(e));
        }
        if self.pump.is_done() {
            // Stop reading: whatever follows the terminal event is irrelevant,
            // and dropping the response returns the connection to the pool.
            self.finished = true;
        }
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn content_type(response: &reqwest::Response) -> Option<String> {
    header_str(response.headers(), "content-type").map(str::to_ascii_lowercase)
}

/// The error and its sources, without the URL (Gemini's used to carry the key;
/// none of ours do, but a URL in an error is one refactor away from a leak).
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = String::new();
    let mut current: Option<&dyn std::error::Error> = Some(e);
    let mut first = true;
    while let Some(err) = current {
        let part = if first {
            // reqwest prints "error sending request for url (…)"; drop the URL.
            let s = err.to_string();
            match s.find(" for url (") {
                Some(pos) => s[..pos].to_owned(),
                None => s,
            }
        } else {
            err.to_string()
        };
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
        first = false;
        current = err.source();
    }
    text
}

/// Joins a base URL and a path with exactly one slash.
pub(crate) fn join_url(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}

/// The text of a body for an error message when it has no recognised shape.
/// Truncated before decoding, so a 16 MiB body never becomes a 16 MiB message.
pub(crate) fn body_text(body: &[u8]) -> String {
    let head = &body[..body.len().min(MAX_QUOTED_BYTES)];
    let text = String::from_utf8_lossy(head);
    if text.trim().is_empty() {
        "empty body".to_owned()
    } else if head.len() < body.len() {
        format!("{text}… ({} bytes)", body.len())
    } else {
        text.into_owned()
    }
}
