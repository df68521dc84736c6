//! Idempotency keys shared through Redis, so a key answered by one gateway
//! replays on every other gateway on the same Redis.
//!
//! Why a second layer rather than a second cache: the local
//! [`IdempotencyCache`](super::IdempotencyCache) still joins identical calls
//! inside one process (no Redis round trip per waiter); only the caller
//! that would lead locally asks Redis, with one atomic script
//! (`redis.lua`) per operation:
//!
//! - `claim`: nothing stored → this instance leads, and the key holds a
//!   claim that expires after the workload's worst-case call time (so the
//!   claim of an instance that dies frees itself); an answer stored → it
//!   is replayed; another instance's claim → this one polls the key (one
//!   `claim` every 20 ms, backing off to 250 ms) until the answer is
//!   stored, the claim is released or expires (then it leads), so one
//!   upstream call serves both; a different body → [`KeyReusedError`].
//! - `finish`: the leader stores its whole answer for the replay window
//!   (streams too: the answer is stored when the stream completes and a
//!   replay is sent as server-sent events, as locally).
//! - `release`: a failed or cancelled call frees its claim; errors are
//!   never stored, so a retry runs again.
//! - `renew`: while the leader's call is in flight (a whole call, or a
//!   stream until it completes, however long after its first event), a
//!   task renews its claim every third of the claim's lifetime, only if
//!   the claim is still this leader's; it stops when the call settles, and
//!   at the first failure (with a warning: the call goes on, and the claim
//!   may expire). The claim's lifetime is unchanged, so the claim of an
//!   instance that died still frees itself within it.
//!
//! Keys are `<prefix>:idem:{<workload>}:c:<caller key>` (the gateway puts
//! the tenant in the caller key) or `…:h:<content hash>`, and every expiry
//! is a TTL given to Redis (`PEXPIRE`), never an absolute time from the
//! router's clock. If Redis cannot be reached, the call falls back to the
//! local cache alone, with a warning: it is never refused for that.
//!
//! [`KeyReusedError`]: super::KeyReusedError

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use providers::ChatResponse;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};
use router_core::{Policy, WorkloadId};
use serde::{Deserialize, Serialize};

use super::{IdempotencyKey, Key};
use crate::budget::error::{StoreError, StoreErrorKind};
use crate::decisions::DecisionId;
use crate::router::Completed;

const SCRIPT: &str = include_str!("redis.lua");

/// A claim's lifetime when the policy bounds no call time.
const DEFAULT_CLAIM: Duration = Duration::from_secs(300);
/// The shortest claim, whatever the policy says.
const MIN_CLAIM: Duration = Duration::from_secs(1);
/// The first and the longest pause between two polls of another
/// instance's claim.
const FIRST_POLL: Duration = Duration::from_millis(20);
const MAX_POLL: Duration = Duration::from_millis(250);
/// The shortest pause between two renewals of a leader's claim.
const MIN_RENEW: Duration = Duration::from_millis(100);

/// Idempotency keys in Redis, shared by every router on it. Cheap to
/// clone; clones share the connection.
#[derive(Clone)]
pub struct RedisIdempotency {
    conn: ConnectionManager,
    script: Script,
    prefix: String,
    place: String,
    /// Makes claim tokens unique within this process.
    counter: Arc<AtomicU64>,
    /// Makes them unique across processes.
    instance: u64,
}

impl fmt::Debug for RedisIdempotency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisIdempotency")
            .field("place", &self.place)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// What Redis said to a claim.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Remote {
    /// This instance leads; it holds the claim.
    Lead,
    /// The stored answer, encoded.
    Done(String),
    /// Another instance's claim, expiring in this long.
    Pending(Duration),
    /// The key was used with another body; whether that use is in flight.
    Reused { in_flight: bool },
}

impl RedisIdempotency {
    /// The most one operation may take before it counts as a failure (and
    /// the call falls back to the local cache).
    pub const OP_TIMEOUT: Duration = Duration::from_secs(1);

    /// Connects to the server at `url` (`redis://host:port/db`) with keys
    /// under `prefix` (as [`RedisStore`](crate::RedisStore), `routec` by
    /// default). Fails if the server cannot be reached now; later failures
    /// fall back to the local cache.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisIdempotency, StoreError> {
        let client = Client::open(url).map_err(|e| StoreError::new(StoreErrorKind::BadUrl, "redis", e))?;
        let info = client.get_connection_info();
        let place = format!("redis://{}/{}", info.addr(), info.redis_settings().db());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Self::OP_TIMEOUT))
            .set_response_timeout(Some(Self::OP_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = tokio::time::timeout(Self::OP_TIMEOUT * 2, ConnectionManager::new_with_config(client, config))
            .await
            .map_err(|_| StoreError::new(StoreErrorKind::Timeout, place.clone(), "no answer while connecting"))?
            .map_err(|e| StoreError::new(StoreErrorKind::Unavailable, place.clone(), e))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let instance = xxhash_rust::xxh3::xxh3_64(format!("{nanos}:{}:{place}", std::process::id()).as_bytes());
        Ok(RedisIdempotency {
            conn,
            script: Script::new(SCRIPT),
            prefix: prefix.to_owned(),
            place,
            counter: Arc::new(AtomicU64::new(0)),
            instance,
        })
    }

    /// Connects as `routec serve --budget-store URL` does: `redis://…`,
    /// with keys under the URL's `?prefix=NAME` (default `routec`), beside
    /// the budget lines of the same URL.
    pub async fn connect_url(url: &str) -> Result<RedisIdempotency, StoreError> {
        let (base, prefix) = crate::budget::store::split_prefix(url);
        Self::connect(base, prefix.as_deref().unwrap_or(crate::RedisStore::DEFAULT_PREFIX)).await
    }

    /// Where the keys live, for logs (no password).
    pub fn describe(&self) -> &str {
        &self.place
    }

    fn token(&self) -> String {
        format!(
            "{:016x}-{:x}",
            self.instance,
            self.counter.fetch_add(1, Ordering::Relaxed)
        )
    }

    fn redis_key(&self, workload: &str, key: &IdempotencyKey) -> String {
        match key {
            IdempotencyKey::Caller(k) => format!("{}:idem:{{{workload}}}:c:{k}", self.prefix),
            IdempotencyKey::Content(h) => format!("{}:idem:{{{workload}}}:h:{h:032x}", self.prefix),
        }
    }

    fn error(&self, kind: StoreErrorKind, detail: impl fmt::Display) -> StoreError {
        StoreError::new(kind, self.place.clone(), detail)
    }

    async fn run(&self, key: &str, args: &[&str]) -> Result<Vec<String>, StoreError> {
        let mut inv = self.script.prepare_invoke();
        inv.key(key);
        for a in args {
            inv.arg(*a);
        }
        let mut conn = self.conn.clone();
        match tokio::time::timeout(Self::OP_TIMEOUT, inv.invoke_async::<Vec<String>>(&mut conn)).await {
            Err(_) => Err(self.error(StoreErrorKind::Timeout, "no answer")),
            Ok(Err(e)) => Err(self.error(StoreErrorKind::Unavailable, e)),
            Ok(Ok(v)) => Ok(v),
        }
    }

    pub(crate) async fn claim(&self, key: &str, body: u128, token: &str, ttl: Duration) -> Result<Remote, StoreError> {
        let body = format!("{body:032x}");
        let ttl = ms(ttl).to_string();
        let out = self.run(key, &["claim", &body, token, &ttl]).await?;
        let corrupt = || {
            self.error(
                StoreErrorKind::Corrupt,
                "the idempotency script returned an unknown answer",
            )
        };
        match out.as_slice() {
            [a] if a == "lead" => Ok(Remote::Lead),
            [a, v] if a == "done" => Ok(Remote::Done(v.clone())),
            [a, t] if a == "pending" => {
                let left = t.parse::<i64>().map_err(|_| corrupt())?;
                Ok(Remote::Pending(Duration::from_millis(u64::try_from(left).unwrap_or(0))))
            }
            [a, s] if a == "reused" => Ok(Remote::Reused { in_flight: s == "p" }),
            _ => Err(corrupt()),
        }
    }

    pub(crate) async fn finish(
        &self,
        key: &str,
        body: u128,
        token: &str,
        answer: &str,
        window: Duration,
    ) -> Result<bool, StoreError> {
        let body = format!("{body:032x}");
        let window = ms(window).to_string();
        let out = self.run(key, &["finish", &body, token, answer, &window]).await?;
        Ok(out.first().is_some_and(|s| s == "stored"))
    }

    pub(crate) async fn release(&self, key: &str, token: &str) -> Result<bool, StoreError> {
        let out = self.run(key, &["release", token]).await?;
        Ok(out.first().is_some_and(|s| s == "released"))
    }

    /// Extends the claim `token` holds on `key` to `ttl` from now; false if
    /// it holds none (finished, released, or expired and maybe taken).
    pub(crate) async fn renew(&self, key: &str, token: &str, ttl: Duration) -> Result<bool, StoreError> {
        let ttl = ms(ttl).to_string();
        let out = self.run(key, &["renew", token, &ttl]).await?;
        Ok(out.first().is_some_and(|s| s == "renewed"))
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The shared layer of one router's [`IdempotencyCache`](super::IdempotencyCache):
/// the store, the policy's workload names (keys outlive a policy reload, so
/// they name workloads, not ids), each workload's claim lifetime, and how
/// answers are written.
pub(crate) struct Shared<T> {
    pub(crate) store: RedisIdempotency,
    names: Vec<String>,
    claims: Vec<Duration>,
    encode: fn(&T) -> Option<String>,
    decode: fn(&str) -> Option<T>,
}

impl<T> Shared<T> {
    pub(crate) fn key(&self, key: &Key) -> Option<String> {
        let name = self.names.get(usize::try_from(key.0.0).ok()?)?;
        Some(self.store.redis_key(name, &key.1))
    }

    pub(crate) fn claim_ttl(&self, workload: WorkloadId) -> Duration {
        usize::try_from(workload.0)
            .ok()
            .and_then(|i| self.claims.get(i).copied())
            .unwrap_or(DEFAULT_CLAIM)
    }

    pub(crate) fn token(&self) -> String {
        self.store.token()
    }

    pub(crate) fn encoder(&self) -> fn(&T) -> Option<String> {
        self.encode
    }

    pub(crate) fn decode(&self, text: &str) -> Option<T> {
        (self.decode)(text)
    }
}

/// The pause before the next poll of another instance's claim, and the
/// one after it.
pub(crate) fn poll_pause(pause: Duration, claim_left: Duration) -> (Duration, Duration) {
    let wait = if claim_left.is_zero() {
        pause
    } else {
        pause.min(claim_left + Duration::from_millis(1))
    };
    (wait, (pause * 2).min(MAX_POLL))
}

pub(crate) const FIRST_POLL_PAUSE: Duration = FIRST_POLL;

/// How often a leader renews a claim of `ttl`: three times per TTL, so one
/// late or lost renewal does not let the claim lapse.
pub(crate) fn renew_every(ttl: Duration) -> Duration {
    (ttl / 3).max(MIN_RENEW)
}

/// The shared layer for a router's answers on `policy`: each workload's
/// claim lasts its worst-case call time (from the IR), at least a second.
pub(crate) fn for_router(store: RedisIdempotency, policy: &Policy) -> Shared<Arc<Completed>> {
    let names = policy.workloads.iter().map(|w| w.name.clone()).collect();
    let claims = (0..policy.workloads.len())
        .map(|i| {
            let wid = WorkloadId(u32::try_from(i).unwrap_or(u32::MAX));
            router_core::worst_case(policy, wid)
                .time
                .unwrap_or(DEFAULT_CLAIM)
                .max(MIN_CLAIM)
        })
        .collect();
    Shared {
        store,
        names,
        claims,
        encode: encode_completed,
        decode: decode_completed,
    }
}

/// An answer as stored in Redis: versioned, so a gateway of another
/// version that cannot read it leads instead of misreading it.
#[derive(Serialize, Deserialize)]
struct Stored {
    v: u8,
    target: String,
    attempts: u32,
    decision: u64,
    response: ChatResponse,
}

fn encode_completed(c: &Arc<Completed>) -> Option<String> {
    serde_json::to_string(&Stored {
        v: 1,
        target: c.target.clone(),
        attempts: c.attempts,
        decision: c.decision.as_u64(),
        response: c.response.clone(),
    })
    .ok()
}

fn decode_completed(text: &str) -> Option<Arc<Completed>> {
    let s: Stored = serde_json::from_str(text).ok()?;
    (s.v == 1).then(|| {
        Arc::new(Completed {
            response: s.response,
            target: s.target,
            attempts: s.attempts,
            decision: DecisionId::from_u64(s.decision),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_back_off_and_never_outlast_the_claim() {
        let (wait, next) = poll_pause(FIRST_POLL, Duration::from_secs(10));
        assert_eq!((wait, next), (FIRST_POLL, FIRST_POLL * 2));
        let (wait, _) = poll_pause(MAX_POLL, Duration::from_millis(5));
        assert_eq!(wait, Duration::from_millis(6));
        let (_, next) = poll_pause(MAX_POLL, Duration::ZERO);
        assert_eq!(next, MAX_POLL);
    }

    #[test]
    fn answers_round_trip_and_other_versions_are_not_read() {
        let c = Arc::new(Completed {
            response: ChatResponse {
                id: None,
                model: "m".into(),
                content: "hi".into(),
                tool_calls: Vec::new(),
                finish_reason: providers::FinishReason::Stop,
                usage: providers::Usage::default(),
            },
            target: "p/m".into(),
            attempts: 2,
            decision: DecisionId::from_u64(7),
        });
        let text = encode_completed(&c).unwrap_or_default();
        let back = decode_completed(&text);
        assert_eq!(back.as_ref().map(|b| (b.target.as_str(), b.attempts)), Some(("p/m", 2)));
        assert!(decode_completed(&text.replace("\"v\":1", "\"v\":2")).is_none());
        assert!(decode_completed("not json").is_none());
    }
}
