//! Hostile and odd input: every case is a diagnostic with a code, never a
//! panic, a stack overflow or a long stall.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use policy_lang::{Code, SourceFile};

/// Parses and checks `text` as one file; the codes found (empty when clean).
fn codes(text: &str) -> Vec<Code> {
    let file = SourceFile::new("input.route", text);
    match policy_lang::parse(&[file]) {
        Ok(ast) => policy_lang::check(&ast).codes(),
        Err(report) => report.codes(),
    }
}

/// Runs `f` on a thread with a small stack, as a guard that nothing
/// recurses on the input's depth.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(512 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

const MOCK: &str = "provider m { adapter mock; tier free; model e {} }\n";

#[test]
fn an_empty_file_is_a_policy_with_nothing_in_it() {
    assert_eq!(codes(""), vec![Code::W0307]);
    assert_eq!(codes("\n\n   \t\n# only a comment\n"), vec![Code::W0307]);
    assert_eq!(codes("\u{FEFF}"), vec![Code::W0307]);
}

#[test]
fn ten_thousand_deep_nesting_is_refused_before_parsing() {
    let text = format!("route r = {}mock/e{}", "fallback [".repeat(10_000), "]".repeat(10_000));
    assert_eq!(on_small_stack(move || codes(&text)), vec![Code::R0008]);
    let text = format!(
        "{MOCK}workload w {{ data public; route match {{ when {}has tools{} => m/e else => m/e }} }}",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert_eq!(on_small_stack(move || codes(&text)), vec![Code::R0008]);
}

#[test]
fn long_runs_without_brackets_do_not_recurse() {
    // `not` and `and` are repetitions in the grammar and flat in the tree.
    let text = format!(
        "{MOCK}workload w {{ data public; route match {{ when {}has tools => m/e else => m/e }} }}",
        "not ".repeat(200_000)
    );
    assert!(on_small_stack(move || codes(&text)).is_empty());
    let conds: Vec<String> = (0..20_000).map(|i| format!("input_tokens > {i}")).collect();
    let text = format!(
        "{MOCK}workload w {{ data public; route match {{ when {} => m/e else => m/e }} }}",
        conds.join(" and ")
    );
    let start = Instant::now();
    assert!(on_small_stack(move || codes(&text)).is_empty());
    assert!(start.elapsed() < Duration::from_secs(20), "took {:?}", start.elapsed());
}

#[test]
fn a_ten_megabyte_text_is_refused_by_size() {
    let text = "# padding\n".repeat(1_100_000);
    assert!(text.len() > 10_000_000);
    assert_eq!(codes(&text), vec![Code::R0003]);
}

#[test]
fn crlf_and_tabs_are_whitespace() {
    let text = "provider m {\r\n\tadapter mock\r\n\ttier free\r\n\tmodel e {}\r\n}\r\nworkload w {\r\n\tdata public\r\n\troute m/e\r\n}\r\n";
    assert!(codes(text).is_empty(), "{:?}", codes(text));
}

#[test]
fn unknown_and_malformed_escapes_point_at_the_escape() {
    for bad in [r"\q", r"\u{110000}", r"\u{}", r"\u12", r"\x41"] {
        let text = format!("{MOCK}workload w {{ data public; alias \"a{bad}b\"; route m/e }}");
        assert_eq!(codes(&text), vec![Code::R0007], "{bad}");
    }
}

#[test]
fn literals_out_of_range_are_bad_literals_not_panics() {
    for bad in [
        "max_tokens 99999999999999999999999999",
        "max_tokens 20000000000B",
        "max_attempts 0",
        "max_attempts 300",
        "latency 0ms",
        "latency 99999h",
        "max_cost $0.0000000001 per call",
        "budget 1M tokens/day alert 0.5%",
    ] {
        let text = format!("{MOCK}workload w {{ data public; {bad}; route m/e }}");
        assert_eq!(codes(&text), vec![Code::R0009], "{bad}");
    }
}

#[test]
fn a_string_that_never_ends_is_unclosed() {
    // The string, and the block it is in.
    assert_eq!(
        codes("provider p { base_url \"http://x"),
        vec![Code::R0006, Code::R0006]
    );
    assert_eq!(codes("\""), vec![Code::R0006]);
}

#[test]
fn stray_bytes_and_truncations_are_syntax_errors() {
    for text in [
        "}",
        "]]]",
        "provider",
        "provider p",
        "provider p {",
        "@@@",
        "route r =",
        "workload w { route",
    ] {
        let found = codes(text);
        assert!(
            found
                .iter()
                .all(|c| matches!(c, Code::R0005 | Code::R0006 | Code::R0010)),
            "{text:?}: {found:?}"
        );
        assert!(!found.is_empty(), "{text:?}");
    }
}

mod files {
    use super::*;

    fn load_codes(path: &std::path::Path) -> Vec<Code> {
        match policy_lang::load(&[path]) {
            Ok(files) => match policy_lang::parse(&files) {
                Ok(ast) => policy_lang::check(&ast).codes(),
                Err(report) => report.codes(),
            },
            Err(report) => report.codes(),
        }
    }

    #[test]
    fn an_unreadable_path_is_r0001() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_codes(&dir.path().join("missing.route")), vec![Code::R0001]);
    }

    #[test]
    fn a_directory_without_route_files_is_r0004() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not a policy").unwrap();
        std::fs::create_dir(dir.path().join("nested.route")).unwrap();
        assert_eq!(load_codes(dir.path()), vec![Code::R0004]);
    }

    #[test]
    fn non_utf8_bytes_are_r0002_with_their_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.route");
        std::fs::write(&path, b"provider p {\n  tier \xff\n}\n").unwrap();
        let report = policy_lang::load(&[&path]).unwrap_err();
        let [policy_lang::CheckError::Load(policy_lang::LoadError::NotUtf8(e))] = report.errors() else {
            panic!("{report}");
        };
        assert_eq!(e.offset(), 20);
        assert!(e.to_string().contains("line 2, column 8"), "{e}");
    }

    #[test]
    fn a_ten_megabyte_file_is_r0003_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.route");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(10 * 1024 * 1024).unwrap();
        assert_eq!(load_codes(&path), vec![Code::R0003]);
    }

    #[test]
    fn a_directory_is_one_policy_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.route"), "workload w { data public; route m/e }\n").unwrap();
        std::fs::write(dir.path().join("a.route"), MOCK).unwrap();
        let files = policy_lang::load(&[dir.path()]).unwrap();
        assert_eq!(files.len(), 2);
        assert!(files[0].name().ends_with("a.route"));
        assert!(load_codes(dir.path()).is_empty());
    }

    #[test]
    fn every_unreadable_path_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let report = policy_lang::load(&[dir.path().join("x"), dir.path().join("y")]).unwrap_err();
        assert_eq!(report.codes(), vec![Code::R0001, Code::R0001]);
    }
}

/// Runs `f` on a thread with a 1 MiB stack, as a thread an embedder spawns.
fn on_one_mebibyte_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .expect("the check ran out of stack or panicked")
}

/// `route r0 = r1`, `route r1 = r2`, … `route r{n-1} = m/e`, used by one workload.
fn chain_of_named_routes(n: usize) -> String {
    let mut text = String::from(MOCK);
    text.push_str("workload w { data public; route r0 }\n");
    for i in 0..n - 1 {
        text.push_str(&format!("route r{i} = r{}\n", i + 1));
    }
    text.push_str(&format!("route r{} = m/e\n", n - 1));
    text
}

#[test]
fn a_hundred_thousand_route_chain_checks_on_a_one_mebibyte_stack() {
    let text = chain_of_named_routes(100_000);
    assert!(text.len() < policy_lang::MAX_FILE_BYTES, "{} bytes", text.len());
    let start = Instant::now();
    // Deeper than the router follows: one error, not a crash.
    assert_eq!(on_one_mebibyte_stack(move || codes(&text)), vec![Code::R0214]);
    // Linear: about 15 s unoptimised on a busy 2-core machine; quadratic would be hours.
    assert!(start.elapsed() < Duration::from_secs(180), "took {:?}", start.elapsed());
}

#[test]
fn a_hundred_thousand_route_cycle_is_one_error_on_a_one_mebibyte_stack() {
    let text = chain_of_named_routes(100_000).replace("route r99999 = m/e", "route r99999 = r0");
    let found = on_one_mebibyte_stack(move || codes(&text));
    assert!(found.contains(&Code::R0201), "{found:?}");
    assert!(!found.contains(&Code::R0214), "{found:?}");
}

#[test]
fn a_chain_as_deep_as_the_router_follows_checks_clean_and_decides() {
    let depth = router_core::MAX_ROUTE_DEPTH as usize;
    // `chain_of_named_routes(n)`: the workload's route `r0` is step 0 and the
    // target, written as `route r{n-1} = m/e`, is step n - 1.
    assert_eq!(codes(&chain_of_named_routes(depth + 2)), vec![Code::R0214]);
    let text = chain_of_named_routes(depth + 1);
    let attempts = on_one_mebibyte_stack(move || {
        let compiled = policy_lang::compile(&[SourceFile::new("input.route", text)]).unwrap();
        assert!(compiled.report().is_clean());
        let policy = compiled.policy();
        let facts = router_core::RequestFacts::default();
        let decision = router_core::decide(
            policy,
            &facts.facts_for(policy, "w").unwrap(),
            &router_core::StateSnapshot::default(),
        );
        decision
            .outcome()
            .map(|plan| plan.attempts().len())
            .map_err(|r| format!("{r:?}"))
    });
    assert_eq!(attempts, Ok(1), "the router follows what the checker passes");
}

#[test]
fn formatting_keeps_crlf_line_endings() {
    let text = "provider m {\r\n\tadapter mock\r\n\ttier free\r\n\tmodel e {}\r\n}\r\n# a comment\r\nworkload w { data public; route m/e }\r\n";
    let formatted = policy_lang::format(&SourceFile::new("crlf.route", text)).unwrap();
    assert!(formatted.contains("\r\n"), "{formatted:?}");
    assert!(
        !formatted.replace("\r\n", "").contains('\n'),
        "a bare LF: {formatted:?}"
    );
    assert!(!formatted.contains("\r\r"), "{formatted:?}");
    // Formatted CRLF text is a fixed point, so `fmt --check` passes on it.
    let again = policy_lang::format(&SourceFile::new("crlf.route", formatted.as_str())).unwrap();
    assert_eq!(again, formatted);
    // The same text with LF endings formats to the same, with LF.
    let lf = policy_lang::format(&SourceFile::new("lf.route", text.replace("\r\n", "\n"))).unwrap();
    assert_eq!(lf.replace('\n', "\r\n"), formatted);
}
