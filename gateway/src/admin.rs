//! The endpoints around the chat one: models, decisions, budgets, health,
//! readiness and metrics.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth::{Caller, Pinned};
use crate::error::{ApiError, Code};
use crate::server::AppState;

/// `GET /v1/models`: the workloads (and their aliases) the caller may
/// call, as OpenAI models, so clients that list models before calling work.
pub(crate) async fn models(
    Extension(caller): Extension<Caller>,
    Extension(Pinned(g)): Extension<Pinned>,
    headers: axum::http::HeaderMap,
) -> Response {
    let policy = g.policy();
    // The `anthropic` SDKs send `anthropic-version`: they get Anthropic's
    // list shape, every other client OpenAI's.
    let anthropic = headers.contains_key("anthropic-version");
    let mut data = Vec::new();
    for w in &policy.workloads {
        if caller.tenant().is_some_and(|t| !t.may_call(policy, &w.name)) {
            continue;
        }
        for id in std::iter::once(&w.name).chain(&w.aliases) {
            data.push(if anthropic {
                json!({
                    "type": "model",
                    "id": id,
                    "display_name": id,
                    // A workload has no release date; the epoch, as
                    // OpenAI's list says `created: 0`.
                    "created_at": "1970-01-01T00:00:00Z",
                    "routec": {"workload": w.name},
                })
            } else {
                json!({
                    "id": id,
                    "object": "model",
                    "created": 0,
                    "owned_by": "routec",
                    "routec": {"workload": w.name},
                })
            });
        }
    }
    if anthropic {
        let first = data.first().map(|m| m["id"].clone()).unwrap_or_default();
        let last = data.last().map(|m| m["id"].clone()).unwrap_or_default();
        return json_response(
            StatusCode::OK,
            &json!({"data": data, "has_more": false, "first_id": first, "last_id": last}),
        );
    }
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}

#[derive(Debug, Deserialize)]
pub(crate) struct DecisionQuery {
    format: Option<String>,
}

/// `GET /v1/routec/decisions/{id}`: why a recent call went where it went
/// (JSON, or `?format=text` for the `routec explain` rendering). A tenant
/// sees only decisions made for it: another tenant's id is answered
/// exactly as an unknown one.
pub(crate) async fn decision(
    State(app): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(q): Query<DecisionQuery>,
) -> Response {
    let not_found = || {
        ApiError::new(
            Code::DecisionNotFound,
            format!("no decision `{id}`: unknown, or older than the gateway keeps (15 minutes)"),
        )
        .into_response()
    };
    let Ok(parsed) = id.parse() else {
        return not_found();
    };
    if let Some(t) = caller.tenant()
        && !app.live.owners.is_owned_by(parsed, t.name())
    {
        return not_found();
    }
    let Some((record, policy)) = app.live.decision(&parsed) else {
        return not_found();
    };
    if q.format.as_deref() == Some("text") {
        let mut response = record.render(&policy).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return response;
    }
    json_response(StatusCode::OK, &record.report(&policy))
}

/// `GET /v1/routec/budgets`: every limit's period, spend and halt; a
/// tenant sees the workloads it may call and its own budget.
pub(crate) async fn budgets(Extension(caller): Extension<Caller>, Extension(Pinned(g)): Extension<Pinned>) -> Response {
    let ledger = g.router.ledger();
    let statuses = match ledger.status().await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "budget status failed");
            let mut r = ApiError::new(Code::Internal, "the budget store could not be read").into_response();
            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            return r;
        }
    };
    let policy = g.policy();
    let visible: Vec<_> = statuses
        .into_iter()
        .filter(|s| match caller.tenant() {
            None => true,
            Some(t) => {
                s.workload == format!("scope:{}", t.name())
                    || (policy.workload_named(&s.workload).is_some() && t.may_call(policy, &s.workload))
            }
        })
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"store": ledger.store().describe(), "workloads": visible}),
    )
}

/// `GET /healthz`: the process answers.
pub(crate) async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

/// `GET /readyz`: a policy is loaded and the gateway is not draining.
pub(crate) async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    if app.live.draining.load(Ordering::Relaxed) {
        return json_response(StatusCode::SERVICE_UNAVAILABLE, &json!({"status": "draining"}));
    }
    let g = app.live.current();
    json_response(
        StatusCode::OK,
        &json!({"status": "ready", "policy_hash": g.policy().hash().to_string()}),
    )
}

/// `GET /metrics`: the router's metrics and the gateway's own, in the
/// Prometheus text format.
pub(crate) async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    let live = &app.live;
    let mut text = live.metrics().render();
    let r = &live.reloads;
    let _ = writeln!(
        text,
        "# HELP routec_policy_reloads_total Policy reloads, by result.\n# TYPE routec_policy_reloads_total counter"
    );
    for (result, n) in [("ok", &r.ok), ("unchanged", &r.unchanged), ("refused", &r.refused)] {
        let _ = writeln!(
            text,
            "routec_policy_reloads_total{{result=\"{result}\"}} {}",
            n.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        text,
        "# HELP routec_policy_info The policy serving now.\n# TYPE routec_policy_info gauge\nroutec_policy_info{{policy_hash=\"{}\"}} 1",
        live.current().policy().hash()
    );
    let (hits, misses, written, size) = app.cache.counts();
    let _ = writeln!(
        text,
        "# HELP routec_response_cache_hits_total Calls answered from the response cache.\n\
         # TYPE routec_response_cache_hits_total counter\nroutec_response_cache_hits_total {hits}\n\
         # HELP routec_response_cache_misses_total Calls of cached workloads the cache could not answer.\n\
         # TYPE routec_response_cache_misses_total counter\nroutec_response_cache_misses_total {misses}\n\
         # HELP routec_response_cache_written_bytes_total Bytes of answers stored in the response cache.\n\
         # TYPE routec_response_cache_written_bytes_total counter\nroutec_response_cache_written_bytes_total {written}\n\
         # HELP routec_response_cache_bytes Bytes held by the in-memory response cache (0 with redis).\n\
         # TYPE routec_response_cache_bytes gauge\nroutec_response_cache_bytes {size}"
    );
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Unknown paths.
pub(crate) async fn not_found() -> Response {
    ApiError::new(Code::NotFound, "no such endpoint").into_response()
}

/// Known paths, wrong method.
pub(crate) async fn method_not_allowed() -> Response {
    ApiError::new(Code::MethodNotAllowed, "this endpoint does not take that method").into_response()
}

fn json_response<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut r = (status, body).into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        Err(_) => ApiError::new(Code::Internal, "the answer could not be encoded").into_response(),
    }
}
