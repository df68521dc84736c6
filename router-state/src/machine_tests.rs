use std::time::Duration;

use router_core::{Estimate, NodeId, ProviderId, TargetId, Triggers};

use super::*;
use crate::testkit::policy;

fn attempt(target: u32, advance_on: Triggers, retries: u8) -> Attempt {
    Attempt {
        target: TargetId(target),
        provider: ProviderId(target),
        node: NodeId(0),
        placed_by: None,
        timeout: Some(Duration::from_secs(30)),
        first_token: None,
        idle: None,
        advance_on,
        allow_repeat: false,
        retries,
        retry_on: router_core::RetryClasses::default(),
        check: None,
        estimate: Estimate::default(),
        candidate: target,
    }
}

fn dispatch_of(a: &Action) -> (usize, u8) {
    match a {
        Action::Dispatch { index, retry, .. } => (*index, *retry),
        other => panic!("expected a dispatch, got {other:?}"),
    }
}

#[test]
fn a_silent_upstream_is_not_retried_and_the_chain_moves_on() {
    let p = policy(&[("w", router_core::Budget::default())]);
    let plan = [attempt(0, Triggers::TRANSIENT, 2), attempt(1, Triggers::TRANSIENT, 2)];
    let mut m = CallMachine::new(&p, &plan, FailureRules::default(), Millis(0), None, 7);
    assert_eq!(dispatch_of(&m.start(Millis(0))), (0, 0));
    m.sent();
    let v = m.failed(Millis(30_000), Failure::Timeout(TimeoutKind::FirstToken), false, || {
        panic!("a timeout asks for no retry")
    });
    assert_eq!(dispatch_of(&v.action), (1, 0), "{}", v.clause);
    assert!(v.clause.starts_with("advanced: `timeout`"), "{}", v.clause);
}

#[test]
fn a_short_retry_after_is_waited_out_on_the_same_target() {
    let p = policy(&[("w", router_core::Budget::default())]);
    let plan = [attempt(0, Triggers::TRANSIENT, 2), attempt(1, Triggers::TRANSIENT, 0)];
    let mut m = CallMachine::new(&p, &plan, FailureRules::default(), Millis(0), None, 7);
    m.start(Millis(0));
    m.sent();
    let short = Failure::RateLimited {
        retry_after: Some(Duration::from_secs(2)),
    };
    let v = m.failed(Millis(100), short, false, || true);
    assert_eq!(
        v.action,
        Action::Wait {
            until: Millis(2_100),
            clause: v.clause.clone()
        }
    );
    assert_eq!(dispatch_of(&m.resume(Millis(2_100))), (0, 1));
    // A long one cools the target down instead: the next target, at once.
    m.sent();
    let long = Failure::RateLimited {
        retry_after: Some(Duration::from_secs(30)),
    };
    let v = m.failed(Millis(2_200), long, false, || true);
    assert_eq!(dispatch_of(&v.action), (1, 0));
}

#[test]
fn retries_stop_at_retry_n_the_budget_and_the_deadline() {
    let p = policy(&[("w", router_core::Budget::default())]);
    let plan = [attempt(0, Triggers::TRANSIENT, 1)];
    let mut m = CallMachine::new(&p, &plan, FailureRules::default(), Millis(0), None, 7);
    m.start(Millis(0));
    let v = m.failed(Millis(10), Failure::ServerError, false, || true);
    assert!(matches!(v.action, Action::Wait { .. }), "{v:?}");
    assert_eq!(dispatch_of(&m.resume(Millis(200))), (0, 1));
    let v = m.failed(Millis(300), Failure::ServerError, false, || true);
    assert_eq!(v.action, Action::Finish(Ending::Exhausted), "retry 1 is spent");

    let mut m = CallMachine::new(&p, &plan, FailureRules::default(), Millis(0), None, 7);
    m.start(Millis(0));
    let v = m.failed(Millis(10), Failure::ServerError, false, || false);
    assert_eq!(v.action, Action::Finish(Ending::Exhausted), "the retry budget said no");

    let deadline = Some(Duration::from_millis(60));
    let mut m = CallMachine::new(&p, &plan, FailureRules::default(), Millis(0), deadline, 7);
    m.start(Millis(0));
    let v = m.failed(Millis(55), Failure::ServerError, false, || true);
    assert_eq!(
        v.action,
        Action::Finish(Ending::Exhausted),
        "a backoff past the deadline is not waited"
    );
}

#[test]
fn an_oversized_answer_is_never_fetched_twice() {
    let wait = FailureRules::default().retry_after_wait_max;
    // Not even when the chain names the class.
    assert_eq!(Failure::ResponseTooLarge.retried(wait, true, true), None);
    assert_eq!(
        Failure::ServerError.retried(wait, false, false),
        Some(RetryWait::Backoff)
    );
    assert_eq!(Failure::ContentPolicy.retried(wait, true, true), None);
    assert!(!Failure::ContentPolicy.another_provider_can_help());
}

#[test]
fn the_deadline_cuts_the_timeout_and_ends_the_call() {
    let p = policy(&[("w", router_core::Budget::default())]);
    let plan = [attempt(0, Triggers::TRANSIENT, 0), attempt(1, Triggers::TRANSIENT, 0)];
    let mut m = CallMachine::new(
        &p,
        &plan,
        FailureRules::default(),
        Millis(0),
        Some(Duration::from_secs(10)),
        7,
    );
    assert_eq!(
        m.start(Millis(0)),
        Action::Dispatch {
            index: 0,
            retry: 0,
            timeout: Duration::from_secs(10),
            first_token: Duration::from_secs(10),
            idle: FailureRules::default().default_idle,
            by_deadline: true
        }
    );
    let v = m.failed(Millis(10_000), Failure::Timeout(TimeoutKind::Total), true, || true);
    assert_eq!(v.action, Action::Finish(Ending::DeadlineExceeded));
}

#[test]
fn client_errors_reject_and_auth_falls_back() {
    let p = policy(&[("w", router_core::Budget::default())]);
    let plan = [attempt(0, Triggers::NONE, 0), attempt(1, Triggers::NONE, 0)];
    let mut m = CallMachine::new(&p, &plan, FailureRules::default(), Millis(0), None, 7);
    m.start(Millis(0));
    assert_eq!(
        m.failed(Millis(1), Failure::BadRequest, false, || true).action,
        Action::Finish(Ending::Rejected { index: 0 })
    );
    let mut m = CallMachine::new(&p, &plan, FailureRules::default(), Millis(0), None, 7);
    m.start(Millis(0));
    assert_eq!(
        dispatch_of(&m.failed(Millis(1), Failure::Auth, false, || true).action),
        (1, 0)
    );
    let v = m.failed(Millis(2), Failure::ServerError, false, || true);
    assert_eq!(v.action, Action::Finish(Ending::Stopped { index: 1 }), "{}", v.clause);
}

#[test]
fn backoff_grows_is_capped_and_is_deterministic_per_seed() {
    let (base, max) = (Duration::from_millis(100), Duration::from_secs(1));
    for n in 1..=8u8 {
        let d = backoff(base, max, n, 42);
        let exp = (base * (1 << (n - 1))).min(max);
        assert!(d >= exp / 2 && d <= exp, "retry {n}: {d:?}");
        assert_eq!(d, backoff(base, max, n, 42));
    }
    assert_ne!(backoff(base, max, 1, 1), backoff(base, max, 1, 2));
}

#[test]
fn a_named_class_uses_its_own_count_and_may_opt_in_timeouts() {
    let p = policy(&[("w", router_core::Budget::default())]);
    let mut a = attempt(0, Triggers::TRANSIENT, 2);
    a.retry_on.set(router_core::Trigger::ServerError, 0);
    a.retry_on.set(router_core::Trigger::Timeout, 1);
    let plan = [a, attempt(1, Triggers::TRANSIENT, 0)];
    let mut m = CallMachine::new(&p, &plan, FailureRules::default(), Millis(0), None, 7);
    assert_eq!(dispatch_of(&m.start(Millis(0))), (0, 0));
    m.sent();
    // A timeout is retried once: the chain named it.
    let v = m.failed(Millis(1_000), Failure::Timeout(TimeoutKind::FirstToken), false, || true);
    assert!(matches!(v.action, Action::Wait { .. }), "{v:?}");
    assert!(v.clause.contains("`retry timeout 1`"), "{}", v.clause);
    assert_eq!(dispatch_of(&m.resume(Millis(2_000))), (0, 1));
    m.sent();
    // Its count is spent: the next timeout advances.
    let v = m.failed(Millis(3_000), Failure::Timeout(TimeoutKind::FirstToken), false, || true);
    assert_eq!(dispatch_of(&v.action), (1, 0));

    // `retry server_error 0` overrides the general `retry 2`.
    let mut m = CallMachine::new(&p, &plan, FailureRules::default(), Millis(0), None, 7);
    m.start(Millis(0));
    m.sent();
    let v = m.failed(Millis(10), Failure::ServerError, false, || true);
    assert_eq!(dispatch_of(&v.action), (1, 0), "{}", v.clause);
    // The general count still covers classes the chain did not name.
    let mut m = CallMachine::new(&p, &plan, FailureRules::default(), Millis(0), None, 7);
    m.start(Millis(0));
    m.sent();
    let v = m.failed(Millis(10), Failure::Connection, false, || true);
    assert!(matches!(v.action, Action::Wait { .. }), "{v:?}");
}

#[test]
fn a_providers_retry_after_wait_decides_what_is_waited_out() {
    let mut p = policy(&[("w", router_core::Budget::default())]);
    let plan = [attempt(0, Triggers::TRANSIENT, 1), attempt(1, Triggers::TRANSIENT, 0)];
    let limited = Failure::RateLimited {
        retry_after: Some(Duration::from_secs(5)),
    };
    // 5 s is past the runtime's 2 s: the chain moves on at once.
    let mut m = CallMachine::new(&p, &plan, FailureRules::default(), Millis(0), None, 7);
    m.start(Millis(0));
    m.sent();
    assert_eq!(
        dispatch_of(&m.failed(Millis(10), limited, false, || true).action),
        (1, 0)
    );
    // The provider waits out up to 10 s: the same target again after 5 s.
    p.providers[0].failure.retry_after_wait = Some(Duration::from_secs(10));
    let mut m = CallMachine::new(&p, &plan, FailureRules::default(), Millis(0), None, 7);
    m.start(Millis(0));
    m.sent();
    let v = m.failed(Millis(10), limited, false, || true);
    assert_eq!(
        v.action,
        Action::Wait {
            until: Millis(5_010),
            clause: v.clause.clone()
        }
    );
}

#[test]
fn a_dispatch_carries_the_stream_timeouts_under_its_total() {
    let p = policy(&[("w", router_core::Budget::default())]);
    let mut a = attempt(0, Triggers::TRANSIENT, 0);
    a.first_token = Some(Duration::from_secs(90));
    a.idle = Some(Duration::from_secs(7));
    let plan = [a];
    let mut m = CallMachine::new(&p, &plan, FailureRules::default(), Millis(0), None, 7);
    match m.start(Millis(0)) {
        Action::Dispatch {
            timeout,
            first_token,
            idle,
            ..
        } => {
            assert_eq!(timeout, Duration::from_secs(30));
            assert_eq!(first_token, Duration::from_secs(30), "never above the total");
            assert_eq!(idle, Duration::from_secs(7));
        }
        other => panic!("expected a dispatch, got {other:?}"),
    }
}
