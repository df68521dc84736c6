//! Uses only what `policy_lang` exports, as an embedder would: the API a
//! change must keep working.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use policy_lang::{
    Ast, CheckError, CheckReport, CheckWarning, Code, Compiled, LoadError, ParseError, Policy, SourceFile, check,
    compile, compile_path, format, load, lower, parse,
};

const POLICY: &str = r#"
provider anthropic {
  adapter anthropic
  key env("ANTHROPIC_API_KEY")
  tier paid
  data private
  model claude-haiku-4.5 { price $1/M in, $5/M out; max_output 64k }
}

workload notes {
  data private
  max_tokens 2000
  route anthropic/claude-haiku-4.5
}
"#;

#[test]
fn text_to_checked_ir_in_one_call() {
    let compiled: Compiled = compile(&[SourceFile::new("notes.route", POLICY)]).unwrap();
    assert!(compiled.warnings().is_empty());
    let policy: &Policy = compiled.policy();
    let w = policy.workload_named("notes").unwrap();
    assert_eq!(w.max_tokens, Some(2000));
    assert_eq!(
        policy.target_label(policy.target_named("anthropic", "claude-haiku-4.5").unwrap()),
        "anthropic/claude-haiku-4.5"
    );
}

#[test]
fn a_workload_opts_into_the_response_cache() {
    let plain = compile(&[SourceFile::new("notes.route", POLICY)]).unwrap();
    let id = plain.policy().workload_id("notes").unwrap();
    assert_eq!(plain.policy().response_cache_ttl(id), None);
    let text = POLICY.replace("max_tokens 2000", "max_tokens 2000\n  cache 90m");
    let cached = compile(&[SourceFile::new("notes.route", text.as_str())]).unwrap();
    assert_eq!(
        cached.policy().response_cache_ttl(id),
        Some(std::time::Duration::from_secs(90 * 60))
    );
    assert_ne!(cached.policy().hash(), plain.policy().hash(), "the hash covers `cache`");
    let formatted = format(&SourceFile::new("notes.route", text.as_str())).unwrap();
    assert!(formatted.contains("  cache 90m\n"), "{formatted}");
}

#[test]
fn parse_check_and_lower_are_separate_steps() {
    let ast: Ast = parse(&[SourceFile::new("notes.route", POLICY)]).unwrap();
    assert_eq!(ast.item_count(), 2);
    let report: CheckReport = check(&ast);
    assert!(report.passed() && report.is_clean());
    let policy: Policy = lower(&ast).unwrap().into_policy();
    assert_eq!(policy.providers.len(), 1);
}

#[test]
fn errors_are_typed_with_codes_and_accessors() {
    let text = POLICY.replace("data private\n  model", "data public\n  model");
    let report = compile(&[SourceFile::new("notes.route", text)]).unwrap_err();
    assert!(!report.passed());
    // Sorted by where each points: the workload's name, then the target.
    assert_eq!(report.codes(), vec![Code::R0203, Code::R0202]);
    let Some(CheckError::PiiViolation(e)) = report.errors().iter().find(|e| e.code() == Code::R0202) else {
        panic!("{report}");
    };
    assert_eq!(e.workload(), "notes");
    assert_eq!(e.provider(), "anthropic");
    assert_eq!(e.path(), ["workload `notes`", "`anthropic/claude-haiku-4.5`"]);
    assert_eq!(e.code(), Code::R0202);
    assert_eq!(
        e.to_string(),
        "workload `notes` can reach provider `anthropic` below its data class"
    );
    // Diagnostics render through miette.
    let d: &dyn miette::Diagnostic = e;
    assert_eq!(d.code().unwrap().to_string(), "R0202");
    assert!(d.help().is_some());
}

#[test]
fn parse_errors_are_typed_too() {
    let report = parse(&[SourceFile::new("x.route", "workload w {")]).unwrap_err();
    match &report.errors()[0] {
        CheckError::Parse(ParseError::Unclosed(e)) => {
            assert_eq!(e.delimiter(), '}');
            assert_eq!(e.what(), "workload `w`");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn warnings_do_not_stop_compilation() {
    let text = format!("{POLICY}\nroute spare = anthropic/claude-haiku-4.5\n");
    let compiled = compile(&[SourceFile::new("notes.route", text)]).unwrap();
    assert!(matches!(compiled.warnings(), [CheckWarning::UnusedRoute(w)] if w.route() == "spare"));
}

#[test]
fn load_reads_files_and_reports_what_it_cannot() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.route"), POLICY).unwrap();
    let files = load(&[dir.path()]).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].text(), POLICY);
    assert!(compile_path(dir.path()).is_ok());
    let report = load(&[dir.path().join("nope")]).unwrap_err();
    assert!(matches!(&report.errors()[0], CheckError::Load(LoadError::Unreadable(e)) if e.path().ends_with("nope")));
}

#[test]
fn format_is_canonical_and_keeps_comments() {
    let messy = "# why\nworkload w{data public;route m/e}  # trailing\nprovider m{adapter mock;tier free;model e{}}";
    let out = format(&SourceFile::new("x.route", messy)).unwrap();
    assert_eq!(
        out,
        "# why\nworkload w {\n  data public\n  route m/e\n} # trailing\n\nprovider m {\n  adapter mock\n  tier free\n  model e {}\n}\n"
    );
    assert_eq!(format(&SourceFile::new("x.route", out.as_str())).unwrap(), out);
}

#[test]
fn every_code_has_a_title_and_a_severity() {
    for code in Code::ALL {
        assert!(!code.title().is_empty());
        assert_eq!(code.is_warning(), code.to_string().starts_with('W'));
    }
}

#[test]
fn failure_settings_lower_to_the_ir_nearest_level_first() {
    use std::time::Duration;

    use router_core::{CooldownScope, Trigger};

    let text = r#"
defaults {
  timeouts connect 5s, first_token 30s, total 2m
  breaker failures 3, eject 2s, max_eject 10s
  cooldown per_provider
}
provider p {
  adapter mock
  tier free
  timeouts first_token 8s, idle 4s
  breaker off
  retry_after_wait 1s
  model m {}
  model n {}
}
workload w {
  data public
  route fallback [p/m, p/n] on server_error, timeout retry server_error 2, timeout 1 timeouts first_token 3s
}
"#;
    let compiled = compile(&[SourceFile::new("f.route", text)]).unwrap();
    let policy = compiled.policy();
    let d = policy.defaults.failure;
    assert_eq!(d.timeouts.connect, Some(Duration::from_secs(5)));
    assert_eq!(d.timeouts.total, Some(Duration::from_secs(120)));
    assert_eq!(d.breaker.failures, Some(3));
    assert_eq!(d.cooldown, Some(CooldownScope::PerProvider));
    let p = &policy.providers[0];
    assert_eq!(p.failure.breaker.enabled, Some(false));
    assert_eq!(p.failure.retry_after_wait, Some(Duration::from_secs(1)));
    assert_eq!(p.failure.timeouts.idle, Some(Duration::from_secs(4)));

    let facts = router_core::Facts::new(router_core::WorkloadId(0));
    let snap = router_core::StateSnapshot::for_policy(policy, 0);
    let decision = router_core::decide(policy, &facts, &snap);
    let a = &decision.plan().attempts()[0];
    // The chain's first token, the provider's idle, the defaults' total.
    assert_eq!(a.first_token, Some(Duration::from_secs(3)));
    assert_eq!(a.idle, Some(Duration::from_secs(4)));
    assert_eq!(a.timeout, Some(Duration::from_secs(120)));
    assert_eq!(a.retry_on.get(Trigger::ServerError), Some(2));
    assert_eq!(a.retry_on.get(Trigger::Timeout), Some(1));
    assert_eq!(a.retry_on.get(Trigger::RateLimited), None);
    // `routec explain` says them.
    let text = router_core::render_text(policy, &decision);
    assert!(
        text.contains("first token 3s · idle 4s") && text.contains("retry server_error 2, timeout 1"),
        "{text}"
    );
}

#[test]
fn failure_settings_reject_what_cannot_hold() {
    let text = r#"
provider p {
  adapter mock
  tier free
  timeout 30s
  timeouts total 1m
  breaker eject 30s, max_eject 10s
  model m {}
}
workload w {
  data public
  route fallback [p/m] retry server_error 11 timeouts total 5s on timeout(3s)
}
"#;
    let report = compile(&[SourceFile::new("f.route", text)]).unwrap_err();
    let messages: Vec<String> = report.errors().iter().map(ToString::to_string).collect();
    let all = messages.join("\n");
    assert!(all.contains("the total timeout is given twice"), "{all}");
    assert!(
        all.contains("`max_eject 10s` is shorter than the first ejection"),
        "{all}"
    );
    assert!(all.contains("`retry server_error 11` is too many retries"), "{all}");
}

#[test]
fn worst_case_bounds_add_up_a_chain_and_take_a_matchs_worst_branch() {
    use std::time::Duration;

    let text = r#"
provider p {
  adapter mock
  tier paid
  model m { price $1/M in, $2/M out; context 10k; max_output 1k }
  model big { price $3/M in, $3/M out; context 10k; max_output 1k }
}
workload chain {
  data public
  max_tokens 1000
  route fallback [p/m, p/big] retry 1 timeouts total 10s allow_repeat
}
workload branches {
  data public
  max_tokens 1000
  latency 15s
  route match {
    when has tools => p/big
    else => p/m
  }
}
"#;
    let compiled = compile(&[SourceFile::new("b.route", text)]).unwrap();
    let policy = compiled.policy();
    let chain = router_core::worst_case(policy, policy.workload_id("chain").unwrap());
    // Two targets, each tried twice; within the default bound of 4.
    assert_eq!(chain.calls, 4);
    // m: 9,000 in × $1/M + 1,000 out × $2/M = $0.011, twice; big: $0.030, twice.
    assert_eq!(chain.cost, Some(router_core::Usd::from_nanos(82_000_000)));
    // Per target: two 10 s attempts and one 2 s wait.
    assert_eq!(chain.time, Some(Duration::from_secs(44)));
    assert!(!chain.by_deadline);

    let branches = router_core::worst_case(policy, policy.workload_id("branches").unwrap());
    assert_eq!(branches.calls, 1, "one branch is taken");
    assert_eq!(
        branches.cost,
        Some(router_core::Usd::from_nanos(30_000_000)),
        "the dearer branch"
    );
    assert_eq!(branches.time, Some(Duration::from_secs(15)), "cut by `latency 15s`");
    assert!(branches.by_deadline);
}

#[test]
fn an_evaluator_adds_one_worst_case_call_of_its_workload_per_candidate() {
    let text = r#"
provider p {
  adapter mock
  tier paid
  model cheap { price $1/M in, $1/M out; context 10k; max_output 1k }
  model strong { price $2/M in, $2/M out; context 10k; max_output 1k }
}
workload judge {
  data public
  max_tokens 1000
  route p/cheap
}
workload answer {
  data public
  max_tokens 1000
  route escalate [p/cheap, p/strong] check evaluator(judge) allow_repeat
}
"#;
    let compiled = compile(&[SourceFile::new("e.route", text)]).unwrap();
    let policy = compiled.policy();
    let judge = router_core::worst_case(policy, policy.workload_id("judge").unwrap());
    let answer = router_core::worst_case(policy, policy.workload_id("answer").unwrap());
    assert_eq!(judge.calls, 1);
    // Two candidates, each judged once.
    assert_eq!(answer.calls, 2 + 2 * judge.calls);
    let (a, j) = (answer.cost.unwrap().nanos(), judge.cost.unwrap().nanos());
    // cheap: $0.010, strong: $0.020, and two judge calls at $0.010.
    assert_eq!(a, 10_000_000 + 20_000_000 + 2 * j, "{a} vs judge {j}");
}
