//! A real `redis-server` of a test's own on a loopback port, for the Redis
//! budget store's tests and benchmark.
//!
//! Why wait for the server's log line rather than probe its port:
//! `redis-server` writes `Ready to accept connections` once it listens, so
//! the start reads its stdout on a thread and receives that event on a
//! channel, bounded by a deadline; one PING afterwards confirms it answers.
//! Why fail rather than skip when the binary is missing: CI installs it, so
//! a missing server must show up as a failure, never as a test that passed
//! without running.

use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// How long a server may take to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(10);
/// What `redis-server` logs when it accepts connections.
const READY_LINE: &str = "Ready to accept connections";
/// Fresh ports tried by [`RedisServer::start`] when another process takes
/// the free port between our check and the server's bind.
const PORT_TRIES: usize = 3;

/// A `redis-server` on `127.0.0.1` with persistence off, killed by its PID
/// when dropped (also when the test panics).
///
/// ```no_run
/// let redis = fake_upstream::redis::RedisServer::start();
/// let url = redis.url(); // redis://127.0.0.1:PORT/0
/// # drop(url);
/// ```
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts a server on a free loopback port and waits until it is ready.
    ///
    /// # Panics
    /// When `redis-server` is not on `PATH` or is not ready within 10 s.
    #[track_caller]
    pub fn start() -> Self {
        or_fail(Self::try_start())
    }

    /// Starts a server on `port`, e.g. to bring back one a test stopped.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    #[track_caller]
    pub fn start_on(port: u16) -> Self {
        or_fail(Self::try_start_on(port))
    }

    /// [`start`](Self::start), returning the failure instead, for a caller
    /// that can go on without Redis and says so (a benchmark).
    ///
    /// # Errors
    /// `redis-server` is missing, exited, or was not ready in time.
    pub fn try_start() -> io::Result<Self> {
        let mut last = None;
        for _ in 0..PORT_TRIES {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            match Self::try_start_on(port) {
                Err(e) if e.kind() == ErrorKind::AddrInUse => last = Some(e),
                other => return other,
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no free port")))
    }

    /// [`start_on`](Self::start_on), returning the failure instead.
    ///
    /// # Errors
    /// As [`try_start`](Self::try_start); [`ErrorKind::AddrInUse`] when the
    /// port is taken.
    pub fn try_start_on(port: u16) -> io::Result<Self> {
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot start `redis-server` ({e}): the Redis tests need it on PATH \
                         (apt-get install redis-server; CI installs it)"
                    ),
                )
            })?;
        let stdout = child.stdout.take();
        // From here on, dropping `server` kills the process.
        let server = RedisServer {
            child: Some(child),
            port,
        };
        let stdout = stdout.ok_or_else(|| io::Error::other("redis-server's stdout was not piped"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut before = Vec::new();
            let ready = lines.by_ref().map_while(Result::ok).any(|line| {
                let ready = line.contains(READY_LINE);
                before.push(line);
                ready
            });
            let _ = tx.send(if ready { Ok(()) } else { Err(before) });
            // Keep reading until the server exits, so it never blocks on a full pipe.
            for _ in lines {}
        });
        match rx.recv_timeout(READY_WITHIN) {
            Ok(Ok(())) => {}
            Ok(Err(output)) => {
                let output = output.join("\n");
                let kind = if output.contains("Address already in use") {
                    ErrorKind::AddrInUse
                } else {
                    ErrorKind::Other
                };
                return Err(io::Error::new(
                    kind,
                    format!("redis-server on port {port} exited before it was ready:\n{output}"),
                ));
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                return Err(io::Error::new(
                    ErrorKind::TimedOut,
                    format!("redis-server on port {port} did not log `{READY_LINE}` within {READY_WITHIN:?}"),
                ));
            }
        }
        server.ping()?;
        Ok(server)
    }

    /// One PING, expecting PONG.
    fn ping(&self) -> io::Result<()> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(1)))?;
        s.write_all(b"PING\r\n")?;
        let mut reply = [0u8; 7];
        s.read_exact(&mut reply)?;
        if &reply == b"+PONG\r\n" {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "redis-server on port {} said it was ready but answered PING with {:?}",
                self.port,
                String::from_utf8_lossy(&reply)
            )))
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its URL, database 0: `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server now (SIGKILL, by its PID) and reaps it. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

#[expect(
    clippy::panic,
    reason = "test support: a Redis the test needs and cannot have must fail the test, never skip it"
)]
#[track_caller]
fn or_fail(result: io::Result<RedisServer>) -> RedisServer {
    match result {
        Ok(server) => server,
        Err(e) => panic!("{e}"),
    }
}
