//! Shared pieces of the integration tests: the unit tests' policy builder,
//! a real `redis-server` on a free loopback port, and the three store
//! backends.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The unit tests' kit, compiled into each test binary as well: one source.
#[path = "../../../router-state/src/testkit.rs"]
mod testkit;

use std::path::PathBuf;
use std::sync::Arc;

pub use fake_upstream::redis::RedisServer;
use router_runtime::{BudgetStore, MemoryStore, Millis, RedisStore, SqliteStore};
pub(crate) use testkit::policy;

/// 2026-11-01T12:00:00Z.
pub const NOON: Millis = Millis(1_793_491_200_000 + 12 * 3_600_000);

/// One of the three stores, able to open several connections to the same data.
pub enum Backend {
    Memory(Arc<MemoryStore>),
    Sqlite(tempfile::TempDir),
    Redis(RedisServer),
}

impl Backend {
    pub fn memory() -> Backend {
        Backend::Memory(Arc::new(MemoryStore::new()))
    }

    pub fn sqlite() -> Backend {
        Backend::Sqlite(tempfile::tempdir().unwrap())
    }

    pub fn redis() -> Backend {
        Backend::Redis(RedisServer::start())
    }

    pub fn sqlite_path(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("budget.db")
    }

    /// A new connection (the same one for memory, which is per process).
    pub async fn store(&self) -> Arc<dyn BudgetStore> {
        match self {
            Backend::Memory(m) => Arc::clone(m) as Arc<dyn BudgetStore>,
            Backend::Sqlite(dir) => Arc::new(SqliteStore::open(Self::sqlite_path(dir)).await.unwrap()),
            Backend::Redis(server) => Arc::new(RedisStore::connect(&server.url(), "routec-test").await.unwrap()),
        }
    }
}
