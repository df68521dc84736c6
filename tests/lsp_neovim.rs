//! A real editor as the client: headless Neovim (Debian's `neovim`, 0.7)
//! with its built-in LSP client starts `routec lsp`, opens an example
//! policy with an error in it, and a Lua script (`tests/lsp_neovim.lua`)
//! checks the diagnostic's code and line against `routec check`, then runs
//! go-to-definition from a route target and checks where the cursor lands.
//! Bounded at 60 s; Neovim is killed by pid if it overruns.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn neovim_shows_the_diagnostic_and_jumps_to_the_provider() {
    let nvim = Command::new("nvim").arg("--version").output();
    assert!(
        nvim.is_ok_and(|o| o.status.success()),
        "`nvim` is not installed: `apt-get install neovim` (scripts/test.sh installs it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policies/fallback.route")).unwrap();
    // A typo in a target's model: a check error, so the file still parses
    // and navigation works.
    let text = example.replacen("    mistral/mistral-small\n", "    mistral/mistral-smal\n", 1);
    assert_ne!(text, example, "the example changed; pick another line to break");
    let file = dir.path().join("fallback.route");
    std::fs::write(&file, &text).unwrap();

    let check = Command::new(env!("CARGO_BIN_EXE_routec"))
        .args(["check", "--format", "json"])
        .arg(&file)
        .output()
        .unwrap();
    let check: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    let want = &check["diagnostics"][0];
    let want = format!("diagnostic {} {}", want["code"].as_str().unwrap(), want["line"]);

    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let from_line = line_of("    cohere/command-r");
    let from_col = text.lines().nth(from_line - 1).unwrap().find("cohere").unwrap() + 2;
    let def_line = line_of("provider cohere");
    let def_col = "provider ".len();

    let result = dir.path().join("result.txt");
    let mut child = Command::new("nvim")
        .args([
            "--headless",
            "-n",
            "-u",
            "NONE",
            "-i",
            "NONE",
            "--cmd",
            "set noswapfile",
            "-c",
        ])
        .arg(format!(
            "luafile {}",
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lsp_neovim.lua")
        ))
        .env("ROUTEC", env!("CARGO_BIN_EXE_routec"))
        .env("POLICY_FILE", &file)
        .env("RESULT_FILE", &result)
        .env("FROM_LINE", from_line.to_string())
        .env("FROM_COL", from_col.to_string())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nvim");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    if rx.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        panic!("waited 60 s for headless nvim to finish its script; killed pid {pid}");
    }
    let got = std::fs::read_to_string(&result).unwrap_or_else(|e| panic!("nvim wrote no result ({e})"));
    let mut lines = got.lines();
    assert_eq!(lines.next(), Some("ok"), "{got}");
    assert_eq!(lines.next(), Some(want.as_str()), "{got}");
    assert_eq!(
        lines.next(),
        Some(format!("definition fallback.route {def_line} {def_col}").as_str()),
        "{got}"
    );
}
