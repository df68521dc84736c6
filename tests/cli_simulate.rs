//! `routec simulate` and `routec diff` end to end: the built binary on the
//! committed examples and the router-sim fixtures, checking output and exit
//! codes (0 clean, 1 data-class finding, 2 usage or I/O).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn routec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_routec")).args(args).output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn the_seed_mix_through_task_classes_reports_savings_and_no_violation() {
    let (policy, traffic) = (
        repo("examples/policies/task-classes.route"),
        repo("examples/traffic/seed-mix.jsonl"),
    );
    let out = routec(&["simulate", arg(&policy), "--traffic", arg(&traffic), "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    for field in [
        "total_cost",
        "baseline_cost",
        "savings_ratio",
        "pii_violations",
        "requests",
        "workloads",
    ] {
        assert!(report.get(field).is_some(), "missing `{field}`");
    }
    assert_eq!(report["requests"], 2_000);
    assert_eq!(report["pii_violations"], 0);
    assert_eq!(report["baseline"]["target"], "anthropic_api/claude-sonnet-4.5");
    let savings = report["savings_ratio"].as_f64().unwrap();
    assert!((0.4..0.8).contains(&savings), "{savings}");
    assert_eq!(report["workloads"].as_array().unwrap().len(), 5);
    // Same seed (the default), same bytes.
    let again = routec(&["simulate", arg(&policy), "--traffic", arg(&traffic), "--format", "json"]);
    assert_eq!(out.stdout, again.stdout);
}

#[test]
fn human_and_html_reports() {
    let (policy, traffic) = (
        repo("examples/policies/task-classes.route"),
        repo("examples/traffic/seed-mix.jsonl"),
    );
    let out = routec(&["simulate", arg(&policy), "--traffic", arg(&traffic), "--seed", "3"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    assert!(
        text.contains("savings") && text.contains("data-class violations  0"),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let out = routec(&[
        "simulate",
        arg(&policy),
        "--traffic",
        arg(&traffic),
        "--format",
        "html",
        "--output",
        arg(&page),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"));
    assert!(!html.contains("<script"));
}

#[test]
fn generate_writes_the_mix_deterministically() {
    let a = routec(&["simulate", "--generate", "seed-mix", "--requests", "50", "--seed", "3"]);
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    assert_eq!(stdout(&a).lines().count(), 50);
    let b = routec(&["simulate", "--generate", "seed-mix", "--requests", "50", "--seed", "3"]);
    assert_eq!(a.stdout, b.stdout);
    let c = routec(&["simulate", "--generate", "seed-mix", "--requests", "50", "--seed", "4"]);
    assert_ne!(a.stdout, c.stdout);
    let bad = routec(&["simulate", "--generate", "nope"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("known mixes: seed-mix"));
}

#[test]
fn bad_input_is_a_usage_error() {
    let policy = repo("examples/policies/task-classes.route");
    let dir = tempfile::tempdir().unwrap();
    let traffic = dir.path().join("bad.jsonl");
    std::fs::write(
        &traffic,
        "{\"ts\":0,\"workload\":\"simple_qa\",\"input_tokens\":1,\"output_tokens\":1}\n{\"ts\":0}\n",
    )
    .unwrap();
    let out = routec(&["simulate", arg(&policy), "--traffic", arg(&traffic)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("traffic line 2"), "{}", stderr(&out));

    let out = routec(&["simulate", arg(&policy), "--traffic", "/nonexistent/traffic.jsonl"]);
    assert_eq!(out.status.code(), Some(2));

    let out = routec(&[
        "simulate",
        arg(&policy),
        "--traffic",
        arg(&traffic),
        "--baseline",
        "nobody/none",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("baseline `nobody/none`"), "{}", stderr(&out));

    let broken = dir.path().join("broken.route");
    std::fs::write(&broken, "workload w { route nowhere/m }\n").unwrap();
    let out = routec(&["simulate", arg(&broken), "--traffic", arg(&traffic)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("does not compile"), "{}", stderr(&out));
}

#[test]
fn diff_exits_1_when_data_class_exposure_widens() {
    let dir = repo("router-sim/testdata/diff/widen_new_provider");
    let out = routec(&["diff", arg(&dir.join("old.route")), arg(&dir.join("new.route"))]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("WIDENED: private data can now reach `mistral` (jurisdiction eu)"),
        "{text}"
    );

    let out = routec(&[
        "diff",
        arg(&dir.join("new.route")),
        arg(&dir.join("old.route")),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["widened"], serde_json::json!([]));
}

#[test]
fn diff_with_traffic_counts_rerouted_requests() {
    let dir = repo("router-sim/testdata/diff/reroute_with_traffic");
    let out = routec(&[
        "diff",
        arg(&dir.join("old.route")),
        arg(&dir.join("new.route")),
        "--traffic",
        arg(&dir.join("traffic.jsonl")),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json["traffic"]["requests"], 12);
    assert_eq!(json["traffic"]["routed_differently"], 12);
    assert!(json["traffic"]["cost_delta"].as_f64().unwrap() < 0.0);

    let out = routec(&["diff", arg(&dir.join("old.route")), "/nonexistent.route"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_examples_directory_checks_clean_with_task_classes_in_it() {
    let out = routec(&["check", arg(&repo("examples/policies"))]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("no problems"), "{}", stderr(&out));
    let out = routec(&["check", arg(&repo("examples/policies/task-classes.route"))]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("no problems"), "{}", stderr(&out));
}
