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

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use router_core::WorkloadId;
use thiserror::Error;
use tokio::sync::watch;

use crate::clock::{Clock, Millis};

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
}

impl<T, E> Clone for IdempotencyCache<T, E> {
    fn clone(&self) -> Self {
        IdempotencyCache {
            state: Arc::clone(&self.state),
            clock: Arc::clone(&self.clock),
            capacity: self.capacity,
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
        }
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
            let mut rx = {
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
                        tx.subscribe()
                    }
                    None => {
                        st.next_gen += 1;
                        let generation = st.next_gen;
                        let (tx, _) = watch::channel(Broadcast::Pending);
                        st.entries.insert(key.clone(), Entry::InFlight { body, tx, generation });
                        return Ok(Claim::Lead(Leader {
                            cache: self.clone(),
                            key: Some(key),
                            generation,
                            body,
                            window,
                        }));
                    }
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
                leader.finish(result.clone());
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
    pub fn finish(mut self, result: Result<T, E>) {
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
