//! The live policy: one `Router` (with its keys) serving now, swapped
//! atomically when a reload succeeds.
//!
//! Why `arc-swap`: every request reads the current generation once, at its
//! start, with no lock; a reload builds the next generation completely —
//! compiled, checked, keys parsed, router built — and only then swaps it
//! in. A request in flight finishes on the generation it started with; a
//! policy that fails `check` never becomes current. The budget store and
//! the metrics registry outlive generations, so spend and counters carry
//! across a reload.

use std::collections::VecDeque;
use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use axum::http::HeaderValue;
use miette::{GraphicalReportHandler, GraphicalTheme};
use policy_lang::{CheckReport, SourceFile};
use router_core::Policy;
use router_runtime::{BudgetStore, BuildError, DecisionId, DecisionRecord, Metrics, Router, RouterBuilder};
use thiserror::Error;

use crate::keys::{Keys, KeysError};
use crate::owners::DecisionOwners;

/// Where the policy comes from.
#[derive(Clone, Debug)]
pub enum PolicySource {
    /// A `.route` file or a directory of them, re-read on reload.
    Path(PathBuf),
    /// Policy text built into the program (`routec demo`); never reloaded.
    Text {
        /// A file name for diagnostics.
        name: String,
        /// The text.
        text: String,
    },
}

impl PolicySource {
    fn compile(&self) -> Result<policy_lang::Compiled, CheckReport> {
        match self {
            PolicySource::Path(path) => policy_lang::compile_path(path),
            PolicySource::Text { name, text } => policy_lang::compile(&[SourceFile::new(name.clone(), text.clone())]),
        }
    }

    /// The path to watch, if the policy is on disk.
    pub(crate) fn path(&self) -> Option<&Path> {
        match self {
            PolicySource::Path(p) => Some(p),
            PolicySource::Text { .. } => None,
        }
    }
}

/// Adjusts each generation's router (the demo's seed, tests' providers).
pub(crate) type Customize = Arc<dyn Fn(RouterBuilder) -> RouterBuilder + Send + Sync>;

/// One policy and the keys that go with it.
pub(crate) struct Generation {
    pub(crate) router: Router,
    /// `None`: the gateway runs open (no keys file).
    pub(crate) keys: Option<Arc<Keys>>,
    /// What a reload compares to decide whether anything changed.
    fingerprint: (router_core::PolicyHash, Option<String>),
    /// `x-routec-policy-hash`, formatted once rather than on every answer.
    policy_hash_header: HeaderValue,
}

impl Generation {
    pub(crate) fn policy(&self) -> &Arc<Policy> {
        self.router.policy()
    }

    /// The policy hash as a header value.
    pub(crate) fn policy_hash_header(&self) -> &HeaderValue {
        &self.policy_hash_header
    }
}

/// Why a policy or keys file was refused.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The policy failed `check` (or could not be read).
    #[error("the policy failed `routec check`:\n{rendered}")]
    Policy {
        /// The diagnostics, rendered without colour.
        rendered: String,
    },
    /// The keys file could not be used.
    #[error(transparent)]
    Keys(KeysError),
    /// The router could not be built on the policy.
    #[error("the router could not be built: {0}")]
    Build(BuildError),
    /// The loading task itself failed (a bug).
    #[error("the loading task failed: {0}")]
    Task(String),
}

/// What a reload did.
#[derive(Debug)]
pub enum ReloadOutcome {
    /// A new generation serves; the short hash of its policy.
    Swapped(String),
    /// The files compiled to the same policy and keys: nothing swapped, so
    /// health, latency and idempotency state are kept.
    Unchanged,
    /// The new files were refused; the previous generation keeps serving.
    Refused(LoadError),
    /// The policy is built in (`routec demo`): nothing to reload.
    NotReloadable,
}

#[derive(Debug, Default)]
pub(crate) struct ReloadCounters {
    pub(crate) ok: AtomicU64,
    pub(crate) unchanged: AtomicU64,
    pub(crate) refused: AtomicU64,
}

/// Generations kept for `/v1/routec/decisions/{id}` after a swap.
const KEPT_GENERATIONS: usize = 3;

pub(crate) struct Live {
    current: ArcSwap<Generation>,
    previous: Mutex<VecDeque<Arc<Generation>>>,
    pub(crate) source: PolicySource,
    pub(crate) keys_path: Option<PathBuf>,
    store: Arc<dyn BudgetStore>,
    metrics: Metrics,
    customize: Option<Customize>,
    reload_lock: tokio::sync::Mutex<()>,
    pub(crate) reloads: ReloadCounters,
    pub(crate) draining: AtomicBool,
    /// The tenant each recent decision was made for.
    pub(crate) owners: DecisionOwners,
}

impl fmt::Debug for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Live")
            .field("source", &self.source)
            .field("keys_path", &self.keys_path)
            .field("policy", &self.current().policy().hash().short())
            .finish_non_exhaustive()
    }
}

impl Live {
    /// Loads the first generation. `kept_decisions` is what each
    /// generation's router keeps; owners are kept for every generation.
    pub(crate) async fn start(
        source: PolicySource,
        keys_path: Option<PathBuf>,
        store: Arc<dyn BudgetStore>,
        metrics: Metrics,
        customize: Option<Customize>,
        kept_decisions: usize,
    ) -> Result<Live, LoadError> {
        let generation = load(&source, keys_path.as_deref(), &store, &metrics, customize.as_ref()).await?;
        Ok(Live {
            current: ArcSwap::from_pointee(generation),
            previous: Mutex::new(VecDeque::new()),
            source,
            keys_path,
            store,
            metrics,
            customize,
            reload_lock: tokio::sync::Mutex::new(()),
            reloads: ReloadCounters::default(),
            draining: AtomicBool::new(false),
            owners: DecisionOwners::new(kept_decisions.saturating_mul(KEPT_GENERATIONS + 1)),
        })
    }

    /// The generation serving now.
    pub(crate) fn current(&self) -> Arc<Generation> {
        self.current.load_full()
    }

    pub(crate) fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Re-reads the policy (and keys file) and swaps them in if they pass.
    /// One reload runs at a time; the outcome is logged and counted here.
    pub(crate) async fn reload(&self) -> ReloadOutcome {
        if self.source.path().is_none() && self.keys_path.is_none() {
            return ReloadOutcome::NotReloadable;
        }
        let _one_at_a_time = self.reload_lock.lock().await;
        let next = load(
            &self.source,
            self.keys_path.as_deref(),
            &self.store,
            &self.metrics,
            self.customize.as_ref(),
        )
        .await;
        match next {
            Err(e) => {
                self.reloads.refused.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, "reload refused; the previous policy keeps serving");
                ReloadOutcome::Refused(e)
            }
            Ok(next) if next.fingerprint == self.current().fingerprint => {
                self.reloads.unchanged.fetch_add(1, Ordering::Relaxed);
                tracing::info!("reload: policy and keys unchanged");
                ReloadOutcome::Unchanged
            }
            Ok(next) => {
                let short = next.policy().hash().short();
                let old = self.current.swap(Arc::new(next));
                let mut previous = self.previous.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                previous.push_front(old);
                previous.truncate(KEPT_GENERATIONS);
                self.reloads.ok.fetch_add(1, Ordering::Relaxed);
                tracing::info!(policy_hash = %short, "reload: new policy serving");
                ReloadOutcome::Swapped(short)
            }
        }
    }

    /// A recent decision and the policy that made it, from the current
    /// generation or one of the last few.
    pub(crate) fn decision(&self, id: &DecisionId) -> Option<(DecisionRecord, Arc<Policy>)> {
        let current = self.current();
        if let Some(r) = current.router.decision(id) {
            return Some((r, Arc::clone(current.policy())));
        }
        let previous = self.previous.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        previous
            .iter()
            .find_map(|g| g.router.decision(id).map(|r| (r, Arc::clone(g.policy()))))
    }

    /// Every router still holding work (the current one and kept ones),
    /// for settling budgets at shutdown.
    pub(crate) fn routers(&self) -> Vec<Router> {
        let mut out = vec![self.current().router.clone()];
        let previous = self.previous.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        out.extend(previous.iter().map(|g| g.router.clone()));
        out
    }
}

async fn load(
    source: &PolicySource,
    keys_path: Option<&Path>,
    store: &Arc<dyn BudgetStore>,
    metrics: &Metrics,
    customize: Option<&Customize>,
) -> Result<Generation, LoadError> {
    // Compiling reads files and may take milliseconds: off the reactor.
    let (source, keys_path) = (source.clone(), keys_path.map(Path::to_owned));
    let (compiled, keys) = tokio::task::spawn_blocking(move || {
        let compiled = source.compile().map_err(|r| LoadError::Policy {
            rendered: render_report(&r),
        })?;
        let keys = match keys_path {
            Some(p) => Some(Keys::load(&p).map_err(LoadError::Keys)?),
            None => None,
        };
        Ok::<_, LoadError>((compiled, keys))
    })
    .await
    .map_err(|e| LoadError::Task(e.to_string()))??;
    for w in compiled.warnings() {
        tracing::warn!(warning = %w, "policy warning");
    }
    let policy = Arc::new(compiled.into_policy());
    if let Some(keys) = &keys {
        for (tenant, name) in keys.unknown_workloads(&policy) {
            tracing::warn!(
                tenant,
                workload = name,
                "the keys file names a workload the policy does not have"
            );
        }
    }
    let mut builder = Router::builder(Arc::clone(&policy))
        .budget_store(Arc::clone(store))
        .metrics(metrics.clone());
    if let Some(keys) = &keys {
        for tenant in keys.tenants() {
            if let Some(budget) = tenant.budget() {
                builder = builder.scope_budget(tenant.name(), *budget);
            }
        }
    }
    if let Some(customize) = customize {
        builder = customize(builder);
    }
    let router = builder.build().map_err(LoadError::Build)?;
    for note in router.notes() {
        tracing::warn!(note = %note, "provider unavailable");
    }
    let fingerprint = (policy.hash(), keys.as_ref().map(|k| k.digest().to_owned()));
    // Hex digits: always a valid header value.
    let policy_hash_header =
        HeaderValue::from_str(&policy.hash().to_string()).unwrap_or_else(|_| HeaderValue::from_static("unknown"));
    Ok(Generation {
        router,
        keys: keys.map(Arc::new),
        fingerprint,
        policy_hash_header,
    })
}

/// A check report as text for a log line: every diagnostic, no colour.
pub(crate) fn render_report(report: &CheckReport) -> String {
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_links(false);
    let mut out = String::new();
    for d in report.diagnostics() {
        if handler.render_report(&mut out, d).is_err() {
            let _ = writeln!(out, "{d}");
        }
    }
    out
}
