//! The contract every budget store keeps, and the requests that cross it.
//!
//! A store holds, per workload, limit and period, a *line*: committed spend,
//! reserved (in-flight) spend and three flags (halted, unlocked, alerted).
//! Caps are not stored: they come from the policy with every request, so a
//! reloaded policy applies at once. Each operation is atomic in the store
//! (one mutex, one `BEGIN IMMEDIATE` transaction, one Lua script): that is
//! what keeps concurrent callers, and several routers sharing a store, from
//! overspending. The rules themselves live in `router_state::BudgetBook` and
//! are mirrored by the Redis script; one conformance suite runs against all
//! three stores.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::budget::error::StoreError;
use crate::budget::memory::MemoryStore;
use crate::budget::redis::RedisStore;
use crate::budget::sqlite::SqliteStore;
use crate::clock::Millis;
use router_state::{
    CommitOutcome, CommitRequest, LimitKind, LineKey, LineState, ReservationId, ReserveOutcome, ReserveRequest,
};

/// Where budget lines live. Every method is one atomic step in the store.
#[async_trait]
pub trait BudgetStore: Send + Sync + fmt::Debug + 'static {
    /// Releases expired reservations of the workload, then reserves every
    /// line of `req` if all have room, else nothing.
    async fn reserve(&self, req: &ReserveRequest) -> Result<ReserveOutcome, StoreError>;

    /// Settles a reservation: frees what it reserved (if it has not expired)
    /// and adds the actual amounts to committed spend.
    async fn commit(&self, req: &CommitRequest) -> Result<CommitOutcome, StoreError>;

    /// Frees what a reservation holds. Releasing an unknown or already
    /// settled reservation does nothing.
    async fn release(&self, workload: &str, id: ReservationId) -> Result<(), StoreError>;

    /// Lifts every halted line among `lines` until its period rolls over;
    /// returns the limits it lifted.
    async fn unlock(&self, workload: &str, lines: &[LineKey]) -> Result<Vec<LimitKind>, StoreError>;

    /// The stored state of `lines` (zeroes for lines never touched), after
    /// releasing reservations that expired by `now`.
    async fn status(&self, workload: &str, lines: &[LineKey], now: Millis) -> Result<Vec<LineState>, StoreError>;

    /// A description for messages: the kind and place, never a password.
    fn describe(&self) -> String;
}

/// Opens the store a URL names: `memory:`, `sqlite:/path/file.db` (created
/// if missing) or `redis://host:port/db` (keys under the `routec` prefix;
/// add `?prefix=NAME` to change it).
pub async fn store_from_url(url: &str) -> Result<Arc<dyn BudgetStore>, StoreError> {
    if url == "memory:" || url == "memory" {
        return Ok(Arc::new(MemoryStore::new()));
    }
    if let Some(path) = url.strip_prefix("sqlite:") {
        let path = path.strip_prefix("//").unwrap_or(path);
        if path.is_empty() {
            return Err(StoreError::bad_url(
                url,
                "an sqlite url needs a file path, as in `sqlite:/var/lib/routec/budget.db`",
            ));
        }
        return Ok(Arc::new(SqliteStore::open(path).await?));
    }
    if url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("redis+unix://") {
        let (base, prefix) = split_prefix(url);
        return Ok(Arc::new(
            RedisStore::connect(base, prefix.as_deref().unwrap_or(RedisStore::DEFAULT_PREFIX)).await?,
        ));
    }
    Err(StoreError::bad_url(
        url,
        "use `memory:`, `sqlite:/path/file.db` or `redis://host:port/db`",
    ))
}

/// Splits `?prefix=NAME` off a Redis URL: the URL without its query, and
/// the prefix every Redis-backed store puts before its keys (`None`: the
/// default, `routec`). The gateway's response cache reads it too.
pub fn split_prefix(url: &str) -> (&str, Option<String>) {
    match url.split_once('?') {
        Some((base, query)) => {
            let prefix = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("prefix="))
                .filter(|p| !p.is_empty())
                .map(str::to_owned);
            (base, prefix)
        }
        None => (url, None),
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[test]
    fn redis_prefix_comes_from_the_query() {
        assert_eq!(split_prefix("redis://h:1/0"), ("redis://h:1/0", None));
        assert_eq!(
            split_prefix("redis://h:1/0?prefix=team"),
            ("redis://h:1/0", Some("team".to_owned()))
        );
    }

    #[tokio::test]
    async fn unknown_urls_are_refused_with_help() {
        let err = store_from_url("postgres://x").await.unwrap_err();
        assert!(err.to_string().contains("postgres://x"), "{err}");
        assert!(store_from_url("sqlite:").await.is_err());
        assert!(store_from_url("memory:").await.is_ok());
    }
}
