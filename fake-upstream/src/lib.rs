//! Fake LLM provider servers for tests: real HTTP on `127.0.0.1`, speaking the
//! OpenAI chat-completions, Anthropic Messages or Gemini generateContent wire
//! format (streaming included), with scripted behaviour.
//!
//! Every request to a non-control path is counted and recorded so tests can
//! check what an adapter sent. A request the real API would reject (wrong
//! path, missing required header or field, a `system` role inside Anthropic
//! `messages`, a role Gemini does not know) gets that API's error; any other
//! takes the next [`Behaviour`] from the script (the default behaviour when
//! it is empty: [`Behaviour::Ok`] unless [`FakeUpstream::set_default`] chose
//! another, e.g. a persistent 503 that later recovers). Control endpoints,
//! for tests that run the fake as a separate process:
//!
//! - `POST /__fake/script` with a JSON array of behaviours replaces the script;
//! - `POST /__fake/push` with one behaviour appends to it;
//! - `POST /__fake/default` with one behaviour sets what an empty script does;
//! - `GET /__fake/calls` answers `{"calls": n}`;
//! - `GET /__fake/requests` answers the recorded requests;
//! - `POST /__fake/reset` clears script, default, counter and records.
//!
//! The fault modes of the failure-mode suite: [`Behaviour::error`] (429 with
//! or without `Retry-After`, 500, 503), [`Behaviour::Reset`] (a reset before
//! headers), [`Behaviour::Hang`] (no response at all),
//! [`Behaviour::SlowFirstToken`], [`Behaviour::CutStream`],
//! [`Behaviour::StallAfterEvents`], [`Behaviour::MalformedEvents`],
//! [`Behaviour::NoDone`], [`Behaviour::ContextLength`],
//! [`Behaviour::ContentFilter`], [`Behaviour::RejectPrefill`] and
//! [`Behaviour::Huge`].
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use fake_upstream::{Behaviour, FakeUpstream, Flavor};
//! let fake = FakeUpstream::start(Flavor::Anthropic).await?;
//! fake.push(Behaviour::error(529));
//! // point the adapter at fake.base_url() …
//! assert_eq!(fake.calls(), 0);
//! # Ok(()) }
//! ```
//!
//! Tests await what a fake receives with [`FakeUpstream::wait_calls`] rather
//! than polling [`FakeUpstream::calls`]. For the Redis budget store, the
//! [`redis`] module starts a real `redis-server` of a test's own. For
//! traces, the [`otlp`] module is an OTLP/HTTP receiver that keeps the
//! spans it is sent.

mod fixtures;
mod listener;
pub mod otlp;
pub mod redis;
mod respond;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Which provider's wire format the fake speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    /// OpenAI chat completions (`POST …/chat/completions`).
    OpenAi,
    /// Anthropic Messages (`POST /v1/messages`).
    Anthropic,
    /// Gemini (`POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`).
    Gemini,
}

impl Flavor {
    /// Parses `openai`, `anthropic` or `gemini`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "openai" => Some(Self::OpenAi),
            "anthropic" => Some(Self::Anthropic),
            "gemini" => Some(Self::Gemini),
            _ => None,
        }
    }

    /// The fixture directory name under `providers/testdata/`.
    pub fn dir(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
        }
    }
}

/// What the fake does with one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Behaviour {
    /// A successful text answer (streamed if the request asked for a stream).
    Ok,
    /// A successful answer that calls a tool.
    ToolCall,
    /// A successful answer in JSON mode.
    Json,
    /// An error status with a body in this flavor's error shape.
    Error {
        /// HTTP status.
        status: u16,
        /// `Retry-After` header value (seconds or an HTTP date).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<String>,
        /// `retry-after-ms` header value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<String>,
    },
    /// A named fixture file from this flavor's testdata directory, served
    /// with `status`; `{{api_key}}` in it is replaced by the key the request carried.
    Fixture {
        /// File name, e.g. `error_400_prompt_too_long.json`.
        name: String,
        /// HTTP status.
        status: u16,
        /// `Retry-After` header value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<String>,
    },
    /// Any status, content type and body: garbage, truncated JSON, another provider's error shape.
    Raw {
        /// HTTP status.
        status: u16,
        /// `Content-Type` header.
        content_type: String,
        /// The body.
        body: String,
    },
    /// Accept the request and never answer.
    Hang,
    /// The successful answer, `chunk_bytes` at a time every `interval_ms`.
    Trickle {
        /// Bytes per chunk.
        chunk_bytes: usize,
        /// Pause between chunks.
        interval_ms: u64,
    },
    /// Send the headers and the first `bytes` of the successful answer, then stall forever.
    StallAfter {
        /// Bytes sent before stalling.
        bytes: usize,
    },
    /// The successful stream cut in the middle of an event: ended cleanly
    /// (`abort: false`) or by breaking the connection (`abort: true`).
    CutStream {
        /// Break the connection instead of ending the body.
        #[serde(default)]
        abort: bool,
    },
    /// A 200 JSON body of `bytes` bytes, sent chunked (no length up front).
    Huge {
        /// Body size.
        bytes: usize,
    },
    /// Accept the request, then reset the connection without sending a
    /// byte of the response (no status, no headers).
    Reset,
    /// The successful answer, its headers at once and its body (the first
    /// token) only after `delay_ms`.
    SlowFirstToken {
        /// Delay before the first body byte.
        delay_ms: u64,
    },
    /// A successful stream that sends its first `events` events whole, then
    /// stalls forever with the connection open.
    StallAfterEvents {
        /// Events sent before stalling.
        events: usize,
    },
    /// A successful stream with `count` malformed `data:` events (not JSON)
    /// after its first event; everything else is intact.
    MalformedEvents {
        /// How many malformed events.
        count: usize,
    },
    /// A successful stream, finish reason and usage included, whose body ends
    /// cleanly without the terminal event (`data: [DONE]`, `message_stop`).
    NoDone,
    /// The flavor's context-length error (400).
    ContextLength,
    /// The flavor's content-filter refusal: OpenAI's 400
    /// `content_policy_violation`, Anthropic's `stop_reason: refusal` and
    /// Gemini's `finishReason: SAFETY` (both 200).
    ContentFilter,
    /// A server that refuses assistant prefill: a request whose last message
    /// is the assistant's gets a 400; any other the successful answer.
    RejectPrefill,
    /// A server that continues an assistant prefill (OpenAI flavor): a
    /// request whose last message is the assistant's, holding the start of
    /// the successful answer's text, gets a stream of the rest of that text
    /// only; any other request the successful answer.
    ContinuePrefill,
}

impl Behaviour {
    /// An error status with this flavor's error body and no retry hint.
    pub fn error(status: u16) -> Self {
        Self::Error {
            status,
            retry_after: None,
            retry_after_ms: None,
        }
    }

    /// A 429 with `Retry-After: <value>`.
    pub fn rate_limited(retry_after: &str) -> Self {
        Self::Error {
            status: 429,
            retry_after: Some(retry_after.to_owned()),
            retry_after_ms: None,
        }
    }

    /// A named fixture served with `status`.
    pub fn fixture(name: &str, status: u16) -> Self {
        Self::Fixture {
            name: name.to_owned(),
            status,
            retry_after: None,
        }
    }

    /// A raw body.
    pub fn raw(status: u16, content_type: &str, body: &str) -> Self {
        Self::Raw {
            status,
            content_type: content_type.to_owned(),
            body: body.to_owned(),
        }
    }
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path and query, e.g. `/v1beta/models/m:streamGenerateContent?alt=sse`.
    pub path_and_query: String,
    /// Headers, names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy UTF-8).
    pub body: String,
}

impl RecordedRequest {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON (`Null` if it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Debug, Default)]
struct Inner {
    script: VecDeque<Behaviour>,
    /// What an empty script does; `None` is [`Behaviour::Ok`].
    default: Option<Behaviour>,
    calls: u64,
    requests: Vec<RecordedRequest>,
}

#[derive(Debug)]
struct Shared {
    flavor: Flavor,
    inner: Mutex<Inner>,
    /// `inner.calls`, published on every change for [`FakeUpstream::wait_calls`].
    calls: watch::Sender<u64>,
}

impl Shared {
    /// The lock, even if a panicking test poisoned it: the data stays usable.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running fake server; stops accepting connections when dropped.
#[derive(Debug)]
pub struct FakeUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl FakeUpstream {
    /// Starts a fake on `127.0.0.1` with an OS-chosen port. The socket is
    /// bound before this returns, so requests can be sent at once.
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub async fn start(flavor: Flavor) -> std::io::Result<Self> {
        Self::bind(flavor, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts a fake on `addr`.
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub async fn bind(flavor: Flavor, addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            flavor,
            inner: Mutex::new(Inner::default()),
            calls: watch::Sender::new(0),
        });
        let app = router(Arc::clone(&shared));
        let listener = listener::ResettingListener(listener);
        let task = tokio::spawn(async move {
            // Serving only ends on an accept error, which leaves nothing to do.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL an adapter of this flavor should be configured with:
    /// `http://addr/v1` (OpenAI), `http://addr` (Anthropic), `http://addr/v1beta` (Gemini).
    pub fn base_url(&self) -> String {
        match self.shared.flavor {
            Flavor::OpenAi => format!("http://{}/v1", self.addr),
            Flavor::Anthropic => format!("http://{}", self.addr),
            Flavor::Gemini => format!("http://{}/v1beta", self.addr),
        }
    }

    /// Appends one behaviour to the script.
    pub fn push(&self, behaviour: Behaviour) {
        self.shared.lock().script.push_back(behaviour);
    }

    /// Replaces the script.
    pub fn script(&self, behaviours: Vec<Behaviour>) {
        self.shared.lock().script = behaviours.into();
    }

    /// Sets what the fake does once the script is empty (at start,
    /// [`Behaviour::Ok`]): `set_default(Behaviour::error(503))` is an outage
    /// until `set_default(Behaviour::Ok)` ends it.
    pub fn set_default(&self, behaviour: Behaviour) {
        self.shared.lock().default = Some(behaviour);
    }

    /// Requests received so far (control endpoints excluded).
    pub fn calls(&self) -> u64 {
        self.shared.lock().calls
    }

    /// Waits until at least `n` requests have arrived (control endpoints
    /// excluded), for at most `within`; whether they did. Each arriving
    /// request wakes the wait, so nothing polls.
    pub async fn wait_calls(&self, n: u64, within: Duration) -> bool {
        let mut calls = self.shared.calls.subscribe();
        let reached = tokio::time::timeout(within, calls.wait_for(|&c| c >= n)).await;
        matches!(reached, Ok(Ok(_)))
    }

    /// The requests received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// The most recent request.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.shared.lock().requests.last().cloned()
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The text of a fixture under `providers/testdata/<flavor>/<name>`.
pub fn fixture(flavor: Flavor, name: &str) -> Option<&'static str> {
    fixtures::FIXTURES
        .iter()
        .find(|(dir, file, _)| *dir == flavor.dir() && *file == name)
        .map(|(_, _, text)| *text)
}

/// The names of every fixture of a flavor.
pub fn fixture_names(flavor: Flavor) -> impl Iterator<Item = &'static str> {
    fixtures::FIXTURES
        .iter()
        .filter(move |(dir, _, _)| *dir == flavor.dir())
        .map(|(_, name, _)| *name)
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/__fake/script", post(set_script))
        .route("/__fake/push", post(push_one))
        .route("/__fake/default", post(set_default))
        .route("/__fake/calls", get(calls))
        .route("/__fake/requests", get(requests))
        .route("/__fake/reset", post(reset))
        .fallback(upstream)
        .with_state(shared)
}

async fn set_script(State(shared): State<Arc<Shared>>, axum::Json(script): axum::Json<Vec<Behaviour>>) -> StatusCode {
    shared.lock().script = script.into();
    StatusCode::NO_CONTENT
}

async fn push_one(State(shared): State<Arc<Shared>>, axum::Json(one): axum::Json<Behaviour>) -> StatusCode {
    shared.lock().script.push_back(one);
    StatusCode::NO_CONTENT
}

async fn set_default(State(shared): State<Arc<Shared>>, axum::Json(one): axum::Json<Behaviour>) -> StatusCode {
    shared.lock().default = Some(one);
    StatusCode::NO_CONTENT
}

async fn calls(State(shared): State<Arc<Shared>>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"calls": shared.lock().calls}))
}

async fn requests(State(shared): State<Arc<Shared>>) -> axum::Json<Vec<RecordedRequest>> {
    axum::Json(shared.lock().requests.clone())
}

async fn reset(State(shared): State<Arc<Shared>>) -> StatusCode {
    let mut inner = shared.lock();
    *inner = Inner::default();
    shared.calls.send_replace(0);
    StatusCode::NO_CONTENT
}

/// Requests are bodies of a few kilobytes; the cap only guards the fake.
const MAX_REQUEST_BODY: usize = 64 * 1024 * 1024;

async fn upstream(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_REQUEST_BODY).await {
        Ok(b) => b,
        Err(_) => return StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    };
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path_and_query: parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    {
        let mut inner = shared.lock();
        inner.calls += 1;
        inner.requests.push(recorded.clone());
        shared.calls.send_replace(inner.calls);
    }
    // A request the real API would reject is rejected the same way, without
    // consuming the script: adapter bugs show up as the provider's own error.
    if let Some(rejection) = respond::validate(shared.flavor, &recorded) {
        return rejection;
    }
    let behaviour = {
        let mut inner = shared.lock();
        let next = inner.script.pop_front();
        next.or_else(|| inner.default.clone()).unwrap_or(Behaviour::Ok)
    };
    respond::respond(shared.flavor, &recorded, behaviour).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_testdata_file_is_in_the_fixture_table() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../providers/testdata");
        for flavor in [Flavor::OpenAi, Flavor::Anthropic, Flavor::Gemini] {
            let mut on_disk: Vec<String> = std::fs::read_dir(root.join(flavor.dir()))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            on_disk.sort();
            let mut listed: Vec<String> = fixture_names(flavor).map(str::to_owned).collect();
            listed.sort();
            assert_eq!(on_disk, listed, "{flavor:?}: add new files to src/fixtures.rs");
        }
    }

    #[test]
    fn behaviours_have_a_stable_json_form() {
        let json = serde_json::to_value(Behaviour::rate_limited("7")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "error", "status": 429, "retry_after": "7"})
        );
        let back: Behaviour = serde_json::from_value(serde_json::json!({"kind": "hang"})).unwrap();
        assert_eq!(back, Behaviour::Hang);
    }
}
