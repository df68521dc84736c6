//! OpenTelemetry traces of the gateway's calls (`routec serve
//! --otlp-endpoint URL`): one SERVER span per request, one CLIENT span per
//! attempt under it, exported over OTLP/HTTP in protobuf.
//!
//! Why built after the fact, from the decision record: the runtime already
//! records every attempt (target, outcome, the clause that moved on, when
//! it started and ended), so the attempt spans are made from that record
//! with explicit timestamps when the request ends, and the runtime's
//! attempt loop carries no tracing code. A request's span starts when its
//! handler starts and ends when the answer is sent, or, for a stream, when
//! the stream ends (whole, broken or abandoned by the client).
//!
//! Why nothing when the endpoint is not given: the handlers hold an
//! `Option` that is `None`, so no tracer, span, context or attribute is
//! made, and nothing is allocated on the request path.
//!
//! Export is the SDK's batch span processor: spans go into a bounded queue
//! (dropped when it is full) that a thread of its own sends in batches,
//! every `OTEL_BSP_SCHEDULE_DELAY` ms (5 s by default). A collector that is
//! down or slow costs requests nothing; its spans are dropped. Shutdown
//! flushes what is queued.
//!
//! Attributes follow the OpenTelemetry GenAI semantic conventions
//! (`gen_ai.*`), plus routec's own (`routec.*`); `docs/gateway.md`,
//! "Traces", lists them.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, StatusCode};
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use providers::{StreamEvent, Usage};
use router_core::{Adapter, Policy, TargetId};
use router_runtime::{AttemptRecord, DecisionId};

use crate::chat::{Answer, Reply, SERVED, WORKLOAD};
use crate::error::ApiError;
use crate::live::Generation;

/// The path OTLP/HTTP collectors take traces on.
const TRACES_PATH: &str = "/v1/traces";

/// The tracer and its exporter, for the gateway's lifetime.
pub(crate) struct Traces {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
}

impl std::fmt::Debug for Traces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traces").finish_non_exhaustive()
    }
}

/// The URL spans are posted to: `endpoint` as a collector's base URL
/// (`/v1/traces` added), or as given when it already ends in `/v1/traces`.
pub(crate) fn traces_url(endpoint: &str) -> Result<String, String> {
    let trimmed = endpoint.trim_end_matches('/');
    if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
        return Err(format!("`{endpoint}` is not an http:// or https:// URL"));
    }
    if trimmed.ends_with(TRACES_PATH) {
        Ok(trimmed.to_owned())
    } else {
        Ok(format!("{trimmed}{TRACES_PATH}"))
    }
}

impl Traces {
    /// An exporter to the collector at `endpoint` (see [`traces_url`]).
    pub(crate) fn new(endpoint: &str) -> Result<Self, String> {
        let url = traces_url(endpoint)?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url)
            .build()
            .map_err(|e| e.to_string())?;
        // `OTEL_SERVICE_NAME` (read by the SDK's resource detectors) wins.
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name("routec");
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        let tracer = provider.tracer("routec-gateway");
        Ok(Traces {
            provider,
            tracer,
            propagator: TraceContextPropagator::new(),
        })
    }

    /// The trace of one request, starting now, continuing the client's
    /// trace when the request carries a `traceparent`.
    pub(crate) fn start(self: &Arc<Self>, headers: &HeaderMap, generation: &Arc<Generation>) -> Box<RequestTrace> {
        Box::new(RequestTrace {
            parent: self.propagator.extract(&Headers(headers)),
            traces: Arc::clone(self),
            started: SystemTime::now(),
            generation: Arc::clone(generation),
            requested: None,
            routed_at: None,
            decision: None,
            target: None,
            served: "fresh",
            cached: false,
            stream: false,
            usage: None,
            status: StatusCode::OK,
            error: None,
            operation: "chat",
        })
    }

    /// Sends the spans still queued (blocks up to the SDK's timeout; run it
    /// off the async threads).
    pub(crate) fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "traces not all exported at shutdown");
        }
    }
}

/// Request headers as the propagator reads them.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(axum::http::HeaderName::as_str).collect()
    }
}

/// What is known of one request so far; its spans are made and queued for
/// export when it is dropped (the answer sent, or the stream over).
pub(crate) struct RequestTrace {
    traces: Arc<Traces>,
    parent: Context,
    started: SystemTime,
    generation: Arc<Generation>,
    /// The `model` (or `x-routec-workload`) the client asked for.
    requested: Option<String>,
    /// When the router returned: the attempts are placed back from here.
    routed_at: Option<SystemTime>,
    decision: Option<DecisionId>,
    target: Option<String>,
    /// `x-routec-served`: `fresh`, or an answer this request did not call
    /// for (`cached`, `joined`, `replayed`), which has no attempt spans.
    served: &'static str,
    cached: bool,
    /// A streamed answer: the request ends when the stream does.
    stream: bool,
    usage: Option<Usage>,
    status: StatusCode,
    error: Option<&'static str>,
    /// `gen_ai.operation.name`: `chat`, or `embeddings`.
    operation: &'static str,
}

impl RequestTrace {
    /// An embeddings request (`gen_ai.operation.name` `embeddings`).
    pub(crate) fn embeddings(&mut self) {
        self.operation = "embeddings";
    }

    /// What the router answered an embeddings request: its decision,
    /// target and input usage.
    pub(crate) fn embedded(&mut self, decision: DecisionId, target: &str, usage: Usage) {
        self.routed_at = Some(SystemTime::now());
        self.decision = Some(decision);
        self.target = Some(target.to_owned());
        self.usage = Some(usage);
    }

    /// The workload asked for: the header's, else the body's `model`.
    pub(crate) fn requested(&mut self, headers: &HeaderMap, model: &str) {
        let workload = headers.get(&WORKLOAD).and_then(|v| v.to_str().ok()).unwrap_or(model);
        self.requested = Some(workload.to_owned());
    }

    /// What the router (or the cache) answered.
    pub(crate) fn answered(&mut self, answer: &Answer) {
        match answer {
            Answer::Whole(reply) => {
                self.reply(reply);
                self.usage = Some(reply.value.usage);
            }
            Answer::Stream(reply) => {
                self.reply(reply);
                self.stream = true;
            }
        }
    }

    fn reply<T>(&mut self, reply: &Reply<T>) {
        self.routed_at = Some(SystemTime::now());
        // The reply's id is the decision's, or `cache…` for a cached answer.
        self.decision = reply.id.parse().ok();
        self.cached = self.decision.is_none();
        self.target = Some(reply.target.clone());
        self.served = match reply.headers.get(&SERVED).map(axum::http::HeaderValue::as_bytes) {
            Some(b"cached") => "cached",
            Some(b"joined") => "joined",
            Some(b"replayed") => "replayed",
            _ => "fresh",
        };
    }

    /// The request failed with `e` (before an answer, or instead of one).
    pub(crate) fn failed(&mut self, e: &ApiError) {
        if self.routed_at.is_none() {
            self.routed_at = Some(SystemTime::now());
        }
        self.decision = self.decision.or(e.decision());
        self.status = e.status();
        self.error = Some(e.code());
    }

    /// The response's status, when it is not an error's.
    pub(crate) fn status(&mut self, status: StatusCode) {
        self.status = status;
    }

    /// A streamed answer's event on its way to the client.
    pub(crate) fn event(&mut self, event: &StreamEvent) {
        if let StreamEvent::Usage(u) = event {
            self.usage = Some(*u);
        }
    }

    /// A stream that broke after it started, with the error's code.
    pub(crate) fn broke(&mut self, code: &'static str) {
        self.error = Some(code);
    }

    /// Makes the request's span and its attempts' spans, and queues them.
    fn export(&mut self) {
        let end = SystemTime::now().max(self.started);
        let policy = self.generation.policy();
        let record = self.decision.and_then(|id| self.generation.router.decision(&id));
        let workload = record
            .as_ref()
            .map(|r| r.workload().to_owned())
            .or_else(|| self.requested.clone())
            .unwrap_or_default();
        let target = self.target.as_deref().and_then(|t| target_id(policy, t));

        let mut attrs = vec![
            KeyValue::new("gen_ai.operation.name", self.operation),
            KeyValue::new("gen_ai.request.model", workload.clone()),
            KeyValue::new("routec.workload", workload.clone()),
            KeyValue::new("routec.policy_hash", policy.hash().to_string()),
            KeyValue::new("http.response.status_code", i64::from(self.status.as_u16())),
        ];
        if let Some(id) = self.decision {
            attrs.push(KeyValue::new("routec.decision_id", id.to_string()));
        }
        if let Some(r) = &record {
            attrs.push(KeyValue::new("routec.attempts", r.attempts().len() as i64));
        }
        if self.cached {
            attrs.push(KeyValue::new("routec.cache", "hit"));
        }
        if self.served != "fresh" {
            attrs.push(KeyValue::new("routec.served", self.served));
        }
        if let Some(label) = &self.target {
            attrs.push(KeyValue::new("routec.target", label.clone()));
            attrs.push(KeyValue::new(
                "gen_ai.response.model",
                crate::chat::target_model(label).to_owned(),
            ));
        }
        if let Some(t) = target {
            attrs.push(KeyValue::new("gen_ai.system", system(policy, t)));
        }
        if let Some(u) = self.usage {
            attrs.extend(usage_attrs(u));
            // A cached answer cost nothing.
            if !self.cached
                && let Some(t) = target
            {
                attrs.push(cost_attr(policy, t, u));
            }
        }
        if let Some(code) = self.error {
            attrs.push(KeyValue::new("error.type", code));
        }
        let tracer = &self.traces.tracer;
        let mut span = tracer
            .span_builder(format!("{} {workload}", self.operation))
            .with_kind(SpanKind::Server)
            .with_start_time(self.started)
            .with_attributes(attrs)
            .start_with_context(tracer, &self.parent);
        // A server span is an error for its own failures (5xx, a stream
        // that broke), not for a client's mistakes (4xx).
        if self.status.is_server_error() || (self.error.is_some() && self.status.is_success()) {
            span.set_status(Status::error(self.error.unwrap_or_default()));
        }
        let cx = Context::current_with_span(span);
        // A joined or replayed answer's attempts belong to the request
        // that made them (its own trace has them).
        if let Some(r) = &record
            && self.served == "fresh"
        {
            self.attempts(&cx, policy, &workload, r.attempts(), end);
        }
        cx.span().end_with_timestamp(end);
    }

    /// One CLIENT span per attempt, placed by the times the runtime
    /// recorded: offsets from the call's start, anchored so the last
    /// attempt ends when the router returned.
    fn attempts(&self, cx: &Context, policy: &Policy, workload: &str, attempts: &[AttemptRecord], end: SystemTime) {
        let routed_at = self.routed_at.unwrap_or(end);
        let last_end = attempts.last().map_or(Duration::ZERO, AttemptRecord::ended_after);
        let anchor = routed_at
            .checked_sub(last_end)
            .unwrap_or(self.started)
            .max(self.started);
        let tracer = &self.traces.tracer;
        for (i, a) in attempts.iter().enumerate() {
            let t = target_id(policy, a.target());
            let model = crate::chat::target_model(a.target()).to_owned();
            let start = (anchor + a.started_after()).min(end);
            let answered = a.error().is_none();
            // A streamed answer's call lasts until the stream ends.
            let streaming = answered && self.stream && i + 1 == attempts.len();
            let stop = if streaming {
                end
            } else {
                (anchor + a.ended_after()).min(end)
            };
            let mut attrs = vec![
                KeyValue::new("gen_ai.operation.name", self.operation),
                KeyValue::new("gen_ai.request.model", model.clone()),
                KeyValue::new("routec.workload", workload.to_owned()),
                KeyValue::new("routec.target", a.target().to_owned()),
                KeyValue::new("routec.retry", i64::from(a.retry())),
                KeyValue::new("routec.attempt.clause", a.clause().to_owned()),
            ];
            if let Some(t) = t {
                attrs.push(KeyValue::new("gen_ai.system", system(policy, t)));
            }
            match a.error() {
                None => {
                    attrs.push(KeyValue::new("routec.attempt.outcome", "answered"));
                    attrs.push(KeyValue::new("gen_ai.response.model", model.clone()));
                    if i + 1 == attempts.len()
                        && let Some(u) = self.usage
                    {
                        attrs.extend(usage_attrs(u));
                        if let Some(t) = t {
                            attrs.push(cost_attr(policy, t, u));
                        }
                    }
                }
                Some(e) => {
                    attrs.push(KeyValue::new("routec.attempt.outcome", e.code()));
                    attrs.push(KeyValue::new("error.type", e.code()));
                }
            }
            let mut span = tracer
                .span_builder(format!("{} {model}", self.operation))
                .with_kind(SpanKind::Client)
                .with_start_time(start)
                .with_attributes(attrs)
                .start_with_context(tracer, cx);
            if let Some(e) = a.error() {
                span.set_status(Status::error(e.code()));
            }
            span.end_with_timestamp(stop.max(start));
        }
    }
}

impl Drop for RequestTrace {
    fn drop(&mut self) {
        self.export();
    }
}

/// The target called `provider/model` in `policy`.
fn target_id(policy: &Policy, label: &str) -> Option<TargetId> {
    let (provider, model) = label.split_once('/')?;
    policy.target_named(provider, model)
}

/// `gen_ai.system`: the wire the target's provider speaks (an
/// OpenAI-compatible preset by its own name).
fn system(policy: &Policy, target: TargetId) -> String {
    match &policy.provider_of(target).adapter {
        Adapter::Openai => "openai".to_owned(),
        Adapter::Anthropic => "anthropic".to_owned(),
        Adapter::Gemini => "gemini".to_owned(),
        Adapter::OpenaiCompatible { preset: Some(p) } => p.clone(),
        Adapter::OpenaiCompatible { preset: None } => "openai_compatible".to_owned(),
        Adapter::Cli { .. } => "cli".to_owned(),
        Adapter::Mock => "mock".to_owned(),
    }
}

fn usage_attrs(u: Usage) -> [KeyValue; 2] {
    [
        KeyValue::new(
            "gen_ai.usage.input_tokens",
            i64::try_from(u.input_tokens).unwrap_or(i64::MAX),
        ),
        KeyValue::new(
            "gen_ai.usage.output_tokens",
            i64::try_from(u.output_tokens).unwrap_or(i64::MAX),
        ),
    ]
}

/// `routec.cost_usd`: dollars, from the target's price as budgets count it
/// (zero when the policy gives no price).
fn cost_attr(policy: &Policy, target: TargetId, u: Usage) -> KeyValue {
    let nanos = policy
        .target(target)
        .price
        .map_or(0, |p| p.cost(u.input_tokens, u.output_tokens).nanos());
    // Dollars for display (a double); budgets count exact nano-dollars.
    let usd = nanos as f64 / 1e9;
    KeyValue::new("routec.cost_usd", usd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_once() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318").as_deref(),
            Ok("http://127.0.0.1:4318/v1/traces")
        );
        assert_eq!(traces_url("http://c:4318/").as_deref(), Ok("http://c:4318/v1/traces"));
        assert_eq!(traces_url("https://c/v1/traces").as_deref(), Ok("https://c/v1/traces"));
        assert!(traces_url("c:4318").is_err());
    }
}
