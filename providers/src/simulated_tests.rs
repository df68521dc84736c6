use futures::StreamExt;

use super::*;

fn profile() -> SimProfile {
    SimProfile {
        error_bp: 200,
        rate_limit_bp: 500,
        ..SimProfile::with_latency(Duration::from_millis(400), Duration::from_millis(1200))
    }
}

#[test]
fn same_seed_same_outcomes_and_other_seeds_differ() {
    let p = profile();
    let a: Vec<_> = (0..100).map(|i| p.sample(7, i, 500, 1000)).collect();
    let b: Vec<_> = (0..100).map(|i| p.sample(7, i, 500, 1000)).collect();
    let c: Vec<_> = (0..100).map(|i| p.sample(8, i, 500, 1000)).collect();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn known_values_do_not_drift() {
    // Pins the generator: a change here changes every replayed simulation.
    let out = profile().sample(42, 0, 1000, 4096);
    let again = profile().sample(42, 0, 1000, 4096);
    assert_eq!(out, again);
    assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
}

#[test]
fn rates_and_percentiles_are_within_tolerance() {
    let p = profile();
    let n = 20_000u64;
    let mut rate_limited = 0u64;
    let mut errors = 0u64;
    let mut latencies = Vec::with_capacity(n as usize);
    for i in 0..n {
        let o = p.sample(1, i, 300, 1000);
        latencies.push(o.latency);
        match o.result {
            SimResult::Err {
                class: ErrorClass::RateLimited,
                retry_after,
            } => {
                assert_eq!(retry_after, Some(p.retry_after));
                rate_limited += 1;
            }
            SimResult::Err { .. } => errors += 1,
            SimResult::Ok { output_tokens } => assert!((1..=1000).contains(&output_tokens)),
        }
    }
    // 5 % and 2 % of 20 000: ±20 % relative is > 5 standard deviations.
    assert!((800..=1200).contains(&rate_limited), "{rate_limited}");
    assert!((320..=480).contains(&errors), "{errors}");
    latencies.sort();
    let p50 = latencies[(n / 2) as usize].as_secs_f64();
    let p95 = latencies[(n * 95 / 100) as usize].as_secs_f64();
    assert!((0.37..=0.43).contains(&p50), "p50 {p50}");
    assert!((1.08..=1.32).contains(&p95), "p95 {p95}");
}

#[test]
fn output_tokens_follow_the_input_and_respect_the_cap() {
    let p = SimProfile::instant();
    let small: u64 = (0..200).map(|i| ok_tokens(p.sample(3, i, 100, 10_000))).sum();
    let large: u64 = (0..200).map(|i| ok_tokens(p.sample(3, i, 1_000, 10_000))).sum();
    assert!(large > small * 5);
    assert!((0..200).all(|i| ok_tokens(p.sample(3, i, 1_000_000, 64)) <= 64));
}

fn ok_tokens(o: SimOutcome) -> u64 {
    match o.result {
        SimResult::Ok { output_tokens } => output_tokens,
        SimResult::Err { .. } => 0,
    }
}

#[tokio::test(start_paused = true)]
async fn the_provider_sleeps_the_sampled_latency_on_a_paused_clock() {
    let p = SimProfile::with_latency(Duration::from_millis(400), Duration::from_millis(800));
    let expected = p.sample(5, 0, estimate_tokens("hello there"), 1024).latency;
    let provider = SimulatedProvider::new("sim", p).with_seed(5);
    let start = tokio::time::Instant::now();
    let resp = provider.complete("m", &ChatRequest::user("hello there")).await.unwrap();
    // Tokio's timer rounds up to whole milliseconds.
    let elapsed = start.elapsed();
    assert!(
        elapsed >= expected && elapsed < expected + Duration::from_millis(1),
        "{elapsed:?} vs {expected:?}"
    );
    assert_eq!(resp.usage.input_tokens, estimate_tokens("hello there"));
    assert_eq!(provider.calls(), 1);
}

#[tokio::test]
async fn stream_and_complete_agree() {
    let a = SimulatedProvider::new("sim", SimProfile::instant()).with_seed(9);
    let b = SimulatedProvider::new("sim", SimProfile::instant()).with_seed(9);
    let req = ChatRequest::user("tell me a long story about routers and budgets");
    let whole = a.complete("m", &req).await.unwrap();
    let streamed = crate::collect_stream(b.stream("m", &req).await.unwrap(), "m")
        .await
        .unwrap();
    assert_eq!(whole.content, streamed.content);
    assert_eq!(whole.usage, streamed.usage);
}

#[tokio::test]
async fn failures_carry_class_status_and_retry_after() {
    let p = SimProfile {
        rate_limit_bp: 10_000,
        ..SimProfile::instant()
    };
    let err = SimulatedProvider::new("sim", p)
        .complete("m", &ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::RateLimited);
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
}

#[tokio::test]
async fn a_stream_break_cuts_the_answer_after_its_first_event() {
    let p = SimProfile {
        stream_break_bp: 10_000,
        ..SimProfile::instant()
    };
    let req = ChatRequest::user("tell me a long story about routers and budgets and fallbacks");
    let mut s = SimulatedProvider::new("sim", p)
        .with_seed(3)
        .stream("m", &req)
        .await
        .unwrap();
    let mut texts = 0;
    let mut ended = None;
    while let Some(item) = s.next().await {
        match item {
            Ok(StreamEvent::TextDelta { .. }) => texts += 1,
            Ok(StreamEvent::Done { .. }) => ended = Some("done"),
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.class(), ErrorClass::Connection);
                ended = Some("cut");
            }
        }
    }
    assert!(texts >= 1, "some text before the cut");
    assert_eq!(ended, Some("cut"));
    // Whole answers are never cut, and a profile without breaks never breaks.
    assert!((0..1000).all(|i| !SimProfile::instant().stream_breaks(3, i)));
    let half = SimProfile {
        stream_break_bp: 5_000,
        ..SimProfile::instant()
    };
    let cut = (0..1000).filter(|i| half.stream_breaks(3, *i)).count();
    assert!((400..600).contains(&cut), "{cut} of 1000 at 50%");
}
