//! Times `routec test`'s work on 10,000 tests of the seed policy: compile
//! (parse, check, lower the tests) and run them, as the CLI does.
//!
//! `cargo run --release -p policy-tests --example many_tests`

#![allow(clippy::print_stdout, clippy::unwrap_used, reason = "a measurement tool")]

use std::time::Instant;

use policy_lang::SourceFile;
use policy_tests::{Mode, run_all};

fn main() {
    let seed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/policies/seed.route")).unwrap();
    let mut tests = String::new();
    for i in 0..10_000 {
        tests.push_str(&format!(
            "test \"t{i}\" {{\n  workload content_summary\n  request user \"u{i}\", input_tokens {i}\n  expect never xai\n}}\n\n"
        ));
    }
    let files = [
        SourceFile::new("seed.route", seed),
        SourceFile::new("tests/seed.route", tests),
    ];
    let started = Instant::now();
    let compiled = policy_lang::compile(&files).unwrap();
    let compiled_at = started.elapsed();
    let results = run_all(compiled.policy(), compiled.tests(), None, Mode::default());
    let total = started.elapsed();
    let text = policy_tests::render_human(
        &[policy_tests::FileRun {
            test_file: "tests/seed.route".into(),
            policy: "seed.route".into(),
            results,
            coverage: None,
        }],
        false,
    );
    println!(
        "10,000 tests: compile {:?}, run {:?}, render {:?} ({} bytes)",
        compiled_at,
        total - compiled_at,
        started.elapsed() - total,
        text.len()
    );
}
