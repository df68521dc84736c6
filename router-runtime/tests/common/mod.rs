//! Shared pieces of the integration tests: a policy builder, a real
//! `redis-server` on a free loopback port, and the three store backends.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod policy;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use policy::policy;
use router_runtime::{BudgetStore, MemoryStore, Millis, RedisStore, SqliteStore};

/// 2026-11-01T12:00:00Z.
pub const NOON: Millis = Millis(1_793_491_200_000 + 12 * 3_600_000);

/// A `redis-server` of our own on 127.0.0.1, killed when dropped (also when
/// the test fails).
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts a server on a free port and waits (bounded) until it answers
    /// PING. Panics with a clear message when `redis-server` is missing:
    /// CI installs it, so a missing server is a failure, never a skip.
    pub fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        Self::start_on(port)
    }

    /// Starts a server on `port` (to bring a stopped one back).
    pub fn start_on(port: u16) -> RedisServer {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start `redis-server` ({e}); the Redis store tests need it: apt-get install redis-server")
            });
        let server = RedisServer {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        for _ in 0..1_000 {
            if server.ping() {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {port} did not answer PING within 10 s"
            );
            // Poll interval between readiness probes.
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server on port {port} did not answer PING");
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    /// The server's URL (database 0).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server now (SIGKILL) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

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
