//! Every example policy checks clean, with zero warnings: each file on its
//! own, and the whole directory as one policy (which is what
//! `routec check examples/policies` does, so names must not collide).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

fn examples() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/policies")
}

#[test]
fn the_seed_scenario_compiles_clean() {
    let compiled = policy_lang::compile_path(examples().join("seed.route")).unwrap_or_else(|r| panic!("{r}"));
    assert!(compiled.report().is_clean(), "{}", compiled.report());
    let policy = compiled.policy();
    assert_eq!(policy.providers.len(), 7);
    assert_eq!(policy.workloads.len(), 2);
}

#[test]
fn every_example_checks_clean_on_its_own() {
    let mut seen = 0;
    for entry in std::fs::read_dir(examples()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "route") {
            seen += 1;
            let compiled = policy_lang::compile_path(&path).unwrap_or_else(|r| panic!("{}: {r}", path.display()));
            assert!(
                compiled.report().is_clean(),
                "{}: {}",
                path.display(),
                compiled.report()
            );
        }
    }
    assert!(seen >= 1);
}

#[test]
fn the_examples_directory_checks_clean_as_one_policy() {
    let compiled = policy_lang::compile_path(examples()).unwrap_or_else(|r| panic!("{r}"));
    assert!(compiled.report().is_clean(), "{}", compiled.report());
}

#[test]
fn the_seed_lowers_as_documented() {
    use router_core::{NodeKind, SplitKey};
    let policy = policy_lang::compile_path(examples().join("seed.route"))
        .unwrap()
        .into_policy();
    let summary = policy.workload_named("content_summary").unwrap();
    let NodeKind::Split { key, salt, arms } = &policy.node(summary.route).kind else {
        panic!("content_summary should start with a split");
    };
    assert_eq!(*key, SplitKey::User);
    assert_eq!(salt, "workload:content_summary");
    assert_eq!(arms.iter().map(|(w, _)| *w).collect::<Vec<_>>(), vec![80, 20]);
    // Arms are edges to the named routes, not copies.
    assert_eq!(policy.node(arms[0].1).name.as_deref(), Some("summary_pool"));
    let NodeKind::Fallback {
        children,
        free_first,
        rules,
    } = &policy.node(arms[1].1).kind
    else {
        panic!("challenger should be a fallback");
    };
    assert!(*free_first);
    assert_eq!(rules.attempt_timeout, Some(std::time::Duration::from_secs(15)));
    let labels: Vec<String> = children
        .iter()
        .map(|c| match policy.node(*c).kind {
            NodeKind::Target { target } => policy.target_label(target),
            _ => String::new(),
        })
        .collect();
    assert_eq!(labels, vec!["gemini_free/gemini-2.5-flash", "zai/glm-4.6"]);
}

/// Every ```route block of `docs/language.md` parses, is in the form
/// `routec fmt` writes, and checks: a complete policy (one with providers
/// and workloads) with no errors or warnings, a fragment with no error but
/// names it leaves to other blocks.
#[test]
fn every_route_block_in_the_language_reference_parses_is_formatted_and_checks() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/language.md")).unwrap();
    let (mut blocks, mut complete) = (0, 0);
    for (i, block) in doc.split("```route\n").skip(1).enumerate() {
        let text = block.split("```").next().unwrap();
        let file = policy_lang::SourceFile::new(format!("language.md block {}", i + 1), text);
        let ast = policy_lang::parse(std::slice::from_ref(&file))
            .unwrap_or_else(|r| panic!("docs/language.md route block {} does not parse:\n{r}\n{text}", i + 1));
        let formatted = policy_lang::format(&file).unwrap();
        assert_eq!(
            formatted,
            text,
            "docs/language.md route block {} is not in `routec fmt` form",
            i + 1
        );
        let report = policy_lang::check(&ast);
        let defines = |kind: &str| text.lines().any(|l| l.starts_with(&format!("{kind} ")));
        if defines("provider") && defines("workload") {
            assert!(report.is_clean(), "docs/language.md route block {}:\n{report}", i + 1);
            complete += 1;
        } else {
            assert!(
                report.errors().iter().all(|e| e.code() == policy_lang::Code::R0101),
                "docs/language.md route block {}:\n{report}",
                i + 1
            );
        }
        blocks += 1;
    }
    assert!(blocks >= 4 && complete >= 1, "{blocks} blocks, {complete} complete");
}
