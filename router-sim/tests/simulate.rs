//! Replays of the fixtures under `testdata/simulate/` (one scenario per
//! `.route` + `.jsonl` pair) through the public API: report snapshots,
//! determinism, budget halts and the data-class check.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests stop on a broken fixture"
)]

use std::path::Path;

use router_core::Policy;
use router_sim::{Mix, SimOptions, SimReport, generate, render_html, simulate};

fn policy(path: &Path) -> Policy {
    match policy_lang::compile_path(path) {
        Ok(c) => c.into_policy(),
        Err(report) => panic!("{}: {:?}", path.display(), report.codes()),
    }
}

fn replay(route: &Path, seed: u64) -> SimReport {
    let policy = policy(route);
    let traffic = std::fs::read(route.with_extension("jsonl")).unwrap();
    let options = SimOptions {
        seed,
        ..SimOptions::default()
    };
    let mut report = simulate(&policy, traffic.as_slice(), options, &mut |_| {}).unwrap();
    // The hash moves whenever the IR's serialised shape does; not this test's business.
    report.policy_hash = "[hash]".to_owned();
    report
}

#[test]
fn reports_match_their_snapshots() {
    insta::glob!("../testdata/simulate", "*.route", |path| {
        let report = replay(path, 7);
        insta::assert_snapshot!("human", report.to_human());
        insta::assert_snapshot!("json", report.to_json());
    });
}

#[test]
fn same_seed_same_bytes_other_seed_other_draws() {
    let route = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/simulate/mixed.route");
    let a = replay(&route, 7).to_json();
    assert_eq!(a, replay(&route, 7).to_json());
    assert_eq!(render_html(&replay(&route, 7)), render_html(&replay(&route, 7)));
    assert_ne!(a, replay(&route, 8).to_json());
}

#[test]
fn budget_halts_appear_once_traffic_exceeds_the_budget_and_lift_the_next_day() {
    let route = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/simulate/budget_halt.route");
    let report = replay(&route, 1);
    let w = &report.workloads[0];
    // 20k tokens/day, 1,500 tokens a call reserving 2,000: 13 calls fit on day one.
    assert_eq!((w.requests, w.served, w.budget_halts), (33, 16, 17));
    assert!(w.input_tokens + w.output_tokens <= 20_000 + 3 * 1_500);
    assert_eq!(w.first_halt.as_deref(), Some("2026-11-01T09:13:00.000Z"));
}

#[test]
fn requests_raising_their_class_never_reach_a_provider_below_it() {
    let route = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/simulate/raised_class.route");
    let report = replay(&route, 3);
    assert_eq!(report.pii_violations, 0);
    assert_eq!(report.workloads[0].raised_class, 5);
    let cleared = report.targets.iter().find(|t| t.target == "cleared/m").unwrap();
    assert!(cleared.dispatches >= 5);
}

#[test]
fn generated_seed_mix_replays_through_the_example_policy() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let policy = policy(&root.join("examples/policies/task-classes.route"));
    let mut traffic = Vec::new();
    generate(Mix::SeedMix, 3_000, 11, router_sim::DEFAULT_START_MS, &mut traffic).unwrap();
    let report = simulate(&policy, traffic.as_slice(), SimOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(report.requests, 3_000);
    assert_eq!(report.unknown_workload, 0, "{:?}", report.unknown_workloads);
    assert_eq!(report.pii_violations, 0);
    assert!(report.served >= 2_980, "{}", report.served);
    // The brief reports 40–70 % from task-class routing.
    assert!((0.4..0.8).contains(&report.savings_ratio), "{}", report.savings_ratio);
}

#[test]
fn the_committed_seed_mix_is_what_the_generator_writes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let committed = std::fs::read(root.join("examples/traffic/seed-mix.jsonl")).unwrap();
    let mut fresh = Vec::new();
    generate(Mix::SeedMix, 2_000, 7, router_sim::DEFAULT_START_MS, &mut fresh).unwrap();
    assert!(
        committed == fresh,
        "regenerate with `routec simulate --generate seed-mix --requests 2000 --seed 7`"
    );
}

#[test]
fn the_html_page_is_self_contained() {
    let route = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/simulate/mixed.route");
    let html = render_html(&replay(&route, 7));
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<svg") && html.contains("<rect"));
    for external in ["<script", "<link", "src=", "@import", "url("] {
        assert!(!html.contains(external), "{external}");
    }
}
