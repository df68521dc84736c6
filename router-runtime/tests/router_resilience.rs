//! Fallback, retries, breakers, deadlines and cancellation against real
//! HTTP fakes on 127.0.0.1. Timeouts are short real ones (the paused clock
//! does not mix with sockets); nothing waits by sleeping and no test
//! asserts on elapsed time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use fake_upstream::{Behaviour, FakeUpstream, Flavor};
use router_core::{Reason, Verdict};
use router_runtime::{AttemptError, HealthConfig, ManualClock, Millis, RetryBudget, RouteError};
use support::{Entered, ask, openai, openai_adapter, router};
use tokio::sync::Notify;

async fn fake() -> FakeUpstream {
    FakeUpstream::start(Flavor::OpenAi).await.unwrap()
}

fn two(a: &FakeUpstream, b: &FakeUpstream, workload: &str) -> String {
    format!("{}{}{workload}", openai("a", a, ""), openai("b", b, ""))
}

#[tokio::test]
async fn a_429_cools_its_provider_down_and_the_next_candidate_answers_at_once() {
    let (a, b) = (fake().await, fake().await);
    a.push(Behaviour::rate_limited("30"));
    let text = two(
        &a,
        &b,
        "workload w { data public; route fallback [a/m, b/m] on rate_limited }",
    );
    let r = router(&text).build().unwrap();

    let first = r.complete(ask("w")).await.unwrap();
    assert_eq!((first.target.as_str(), first.attempts), ("b/m", 2));
    let record = r.decision(&first.decision_id).unwrap();
    let limited = &record.attempts()[0];
    assert_eq!(limited.error().map(AttemptError::code), Some("rate_limited"));
    assert_eq!(limited.retry(), 0, "a 429 is never retried on its provider");
    assert!(
        limited.clause().starts_with("advanced: `rate_limited`"),
        "{}",
        limited.clause()
    );

    let second = r.complete(ask("w")).await.unwrap();
    assert_eq!((second.target.as_str(), second.attempts), ("b/m", 1));
    assert_eq!(a.calls(), 1, "the cooling provider is not called");
    let record = r.decision(&second.decision_id).unwrap();
    let dropped = record
        .decision()
        .explain()
        .candidates
        .iter()
        .find(|c| c.target == r.policy().target_named("a", "m").unwrap())
        .unwrap();
    assert!(
        matches!(
            dropped.verdict,
            Verdict::Dropped {
                reason: Reason::CoolingDown { .. }
            }
        ),
        "{dropped:?}"
    );
}

#[tokio::test]
async fn consecutive_failures_eject_a_target_until_a_probe_succeeds() {
    let (a, b) = (fake().await, fake().await);
    a.script(vec![Behaviour::error(500); 5]);
    let clock = ManualClock::new(Millis(1_793_491_200_000));
    let text = two(
        &a,
        &b,
        "workload w { data public; route fallback [a/m, b/m] on server_error }",
    );
    let r = router(&text).clock(Arc::new(clock.clone())).build().unwrap();
    for _ in 0..5 {
        assert_eq!(r.complete(ask("w")).await.unwrap().target, "b/m");
    }
    assert_eq!(a.calls(), 5);
    // Ejected: the next call skips it.
    let skipped = r.complete(ask("w")).await.unwrap();
    assert_eq!((skipped.target.as_str(), skipped.attempts), ("b/m", 1));
    assert_eq!(a.calls(), 5);
    // The ejection (10 s) ends: one probe goes, answers, and the breaker closes.
    clock.advance(Duration::from_secs(10));
    assert_eq!(r.complete(ask("w")).await.unwrap().target, "a/m");
    assert_eq!(r.complete(ask("w")).await.unwrap().target, "a/m");
    assert_eq!(a.calls(), 7);
}

#[tokio::test]
async fn retries_of_a_failing_primary_stay_within_the_retry_budget() {
    const CALLS: u64 = 50;
    let a = fake().await;
    a.script(vec![Behaviour::error(500); 1_000]);
    let text = format!(
        "{}workload w {{ data public; route fallback [a/m] on server_error retry 3 }}",
        openai("a", &a, "")
    );
    let r = router(&text)
        // 20 % of recent calls, no floor; breakers out of the way.
        .retry_budget(RetryBudget::new(Duration::from_secs(600), 0, 20))
        .health(HealthConfig {
            failure_threshold: u32::MAX,
            ..HealthConfig::default()
        })
        .build()
        .unwrap();
    for _ in 0..CALLS {
        let err = r.complete(ask("w")).await.unwrap_err();
        assert_eq!(err.code(), "fallback_exhausted");
    }
    let upstream = a.calls();
    // Unbounded, `retry 3` would make 4 calls each: 200.
    assert!(upstream > CALLS, "some retries were allowed");
    assert!(
        upstream <= CALLS + CALLS / 5,
        "{upstream} upstream calls for {CALLS} calls"
    );
}

#[tokio::test]
async fn the_deadline_holds_against_hanging_upstreams() {
    let (a, b) = (fake().await, fake().await);
    a.push(Behaviour::Hang);
    b.push(Behaviour::Hang);
    let text = two(
        &a,
        &b,
        "workload w { data public; latency 300ms; route fallback [a/m, b/m] on timeout(200ms) }",
    );
    let r = router(&text).build().unwrap();
    let err = r.complete(ask("w")).await.unwrap_err();
    let RouteError::DeadlineExceeded(e) = &err else {
        panic!("{err}")
    };
    assert_eq!(e.deadline(), Duration::from_millis(300));
    let attempts = e.attempts();
    assert_eq!(attempts.len(), 2, "{err}");
    let timed_out = |i: usize| match attempts[i].error() {
        Some(AttemptError::TimedOut(t)) => t.by_deadline(),
        other => panic!("{other:?}"),
    };
    assert!(!timed_out(0), "the first attempt ran out its own timeout");
    assert!(timed_out(1), "the second was cut by the deadline");
    assert_eq!((a.calls(), b.calls()), (1, 1));
    assert_eq!(err.http_status(), 504);
}

#[tokio::test]
async fn a_cancelled_call_releases_its_reservation() {
    let a = fake().await;
    a.push(Behaviour::Hang);
    let text = format!(
        "{}workload w {{ data public; max_tokens 50; budget 10000 tokens/day; route a/m }}",
        openai("a", &a, "")
    );
    let entered = Arc::new(Notify::new());
    let wrapped = Arc::new(Entered {
        inner: openai_adapter("a", &a),
        entered: Arc::clone(&entered),
    });
    let r = router(&text).provider("a", wrapped).build().unwrap();
    {
        let mut call = pin!(r.complete(ask("w")));
        tokio::select! {
            done = &mut call => panic!("a hanging upstream answered: {done:?}"),
            () = entered.notified() => {}
        }
        let (_, reserved) = support::tokens(&r, "w").await;
        assert!(reserved > 0, "the call holds a reservation while in flight");
    }
    // The call's future is dropped: its reservation goes back.
    let (committed, reserved) = support::tokens(&r, "w").await;
    assert_eq!((committed, reserved), (0, 0));
}

#[tokio::test]
async fn a_garbage_body_is_classified_and_falls_back() {
    let (a, b) = (fake().await, fake().await);
    a.push(Behaviour::raw(200, "application/json", "<html>502 bad gateway</html>"));
    let text = two(&a, &b, "workload w { data public; route fallback [a/m, b/m] }");
    let r = router(&text).build().unwrap();
    let done = r.complete(ask("w")).await.unwrap();
    assert_eq!((done.target.as_str(), done.attempts), ("b/m", 2));
    let record = r.decision(&done.decision_id).unwrap();
    assert_eq!(
        record.attempts()[0].error().map(AttemptError::code),
        Some("malformed_response")
    );
}

#[tokio::test]
async fn a_rejected_request_is_not_sent_anywhere_else() {
    let (a, b) = (fake().await, fake().await);
    a.push(Behaviour::error(400));
    let text = two(&a, &b, "workload w { data public; route fallback [a/m, b/m] }");
    let r = router(&text).build().unwrap();
    let err = r.complete(ask("w")).await.unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("upstream_rejected", 400));
    assert_eq!((a.calls(), b.calls()), (1, 0));
    assert!(
        err.attempts()[0]
            .clause()
            .starts_with("stopped: the request itself was rejected")
    );
}
