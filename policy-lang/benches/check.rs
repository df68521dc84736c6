//! Compiling a 10,000-line policy: parse, lower and every check, against a
//! baseline measured in the same run (one pass over the bytes counting
//! lines, the least any compiler must do), so the figure is also a ratio.
//!
//! Run with `cargo bench -p policy-lang --bench check`. The last case
//! measures the serialisation `Policy::new` hashes, part of `compile`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use policy_lang::SourceFile;

#[path = "support/generated_policy.rs"]
mod generated_policy;

/// A realistic policy of at least `lines` lines: providers with several
/// models each, named routes using every combinator, and workloads routing
/// through them (so every check has work to do).
fn policy(lines: usize) -> String {
    let mut out = String::new();
    let mut i = 0;
    while out.lines().count() < lines {
        generated_policy::block(&mut out, i);
        i += 1;
    }
    out
}

fn bench(c: &mut Criterion) {
    let text = policy(10_000);
    let file = SourceFile::new("bench.route", text.as_str());
    // The generated policy must be valid, or the benchmark measures errors.
    let compiled = policy_lang::compile(std::slice::from_ref(&file));
    assert!(compiled.is_ok(), "generated policy does not compile");
    let Ok(compiled) = compiled else { return };
    let policy = compiled.policy();

    let mut group = c.benchmark_group("policy_10k_lines");
    group.bench_function("baseline: count lines", |b| {
        b.iter(|| black_box(black_box(text.as_bytes()).iter().filter(|&&b| b == b'\n').count()))
    });
    group.bench_function("parse", |b| {
        b.iter(|| black_box(policy_lang::parse(std::slice::from_ref(&file))))
    });
    group.bench_function("parse + lower + all checks", |b| {
        b.iter(|| black_box(policy_lang::compile(std::slice::from_ref(&file))))
    });
    group.bench_function("format", |b| b.iter(|| black_box(policy_lang::format(&file))));
    // `router_core::Policy::new` (inside `compile`) hashes the policy's
    // serde_json serialisation: this is that serialisation alone, to see
    // its share of `compile`.
    group.bench_function("Policy::new's hash input: serde_json::to_vec(policy)", |b| {
        b.iter(|| black_box(serde_json::to_vec(black_box(policy))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
