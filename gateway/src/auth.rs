//! Authentication as a tower layer: `Authorization: Bearer <key>` → the
//! tenant, or a 401 before any handler runs.
//!
//! Why a layer: every `/v1` endpoint needs the same answer to "who is
//! calling" from the same generation of keys, and a handler that forgets
//! to ask must not exist. The layer also pins the generation (policy and
//! keys) for the whole request, so a reload mid-request cannot authorise
//! against one keys file and route by another policy, and it removes the
//! `Authorization` header from the request: nothing downstream can log or
//! forward the client's key.
//!
//! The Anthropic endpoint takes the key in `x-api-key` too (as Anthropic's
//! SDKs send it) and answers a refusal in Anthropic's error shape.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, Request, header};
use axum::response::Response;
use futures::future::{Either, Ready, ready};
use tower::{Layer, Service};

use crate::error::{ApiError, Code, Shape};
use crate::keys::Tenant;
use crate::live::{Generation, Live};

/// Who is calling, as the auth layer found out.
#[derive(Clone, Debug)]
pub(crate) enum Caller {
    /// No keys file: everyone is let in.
    Open,
    /// A key of this tenant.
    Tenant(Arc<Tenant>),
}

impl Caller {
    pub(crate) fn tenant(&self) -> Option<&Arc<Tenant>> {
        match self {
            Caller::Open => None,
            Caller::Tenant(t) => Some(t),
        }
    }

    /// The tenant's name for log lines (`-` when open).
    pub(crate) fn label(&self) -> &str {
        self.tenant().map_or("-", |t| t.name())
    }
}

/// The generation a request was authenticated against; handlers use it
/// for everything else.
#[derive(Clone)]
pub(crate) struct Pinned(pub(crate) Arc<Generation>);

/// Adds [`Auth`] around a service.
#[derive(Clone, Debug)]
pub(crate) struct AuthLayer {
    live: Arc<Live>,
    shape: Shape,
    /// Whether `x-api-key` is a key too (Anthropic's header).
    x_api_key: bool,
}

/// `x-api-key`: Anthropic's key header.
static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

impl AuthLayer {
    /// For endpoints that speak OpenAI's format.
    pub(crate) fn new(live: Arc<Live>) -> Self {
        AuthLayer {
            live,
            shape: Shape::OpenAi,
            x_api_key: false,
        }
    }

    /// For the endpoints both SDKs call (`GET /v1/models`): either key
    /// header; a refusal has OpenAI's shape.
    pub(crate) fn either(live: Arc<Live>) -> Self {
        AuthLayer {
            live,
            shape: Shape::OpenAi,
            x_api_key: true,
        }
    }

    /// For the endpoint that speaks Anthropic's format: `x-api-key` is a
    /// key too, and a refusal has Anthropic's shape.
    pub(crate) fn anthropic(live: Arc<Live>) -> Self {
        AuthLayer {
            live,
            shape: Shape::Anthropic,
            x_api_key: true,
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            live: Arc::clone(&self.live),
            shape: self.shape,
            x_api_key: self.x_api_key,
        }
    }
}

/// Answers 401 unless the request carries a key of the current keys file
/// (or the gateway runs open); otherwise passes it on with a [`Caller`] and
/// the [`Pinned`] generation in its extensions.
#[derive(Clone, Debug)]
pub(crate) struct Auth<S> {
    inner: S,
    live: Arc<Live>,
    shape: Shape,
    x_api_key: bool,
}

impl<S> Service<Request<Body>> for Auth<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let generation = self.live.current();
        let caller = match authenticate(&generation, req.headers(), self.x_api_key) {
            Ok(caller) => caller,
            Err(e) => {
                tracing::info!(code = e.code(), "request refused: {}", e.message());
                return Either::Left(ready(Ok(e.into_shaped_response(self.shape))));
            }
        };
        req.headers_mut().remove(header::AUTHORIZATION);
        req.headers_mut().remove(&X_API_KEY);
        req.extensions_mut().insert(caller);
        req.extensions_mut().insert(Pinned(generation));
        Either::Right(self.inner.call(req))
    }
}

fn authenticate(generation: &Generation, headers: &HeaderMap, x_api_key: bool) -> Result<Caller, ApiError> {
    let Some(keys) = &generation.keys else {
        return Ok(Caller::Open);
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, key) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
        })
        .filter(|k| !k.is_empty());
    let presented = match x_api_key {
        false => presented,
        true => presented.or_else(|| {
            headers
                .get(&X_API_KEY)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|k| !k.is_empty())
        }),
    };
    let Some(key) = presented else {
        let how = match x_api_key {
            false => "no API key: send `Authorization: Bearer <key>`",
            true => "no API key: send `x-api-key: <key>` or `Authorization: Bearer <key>`",
        };
        return Err(ApiError::new(Code::InvalidApiKey, how));
    };
    // The message never quotes the key, not even a prefix of it.
    keys.tenant(key)
        .map(|t| Caller::Tenant(Arc::clone(t)))
        .ok_or_else(|| ApiError::new(Code::InvalidApiKey, "invalid API key"))
}
