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

use std::fmt::Write as _;
use std::time::Instant;

use policy_lang::SourceFile;

/// About `bytes` of the policy `benches/check.rs` generates, numbering
/// from `start`; returns the next number.
fn part(start: usize, bytes: usize) -> (String, usize) {
    let mut out = String::new();
    let mut i = start;
    while out.len() < bytes {
        let tier = ["free", "subscription", "paid"][i % 3];
        let data = ["public", "internal", "private"][i % 3];
        let _ = write!(
            out,
            "# Provider {i}.\nprovider p{i} {{\n  adapter openai_compatible\n  base_url \"https://llm{i}.example.com/v1\"\n  key env(\"P{i}_API_KEY\")\n  tier {tier}\n  jurisdiction us\n  data {data}\n  limits rpm 500, tpm 2M\n\n"
        );
        for m in 0..3 {
            let _ = write!(
                out,
                "  model m{m} {{\n    price ${m}.25/M in, ${m}.75/M out\n    context 128k\n    max_output 16k\n    supports tools, json_schema, stream\n  }}\n"
            );
        }
        out.push_str("}\n\n");
        let j = i.saturating_sub(1);
        let _ = write!(
            out,
            "route r{i} = free_first [\n  p{i}/m0\n  p{j}/m1\n] on 429, 503, timeout(10s)\n\nroute s{i} = split by user {{\n  70: r{i}\n  30: select cheapest [\n    p{i}/m1\n    p{j}/m2\n  ]\n}}\n\n"
        );
        let _ = write!(
            out,
            "workload w{i} {{\n  task chat\n  quality medium\n  data public\n  max_tokens 4000\n  budget $20/day, 5M tokens/day alert 80%\n  route match {{\n    when input_tokens > 32000 => p{i}/m2\n    when has tools and not has images => s{i}\n    else => r{i}\n  }}\n}}\n\n"
        );
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
