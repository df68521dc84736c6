//! `routec diff` witnesses end to end: the request printed, `--fail-on`,
//! and the JSON and GitHub formats.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn routec(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_routec"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn swapped() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let seed = std::fs::read_to_string(root().join("examples/policies/seed.route")).unwrap();
    std::fs::write(dir.path().join("old.route"), &seed).unwrap();
    let new = seed.replacen(
        "    anthropic/claude-opus-4.1\n    openrouter/claude-opus-4.1\n",
        "    openrouter/claude-opus-4.1\n    anthropic/claude-opus-4.1\n",
        1,
    );
    assert_ne!(new, seed);
    std::fs::write(dir.path().join("new.route"), new).unwrap();
    dir
}

#[test]
fn a_changed_plan_prints_a_witness_request() {
    let dir = swapped();
    let o = routec(dir.path(), &["diff", "old.route", "new.route"]);
    let out = String::from_utf8(o.stdout).unwrap();
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains(
            "audit_report: a request with 1,000 input tokens now goes to `openrouter/claude-opus-4.1` first (was \
             `anthropic/claude-opus-4.1`)"
        ),
        "{out}"
    );
    assert!(
        out.contains("content_summary: none; the two decide identically"),
        "{out}"
    );

    let o = routec(
        dir.path(),
        &["diff", "--fail-on", "target-change", "old.route", "new.route"],
    );
    assert_eq!(o.status.code(), Some(1));
    let o = routec(
        dir.path(),
        &["diff", "--fail-on", "cost-increase", "old.route", "new.route"],
    );
    assert_eq!(o.status.code(), Some(0));
    let o = routec(dir.path(), &["diff", "--fail-on", "nonsense", "old.route", "new.route"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn witnesses_in_json_and_github_formats() {
    let dir = swapped();
    let o = routec(dir.path(), &["diff", "--format", "json", "old.route", "new.route"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let audit = v["witnesses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["workload"] == "audit_report")
        .unwrap();
    assert_eq!(audit["witnesses"][0]["kind"], "first_target");
    assert_eq!(audit["witnesses"][0]["facts"]["input_tokens"], 1000);
    assert_eq!(audit["witnesses"][0]["new"][0], "openrouter/claude-opus-4.1");
    assert!(v["widened"].as_array().unwrap().is_empty());

    let o = routec(dir.path(), &["diff", "--format", "github", "old.route", "new.route"]);
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.starts_with("::warning title=routec diff::workload `audit_report`: a request with 1,000 input tokens"),
        "{out}"
    );
}
