//! The `Router`: a compiled policy, a provider registry and the state
//! layer, executing one call at a time.
//!
//! Why one object: every call reads and writes the same health, latency,
//! retry-budget, idempotency and budget state, and the gateway, the
//! examples and tests all want the same few methods. `Router` is an `Arc`
//! inside, so handlers clone it freely.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use providers::{ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, Provider};
use router_core::{Budget, DataClass, Policy, WorkloadId};
use thiserror::Error;
use tokio::sync::Notify;
use tracing::Instrument;

use crate::budget::error::UnknownWorkloadError;
use crate::budget::store::BudgetStore;
use crate::budget::{BudgetLedger, memory::MemoryStore};
use crate::clock::{Clock, SystemClock};
use crate::decisions::{DecisionId, DecisionRecord, DecisionStore};
use crate::error::RouteError;
use crate::idempotency::{Claim, IdempotencyCache, IdempotencyKey, Served};
use crate::limits::Concurrency;
use crate::metrics::Metrics;
use crate::quality::{Regexes, compile_regexes};
use crate::registry::{EnvLookup, Registry};
use crate::stream::RoutedStream;
use router_state::LatencyBook;
use router_state::RetryBudget;
use router_state::splitmix64;
use router_state::{FailureRules, LimitBook};
use router_state::{HealthBook, HealthConfig};

/// One call: which workload, the normalised request, and what the caller
/// knows about it.
#[derive(Clone, Debug, Default)]
pub struct Call {
    /// The workload's name or alias.
    pub workload: String,
    /// The request.
    pub request: ChatRequest,
    /// The caller's user id (the usual split key); defaults to the request's `user`.
    pub user: Option<String>,
    /// Metadata for `match` conditions and splits; looked up before the
    /// request's own metadata.
    pub metadata: Vec<(String, String)>,
    /// A data class the call declares: raises the workload's, never lowers it.
    pub data_class: Option<DataClass>,
    /// The caller's `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// An extra budget charged alongside the workload's (a gateway tenant):
    /// see [`RouterBuilder::scope_budget`].
    pub budget_scope: Option<String>,
}

impl Call {
    /// A call of `workload` with `request` and nothing else known.
    pub fn new(workload: impl Into<String>, request: ChatRequest) -> Self {
        Call {
            workload: workload.into(),
            request,
            ..Call::default()
        }
    }
}

/// One embedding call: which workload, the texts, and what the caller
/// knows about it. Embedding calls are not idempotency-keyed: the same
/// texts give the same vectors, so a retry is a new call.
#[derive(Clone, Debug, Default)]
pub struct EmbedCall {
    /// The workload's name or alias; its targets must `support embeddings`.
    pub workload: String,
    /// The texts.
    pub request: EmbedRequest,
    /// The caller's user id (the usual split key); defaults to the request's `user`.
    pub user: Option<String>,
    /// Metadata for `match` conditions and splits.
    pub metadata: Vec<(String, String)>,
    /// A data class the call declares: raises the workload's, never lowers it.
    pub data_class: Option<DataClass>,
    /// An extra budget charged alongside the workload's (a gateway tenant).
    pub budget_scope: Option<String>,
}

impl EmbedCall {
    /// An embedding call of `workload` for `input`, nothing else known.
    pub fn new(workload: impl Into<String>, input: Vec<String>) -> Self {
        EmbedCall {
            workload: workload.into(),
            request: EmbedRequest {
                input,
                ..EmbedRequest::default()
            },
            ..EmbedCall::default()
        }
    }
}

/// A routed result and where it came from.
#[derive(Debug)]
pub struct Routed<T> {
    /// The answer (or the stream of it).
    pub value: T,
    /// The target that answered, as `provider/model`.
    pub target: String,
    /// Upstream calls made for it, retries included (for a replayed or
    /// joined call: those of the call that made it).
    pub attempts: u32,
    /// The policy that decided.
    pub policy_hash: router_core::PolicyHash,
    /// The decision, for [`Router::decision`].
    pub decision_id: DecisionId,
    /// Whether this call made the upstream call, joined one in flight, or
    /// got a stored answer.
    pub served: Served,
}

/// Why a [`Router`] could not be built.
#[derive(Clone, Debug, Error)]
pub enum BuildError {
    /// [`RouterBuilder::provider`] named a provider the policy does not have.
    #[error(transparent)]
    UnknownProvider(UnknownProviderError),
    /// [`RouterBuilder::scope_budget`] named one scope twice.
    #[error(transparent)]
    DuplicateScope(DuplicateScopeError),
}

/// A provider override for a name the policy does not have.
#[derive(Clone, Debug, Error)]
#[error("no provider `{name}` in the policy to override")]
pub struct UnknownProviderError {
    name: String,
}

impl UnknownProviderError {
    /// The name given.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// A scope budget given twice.
#[derive(Clone, Debug, Error)]
#[error("budget scope `{name}` is given twice")]
pub struct DuplicateScopeError {
    name: String,
}

impl DuplicateScopeError {
    /// The scope.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Tuning of execution; see the builder's setters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    /// Timeouts, backoff and Retry-After waits: what the attempt machine
    /// applies where the policy says nothing.
    pub(crate) failure_rules: FailureRules,
    pub(crate) idempotency_window: Duration,
}

/// The synchronous state, behind one short-held lock.
#[derive(Debug)]
pub(crate) struct Books {
    pub(crate) health: HealthBook,
    pub(crate) limits: LimitBook,
    pub(crate) latency: LatencyBook,
    pub(crate) retries: RetryBudget,
}

/// A finished call, as idempotency stores and replays it.
#[derive(Clone, Debug)]
pub(crate) struct Completed {
    pub(crate) response: ChatResponse,
    pub(crate) target: String,
    pub(crate) attempts: u32,
    pub(crate) decision: DecisionId,
}

/// Background settlements started from `Drop` (a dropped stream's commit).
#[derive(Debug, Default)]
pub(crate) struct Pending {
    count: AtomicUsize,
    idle: Notify,
}

impl Pending {
    pub(crate) fn start(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn finish(&self) {
        if self.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }

    async fn wait(&self) {
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            idle.await;
        }
    }
}

pub(crate) struct Inner {
    pub(crate) policy: Arc<Policy>,
    pub(crate) hash_short: String,
    pub(crate) registry: Registry,
    pub(crate) notes: Vec<String>,
    pub(crate) ledger: BudgetLedger,
    pub(crate) scopes: HashMap<String, WorkloadId>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: Metrics,
    pub(crate) books: Mutex<Books>,
    pub(crate) concurrency: Concurrency,
    /// Limits and health shared with other instances, when configured.
    pub(crate) shared: Option<crate::shared::Shared>,
    pub(crate) idempotency: IdempotencyCache<Arc<Completed>, RouteError>,
    pub(crate) decisions: DecisionStore,
    pub(crate) regexes: Regexes,
    pub(crate) settings: Settings,
    pub(crate) seed: u64,
    pub(crate) counter: AtomicU64,
    pub(crate) pending: Arc<Pending>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("policy", &self.hash_short)
            .field("registry", &self.registry)
            .field("ledger", &self.ledger)
            .finish_non_exhaustive()
    }
}

impl Inner {
    pub(crate) fn books(&self) -> MutexGuard<'_, Books> {
        self.books.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A fresh decision id and request seed.
    pub(crate) fn next_ids(&self) -> (DecisionId, u64) {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let base = self.seed.wrapping_add(n.wrapping_mul(2));
        (DecisionId::from_u64(splitmix64(base)), splitmix64(base.wrapping_add(1)))
    }

    /// The idempotency identity of a call, if it has one: the caller's key
    /// (any workload), or the content hash where the workload opts in.
    fn idempotency(&self, call: &Call, wid: WorkloadId) -> Option<(IdempotencyKey, u128, Duration)> {
        let window = self.policy.workload(wid).idempotency_window;
        if call.idempotency_key.is_none() && window.is_none() {
            return None;
        }
        let body = crate::facts::content_hash(&crate::facts::HashInput {
            workload: &self.policy.workload(wid).name,
            request: &call.request,
            user: call.user.as_deref(),
            metadata: &call.metadata,
            data_class: call.data_class,
            scope: call.budget_scope.as_deref(),
        });
        let key = match &call.idempotency_key {
            Some(k) => IdempotencyKey::Caller(k.clone()),
            None => IdempotencyKey::Content(body),
        };
        Some((key, body, window.unwrap_or(self.settings.idempotency_window)))
    }

    /// `complete` below the public entry: idempotency, then execution.
    pub(crate) async fn complete_call(
        self: &Arc<Self>,
        call: Call,
        wid: WorkloadId,
        depth: u8,
    ) -> Result<Routed<ChatResponse>, RouteError> {
        let hash = self.policy.hash();
        let routed = |c: &Completed, served| Routed {
            value: c.response.clone(),
            target: c.target.clone(),
            attempts: c.attempts,
            policy_hash: hash,
            decision_id: c.decision,
            served,
        };
        let Some((key, body, window)) = self.idempotency(&call, wid) else {
            // Nothing keeps this answer: move it rather than clone it.
            let c = self.complete_fresh(&call, wid, depth).await?;
            return Ok(Routed {
                value: c.response,
                target: c.target,
                attempts: c.attempts,
                policy_hash: hash,
                decision_id: c.decision,
                served: Served::Fresh,
            });
        };
        let (result, served) = self
            .idempotency
            .run(wid, key, body, window, || async {
                self.complete_fresh(&call, wid, depth).await.map(Arc::new)
            })
            .await
            .map_err(RouteError::IdempotencyKeyReused)?;
        result.map(|c| routed(&c, served))
    }

    /// `stream` below the public entry: a replayed or joined call streams
    /// the stored answer; a leading one streams upstream and stores the
    /// whole answer when the stream completes.
    async fn stream_call(self: &Arc<Self>, call: Call, wid: WorkloadId) -> Result<Routed<RoutedStream>, RouteError> {
        let hash = self.policy.hash();
        let replay = |c: &Completed, served| Routed {
            value: RoutedStream::replay(&c.response),
            target: c.target.clone(),
            attempts: c.attempts,
            policy_hash: hash,
            decision_id: c.decision,
            served,
        };
        let Some((key, body, window)) = self.idempotency(&call, wid) else {
            return self.stream_fresh(&call, wid, None).await;
        };
        match self
            .idempotency
            .claim(wid, key, body, window)
            .await
            .map_err(RouteError::IdempotencyKeyReused)?
        {
            Claim::Replayed(c) => Ok(replay(&c, Served::Replayed)),
            Claim::Joined(result) => result.map(|c| replay(&c, Served::Joined)),
            Claim::Lead(leader) => self.stream_fresh(&call, wid, Some(leader)).await,
        }
    }
}

/// Routes calls by a compiled policy: decides, then executes the plan over
/// provider adapters with budgets, fallback, retries, breakers,
/// idempotency and quality gates. Cheap to clone; clones share all state.
///
/// ```
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use policy_lang::{SourceFile, compile};
/// use providers::ChatRequest;
/// use router_runtime::{Call, Router};
///
/// let text = r#"
///     provider sim { adapter mock; tier free; model echo { price free } }
///     workload hello { data public; route sim/echo }
/// "#;
/// let policy = compile(&[SourceFile::new("hello.route", text)]).map_err(|r| format!("{r:?}"))?.into_policy();
/// let router = Router::builder(Arc::new(policy)).build()?;
/// let answer = router.complete(Call::new("hello", ChatRequest::user("Say hi"))).await?;
/// assert_eq!(answer.target, "sim/echo");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Router {
    inner: Arc<Inner>,
}

impl Router {
    /// A builder for a router over `policy`.
    pub fn builder(policy: Arc<Policy>) -> RouterBuilder {
        RouterBuilder {
            policy,
            store: None,
            clock: Arc::new(SystemClock),
            metrics: Metrics::new(),
            overrides: HashMap::new(),
            env: Arc::new(|name: &str| std::env::var(name).ok()),
            health: HealthConfig::default(),
            retry_budget: RetryBudget::default(),
            settings: Settings {
                failure_rules: FailureRules::default(),
                idempotency_window: Duration::from_secs(600),
            },
            idempotency_capacity: 10_000,
            idempotency_store: None,
            decision_capacity: 10_000,
            decision_ttl: Duration::from_secs(900),
            scopes: Vec::new(),
            seed: None,
            shared: None,
        }
    }

    /// Routes `call` and returns the whole answer.
    pub async fn complete(&self, call: Call) -> Result<Routed<ChatResponse>, RouteError> {
        let inner = &self.inner;
        let wid = self.resolve(&call.workload)?;
        let name = inner.policy.workload(wid).name.clone();
        inner.metrics.request(&name);
        let span = tracing::info_span!(
            "routec.request", workload = %name, policy_hash = %inner.hash_short,
            decision_id = tracing::field::Empty, kind = "complete"
        );
        let result = inner.complete_call(call, wid, 0).instrument(span).await;
        if let Err(e) = &result {
            inner.metrics.error(e.code());
        }
        result
    }

    /// Routes `call` and returns its answer as a stream of events.
    ///
    /// The call returns once the first event has arrived: failures before
    /// it fall back like `complete`; after it, the stream ends with an
    /// explicit [`RouteError::StreamInterrupted`] item, never a silently
    /// shorter answer. Dropping the stream cancels the upstream call and
    /// settles its budget (the tokens seen so far are committed).
    pub async fn stream(&self, call: Call) -> Result<Routed<RoutedStream>, RouteError> {
        let inner = &self.inner;
        let wid = self.resolve(&call.workload)?;
        let name = inner.policy.workload(wid).name.clone();
        inner.metrics.request(&name);
        let span = tracing::info_span!(
            "routec.request", workload = %name, policy_hash = %inner.hash_short,
            decision_id = tracing::field::Empty, kind = "stream"
        );
        let result = inner.stream_call(call, wid).instrument(span).await;
        if let Err(e) = &result {
            inner.metrics.error(e.code());
        }
        result
    }

    /// Routes an embedding call: the workload's plan, kept to models that
    /// `support embeddings`, run with the same fallback, retries, limits,
    /// health and budgets as a chat call. Input tokens are priced; there is
    /// no output.
    pub async fn embed(&self, call: EmbedCall) -> Result<Routed<EmbedResponse>, RouteError> {
        let inner = &self.inner;
        let wid = self.resolve(&call.workload)?;
        let name = inner.policy.workload(wid).name.clone();
        inner.metrics.request(&name);
        let span = tracing::info_span!(
            "routec.request", workload = %name, policy_hash = %inner.hash_short,
            decision_id = tracing::field::Empty, kind = "embed"
        );
        let EmbedCall {
            workload,
            request,
            user,
            metadata,
            data_class,
            budget_scope,
        } = call;
        let chat = Call {
            workload,
            user: user.or_else(|| request.user.clone()),
            metadata,
            data_class,
            budget_scope,
            ..Call::default()
        };
        let result = inner.embed_fresh(&chat, &request, wid).instrument(span).await.map(
            |(value, target, attempts, decision_id)| Routed {
                value,
                target,
                attempts,
                policy_hash: inner.policy.hash(),
                decision_id,
                served: Served::Fresh,
            },
        );
        if let Err(e) = &result {
            inner.metrics.error(e.code());
        }
        result
    }

    fn resolve(&self, workload: &str) -> Result<WorkloadId, RouteError> {
        self.inner.policy.workload_id(workload).ok_or_else(|| {
            self.inner.metrics.error("unknown_workload");
            RouteError::UnknownWorkload(UnknownWorkloadError {
                name: workload.to_owned(),
            })
        })
    }

    /// The policy.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.inner.policy
    }

    /// A recent decision's record (kept for a bounded time and number).
    pub fn decision(&self, id: &DecisionId) -> Option<DecisionRecord> {
        self.inner
            .decisions
            .get(*id, self.inner.clock.now())
            .map(|r| DecisionRecord::clone(&r))
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The budget ledger (status, unlock).
    pub fn ledger(&self) -> &BudgetLedger {
        &self.inner.ledger
    }

    /// Notes about the registry: providers left out of every plan and why.
    pub fn notes(&self) -> &[String] {
        &self.inner.notes
    }

    /// Waits until every budget settlement started in the background (by a
    /// dropped stream or call) has reached the store. For tests and
    /// graceful shutdown.
    pub async fn settled(&self) {
        self.inner.pending.wait().await;
        self.inner.ledger.settled().await;
    }
}

/// Builds a [`Router`]; every setting has a default.
pub struct RouterBuilder {
    policy: Arc<Policy>,
    store: Option<Arc<dyn BudgetStore>>,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    overrides: HashMap<String, Arc<dyn Provider>>,
    env: EnvLookup,
    health: HealthConfig,
    retry_budget: RetryBudget,
    settings: Settings,
    idempotency_capacity: usize,
    idempotency_store: Option<crate::idempotency::RedisIdempotency>,
    decision_capacity: usize,
    decision_ttl: Duration,
    scopes: Vec<(String, Budget)>,
    seed: Option<u64>,
    shared: Option<Arc<crate::shared::SharedState>>,
}

impl std::fmt::Debug for RouterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterBuilder")
            .field("policy", &self.policy.hash().short())
            .field("overrides", &self.overrides.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl RouterBuilder {
    /// Where budgets live (default: a new in-memory store).
    #[must_use]
    pub fn budget_store(mut self, store: Arc<dyn BudgetStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The clock for budgets, health, latency windows and decision records
    /// (default: the system clock). Deadlines and timeouts use tokio's timer.
    #[must_use]
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The metrics registry to report to (default: a new one).
    #[must_use]
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Serves provider `name` with `adapter` instead of building one from
    /// the policy (tests; embedders with their own transport).
    #[must_use]
    pub fn provider(mut self, name: impl Into<String>, adapter: Arc<dyn Provider>) -> Self {
        self.overrides.insert(name.into(), adapter);
        self
    }

    /// Resolves `key env("NAME")` with `lookup` instead of the process
    /// environment.
    #[must_use]
    pub fn env(mut self, lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        self.env = Arc::new(lookup);
        self
    }

    /// Resolves `key env("NAME")` from these pairs only.
    #[must_use]
    pub fn env_vars<K: Into<String>, V: Into<String>>(self, vars: impl IntoIterator<Item = (K, V)>) -> Self {
        let map: HashMap<String, String> = vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        self.env(move |name| map.get(name).cloned())
    }

    /// Breaker and cool-down tuning.
    #[must_use]
    pub fn health(mut self, config: HealthConfig) -> Self {
        self.health = config;
        self
    }

    /// The retry budget shared by every call (default: 20 % of the last
    /// 10 s of calls plus 10 per second).
    #[must_use]
    pub fn retry_budget(mut self, budget: RetryBudget) -> Self {
        self.retry_budget = budget;
        self
    }

    /// Backoff before retry n: between half and all of `base × 2^(n-1)`,
    /// capped at `max` (default 100 ms, 2 s).
    #[must_use]
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.settings.failure_rules.backoff_base = base;
        self.settings.failure_rules.backoff_max = max;
        self
    }

    /// The longest `Retry-After` (of a 429 or 503) that is waited out
    /// before the same target is retried, within the attempt's `retry N`
    /// (default 2 s); a longer one cools the target down and the plan moves
    /// on at once.
    #[must_use]
    pub fn retry_after_wait(mut self, longest: Duration) -> Self {
        self.settings.failure_rules.retry_after_wait_max = longest;
        self
    }

    /// Whether a timed-out attempt is retried on the same target, within
    /// its `retry N` (default: no; a silent upstream is left for the next
    /// target at once).
    #[must_use]
    pub fn retry_timeouts(mut self, retry: bool) -> Self {
        self.settings.failure_rules.retry_timeouts = retry;
        self
    }

    /// The per-attempt timeout when neither the route nor the provider sets
    /// one (default 60 s).
    #[must_use]
    pub fn default_attempt_timeout(mut self, timeout: Duration) -> Self {
        self.settings.failure_rules.default_attempt_timeout = timeout;
        self
    }

    /// How long a caller's `Idempotency-Key` replays its answer on a
    /// workload without `idempotent D` (default 10 minutes), and how many
    /// answers are kept (default 10,000).
    #[must_use]
    pub fn idempotency(mut self, window: Duration, capacity: usize) -> Self {
        self.settings.idempotency_window = window;
        self.idempotency_capacity = capacity;
        self
    }

    /// Shares idempotency keys through Redis with every router on it, so a
    /// key answered by one gateway replays on the others (default: this
    /// router only). See `docs/deploy.md`.
    #[must_use]
    pub fn idempotency_store(mut self, store: crate::idempotency::RedisIdempotency) -> Self {
        self.idempotency_store = Some(store);
        self
    }

    /// How many decision records are kept, and for how long (default
    /// 10,000 for 15 minutes).
    #[must_use]
    pub fn decisions(mut self, capacity: usize, ttl: Duration) -> Self {
        self.decision_capacity = capacity;
        self.decision_ttl = ttl;
        self
    }

    /// A budget charged alongside the workload's for calls whose
    /// [`Call::budget_scope`] is `name` (a gateway tenant). Both are
    /// reserved before dispatch and committed with the same actual spend;
    /// either refusing refuses the call. A scope without a budget here is
    /// not limited.
    #[must_use]
    pub fn scope_budget(mut self, name: impl Into<String>, budget: Budget) -> Self {
        self.scopes.push((name.into(), budget));
        self
    }

    /// Fixes the seed of decision ids, per-request seeds (split by request,
    /// weighted select, backoff jitter) and simulated providers, so a test
    /// sees the same run every time (default: from the time and process id).
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Shares provider `limits`, Retry-After cool-downs and breaker
    /// ejections with every router on the same Redis (default: this router
    /// only). See `docs/runtime.md`.
    #[must_use]
    pub fn shared_state(mut self, state: Arc<crate::shared::SharedState>) -> Self {
        self.shared = Some(state);
        self
    }

    /// The router. Providers whose key is missing or whose adapter cannot be
    /// configured are left out with a warning (see [`Router::notes`]).
    pub fn build(self) -> Result<Router, BuildError> {
        let policy = self.policy;
        for name in self.overrides.keys() {
            if !policy.providers.iter().any(|p| &p.name == name) {
                return Err(BuildError::UnknownProvider(UnknownProviderError { name: name.clone() }));
            }
        }
        let seed = self.seed.unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            splitmix64(u64::try_from(t.as_nanos() & u128::from(u64::MAX)).unwrap_or(0) ^ u64::from(std::process::id()))
        });
        let registry = Registry::build(&policy, &self.env, &self.overrides, seed);
        let notes = registry.notes(&policy);
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let mut ledger = BudgetLedger::builder(&policy, store)
            .clock(Arc::clone(&self.clock))
            .metrics(self.metrics.clone());
        let mut scopes = HashMap::new();
        for (i, (name, budget)) in self.scopes.into_iter().enumerate() {
            if scopes.contains_key(&name) {
                return Err(BuildError::DuplicateScope(DuplicateScopeError { name }));
            }
            let id = WorkloadId(u32::try_from(policy.workloads.len() + i).unwrap_or(u32::MAX));
            ledger = ledger.extra_budget(format!("scope:{name}"), budget);
            scopes.insert(name, id);
        }
        let books = Books {
            health: HealthBook::new(&policy, self.health),
            limits: LimitBook::new(&policy),
            latency: LatencyBook::new(policy.targets.len()),
            retries: self.retry_budget,
        };
        let shared = self
            .shared
            .map(|s| crate::shared::Shared::new(s, &policy, &self.metrics));
        let inner = Inner {
            hash_short: policy.hash().short(),
            regexes: compile_regexes(&policy),
            registry,
            notes,
            ledger: ledger.build(),
            scopes,
            idempotency: match self.idempotency_store {
                None => IdempotencyCache::new(self.idempotency_capacity, Arc::clone(&self.clock)),
                Some(store) => IdempotencyCache::new(self.idempotency_capacity, Arc::clone(&self.clock))
                    .with_shared(crate::idempotency::shared_for_router(store, &policy)),
            },
            decisions: DecisionStore::new(self.decision_capacity, self.decision_ttl),
            clock: self.clock,
            metrics: self.metrics,
            books: Mutex::new(books),
            concurrency: Concurrency::new(&policy),
            shared,
            settings: self.settings,
            seed,
            counter: AtomicU64::new(0),
            pending: Arc::new(Pending::default()),
            policy,
        };
        Ok(Router { inner: Arc::new(inner) })
    }
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;
