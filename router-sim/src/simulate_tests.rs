use router_core::{DataClass, StateSnapshot, decide};

use super::*;
use crate::options::CheckPassRates;

fn compile(text: &str) -> Policy {
    match policy_lang::compile(&[policy_lang::SourceFile::new("test.route", text)]) {
        Ok(c) => c.into_policy(),
        Err(report) => panic!("{:?}", report.codes()),
    }
}

fn request(ts_ms: u64, workload: &str) -> TrafficRequest {
    TrafficRequest {
        ts_ms,
        workload: workload.to_owned(),
        input_tokens: 1_000,
        output_tokens: 500,
        user: Some("u1".to_owned()),
        ..TrafficRequest::default()
    }
}

const T0: u64 = 1_793_491_200_000;

/// `open` may only receive public data; `safe` anything.
const TWO_CLASSES: &str = r#"
    provider open { adapter mock; tier paid; data public
      model m { price $1/M in, $1/M out; simulate latency 100ms p95 200ms } }
    provider safe { adapter mock; tier paid; data private
      model m { price $5/M in, $5/M out; simulate latency 100ms p95 200ms } }
    workload notes { data public; route fallback [open/m, safe/m] }
"#;

#[test]
fn a_request_raising_its_class_is_routed_past_public_providers_and_checked_clean() {
    let policy = compile(TWO_CLASSES);
    let mut sim = Simulator::new(&policy, SimOptions::default()).unwrap();
    let public = sim.step(&request(T0, "notes"));
    let mut raised = request(T0 + 1_000, "notes");
    raised.data = Some(DataClass::Private);
    let private = sim.step(&raised);
    let label = |o: StepOutcome| o.first_target.map(|t| policy.target_label(t));
    assert_eq!(label(public).as_deref(), Some("open/m"));
    assert_eq!(label(private).as_deref(), Some("safe/m"));
    let report = sim.finish();
    assert_eq!(report.pii_violations, 0);
    assert_eq!(report.dispatches, 2);
    assert_eq!(report.workloads[0].raised_class, 1);
}

#[test]
fn the_independent_check_counts_a_plan_that_sends_private_data_to_a_public_provider() {
    // The engine never produces such a plan, so corrupt one on purpose: the
    // check must see what was dispatched, not what the engine explained.
    let policy = compile(TWO_CLASSES);
    let mut sim = Simulator::new(&policy, SimOptions::default()).unwrap();
    let wid = policy.workload_id("notes").unwrap();
    let open = policy.target_named("open", "m").unwrap();
    let mut req = request(T0, "notes");
    req.data = Some(DataClass::Private);
    let decision = decide(
        &policy,
        &router_core::Facts {
            data: req.data,
            ..router_core::Facts::new(wid)
        },
        &StateSnapshot::for_policy(&policy, T0),
    );
    let mut attempts = decision.plan().attempts().to_vec();
    assert_eq!(policy.target_label(attempts[0].target), "safe/m");
    // The engine's own plan: clean.
    let mut rng = SplitMix64::new("replay", 0, 0);
    sim.run_attempts(0, wid, &req, &attempts, T0, &mut rng);
    assert_eq!(sim.workloads[0].pii_violations, 0);
    // The corrupted plan: one violation, however the engine explained it.
    attempts[0].target = open;
    attempts[0].provider = policy.target(open).provider;
    sim.run_attempts(1, wid, &req, &attempts, T0 + 1_000, &mut rng);
    assert_eq!(sim.workloads[0].pii_violations, 1);
    assert_eq!(sim.finish().pii_violations, 1);
}

#[test]
fn a_429_cools_the_provider_down_and_later_requests_start_at_the_fallback() {
    let policy = compile(
        r#"
        provider flaky { adapter mock; tier paid; data public
          model m { price $1/M in, $1/M out; simulate latency 100ms p95 100ms, rate_limits 100% } }
        provider steady { adapter mock; tier paid; data public
          model m { price $2/M in, $2/M out; simulate latency 100ms p95 100ms } }
        workload qa { data public; route fallback [flaky/m, steady/m] on rate_limited }
    "#,
    );
    let mut sim = Simulator::new(&policy, SimOptions::default()).unwrap();
    // Ten requests, 100 ms apart, all inside the first 429's one-second cool-down.
    let firsts: Vec<String> = (0..10)
        .map(|i| {
            let o = sim.step(&request(T0 + i * 100, "qa"));
            assert!(o.served);
            policy.target_label(o.first_target.unwrap())
        })
        .collect();
    assert_eq!(firsts[0], "flaky/m");
    assert!(firsts[2..].iter().all(|t| t == "steady/m"), "{firsts:?}");
    let report = sim.finish();
    let flaky = report.targets.iter().find(|t| t.target == "flaky/m").unwrap();
    assert_eq!(flaky.rate_limited, flaky.dispatches);
    assert!(flaky.dispatches <= 2, "{flaky:?}");
    assert_eq!(report.workloads[0].fallbacks, flaky.dispatches);
}

#[test]
fn repeated_server_errors_eject_the_target_until_its_breaker_half_opens() {
    let policy = compile(
        r#"
        provider broken { adapter mock; tier paid; data public
          model m { price $1/M in, $1/M out; simulate latency 50ms p95 50ms, errors 100% } }
        provider steady { adapter mock; tier paid; data public
          model m { price $2/M in, $2/M out; simulate latency 50ms p95 50ms } }
        workload qa { data public; route fallback [broken/m, steady/m] }
    "#,
    );
    let mut sim = Simulator::new(&policy, SimOptions::default()).unwrap();
    // One request a second for 20 s: five failures eject `broken` for 10 s,
    // then one half-open probe fails and re-ejects it for 20 s.
    for i in 0..20 {
        assert!(sim.step(&request(T0 + i * 1_000, "qa")).served);
    }
    let report = sim.finish();
    let broken = report.targets.iter().find(|t| t.target == "broken/m").unwrap();
    assert_eq!(broken.errors, broken.dispatches);
    assert_eq!(broken.dispatches, 6, "{broken:?}");
    assert_eq!(report.failed, 0);
}

#[test]
fn a_failure_the_chain_does_not_advance_on_ends_the_call() {
    let policy = compile(
        r#"
        provider broken { adapter mock; tier paid; data public
          model m { price $1/M in, $1/M out; simulate latency 50ms p95 50ms, errors 100% } }
        provider steady { adapter mock; tier paid; data public
          model m { price $2/M in, $2/M out; simulate latency 50ms p95 50ms } }
        workload qa { data public; route fallback [broken/m, steady/m] on rate_limited }
    "#,
    );
    let mut sim = Simulator::new(&policy, SimOptions::default()).unwrap();
    let o = sim.step(&request(T0, "qa"));
    assert!(!o.served);
    assert_eq!(o.cost, Usd::ZERO, "failed attempts are not billed");
    assert_eq!(sim.finish().failed, 1);
}

#[test]
fn retries_wait_a_backoff_and_answers_failing_their_check_are_paid_for() {
    let policy = compile(
        r#"
        provider a { adapter mock; tier paid; data public
          model m { price $1/M in, $1/M out; simulate latency 100ms p95 100ms, errors 100% } }
        provider b { adapter mock; tier paid; data public
          model cheap { price $1/M in, $1/M out; simulate latency 100ms p95 100ms }
          model strong { price $10/M in, $10/M out; simulate latency 100ms p95 100ms } }
        workload retrying { data public; max_attempts 3; route fallback [a/m, b/cheap] retry 1 }
        workload gated { data public; route escalate [b/cheap, a/m] check json_valid }
    "#,
    );
    let mut sim = Simulator::new(&policy, SimOptions::default()).unwrap();
    let o = sim.step(&request(T0, "retrying"));
    assert!(o.served);
    let options = SimOptions {
        check_pass: CheckPassRates::uniform(0),
        ..SimOptions::default()
    };
    let mut gated = Simulator::new(&policy, options).unwrap();
    let g = gated.step(&request(T0, "gated"));
    assert!(!g.served, "every answer failed its check, and `a` always errors");
    // The cheap answer was billed although it failed the check: 1,500 tokens at $1/M.
    assert_eq!(g.cost, Usd::from_nanos(1_500_000));
    let report = sim.finish();
    let row = &report.workloads[0];
    assert_eq!(row.retries, 1);
    assert_eq!(row.fallbacks, 1);
    // Two failed attempts of ~100 ms, the runtime's first backoff (50–100 ms,
    // from the same attempt machine), the answer.
    let p50 = row.p50_ms.unwrap();
    assert!((330..=420).contains(&p50), "{p50}");
    assert_eq!(gated.finish().workloads[1].escalations, 1);
}

#[test]
fn the_workload_deadline_cuts_a_slow_call() {
    let policy = compile(
        r#"
        provider slow { adapter mock; tier paid; data public
          model m { price $1/M in, $1/M out; simulate latency 5s p95 5s } }
        workload qa { data public; latency 2s; route slow/m }
    "#,
    );
    let mut sim = Simulator::new(&policy, SimOptions::default()).unwrap();
    assert!(!sim.step(&request(T0, "qa")).served);
    let report = sim.finish();
    assert_eq!(report.targets[0].timeouts, 1);
    // Cut at the 2 s deadline (histograms hold two significant figures).
    let p95 = report.workloads[0].p95_ms.unwrap();
    assert!((1_980..=2_020).contains(&p95), "{p95}");
}

#[test]
fn unknown_workloads_and_reordered_lines_are_counted_not_fatal() {
    let policy = compile(TWO_CLASSES);
    let mut sim = Simulator::new(&policy, SimOptions::default()).unwrap();
    sim.step(&request(T0 + 5_000, "notes"));
    sim.step(&request(T0, "notes"));
    sim.step(&request(T0, "nope"));
    let report = sim.finish();
    assert_eq!((report.requests, report.unknown_workload, report.reordered), (3, 1, 2));
    assert_eq!(report.unknown_workloads.get("nope"), Some(&1));
}

#[test]
fn the_baseline_defaults_to_the_highest_output_price_and_can_be_named() {
    let policy = compile(TWO_CLASSES);
    let sim = Simulator::new(&policy, SimOptions::default()).unwrap();
    assert_eq!(sim.finish().baseline.target.as_deref(), Some("safe/m"));
    let named = SimOptions {
        baseline: Some("open/m".to_owned()),
        ..SimOptions::default()
    };
    let sim = Simulator::new(&policy, named).unwrap();
    assert_eq!(sim.finish().baseline.chosen_by, "--baseline");
    let wrong = SimOptions {
        baseline: Some("open/x".to_owned()),
        ..SimOptions::default()
    };
    let err = Simulator::new(&policy, wrong).unwrap_err();
    assert_eq!(
        err.to_string(),
        "baseline `open/x` is not a `provider/model` target of the policy"
    );
}

#[test]
fn a_provider_at_its_rpm_is_skipped_for_the_next_candidate_until_it_refills() {
    let policy = compile(
        r#"
        provider free { adapter mock; tier free; data public; limits rpm 2
          model m { price free; simulate latency 100ms p95 200ms } }
        provider paid { adapter mock; tier paid; data public
          model m { price $1/M in, $1/M out; simulate latency 100ms p95 200ms } }
        workload burst { data public; route free_first [free/m, paid/m] }
        "#,
    );
    let mut sim = Simulator::new(&policy, SimOptions::default()).unwrap();
    // Three calls in the same second: `rpm 2` lets two through to `free`;
    // the third is not sent there and goes to the next candidate.
    for i in 0..3 {
        assert!(sim.step(&request(T0 + i, "burst")).served);
    }
    // Half a minute later one request's worth has refilled.
    assert!(sim.step(&request(T0 + 30_000, "burst")).served);
    let report = sim.finish();
    let row = |label: &str| report.targets.iter().find(|t| t.target == label).unwrap();
    assert_eq!(row("free/m").skipped_limit, 1);
    assert_eq!(
        row("free/m").dispatches,
        3,
        "two of the burst and the one after the refill"
    );
    assert_eq!(
        row("paid/m").dispatches,
        1,
        "only the call that found `free` at its limit"
    );
}

/// `stream_breaks 50%` on the primary: with `stream_recovery buffer` a cut
/// falls back and the call is served; with `off` the caller already has
/// half an answer, so the call fails and nothing falls back.
#[test]
fn stream_breaks_fall_back_only_when_the_workload_buffers() {
    let text = |mode: &str| {
        format!(
            r#"
    provider flaky {{ adapter mock; tier paid; data public
      model m {{ price $1/M in, $1/M out; supports stream; simulate latency 100ms p95 200ms, stream_breaks 50% }} }}
    provider steady {{ adapter mock; tier paid; data public
      model m {{ price $1/M in, $1/M out; supports stream; simulate latency 100ms p95 200ms }} }}
    workload notes {{ data public; stream_recovery {mode}; route fallback [flaky/m, steady/m] }}
"#
        )
    };
    let run = |mode: &str, stream: bool| {
        let policy = compile(&text(mode));
        let mut sim = Simulator::new(&policy, SimOptions::default()).unwrap();
        let mut served = 0;
        for i in 0..200u64 {
            let mut req = request(T0 + i * 60_000, "notes");
            req.stream = stream;
            if sim.step(&req).served {
                served += 1;
            }
        }
        served
    };
    assert_eq!(run("buffer", true), 200, "every cut falls back");
    let off = run("off", true);
    assert!(
        (60..140).contains(&off),
        "about half are cut and lost: {off} of 200 served"
    );
    assert_eq!(run("off", false), 200, "whole answers are never cut");
    // `continue` needs a model that accepts a prefill: without one, as `off`.
    let off_like = run("continue", true);
    assert!((60..140).contains(&off_like), "{off_like} of 200 served");
}

/// `continue` with a fallback that accepts a prefill: every cut is
/// continued there.
#[test]
fn continue_rescues_cut_streams_at_a_target_that_accepts_a_prefill() {
    let policy = compile(
        r#"
    provider flaky { adapter mock; tier paid; data public
      model m { price $1/M in, $1/M out; supports stream; simulate latency 100ms p95 200ms, stream_breaks 50% } }
    provider steady { adapter mock; tier paid; data public
      model m { price $1/M in, $1/M out; supports stream, prefill; simulate latency 100ms p95 200ms } }
    workload notes { data public; stream_recovery continue; route fallback [flaky/m, steady/m] }
"#,
    );
    let mut sim = Simulator::new(&policy, SimOptions::default()).unwrap();
    let mut served = 0;
    let mut continued = 0;
    for i in 0..200u64 {
        let mut req = request(T0 + i * 60_000, "notes");
        req.stream = true;
        let out = sim.step(&req);
        if out.served {
            served += 1;
        }
        if out.dispatched == 2 {
            continued += 1;
        }
    }
    assert_eq!(served, 200);
    assert!((60..140).contains(&continued), "{continued} of 200 continued");
}
