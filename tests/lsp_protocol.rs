//! `routec lsp` driven over stdio the way an editor drives it: initialize,
//! open and change files, read published diagnostics, and ask for hover,
//! definition, references, rename, outline, completion and formatting.
//! The policy spans two files, so names and diagnostics cross between them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod lsp_support;

use std::path::{Path, PathBuf};

use lsp_support::{Client, frame, pos, uri};
use serde_json::{Value, json};

const PROVIDERS: &str = r#"provider cerebras {
  adapter cerebras
  key env("CEREBRAS_API_KEY")
  tier free
  jurisdiction us
  data public
  limits rpm 30
  model llama-3.3-70b {
    price free
    context 128k
    supports tools, stream
  }
}

provider anthropic {
  adapter anthropic
  key env("ANTHROPIC_API_KEY")
  tier paid
  data private
  model sonnet {
    price $3/M in, $15/M out
  }
}
"#;

const WORKLOADS: &str = r#"route pool = fallback [
  cerebras/llama-3.3-70b,
  anthropic/sonnet,
] on rate_limited, 503

workload summary {
  task summarise
  data public
  route pool
}
"#;

struct Fixture {
    _dir: tempfile::TempDir,
    providers: PathBuf,
    workloads: PathBuf,
    log: PathBuf,
    client: Client,
}

fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let providers = dir.path().join("providers.route");
    let workloads = dir.path().join("workloads.route");
    std::fs::write(&providers, PROVIDERS).unwrap();
    std::fs::write(&workloads, WORKLOADS).unwrap();
    let log = dir.path().join("lsp.log");
    let client = Client::start(dir.path(), &log);
    Fixture {
        _dir: dir,
        providers,
        workloads,
        log,
        client,
    }
}

fn at(path: &Path, position: Value) -> Value {
    json!({ "textDocument": { "uri": uri(path) }, "position": position })
}

fn codes(diags: &[Value]) -> Vec<String> {
    diags
        .iter()
        .map(|d| d["code"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn diagnostics_match_check_and_clear_when_fixed() {
    let mut f = start();
    f.client.open(&f.workloads, WORKLOADS);
    // A clean policy publishes nothing; break it.
    let broken = WORKLOADS.replace("route pool\n", "route pol\n");
    f.client.change(&f.workloads, 2, &broken);
    let diags = f.client.diagnostics(&uri(&f.workloads));
    assert_eq!(codes(&diags), ["R0101"], "{diags:?}");
    let d = &diags[0];
    assert!(d["message"].as_str().unwrap().starts_with("unknown route `pol`"), "{d}");
    assert!(d["message"].as_str().unwrap().contains("\nhelp: "), "{d}");
    assert_eq!(d["range"]["start"], pos(&broken, "pol\n", 0, 0), "{d}");
    assert_eq!(d["source"], "routec");
    assert_eq!(d["severity"], 1);
    let related = &d["relatedInformation"][0];
    assert_eq!(related["message"], "did you mean `pool`?", "{d}");

    // The same code and message as `routec check --format json` on disk.
    std::fs::write(&f.workloads, &broken).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_routec"))
        .args(["check", "--format", "json"])
        .arg(f.workloads.parent().unwrap())
        .output()
        .unwrap();
    let check: Value = serde_json::from_slice(&out.stdout).unwrap();
    let cd = &check["diagnostics"][0];
    assert_eq!(cd["code"], d["code"]);
    assert_eq!(
        format!(
            "{}\nhelp: {}",
            cd["message"].as_str().unwrap(),
            cd["help"].as_str().unwrap()
        ),
        d["message"].as_str().unwrap()
    );
    assert_eq!(
        cd["line"].as_u64().unwrap(),
        d["range"]["start"]["line"].as_u64().unwrap() + 1
    );

    // Fixed: the diagnostics are cleared, not left stale.
    f.client.change(&f.workloads, 3, WORKLOADS);
    assert_eq!(f.client.diagnostics(&uri(&f.workloads)), Vec::<Value>::new());
    assert_eq!(f.client.shutdown(), Some(0));
}

#[test]
fn an_error_in_one_file_can_point_into_another() {
    let mut f = start();
    // Making `cerebras` private-capable data-wise wrong: the workload is
    // private, and its route reaches a public-only provider in the other file.
    let private = WORKLOADS.replace("data public", "data private");
    f.client.open(&f.workloads, &private);
    let diags = f.client.diagnostics(&uri(&f.workloads));
    assert!(!diags.is_empty(), "{diags:?}");
    let files: Vec<String> = diags
        .iter()
        .flat_map(|d| d["relatedInformation"].as_array().cloned().unwrap_or_default())
        .map(|r| r["location"]["uri"].as_str().unwrap().to_string())
        .collect();
    assert!(
        files.contains(&uri(&f.providers)),
        "no label in providers.route: {diags:#?}"
    );
    // Editing the other file to fix it clears this file's diagnostics.
    let public_ok = PROVIDERS.replace("data public", "data private");
    f.client.open(&f.providers, &public_ok);
    assert_eq!(f.client.diagnostics(&uri(&f.workloads)), Vec::<Value>::new());
    assert_eq!(f.client.shutdown(), Some(0));
}

#[test]
fn hover_definition_references_and_rename_cross_files() {
    let mut f = start();
    f.client.open(&f.workloads, WORKLOADS);
    f.client.open(&f.providers, PROVIDERS);

    // Hover on the provider half of a target: its adapter, tier, data class,
    // jurisdiction and limits.
    let h = f.client.request(
        "textDocument/hover",
        at(&f.workloads, pos(WORKLOADS, "cerebras/", 0, 2)),
    );
    let text = h["result"]["contents"]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("{h}"));
    for want in [
        "provider** `cerebras`",
        "cerebras (openai_compatible)",
        "tier: free",
        "up to public",
        "jurisdiction: us",
        "rpm 30",
    ] {
        assert!(text.contains(want), "hover lacks {want:?}: {text}");
    }
    // On the model half: price, context and capabilities.
    let h = f
        .client
        .request("textDocument/hover", at(&f.workloads, pos(WORKLOADS, "llama", 0, 1)));
    let text = h["result"]["contents"]["value"].as_str().unwrap();
    for want in ["price: free", "context: 128000", "tools, stream"] {
        assert!(text.contains(want), "hover lacks {want:?}: {text}");
    }
    // On a workload: its plan for default facts.
    let h = f
        .client
        .request("textDocument/hover", at(&f.workloads, pos(WORKLOADS, "summary", 0, 0)));
    let text = h["result"]["contents"]["value"].as_str().unwrap();
    assert!(
        text.contains("`cerebras/llama-3.3-70b` → `anthropic/sonnet`") || text.contains("`cerebras/llama-3.3-70b`"),
        "{text}"
    );
    assert!(text.contains("worst case per call: 2 calls"), "{text}");
    // On a named route: its expansion.
    let h = f
        .client
        .request("textDocument/hover", at(&f.workloads, pos(WORKLOADS, "pool\n", 0, 1)));
    let text = h["result"]["contents"]["value"].as_str().unwrap();
    assert!(
        text.contains("route** `pool`") && text.contains("anthropic/sonnet"),
        "{text}"
    );

    // Definition: from the target in workloads.route to providers.route.
    let d = f.client.request(
        "textDocument/definition",
        at(&f.workloads, pos(WORKLOADS, "anthropic/", 0, 0)),
    );
    assert_eq!(d["result"]["uri"], uri(&f.providers), "{d}");
    assert_eq!(
        d["result"]["range"]["start"],
        pos(PROVIDERS, "anthropic {", 0, 0),
        "{d}"
    );
    let d = f.client.request(
        "textDocument/definition",
        at(&f.workloads, pos(WORKLOADS, "pool\n", 0, 0)),
    );
    assert_eq!(d["result"]["range"]["start"], pos(WORKLOADS, "pool", 0, 0), "{d}");

    // References of `cerebras`, from its definition, declaration included.
    let mut p = at(&f.providers, pos(PROVIDERS, "cerebras {", 0, 0));
    p["context"] = json!({ "includeDeclaration": true });
    let r = f.client.request("textDocument/references", p);
    let uris: Vec<&str> = r["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["uri"].as_str().unwrap())
        .collect();
    assert_eq!(uris, [uri(&f.providers), uri(&f.workloads)], "{r}");

    // Rename it: both files change, and only the name.
    let mut p = at(&f.workloads, pos(WORKLOADS, "cerebras/", 0, 0));
    p["newName"] = json!("fast");
    let r = f.client.request("textDocument/rename", p);
    let changes = r["result"]["changes"].as_object().unwrap_or_else(|| panic!("{r}"));
    assert_eq!(changes.len(), 2, "{r}");
    let edits = changes[&uri(&f.workloads)].as_array().unwrap();
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0]["newText"], "fast");
    assert_eq!(edits[0]["range"]["start"], pos(WORKLOADS, "cerebras/", 0, 0));
    assert_eq!(
        edits[0]["range"]["end"],
        pos(WORKLOADS, "cerebras/", 0, "cerebras".len())
    );
    // A name the language would not accept is refused.
    let mut p = at(&f.workloads, pos(WORKLOADS, "cerebras/", 0, 0));
    p["newName"] = json!("two words");
    let r = f.client.request("textDocument/rename", p);
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a valid provider name"),
        "{r}"
    );

    // Outline: providers with their models nested.
    let s = f.client.request(
        "textDocument/documentSymbol",
        json!({ "textDocument": { "uri": uri(&f.providers) } }),
    );
    let names: Vec<&str> = s["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["cerebras", "anthropic"], "{s}");
    assert_eq!(s["result"][0]["children"][0]["name"], "llama-3.3-70b", "{s}");
    assert_eq!(f.client.shutdown(), Some(0));
}

#[test]
fn completion_offers_what_fits_the_cursor() {
    let mut f = start();
    let text = "workload w {\n  data public\n  route \n}\n";
    f.client.open(&f.workloads, text);
    let labels = |r: &Value| -> Vec<String> {
        r["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["label"].as_str().unwrap().to_string())
            .collect()
    };
    let r = f
        .client
        .request("textDocument/completion", at(&f.workloads, pos(text, "route ", 0, 6)));
    let got = labels(&r);
    for want in ["fallback", "cerebras/llama-3.3-70b", "anthropic/sonnet"] {
        assert!(got.contains(&want.to_string()), "no {want}: {got:?}");
    }
    let r = f.client.request(
        "textDocument/completion",
        at(&f.workloads, pos(text, "data public", 0, 0)),
    );
    assert!(labels(&r).contains(&"max_tokens".to_string()), "{r}");
    let r = f.client.request(
        "textDocument/completion",
        at(&f.providers, pos(PROVIDERS, "cerebras\n", 0, 0)),
    );
    // providers.route is known (read from disk) though not open.
    assert!(labels(&r).contains(&"groq".to_string()), "{r}");
    assert_eq!(f.client.shutdown(), Some(0));
}

#[test]
fn formatting_is_routec_fmt() {
    let mut f = start();
    let messy = "workload   w{data public\nroute cerebras/llama-3.3-70b}\n";
    f.client.open(&f.workloads, messy);
    let r = f.client.request(
        "textDocument/formatting",
        json!({ "textDocument": { "uri": uri(&f.workloads) }, "options": { "tabSize": 2, "insertSpaces": true } }),
    );
    let edits = r["result"].as_array().unwrap_or_else(|| panic!("{r}"));
    assert_eq!(edits.len(), 1, "{r}");
    std::fs::write(&f.workloads, messy).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_routec"))
        .arg("fmt")
        .arg(&f.workloads)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        edits[0]["newText"].as_str().unwrap(),
        std::fs::read_to_string(&f.workloads).unwrap()
    );
    // A file that does not parse is not formatted.
    f.client.change(&f.workloads, 2, "workload w {");
    let r = f.client.request(
        "textDocument/formatting",
        json!({ "textDocument": { "uri": uri(&f.workloads) }, "options": { "tabSize": 2, "insertSpaces": true } }),
    );
    assert!(
        r["error"]["message"].as_str().unwrap().contains("does not parse"),
        "{r}"
    );
    assert_eq!(f.client.shutdown(), Some(0));
}

#[test]
fn bad_input_never_crashes_or_leaves_stale_diagnostics() {
    let mut f = start();
    f.client.open(&f.workloads, WORKLOADS);
    // Half-typed buffers: unclosed braces, a keyword cut in half, a pasted
    // replacement character. Each publishes diagnostics for what is there.
    let halves = [
        "route pool = fallback [\n  cerebras/llama-3.3-70b,\n",
        "workload summary {\n  task summarise\n  da",
        "work",
        "workload summary {\n  data public\n  route pool\n}\nroute pool = anthropic/sonnet \u{FFFD}\u{0}",
    ];
    for (i, text) in halves.iter().enumerate() {
        f.client.change(&f.workloads, 10 + i as i64, text);
        let diags = f.client.diagnostics(&uri(&f.workloads));
        assert!(!diags.is_empty(), "no diagnostics for {text:?}");
        // Hover and completion still answer on a broken buffer.
        let r = f.client.request(
            "textDocument/hover",
            at(&f.workloads, json!({"line": 0, "character": 2})),
        );
        assert!(r.get("error").is_none(), "{r}");
        let r = f.client.request(
            "textDocument/completion",
            at(&f.workloads, json!({"line": 1, "character": 3})),
        );
        assert!(r.get("error").is_none(), "{r}");
    }
    // A 10 MB buffer gets the size diagnostic.
    let big = format!("# {}\n", "x".repeat(10 * 1024 * 1024));
    f.client.change(&f.workloads, 20, &big);
    let diags = f.client.diagnostics(&uri(&f.workloads));
    assert_eq!(codes(&diags), ["R0003"], "{diags:?}");
    // Malformed JSON-RPC: bad JSON, a non-UTF-8 body, a broken header, a
    // request without params. The server logs each and goes on.
    f.client
        .send_raw(&frame(b"{\"jsonrpc\": \"2.0\", \"id\": 99, \"method\""));
    f.client.send_raw(&frame(&[0xff, 0xfe, 0x00, b'{']));
    f.client.send_raw(b"Content-Length: nope\r\n\r\n");
    let r = f.client.request("textDocument/hover", json!(null));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = f.client.request("no/such/method", json!({}));
    assert_eq!(r["error"]["code"], -32601, "{r}");
    // Back to a good buffer: the size error is gone.
    f.client.change(&f.workloads, 30, WORKLOADS);
    assert_eq!(f.client.diagnostics(&uri(&f.workloads)), Vec::<Value>::new());
    let log_path = f.log.clone();
    assert_eq!(f.client.shutdown(), Some(0));
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("skipped a malformed message"), "{log}");
    assert!(log.contains("not UTF-8"), "{log}");
    assert!(log.contains("not a JSON-RPC message"), "{log}");
}

#[test]
fn requests_before_initialize_and_exit_without_shutdown_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_routec"))
        .arg("lsp")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .current_dir(dir.path())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().unwrap();
        stdin
            .write_all(&frame(
                br#"{"jsonrpc":"2.0","id":1,"method":"textDocument/hover","params":{}}"#,
            ))
            .unwrap();
        stdin
            .write_all(&frame(br#"{"jsonrpc":"2.0","method":"exit"}"#))
            .unwrap();
    }
    // The server exits on `exit` and closes stdout: reading to the end is
    // the wait, and `exit` is sent, so it cannot hang.
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"code\":-32002"), "{text}");
    assert_eq!(out.status.code(), Some(1), "exit without shutdown is status 1");
}

#[test]
fn quick_fixes_and_the_explain_lens() {
    let mut f = start();
    f.client.open(&f.workloads, WORKLOADS);
    // The lens above the workload shows its plan for default facts, and its
    // command answers with the full explanation.
    let r = f.client.request(
        "textDocument/codeLens",
        json!({ "textDocument": { "uri": uri(&f.workloads) } }),
    );
    let lens = &r["result"][0];
    let title = lens["command"]["title"].as_str().unwrap_or_else(|| panic!("{r}"));
    assert!(title.starts_with("explain: cerebras/llama-3.3-70b"), "{title}");
    assert_eq!(lens["range"]["start"], pos(WORKLOADS, "summary", 0, 0));
    let r = f.client.request(
        "workspace/executeCommand",
        json!({ "command": lens["command"]["command"], "arguments": lens["command"]["arguments"] }),
    );
    assert!(
        r["result"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"))
            .contains("cerebras/llama-3.3-70b"),
        "{r}"
    );

    // The inlay hint after the workload's name: its worst case per call,
    // the figures `routec check --bounds` prints.
    let r = f.client.request(
        "textDocument/inlayHint",
        json!({
            "textDocument": { "uri": uri(&f.workloads) },
            "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 20, "character": 0 } },
        }),
    );
    let hint = &r["result"][0];
    let label = hint["label"].as_str().unwrap_or_else(|| panic!("{r}"));
    assert!(label.starts_with("worst case: 2 calls · "), "{label}");
    assert_eq!(hint["position"], pos(WORKLOADS, "summary", 0, 7));

    // Did you mean, weights that do not sum to 100, a match without else.
    let broken = WORKLOADS.replace("route pool\n", "route pol\n")
        + "route ab = split by user {\n  70: pool\n  20: anthropic/sonnet\n}\n"
        + "workload other {\n  data public\n  route match {\n    when has tools => pool\n  }\n}\n";
    f.client.change(&f.workloads, 2, &broken);
    let diags = f.client.diagnostics(&uri(&f.workloads));
    let mut fixed = Vec::new();
    for d in &diags {
        let r = f.client.request(
            "textDocument/codeAction",
            json!({ "textDocument": { "uri": uri(&f.workloads) }, "range": d["range"], "context": { "diagnostics": [d] } }),
        );
        for a in r["result"].as_array().unwrap() {
            assert_eq!(a["kind"], "quickfix");
            let edits = a["edit"]["changes"][uri(&f.workloads)].as_array().unwrap();
            fixed.push((
                d["code"].as_str().unwrap().to_string(),
                a["title"].as_str().unwrap().to_string(),
                edits[0]["newText"].as_str().unwrap().to_string(),
            ));
        }
    }
    let has = |code: &str, title: &str, text: &str| {
        fixed
            .iter()
            .any(|(c, t, n)| c == code && t == title && n.contains(text))
    };
    assert!(has("R0101", "replace with `pool`", "pool"), "{fixed:?}");
    assert!(
        has("R0204", "make the last weight 30, so the weights sum to 100", "30"),
        "{fixed:?}"
    );
    assert!(has("R0205", "add `else => pool`", "else => pool"), "{fixed:?}");
    assert_eq!(f.client.shutdown(), Some(0));
}

#[test]
fn a_file_on_disk_that_is_not_utf8_gets_checks_diagnostic() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("providers.route"), PROVIDERS).unwrap();
    let bad = dir.path().join("pasted.route");
    std::fs::write(&bad, b"# caf\xe9\nworkload w { data public; route anthropic/sonnet }\n").unwrap();
    // The root's policy is checked on `initialized`, before anything is open.
    let mut client = Client::start(dir.path(), &dir.path().join("lsp.log"));
    let diags = client.diagnostics(&uri(&bad));
    assert_eq!(codes(&diags), ["R0002"], "{diags:?}");
    assert!(
        diags[0]["message"].as_str().unwrap().contains("not valid UTF-8"),
        "{diags:?}"
    );
    // Opening it (the editor decoded it somehow) replaces the disk's bytes.
    client.open(&bad, "workload w { data public; route anthropic/sonnet }\n");
    assert_eq!(client.diagnostics(&uri(&bad)), Vec::<Value>::new());
    assert_eq!(client.shutdown(), Some(0));
}
