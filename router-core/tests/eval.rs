//! The decision corpus: every `testdata/eval/*.route` file is one scenario
//! (policy, facts, state) whose explained plan is an insta snapshot. See
//! `testdata/eval/README.md` for the file format.
//!
//! Besides the snapshots, the corpus as a whole must cover every route kind,
//! every drop reason and every refusal, so a new reason cannot ship without
//! a scenario that shows it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use policy_lang::{SourceFile, compile};
use router_core::{
    Decider, Decision, NodeKind, Policy, Reason, RequestFacts, StateFile, Strategy, Verdict, render_text,
};

/// One scenario file, split into its `#!` headers and its policy.
struct Scenario {
    workload: String,
    facts: RequestFacts,
    state: StateFile,
    policy: Policy,
}

fn header<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .filter_map(|l| l.strip_prefix("#!"))
        .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix(':').map(str::trim))
}

fn read(path: &Path) -> Scenario {
    let text = std::fs::read_to_string(path).unwrap();
    let workload = header(&text, "workload")
        .unwrap_or_else(|| panic!("{}: no `#! workload:` header", path.display()))
        .to_owned();
    let facts = header(&text, "facts").map_or_else(RequestFacts::default, |j| {
        serde_json::from_str(j).unwrap_or_else(|e| panic!("{}: facts: {e}", path.display()))
    });
    let state = header(&text, "state").map_or_else(StateFile::default, |j| {
        serde_json::from_str(j).unwrap_or_else(|e| panic!("{}: state: {e}", path.display()))
    });
    let (name, source) = match header(&text, "policy") {
        Some(rel) => {
            let p: PathBuf = path.parent().unwrap().join(rel);
            (rel.to_owned(), std::fs::read_to_string(&p).unwrap())
        }
        None => (path.file_name().unwrap().to_string_lossy().into_owned(), text.clone()),
    };
    let compiled = compile(&[SourceFile::new(name, source)])
        .unwrap_or_else(|report| panic!("{}: the policy does not compile:\n{report}", path.display()));
    Scenario {
        workload,
        facts,
        state,
        policy: compiled.into_policy(),
    }
}

fn decide(s: &Scenario, path: &Path) -> Decision {
    let workload = s
        .policy
        .workload_id(&s.workload)
        .unwrap_or_else(|| panic!("{}: no workload `{}`", path.display(), s.workload));
    let state = s.state.resolve(&s.policy).unwrap();
    Decider::new(&s.policy).decide(&s.facts.facts(workload), &state)
}

/// What a snapshot holds: the inputs in one line each, then the explanation
/// with the policy hash masked (it changes with any edit to the IR's shape,
/// which says nothing about the decision).
fn snapshot_text(s: &Scenario, d: &Decision) -> String {
    let mut out = format!(
        "workload: {}\nfacts: {}\nstate: {}\n\n",
        s.workload,
        serde_json::to_string(&s.facts).unwrap(),
        serde_json::to_string(&s.state).unwrap()
    );
    let hash = d.explain().policy_hash.short();
    out.push_str(&render_text(&s.policy, d).replace(&hash, "<hash>"));
    out
}

#[test]
fn eval_corpus() {
    insta::with_settings!({
        snapshot_path => "../testdata/eval/snapshots",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::glob!("../testdata/eval", "*.route", |path| {
            let s = read(path);
            let d = decide(&s, path);
            insta::assert_snapshot!("eval", snapshot_text(&s, &d));
        });
    });
}

fn kinds(policy: &Policy, out: &mut BTreeSet<String>) {
    for id in policy.routes.ids() {
        let kind = &policy.node(id).kind;
        out.insert(match kind {
            NodeKind::Select { strategy, .. } => format!("select {}", strategy.as_str()),
            k => k.keyword().to_owned(),
        });
    }
}

#[test]
fn the_corpus_covers_every_route_kind_reason_and_refusal() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/eval");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "route"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "only {} scenarios", files.len());
    let (mut reasons, mut refusals, mut route_kinds) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let mut deferred = false;
    for path in &files {
        let s = read(path);
        let d = decide(&s, path);
        kinds(&s.policy, &mut route_kinds);
        if let Some(r) = d.refusal() {
            refusals.insert(r.code());
        }
        for c in &d.explain().candidates {
            match c.verdict {
                Verdict::Dropped { reason } => {
                    reasons.insert(reason.code());
                }
                Verdict::Kept { deferred: true, .. } => deferred = true,
                Verdict::Kept { .. } => {}
            }
        }
    }
    // A checked policy has no broken node, and no path outside a workload's
    // jurisdictions (`R0220`), so `broken_route` and `jurisdiction` are
    // covered by unit tests.
    let wanted: BTreeSet<&str> = Reason::CODES
        .into_iter()
        .filter(|c| !matches!(*c, "broken_route" | "jurisdiction"))
        .collect();
    let missing: Vec<_> = wanted.difference(&reasons).collect();
    assert!(missing.is_empty(), "no scenario shows reasons {missing:?}");
    assert!(deferred, "no scenario shows same_provider_deferred");
    for r in ["data_class", "budget_exhausted", "unhealthy", "no_eligible_target"] {
        assert!(refusals.contains(r), "no scenario is refused with {r}");
    }
    let mut want_kinds: Vec<String> = ["target", "fallback", "free_first", "split", "match", "escalate"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    for s in [
        Strategy::Cheapest,
        Strategy::Fastest,
        Strategy::Weighted,
        Strategy::First,
    ] {
        want_kinds.push(format!("select {}", s.as_str()));
    }
    for k in want_kinds {
        assert!(route_kinds.contains(&k), "no scenario uses {k}");
    }
}
