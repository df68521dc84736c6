//! Where `routec check`'s time and memory go on a 10 MiB policy split over
//! three files (the size issue 13 measured): each step timed once per round,
//! with the process's peak resident memory after it. A measurement for
//! `docs/performance.md`, not a benchmark: run it on a quiet machine with
//!
//! ```sh
//! cargo run --release -p policy-lang --example check_large
//! ```
#![expect(
    clippy::print_stdout,
    clippy::unwrap_used,
    reason = "a measurement printed for a person"
)]

use std::time::Instant;

use policy_lang::SourceFile;

#[path = "../benches/support/generated_policy.rs"]
mod generated_policy;

/// About `bytes` of the policy `benches/check.rs` generates, numbering
/// from `start`; returns the next number.
fn part(start: usize, bytes: usize) -> (String, usize) {
    let mut out = String::new();
    let mut i = start;
    while out.len() < bytes {
        generated_policy::block(&mut out, i);
        i += 1;
    }
    (out, i)
}

/// Peak and current resident memory, from `/proc/self/status` (Linux).
fn hwm() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let per = 10 * 1024 * 1024 / 3;
    let (a, n) = part(0, per);
    let (b, n) = part(n, per);
    let (c, _) = part(n, per);
    let total = a.len() + b.len() + c.len();
    let files = vec![
        SourceFile::new("a.route", a),
        SourceFile::new("b.route", b),
        SourceFile::new("c.route", c),
    ];
    println!("bytes {total}; {}", hwm());
    for _ in 0..2 {
        let t = Instant::now();
        let ast = policy_lang::parse(&files).unwrap();
        let parse = t.elapsed();
        println!("parse {parse:?}; {}", hwm());
        let t = Instant::now();
        let report = policy_lang::check(&ast);
        println!(
            "lower+checks {:?} ({} diagnostics); {}",
            t.elapsed(),
            report.codes().len(),
            hwm()
        );
        let t = Instant::now();
        let compiled = policy_lang::compile(&files).unwrap();
        println!("compile {:?}; {}", t.elapsed(), hwm());
        let t = Instant::now();
        let json = serde_json::to_vec(compiled.policy()).unwrap();
        println!("serde_json of policy {:?} {} bytes", t.elapsed(), json.len());
        drop(ast);
    }
}
