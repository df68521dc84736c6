//! The exact-match response cache, for workloads that opt in (`cache 1h`).
//!
//! Why exact-match only: a cached answer must be the answer the client
//! would have got, so the key covers everything that shapes it — the
//! normalised messages (the system prompt included), tools, `tool_choice`,
//! `response_format`, the sampling parameters, the workload (by its name,
//! so an alias shares it), the raised data class and the tenant — and
//! nothing else (`stream`, `user`, the wire format). A tenant's entries are
//! never another's: the tenant is part of the key.
//!
//! What is stored is the normalised answer and its target, so a request
//! cached through `/v1/chat/completions` answers the same request through
//! `/v1/messages`, and a streamed request is replayed as server-sent
//! events. Only complete answers are stored: never an error, never a stream
//! that broke or that the client left before its end.
//!
//! Two stores: in memory (moka, bounded in bytes, each entry expiring after
//! its workload's lifetime) and Redis, shared by every gateway on it. The
//! cache fails open: a store that cannot be reached is a miss, logged, and
//! the call goes upstream.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::Stream;
use providers::{
    ChatRequest, ChatResponse, FinishReason, Message, ResponseFormat, StreamEvent, Tool, ToolCall, ToolChoice, Usage,
};
use router_core::DataClass;
use router_runtime::RouteError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The default bound of the in-memory store.
pub const DEFAULT_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// A cache key: the SHA-256 of the canonical key input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey([u8; 32]);

impl CacheKey {
    /// The key of `request` for `workload` (its name), `tenant` and the
    /// data class the request raised, if it did.
    pub(crate) fn of(
        workload: &str,
        tenant: Option<&str>,
        data_class: Option<DataClass>,
        request: &ChatRequest,
    ) -> Self {
        let input = KeyInput {
            v: 1,
            tenant,
            workload,
            data_class: data_class.map(DataClass::as_str),
            messages: &request.messages,
            tools: &request.tools,
            tool_choice: request.tool_choice.as_ref(),
            response_format: request.response_format.as_ref(),
            temperature: request.temperature,
            top_p: request.top_p,
            max_tokens: request.max_tokens,
            stop: &request.stop,
            seed: request.seed,
        };
        // Plain data to a Vec cannot fail; if it ever did, every such
        // request would share the empty key's hash, so refuse to key it.
        let bytes = serde_json::to_vec(&input).unwrap_or_default();
        CacheKey(Sha256::digest(&bytes).into())
    }

    fn hex(&self) -> String {
        use std::fmt::Write as _;
        self.0.iter().fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
    }

    /// The first 16 hex digits: the answer's id on a hit.
    pub(crate) fn short(&self) -> String {
        let mut s = self.hex();
        s.truncate(16);
        s
    }
}

/// What the key covers, in a fixed field order.
#[derive(Serialize)]
struct KeyInput<'a> {
    v: u8,
    tenant: Option<&'a str>,
    workload: &'a str,
    data_class: Option<&'a str>,
    messages: &'a [Message],
    tools: &'a [Tool],
    tool_choice: Option<&'a ToolChoice>,
    response_format: Option<&'a ResponseFormat>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    max_tokens: Option<u32>,
    stop: &'a [String],
    seed: Option<i64>,
}

/// A stored answer: the normalised response and who gave it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Cached {
    /// `provider/model`.
    pub(crate) target: String,
    /// The answer.
    pub(crate) response: ChatResponse,
}

#[derive(Clone)]
struct Entry {
    bytes: Bytes,
    ttl: Duration,
}

/// Each entry lives for its workload's `cache` lifetime.
struct PerEntryTtl;

impl moka::Expiry<CacheKey, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _key: &CacheKey, value: &Entry, _created_at: Instant) -> Option<Duration> {
        Some(value.ttl)
    }
}

enum Store {
    // Sync: an insert is done when it returns, so a stream's last event
    // reaches the client only after its answer is stored.
    Memory(moka::sync::Cache<CacheKey, Entry>),
    Redis(redis::aio::ConnectionManager),
}

/// The response cache and its counters.
pub(crate) struct ResponseCache {
    store: Store,
    /// What Redis keys start with: `<prefix>:cache:`, the prefix of the
    /// store URL (`?prefix=NAME`, default `routec`), so two deployments
    /// on one Redis never answer each other's requests.
    redis_prefix: String,
    hits: AtomicU64,
    misses: AtomicU64,
    written: AtomicU64,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.store {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
        };
        f.debug_struct("ResponseCache")
            .field("store", &kind)
            .finish_non_exhaustive()
    }
}

/// The key prefix when the store URL names none, as for every store.
const DEFAULT_PREFIX: &str = "routec";

impl ResponseCache {
    /// An in-memory cache holding at most `max_bytes` of answers.
    pub(crate) fn memory(max_bytes: u64) -> Self {
        let cache = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_k: &CacheKey, v: &Entry| u32::try_from(v.bytes.len() + 96).unwrap_or(u32::MAX))
            .expire_after(PerEntryTtl)
            .build();
        Self::with(Store::Memory(cache))
    }

    /// A cache in Redis at `url`, shared by every gateway using it.
    ///
    /// # Errors
    /// The client's error when the URL is invalid or Redis cannot be reached.
    pub(crate) async fn redis(url: &str) -> Result<Self, redis::RedisError> {
        let (base, prefix) = router_runtime::split_prefix(url);
        let client = redis::Client::open(base)?;
        let manager = redis::aio::ConnectionManager::new(client).await?;
        let mut cache = Self::with(Store::Redis(manager));
        cache.redis_prefix = format!("{}:cache:", prefix.as_deref().unwrap_or(DEFAULT_PREFIX));
        Ok(cache)
    }

    fn with(store: Store) -> Self {
        ResponseCache {
            store,
            redis_prefix: format!("{DEFAULT_PREFIX}:cache:"),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            written: AtomicU64::new(0),
        }
    }

    /// The stored answer for `key`, counted as a hit or a miss.
    pub(crate) async fn get(&self, key: &CacheKey) -> Option<Cached> {
        let bytes = match &self.store {
            Store::Memory(cache) => cache.get(key).map(|e| e.bytes),
            Store::Redis(manager) => {
                let mut conn = manager.clone();
                let got: Result<Option<Vec<u8>>, _> = redis::cmd("GET")
                    .arg(format!("{}{}", self.redis_prefix, key.hex()))
                    .query_async(&mut conn)
                    .await;
                match got {
                    Ok(v) => v.map(Bytes::from),
                    Err(e) => {
                        tracing::warn!(error = %e, "response cache: redis unreachable; treated as a miss");
                        None
                    }
                }
            }
        };
        let cached = bytes.and_then(|b| serde_json::from_slice::<Cached>(&b).ok());
        let counter = if cached.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        cached
    }

    /// Stores a complete answer for `ttl`: at once in memory, in a task
    /// for Redis (the client is not kept waiting for it).
    pub(crate) fn put(self: &Arc<Self>, key: CacheKey, cached: &Cached, ttl: Duration) {
        let Ok(bytes) = serde_json::to_vec(cached) else { return };
        match &self.store {
            Store::Memory(cache) => {
                self.written.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                cache.insert(
                    key,
                    Entry {
                        bytes: Bytes::from(bytes),
                        ttl,
                    },
                );
            }
            Store::Redis(_) => {
                let this = Arc::clone(self);
                tokio::spawn(async move { this.put_redis(key, bytes, ttl).await });
            }
        }
    }

    /// Stores a complete answer for `ttl`, waiting for Redis too: for a
    /// whole answer, so the next identical request, on any gateway, finds it.
    pub(crate) async fn put_now(&self, key: CacheKey, cached: &Cached, ttl: Duration) {
        let Ok(bytes) = serde_json::to_vec(cached) else { return };
        match &self.store {
            Store::Memory(cache) => {
                self.written.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                cache.insert(
                    key,
                    Entry {
                        bytes: Bytes::from(bytes),
                        ttl,
                    },
                );
            }
            Store::Redis(_) => self.put_redis(key, bytes, ttl).await,
        }
    }

    async fn put_redis(&self, key: CacheKey, bytes: Vec<u8>, ttl: Duration) {
        let len = bytes.len() as u64;
        match &self.store {
            Store::Memory(_) => {}
            Store::Redis(manager) => {
                let mut conn = manager.clone();
                let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                let set: Result<(), _> = redis::cmd("SET")
                    .arg(format!("{}{}", self.redis_prefix, key.hex()))
                    .arg(bytes)
                    .arg("PX")
                    .arg(ms)
                    .query_async(&mut conn)
                    .await;
                if let Err(e) = set {
                    tracing::warn!(error = %e, "response cache: could not store an answer in redis");
                    return;
                }
            }
        }
        self.written.fetch_add(len, Ordering::Relaxed);
    }

    /// Hits, misses, bytes written, and the in-memory store's size in bytes.
    pub(crate) fn counts(&self) -> (u64, u64, u64, u64) {
        let size = match &self.store {
            Store::Memory(cache) => {
                // Sizes are settled lazily; a scrape settles them.
                cache.run_pending_tasks();
                cache.weighted_size()
            }
            Store::Redis(_) => 0,
        };
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
            self.written.load(Ordering::Relaxed),
            size,
        )
    }
}

/// A cached answer as the events of a stream.
pub(crate) fn replay(response: &ChatResponse) -> Vec<Result<StreamEvent, RouteError>> {
    response.stream_events().into_iter().map(Ok).collect()
}

/// Passes a stream's events through and, when it ends with `Done`, stores
/// the whole answer; a stream that breaks, or is dropped before its end,
/// stores nothing.
pub(crate) struct Recording<S> {
    inner: S,
    fill: Option<Fill>,
}

/// What a recording stream needs to store its answer.
pub(crate) struct Fill {
    pub(crate) cache: Arc<ResponseCache>,
    pub(crate) key: CacheKey,
    pub(crate) ttl: Duration,
    pub(crate) target: String,
    pub(crate) model: String,
    text: String,
    calls: Vec<ToolCall>,
    usage: Usage,
}

impl Fill {
    pub(crate) fn new(cache: Arc<ResponseCache>, key: CacheKey, ttl: Duration, target: String) -> Self {
        let model = crate::chat::target_model(&target).to_owned();
        Fill {
            cache,
            key,
            ttl,
            target,
            model,
            text: String::new(),
            calls: Vec::new(),
            usage: Usage::default(),
        }
    }

    fn see(&mut self, event: &StreamEvent) -> Option<FinishReason> {
        match event {
            StreamEvent::TextDelta { text } => self.text.push_str(text),
            StreamEvent::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            } => {
                let i = *index as usize;
                while self.calls.len() <= i {
                    self.calls.push(ToolCall {
                        id: String::new(),
                        name: String::new(),
                        arguments: String::new(),
                    });
                }
                let call = &mut self.calls[i];
                if let Some(id) = id {
                    call.id.clone_from(id);
                }
                if let Some(name) = name {
                    call.name.clone_from(name);
                }
                call.arguments.push_str(arguments);
            }
            StreamEvent::Usage(u) => self.usage = *u,
            StreamEvent::Done { finish_reason, .. } => return Some(*finish_reason),
        }
        None
    }
}

impl<S> Recording<S> {
    pub(crate) fn new(inner: S, fill: Fill) -> Self {
        Recording {
            inner,
            fill: Some(fill),
        }
    }
}

impl<S> Stream for Recording<S>
where
    S: Stream<Item = Result<StreamEvent, RouteError>> + Unpin,
{
    type Item = Result<StreamEvent, RouteError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = Pin::new(&mut self.inner).poll_next(cx);
        match &item {
            Poll::Ready(Some(Ok(event))) => {
                let finished = self.fill.as_mut().and_then(|f| f.see(event));
                if let Some(finish_reason) = finished
                    && let Some(fill) = self.fill.take()
                {
                    let cached = Cached {
                        target: fill.target,
                        response: ChatResponse {
                            id: None,
                            model: fill.model,
                            content: fill.text,
                            tool_calls: fill.calls,
                            finish_reason,
                            usage: fill.usage,
                        },
                    };
                    fill.cache.put(fill.key, &cached, fill.ttl);
                }
            }
            // A broken stream is never stored.
            Poll::Ready(Some(Err(_)) | None) => self.fill = None,
            Poll::Pending => {}
        }
        item
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn req(text: &str) -> ChatRequest {
        ChatRequest::user(text)
    }

    #[test]
    fn the_key_covers_what_shapes_the_answer_and_nothing_else() {
        let base = CacheKey::of("w", Some("t"), None, &req("hi"));
        assert_eq!(base, CacheKey::of("w", Some("t"), None, &req("hi")));
        let mut streamed = req("hi");
        streamed.stream = true;
        streamed.user = Some("u".into());
        assert_eq!(
            base,
            CacheKey::of("w", Some("t"), None, &streamed),
            "stream and user do not shape it"
        );
        assert_ne!(base, CacheKey::of("w", Some("t2"), None, &req("hi")), "tenant");
        assert_ne!(base, CacheKey::of("w", None, None, &req("hi")), "tenant");
        assert_ne!(base, CacheKey::of("w2", Some("t"), None, &req("hi")), "workload");
        assert_ne!(
            base,
            CacheKey::of("w", Some("t"), Some(DataClass::Private), &req("hi")),
            "data class"
        );
        assert_ne!(base, CacheKey::of("w", Some("t"), None, &req("hi!")), "messages");
        type Change = Box<dyn Fn(&mut ChatRequest)>;
        let variants: Vec<Change> = vec![
            Box::new(|r| r.messages.insert(0, Message::text(providers::Role::System, "s"))),
            Box::new(|r| r.temperature = Some(0.5)),
            Box::new(|r| r.top_p = Some(0.5)),
            Box::new(|r| r.max_tokens = Some(5)),
            Box::new(|r| r.stop = vec!["x".into()]),
            Box::new(|r| r.seed = Some(1)),
            Box::new(|r| r.tool_choice = Some(ToolChoice::Required)),
            Box::new(|r| r.response_format = Some(ResponseFormat::JsonObject)),
            Box::new(|r| {
                r.tools = vec![Tool {
                    name: "f".into(),
                    description: None,
                    parameters: serde_json::json!({}),
                }];
            }),
        ];
        for (i, change) in variants.iter().enumerate() {
            let mut r = req("hi");
            change(&mut r);
            assert_ne!(base, CacheKey::of("w", Some("t"), None, &r), "variant {i}");
        }
    }

    fn answer() -> ChatResponse {
        ChatResponse {
            id: None,
            model: "m".into(),
            content: "hello".into(),
            tool_calls: vec![ToolCall {
                id: "c".into(),
                name: "f".into(),
                arguments: "{}".into(),
            }],
            finish_reason: FinishReason::ToolCalls,
            usage: Usage {
                input_tokens: 3,
                output_tokens: 4,
                cached_tokens: 0,
            },
        }
    }

    #[tokio::test]
    async fn memory_store_round_trips_and_counts() {
        let cache = Arc::new(ResponseCache::memory(1024 * 1024));
        let key = CacheKey::of("w", None, None, &req("hi"));
        assert!(cache.get(&key).await.is_none());
        let cached = Cached {
            target: "p/m".into(),
            response: answer(),
        };
        cache.put(key, &cached, Duration::from_secs(60));
        let got = cache.get(&key).await.unwrap();
        assert_eq!(got.response, answer());
        let (hits, misses, written, _) = cache.counts();
        assert_eq!((hits, misses), (1, 1));
        assert!(written > 0);
    }

    #[tokio::test]
    async fn a_recorded_stream_stores_only_when_whole() {
        use futures::StreamExt;
        let cache = Arc::new(ResponseCache::memory(1024 * 1024));
        let whole = CacheKey::of("w", None, None, &req("whole"));
        let broken = CacheKey::of("w", None, None, &req("broken"));
        let events = replay(&answer());
        let stream = futures::stream::iter(events);
        let fill = Fill::new(Arc::clone(&cache), whole, Duration::from_secs(60), "p/m".into());
        let _: Vec<_> = Recording::new(stream, fill).collect().await;
        let mut cut = replay(&answer());
        cut.truncate(1);
        let fill = Fill::new(Arc::clone(&cache), broken, Duration::from_secs(60), "p/m".into());
        let _: Vec<_> = Recording::new(futures::stream::iter(cut), fill).collect().await;
        assert_eq!(cache.get(&whole).await.unwrap().response, answer());
        assert!(cache.get(&broken).await.is_none(), "a cut stream is not stored");
    }
}
