//! Assembling the gateway: the live policy, the endpoints, the layers, the
//! listener, and a shutdown that drains.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use router_runtime::{BudgetStore, MemoryStore, Metrics, RouterBuilder};
use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::auth::AuthLayer;
use crate::body::Limits;
use crate::cache::ResponseCache;
use crate::error::{ApiError, Code};
use crate::hop::StripHopByHopLayer;
use crate::live::{Customize, Live, LoadError, PolicySource, ReloadOutcome};
use crate::{admin, chat, embeddings, messages};

/// Decisions kept for `/v1/routec/decisions/{id}` by default: enough to
/// look up any call of the last minutes at a team's usual rates, and at
/// ~3 KB of resident memory each under load, ~6 MB in all.
pub const DEFAULT_KEPT_DECISIONS: usize = 2_000;

/// The send buffer asked for each client socket (Linux doubles it): tens
/// of KB, enough for any stream's pace and a whole answer of most calls.
const CLIENT_SEND_BUFFER: usize = 32 * 1024;

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) live: Arc<Live>,
    pub(crate) limits: Limits,
    /// How long a request body may take to arrive, from its first read.
    pub(crate) body_timeout: Duration,
    /// How long a streaming client may take nothing before the stream ends.
    pub(crate) client_idle: Duration,
    /// The response cache of workloads with `cache D`.
    pub(crate) cache: Arc<ResponseCache>,
    /// OpenTelemetry traces; `None` (no tracing cost) without `--otlp-endpoint`.
    pub(crate) traces: Option<Arc<crate::trace::Traces>>,
}

/// Why the gateway could not start or keep serving.
#[derive(Debug, Error)]
pub enum StartError {
    /// The first policy or keys file was refused.
    #[error(transparent)]
    Load(LoadError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// No keys file, and an address other machines can reach.
    #[error(
        "refusing to listen on {addr} without a keys file: anyone who can reach it could spend your budget \
         (give `--keys FILE`, listen on 127.0.0.1, or pass `--allow-open` if this is what you want)"
    )]
    OpenOnPublicAddress {
        /// The address.
        addr: SocketAddr,
    },
    /// Accepting connections failed.
    #[error("serving failed: {0}")]
    Serve(std::io::Error),
    /// The response cache's Redis could not be reached.
    #[error("cannot reach the response cache's redis: {0}")]
    Cache(String),
    /// The Redis of shared idempotency keys could not be reached.
    #[error("cannot reach the idempotency keys' redis: {0}")]
    Idempotency(String),
    /// The OTLP trace exporter could not be set up.
    #[error("cannot export traces: {0}")]
    Traces(String),
    /// The file watcher could not be set up.
    #[error("cannot watch the policy files: {0}")]
    Watch(String),
}

/// Builds a [`Gateway`]; see [`Gateway::builder`].
pub struct GatewayBuilder {
    source: PolicySource,
    keys: Option<PathBuf>,
    store: Option<Arc<dyn BudgetStore>>,
    limits: Limits,
    body_timeout: Duration,
    client_idle: Duration,
    drain_timeout: Duration,
    decisions: (usize, Duration),
    customize: Option<Customize>,
    metrics_apart: bool,
    cache_bytes: u64,
    cache_redis: Option<String>,
    idempotency_redis: Option<String>,
    otlp_endpoint: Option<String>,
}

impl std::fmt::Debug for GatewayBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayBuilder")
            .field("source", &self.source)
            .field("keys", &self.keys)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl GatewayBuilder {
    /// Requires a key from this keys file on every `/v1` request (without
    /// one, the gateway runs open).
    #[must_use]
    pub fn keys_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.keys = Some(path.into());
        self
    }

    /// Where budgets live (default: in memory, this process only).
    #[must_use]
    pub fn budget_store(mut self, store: Arc<dyn BudgetStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Body size and JSON depth limits.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// How long a client may take to send its body (default 30 s).
    #[must_use]
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// How long a streaming client may read nothing before its stream is
    /// ended and the upstream call cancelled (default 60 s). Until then
    /// the gateway stops reading the upstream for it.
    #[must_use]
    pub fn client_idle_timeout(mut self, timeout: Duration) -> Self {
        self.client_idle = timeout;
        self
    }

    /// How long shutdown waits for requests in flight (default 30 s).
    #[must_use]
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// How many decisions `/v1/routec/decisions/{id}` keeps, and for how
    /// long (default 5,000 for 15 minutes). Each costs about 2.5 KB, so
    /// the default holds the gateway's memory near 25 MB under load; the
    /// runtime's own default (10,000) would add another 12.
    #[must_use]
    pub fn keep_decisions(mut self, capacity: usize, ttl: Duration) -> Self {
        self.decisions = (capacity, ttl);
        self
    }

    /// Serves `/metrics` only from [`Gateway::metrics_router`] (on an
    /// address only the scraper reaches), not beside the API.
    #[must_use]
    pub fn metrics_apart(mut self) -> Self {
        self.metrics_apart = true;
        self
    }

    /// The in-memory response cache's bound in bytes (default 64 MiB).
    #[must_use]
    pub fn response_cache_bytes(mut self, bytes: u64) -> Self {
        self.cache_bytes = bytes;
        self
    }

    /// Keeps the response cache in Redis at `url` (shared by every
    /// gateway on it) instead of in memory.
    #[must_use]
    pub fn response_cache_redis(mut self, url: impl Into<String>) -> Self {
        self.cache_redis = Some(url.into());
        self
    }

    /// Shares `Idempotency-Key`s through Redis at `url` (`?prefix=NAME` as
    /// for the budget store), so a key answered by one gateway replays on
    /// every other on it; see `docs/deploy.md`.
    #[must_use]
    pub fn idempotency_redis(mut self, url: impl Into<String>) -> Self {
        self.idempotency_redis = Some(url.into());
        self
    }

    /// Exports a trace of every chat and messages request over OTLP/HTTP
    /// (protobuf) to the collector at `endpoint`, e.g.
    /// `http://127.0.0.1:4318` (`/v1/traces` is added).
    #[must_use]
    pub fn otlp_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.otlp_endpoint = Some(endpoint.into());
        self
    }

    /// Adjusts the router of every generation (seeds, provider overrides).
    #[must_use]
    pub fn customize_router(mut self, f: impl Fn(RouterBuilder) -> RouterBuilder + Send + Sync + 'static) -> Self {
        self.customize = Some(Arc::new(f));
        self
    }

    /// Loads the policy (and keys) and builds the first router.
    ///
    /// # Errors
    /// [`StartError::Load`] when the policy fails `check`, the keys file is
    /// invalid, or the router cannot be built.
    pub async fn build(self) -> Result<Gateway, StartError> {
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let (capacity, ttl) = self.decisions;
        let user = self.customize;
        let idempotency = match &self.idempotency_redis {
            None => None,
            Some(url) => Some(
                router_runtime::RedisIdempotency::connect_url(url)
                    .await
                    .map_err(|e| StartError::Idempotency(e.to_string()))?,
            ),
        };
        let customize: Customize = Arc::new(move |b: RouterBuilder| {
            let b = b.decisions(capacity, ttl);
            // Every generation shares the keys: a reload keeps them.
            let b = match &idempotency {
                Some(store) => b.idempotency_store(store.clone()),
                None => b,
            };
            match &user {
                Some(f) => f(b),
                None => b,
            }
        });
        let live = Live::start(self.source, self.keys, store, Metrics::new(), Some(customize), capacity)
            .await
            .map_err(StartError::Load)?;
        let cache = match &self.cache_redis {
            None => ResponseCache::memory(self.cache_bytes),
            Some(url) => ResponseCache::redis(url)
                .await
                .map_err(|e| StartError::Cache(e.to_string()))?,
        };
        let traces = match &self.otlp_endpoint {
            None => None,
            Some(endpoint) => Some(Arc::new(
                crate::trace::Traces::new(endpoint).map_err(StartError::Traces)?,
            )),
        };
        Ok(Gateway {
            state: Arc::new(AppState {
                traces,
                cache: Arc::new(cache),
                live: Arc::new(live),
                limits: self.limits,
                body_timeout: self.body_timeout,
                client_idle: self.client_idle,
            }),
            drain_timeout: self.drain_timeout,
            metrics_apart: self.metrics_apart,
        })
    }
}

/// The OpenAI-compatible gateway over a live, reloadable policy.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use gateway::{Gateway, PolicySource};
///
/// let gateway = Gateway::builder(PolicySource::Path("policies/".into())).build().await?;
/// let listener = gateway.bind("127.0.0.1:8080".parse()?, false).await?;
/// gateway.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Gateway {
    state: Arc<AppState>,
    drain_timeout: Duration,
    metrics_apart: bool,
}

impl Gateway {
    /// A builder for a gateway over the policy from `source`.
    pub fn builder(source: PolicySource) -> GatewayBuilder {
        GatewayBuilder {
            source,
            keys: None,
            store: None,
            limits: Limits::default(),
            body_timeout: Duration::from_secs(30),
            client_idle: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(30),
            decisions: (DEFAULT_KEPT_DECISIONS, Duration::from_secs(15 * 60)),
            customize: None,
            metrics_apart: false,
            cache_bytes: crate::cache::DEFAULT_CACHE_BYTES,
            cache_redis: None,
            idempotency_redis: None,
            otlp_endpoint: None,
        }
    }

    /// Whether the gateway runs without keys.
    pub fn is_open(&self) -> bool {
        self.state.live.keys_path.is_none()
    }

    /// The short hash of the policy serving now.
    pub fn policy_hash(&self) -> String {
        self.state.live.current().policy().hash().short()
    }

    /// The router of the policy serving now (for in-process callers such
    /// as `routec demo`, which reads prices from its policy).
    pub fn current_router(&self) -> router_runtime::Router {
        self.state.live.current().router.clone()
    }

    /// Re-reads the policy and keys file; see [`ReloadOutcome`].
    pub async fn reload(&self) -> ReloadOutcome {
        self.state.live.reload().await
    }

    pub(crate) fn live(&self) -> &Arc<Live> {
        &self.state.live
    }

    /// The HTTP application: every endpoint behind its layers.
    pub fn router(&self) -> axum::Router {
        let state = Arc::clone(&self.state);
        let v1 = axum::Router::new()
            .route("/v1/chat/completions", post(chat::completions))
            .route("/v1/embeddings", post(embeddings::embeddings))
            .route("/v1/routec/decisions/{id}", get(admin::decision))
            .route("/v1/routec/budgets", get(admin::budgets))
            .route_layer(AuthLayer::new(Arc::clone(&state.live)));
        let anthropic = axum::Router::new()
            .route("/v1/messages", post(messages::messages))
            .route("/v1/messages/count_tokens", post(messages::count_tokens))
            .route_layer(AuthLayer::anthropic(Arc::clone(&state.live)));
        // Both SDKs list models here: either key header, either shape.
        let models = axum::Router::new()
            .route("/v1/models", get(admin::models))
            .route_layer(AuthLayer::either(Arc::clone(&state.live)));
        let mut ops = axum::Router::new()
            .route("/healthz", get(admin::healthz))
            .route("/readyz", get(admin::readyz));
        if !self.metrics_apart {
            ops = ops.route("/metrics", get(admin::metrics));
        }
        let layers = ServiceBuilder::new()
            .layer(CatchPanicLayer::custom(|_| {
                tracing::error!("a handler panicked");
                ApiError::new(Code::Internal, "internal error").into_response()
            }))
            .layer(
                // The span names the method and path only: never a header
                // (keys) or the query string (clients sometimes put keys there).
                TraceLayer::new_for_http()
                    .make_span_with(|req: &Request<Body>| {
                        tracing::info_span!("http", method = %req.method(), path = %req.uri().path())
                    })
                    .on_request(())
                    .on_response(DefaultOnResponse::new().level(Level::DEBUG))
                    .on_failure(()),
            )
            .layer(StripHopByHopLayer);
        v1.merge(anthropic)
            .merge(models)
            .merge(ops)
            .fallback(admin::not_found)
            .method_not_allowed_fallback(admin::method_not_allowed)
            .layer(layers)
            .with_state(state)
    }

    /// `/metrics` alone, for a listener only the scraper reaches (see
    /// [`GatewayBuilder::metrics_apart`]).
    pub fn metrics_router(&self) -> axum::Router {
        axum::Router::new()
            .route("/metrics", get(admin::metrics))
            .fallback(admin::not_found)
            .method_not_allowed_fallback(admin::method_not_allowed)
            .with_state(Arc::clone(&self.state))
    }

    /// Serves [`Gateway::metrics_router`] on `listener` until the future
    /// is dropped (run it beside [`Gateway::serve`]).
    ///
    /// # Errors
    /// [`StartError::Serve`] when accepting fails.
    pub fn serve_metrics(
        &self,
        listener: TcpListener,
    ) -> impl Future<Output = Result<(), StartError>> + Send + 'static {
        let server = axum::serve(listener, self.metrics_router()).into_future();
        async move { server.await.map_err(StartError::Serve) }
    }

    /// Binds `addr`. Without a keys file, only a loopback address is
    /// allowed unless `allow_open` says otherwise.
    ///
    /// # Errors
    /// [`StartError::OpenOnPublicAddress`] or [`StartError::Bind`].
    pub async fn bind(&self, addr: SocketAddr, allow_open: bool) -> Result<TcpListener, StartError> {
        if self.is_open() && !addr.ip().is_loopback() && !allow_open {
            return Err(StartError::OpenOnPublicAddress { addr });
        }
        TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })
    }

    /// Serves on `listener` until `shutdown` completes, then stops
    /// accepting, lets requests in flight finish (up to the drain
    /// timeout), and waits for their budget commits.
    ///
    /// # Errors
    /// [`StartError::Serve`] when accepting fails.
    pub async fn serve<F>(self, listener: TcpListener, shutdown: F) -> Result<(), StartError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let live = Arc::clone(&self.state.live);
        let (draining_tx, draining_rx) = oneshot::channel::<()>();
        let signal = {
            let live = Arc::clone(&live);
            async move {
                shutdown.await;
                live.draining.store(true, Ordering::Relaxed);
                tracing::info!("shutting down: draining requests in flight");
                let _ = draining_tx.send(());
            }
        };
        // Small answers go out in one segment anyway; streams must not wait
        // for Nagle's algorithm between chunks. A capped send buffer keeps
        // the kernel from taking megabytes (autotuned up to `tcp_wmem`'s
        // 4 MB) for a client that does not read, so the gateway stops
        // reading that client's upstream early.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
            let _ = socket2::SockRef::from(&*tcp).set_send_buffer_size(CLIENT_SEND_BUFFER);
        });
        let server = axum::serve(listener, self.router())
            .with_graceful_shutdown(signal)
            .into_future();
        let drain = self.drain_timeout;
        let deadline = async move {
            if draining_rx.await.is_ok() {
                tokio::time::sleep(drain).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            r = server => r.map_err(StartError::Serve)?,
            () = deadline => tracing::warn!(seconds = drain.as_secs(), "drain timeout: closing the connections still open"),
        }
        for router in live.routers() {
            if tokio::time::timeout(Duration::from_secs(5), router.settled())
                .await
                .is_err()
            {
                tracing::warn!("budget commits still pending at exit");
            }
        }
        if let Some(traces) = self.state.traces.clone() {
            let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
        }
        Ok(())
    }

    /// Serves on `listener` in a background task (for `routec demo` and
    /// tests); the returned handle stops it.
    pub fn spawn(self, listener: TcpListener) -> Running {
        let addr = listener.local_addr().ok();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(self.serve(listener, async move {
            let _ = stopped.await;
        }));
        Running { addr, stop, task }
    }
}

/// A gateway serving in the background.
#[derive(Debug)]
pub struct Running {
    addr: Option<SocketAddr>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), StartError>>,
}

impl Running {
    /// The address it listens on.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// Stops accepting, drains, and waits until it is done.
    ///
    /// # Errors
    /// What serving failed with, if it did.
    pub async fn shutdown(self) -> Result<(), StartError> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(StartError::Serve(std::io::Error::other(e.to_string()))),
        }
    }
}
