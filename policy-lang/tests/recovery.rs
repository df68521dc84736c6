//! Syntax-error recovery inside blocks: each broken property of a provider,
//! model, workload or `defaults` block is one error, and a single mistake is
//! exactly one, however it is made.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use policy_lang::{CheckReport, Code, SourceFile};

fn report(text: &str) -> CheckReport {
    match policy_lang::parse(&[SourceFile::new("p.route", text)]) {
        Ok(ast) => policy_lang::check(&ast),
        Err(report) => report,
    }
}

/// A policy using every kind of property, some in their tricky forms (a
/// route named like a property, `task` inside a condition, `no_store
/// header`), which checks clean.
const POLICY: &str = r#"
provider anthropic {
  adapter anthropic
  key env("ANTHROPIC_API_KEY")
  tier paid
  jurisdiction us
  data private
  no_store header "X-No-Store" = "1"
  header "X-Team" = "ml"
  limits rpm 500, tpm 2M
  timeout 30s
  model claude-haiku-4.5 {
    id "claude-haiku-4-5"
    price $1/M in, $5/M out
    context 200k
    max_output 64k
    supports tools, stream
  }
}

route data = fallback [ anthropic/claude-haiku-4.5 ] on 429, timeout(10s)

workload notes {
  task summarise
  quality low
  data private
  max_tokens 2000
  latency 20s
  max_cost $0.10 per call
  budget $5/day, 1M tokens/day alert 80%
  max_attempts 3
  idempotent 5m
  alias "notes-v1"
  route match {
    when task == code => anthropic/claude-haiku-4.5
    else => data
  }
}

defaults {
  max_attempts 4
}
"#;

/// One mistake each: `(what is replaced, by what)`.
const MISTAKES: &[(&str, &str)] = &[
    // Provider properties.
    ("adapter anthropic", "adapter"),
    ("tier paid", "tier cheap"),
    ("tier paid", "tire paid"),
    ("jurisdiction us", "jurisdiction"),
    ("data private\n  no_store", "data secret\n  no_store"),
    (
        "no_store header \"X-No-Store\" = \"1\"",
        "no_store \"X-No-Store\" = \"1\"",
    ),
    ("header \"X-Team\" = \"ml\"", "header \"X-Team\" \"ml\""),
    ("limits rpm 500, tpm 2M", "limits rpm 500, tpm"),
    ("key env(\"ANTHROPIC_API_KEY\")", "key env(ANTHROPIC_API_KEY)"),
    ("timeout 30s", "timeout 30"),
    // Model properties.
    ("price $1/M in, $5/M out", "price $1/M in $5/M"),
    ("context 200k", "contxt 200k"),
    ("supports tools, stream", "supports tools, telepathy"),
    ("max_output 64k", "max_output"),
    // Workload properties.
    ("task summarise", "tsk summarise"),
    ("quality low", "quality"),
    ("max_cost $0.10 per call", "max_cost $0.10"),
    ("budget $5/day", "budget $5/week"),
    ("latency 20s", "latency twenty"),
    ("when task == code", "when task = code"),
    ("else => data", "else data"),
    ("idempotent 5m", "idempotent 5m 6m"),
    ("notes {\n  task", "notes {\n  stray\n  task"),
    // Defaults.
    ("max_attempts 4", "max_attempts four"),
];

/// What each error says was expected (what was found instead depends on
/// what follows, which the other mistake may change).
fn messages(r: &CheckReport) -> Vec<String> {
    r.errors()
        .iter()
        .map(|e| e.to_string().split(", found").next().unwrap_or("").to_string())
        .collect()
}

fn broken(text: &str, (from, to): (&str, &str)) -> String {
    assert!(text.contains(from), "{from:?} is not in the policy");
    text.replacen(from, to, 1)
}

#[test]
fn the_policy_checks_clean() {
    let r = report(POLICY);
    assert!(r.is_clean(), "{r}");
}

#[test]
fn one_mistake_is_one_error() {
    for mistake in MISTAKES {
        let text = broken(POLICY, *mistake);
        let r = report(&text);
        assert_eq!(r.codes(), vec![Code::R0005], "{mistake:?}:\n{r}");
    }
}

#[test]
fn two_mistakes_in_one_block_are_two_errors() {
    // Every pair of mistakes in different properties of the same block.
    // A property missing its name (`adapter`, `jurisdiction`) takes the
    // next keyword as that name, so it is left out: the pair then reads
    // as one mistake (`adapter key`, then `env(…)` out of place).
    let blocks: [&[usize]; 4] = [
        &[1, 2, 4, 5, 6, 7, 8, 9],
        &[10, 11, 12, 13],
        &[14, 15, 16, 17, 18, 19, 21, 22],
        &[23],
    ];
    let mut pairs = 0;
    for block in blocks {
        for (i, a) in block.iter().enumerate() {
            for b in &block[i + 1..] {
                let (a, b) = (MISTAKES[*a], MISTAKES[*b]);
                let once = broken(POLICY, a);
                // Mistakes in the same text are not two mistakes.
                if !once.contains(b.0) || a.0.contains(b.0) {
                    continue;
                }
                let text = broken(&once, b);
                let r = report(&text);
                assert_eq!(r.codes(), vec![Code::R0005, Code::R0005], "{a:?} and {b:?}:\n{r}");
                // The same two errors as each mistake gives on its own.
                let mut got = messages(&r);
                let mut alone = [messages(&report(&once)), messages(&report(&broken(POLICY, b)))].concat();
                got.sort();
                alone.sort();
                assert_eq!(got, alone, "{a:?} and {b:?}");
                pairs += 1;
            }
        }
    }
    assert!(pairs > 40, "{pairs}");
}

#[test]
fn literal_errors_after_a_syntax_error_are_reported_too() {
    let text = broken(
        &broken(POLICY, ("quality low", "quality")),
        ("max_tokens 2000", "max_tokens 1.5"),
    );
    assert_eq!(report(&text).codes(), vec![Code::R0005, Code::R0009]);
}

#[test]
fn errors_outside_blocks_stop_recovery() {
    // A named route is one expression: its first error is its only one.
    let text = "route r = fallback [ p/m, ] on 404 retry many";
    assert_eq!(report(text).codes(), vec![Code::R0005]);
    // A broken header: nothing after it can be trusted.
    let text = "workload { task summarise; quality hihg }";
    assert_eq!(report(text).codes(), vec![Code::R0005]);
}

#[test]
fn recovery_is_bounded() {
    // Hundreds of broken properties in one block: at most 16 errors.
    let text = format!("workload w {{\n{}}}", "quality hgh\n".repeat(500));
    assert_eq!(report(&text).codes(), vec![Code::R0005; 16]);
    // A block over 256 KiB is reported at its first error only.
    let text = format!("workload w {{\n{}}}", "quality hgh\n".repeat(30_000));
    assert!(text.len() > 256 * 1024);
    let start = std::time::Instant::now();
    assert_eq!(report(&text).codes(), vec![Code::R0005]);
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}
