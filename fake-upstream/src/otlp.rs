//! An OTLP/HTTP trace receiver on loopback, for the gateway's trace tests.
//!
//! Why a receiver of our own and not an OpenTelemetry Collector: the test
//! needs the spans as values to assert on, within one process, with no
//! binary to install. It speaks the real protocol: `POST /v1/traces` with
//! an `application/x-protobuf` body, decoded as an
//! `ExportTraceServiceRequest` by `opentelemetry-proto`'s generated types,
//! answered with an empty `ExportTraceServiceResponse`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::time::Duration;
//! use fake_upstream::otlp::OtlpReceiver;
//! let receiver = OtlpReceiver::start().await?;
//! // run `routec serve --otlp-endpoint {receiver.endpoint()}` …
//! let spans = receiver.wait_for("two spans", Duration::from_secs(10), |s| s.len() >= 2).await;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// An attribute's value, as OTLP carries the scalar ones.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Double(f64),
    /// A boolean.
    Bool(bool),
    /// An array, a map or bytes, shown as debug text.
    Other(String),
}

impl AttrValue {
    /// The string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            AttrValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if it is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            AttrValue::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The float, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            AttrValue::Double(d) => Some(*d),
            _ => None,
        }
    }
}

/// One span received, with ids as lowercase hex (as in `traceparent`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// 16 hex digits, or empty for a root span.
    pub parent_span_id: String,
    /// The span's name.
    pub name: String,
    /// `server`, `client`, `internal`, `producer`, `consumer` or `unspecified`.
    pub kind: &'static str,
    /// Start, in ns since the epoch.
    pub start_unix_nano: u64,
    /// End, in ns since the epoch.
    pub end_unix_nano: u64,
    /// The span's attributes by key.
    pub attributes: BTreeMap<String, AttrValue>,
    /// The status code: 0 unset, 1 ok, 2 error.
    pub status_code: i32,
    /// The resource's `service.name`, if it had one.
    pub service_name: Option<String>,
}

impl ReceivedSpan {
    /// The attribute called `key`.
    pub fn attr(&self, key: &str) -> Option<&AttrValue> {
        self.attributes.get(key)
    }

    /// The string attribute called `key`.
    pub fn str_attr(&self, key: &str) -> Option<&str> {
        self.attr(key).and_then(AttrValue::as_str)
    }

    /// The integer attribute called `key`.
    pub fn int_attr(&self, key: &str) -> Option<i64> {
        self.attr(key).and_then(AttrValue::as_int)
    }
}

#[derive(Debug, Default)]
struct Received {
    spans: Vec<ReceivedSpan>,
    /// Bodies that did not decode, or came with another content type.
    rejected: u64,
}

#[derive(Debug)]
struct Shared {
    received: Mutex<Received>,
    /// Bumped on every export, so waiters wake without polling.
    exports: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Received> {
        self.received.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running OTLP/HTTP receiver; stops accepting connections when dropped.
#[derive(Debug)]
pub struct OtlpReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl OtlpReceiver {
    /// Starts a receiver on `127.0.0.1` with an OS-chosen port, bound before
    /// this returns.
    ///
    /// # Errors
    /// When the socket cannot be bound.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            received: Mutex::new(Received::default()),
            exports: watch::Sender::new(0),
        });
        let app = Router::new()
            .route("/v1/traces", post(traces))
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    /// The base URL an exporter takes: `http://addr` (it adds `/v1/traces`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every span received so far, in order of arrival.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.shared.lock().spans.clone()
    }

    /// Exports refused: a body that was not an `ExportTraceServiceRequest`
    /// in protobuf.
    pub fn rejected(&self) -> u64 {
        self.shared.lock().rejected
    }

    /// Waits until the spans received satisfy `ready`, for at most `within`.
    ///
    /// # Errors
    /// When they did not in time: a message naming `what` and the spans
    /// received, for the test's failure.
    pub async fn wait_for(
        &self,
        what: &str,
        within: Duration,
        ready: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Result<Vec<ReceivedSpan>, String> {
        let mut exports = self.shared.exports.subscribe();
        let waited = tokio::time::timeout(within, async {
            loop {
                {
                    let received = self.shared.lock();
                    if ready(&received.spans) {
                        return received.spans.clone();
                    }
                }
                if exports.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        })
        .await;
        waited.map_err(|_| {
            let received = self.shared.lock();
            let names: Vec<&str> = received.spans.iter().map(|s| s.name.as_str()).collect();
            format!(
                "waited {within:?} for {what}; received {} span(s) {names:?} and {} rejected export(s)",
                names.len(),
                received.rejected
            )
        })
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn traces(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let protobuf = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/x-protobuf"));
    let decoded = if protobuf {
        ExportTraceServiceRequest::decode(body).ok()
    } else {
        None
    };
    let Some(request) = decoded else {
        shared.lock().rejected += 1;
        shared.exports.send_modify(|n| *n += 1);
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected an ExportTraceServiceRequest in protobuf",
        )
            .into_response();
    };
    {
        let mut received = shared.lock();
        for resource in request.resource_spans {
            let service_name = resource.resource.as_ref().and_then(|r| {
                r.attributes
                    .iter()
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| kv.value.as_ref().and_then(|v| v.value.as_ref()))
                    .and_then(|v| match v {
                        Value::StringValue(s) => Some(s.clone()),
                        _ => None,
                    })
            });
            for scope in resource.scope_spans {
                for span in scope.spans {
                    received.spans.push(ReceivedSpan {
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        kind: kind_name(span.kind),
                        name: span.name,
                        start_unix_nano: span.start_time_unix_nano,
                        end_unix_nano: span.end_time_unix_nano,
                        attributes: span
                            .attributes
                            .into_iter()
                            .map(|kv| (kv.key, value_of(kv.value.and_then(|v| v.value))))
                            .collect(),
                        status_code: span.status.map_or(0, |s| s.code),
                        service_name: service_name.clone(),
                    });
                }
            }
        }
    }
    shared.exports.send_modify(|n| *n += 1);
    // An empty `ExportTraceServiceResponse` encodes as no bytes.
    let mut response = Response::new(axum::body::Body::empty());
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"));
    response
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn kind_name(kind: i32) -> &'static str {
    match SpanKind::try_from(kind) {
        Ok(SpanKind::Server) => "server",
        Ok(SpanKind::Client) => "client",
        Ok(SpanKind::Internal) => "internal",
        Ok(SpanKind::Producer) => "producer",
        Ok(SpanKind::Consumer) => "consumer",
        Ok(SpanKind::Unspecified) | Err(_) => "unspecified",
    }
}

fn value_of(value: Option<Value>) -> AttrValue {
    match value {
        Some(Value::StringValue(s)) => AttrValue::Str(s),
        Some(Value::IntValue(i)) => AttrValue::Int(i),
        Some(Value::DoubleValue(d)) => AttrValue::Double(d),
        Some(Value::BoolValue(b)) => AttrValue::Bool(b),
        other => AttrValue::Other(format!("{other:?}")),
    }
}
