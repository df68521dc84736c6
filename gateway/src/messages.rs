//! `POST /v1/messages`: Anthropic's Messages wire request → `Call` → the
//! router → a Messages answer, whole or as Anthropic's event stream.
//!
//! Why a second endpoint and not a translation proxy in front: the
//! `anthropic` SDKs, and the tools built on them, then route through the
//! policy by changing only their base URL, to any target — an
//! OpenAI-format upstream included — with the same workloads, keys,
//! budgets, fallback and headers as chat completions (`chat::route`).
//! Every error, ours or the router's, leaves in Anthropic's error shape.

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use providers::StreamEvent;
use providers::anthropic_wire::{EventEncoder, MessagesRequest, request_from_wire, response_to_wire};

use crate::auth::{Caller, Pinned};
use crate::body::{parse_json, read_json_body};
use crate::chat::{Answer, SseWriter, finish, json_response, route, stream_response, target_model};
use crate::error::{ApiError, Code, Shape};
use crate::server::AppState;

pub(crate) async fn messages(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(Pinned(generation)): Extension<Pinned>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let mut trace = app.traces.as_ref().map(|t| t.start(&parts.headers, &generation));
    let result = handle(&app, &caller, &generation, &parts.headers, body, &mut trace).await;
    finish(result, &caller, &generation, Shape::Anthropic, trace)
}

async fn handle(
    app: &AppState,
    caller: &Caller,
    generation: &crate::live::Generation,
    headers: &HeaderMap,
    body: Body,
    trace: &mut Option<Box<crate::trace::RequestTrace>>,
) -> Result<Response, ApiError> {
    let bytes = read_json_body(headers, body, app.limits, app.body_timeout).await?;
    let wire: MessagesRequest = parse_json(&bytes, app.limits.json_depth)?;
    let (model, request) =
        request_from_wire(wire).map_err(|e| ApiError::new(Code::InvalidRequest, e.to_string()).param("messages"))?;
    if let Some(t) = trace {
        t.requested(headers, &model);
    }
    let answer = route(app, caller, generation, headers, model, request).await?;
    if let Some(t) = trace {
        t.answered(&answer);
    }
    match answer {
        Answer::Stream(reply) => {
            let encoder = EventEncoder::new(format!("msg_{}", reply.id), target_model(&reply.target));
            Ok(stream_response(
                reply,
                AnthropicSse { encoder },
                app.client_idle,
                trace.take(),
            ))
        }
        Answer::Whole(reply) => {
            let wire = response_to_wire(&reply.value, &format!("msg_{}", reply.id));
            json_response(&wire, reply.headers)
        }
    }
}

/// `POST /v1/messages/count_tokens`: the input tokens of a Messages
/// request, as routec counts them when it routes and reserves budget (its
/// own estimator over the normalised request: text, framing, images,
/// tools), not a provider tokenizer's count. The workload must exist and be
/// the caller's, as for `/v1/messages`; nothing goes upstream.
pub(crate) async fn count_tokens(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(Pinned(generation)): Extension<Pinned>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let result = count(&app, &caller, &generation, &parts.headers, body).await;
    finish(result, &caller, &generation, Shape::Anthropic, None)
}

async fn count(
    app: &AppState,
    caller: &Caller,
    generation: &crate::live::Generation,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_json_body(headers, body, app.limits, app.body_timeout).await?;
    let wire: MessagesRequest = parse_json(&bytes, app.limits.json_depth)?;
    let (model, request) =
        request_from_wire(wire).map_err(|e| ApiError::new(Code::InvalidRequest, e.to_string()).param("messages"))?;
    let (workload, id) = crate::chat::workload_for(caller, generation, headers, model)?;
    if id.is_none() {
        return Err(crate::chat::unknown_workload(&workload));
    }
    let facts = router_runtime::Call::new(workload, request).request_facts();
    json_response(
        &serde_json::json!({ "input_tokens": facts.input_tokens }),
        HeaderMap::new(),
    )
}

/// Anthropic's events: `event: NAME` and `data: {json}` per event.
struct AnthropicSse {
    encoder: EventEncoder,
}

impl SseWriter for AnthropicSse {
    fn event(&mut self, event: &StreamEvent, out: &mut String) {
        let mut events = Vec::with_capacity(4);
        self.encoder.encode(event, &mut events);
        for (name, data) in events {
            out.push_str("event: ");
            out.push_str(name);
            out.push_str("\ndata: ");
            out.push_str(&data.to_string());
            out.push_str("\n\n");
        }
    }

    fn error(&self, e: &ApiError) -> String {
        e.anthropic_sse_event()
    }
}
