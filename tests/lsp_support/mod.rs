//! A minimal LSP client for the tests: starts `routec lsp`, frames JSON-RPC
//! messages, and waits for answers with a deadline that names what it
//! waited for. The server is killed when the client is dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long any one answer may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Client {
    child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Value>,
    /// Notifications read while waiting for something else.
    pending: Vec<Value>,
    next_id: i64,
}

/// Reads one framed message; `None` at the end of the stream.
fn read_frame(r: &mut impl BufRead) -> Option<Value> {
    let mut length = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length: ") {
            length = v.parse::<usize>().ok();
        }
    }
    let mut body = vec![0; length?];
    r.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

/// `Content-Length` framing around raw bytes.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

pub fn uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// The zero-based line and column of the `nth` (0-based) occurrence of
/// `needle` in ASCII `text`, plus `shift` columns.
pub fn pos(text: &str, needle: &str, nth: usize, shift: usize) -> Value {
    let at = text
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("`{needle}` occurs fewer than {} times", nth + 1))
        .0
        + shift;
    let line = text[..at].matches('\n').count();
    let col = at - text[..at].rfind('\n').map_or(0, |i| i + 1);
    json!({ "line": line, "character": col })
}

impl Client {
    /// Starts `routec lsp`, logging to `log`, and initializes it with `root`.
    pub fn start(root: &Path, log: &Path) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_routec"))
            .args(["lsp", "--log"])
            .arg(log)
            .env("RUST_LOG", "debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start `routec lsp`");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, incoming) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            while let Some(v) = read_frame(&mut r) {
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let mut c = Client {
            child,
            stdin,
            incoming,
            pending: Vec::new(),
            next_id: 1,
        };
        let init = c.request(
            "initialize",
            json!({ "processId": null, "rootUri": uri(root), "capabilities": {} }),
        );
        assert!(init["result"]["capabilities"]["hoverProvider"] == json!(true), "{init}");
        c.notify("initialized", json!({}));
        c
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).expect("write to the server");
        self.stdin.flush().expect("flush");
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        let body = json!({ "jsonrpc": "2.0", "method": method, "params": params });
        self.send_raw(&frame(body.to_string().as_bytes()));
    }

    fn next(&mut self, what: &str, deadline: Instant) -> Value {
        match self
            .incoming
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(v) => v,
            Err(RecvTimeoutError::Timeout) => panic!("waited {WAIT:?} for {what}; nothing came"),
            Err(RecvTimeoutError::Disconnected) => {
                panic!("the server closed its output while the test waited for {what}")
            }
        }
    }

    /// Sends a request and returns the whole response (`result` or `error`).
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        self.send_raw(&frame(body.to_string().as_bytes()));
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self.next(&format!("the answer to `{method}`"), deadline);
            if v.get("id") == Some(&json!(id)) && v.get("method").is_none() {
                return v;
            }
            self.pending.push(v);
        }
    }

    /// Waits for the next `publishDiagnostics` for `uri` and returns its list.
    pub fn diagnostics(&mut self, uri: &str) -> Vec<Value> {
        let matches = |v: &Value| v["method"] == "textDocument/publishDiagnostics" && v["params"]["uri"] == uri;
        if let Some(i) = self.pending.iter().position(matches) {
            let v = self.pending.remove(i);
            return v["params"]["diagnostics"].as_array().cloned().unwrap_or_default();
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let v = self.next(&format!("diagnostics for {uri}"), deadline);
            if matches(&v) {
                return v["params"]["diagnostics"].as_array().cloned().unwrap_or_default();
            }
            self.pending.push(v);
        }
    }

    /// Drops every message received so far.
    pub fn drain(&mut self) {
        self.pending.clear();
        while self.incoming.try_recv().is_ok() {}
    }

    pub fn open(&mut self, path: &Path, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri(path), "languageId": "route", "version": 1, "text": text } }),
        );
    }

    pub fn change(&mut self, path: &Path, version: i64, text: &str) {
        self.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri(path), "version": version }, "contentChanges": [{ "text": text }] }),
        );
    }

    /// `shutdown` then `exit`; returns the exit status. The server's
    /// closing its output is the readiness signal, waited for at most
    /// [`WAIT`].
    pub fn shutdown(mut self) -> Option<i32> {
        let r = self.request("shutdown", Value::Null);
        assert_eq!(r["result"], Value::Null, "{r}");
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + WAIT;
        loop {
            match self
                .incoming
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(_) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("waited {WAIT:?} for `routec lsp` to exit after `exit`"),
            }
        }
        self.child.wait().expect("wait for `routec lsp`").code()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
