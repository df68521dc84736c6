//! Shared pieces of the gateway's end-to-end tests: `routec serve` as a
//! separate process, a policy over fake providers, a `redis-server`, and a
//! small HTTP helper. Every wait is a bounded poll; every process is killed
//! by its guard, also when the test fails.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A provider key the gateway is given through its environment; it must
/// never appear in a log line, a body or a header.
pub const PROVIDER_KEY: &str = "sk-provider-CANARY-7d1e0c9b5a";

/// Two fake OpenAI-shaped providers behind one workload `chat` (alias
/// `gpt-4o-mini`): `primary/m1`, falling back to `secondary/m2`; and a
/// workload `budgeted` on `primary/m1` with a 1k tokens/day budget.
pub fn policy(primary: &str, secondary: &str) -> String {
    format!(
        r#"
provider primary {{
  adapter openai_compatible
  base_url "{primary}"
  key env("ROUTEC_TEST_PROVIDER_KEY")
  tier paid
  data private
  model m1 {{
    id "gpt-4o-mini"
    price $1/M in, $2/M out
    context 128k
    max_output 8k
    supports tools, json_schema, stream
  }}
}}

provider secondary {{
  adapter openai_compatible
  base_url "{secondary}"
  key env("ROUTEC_TEST_PROVIDER_KEY")
  tier paid
  data private
  model m2 {{
    price $2/M in, $4/M out
    context 128k
    max_output 8k
    supports tools, json_schema, stream
  }}
}}

workload chat {{
  task chat
  data public
  max_tokens 1000
  alias "gpt-4o-mini"
  route fallback [
    primary/m1
    secondary/m2
  ] on rate_limited, overloaded, server_error, timeout(10s)
}}

workload budgeted {{
  task chat
  data public
  max_tokens 1000
  budget 1k tokens/day
  route primary/m1
}}
"#
    )
}

/// `routec serve` running as a child process; killed when dropped.
pub struct Serve {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its stderr (the log), captured to a file.
    pub log: PathBuf,
}

impl Serve {
    /// Starts `routec serve --listen 127.0.0.1:0 ARGS` with `RUST_LOG` at
    /// `log_level`, reads the bound address from its first stdout line,
    /// and waits (bounded) until `/readyz` answers 200.
    pub async fn start(dir: &Path, name: &str, args: &[&str], log_level: &str) -> Serve {
        let log = dir.join(format!("{name}.log"));
        let stderr = std::fs::File::create(&log).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_routec"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", log_level)
            .env("ROUTEC_TEST_PROVIDER_KEY", PROVIDER_KEY)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next().and_then(Result::ok));
            // Keep reading so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let mut serve = Serve {
            child: Some(child),
            base: String::new(),
            log,
        };
        let first = rx.recv_timeout(Duration::from_secs(60)).ok().flatten();
        let Some(addr) = first.as_deref().and_then(|l| l.strip_prefix("listening on ")) else {
            panic!(
                "routec serve did not print its address (got {first:?}); log:\n{}",
                serve.log_text()
            );
        };
        serve.base = addr.to_owned();
        serve.wait_ready().await;
        serve
    }

    /// Polls `/readyz` until it answers 200: at most 500 probes, 20 s.
    pub async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        for _ in 0..500 {
            if let Ok(r) = client.get(format!("{}/readyz", self.base)).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not ready within 20 s; log:\n{}",
                self.log_text()
            );
            // The interval between readiness probes, not a wait for an event.
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        panic!("not ready after 500 probes; log:\n{}", self.log_text());
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends a signal (`HUP`, `TERM`) with `kill(1)`.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Waits (bounded) for the process to exit by itself; its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut()?;
        for _ in 0..10_000 {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status.code();
            }
            if Instant::now() >= deadline {
                return None;
            }
            // The interval between exit checks.
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Everything logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A `redis-server` of the test's own on a free loopback port, killed when
/// dropped. Fails (never skips) when `redis-server` is missing.
pub struct Redis {
    child: Option<Child>,
    pub port: u16,
}

impl Redis {
    pub fn start() -> Redis {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
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
                panic!("cannot start `redis-server` ({e}): this test needs it (apt-get install redis-server)")
            });
        let redis = Redis {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        for _ in 0..1_000 {
            if redis.ping() {
                return redis;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING within 10 s"
            );
            // The interval between readiness probes.
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("redis-server did not answer PING");
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The error code, asserting the body has OpenAI's error shape.
    pub fn error_code(&self) -> String {
        let json = self.json();
        let e = &json["error"];
        assert!(
            e["message"].is_string() && e["type"].is_string() && e["code"].is_string() && e.get("param").is_some(),
            "not OpenAI's error shape: {} {}",
            self.status,
            self.body
        );
        e["code"].as_str().unwrap_or_default().to_owned()
    }
}

/// POSTs `body` as JSON to `base` + `path` with extra headers.
pub async fn post(base: &str, path: &str, body: impl Into<reqwest::Body>, headers: &[(&str, &str)]) -> Answer {
    let client = reqwest::Client::new();
    let mut req = client
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    read(req.send().await.unwrap()).await
}

/// GETs `base` + `path`.
pub async fn get(base: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let client = reqwest::Client::new();
    let mut req = client.get(format!("{base}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    read(req.send().await.unwrap()).await
}

async fn read(r: reqwest::Response) -> Answer {
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.text().await.unwrap_or_default();
    Answer { status, headers, body }
}

/// A minimal valid chat body for `model`.
pub fn chat_body(model: &str) -> String {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": "Say hi"}]}).to_string()
}

/// Polls `/metrics` until `line` appears: at most 500 probes, 20 s.
pub async fn wait_for_metric(base: &str, line: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    for _ in 0..500 {
        last = get(base, "/metrics", &[]).await.body;
        if last.lines().any(|l| l == line) {
            return last;
        }
        if Instant::now() >= deadline {
            break;
        }
        // The interval between probes.
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    panic!("`{line}` never appeared in /metrics; last:\n{last}");
}
