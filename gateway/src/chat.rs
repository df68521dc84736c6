//! `POST /v1/chat/completions`: OpenAI wire request → `Call` → the router
//! → OpenAI wire response, whole or as server-sent events.
//!
//! What the client controls is the workload (the `model` field, or the
//! `x-routec-workload` header) and the request itself. Where the call goes
//! — provider, model, URL — comes only from the policy: fields the wire
//! format does not model (`base_url`, OpenRouter's `provider`, …) are
//! dropped by `request_from_wire`, and no client header reaches an
//! upstream request, which the adapters build from scratch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Extension;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use providers::openai_wire::{ChunkEncoder, WireError, request_from_wire, response_to_wire};
use providers::{ChatRequest, ChatResponse, StreamEvent};
use router_core::DataClass;
use router_runtime::{Call, DecisionId, RouteError, Routed, RoutedStream, Served};
use tokio::sync::mpsc::error::SendTimeoutError;
use tracing::Instrument as _;

use crate::auth::{Caller, Pinned};
use crate::body::read_chat_request;
use crate::error::{ApiError, Code, Shape};
use crate::server::AppState;
use crate::trace::RequestTrace;

/// `x-routec-workload`: the workload, overriding the body's `model`.
pub(crate) static WORKLOAD: HeaderName = HeaderName::from_static("x-routec-workload");
/// `x-routec-data-class`: raises the call's data class (never lowers it).
pub(crate) static DATA_CLASS: HeaderName = HeaderName::from_static("x-routec-data-class");
/// `x-routec-target`: the `provider/model` that answered.
pub(crate) static TARGET: HeaderName = HeaderName::from_static("x-routec-target");
/// `x-routec-attempts`: upstream calls made, retries included.
pub(crate) static ATTEMPTS: HeaderName = HeaderName::from_static("x-routec-attempts");
/// `x-routec-policy-hash`: the policy that decided.
pub(crate) static POLICY_HASH: HeaderName = HeaderName::from_static("x-routec-policy-hash");
/// `x-routec-served`: `fresh`, `joined` or `replayed` (idempotency).
pub(crate) static SERVED: HeaderName = HeaderName::from_static("x-routec-served");
/// `Idempotency-Key`.
static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The longest `Idempotency-Key` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

pub(crate) async fn completions(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(Pinned(generation)): Extension<Pinned>,
    request: Request,
) -> Response {
    // The headers by reference: axum's `HeaderMap` extractor clones them.
    let (parts, body) = request.into_parts();
    let mut trace = app.traces.as_ref().map(|t| t.start(&parts.headers, &generation));
    let result = handle(&app, &caller, &generation, &parts.headers, body, &mut trace).await;
    finish(result, &caller, &generation, Shape::OpenAi, trace)
}

/// How every API handler ends: an error is logged, noted in the trace and
/// answered in the endpoint's `shape`; every answer says which policy
/// decided; the trace (when traces are on and a stream did not take it)
/// records the status.
pub(crate) fn finish(
    result: Result<Response, ApiError>,
    caller: &Caller,
    generation: &crate::live::Generation,
    shape: Shape,
    mut trace: Option<Box<RequestTrace>>,
) -> Response {
    let mut response = match result {
        Ok(response) => response,
        Err(e) => {
            log_error(caller, &e);
            if let Some(t) = &mut trace {
                t.failed(&e);
            }
            e.into_shaped_response(shape)
        }
    };
    response
        .headers_mut()
        .insert(POLICY_HASH.clone(), generation.policy_hash_header().clone());
    if let Some(mut t) = trace {
        t.status(response.status());
    }
    response
}

/// A workload the policy does not have (or the caller may not call), as
/// OpenAI answers an unknown model.
pub(crate) fn unknown_workload(workload: &str) -> ApiError {
    ApiError::new(Code::NotFound, format!("no workload `{workload}` in the policy"))
        .with_code("unknown_workload")
        .param("model")
}

async fn handle(
    app: &AppState,
    caller: &Caller,
    generation: &crate::live::Generation,
    headers: &HeaderMap,
    body: Body,
    trace: &mut Option<Box<RequestTrace>>,
) -> Result<Response, ApiError> {
    let wire = read_chat_request(headers, body, app.limits, app.body_timeout).await?;
    let include_usage = wire.stream_options.as_ref().is_some_and(|o| o.include_usage);
    let (model, request) = request_from_wire(wire).map_err(|e| {
        // Only the offending parameter differs; every variant is a 400.
        let param = match e {
            WireError::UnknownToolChoice(_) => "tool_choice",
            _ => "messages",
        };
        ApiError::new(Code::InvalidRequest, e.to_string()).param(param)
    })?;
    if let Some(t) = trace {
        t.requested(headers, &model);
    }
    let answer = route(app, caller, generation, headers, model, request).await?;
    if let Some(t) = trace {
        t.answered(&answer);
    }
    match answer {
        Answer::Stream(reply) => {
            let encoder = ChunkEncoder::new(
                format!("chatcmpl-{}", reply.id),
                target_model(&reply.target),
                unix_now(),
                include_usage,
            );
            Ok(stream_response(
                reply,
                OpenAiSse { encoder },
                app.client_idle,
                trace.take(),
            ))
        }
        Answer::Whole(reply) => {
            let wire = response_to_wire(&reply.value, &format!("chatcmpl-{}", reply.id), unix_now());
            json_response(&wire, reply.headers)
        }
    }
}

/// What the router (or the response cache) answered: whole, or a stream
/// under way.
pub(crate) enum Answer {
    /// A whole answer.
    Whole(Reply<ChatResponse>),
    /// A stream that has started.
    Stream(Reply<Events>),
}

/// An answer and what the client is told about it.
pub(crate) struct Reply<T> {
    /// The answer.
    pub(crate) value: T,
    /// The `provider/model` that gave it.
    pub(crate) target: String,
    /// The id behind the answer's own (`chatcmpl-…`, `msg_…`): the decision
    /// id, or `cache` and the cache key's first digits on a hit.
    pub(crate) id: String,
    /// The `x-routec-*` response headers.
    pub(crate) headers: HeaderMap,
}

impl<T> Reply<T> {
    fn routed(routed: Routed<T>) -> Self {
        let mut headers = HeaderMap::new();
        routed_headers(&mut headers, &routed);
        Reply {
            value: routed.value,
            id: routed.decision_id.to_string(),
            target: routed.target,
            headers,
        }
    }
}

/// A stream's events: the router's, the same recorded into the response
/// cache, or a cached answer replayed.
pub(crate) enum Events {
    /// Straight from the router.
    Routed(RoutedStream),
    /// From the router, stored in the cache when it ends whole.
    Recording(crate::cache::Recording<RoutedStream>),
    /// A cached answer.
    Replay(std::vec::IntoIter<Result<StreamEvent, RouteError>>),
}

impl futures::Stream for Events {
    type Item = Result<StreamEvent, RouteError>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        match self.get_mut() {
            Events::Routed(s) => s.poll_next_unpin(cx),
            Events::Recording(s) => s.poll_next_unpin(cx),
            Events::Replay(events) => std::task::Poll::Ready(events.next()),
        }
    }
}

/// `x-routec-cache`: `hit` or `miss` on a workload with `cache`; a request
/// sending `bypass` neither reads nor fills the cache.
pub(crate) static CACHE: HeaderName = HeaderName::from_static("x-routec-cache");

/// What the cache does for one call.
struct CachePlan {
    key: crate::cache::CacheKey,
    ttl: Duration,
    cache: Arc<crate::cache::ResponseCache>,
}

/// Routes a normalised request for `caller`, whatever wire format it came
/// in: the workload is `model` or the `x-routec-workload` header, the
/// caller's tenant must be allowed it, and the request headers give the
/// data class and idempotency key. Both endpoints share this, so both
/// route, budget and refuse alike.
pub(crate) async fn route(
    app: &AppState,
    caller: &Caller,
    generation: &crate::live::Generation,
    headers: &HeaderMap,
    model: String,
    request: ChatRequest,
) -> Result<Answer, ApiError> {
    let (workload, workload_id) = workload_for(caller, generation, headers, model)?;
    let policy = generation.policy();
    let data_class = data_class(headers)?;
    // Only workloads with `cache D` pay for a key; everything else passes by.
    let plan = match workload_id.and_then(|id| policy.response_cache_ttl(id).map(|ttl| (id, ttl))) {
        Some((id, ttl)) if !bypasses_cache(headers)? => Some(CachePlan {
            key: crate::cache::CacheKey::of(
                &policy.workload(id).name,
                caller.tenant().map(|t| t.name()),
                data_class,
                &request,
            ),
            ttl,
            cache: Arc::clone(&app.cache),
        }),
        _ => None,
    };
    if let Some(plan) = &plan
        && let Some(hit) = plan.cache.get(&plan.key).await
    {
        tracing::info!(tenant = caller.label(), workload = %workload, upstream = %hit.target, "answered from the cache");
        let mut headers = HeaderMap::new();
        set(&mut headers, &TARGET, &hit.target);
        headers.insert(ATTEMPTS.clone(), HeaderValue::from(0u32));
        headers.insert(SERVED.clone(), HeaderValue::from_static("cached"));
        headers.insert(CACHE.clone(), HeaderValue::from_static("hit"));
        let id = format!("cache{}", plan.key.short());
        return Ok(if request.stream {
            let events = Events::Replay(crate::cache::replay(&hit.response).into_iter());
            Answer::Stream(Reply {
                value: events,
                target: hit.target,
                id,
                headers,
            })
        } else {
            Answer::Whole(Reply {
                value: hit.response,
                target: hit.target,
                id,
                headers,
            })
        });
    }
    let call = Call {
        workload,
        user: request.user.clone(),
        metadata: Vec::new(),
        data_class,
        idempotency_key: idempotency_key(headers)?.map(|k| scoped_key(caller, k)),
        budget_scope: caller.tenant().map(|t| t.name().to_owned()),
        request,
    };
    let router = &generation.router;
    if call.request.stream {
        let workload = call.workload.clone();
        let routed = router.stream(call).await.map_err(|e| failed(app, caller, &e))?;
        note_owner(app, caller, routed.decision_id);
        tracing::info!(
            tenant = caller.label(), workload = %workload, upstream = %routed.target,
            attempts = routed.attempts, decision_id = %routed.decision_id, "stream started"
        );
        let mut reply = Reply::routed(routed);
        let events = match plan {
            None => Events::Routed(reply.value),
            Some(plan) => {
                reply.headers.insert(CACHE.clone(), HeaderValue::from_static("miss"));
                let fill = crate::cache::Fill::new(plan.cache, plan.key, plan.ttl, reply.target.clone());
                Events::Recording(crate::cache::Recording::new(reply.value, fill))
            }
        };
        Ok(Answer::Stream(Reply {
            value: events,
            target: reply.target,
            id: reply.id,
            headers: reply.headers,
        }))
    } else {
        let routed = router.complete(call).await.map_err(|e| failed(app, caller, &e))?;
        note_owner(app, caller, routed.decision_id);
        tracing::info!(
            tenant = caller.label(), upstream = %routed.target, attempts = routed.attempts,
            decision_id = %routed.decision_id, "answered"
        );
        let mut reply = Reply::routed(routed);
        if let Some(plan) = plan {
            reply.headers.insert(CACHE.clone(), HeaderValue::from_static("miss"));
            let cached = crate::cache::Cached {
                target: reply.target.clone(),
                response: reply.value.clone(),
            };
            plan.cache.put_now(plan.key, &cached, plan.ttl).await;
        }
        Ok(Answer::Whole(reply))
    }
}

/// The call's workload: `model`, or the `x-routec-workload` header, and
/// its id when the policy has it. A workload the caller's tenant may not
/// call is answered as unknown.
pub(crate) fn workload_for(
    caller: &Caller,
    generation: &crate::live::Generation,
    headers: &HeaderMap,
    model: String,
) -> Result<(String, Option<router_core::WorkloadId>), ApiError> {
    let workload = match headers.get(&WORKLOAD) {
        Some(v) => v
            .to_str()
            .map_err(|_| ApiError::new(Code::InvalidRequest, "`x-routec-workload` is not text"))?
            .to_owned(),
        None => model,
    };
    let policy = generation.policy();
    let workload_id = policy.workload_id(&workload);
    if let (Some(tenant), Some(id)) = (caller.tenant(), workload_id)
        && !tenant.may_call(policy, &policy.workload(id).name)
    {
        let w = policy.workload(id);
        // Answered as if the workload did not exist, as OpenAI answers a
        // model the key has no access to; the log says why.
        tracing::info!(tenant = tenant.name(), workload = %w.name, "workload not allowed for this tenant");
        return Err(unknown_workload(&workload));
    }
    Ok((workload, workload_id))
}

/// Whether the request asks to pass the cache by (`x-routec-cache: bypass`).
fn bypasses_cache(headers: &HeaderMap) -> Result<bool, ApiError> {
    match headers.get(&CACHE).map(HeaderValue::as_bytes) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case(b"bypass") => Ok(true),
        Some(_) => Err(ApiError::new(
            Code::InvalidRequest,
            "`x-routec-cache` takes only `bypass`",
        )),
    }
}

/// A whole answer as JSON, with the `x-routec-*` headers.
pub(crate) fn json_response<T: serde::Serialize>(wire: &T, mut headers: HeaderMap) -> Result<Response, ApiError> {
    let body =
        serde_json::to_vec(wire).map_err(|_| ApiError::new(Code::Internal, "the answer could not be encoded"))?;
    // The reply's own header map becomes the response's: one map per answer.
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut response = Response::new(Body::from(body));
    *response.headers_mut() = headers;
    Ok(response)
}

/// The model part of a `provider/model` target.
pub(crate) fn target_model(target: &str) -> &str {
    target.split_once('/').map_or(target, |(_, m)| m)
}

pub(crate) fn data_class(headers: &HeaderMap) -> Result<Option<DataClass>, ApiError> {
    let Some(v) = headers.get(&DATA_CLASS) else {
        return Ok(None);
    };
    let v = v.to_str().unwrap_or_default().trim();
    DataClass::ALL
        .into_iter()
        .find(|c| c.as_str().eq_ignore_ascii_case(v))
        .map(Some)
        .ok_or_else(|| {
            ApiError::new(
                Code::InvalidRequest,
                "`x-routec-data-class` must be `public`, `internal` or `private`",
            )
        })
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(v) = headers.get(&IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    match v.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY => Ok(Some(k.to_owned())),
        _ => Err(ApiError::new(
            Code::InvalidRequest,
            format!("`Idempotency-Key` must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"),
        )),
    }
}

/// An idempotency key in the caller's tenant's own namespace: another
/// tenant's `k1` is a different key, so tenants can neither block nor
/// detect each other's keys. The tenant's length comes first, so no
/// choice of names and keys makes two tenants' keys equal.
fn scoped_key(caller: &Caller, key: String) -> String {
    match caller.tenant() {
        None => key,
        Some(t) => format!("{}:{}:{key}", t.name().len(), t.name()),
    }
}

/// Remembers the tenant a decision was made for (see `owners.rs`).
pub(crate) fn note_owner(app: &AppState, caller: &Caller, id: DecisionId) {
    if let Some(t) = caller.tenant() {
        app.live.owners.note(id, t.shared_name());
    }
}

/// The router's error as an answer, its decision noted for the caller.
pub(crate) fn failed(app: &AppState, caller: &Caller, e: &router_runtime::RouteError) -> ApiError {
    if let Some(id) = e.decision_id() {
        note_owner(app, caller, id);
    }
    ApiError::route(e)
}

pub(crate) fn log_error(caller: &Caller, e: &ApiError) {
    if e.status().is_server_error() {
        tracing::warn!(tenant = caller.label(), status = e.status().as_u16(), code = e.code(), decision_id = ?e.decision().map(|d| d.to_string()), "{}", e.message());
    } else {
        tracing::info!(tenant = caller.label(), status = e.status().as_u16(), code = e.code(), decision_id = ?e.decision().map(|d| d.to_string()), "{}", e.message());
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Sets a header from text that comes from the policy (names may use any
/// script, so bytes outside ASCII are allowed as `obs-text`).
fn set(headers: &mut HeaderMap, name: &HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
        headers.insert(name.clone(), v);
    }
}

pub(crate) fn routed_headers<T>(headers: &mut HeaderMap, routed: &Routed<T>) {
    set(headers, &TARGET, &routed.target);
    headers.insert(ATTEMPTS.clone(), HeaderValue::from(routed.attempts));
    set(headers, &crate::error::DECISION_HEADER, &routed.decision_id.to_string());
    let served = match routed.served {
        Served::Fresh => "fresh",
        Served::Joined => "joined",
        Served::Replayed => "replayed",
    };
    headers.insert(SERVED.clone(), HeaderValue::from_static(served));
}

/// The answer as `text/event-stream`: one `data:` line per chunk, then
/// `data: [DONE]`; an error after the first event is one `data:` line in
/// the error shape (the `openai` SDKs raise it) and no `[DONE]`, so no
/// client mistakes a broken answer for a whole one.
///
/// Backpressure: a task per stream moves chunks from the router's stream
/// into a one-chunk channel that the response body reads. When the client
/// stops reading, hyper stops taking chunks, the channel stays full and
/// the task stops pulling from the upstream, so a stream holds one chunk
/// here (plus the socket's capped send buffer, see `server.rs`). If the
/// client takes nothing for `client_idle`, the stream is ended: the
/// upstream call is cancelled and its spend committed, and the response is
/// aborted rather than ended cleanly.
///
/// `trace`, when traces are on, is ended with the stream (see `trace.rs`).
pub(crate) fn stream_response<W: SseWriter>(
    reply: Reply<Events>,
    writer: W,
    client_idle: Duration,
    trace: Option<Box<RequestTrace>>,
) -> Response {
    let headers = reply.headers;
    let mut state = Sse {
        events: reply.value,
        writer,
        finished: false,
        target: reply.target,
        trace,
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let cut = Arc::new(AtomicBool::new(false));
    let cut_by_task = Arc::clone(&cut);
    tokio::spawn(async move {
        loop {
            let chunk = tokio::select! {
                biased;
                // The client went away: drop the upstream stream now.
                () = tx.closed() => return,
                chunk = state.next_chunk() => chunk,
            };
            let Some(chunk) = chunk else { return };
            match tx.send_timeout(chunk, client_idle).await {
                Ok(()) => {}
                Err(SendTimeoutError::Timeout(_)) => {
                    tracing::warn!(
                        upstream = %state.target, idle_ms = u64::try_from(client_idle.as_millis()).unwrap_or(u64::MAX),
                        "the client stopped reading; stream ended"
                    );
                    cut_by_task.store(true, Ordering::Release);
                    return;
                }
                Err(SendTimeoutError::Closed(_)) => return,
            }
        }
    }
    .in_current_span());
    let body = futures::stream::unfold(Some(rx), move |rx| {
        let cut = Arc::clone(&cut);
        async move {
            let mut rx = rx?;
            match rx.recv().await {
                Some(chunk) => Some((Ok(chunk), Some(rx))),
                // An abort, not a clean end: the client sees a broken transfer.
                None if cut.load(Ordering::Acquire) => {
                    Some((Err(std::io::Error::other("the client stopped reading")), None))
                }
                None => None,
            }
        }
    });
    let mut response = Response::new(Body::from_stream(body));
    let h = response.headers_mut();
    h.extend(headers);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Writes one wire format's server-sent events.
pub(crate) trait SseWriter: Send + 'static {
    /// Appends the SSE text for `event` to `out` (the terminator after `Done`).
    fn event(&mut self, event: &StreamEvent, out: &mut String);
    /// The SSE text of an error after the stream started.
    fn error(&self, e: &ApiError) -> String;
}

/// OpenAI's chunks: `data: {chunk}` lines, then `data: [DONE]`.
struct OpenAiSse {
    encoder: ChunkEncoder,
}

impl SseWriter for OpenAiSse {
    fn event(&mut self, event: &StreamEvent, out: &mut String) {
        for chunk in self.encoder.encode(event) {
            out.push_str("data: ");
            out.push_str(&serde_json::to_string(&chunk).unwrap_or_default());
            out.push_str("\n\n");
        }
        if matches!(event, StreamEvent::Done { .. }) {
            out.push_str("data: [DONE]\n\n");
        }
    }

    fn error(&self, e: &ApiError) -> String {
        e.sse_event()
    }
}

struct Sse<W> {
    events: Events,
    writer: W,
    finished: bool,
    target: String,
    trace: Option<Box<RequestTrace>>,
}

impl<W: SseWriter> Sse<W> {
    /// The next non-empty piece of the body, or `None` at the end.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        while !self.finished {
            let mut out = String::new();
            match self.events.next().await {
                Some(Ok(event)) => {
                    if let Some(t) = &mut self.trace {
                        t.event(&event);
                    }
                    self.writer.event(&event, &mut out);
                    if matches!(event, StreamEvent::Done { .. }) {
                        self.finished = true;
                        tracing::debug!(upstream = %self.target, "stream finished");
                    }
                }
                Some(Err(e)) => {
                    self.finished = true;
                    let api = ApiError::route(&e);
                    if let Some(t) = &mut self.trace {
                        t.broke(api.code());
                    }
                    tracing::warn!(upstream = %self.target, code = api.code(), "stream broke: {}", api.message());
                    out = self.writer.error(&api);
                }
                None => {
                    // The router ends every stream with `Done` or an error;
                    // say so rather than end a short answer quietly.
                    self.finished = true;
                    let e = ApiError::new(Code::Internal, "the answer ended before it was complete");
                    out = self.writer.error(&e);
                }
            }
            if !out.is_empty() {
                return Some(Bytes::from(out));
            }
        }
        None
    }
}
