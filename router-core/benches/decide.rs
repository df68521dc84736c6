//! How long one routing decision takes, against the cost of a plain
//! `HashMap` lookup of the workload measured in the same run.
//!
//! Criterion reports means with confidence intervals; a tail figure needs
//! the distribution, so after criterion this binary times 100 000 single
//! decisions per case with `Instant` and prints p50/p99/p99.9 (each sample
//! includes one `Instant::now()` pair, ~20–40 ns, so the tail is slightly
//! pessimistic). It also counts heap allocations per decision with a counting
//! global allocator. Run:
//!
//! ```sh
//! CARGO_TARGET_DIR=target-engine cargo bench -p router-core --bench decide
//! ```
//!
//! For a figure that does not move with machine load, count instructions:
//! `DECIDE_TAILS_ONLY=1 DECIDE_CASE=seed/content valgrind --tool=callgrind
//! --toggle-collect='*decide_into*' target-engine/release/deps/decide-* --bench`
//! collects only inside `decide_into` for one case; divide the total by the
//! 120 065 calls `tails` makes per case (1 + 64 warm-up + 100 000 timed +
//! 10 000 reused + 10 000 fresh).

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a bench binary reports its figures and may stop on a broken setup"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::alloc::System;
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;
use router_core::{Decider, Decision, Facts, Policy, RequestFacts, StateSnapshot, WorkloadId};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// One benchmarked situation: a policy and the calls made against it.
struct Case {
    name: &'static str,
    policy: Policy,
    /// Workload names the calls cycle through.
    workloads: Vec<String>,
    /// Request facts the calls cycle through (users, sizes, features).
    facts: Vec<RequestFacts>,
    state: StateSnapshot,
}

fn facts_mix() -> Vec<RequestFacts> {
    (0..64u64)
        .map(|i| RequestFacts {
            user: Some(format!("user-{i}")),
            input_tokens: 200 + i * 300,
            tools: i % 3 == 0,
            request_seed: i.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            ..RequestFacts::default()
        })
        .collect()
}

fn cases() -> Vec<Case> {
    let seed = common::seed_policy();
    let seed_state = StateSnapshot::for_policy(&seed, 0);
    let generated = common::generated_policy(50);
    // A busy runtime: some targets measured, one ejected, one provider cooling.
    let mut gen_state = StateSnapshot::for_policy(&generated, 10_000);
    for t in 0..generated.targets.len() {
        gen_state.target_mut(router_core::TargetId(t as u32)).p95_ms = Some(300 + 37 * t as u32);
    }
    gen_state.target_mut(router_core::TargetId(4)).ejected_until_ms = Some(20_000);
    gen_state.provider_mut(router_core::ProviderId(2)).cooling_until_ms = Some(15_000);
    let gen_names = generated.workloads.iter().map(|w| w.name.clone()).collect();
    vec![
        Case {
            name: "seed/content_summary",
            workloads: vec!["content_summary".into()],
            facts: facts_mix(),
            state: seed_state.clone(),
            policy: seed.clone(),
        },
        Case {
            name: "seed/audit_report",
            workloads: vec!["audit_report".into()],
            facts: facts_mix(),
            state: seed_state,
            policy: seed,
        },
        Case {
            name: "generated50/all_workloads",
            workloads: gen_names,
            facts: facts_mix(),
            state: gen_state,
            policy: generated,
        },
    ]
}

/// The baseline: what the caller pays anyway to find the workload by name.
fn name_index(policy: &Policy) -> HashMap<String, WorkloadId> {
    policy
        .workload_ids()
        .map(|id| (policy.workload(id).name.clone(), id))
        .collect()
}

fn bench(c: &mut Criterion, cases: &[Case]) {
    let mut group = c.benchmark_group("decide");
    for case in cases {
        let index = name_index(&case.policy);
        let ids: Vec<WorkloadId> = case.workloads.iter().map(|n| index[n]).collect();
        let mut i = 0usize;
        group.bench_function(format!("{}/hashmap_lookup_baseline", case.name), |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                black_box(index.get(black_box(case.workloads[i % case.workloads.len()].as_str())))
            });
        });
        let mut decider = Decider::new(&case.policy);
        let mut out = decider.decide(&Facts::new(ids[0]), &case.state);
        group.bench_function(format!("{}/decide_into", case.name), |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                let f = case.facts[i % case.facts.len()].facts(ids[i % ids.len()]);
                decider.decide_into(black_box(&f), &case.state, &mut out);
                black_box(out.plan().len())
            });
        });
        group.bench_function(format!("{}/decide_fresh", case.name), |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                let f = case.facts[i % case.facts.len()].facts(ids[i % ids.len()]);
                black_box(router_core::decide(&case.policy, black_box(&f), &case.state))
            });
        });
    }
    group.finish();
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// p50/p99/p99.9 of single timed decisions, and allocations per decision.
fn tails(cases: &[Case]) {
    const CALLS: usize = 100_000;
    println!("\nsingle-call latency over {CALLS} calls (ns; includes one Instant::now() pair):");
    println!(
        "{:<28} {:>8} {:>8} {:>8} {:>8}   {:>10} {:>10}",
        "case", "p50", "p99", "p99.9", "max", "allocs/dec", "fresh/dec"
    );
    for case in cases {
        let index = name_index(&case.policy);
        let ids: Vec<WorkloadId> = case.workloads.iter().map(|n| index[n]).collect();
        let facts: Vec<Facts<'_>> = (0..case.facts.len())
            .map(|i| case.facts[i].facts(ids[i % ids.len()]))
            .collect();
        let mut decider = Decider::new(&case.policy);
        let mut out: Decision = decider.decide(&facts[0], &case.state);
        // Warm up: every buffer reaches the size the mix needs.
        for f in &facts {
            decider.decide_into(f, &case.state, &mut out);
        }
        let mut samples = Vec::with_capacity(CALLS);
        for i in 0..CALLS {
            let f = &facts[i % facts.len()];
            let start = Instant::now();
            decider.decide_into(black_box(f), &case.state, &mut out);
            black_box(out.plan().len());
            samples.push(start.elapsed().as_nanos() as u64);
        }
        samples.sort_unstable();
        let region = Region::new(GLOBAL);
        for f in facts.iter().cycle().take(10_000) {
            decider.decide_into(black_box(f), &case.state, &mut out);
        }
        let reused = region.change().allocations as f64 / 10_000.0;
        let region = Region::new(GLOBAL);
        for f in facts.iter().cycle().take(10_000) {
            black_box(decider.decide(black_box(f), &case.state));
        }
        let fresh = region.change().allocations as f64 / 10_000.0;
        println!(
            "{:<28} {:>8} {:>8} {:>8} {:>8}   {:>10.2} {:>10.2}",
            case.name,
            percentile(&samples, 0.50),
            percentile(&samples, 0.99),
            percentile(&samples, 0.999),
            samples[samples.len() - 1],
            reused,
            fresh
        );
    }
}

fn main() {
    let mut cases = cases();
    if let Some(only) = std::env::var_os("DECIDE_CASE") {
        cases.retain(|c| c.name.contains(only.to_string_lossy().as_ref()));
    }
    // `DECIDE_TAILS_ONLY=1` skips criterion: for running the tail and
    // allocation figures alone, e.g. under `valgrind --tool=callgrind`.
    if std::env::var_os("DECIDE_TAILS_ONLY").is_none() {
        let mut c = Criterion::default().configure_from_args();
        bench(&mut c, &cases);
        c.final_summary();
    }
    // Only under `cargo bench`, not when tests build and smoke-run benches.
    if std::env::args().any(|a| a == "--bench") {
        tails(&cases);
    }
}
