//! The Redis side of shared provider state: one connection, one script
//! (`redis.lua`) with an operation per check-and-take, and the outage
//! tracking that decides when an instance falls back to its own share.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};
use thiserror::Error;

use crate::budget::error::StoreErrorKind;
use crate::metrics::Metrics;

const SCRIPT: &str = include_str!("redis.lua");

/// Where the keys of one target live: `[pace, inflight, cooldown,
/// cooldown:<model>, ejected:<model>]`, in the script's order.
pub(crate) type TargetKeys = [String; 5];

/// The shared state could not be reached, or answered nonsense.
#[derive(Clone, Debug, Error)]
#[error("shared provider state `{place}` is {}: {detail}", self.kind_text())]
pub struct SharedStateError {
    kind: StoreErrorKind,
    place: String,
    detail: String,
}

impl SharedStateError {
    fn new(kind: StoreErrorKind, place: &str, detail: impl fmt::Display) -> Self {
        SharedStateError {
            kind,
            place: place.to_owned(),
            detail: detail.to_string(),
        }
    }

    /// What went wrong, in a word.
    pub fn kind(&self) -> StoreErrorKind {
        self.kind
    }

    fn kind_text(&self) -> &'static str {
        match self.kind {
            StoreErrorKind::Timeout => "not answering",
            StoreErrorKind::Corrupt => "answering something unexpected",
            StoreErrorKind::BadUrl => "not a redis url",
            StoreErrorKind::Unavailable | StoreErrorKind::OutOfRange => "unavailable",
        }
    }
}

/// What the admit script answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Admitted,
    ProviderCooling(Duration),
    ModelCooling(Duration),
    Ejected(Duration),
    Rpm(Option<Duration>),
    Tpm(Option<Duration>),
    Concurrency,
}

/// What one attempt asks of its provider's shared limits.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ask<'a> {
    pub(crate) rpm: Option<u64>,
    pub(crate) tpm: Option<u64>,
    pub(crate) tokens: u64,
    pub(crate) concurrency: Option<u64>,
    pub(crate) lease: Option<&'a str>,
}

/// Provider limits, Retry-After cool-downs and breaker ejections shared by
/// every router instance on one Redis. Made once per process
/// ([`SharedState::connect`]) and handed to each router built
/// ([`crate::RouterBuilder::shared_state`]), so a policy reload keeps the
/// connection and the outage state.
pub struct SharedState {
    conn: ConnectionManager,
    script: Script,
    prefix: String,
    place: String,
    instances: u32,
    /// Lease ids are `<instance>-<n>`: unique across instances.
    instance: u64,
    leases: AtomicU64,
    up: AtomicBool,
    /// While Redis is down: when it is next asked (one try a second, so a
    /// silent server does not add its timeout to every attempt).
    retry_at: Mutex<Option<tokio::time::Instant>>,
}

impl fmt::Debug for SharedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedState")
            .field("place", &self.place)
            .field("prefix", &self.prefix)
            .field("instances", &self.instances)
            .finish_non_exhaustive()
    }
}

impl SharedState {
    /// The most one operation may take before it counts as an outage: it
    /// sits on the request path, before dispatch.
    pub const OP_TIMEOUT: Duration = Duration::from_millis(500);
    /// How long a concurrency lease lives unless renewed: a crashed
    /// instance's calls in flight stop counting within this.
    pub const LEASE_TTL: Duration = Duration::from_secs(30);
    /// While Redis is down, how often it is tried again.
    const RETRY_EVERY: Duration = Duration::from_secs(1);

    /// Connects to the Redis at `url` (`redis://host:port/db`, with an
    /// optional `?prefix=NAME`, as the budget store takes it); `instances`
    /// is how many routers share it, for the per-instance share of each
    /// limit while Redis cannot be reached. Fails if the server cannot be
    /// reached now.
    pub async fn connect(url: &str, instances: u32) -> Result<SharedState, SharedStateError> {
        let (base, prefix) = crate::budget::store::split_prefix(url);
        let client = Client::open(base).map_err(|e| SharedStateError::new(StoreErrorKind::BadUrl, "redis", e))?;
        let info = client.get_connection_info();
        let place = format!("redis://{}/{}", info.addr(), info.redis_settings().db());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Self::OP_TIMEOUT))
            .set_response_timeout(Some(Self::OP_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = tokio::time::timeout(Self::OP_TIMEOUT * 4, ConnectionManager::new_with_config(client, config))
            .await
            .map_err(|_| SharedStateError::new(StoreErrorKind::Timeout, &place, "no answer while connecting"))?
            .map_err(|e| SharedStateError::new(StoreErrorKind::Unavailable, &place, e))?;
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let seed = u64::try_from(t.as_nanos() & u128::from(u64::MAX)).unwrap_or(0) ^ u64::from(std::process::id());
        Ok(SharedState {
            conn,
            script: Script::new(SCRIPT),
            prefix: prefix.unwrap_or_else(|| crate::RedisStore::DEFAULT_PREFIX.to_owned()),
            place,
            instances: instances.max(1),
            instance: router_state::splitmix64(seed),
            leases: AtomicU64::new(0),
            up: AtomicBool::new(true),
            retry_at: Mutex::new(None),
        })
    }

    /// How many instances share the limits.
    pub fn instances(&self) -> u32 {
        self.instances
    }

    /// Whether the last operation got an answer.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Where the state lives, without credentials.
    pub fn describe(&self) -> &str {
        &self.place
    }

    /// The keys of `model` at `provider`. Braces keep a provider's keys in
    /// one cluster slot, so one script may touch them all.
    pub(crate) fn keys(&self, provider: &str, model: &str) -> TargetKeys {
        let base = format!("{}:{{provider:{provider}}}", self.prefix);
        [
            format!("{base}:pace"),
            format!("{base}:inflight"),
            format!("{base}:cooldown"),
            format!("{base}:cooldown:{model}"),
            format!("{base}:ejected:{model}"),
        ]
    }

    /// A fresh lease id.
    pub(crate) fn lease_id(&self) -> String {
        let n = self.leases.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}-{n}", self.instance)
    }

    /// Whether Redis should be asked now: always while it answers; once a
    /// second while it does not.
    pub(crate) fn worth_asking(&self) -> bool {
        if self.up.load(Ordering::Acquire) {
            return true;
        }
        let mut at = self.retry_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = tokio::time::Instant::now();
        match *at {
            Some(t) if now < t => false,
            _ => {
                *at = Some(now + Self::RETRY_EVERY);
                true
            }
        }
    }

    /// Notes what an operation's result says about Redis: one log line and
    /// a gauge change per transition, an error counted each time.
    pub(crate) fn observe<T>(
        &self,
        result: Result<T, SharedStateError>,
        metrics: &Metrics,
    ) -> Result<T, SharedStateError> {
        match &result {
            Ok(_) => {
                if !self.up.load(Ordering::Acquire) && !self.up.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        store = %self.place,
                        "shared provider state answers again: limits and cool-downs are shared again"
                    );
                    metrics.shared_state_up(true);
                }
            }
            Err(e) => {
                metrics.shared_state_error(e.kind());
                if self.up.swap(false, Ordering::AcqRel) {
                    *self.retry_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                        Some(tokio::time::Instant::now() + Self::RETRY_EVERY);
                    tracing::warn!(
                        store = %self.place, error = %e, instances = self.instances,
                        "shared provider state not answering: each provider limit falls back to this \
                         instance's share (limit / instances), cool-downs stay local"
                    );
                    metrics.shared_state_up(false);
                }
            }
        }
        result
    }

    async fn run(&self, keys: &TargetKeys, args: &[&str]) -> Result<Vec<String>, SharedStateError> {
        let mut inv = self.script.prepare_invoke();
        for k in keys {
            inv.key(k.as_str());
        }
        for a in args {
            inv.arg(*a);
        }
        let mut conn = self.conn.clone();
        match tokio::time::timeout(Self::OP_TIMEOUT, inv.invoke_async::<Vec<String>>(&mut conn)).await {
            Err(_) => Err(SharedStateError::new(StoreErrorKind::Timeout, &self.place, "no answer")),
            Ok(Err(e)) => Err(SharedStateError::new(StoreErrorKind::Unavailable, &self.place, e)),
            Ok(Ok(v)) => Ok(v),
        }
    }

    fn corrupt(&self, what: &str) -> SharedStateError {
        SharedStateError::new(
            StoreErrorKind::Corrupt,
            &self.place,
            format!("the shared-state script returned {what}"),
        )
    }

    fn millis(&self, s: Option<&String>) -> Result<Option<Duration>, SharedStateError> {
        match s.map(String::as_str) {
            None | Some("") => Ok(None),
            Some(v) => v
                .parse::<u64>()
                .map(|ms| Some(Duration::from_millis(ms)))
                .map_err(|_| self.corrupt("a malformed duration")),
        }
    }

    /// Checks the target's shared cool-downs and ejection, then takes from
    /// its provider's shared `rpm`, `tpm` and `concurrency`: all or nothing.
    pub(crate) async fn admit(&self, keys: &TargetKeys, ask: Ask<'_>) -> Result<Verdict, SharedStateError> {
        let (rpm, tpm, tokens, conc) = (opt(ask.rpm), opt(ask.tpm), ask.tokens.to_string(), opt(ask.concurrency));
        let ttl = Self::LEASE_TTL.as_millis().to_string();
        let out = self
            .run(
                keys,
                &["admit", &rpm, &tpm, &tokens, &conc, ask.lease.unwrap_or(""), &ttl],
            )
            .await?;
        let ms = |i: usize| self.millis(out.get(i));
        let need = |d: Option<Duration>| d.ok_or_else(|| self.corrupt("a refusal without a duration"));
        match out.first().map(String::as_str) {
            Some("ok") => Ok(Verdict::Admitted),
            Some("cooling") => Ok(Verdict::ProviderCooling(need(ms(1)?)?)),
            Some("model_cooling") => Ok(Verdict::ModelCooling(need(ms(1)?)?)),
            Some("ejected") => Ok(Verdict::Ejected(need(ms(1)?)?)),
            Some("rpm") => Ok(Verdict::Rpm(ms(1)?)),
            Some("tpm") => Ok(Verdict::Tpm(ms(1)?)),
            Some("concurrency") => Ok(Verdict::Concurrency),
            _ => Err(self.corrupt("an unknown answer")),
        }
    }

    /// Gives back what [`SharedState::admit`] took, for an attempt that was
    /// then not sent after all.
    pub(crate) async fn refund(&self, keys: &TargetKeys, ask: Ask<'_>) -> Result<(), SharedStateError> {
        let (rpm, tpm, tokens) = (opt(ask.rpm), opt(ask.tpm), ask.tokens.to_string());
        self.run(keys, &["refund", &rpm, &tpm, &tokens, ask.lease.unwrap_or("")])
            .await
            .map(|_| ())
    }

    /// Extends a concurrency lease by [`SharedState::LEASE_TTL`].
    pub(crate) async fn renew(&self, keys: &TargetKeys, lease: &str) -> Result<(), SharedStateError> {
        let ttl = Self::LEASE_TTL.as_millis().to_string();
        self.run(keys, &["renew", lease, &ttl]).await.map(|_| ())
    }

    /// Ends a concurrency lease.
    pub(crate) async fn release(&self, keys: &TargetKeys, lease: &str) -> Result<(), SharedStateError> {
        self.run(keys, &["release", lease]).await.map(|_| ())
    }

    /// Publishes a cool-down or ejection for `ttl` from now (Redis's now).
    pub(crate) async fn publish(
        &self,
        keys: &TargetKeys,
        what: Published,
        ttl: Duration,
    ) -> Result<(), SharedStateError> {
        let index = match what {
            Published::ProviderCooling => "3",
            Published::ModelCooling => "4",
            Published::Ejected => "5",
        };
        let ttl = ttl.as_millis().max(1).to_string();
        self.run(keys, &["publish", index, &ttl]).await.map(|_| ())
    }
}

/// Which of a target's health keys a publish writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Published {
    ProviderCooling,
    ModelCooling,
    Ejected,
}

fn opt(v: Option<u64>) -> String {
    v.map(|n| n.to_string()).unwrap_or_default()
}
