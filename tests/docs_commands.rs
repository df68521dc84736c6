//! Every shell command in the docs, run as written, so the docs cannot drift
//! from the tool.
//!
//! What runs: each fenced block whose language is a shell (`sh`, `bash`,
//! `shell`, `console`, `zsh`) in `README.md`, `docs/*.md` and
//! `router-core/testdata/eval/README.md`, and each `routec …` command in a
//! table row of `README.md`, in document order, with `bash -e -o pipefail`,
//! in a scratch directory holding a copy of `examples/`, `deploy/` and
//! `router-core/testdata/eval/`, with the debug `routec` first on `PATH`.
//! Every command must exit 0 within [`PER_COMMAND`].
//!
//! What is changed before running, and nothing else:
//! - `cargo run --release -- ` becomes `routec ` (the same code, built by
//!   this `cargo test`);
//! - `routec demo` gets a small burst ([`DEMO_FLAGS`]) unless it names its own;
//! - a one-line `routec serve --policy …` block or cell starts the gateway in
//!   the background on a free loopback port instead of 8080; later commands
//!   of the same document get that address wherever they say
//!   `127.0.0.1:8080`, and the gateway is stopped by its PID when the
//!   document is done;
//! - `curl` fails on an HTTP error status (`--fail-with-body`), so a
//!   documented request that answers 404 fails here.
//!
//! A block that must not run (it needs the network, or takes minutes) is
//! fenced `sh no-run` and named in [`NOT_RUN`] with the reason; an unnamed
//! `no-run` block fails this test, and so does a named one that is gone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Blocks that do not run: (document, the block's command, why).
const NOT_RUN: &[(&str, &str, &str)] = &[
    (
        "docs/performance.md",
        "cargo bench -p policy-lsp --bench responsiveness",
        "a benchmark: a release build and seconds of measurement",
    ),
    (
        "docs/editors.md",
        "cargo install --path .",
        "installs into the user's cargo bin: a release build, and it changes the machine",
    ),
    (
        "docs/editors.md",
        "editors/vscode/build-vsix.sh",
        "npm ci and a TypeScript build (a minute, the npm registry); scripts/test.sh runs it once",
    ),
    (
        "docs/editors.md",
        "code --install-extension editors/vscode/routec-policy.vsix",
        "needs VS Code, which CI does not have",
    ),
    (
        "README.md",
        "scripts/test.sh",
        "it is the whole test suite, this test included",
    ),
    (
        "docs/performance.md",
        "cargo bench -p policy-lang --bench check",
        "a benchmark: a release build and minutes of measurement",
    ),
    (
        "docs/performance.md",
        "cargo run --release -p policy-lang --example check_large",
        "a measurement of a 10 MiB policy: a release build and seconds of CPU per run",
    ),
    (
        "docs/deploy.md",
        "routec serve --policy /etc/routec/policies --keys /etc/routec/keys.toml --budget-store redis://redis:6379/0 --listen 0.0.0.0:8080",
        "the production shape: paths under /etc and a host `redis` that a test does not have; `deploy/local.sh demo` runs the same",
    ),
    (
        "docs/deploy.md",
        "deploy/local.sh up 3\ndeploy/local.sh status\ndeploy/local.sh down",
        "leaves servers running between commands; `deploy/local.sh demo` runs up and down with a trap",
    ),
    (
        "docs/deploy.md",
        "docker compose -f deploy/compose.yaml up --build -d\ncurl -H \"authorization: Bearer rk-local-demo-not-a-secret\" http://127.0.0.1:8080/v1/models",
        "needs a Docker daemon and images from a registry; `deploy/local.sh lint` checks the file parses",
    ),
    (
        "docs/deploy.md",
        "sudo install -m 0755 target/release/routec /usr/local/bin/routec\nsudo install -d /etc/routec/policies && sudo cp deploy/policy.route /etc/routec/policies/\nsudo install -m 0600 deploy/keys.toml deploy/env.example /etc/routec/ && sudo mv /etc/routec/env.example /etc/routec/env\nsudo cp 'deploy/routec@.service' /etc/systemd/system/ && sudo systemctl daemon-reload\nsudo systemctl enable --now routec@8081 routec@8082 routec@8083",
        "installs system units as root and needs systemd",
    ),
];

/// The most one documented command may take.
const PER_COMMAND: Duration = Duration::from_secs(30);

/// How long `routec serve` may take to print its address.
const SERVE_START: Duration = Duration::from_secs(20);

/// The burst `routec demo` sends here: enough to exercise every workload of
/// its policy, few enough to finish in seconds on a debug build.
const DEMO_FLAGS: &str = "--requests 10 --concurrency 10";

/// The address the docs' gateway examples listen on.
const DOCS_ADDR: &str = "127.0.0.1:8080";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One shell command or block found in a document.
#[derive(Debug, Clone, PartialEq)]
struct Snippet {
    /// 1-based line of the fence or table row.
    line: usize,
    text: String,
    run: bool,
}

fn is_shell(lang: &str) -> bool {
    matches!(lang, "sh" | "bash" | "shell" | "console" | "zsh")
}

/// The shell snippets of a Markdown document, in order. `tables`: also take
/// `routec …` code spans from the last cell of table rows.
fn snippets(markdown: &str, tables: bool) -> Vec<Snippet> {
    let mut out = Vec::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            let mut words = info.split_whitespace();
            let lang = words.next().unwrap_or("");
            let no_run = words.any(|w| w == "no-run");
            let mut body = String::new();
            for (_, l) in lines.by_ref() {
                if l.trim_start().starts_with("```") {
                    break;
                }
                body.push_str(l);
                body.push('\n');
            }
            if is_shell(lang) {
                out.push(Snippet {
                    line: i + 1,
                    text: body,
                    run: !no_run,
                });
            }
        } else if tables && trimmed.starts_with('|') {
            let row = trimmed.replace("\\|", "\u{1}");
            let last = row.trim_end().trim_end_matches('|').rsplit('|').next().unwrap_or("");
            for (n, span) in last.split('`').enumerate() {
                if n % 2 == 1 && span.starts_with("routec ") {
                    out.push(Snippet {
                        line: i + 1,
                        text: format!("{}\n", span.replace('\u{1}', "|")),
                        run: true,
                    });
                }
            }
        }
    }
    out
}

/// The lines of a snippet that are commands (not comments or blank).
fn command_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// The snippet, rewritten as the module doc says.
fn rewrite(text: &str, gateway: Option<&str>) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut line = line.replace("cargo run --release -- ", "routec ");
        if line.trim_start().starts_with("routec demo") && !line.contains("--requests") {
            line = format!("{line} {DEMO_FLAGS}");
        }
        if let Some(addr) = gateway {
            line = line.replace(DOCS_ADDR, addr);
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// A gateway started for a document's examples; stopped by its PID on drop.
struct Gateway {
    child: Child,
    addr: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The arguments of a one-line `routec serve --policy …` snippet, if it is one.
fn serve_args(text: &str) -> Option<Vec<String>> {
    let lines = command_lines(text);
    let [line] = lines.as_slice() else { return None };
    let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
    if args.len() < 2 || args[0] != "routec" || args[1] != "serve" || !args.iter().any(|a| a == "--policy") {
        return None;
    }
    assert!(
        !line.contains(['\'', '"', '|', '>', '$']),
        "a `routec serve` example is run without a shell: {line}"
    );
    Some(args[1..].to_vec())
}

fn start_gateway(args: &[String], dir: &Path) -> Result<Gateway, String> {
    let mut args = args.to_vec();
    match args.iter().position(|a| a == "--listen") {
        Some(i) if i + 1 < args.len() => args[i + 1] = "127.0.0.1:0".into(),
        _ => args.extend(["--listen".into(), "127.0.0.1:0".into()]),
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_routec"))
        .args(&args)
        .current_dir(dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("could not start `routec {}`: {e}", args.join(" ")))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = tx.send(lines.next().and_then(Result::ok));
        // Keep reading so the gateway never blocks on a full pipe.
        for _ in lines {}
    });
    let mut gateway = Gateway {
        child,
        addr: String::new(),
    };
    let first = rx.recv_timeout(SERVE_START).ok().flatten();
    match first.as_deref().and_then(|l| l.strip_prefix("listening on http://")) {
        Some(addr) => {
            gateway.addr = addr.to_owned();
            Ok(gateway)
        }
        None => Err(format!(
            "`routec {}` did not print `listening on http://ADDR` within {SERVE_START:?} (got {first:?})",
            args.join(" ")
        )),
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A scratch directory laid out like the checkout, with `routec` on `PATH`.
struct Scratch {
    dir: tempfile::TempDir,
    path_var: String,
}

fn scratch() -> Scratch {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("examples"), &dir.path().join("examples"));
    copy_dir(
        &repo().join("router-core/testdata/eval"),
        &dir.path().join("router-core/testdata/eval"),
    );
    copy_dir(&repo().join("deploy"), &dir.path().join("deploy"));
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_routec"), bin.join("routec")).unwrap();
    let path_var = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    Scratch { dir, path_var }
}

const PRELUDE: &str = "set -e -o pipefail\ncurl() { command curl --fail-with-body --max-time 20 \"$@\"; }\n";

/// Runs every snippet of one document; returns what failed, and how many ran.
fn run_document(rel: &str, tables: bool) -> (Vec<String>, usize) {
    let text = std::fs::read_to_string(repo().join(rel)).unwrap();
    let scratch = scratch();
    let mut failures = Vec::new();
    let mut ran = 0;
    let mut gateway: Option<Gateway> = None;
    for s in snippets(&text, tables) {
        let at = format!("{rel}:{}", s.line);
        if !s.run {
            continue;
        }
        if let Some(args) = serve_args(&s.text) {
            drop(gateway.take());
            match start_gateway(&args, scratch.dir.path()) {
                Ok(g) => gateway = Some(g),
                Err(e) => failures.push(format!("{at}: {e}")),
            }
            ran += 1;
            continue;
        }
        if gateway.is_none() && s.text.contains(DOCS_ADDR) {
            failures.push(format!(
                "{at}: calls {DOCS_ADDR}, but no `routec serve --policy …` comes before it in {rel}"
            ));
            continue;
        }
        let script = rewrite(&s.text, gateway.as_ref().map(|g| g.addr.as_str()));
        let out = Command::new("timeout")
            .args(["-k", "5", &PER_COMMAND.as_secs().to_string(), "bash", "-c"])
            .arg(format!("{PRELUDE}{script}"))
            .current_dir(scratch.dir.path())
            .env("PATH", &scratch.path_var)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        ran += 1;
        if !out.status.success() {
            let mut why = match out.status.code() {
                Some(124) => format!("{at}: did not finish within {PER_COMMAND:?}"),
                code => format!("{at}: exited {code:?}"),
            };
            let _ = write!(
                why,
                "\n--- command\n{script}--- stdout\n{}\n--- stderr\n{}",
                String::from_utf8_lossy(&out.stdout).trim_end(),
                String::from_utf8_lossy(&out.stderr).trim_end()
            );
            failures.push(why);
        }
    }
    (failures, ran)
}

fn assert_documents_run(docs: &[(&str, bool)]) {
    let mut failures = Vec::new();
    for &(rel, tables) in docs {
        let (f, ran) = run_document(rel, tables);
        failures.extend(f);
        if ran == 0 {
            failures.push(format!("{rel}: no shell command found to run"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} documented command(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn readme_commands_run() {
    assert_documents_run(&[("README.md", true)]);
}

#[test]
fn docs_commands_run() {
    let mut docs: Vec<String> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .filter(|rel| {
            snippets(&std::fs::read_to_string(repo().join(rel)).unwrap(), false)
                .iter()
                .any(|s| s.run)
        })
        .collect();
    docs.sort();
    assert!(
        docs.len() >= 3,
        "expected shell commands in at least 3 of docs/*.md, found them in {docs:?}"
    );
    let docs: Vec<(&str, bool)> = docs.iter().map(|d| (d.as_str(), false)).collect();
    assert_documents_run(&docs);
}

#[test]
fn eval_readme_commands_run() {
    assert_documents_run(&[("router-core/testdata/eval/README.md", false)]);
}

/// Every `no-run` block is named in `NOT_RUN`, and every name there still
/// matches a `no-run` block.
#[test]
fn blocks_not_run_are_few_and_named() {
    let mut docs = vec!["README.md".to_owned(), "router-core/testdata/eval/README.md".to_owned()];
    for e in std::fs::read_dir(repo().join("docs")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            docs.push(format!("docs/{name}"));
        }
    }
    let mut found = Vec::new();
    for rel in &docs {
        let text = std::fs::read_to_string(repo().join(rel)).unwrap();
        for s in snippets(&text, rel == "README.md").into_iter().filter(|s| !s.run) {
            let commands = command_lines(&s.text).join("\n");
            let named = NOT_RUN.iter().any(|(doc, cmd, _)| doc == rel && *cmd == commands);
            assert!(
                named,
                "{rel}:{}: a `no-run` block that tests/docs_commands.rs does not name; \
                 make it run, or add it to NOT_RUN with the reason:\n{commands}",
                s.line
            );
            found.push((rel.clone(), commands));
        }
    }
    for (doc, cmd, _) in NOT_RUN {
        assert!(
            found.iter().any(|(d, c)| d == doc && c == cmd),
            "NOT_RUN names `{cmd}` in {doc}, but no `no-run` block there holds it"
        );
    }
}

#[test]
fn snippets_are_found_in_fences_and_readme_tables() {
    let md = "text\n```sh\nroutec check x\n```\n```route\nworkload w {}\n```\n\
              | want | run |\n|---|---|\n| draw | `routec graph a \\| dot` |\n\
              ```sh no-run\ncargo bench\n```\n";
    let got = snippets(md, true);
    assert_eq!(
        got,
        vec![
            Snippet {
                line: 2,
                text: "routec check x\n".into(),
                run: true
            },
            Snippet {
                line: 10,
                text: "routec graph a | dot\n".into(),
                run: true
            },
            Snippet {
                line: 11,
                text: "cargo bench\n".into(),
                run: false
            },
        ]
    );
    assert_eq!(snippets(md, false).len(), 2, "tables are read only when asked");
}

#[test]
fn rewriting_changes_only_what_the_module_doc_says() {
    assert_eq!(
        rewrite(
            "# demo\ncargo run --release -- demo\ncurl http://127.0.0.1:8080/x\n",
            Some("127.0.0.1:5555")
        ),
        format!("# demo\nroutec demo {DEMO_FLAGS}\ncurl http://127.0.0.1:5555/x\n")
    );
    assert_eq!(
        rewrite("routec demo --requests 3\n", None),
        "routec demo --requests 3\n"
    );
    assert_eq!(
        serve_args("routec serve --policy p.route --listen 127.0.0.1:8080\n"),
        Some(vec![
            "serve".into(),
            "--policy".into(),
            "p.route".into(),
            "--listen".into(),
            "127.0.0.1:8080".into()
        ])
    );
    assert_eq!(
        serve_args("routec serve --new-key\n"),
        None,
        "only a gateway with a policy runs in the background"
    );
}
