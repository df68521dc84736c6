//! The differential test of the attempt machine: the same provider
//! outcomes, generated as property cases, run through the real `Router`
//! (scripted simulated providers, tokio's paused clock) and through the
//! simulator (the same script, a virtual clock). Both drive
//! `router_state::CallMachine`, so they must agree on every call: whether
//! it was served, how many upstream calls it made, how long it took
//! (latencies, Retry-After waits and timeouts) and what it cost.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use providers::{ChatRequest, ErrorClass, SimOutcome, SimProfile, SimResult, SimScript, SimulatedProvider};
use router_core::Usd;
use router_runtime::{AttemptError, Call, RouteError, Router, TokioClock};
use router_sim::{SimOptions, Simulator, TrafficReader};
use router_state::FailureRules;

/// Three paid targets in a chain that advances on every transient failure
/// and retries twice; prices only on output, so a call's cost is a
/// function of the scripted answer alone.
const POLICY: &str = r#"
provider a { adapter mock; tier paid; data public
  model m { price $0/M in, $2/M out; max_output 4k } }
provider b { adapter mock; tier paid; data public
  model m { price $0/M in, $3/M out; max_output 4k } }
provider c { adapter mock; tier paid; data public
  model m { price $0/M in, $5/M out; max_output 4k } }
workload w {
  data public
  max_tokens 200
  latency 90s
  route fallback [a/m, b/m, c/m] on rate_limited, overloaded, server_error, timeout(10s), connection_error retry 2
}
"#;

/// One upstream call's behaviour.
#[derive(Clone, Copy, Debug)]
enum Step {
    Answer { latency_ms: u64, tokens: u64 },
    RateLimited { after_ms: Option<u64> },
    Overloaded { after_ms: Option<u64> },
    ServerError,
    Reset,
    Silent,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1u64..3_000, 1u64..400).prop_map(|(latency_ms, tokens)| Step::Answer { latency_ms, tokens }),
        proptest::option::of(prop_oneof![Just(500u64), Just(2_000), Just(30_000)])
            .prop_map(|after_ms| Step::RateLimited { after_ms }),
        proptest::option::of(Just(1_000u64)).prop_map(|after_ms| Step::Overloaded { after_ms }),
        Just(Step::ServerError),
        Just(Step::Reset),
        Just(Step::Silent),
    ]
}

fn outcome(s: Step) -> SimOutcome {
    let err = |class, retry_after: Option<u64>| SimResult::Err {
        class,
        retry_after: retry_after.map(Duration::from_millis),
    };
    let (latency_ms, result) = match s {
        Step::Answer { latency_ms, tokens } => (latency_ms, SimResult::Ok { output_tokens: tokens }),
        Step::RateLimited { after_ms } => (40, err(ErrorClass::RateLimited, after_ms)),
        Step::Overloaded { after_ms } => (60, err(ErrorClass::Overloaded, after_ms)),
        Step::ServerError => (80, err(ErrorClass::ServerError, None)),
        Step::Reset => (5, err(ErrorClass::Connection, None)),
        // Past the chain's 10 s attempt timeout.
        Step::Silent => (25_000, SimResult::Ok { output_tokens: 1 }),
    };
    SimOutcome {
        latency: Duration::from_millis(latency_ms),
        result,
    }
}

/// What a driver made of one call.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    served: bool,
    dispatched: u32,
    elapsed: Duration,
    cost: Usd,
}

/// No jitter, so the two drivers' waits compare exactly (their seeds differ).
fn rules() -> FailureRules {
    FailureRules {
        backoff_base: Duration::ZERO,
        backoff_max: Duration::ZERO,
        ..FailureRules::default()
    }
}

fn policy() -> Arc<router_core::Policy> {
    Arc::new(
        policy_lang::compile(&[policy_lang::SourceFile::new("diff.route", POLICY)])
            .unwrap()
            .into_policy(),
    )
}

fn through_router(steps: &[Step]) -> Observed {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let script = Arc::new(SimScript::new(steps.iter().copied().map(outcome)));
        let mut builder = Router::builder(policy())
            .clock(Arc::new(TokioClock::new()))
            .backoff(Duration::ZERO, Duration::ZERO);
        for name in ["a", "b", "c"] {
            let p = SimulatedProvider::new(name, SimProfile::instant()).scripted(Arc::clone(&script));
            builder = builder.provider(name, Arc::new(p));
        }
        let router = builder.build().unwrap();
        let started = tokio::time::Instant::now();
        let result = router.complete(Call::new("w", ChatRequest::user("hi"))).await;
        let elapsed = started.elapsed();
        match result {
            Ok(routed) => {
                let price = match routed.target.as_str() {
                    "a/m" => 2,
                    "b/m" => 3,
                    "c/m" => 5,
                    other => panic!("answered by an unknown target {other}"),
                };
                Observed {
                    served: true,
                    dispatched: routed.attempts,
                    elapsed,
                    cost: Usd::from_nanos(routed.value.usage.output_tokens * price * 1_000),
                }
            }
            Err(e) => {
                let records = match &e {
                    RouteError::FallbackExhausted(x) => x.attempts().to_vec(),
                    RouteError::DeadlineExceeded(x) => x.attempts().to_vec(),
                    other => panic!("unexpected failure: {other}"),
                };
                let dispatched = records
                    .iter()
                    .filter(|r| matches!(r.error(), Some(AttemptError::Upstream(_) | AttemptError::TimedOut(_))))
                    .count() as u32;
                Observed {
                    served: false,
                    dispatched,
                    elapsed,
                    cost: Usd::ZERO,
                }
            }
        }
    })
}

fn through_simulator(steps: &[Step]) -> Observed {
    let policy = policy();
    let script = Arc::new(SimScript::new(steps.iter().copied().map(outcome)));
    let mut sim = Simulator::new(&policy, SimOptions::default())
        .unwrap()
        .failure_rules(rules())
        .scripted(script);
    let line = r#"{"ts":"2026-11-01T09:00:00Z","workload":"w","input_tokens":10,"output_tokens":200}"#;
    let mut reader = TrafficReader::new(line.as_bytes());
    let req = reader.next_request().unwrap().unwrap();
    let o = sim.step(&req);
    Observed {
        served: o.served,
        dispatched: o.dispatched,
        elapsed: o.elapsed,
        cost: o.cost,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn the_router_and_the_simulator_run_the_same_attempts(steps in proptest::collection::vec(step(), 1..10)) {
        let router = through_router(&steps);
        let sim = through_simulator(&steps);
        prop_assert_eq!(&router, &sim, "script: {:?}", steps);
    }
}

/// Hand-picked scripts whose outcome the failure rules fix, checked on
/// both drivers.
#[test]
fn known_scripts_end_as_the_rules_say() {
    use Step::*;
    let cases: [(&[Step], bool, u32, u64); 4] = [
        // A short Retry-After is waited out on the same target.
        (
            &[
                RateLimited { after_ms: Some(2_000) },
                Answer {
                    latency_ms: 100,
                    tokens: 10,
                },
            ],
            true,
            2,
            40 + 2_000 + 100,
        ),
        // A long one moves on at once.
        (
            &[
                RateLimited { after_ms: Some(30_000) },
                Answer {
                    latency_ms: 100,
                    tokens: 10,
                },
            ],
            true,
            2,
            140,
        ),
        // A silent upstream is not retried: one timeout, then the fallback.
        (
            &[
                Silent,
                Answer {
                    latency_ms: 100,
                    tokens: 10,
                },
            ],
            true,
            2,
            10_100,
        ),
        // A 5xx is retried on the same target.
        (
            &[
                ServerError,
                ServerError,
                Answer {
                    latency_ms: 100,
                    tokens: 10,
                },
            ],
            true,
            3,
            260,
        ),
    ];
    for (steps, served, dispatched, ms) in cases {
        for observed in [through_router(steps), through_simulator(steps)] {
            assert_eq!(
                (observed.served, observed.dispatched, observed.elapsed),
                (served, dispatched, Duration::from_millis(ms)),
                "{steps:?}"
            );
        }
    }
}
