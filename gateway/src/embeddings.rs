//! `POST /v1/embeddings`: OpenAI's embeddings request → `EmbedCall` → the
//! router → OpenAI's embeddings response.
//!
//! The workload (the `model` field, or `x-routec-workload`) must route to
//! models that `support embeddings`; keys, tenants, data classes and
//! budgets apply as for chat completions (`chat::workload_for`), and the
//! router falls back between embedding models as it does between chat
//! models. Vectors come back as floats or, when asked (the official SDKs
//! ask by default), as base64.

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use providers::openai_wire::{EmbeddingsRequest, EmbeddingsRequestError, EmbeddingsResponse};
use router_runtime::EmbedCall;

use crate::auth::{Caller, Pinned};
use crate::body::{parse_json, read_json_body};
use crate::chat::{data_class, failed, finish, json_response, note_owner, routed_headers, workload_for};
use crate::error::{ApiError, Code, Shape};
use crate::server::AppState;
use crate::trace::RequestTrace;

/// The most texts one request may carry: OpenAI's own limit.
pub(crate) const MAX_INPUTS: usize = 2048;

pub(crate) async fn embeddings(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Extension(Pinned(generation)): Extension<Pinned>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let mut trace = app.traces.as_ref().map(|t| {
        let mut t = t.start(&parts.headers, &generation);
        t.embeddings();
        t
    });
    let result = handle(&app, &caller, &generation, &parts.headers, body, &mut trace).await;
    finish(result, &caller, &generation, Shape::OpenAi, trace)
}

async fn handle(
    app: &AppState,
    caller: &Caller,
    generation: &crate::live::Generation,
    headers: &HeaderMap,
    body: Body,
    trace: &mut Option<Box<RequestTrace>>,
) -> Result<Response, ApiError> {
    let bytes = read_json_body(headers, body, app.limits, app.body_timeout).await?;
    let wire: EmbeddingsRequest = parse_json(&bytes, app.limits.json_depth)?;
    let (request, encoding) = wire.to_normalised().map_err(|e| {
        let param = match e {
            EmbeddingsRequestError::Encoding(_) => "encoding_format",
            EmbeddingsRequestError::TokenInput | EmbeddingsRequestError::Empty => "input",
        };
        ApiError::new(Code::InvalidRequest, e.to_string()).param(param)
    })?;
    if request.input.len() > MAX_INPUTS {
        return Err(ApiError::new(
            Code::InvalidRequest,
            format!(
                "`input` holds {} texts; at most {MAX_INPUTS} are accepted",
                request.input.len()
            ),
        )
        .param("input"));
    }
    if let Some(t) = trace {
        t.requested(headers, &wire.model);
    }
    let (workload, _) = workload_for(caller, generation, headers, wire.model)?;
    let call = EmbedCall {
        workload,
        // `Router::embed` takes the request's own `user` when none is given.
        user: None,
        metadata: Vec::new(),
        data_class: data_class(headers)?,
        budget_scope: caller.tenant().map(|t| t.name().to_owned()),
        request,
    };
    let routed = generation
        .router
        .embed(call)
        .await
        .map_err(|e| failed(app, caller, &e))?;
    note_owner(app, caller, routed.decision_id);
    if let Some(t) = trace {
        t.embedded(routed.decision_id, &routed.target, routed.value.usage);
    }
    tracing::info!(
        tenant = caller.label(), upstream = %routed.target, attempts = routed.attempts,
        decision_id = %routed.decision_id, inputs = routed.value.vectors.len(), "embedded"
    );
    let mut out = HeaderMap::new();
    routed_headers(&mut out, &routed);
    let wire = EmbeddingsResponse::from_normalised(&routed.value, &routed.value.model, encoding);
    json_response(&wire, out)
}
