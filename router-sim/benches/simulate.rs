//! Replay throughput: one million seed-mix requests through
//! `examples/policies/task-classes.route`, against just reading and parsing
//! the same JSON lines, in the same run.
//!
//! Not criterion: one replay of a million requests takes seconds, and the
//! figure that matters (requests per second over a realistic day of
//! traffic, health and budget state included) is a single long run. Each
//! phase runs three times; the best run is reported.
//!
//! ```sh
//! CARGO_TARGET_DIR=target-sim cargo bench -p router-sim --bench simulate
//! SIM_BENCH_REQUESTS=200000 CARGO_TARGET_DIR=target-sim cargo bench -p router-sim --bench simulate
//! ```

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a bench binary reports its figures and may stop on a broken setup"
)]

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use router_sim::{DEFAULT_START_MS, Mix, SimOptions, TrafficReader, generate, simulate};

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best: Option<(Duration, T)> = None;
    for _ in 0..runs {
        let start = Instant::now();
        let out = f();
        let took = start.elapsed();
        if best.as_ref().is_none_or(|(b, _)| took < *b) {
            best = Some((took, out));
        }
    }
    best.unwrap()
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let requests: u64 = std::env::var("SIM_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let policy = policy_lang::compile_path(root.join("examples/policies/task-classes.route"))
        .expect("the example policy compiles")
        .into_policy();

    let start = Instant::now();
    let mut traffic = Vec::with_capacity(requests as usize * 140);
    generate(Mix::SeedMix, requests, 7, DEFAULT_START_MS, &mut traffic).unwrap();
    let generated = start.elapsed();
    println!(
        "generated {requests} seed-mix lines ({:.1} MB) in {:.2} s",
        traffic.len() as f64 / 1e6,
        generated.as_secs_f64()
    );

    let (parse, parsed) = best_of(3, || {
        TrafficReader::new(traffic.as_slice())
            .map(|r| black_box(r.unwrap()).input_tokens)
            .sum::<u64>()
    });
    black_box(parsed);
    let (replay, report) = best_of(3, || {
        let options = SimOptions {
            seed: 7,
            ..SimOptions::default()
        };
        simulate(&policy, traffic.as_slice(), options, &mut |_| {}).unwrap()
    });
    assert_eq!(report.requests, requests);
    assert_eq!(report.pii_violations, 0);

    let per = |d: Duration| d.as_nanos() as f64 / requests as f64;
    let rate = |d: Duration| requests as f64 / d.as_secs_f64();
    println!();
    println!("| phase | total | per request | requests/s | vs parse |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| baseline: read + parse the JSON lines | {:.2} s | {:.2} µs | {:.0} | 1.0× |",
        parse.as_secs_f64(),
        per(parse) / 1e3,
        rate(parse)
    );
    println!(
        "| replay (parse + decide + walk + books) | {:.2} s | {:.2} µs | {:.0} | {:.1}× |",
        replay.as_secs_f64(),
        per(replay) / 1e3,
        rate(replay),
        per(replay) / per(parse)
    );
    println!();
    println!(
        "replay: served {}, dispatches {}, savings {:.1} %, pii_violations {}",
        report.served,
        report.dispatches,
        report.savings_ratio * 100.0,
        report.pii_violations
    );
}
