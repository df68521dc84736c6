//! The hot path allocates nothing beyond the plan itself: once a `Decider`
//! and a `Decision` have warmed up, `decide_into` makes no heap allocation,
//! and a fresh `decide` makes only the decision's own vectors.
//!
//! One test in its own binary, because the counting allocator sees every
//! thread and the harness runs tests in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::alloc::System;

use router_core::{Decider, Facts, RequestFacts, StateSnapshot};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn deciding_allocates_nothing_once_warm() {
    let policies = [common::seed_policy(), common::generated_policy(50)];
    let facts: Vec<RequestFacts> = (0..32u64)
        .map(|i| RequestFacts {
            user: (i % 5 != 0).then(|| format!("user-{i}")),
            input_tokens: i * 500,
            tools: i % 4 == 0,
            metadata: [("team".to_owned(), format!("t{}", i % 3))].into(),
            request_seed: i,
            ..RequestFacts::default()
        })
        .collect();
    for policy in &policies {
        let mut state = StateSnapshot::for_policy(policy, 5_000);
        state.target_mut(router_core::TargetId(1)).ejected_until_ms = Some(9_000);
        state.provider_mut(router_core::ProviderId(0)).cooling_until_ms = Some(6_000);
        state.provider_mut(router_core::ProviderId(1)).unavailable = true;
        let calls: Vec<Facts<'_>> = policy
            .workload_ids()
            .flat_map(|w| facts.iter().map(move |f| f.facts(w)))
            .collect();
        let mut decider = Decider::new(policy);
        let mut out = decider.decide(&calls[0], &state);
        for f in &calls {
            decider.decide_into(f, &state, &mut out);
        }

        let region = Region::new(GLOBAL);
        for f in &calls {
            decider.decide_into(f, &state, &mut out);
        }
        let stats = region.change();
        assert_eq!(
            (stats.allocations, stats.reallocations),
            (0, 0),
            "decide_into allocated over {} warm calls",
            calls.len()
        );

        // A fresh decision allocates its own vectors (plan, candidates,
        // steps) and nothing else, each once at the size the decider learnt.
        let region = Region::new(GLOBAL);
        for f in &calls {
            std::hint::black_box(decider.decide(f, &state));
        }
        let per_call = region.change().allocations as f64 / calls.len() as f64;
        assert!(per_call <= 3.0, "decide made {per_call:.1} allocations per call");
    }
}
