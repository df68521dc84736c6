//! Hop-by-hop headers, stripped at the edge in both directions.
//!
//! Why: `Connection`, `Keep-Alive`, `TE`, `Upgrade`, `Proxy-*` and the
//! headers a `Connection` header names describe one TCP hop, not the
//! request (RFC 9110 §7.6.1). The gateway builds upstream requests from
//! scratch, so none could leak today; stripping them here keeps it so if
//! a handler ever passes headers on, and keeps a client from steering the
//! connection handling of anything behind it. hyper sets the framing
//! headers of our responses itself, after this layer.

use std::task::{Context, Poll};

use axum::http::{HeaderMap, HeaderName, Request, Response, header};
use futures::TryFutureExt;
use futures::future::MapOk;
use tower::{Layer, Service};

static HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Removes hop-by-hop headers, and those `Connection` names, from `headers`.
pub(crate) fn strip(headers: &mut HeaderMap) {
    // Most messages carry none: one pass over the names present instead of
    // sixteen removals, each a hash and a probe, on every request and answer.
    if !headers.keys().any(|name| HOP_BY_HOP.contains(name)) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// Adds [`StripHopByHop`] around a service.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct StripHopByHopLayer;

impl<S> Layer<S> for StripHopByHopLayer {
    type Service = StripHopByHop<S>;

    fn layer(&self, inner: S) -> StripHopByHop<S> {
        StripHopByHop { inner }
    }
}

/// Strips hop-by-hop headers from the request before the inner service
/// sees it, and from its response.
#[derive(Clone, Debug)]
pub(crate) struct StripHopByHop<S> {
    inner: S,
}

impl<S, B, R> Service<Request<B>> for StripHopByHop<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = MapOk<S::Future, fn(Response<R>) -> Response<R>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        strip(req.headers_mut());
        // A named future, not a boxed one: no allocation per request.
        self.inner.call(req).map_ok(stripped)
    }
}

fn stripped<R>(mut response: Response<R>) -> Response<R> {
    strip(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_the_fixed_set_and_what_connection_names() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "keep-alive, X-Secret-Hop".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("x-secret-hop", "1".parse().unwrap());
        h.insert(header::UPGRADE, "websocket".parse().unwrap());
        h.insert(header::PROXY_AUTHORIZATION, "Basic abc".parse().unwrap());
        h.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        strip(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key(header::CONTENT_TYPE));
    }
}
