//! Diagnostics checked by content: code, message, help and the text each
//! label underlines, through one helper:
//! `expect_diag(src, Code::R0203).help("…").underlines(&["…"])`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use miette::Diagnostic;
use policy_lang::{CheckReport, Code, SourceFile};

fn report(src: &str) -> CheckReport {
    let file = SourceFile::new("test.route", src);
    match policy_lang::parse(&[file]) {
        Ok(ast) => policy_lang::check(&ast),
        Err(r) => r,
    }
}

/// The first diagnostic with `code` in the report of `src`, to check further.
struct Expect {
    report: CheckReport,
    index: usize,
    src: String,
}

fn expect_diag(src: &str, code: Code) -> Expect {
    let report = report(src);
    let index = report
        .diagnostics()
        .position(|d| d.code().is_some_and(|c| c.to_string() == code.as_str()))
        .unwrap_or_else(|| panic!("no {code} in:\n{report}"));
    Expect {
        report,
        index,
        src: src.to_string(),
    }
}

impl Expect {
    fn diag(&self) -> &dyn Diagnostic {
        self.report.diagnostics().nth(self.index).unwrap()
    }

    fn message(self, part: &str) -> Self {
        let m = self.diag().to_string();
        assert!(m.contains(part), "message {m:?} lacks {part:?}");
        self
    }

    fn help(self, part: &str) -> Self {
        let h = self.diag().help().map(|h| h.to_string()).unwrap_or_default();
        assert!(h.contains(part), "help {h:?} lacks {part:?}");
        self
    }

    /// The texts the labels underline, in source order, must be `texts`.
    fn underlines(self, texts: &[&str]) -> Self {
        let mut spans: Vec<(usize, usize)> = self
            .diag()
            .labels()
            .map(|l| l.map(|l| (l.offset(), l.len())).collect())
            .unwrap_or_default();
        spans.sort();
        let got: Vec<&str> = spans.iter().map(|(o, l)| &self.src[*o..o + l]).collect();
        assert_eq!(got, texts, "underlined text");
        self
    }

    /// Some label says `part`.
    fn label(self, part: &str) -> Self {
        let labels: Vec<String> = self
            .diag()
            .labels()
            .map(|l| l.filter_map(|l| l.label().map(str::to_string)).collect())
            .unwrap_or_default();
        assert!(
            labels.iter().any(|l| l.contains(part)),
            "no label {part:?} in {labels:?}"
        );
        self
    }
}

fn codes(src: &str) -> Vec<Code> {
    report(src).codes()
}

const PROVIDERS: &str = r#"
provider safe { adapter mock; tier paid; data private; model big { price $1/M in, $2/M out; max_output 32k; supports tools, vision } model small { price $1/M in, $1/M out; max_output 4k; supports tools } }
provider open { adapter mock; tier free; data public; model m { price free; max_output 8k } }
"#;

#[test]
fn pii_is_checked_on_every_arm_not_only_the_first_target() {
    let src = format!(
        "{PROVIDERS}workload w {{ data private; route match {{ when has tools => safe/big else => split by user {{ 90: safe/big 10: open/m }} }} }}"
    );
    expect_diag(&src, Code::R0202)
        .message("workload `w` can reach provider `open` below its data class")
        .underlines(&["public", "data private", "open/m"])
        .help("path: workload `w` → `open/m`");
}

#[test]
fn pii_paths_name_each_route_on_the_way() {
    let src = format!(
        "{PROVIDERS}route inner = fallback [ open/m ]\nroute outer = fallback [ safe/big, inner ]\nworkload w {{ data internal; route outer }}"
    );
    expect_diag(&src, Code::R0202)
        .help("path: workload `w` → route `outer` → route `inner` → `open/m`")
        .label("`outer` uses route `inner`")
        .label("`w` uses route `outer`");
}

#[test]
fn capability_mismatch_counts_every_path() {
    let src = format!(
        "{PROVIDERS}workload w {{ data private; requires vision; route select cheapest [ safe/big, safe/small ] }}"
    );
    expect_diag(&src, Code::R0207)
        .message("requires `vision` but can reach `safe/small`")
        .underlines(&["small", "requires vision", "safe/small"]);
}

#[test]
fn no_eligible_target_lists_why() {
    let src = format!("{PROVIDERS}workload w {{ data private; requires vision; route open/m }}");
    expect_diag(&src, Code::R0203)
        .help("`open/m` is cleared for public data only")
        .underlines(&["w", "open/m"]);
    let src = format!("{PROVIDERS}workload w {{ data private; route fallback [] }}");
    expect_diag(&src, Code::R0203).label("this route has no targets");
}

#[test]
fn max_tokens_is_checked_against_output_and_context() {
    let src =
        format!("{PROVIDERS}workload w {{ data private; max_tokens 8k; route fallback [ safe/big, safe/small ] }}");
    expect_diag(&src, Code::R0208)
        .message("allows 8000 output tokens but `safe/small` has a max_output of 4000")
        .help("lower `max_tokens` to 4000 or less");
    let src = "provider p { adapter mock; tier free; model m { context 4k } }\nworkload w { data public; max_tokens 5000; route p/m }";
    expect_diag(src, Code::R0208).message("has a context of 4000");
}

#[test]
fn cost_limits_need_prices_on_paid_models_only() {
    let src = "provider p { adapter mock; tier paid; model m {} }\nprovider f { adapter mock; tier free; model m {} }\nworkload w { data public; max_cost $0.10 per call; route fallback [ f/m, p/m ] }";
    expect_diag(src, Code::R0209)
        .message("can reach `p/m`, a paid model with no price")
        .label("dollar limit here");
    assert_eq!(codes(src), vec![Code::R0209]);
}

#[test]
fn cycles_through_anonymous_nodes_show_the_named_routes() {
    let src = "provider p { adapter mock; tier free; model m {} }\nroute a = fallback [ p/m, split by user { 50: p/m 50: b } ]\nroute b = match { when has tools => a else => p/m }\nworkload w { data public; route a }";
    expect_diag(src, Code::R0201)
        .message("route cycle: `a` → `b` → `a`")
        .underlines(&["b", "a"]);
    let src = "route a = a\nworkload w { data public; route a }";
    expect_diag(src, Code::R0201).message("route cycle: `a` → `a`");
}

#[test]
fn unreachable_arms_name_the_arm_that_takes_their_calls() {
    let src = "provider p { adapter mock; tier free; model m {} }\nworkload w { data public; route match {\n  when has tools or has images => p/m\n  when has images and input_tokens > 100 => p/m\n  else => p/m\n} }";
    expect_diag(src, Code::R0206)
        .message("`match` arm 2 can never be taken")
        .underlines(&["when has tools or has images", "when has images and input_tokens > 100"]);
    let src = "provider p { adapter mock; tier free; model m {} }\nworkload w { data public; route match { when input_tokens > 10 and input_tokens < 5 => p/m else => p/m } }";
    expect_diag(src, Code::R0206).label("this condition is never true");
    let src = "provider p { adapter mock; tier free; model m {} }\nworkload w { data public; route match { else => p/m when has tools => p/m } }";
    expect_diag(src, Code::R0206).label("`else` takes every call after it");
}

#[test]
fn task_conditions_use_known_tasks() {
    let src = "provider p { adapter mock; tier free; model m {} }\nworkload w { data public; route match { when task == cod => p/m else => p/m } }";
    expect_diag(src, Code::R0104).label("did you mean `code`?");
}

#[test]
fn evaluators_are_workloads() {
    let src = "provider p { adapter mock; tier free; model m {} }\nworkload judge { data public; route p/m }\nworkload w { data public; route escalate [ p/m ] check evaluator(judg) }";
    expect_diag(src, Code::R0101)
        .message("unknown workload `judg`")
        .label("did you mean `judge`?");
}

#[test]
fn a_provider_named_as_a_route_gets_a_hint() {
    let src = "provider mock { adapter mock; tier free; model m {} }\nworkload w { data public; route mock }";
    expect_diag(src, Code::R0101).help("`mock` is a provider; a target is written `mock/MODEL`");
}

#[test]
fn aliases_may_not_collide() {
    let src = "provider p { adapter mock; tier free; model m {} }\nworkload a { data public; alias \"gpt-4o\"; route p/m }\nworkload b { data public; alias \"a\"; route p/m }";
    expect_diag(src, Code::R0102)
        .message("alias `a` of workload `b` is already workload `a`")
        .underlines(&["a", "\"a\""]);
}

#[test]
fn required_properties_depend_on_the_adapter() {
    let src = "provider c { adapter cli; tier subscription; model m {} }\nprovider o { adapter openai_compatible; tier free; model m {} }\nworkload w { data public; route fallback [ c/m, o/m ] }";
    assert_eq!(codes(src), vec![Code::R0106, Code::R0106]);
    expect_diag(src, Code::R0106).message("provider `c` has no `command`");
}

#[test]
fn budget_limits_are_each_given_once() {
    let src = "provider p { adapter mock; tier free; model m {} }\nworkload w { data public; budget 1M tokens/day; budget 2M tokens/day; route p/m }";
    expect_diag(src, Code::R0105)
        .message("`tokens/day` is given twice")
        .underlines(&["1M tokens/day", "2M tokens/day"]);
}

#[test]
fn secrets_are_found_in_any_string_but_never_repeated() {
    let src = "provider p { adapter mock; tier free; header \"Authorization\" = \"Bearer sk-ant-api03-0123456789abcdefXYZ\"; model m {} }\nworkload w { data public; route p/m }";
    let e = expect_diag(src, Code::R0210).label("looks like an API key");
    let rendered = format!("{} {:?}", e.diag(), e.diag().help().map(|h| h.to_string()));
    assert!(!rendered.contains("sk-ant"), "{rendered}");
}

#[test]
fn back_to_back_looks_through_nested_chains_and_respects_allow_repeat() {
    let src = format!(
        "{PROVIDERS}route tail = fallback [ safe/small, open/m ]\nworkload w {{ data public; route fallback [ fallback [ open/m, safe/big ], tail ] }}"
    );
    expect_diag(&src, Code::W0304).message("provider `safe` is tried twice in a row");
    let allowed = src.replace("tail ] }", "tail ] allow_repeat }");
    assert!(!codes(&allowed).contains(&Code::W0304));
}

#[test]
fn free_first_is_sorted_before_back_to_back_is_judged() {
    // Written paid, free, paid: sorted free, paid, paid.
    let src = format!("{PROVIDERS}workload w {{ data public; route free_first [ safe/big, open/m, safe/small ] }}");
    expect_diag(&src, Code::W0304).underlines(&["safe/big", "safe/small"]);
}

#[test]
fn unreachable_targets_respect_the_cheapest_arm_and_defaults() {
    // The split's cheaper arm costs one attempt (the other, two), so
    // `open/m` comes after at least two.
    let src = format!(
        "{PROVIDERS}defaults {{ max_attempts 2 }}\nworkload w {{ data public; route fallback [ safe/big, split by user {{ 50: safe/small 50: select fastest [ safe/small, safe/big ] }}, open/m ] }}"
    );
    expect_diag(&src, Code::W0305).message("target `open/m` is never tried: workload `w` gives up after 2 attempts");
    // With three attempts it is reachable.
    assert!(!codes(&src.replace("max_attempts 2", "max_attempts 3")).contains(&Code::W0305));
}

#[test]
fn syntax_errors_say_what_was_expected_in_words() {
    expect_diag("simulate latency 1s", Code::R0005)
        .message("expected `provider`, `workload`, `route` or `defaults`, found `simulate`");
    expect_diag("workload w { data secret }", Code::R0005)
        .message("expected a data class (`public`, `internal`, `private`), found `secret`")
        .label("in workload `w`");
    expect_diag("route r = fallbak [ p/m ]", Code::R0005).message("found `[`");
    expect_diag("provider p { tire free }", Code::R0005).help("did you mean `tier`?");
    expect_diag("workload w { route split by user { 50 p/m } }", Code::R0005).message("expected `:`");
}

#[test]
fn one_broken_item_does_not_hide_the_next() {
    let src = "provider p { tier }\nworkload w { data public; route p/m }\nroute r = fallback [ p/m ] on 404\n";
    assert_eq!(codes(src), vec![Code::R0005, Code::R0005]);
}

#[test]
fn mixed_scripts_are_flagged_per_definition() {
    // Greek omicron in a Latin name.
    let src =
        "provider p { adapter mock; tier free; model m {} }\nroute pοol = p/m\nworkload w { data public; route pοol }";
    expect_diag(src, Code::W0306).message("mixes Latin and Greek letters");
}

#[test]
fn evaluators_must_be_cleared_for_the_answers_they_judge() {
    let src = format!(
        "{PROVIDERS}workload judge {{ data public; route open/m }}\nworkload w {{ data private; route escalate [ safe/small, safe/big ] check evaluator(judge) }}"
    );
    expect_diag(&src, Code::R0202)
        .message("workload `w` sends its answers to evaluator `judge`, below its data class")
        .label("`judge` carries public data")
        .help("give `judge` `data private`");
}

#[test]
fn regex_checks_are_compiled_with_the_regex_crate() {
    let src = "provider p { adapter mock; tier free; model m {} }\nworkload w { data public; route escalate [ p/m ] check regex(\"a(?=b)\") }";
    expect_diag(src, Code::R0107)
        .message("`regex` check pattern `a(?=b)` does not compile")
        .help("look-around, including look-ahead and look-behind, is not supported")
        .underlines(&["\"a(?=b)\""]);
    // Escapes are resolved before the pattern is compiled: `\\d` is `\d`.
    let ok = src.replace("a(?=b)", "^\\\\d+$");
    assert_eq!(codes(&ok), vec![]);
    // One error per written pattern, also in a named route used twice.
    let src = "provider p { adapter mock; tier free; model m {} }\nroute r = escalate [ p/m ] check regex(\"[z-a]\")\nworkload a { data public; route r }\nworkload b { data public; route r }";
    assert_eq!(codes(src), vec![Code::R0107]);
}

#[test]
fn evaluator_cycles_show_every_hop() {
    let src = "provider p { adapter mock; tier free; model m {} }\nworkload a { data public; route escalate [ p/m ] check evaluator(b) }\nworkload b { data public; route fallback [ escalate [ p/m ] check evaluator(c) ] }\nworkload c { data public; route escalate [ p/m ] check evaluator(a) }";
    expect_diag(src, Code::R0213)
        .message("evaluator cycle: `a` → `b` → `c` → `a`")
        .underlines(&["b", "c", "a"])
        .label("`c` is judged by `a`");
    assert_eq!(codes(src), vec![Code::R0213]);
    let src = "provider p { adapter mock; tier free; model m {} }\nworkload a { data public; route escalate [ p/m ] check evaluator(a) }";
    expect_diag(src, Code::R0213).message("evaluator cycle: `a` → `a`");
    // A chain of judges that ends is fine.
    let src = "provider p { adapter mock; tier free; model m {} }\nworkload a { data public; route escalate [ p/m ] check evaluator(b) }\nworkload b { data public; route escalate [ p/m ] check evaluator(c) }\nworkload c { data public; route p/m }";
    assert!(!codes(src).contains(&Code::R0213));
}

/// Renders a report as `routec check` does, without colour, at a fixed width.
fn rendered(src: &str) -> String {
    let handler = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .with_links(false);
    let mut out = String::new();
    for d in report(src).diagnostics() {
        handler.render_report(&mut out, d).unwrap();
    }
    out
}

#[test]
fn keys_in_comments_are_masked_in_the_snippets_of_other_diagnostics() {
    let src = "provider p { adapter mock; tier free; model m {} }\n# was: sk-proj-REALKEY1234567890abcdef\nworkload w { data public; route p/mm }\n";
    let out = rendered(src);
    assert!(out.contains("R0101"), "{out}");
    assert!(
        out.contains("# was: sk-p***"),
        "the comment is shown as context:\n{out}"
    );
    assert!(!out.contains("REALKEY"), "{out}");
}

#[test]
fn a_diagnostic_on_a_huge_line_shows_a_window_around_its_span() {
    let src = format!(
        "provider p {{ adapter mock; tier free; model m {{}} }}\n{} workload w {{ data public; route p/zz }} # {}\n",
        " ".repeat(65_000),
        "x".repeat(65_000)
    );
    assert!(src.len() > 130_000);
    let out = rendered(&src);
    assert!(out.contains("provider `p` has no model `zz`"), "{out}");
    assert!(
        out.contains("route p/zz }"),
        "the span and its surroundings are shown:\n{out}"
    );
    assert!(out.len() < 2_000, "{} bytes rendered", out.len());
    assert!(out.contains(":2:"), "the line number is kept:\n{out}");
}

#[test]
fn fractional_weights_are_explained_as_whole_percentages() {
    let src = "provider p { adapter mock; tier free; model m {} }\nworkload w { data public; route split by user { 50: p/m, 49.5: p/m, 0.5: p/m } }";
    expect_diag(src, Code::R0009)
        .message("split weight `49.5` is not a whole percentage")
        .help("whole percentages of calls that sum to 100")
        .underlines(&["49.5"]);
    assert!(!report(src).to_string().contains("suffix"), "{}", report(src));
    let src = "provider p { adapter mock; tier free; model m {} }\nworkload w { data public; route select weighted { 1.5: p/m, 1: p/m } }";
    expect_diag(src, Code::R0009)
        .message("`select weighted` weight `1.5` is not a whole number")
        .help("relative to each other");
}

#[test]
fn a_look_alike_name_says_which_character_differs() {
    // Defined with a Cyrillic `с` (U+0441), referred to with a Latin `c`.
    let src =
        "provider \u{441}erebras { adapter mock; tier free; model m {} }\nworkload w { data public; route cerebras/m }";
    expect_diag(src, Code::R0101)
        .message("unknown provider `cerebras`")
        .label("`\u{441}erebras` is written with `\u{441}` (U+0441, Cyrillic) where this has `c` (U+0063, Latin)")
        .help("look the same but are different characters");
    let r = report(src).to_string();
    assert!(!r.contains("define it with"), "{r}");
}
