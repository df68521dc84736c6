//! Shared pieces of the gateway's end-to-end tests: `routec serve` as a
//! separate process, a policy over fake providers, and a small HTTP helper.
//! Every wait is for an event (a line the process writes, its exit) with a
//! deadline; every process is killed by its guard, also when the test fails.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, PipeReader, PipeWriter, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::time::Duration;

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

/// `routec serve` running as a child process; killed by its PID when
/// dropped, also when the test fails.
pub struct Serve {
    child: Option<Child>,
    pid: u32,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its stderr, as far as it has been read.
    log: Arc<Log>,
    /// Our own end of the stderr pipe, to mark how far the log has been read.
    mark: PipeWriter,
    marks: AtomicU64,
}

impl Serve {
    /// Starts `routec serve --listen 127.0.0.1:0 ARGS` with `RUST_LOG` at
    /// `log_level`, and returns once it is listening: its first stdout line,
    /// `listening on http://ADDR`, is written after the policy is loaded and
    /// the socket bound. One `/readyz` then confirms it.
    pub async fn start(name: &str, args: &[&str], log_level: &str) -> Serve {
        Self::start_with_env(name, args, log_level, &[]).await
    }

    /// [`Serve::start`] with extra environment variables.
    pub async fn start_with_env(name: &str, args: &[&str], log_level: &str, env: &[(&str, &str)]) -> Serve {
        let (stderr, stderr_tx) = std::io::pipe().unwrap();
        let mark = stderr_tx.try_clone().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_routec"))
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", log_level)
            .env("ROUTEC_TEST_PROVIDER_KEY", PROVIDER_KEY)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr_tx)
            .spawn()
            .unwrap();
        let log = Log::read(stderr);
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next().and_then(Result::ok));
            // Keep reading so the child never blocks on a full pipe.
            for _ in lines {}
        });
        let mut serve = Serve {
            pid: child.id(),
            child: Some(child),
            base: String::new(),
            log,
            mark,
            marks: AtomicU64::new(0),
        };
        let first = rx.recv_timeout(Duration::from_secs(60)).ok().flatten();
        let Some(addr) = first.as_deref().and_then(|l| l.strip_prefix("listening on ")) else {
            panic!(
                "routec serve `{name}` did not print its address (got {first:?}); log:\n{}",
                serve.log_text()
            );
        };
        serve.base = addr.to_owned();
        let ready = get(&serve.base, "/readyz", &[]).await;
        assert_eq!(
            ready.status,
            200,
            "`{name}` listening but not ready: {}; log:\n{}",
            ready.body,
            serve.log_text()
        );
        serve
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends a signal (`HUP`, `TERM`) with `kill(1)`.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([format!("-{sig}"), self.pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Waits (bounded) for the process to exit by itself; its exit code.
    /// A thread waits on the child and reports on a channel; if `within`
    /// passes first, the process is killed and `None` returned.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(within) {
            Ok(status) => status.unwrap().code(),
            Err(_) => {
                // Still running (the thread owns and will reap it): kill by PID.
                let _ = Command::new("kill").args(["-KILL", &self.pid.to_string()]).status();
                None
            }
        }
    }

    /// Waits (bounded) until the log has a line containing `needle`; each
    /// line read wakes the wait. Panics with the log if none comes.
    pub async fn wait_for_log(&self, needle: &str, within: Duration) {
        let (log, wanted) = (Arc::clone(&self.log), needle.to_owned());
        let found = tokio::task::spawn_blocking(move || log.wait_for(&wanted, within))
            .await
            .unwrap();
        assert!(
            found,
            "`{needle}` was not logged within {within:?}; log:\n{}",
            self.log.text()
        );
    }

    /// Everything logged so far: a mark is written into the stderr pipe
    /// behind whatever the process has written, and the text is returned
    /// once the reader has reached it.
    pub fn log_text(&self) -> String {
        let mark = self.marks.fetch_add(1, Ordering::Relaxed) + 1;
        (&self.mark).write_all(format!("{MARK}{mark}\n").as_bytes()).unwrap();
        assert!(
            self.log.wait_for_mark(mark, Duration::from_secs(10)),
            "the log reader did not catch up within 10 s"
        );
        self.log.text()
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

/// Starts a mark written into a child's stderr pipe by [`Serve::log_text`];
/// `\u{1}` keeps it from ever matching a log line.
const MARK: &str = "\u{1}routec-test-log-mark ";

/// A child's stderr, read by a thread into memory; waiters are woken per
/// line read.
struct Log {
    state: Mutex<LogState>,
    changed: Condvar,
}

#[derive(Default)]
struct LogState {
    text: String,
    /// The last mark the reader has passed.
    mark: u64,
}

impl Log {
    fn read(pipe: PipeReader) -> Arc<Log> {
        let log = Arc::new(Log {
            state: Mutex::new(LogState::default()),
            changed: Condvar::new(),
        });
        let reader = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut pipe = BufReader::new(pipe);
            let mut line = Vec::new();
            // Ends when the child and our mark writer have both closed the pipe.
            while pipe.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                let mut text = String::from_utf8_lossy(&line).into_owned();
                let mut state = reader.state.lock().unwrap();
                // A mark can land inside a line longer than the pipe's atomic
                // write size; cutting it out joins the two halves again.
                if let Some(at) = text.find(MARK) {
                    let end = text[at..].find('\n').map_or(text.len(), |e| at + e + 1);
                    state.mark = text[at + MARK.len()..end].trim_end().parse().unwrap_or(state.mark);
                    text.replace_range(at..end, "");
                }
                state.text.push_str(&text);
                drop(state);
                reader.changed.notify_all();
                line.clear();
            }
        });
        log
    }

    fn text(&self) -> String {
        self.state.lock().unwrap().text.clone()
    }

    fn wait_for(&self, needle: &str, within: Duration) -> bool {
        let state = self.state.lock().unwrap();
        let (state, _) = self
            .changed
            .wait_timeout_while(state, within, |s| !s.text.contains(needle))
            .unwrap();
        state.text.contains(needle)
    }

    fn wait_for_mark(&self, mark: u64, within: Duration) -> bool {
        let state = self.state.lock().unwrap();
        let (state, _) = self
            .changed
            .wait_timeout_while(state, within, |s| s.mark < mark)
            .unwrap();
        state.mark >= mark
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

/// GETs `/metrics` and asserts `line` is one of its lines.
pub async fn assert_metric(base: &str, line: &str) {
    let metrics = get(base, "/metrics", &[]).await.body;
    assert!(
        metrics.lines().any(|l| l == line),
        "`{line}` is not in /metrics:\n{metrics}"
    );
}

/// Writes `dir/keys.toml`: one tenant per `(name, key)`, each allowed every
/// workload, keys stored hashed as the gateway wants them. Returns its path.
pub fn keys_file(dir: &std::path::Path, tenants: &[(&str, &str)]) -> std::path::PathBuf {
    let text: String = tenants
        .iter()
        .map(|(name, key)| {
            format!(
                "[tenants.{name}]\nkeys = [\"{}\"]\nworkloads = [\"*\"]\n",
                gateway::hash_key(key)
            )
        })
        .collect();
    let path = dir.join("keys.toml");
    std::fs::write(&path, text).unwrap();
    path
}
