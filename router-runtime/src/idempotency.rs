//! Idempotency: identical calls share one upstream call, and a replay
//! inside the window gets the stored result without new spend.
//!
//! Why: clients retry on timeouts and 5xx from the gateway itself; without
//! this, one reported production gateway double-billed ~4 % of traffic.
//!
//! A call is identified by `(workload, key)`, where the key is the caller's
//! `Idempotency-Key` or a content hash of the normalised request (computed
//! by the caller; this module only sees the number), plus the body hash:
//!
//! - nothing known → the caller **leads**: it makes the call and finishes
//!   its [`Leader`];
//! - the same key in flight → the caller **joins** and gets the leader's
//!   result, success or failure, without a second upstream call;
//! - the same key completed within its window → **replayed**: the stored
//!   success, no upstream call, no spend;
//! - the same key with a different body hash → [`KeyReusedError`]
//!   (`idempotency_key_reused`), in flight or stored.
//!
//! Failures are shared with the callers already waiting but never stored:
//! a later retry of a failed call runs again (it was not billed, and
//! replaying a transient error would pin it). A leader dropped without
//! finishing (its caller was cancelled) hands the call to one of the
//! waiters, which runs it afresh. Memory is bounded: stored results expire
//! with their window and at most `capacity` are kept (oldest evicted).
//!
//! With a [`RedisIdempotency`] store (several gateways on one Redis), the
//! caller that would lead here first claims the key in Redis, so a key
//! answered by one instance replays on the others and two instances racing
//! on one key make one upstream call; see [`redis`](self::redis) for the
//! protocol and what happens when Redis cannot be reached. Without one,
//! the request path pays one `Option` check.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use router_core::WorkloadId;
use thiserror::Error;
use tokio::sync::{oneshot, watch};

use crate::clock::{Clock, Millis};

mod redis;

pub use self::redis::RedisIdempotency;
pub(crate) use self::redis::for_router as shared_for_router;
use self::redis::{Remote, Shared};

/// What identifies a call for deduplication.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IdempotencyKey {
    /// The caller's `Idempotency-Key` header.
    Caller(String),
    /// A content hash of the normalised request (workloads that opt in).
    Content(u128),
}

/// The same idempotency key came with a different request body.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("idempotency key was already used with a different request body")]
pub struct KeyReusedError {
    in_flight: bool,
}

impl KeyReusedError {
    /// The stable error class (`idempotency_key_reused`).
    pub const CODE: &'static str = "idempotency_key_reused";

    /// Whether the first use is still in flight (else its result is stored).
    pub fn in_flight(&self) -> bool {
        self.in_flight
    }
}

#[derive(Clone, Debug)]
enum Broadcast<T, E> {
    Pending,
    Done(Result<T, E>),
    Abandoned,
}

enum Entry<T, E> {
    InFlight {
        body: u128,
        tx: watch::Sender<Broadcast<T, E>>,
        generation: u64,
    },
    Done {
        body: u128,
        value: T,
        generation: u64,
    },
}

type Key = (WorkloadId, IdempotencyKey);

struct State<T, E> {
    entries: HashMap<Key, Entry<T, E>>,
    /// Stored results by (expiry, generation), for expiry and eviction.
    stored: BTreeSet<(Millis, u64, KeyOrd)>,
    next_gen: u64,
}

/// A total order over keys for the expiry index.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct KeyOrd(u32, u8, String, u128);

fn key_ord(k: &Key) -> KeyOrd {
    match &k.1 {
        IdempotencyKey::Caller(s) => KeyOrd(k.0.0, 0, s.clone(), 0),
        IdempotencyKey::Content(h) => KeyOrd(k.0.0, 1, String::new(), *h),
    }
}

fn key_from_ord(o: &KeyOrd) -> Key {
    let k = if o.1 == 0 {
        IdempotencyKey::Caller(o.2.clone())
    } else {
        IdempotencyKey::Content(o.3)
    };
    (WorkloadId(o.0), k)
}

/// How a call was served.
#[derive(Debug)]
pub enum Claim<T, E> {
    /// Nothing known: make the call, then [`Leader::finish`].
    Lead(Leader<T, E>),
    /// An identical call was in flight; this is its result.
    Joined(Result<T, E>),
    /// A completed identical call within the window; no new spend.
    Replayed(T),
}

/// Single-flight and replay of call results (`T`), sharing failures (`E`)
/// with concurrent waiters only. Cheap to clone; clones share the cache.
pub struct IdempotencyCache<T, E> {
    state: Arc<Mutex<State<T, E>>>,
    clock: Arc<dyn Clock>,
    capacity: usize,
    shared: Option<Arc<Shared<T>>>,
}

impl<T, E> Clone for IdempotencyCache<T, E> {
    fn clone(&self) -> Self {
        IdempotencyCache {
            state: Arc::clone(&self.state),
            clock: Arc::clone(&self.clock),
            capacity: self.capacity,
            shared: self.shared.clone(),
        }
    }
}

impl<T, E> fmt::Debug for IdempotencyCache<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdempotencyCache")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<T, E> IdempotencyCache<T, E>
where
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    /// A cache keeping at most `capacity` stored results, on `clock`.
    pub fn new(capacity: usize, clock: Arc<dyn Clock>) -> Self {
        IdempotencyCache {
            state: Arc::new(Mutex::new(State {
                entries: HashMap::new(),
                stored: BTreeSet::new(),
                next_gen: 0,
            })),
            clock,
            capacity,
            shared: None,
        }
    }

    /// Shares keys through Redis too (see [`redis`](self::redis)).
    pub(crate) fn with_shared(mut self, shared: Shared<T>) -> Self {
        self.shared = Some(Arc::new(shared));
        self
    }

    fn lock(&self) -> MutexGuard<'_, State<T, E>> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Claims the call `(workload, key)` whose body hashes to `body`; a
    /// success is replayable for `window` after it finishes.
    pub async fn claim(
        &self,
        workload: WorkloadId,
        key: IdempotencyKey,
        body: u128,
        window: Duration,
    ) -> Result<Claim<T, E>, KeyReusedError> {
        let key: Key = (workload, key);
        loop {
            let step = {
                let mut st = self.lock();
                let now = self.clock.now();
                expire(&mut st, now);
                match st.entries.get(&key) {
                    Some(Entry::Done { body: b, value, .. }) => {
                        if *b != body {
                            return Err(KeyReusedError { in_flight: false });
                        }
                        return Ok(Claim::Replayed(value.clone()));
                    }
                    Some(Entry::InFlight { body: b, tx, .. }) => {
                        if *b != body {
                            return Err(KeyReusedError { in_flight: true });
                        }
                        Step::Wait(tx.subscribe())
                    }
                    None => {
                        st.next_gen += 1;
                        let generation = st.next_gen;
                        let (tx, _) = watch::channel(Broadcast::Pending);
                        st.entries.insert(key.clone(), Entry::InFlight { body, tx, generation });
                        Step::Lead(Leader {
                            cache: self.clone(),
                            key: Some(key.clone()),
                            generation,
                            body,
                            window,
                            shared: None,
                        })
                    }
                }
            };
            let mut rx = match step {
                Step::Wait(rx) => rx,
                Step::Lead(leader) => {
                    return match &self.shared {
                        None => Ok(Claim::Lead(leader)),
                        Some(shared) => claim_shared(shared, leader, &key, body).await,
                    };
                }
            };
            // Wait for the leader outside the lock.
            let outcome = rx
                .wait_for(|b| !matches!(b, Broadcast::Pending))
                .await
                .map(|b| b.clone())
                .unwrap_or(Broadcast::Abandoned);
            match outcome {
                Broadcast::Done(result) => return Ok(Claim::Joined(result)),
                // The leader went away: try again (one waiter will lead).
                Broadcast::Abandoned | Broadcast::Pending => {}
            }
        }
    }

    /// Claims and, when leading, runs `call`; returns its result and how it
    /// was served.
    pub async fn run<F, Fut>(
        &self,
        workload: WorkloadId,
        key: IdempotencyKey,
        body: u128,
        window: Duration,
        call: F,
    ) -> Result<(Result<T, E>, Served), KeyReusedError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        Ok(match self.claim(workload, key, body, window).await? {
            Claim::Lead(leader) => {
                let result = call().await;
                leader.finish_shared(result.clone()).await;
                (result, Served::Fresh)
            }
            Claim::Joined(result) => (result, Served::Joined),
            Claim::Replayed(value) => (Ok(value), Served::Replayed),
        })
    }

    /// Stored results (for tests and reports).
    pub fn stored(&self) -> usize {
        self.lock().stored.len()
    }
}

/// What the local lookup of a claim decided, outside the lock.
enum Step<T, E> {
    Wait(watch::Receiver<Broadcast<T, E>>),
    Lead(Leader<T, E>),
}

/// The local leader of a call asks Redis whether another instance has it:
/// it leads there too, replays the stored answer, polls another instance's
/// claim until it resolves, or meets a reused key. Redis failing leaves the
/// call to the local cache alone.
async fn claim_shared<T, E>(
    shared: &Arc<Shared<T>>,
    mut leader: Leader<T, E>,
    key: &Key,
    body: u128,
) -> Result<Claim<T, E>, KeyReusedError>
where
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    let Some(rkey) = shared.key(key) else {
        return Ok(Claim::Lead(leader));
    };
    let ttl = shared.claim_ttl(key.0);
    let token = shared.token();
    let mut pause = redis::FIRST_POLL_PAUSE;
    loop {
        match shared.store.claim(&rkey, body, &token, ttl).await {
            Err(e) => {
                tracing::warn!(error = %e, "idempotency: redis unreachable; this key is kept by this instance only");
                return Ok(Claim::Lead(leader));
            }
            Ok(Remote::Lead) => {
                leader.shared = Some(Box::new(SharedClaim::start(
                    shared.store.clone(),
                    shared.encoder(),
                    rkey,
                    token,
                    ttl,
                )));
                return Ok(Claim::Lead(leader));
            }
            Ok(Remote::Done(text)) => {
                let Some(value) = shared.decode(&text) else {
                    tracing::warn!("idempotency: an answer stored in redis cannot be read; calling upstream");
                    return Ok(Claim::Lead(leader));
                };
                // Local waiters get it too, and later local replays.
                leader.finish(Ok(value.clone()));
                return Ok(Claim::Replayed(value));
            }
            Ok(Remote::Reused { in_flight }) => {
                drop(leader);
                return Err(KeyReusedError { in_flight });
            }
            Ok(Remote::Pending(left)) => {
                let (wait, next) = redis::poll_pause(pause, left);
                tokio::time::sleep(wait).await;
                pause = next;
            }
        }
    }
}

/// A claim held in Redis by a local leader, renewed in the background
/// until it settles (as the shared concurrency leases are).
struct SharedClaim<T> {
    store: RedisIdempotency,
    encode: fn(&T) -> Option<String>,
    key: String,
    token: String,
    /// Dropping it stops the renewal task.
    renewal: oneshot::Sender<()>,
}

impl<T> SharedClaim<T> {
    /// Holds the claim `token` has on `key`, renewing it to `ttl` every
    /// third of `ttl` while the call is in flight: a stream can outlive its
    /// worst-case time once its first event came (only the idle timeout
    /// bounds it then), and a claim expiring mid-call would let another
    /// instance call upstream again. Called inside the runtime (the claim
    /// was just made there).
    fn start(
        store: RedisIdempotency,
        encode: fn(&T) -> Option<String>,
        key: String,
        token: String,
        ttl: Duration,
    ) -> SharedClaim<T> {
        let (renewal, stopped) = oneshot::channel();
        tokio::spawn(renew(store.clone(), key.clone(), token.clone(), ttl, stopped));
        SharedClaim {
            store,
            encode,
            key,
            token,
            renewal,
        }
    }

    /// Stores `answer` (or, with `None`, releases the claim) in the
    /// background: `finish` and `Drop` are synchronous. Until it lands,
    /// another instance sees the claim and polls.
    fn settle(self, answer: Option<(u128, String, Duration)>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            // No runtime (a leader dropped at shutdown): the claim expires.
            return;
        };
        let SharedClaim {
            store,
            key,
            token,
            renewal,
            ..
        } = self;
        drop(renewal);
        handle.spawn(settle(store, key, token, answer));
    }

    /// [`settle`](Self::settle), done when it returns.
    async fn settle_now(self, answer: Option<(u128, String, Duration)>) {
        let SharedClaim {
            store,
            key,
            token,
            renewal,
            ..
        } = self;
        drop(renewal);
        settle(store, key, token, answer).await;
    }
}

/// Renews a leader's claim until `stopped` (the claim settles), the claim
/// is no longer this leader's, or Redis fails once (a warning; the call
/// goes on and the claim may expire).
async fn renew(store: RedisIdempotency, key: String, token: String, ttl: Duration, mut stopped: oneshot::Receiver<()>) {
    let every = redis::renew_every(ttl);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            () = tokio::time::sleep(every) => {}
        }
        match store.renew(&key, &token, ttl).await {
            Ok(true) => {}
            Ok(false) => {
                // Settled meanwhile, or lost: the claim expired (Redis was
                // slow or paused) and another instance may lead it.
                if matches!(stopped.try_recv(), Err(oneshot::error::TryRecvError::Empty)) {
                    tracing::warn!("idempotency: a claim in redis expired while its call was in flight");
                }
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "idempotency: could not renew a claim in redis; it expires with its lifetime");
                return;
            }
        }
    }
}

/// Stores the answer over the claim, or releases the claim.
async fn settle(store: RedisIdempotency, key: String, token: String, answer: Option<(u128, String, Duration)>) {
    let done = match &answer {
        Some((body, text, window)) => store.finish(&key, *body, &token, text, *window).await,
        None => store.release(&key, &token).await,
    };
    if let Err(e) = done {
        tracing::warn!(error = %e, "idempotency: could not settle a key in redis; it expires with its claim");
    }
}

/// How [`IdempotencyCache::run`] served a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Served {
    /// This caller made the upstream call.
    Fresh,
    /// It shared an identical in-flight call.
    Joined,
    /// It got a stored result.
    Replayed,
}

fn expire<T, E>(st: &mut State<T, E>, now: Millis) {
    while let Some((at, generation, k)) = st.stored.first().cloned() {
        if at > now {
            break;
        }
        st.stored.pop_first();
        remove_done(st, &key_from_ord(&k), generation);
    }
}

fn remove_done<T, E>(st: &mut State<T, E>, key: &Key, generation: u64) {
    if matches!(st.entries.get(key), Some(Entry::Done { generation: g, .. }) if *g == generation) {
        st.entries.remove(key);
    }
}

/// The caller that makes the call. Finish it with the result; dropping it
/// unfinished hands the call to a waiting caller.
#[must_use = "finish the leader with the call's result"]
pub struct Leader<T, E> {
    cache: IdempotencyCache<T, E>,
    key: Option<Key>,
    generation: u64,
    body: u128,
    window: Duration,
    /// Boxed: only a Redis-backed leader has one.
    shared: Option<Box<SharedClaim<T>>>,
}

impl<T, E> fmt::Debug for Leader<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leader")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl<T, E> Leader<T, E>
where
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    /// Shares `result` with waiting callers and, if it is a success, stores
    /// it for replay within the window.
    ///
    /// With a claim in Redis, the answer is stored there in the background
    /// (a failure releases the claim); another instance polls until it lands.
    pub fn finish(mut self, result: Result<T, E>) {
        if let Some((claim, answer)) = self.take_shared(&result) {
            (*claim).settle(answer);
        }
        self.finish_local(result);
    }

    /// [`finish`](Self::finish), returning once the answer is stored in
    /// Redis too, so the caller's client can retry on any instance.
    pub(crate) async fn finish_shared(mut self, result: Result<T, E>) {
        let shared = self.take_shared(&result);
        self.finish_local(result);
        if let Some((claim, answer)) = shared {
            (*claim).settle_now(answer).await;
        }
    }

    /// The Redis claim, and what to store in it (nothing for a failure).
    #[expect(clippy::type_complexity, reason = "private, used twice")]
    fn take_shared(
        &mut self,
        result: &Result<T, E>,
    ) -> Option<(Box<SharedClaim<T>>, Option<(u128, String, Duration)>)> {
        let claim = self.shared.take()?;
        let answer = match result {
            Ok(value) if !self.window.is_zero() => (claim.encode)(value).map(|text| (self.body, text, self.window)),
            _ => None,
        };
        Some((claim, answer))
    }

    fn finish_local(mut self, result: Result<T, E>) {
        let Some(key) = self.key.take() else { return };
        let cache = self.cache.clone();
        let mut st = cache.lock();
        let now = cache.clock.now();
        let Some(Entry::InFlight { tx, generation, .. }) = st.entries.remove(&key) else {
            return;
        };
        if generation != self.generation {
            return;
        }
        if let Ok(value) = &result
            && !self.window.is_zero()
            && cache.capacity > 0
        {
            let expires_at = now.after(self.window);
            st.entries.insert(
                key.clone(),
                Entry::Done {
                    body: self.body,
                    value: value.clone(),
                    generation,
                },
            );
            st.stored.insert((expires_at, generation, key_ord(&key)));
            while st.stored.len() > cache.capacity {
                // Evict the one closest to expiry.
                if let Some((_, g, k)) = st.stored.pop_first() {
                    remove_done(&mut st, &key_from_ord(&k), g);
                }
            }
        }
        tx.send_replace(Broadcast::Done(result));
    }
}

impl<T, E> Drop for Leader<T, E> {
    fn drop(&mut self) {
        if let Some(claim) = self.shared.take() {
            (*claim).settle(None);
        }
        let Some(key) = self.key.take() else { return };
        let mut st = self
            .cache
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if matches!(st.entries.get(&key), Some(Entry::InFlight { generation, .. }) if *generation == self.generation)
            && let Some(Entry::InFlight { tx, .. }) = st.entries.remove(&key)
        {
            tx.send_replace(Broadcast::Abandoned);
        }
    }
}

#[cfg(test)]
mod tests;
