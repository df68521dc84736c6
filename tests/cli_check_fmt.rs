//! `routec check` and `routec fmt` end to end: exit codes, the three output
//! formats, and the "done when" of the policy-language issue, as tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn routec(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_routec"))
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn the_example_policies_check_clean_and_are_formatted() {
    let o = routec(&["check", "examples/policies"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("no problems"));
    let o = routec(&["fmt", "--check", "examples/policies"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
}

#[test]
fn every_error_file_exits_non_zero_with_its_code() {
    let dir = root().join("policy-lang/testdata/check/err");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let code = name.split('-').next().unwrap().to_string();
        let o = routec(&["check", "--format", "json", path.to_str().unwrap()]);
        // A path that holds no policy is a usage error (2), still reported
        // with its code; everything else is an error in a policy (1).
        let exit = if code == "R0004" { 2 } else { 1 };
        assert_eq!(o.status.code(), Some(exit), "{name}");
        let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let codes: Vec<&str> = json["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["code"].as_str().unwrap())
            .collect();
        assert!(codes.contains(&code.as_str()), "{name}: {codes:?}");
    }
}

#[test]
fn warnings_fail_only_with_deny_warnings() {
    let file = "policy-lang/testdata/check/warn/W0302-unused-route.route";
    assert_eq!(routec(&["check", file]).status.code(), Some(0));
    assert_eq!(routec(&["check", "--deny-warnings", file]).status.code(), Some(1));
}

#[test]
fn json_output_carries_locations_labels_and_help() {
    let o = routec(&[
        "check",
        "--format",
        "json",
        "policy-lang/testdata/check/err/R0202-pii-across-files",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["errors"], 1);
    let d = &json["diagnostics"][0];
    assert_eq!(d["code"], "R0202");
    assert_eq!(d["severity"], "error");
    assert_eq!(
        d["file"],
        "policy-lang/testdata/check/err/R0202-pii-across-files/workloads.route"
    );
    assert_eq!((d["line"].as_u64(), d["column"].as_u64()), (Some(3), Some(3)));
    assert!(d["help"].as_str().unwrap().starts_with("path: "));
    // A label in the other file names that file.
    let files: Vec<&str> = d["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["file"].as_str().unwrap())
        .collect();
    assert!(files.iter().any(|f| f.ends_with("providers.route")), "{files:?}");
}

#[test]
fn github_output_is_one_workflow_command_per_diagnostic() {
    let o = routec(&[
        "check",
        "--format",
        "github",
        "policy-lang/testdata/check/err/R0204-split-weights.route",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].starts_with(
            "::error file=policy-lang/testdata/check/err/R0204-split-weights.route,line=11,col=9,title=R0204::split weights add up to 110, not 100%0Apolicy-lang/testdata/check/err/R0204-split-weights.route:11:9: weights total 110%0A"
        ),
        "{out}"
    );
    assert!(lines[0].contains("%0Ahelp: "), "{out}");
}

#[test]
fn github_output_keeps_the_did_you_mean_of_a_label() {
    let o = routec(&[
        "check",
        "--format",
        "github",
        "policy-lang/testdata/check/err/R0101-unknown-route.route",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o.stdout);
    assert!(out.contains(": did you mean `"), "{out}");
    assert!(out.contains("%0Ahelp: define it with"), "{out}");
}

#[test]
fn unreadable_paths_and_empty_directories_exit_2() {
    let o = routec(&["check", "no/such/dir"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("R0001"), "{}", text(&o.stderr));
    let dir = tempfile::tempdir().unwrap();
    let o = routec(&["check", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("R0004"));
    // Bad usage is clap's exit 2 too.
    assert_eq!(routec(&["check", "--format", "xml"]).status.code(), Some(2));
}

#[test]
fn human_output_shows_the_snippet_and_the_code() {
    let o = routec(&["check", "policy-lang/testdata/check/err/R0006-unclosed-workload.route"]);
    let err = text(&o.stderr);
    assert!(err.contains("R0006"), "{err}");
    assert!(err.contains("expected `}` to close workload `audit_report`"), "{err}");
    assert!(err.contains("opened here"), "{err}");
}

#[test]
fn fmt_rewrites_files_and_check_lists_what_would_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("messy.route");
    std::fs::write(&path, "# keep me\nworkload w{data public;route m/e} # and me\n").unwrap();
    let p = path.to_str().unwrap();
    let o = routec(&["fmt", "--check", p]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).contains("would reformat"), "{}", text(&o.stdout));
    assert_eq!(routec(&["fmt", p]).status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "# keep me\nworkload w {\n  data public\n  route m/e\n} # and me\n"
    );
    assert_eq!(routec(&["fmt", "--check", p]).status.code(), Some(0));
}

#[test]
fn fmt_refuses_files_that_do_not_parse() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.route");
    std::fs::write(&path, "workload w {").unwrap();
    let o = routec(&["fmt", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "workload w {");
    assert!(Path::new(&path).exists());
}
