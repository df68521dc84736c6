//! `diff` over the fixture pairs under `testdata/diff/<scenario>/`
//! (`old.route`, `new.route`, and optionally `traffic.jsonl`): one scenario
//! per kind of change, each with its rendered snapshot. Scenarios named
//! `widen_*` must widen data-class exposure (exit 1 in `routec diff`); no
//! other may.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop on a broken fixture"
)]

use std::path::Path;

use router_core::Policy;
use router_sim::{Presence, diff, diff_traffic};

fn policy(path: &Path) -> Policy {
    match policy_lang::compile_path(path) {
        Ok(c) => c.into_policy(),
        Err(report) => panic!("{}: {:?}", path.display(), report.codes()),
    }
}

#[test]
fn each_scenario_matches_its_snapshot_and_its_verdict() {
    insta::glob!("../testdata/diff", "*/old.route", |old_path| {
        let dir = old_path.parent().unwrap();
        let scenario = dir.file_name().unwrap().to_str().unwrap();
        let (old, new) = (policy(old_path), policy(&dir.join("new.route")));
        let mut d = diff(&old, &new);
        let traffic = dir.join("traffic.jsonl");
        if traffic.exists() {
            let bytes = std::fs::read(&traffic).unwrap();
            d.traffic = Some(diff_traffic(&old, &new, bytes.as_slice(), 1, &mut |_| {}).unwrap());
        }
        assert_eq!(d.widens_exposure(), scenario.starts_with("widen_"), "{scenario}");
        insta::assert_snapshot!("diff", d.to_human());
    });
}

#[test]
fn a_policy_compared_with_itself_changes_nothing() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let p = policy(&root.join("examples/policies"));
    let d = diff(&p, &p);
    assert!(d.workloads.is_empty() && !d.widens_exposure());
}

#[test]
fn a_renamed_workload_is_one_removal_and_one_addition_not_a_widening() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/diff/workloads_added_removed");
    let d = diff(&policy(&dir.join("old.route")), &policy(&dir.join("new.route")));
    let kinds: Vec<(&str, Presence)> = d.workloads.iter().map(|w| (w.workload.as_str(), w.presence)).collect();
    assert_eq!(kinds, [("audit", Presence::Added), ("reports", Presence::Removed)]);
    assert!(!d.widens_exposure());
}

#[test]
fn the_json_form_names_the_widened_workloads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/diff/widen_new_provider");
    let d = diff(&policy(&dir.join("old.route")), &policy(&dir.join("new.route")));
    let v: serde_json::Value = serde_json::from_str(&d.to_json()).unwrap();
    assert_eq!(v["widened"], serde_json::json!(["reports"]));
    assert_eq!(v["workloads"][0]["exposure_added"][0]["provider"], "mistral");
    assert_eq!(v["workloads"][0]["exposure_added"][0]["jurisdiction"], "eu");
}
