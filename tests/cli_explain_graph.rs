//! `routec explain` and `routec graph` end to end, on the seed policy: the
//! "done when" of the decision-engine issue, as tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn seed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/policies/seed.route")
}

fn routec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_routec")).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn explain_content_summary_starts_with_the_free_tier_and_says_why() {
    let seed = seed();
    let o = routec(&[
        "explain",
        seed.to_str().unwrap(),
        "--workload",
        "content_summary",
        "--set",
        "user=alice",
    ]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let text = stdout(&o);
    assert!(text.contains("  1. cerebras/llama-3.3-70b"), "{text}");
    assert!(text.contains("kept #1  cerebras/llama-3.3-70b"), "{text}");
    assert!(text.contains("split_arm_not_chosen"), "{text}");
}

#[test]
fn explain_audit_report_never_lists_a_public_only_provider_and_says_so() {
    let seed = seed();
    let o = routec(&["explain", seed.to_str().unwrap(), "-w", "audit_report"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let text = stdout(&o);
    let (header, rest) = text.split_once("\nplan:").unwrap();
    assert!(
        header.contains("never sent private data: cerebras (takes public), gemini_free (takes public)"),
        "{text}"
    );
    for public_only in ["cerebras", "gemini_free"] {
        assert!(!rest.contains(public_only), "{public_only} listed in\n{text}");
    }
}

/// `routec explain` ends with the workload's worst case, the figures
/// `routec check --bounds` prints for it (JSON here, to compare).
#[test]
fn explain_and_check_bounds_give_the_same_worst_case() {
    let seed = seed();
    let o = routec(&["explain", seed.to_str().unwrap(), "-w", "audit_report"]);
    let text = stdout(&o);
    let line = text
        .lines()
        .find(|l| l.starts_with("worst case of any call of this workload: "))
        .unwrap_or_else(|| panic!("no worst case in\n{text}"));
    let o = routec(&["check", "--bounds", "--format", "json", seed.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let audit = json["bounds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["workload"] == "audit_report")
        .unwrap()
        .clone();
    // Fallbacks and retries of the seed's private chain, cut by its 2m latency.
    assert_eq!(audit["by_deadline"], true, "{audit}");
    assert_eq!(audit["time_ms"], 120_000, "{audit}");
    let calls = audit["calls"].as_u64().unwrap();
    assert!(line.contains(&format!("{calls} calls")), "{line} vs {audit}");
    assert!(line.ends_with("2m (the workload's latency)"), "{line}");
    // `explain --format json` carries the same figures.
    let o = routec(&[
        "explain",
        seed.to_str().unwrap(),
        "-w",
        "audit_report",
        "--format",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    for field in ["calls", "cost_usd", "time_ms", "by_deadline"] {
        assert_eq!(
            json["worst_case"][field], audit[field],
            "{field}: {}",
            json["worst_case"]
        );
    }
}

#[test]
fn explain_json_reports_a_refusal_with_exit_1() {
    let seed = seed();
    let o = routec(&[
        "explain",
        seed.to_str().unwrap(),
        "-w",
        "content_summary",
        "--set",
        "user=grace",
        "--set",
        "data=private",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(json["outcome"], "refused");
    assert_eq!(json["refusal"]["code"], "data_class");
}

#[test]
fn explain_rejects_unknown_workloads_and_facts_with_exit_2() {
    let seed = seed();
    let o = routec(&["explain", seed.to_str().unwrap(), "-w", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("audit_report, content_summary"));
    let o = routec(&[
        "explain",
        seed.to_str().unwrap(),
        "-w",
        "audit_report",
        "--set",
        "colour=red",
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn explain_reads_an_openai_request_with_the_router_s_own_facts() {
    let seed = seed();
    let dir = tempfile::tempdir().unwrap();
    let body = serde_json::json!({
        "model": "content_summary",
        "user": "alice",
        "messages": [
            {"role": "system", "content": "You summarise."},
            {"role": "user", "content": "Summarise: routing saves money because most calls never need a frontier model."}
        ]
    });
    let path = dir.path().join("request.json");
    std::fs::write(&path, body.to_string()).unwrap();
    let request = path.to_str().unwrap();
    let o = routec(&[
        "explain",
        seed.to_str().unwrap(),
        "-w",
        "content_summary",
        "--request",
        request,
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    // What the router itself derives from the same body, read as the gateway reads it.
    let (_, normalised) = providers::openai_wire::request_from_wire(serde_json::from_value(body).unwrap()).unwrap();
    let router = router_runtime::Call::new("content_summary", normalised).request_facts();
    assert_eq!(json["facts"]["input_tokens"], router.input_tokens, "{json}");
    assert_eq!(json["facts"]["user"], "alice");
    assert_eq!(json["input_tokens_estimated"], true);

    // `--set` still overrides what the request said.
    let o = routec(&[
        "explain",
        seed.to_str().unwrap(),
        "-w",
        "content_summary",
        "--request",
        request,
        "--set",
        "input_tokens=5000",
    ]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let text = stdout(&o);
    assert!(
        text.starts_with("facts: {\"input_tokens\":5000,\"user\":\"alice\"}"),
        "{text}"
    );
    assert!(
        text.contains("note: facts derived from an OpenAI request as the router derives them"),
        "{text}"
    );
    assert!(!text.contains("characters per token"), "{text}");
}

#[test]
fn graph_dot_renders_with_graphviz() {
    let seed = seed();
    let o = routec(&["graph", seed.to_str().unwrap(), "--format", "dot"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let dot = stdout(&o);
    assert!(dot.contains("public only") && dot.contains("style=dashed"), "{dot}");
    // Graphviz is optional on developer machines; when present, it must accept the output.
    let Ok(mut child) = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        return;
    };
    use std::io::Write as _;
    child.stdin.take().unwrap().write_all(dot.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "dot failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
}

#[test]
fn graph_mermaid_for_one_workload() {
    let seed = seed();
    let o = routec(&[
        "graph",
        seed.to_str().unwrap(),
        "-w",
        "audit_report",
        "--format",
        "mermaid",
    ]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let m = stdout(&o);
    assert!(m.starts_with("flowchart LR") && !m.contains("cerebras"), "{m}");
}
