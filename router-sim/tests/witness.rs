//! Witnesses of `routec diff`: concrete requests on which two policies
//! decide differently, found from the cells their conditions and split keys
//! define, and "none" when they decide alike.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use router_core::{Policy, RequestFacts};
use router_sim::{WitnessKind, WorkloadWitnesses, describe, witnesses};

fn compile(text: &str) -> Policy {
    policy_lang::compile(&[policy_lang::SourceFile::new("p.route", text)])
        .unwrap_or_else(|r| panic!("{r}"))
        .into_policy()
}

fn seed() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/policies/seed.route")).unwrap()
}

fn of<'a>(found: &'a [WorkloadWitnesses], workload: &str) -> &'a WorkloadWitnesses {
    found.iter().find(|w| w.workload == workload).unwrap()
}

#[test]
fn a_policy_against_itself_has_no_witness() {
    let p = compile(&seed());
    let found = witnesses(&p, &p);
    assert_eq!(found.len(), 2);
    for w in &found {
        assert!(w.witnesses.is_empty(), "{w:?}");
        assert!(w.cells > 1);
    }
}

#[test]
fn a_swapped_fallback_changes_the_first_target_for_every_request() {
    let old = compile(&seed());
    let new = compile(&seed().replacen(
        "    anthropic/claude-opus-4.1\n    openrouter/claude-opus-4.1\n",
        "    openrouter/claude-opus-4.1\n    anthropic/claude-opus-4.1\n",
        1,
    ));
    let found = witnesses(&old, &new);
    let audit = of(&found, "audit_report");
    assert_eq!(audit.witnesses.len(), 1, "{audit:?}");
    let w = &audit.witnesses[0];
    assert_eq!(w.kind, WitnessKind::FirstTarget);
    assert_eq!(
        w.text,
        "a request with 1,000 input tokens now goes to `openrouter/claude-opus-4.1` first (was \
         `anthropic/claude-opus-4.1`)"
    );
    assert!(of(&found, "content_summary").witnesses.is_empty());
}

#[test]
fn a_moved_split_weight_is_witnessed_by_a_user_between_the_old_and_new_cut() {
    let old = compile(&seed());
    let new = compile(&seed().replace(
        "    80: summary_pool\n    20: challenger",
        "    50: summary_pool\n    50: challenger",
    ));
    let found = witnesses(&old, &new);
    let summary = of(&found, "content_summary");
    let first = summary
        .witnesses
        .iter()
        .find(|w| w.kind == WitnessKind::FirstTarget)
        .unwrap();
    assert_eq!(first.old, ["cerebras/llama-3.3-70b"]);
    assert_eq!(first.new, ["gemini_free/gemini-2.5-flash"]);
    // The witness is real: each policy decides it as reported.
    let user = first.facts.user.clone().unwrap();
    for (policy, want) in [(&old, "cerebras/llama-3.3-70b"), (&new, "gemini_free/gemini-2.5-flash")] {
        let facts = RequestFacts {
            user: Some(user.clone()),
            ..RequestFacts::default()
        };
        let d = router_core::decide(
            policy,
            &facts.facts_for(policy, "content_summary").unwrap(),
            &Default::default(),
        );
        assert_eq!(policy.target_label(d.plan().attempts()[0].target), want);
    }
    assert!(summary.witnesses.iter().any(|w| w.kind == WitnessKind::Exposure));
}

#[test]
fn a_match_threshold_is_witnessed_on_its_edge() {
    let text = |limit: &str| {
        format!(
            "provider a {{ adapter mock; tier free; data public; model small {{ price free }} model big {{ price free }} }}\n\
             workload w {{ data public; route match {{ when input_tokens > {limit} => a/big, else => a/small }} }}\n"
        )
    };
    let found = witnesses(&compile(&text("8000")), &compile(&text("9000")));
    let w = &of(&found, "w").witnesses[0];
    assert_eq!(w.kind, WitnessKind::FirstTarget);
    assert!((8001..=9000).contains(&w.facts.input_tokens), "{w:?}");
    assert_eq!(
        (w.old.as_slice(), w.new.as_slice()),
        (&["a/big".to_string()][..], &["a/small".to_string()][..])
    );
}

#[test]
fn facts_read_as_words() {
    let mut f = RequestFacts {
        input_tokens: 9000,
        tools: true,
        ..RequestFacts::default()
    };
    assert_eq!(describe(&f), "a request with tools and 9,000 input tokens");
    f.user = Some("alice".into());
    f.metadata.insert("team".into(), "growth".into());
    assert_eq!(
        describe(&f),
        "a request with tools, 9,000 input tokens, metadata `team` = \"growth\" and user \"alice\""
    );
}

/// A workload whose attempt bound shrinks: its worst case changes, and the
/// diff says so for any request, beside the plans that now stop sooner.
#[test]
fn a_changed_attempt_bound_is_witnessed_by_the_worst_case() {
    let old = compile(&seed());
    let new = compile(&seed().replacen("  latency 120s\n", "  latency 120s\n  max_attempts 1\n", 1));
    let found = witnesses(&old, &new);
    let audit = of(&found, "audit_report");
    let w = audit
        .witnesses
        .iter()
        .find(|w| w.kind == WitnessKind::WorstCase)
        .unwrap_or_else(|| panic!("{audit:?}"));
    assert!(w.new[0].starts_with("1 calls · "), "{w:?}");
    assert!(!w.old[0].starts_with("1 calls · "), "{w:?}");
    assert!(
        w.text
            .starts_with("any request: the worst case of a call is now `1 calls"),
        "{}",
        w.text
    );
    assert!(
        of(&found, "content_summary")
            .witnesses
            .iter()
            .all(|w| w.kind != WitnessKind::WorstCase)
    );
}
