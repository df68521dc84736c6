//! How fast the language server answers on a 10,000-line workspace (the
//! compiler benchmark's generated policy, split over four files), measured
//! over the protocol as an editor sees it: JSON-RPC through a pipe to
//! `policy_lsp::serve` on its own thread.
//!
//! - diagnostics: from sending `didChange` (an edit that breaks or fixes a
//!   name, so every edit publishes) to reading its `publishDiagnostics`;
//! - hover and definition on a route target;
//! - baseline: a request the server refuses at once (unknown method), the
//!   cost of the round trip itself.
//!
//! Run with `cargo bench -p policy-lsp --bench responsiveness`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stdout)]

#[path = "../../policy-lang/benches/support/generated_policy.rs"]
mod generated_policy;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BLOCKS: usize = 179;
const FILES: usize = 4;
const WAIT: Duration = Duration::from_secs(30);

fn frame(v: &Value) -> Vec<u8> {
    let body = v.to_string();
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

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
            length = v.parse().ok();
        }
    }
    let mut body = vec![0; length?];
    r.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

struct Client {
    to_server: std::io::PipeWriter,
    from_server: Receiver<Value>,
    id: i64,
}

impl Client {
    fn send(&mut self, v: &Value) {
        self.to_server.write_all(&frame(v)).unwrap();
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.id += 1;
        let id = self.id;
        self.send(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let v = self.from_server.recv_timeout(WAIT).expect("an answer");
            if v["id"] == id {
                return v;
            }
        }
    }

    fn diagnostics_after(&mut self, v: &Value, uri: &str) -> Vec<Value> {
        self.send(v);
        loop {
            let m = self.from_server.recv_timeout(WAIT).expect("diagnostics");
            if m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri {
                return m["params"]["diagnostics"].as_array().cloned().unwrap_or_default();
            }
        }
    }
}

fn stats(name: &str, mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let median = samples[samples.len() / 2];
    let p95 = samples[samples.len() * 95 / 100];
    println!(
        "{name:<44} median {median:>10.2?}   p95 {p95:>10.2?}   ({} samples)",
        samples.len()
    );
    (median, p95)
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut texts = vec![String::new(); FILES];
    for i in 0..BLOCKS {
        generated_policy::block(&mut texts[i * FILES / BLOCKS], i);
    }
    let lines: usize = texts.iter().map(|t| t.lines().count()).sum();
    let paths: Vec<_> = (0..FILES).map(|f| dir.path().join(format!("part{f}.route"))).collect();
    for (p, t) in paths.iter().zip(&texts) {
        std::fs::write(p, t).unwrap();
    }
    let uri = |p: &Path| format!("file://{}", p.display());

    // The compiler's own work on the same files, in this process and this
    // run: what the server cannot do without.
    let sources: Vec<policy_lang::SourceFile> = paths
        .iter()
        .zip(&texts)
        .map(|(p, t)| policy_lang::SourceFile::new(p.display().to_string(), t.as_str()))
        .collect();
    let compiler: Vec<Duration> = (0..20)
        .map(|_| {
            let start = Instant::now();
            let ast = policy_lang::parse(&sources).unwrap();
            let (_, report) = policy_lang::check_and_lower(&ast);
            assert!(report.passed());
            start.elapsed()
        })
        .collect();

    let (server_in, to_server) = std::io::pipe().unwrap();
    let (from_server_raw, server_out) = std::io::pipe().unwrap();
    let server = std::thread::spawn(move || {
        let mut input = BufReader::new(server_in);
        policy_lsp::serve(&mut input, server_out)
    });
    let (tx, from_server) = channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(from_server_raw);
        while let Some(v) = read_frame(&mut r) {
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    let mut c = Client {
        to_server,
        from_server,
        id: 0,
    };
    c.request(
        "initialize",
        json!({ "processId": null, "rootUri": uri(dir.path()), "capabilities": {} }),
    );

    // The file edited: the last one. Open it, then alternate a broken and a
    // fixed version of one workload's route.
    let target = &paths[FILES - 1];
    let text = texts[FILES - 1].clone();
    let good_line = format!("    else => r{}\n", BLOCKS - 1);
    assert!(text.contains(&good_line), "the generator changed");
    let broken = text.replacen(&good_line, &format!("    else => r{}x\n", BLOCKS - 1), 1);
    // `initialized` checks the root's policy and `didOpen` again: each
    // publishes the file's warnings, read here so no edit below reads them.
    c.diagnostics_after(
        &json!({ "jsonrpc": "2.0", "method": "initialized", "params": {} }),
        &uri(target),
    );
    c.diagnostics_after(
        &json!({ "jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
            "textDocument": { "uri": uri(target), "languageId": "route", "version": 1, "text": text } } }),
        &uri(target),
    );
    println!(
        "workspace: {lines} lines in {FILES} files ({} KiB); editing {}",
        texts.iter().map(String::len).sum::<usize>() / 1024,
        target.file_name().unwrap().to_string_lossy()
    );

    let edits = 40;
    let mut diag = Vec::new();
    for k in 0..edits {
        let body = if k % 2 == 0 { &broken } else { &text };
        let change = json!({ "jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
            "textDocument": { "uri": uri(target), "version": k + 2 }, "contentChanges": [{ "text": body }] } });
        let start = Instant::now();
        let got = c.diagnostics_after(&change, &uri(target));
        diag.push(start.elapsed());
        // The generated policy has warnings; the broken edit adds one error.
        let errors = got.iter().filter(|d| d["severity"] == 1).count();
        assert_eq!(errors, usize::from(k % 2 == 0), "{got:?}");
    }

    // Hover and definition on the provider half of a target in the file.
    let line = text.lines().position(|l| l.contains(" => p")).unwrap();
    let col = text.lines().nth(line).unwrap().find(" => p").unwrap() + 5;
    let at = json!({ "textDocument": { "uri": uri(target) }, "position": { "line": line, "character": col } });
    let rounds = 300;
    let time = |c: &mut Client, method: &str| -> Vec<Duration> {
        (0..rounds)
            .map(|_| {
                let start = Instant::now();
                let r = c.request(method, at.clone());
                let took = start.elapsed();
                assert!(r.get("error").is_none() || method == "no/such/method", "{r}");
                took
            })
            .collect()
    };
    let baseline = time(&mut c, "no/such/method");
    let hover = time(&mut c, "textDocument/hover");
    let definition = time(&mut c, "textDocument/definition");
    let r = c.request("textDocument/hover", at.clone());
    assert!(
        r["result"]["contents"]["value"].as_str().unwrap().contains("provider"),
        "{r}"
    );

    println!();
    let (b, _) = stats("baseline: a refused request (round trip)", baseline);
    let (p, _) = stats("baseline: policy_lang parse + check, in process", compiler);
    let (d, _) = stats("diagnostics after an edit (didChange → publish)", diag);
    let (h, _) = stats("hover on a target", hover);
    let (g, _) = stats("definition of a target", definition);
    println!();
    println!(
        "goals: diagnostics under 50 ms ({d:.1?}, {:.1}× the compiler's own {p:.1?}), hover and definition under 5 ms ({h:.2?}, {g:.2?}; round trip {b:.2?})",
        d.as_secs_f64() / p.as_secs_f64()
    );

    c.request("shutdown", Value::Null);
    c.send(&json!({ "jsonrpc": "2.0", "method": "exit" }));
    server.join().unwrap().unwrap();
}
