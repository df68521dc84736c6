//! A provider's `limits` (concurrency, rpm, tpm), against fake upstreams on
//! 127.0.0.1: a provider at a limit is skipped at once for the next
//! attempt, the record says `local_limit`, and limits free up as calls end
//! and as the (manual) clock moves. Nothing waits by sleeping.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use fake_upstream::{Behaviour, FakeUpstream, Flavor};
use futures::StreamExt;
use router_runtime::{AttemptError, LocalLimit, ManualClock, Millis, NotSent, RouteError, Router};
use support::{Entered, ask, estimate_of, openai, openai_adapter, router};
use tokio::sync::Notify;

async fn fake() -> FakeUpstream {
    FakeUpstream::start(Flavor::OpenAi).await.unwrap()
}

/// Providers `a` (with `limits`) and `b`, and `workload w` falling back from
/// `a/m` to `b/m`.
fn limited(a: &FakeUpstream, b: &FakeUpstream, limits: &str, workload: &str) -> String {
    format!("{}{}{workload}", openai("a", a, limits), openai("b", b, ""))
}

const FALLBACK: &str = "workload w { data public; max_tokens 100; route fallback [a/m, b/m] }";

/// The first attempt of a call's record, which must have been skipped for
/// a local limit; returns the limit and the clause.
fn skipped(r: &Router, done: &router_runtime::Routed<impl std::fmt::Debug>) -> (LocalLimit, String) {
    let record = r.decision(&done.decision_id).unwrap();
    let first = &record.attempts()[0];
    assert_eq!(first.target(), "a/m");
    assert_eq!(first.error().map(AttemptError::code), Some("local_limit"));
    assert_eq!(first.elapsed(), Duration::ZERO, "nothing was sent");
    let Some(AttemptError::NotSent(e)) = first.error() else {
        panic!("{first:?}")
    };
    let NotSent::LocalLimit { limit } = e.reason() else {
        panic!("{e:?}")
    };
    (*limit, first.clause().to_owned())
}

#[tokio::test]
async fn at_its_concurrency_a_provider_is_skipped_until_a_call_ends() {
    let (a, b) = (fake().await, fake().await);
    a.push(Behaviour::Hang);
    let text = limited(&a, &b, "limits concurrency 1", FALLBACK);
    let entered = Arc::new(Notify::new());
    let r = router(&text)
        .provider(
            "a",
            Arc::new(Entered {
                inner: openai_adapter("a", &a),
                entered: Arc::clone(&entered),
            }),
        )
        .build()
        .unwrap();

    let hanging = tokio::spawn({
        let r = r.clone();
        async move { r.complete(ask("w")).await }
    });
    entered.notified().await;
    // The first call is in flight at `a`: the second goes to `b` at once.
    let second = r.complete(ask("w")).await.unwrap();
    assert_eq!((second.target.as_str(), second.attempts), ("b/m", 1));
    assert_eq!(a.calls(), 1);
    let (limit, clause) = skipped(&r, &second);
    assert_eq!(limit, LocalLimit::Concurrency { limit: 1 });
    assert_eq!(
        clause,
        "skipped: provider `a` is at its `limits concurrency 1`; the next attempt goes at once"
    );
    let text = r.decision(&second.decision_id).unwrap().render(r.policy());
    assert!(
        text.contains("attempt 1: `a/m`: not sent: the provider already has `concurrency 1` calls in flight;"),
        "{text}"
    );
    let metrics = r.metrics().render();
    assert!(
        metrics.contains("routec_local_limit_skips_total{provider=\"a\",limit=\"concurrency\"} 1"),
        "{metrics}"
    );

    // Cancelling the hanging call gives its permit back.
    hanging.abort();
    assert!(hanging.await.unwrap_err().is_cancelled());
    let third = r.complete(ask("w")).await.unwrap();
    assert_eq!((third.target.as_str(), third.attempts), ("a/m", 1));
    assert_eq!(a.calls(), 2);
}

#[tokio::test]
async fn a_stream_holds_its_permit_until_it_ends_or_is_dropped() {
    let (a, b) = (fake().await, fake().await);
    let text = limited(&a, &b, "limits concurrency 1", FALLBACK);
    let r = router(&text).build().unwrap();

    // Read to its end: the permit is back.
    let whole = r.stream(ask("w")).await.unwrap();
    assert_eq!(whole.target, "a/m");
    let events: Vec<_> = whole.value.collect().await;
    assert!(events.iter().all(Result::is_ok), "{events:?}");
    assert_eq!(r.complete(ask("w")).await.unwrap().target, "a/m");

    // Started and not read: the stream is a call in flight.
    let open = r.stream(ask("w")).await.unwrap();
    assert_eq!(open.target, "a/m");
    let during = r.complete(ask("w")).await.unwrap();
    assert_eq!(during.target, "b/m");
    assert_eq!(skipped(&r, &during).0, LocalLimit::Concurrency { limit: 1 });
    drop(open);
    assert_eq!(r.complete(ask("w")).await.unwrap().target, "a/m");
    assert_eq!((a.calls(), b.calls()), (4, 1));
}

#[tokio::test]
async fn rpm_skips_the_call_after_n_in_a_minute_and_refills_with_time() {
    let (a, b) = (fake().await, fake().await);
    let text = limited(&a, &b, "limits rpm 2", FALLBACK);
    let clock = ManualClock::new(Millis(1_793_491_200_000));
    let r = router(&text).clock(Arc::new(clock.clone())).build().unwrap();

    for _ in 0..2 {
        assert_eq!(r.complete(ask("w")).await.unwrap().target, "a/m");
    }
    let third = r.complete(ask("w")).await.unwrap();
    assert_eq!((third.target.as_str(), third.attempts), ("b/m", 1));
    assert_eq!(
        skipped(&r, &third).0,
        LocalLimit::Rpm {
            limit: 2,
            free_in: Some(Duration::from_secs(30))
        }
    );
    assert_eq!(a.calls(), 2, "the skipped attempt sent nothing");

    // `rpm 2` refills one request every 30 s.
    clock.advance(Duration::from_millis(29_999));
    assert_eq!(r.complete(ask("w")).await.unwrap().target, "b/m");
    clock.advance(Duration::from_millis(1));
    assert_eq!(r.complete(ask("w")).await.unwrap().target, "a/m");
    assert_eq!(r.complete(ask("w")).await.unwrap().target, "b/m");
    // A quiet minute refills it to 2, no more.
    clock.advance(Duration::from_secs(600));
    let targets: Vec<String> = futures::future::join_all((0..3).map(|_| r.complete(ask("w"))))
        .await
        .into_iter()
        .map(|d| d.unwrap().target)
        .collect();
    assert_eq!(targets.iter().filter(|t| *t == "a/m").count(), 2, "{targets:?}");
    assert_eq!((a.calls(), b.calls()), (5, 4));
    assert!(
        r.metrics()
            .render()
            .contains("routec_local_limit_skips_total{provider=\"a\",limit=\"rpm\"} 4")
    );
}

#[tokio::test]
async fn with_every_candidate_at_its_limit_the_call_fails_at_once_and_says_when_to_come_back() {
    let a = fake().await;
    let text = format!(
        "{}workload w {{ data public; max_tokens 100; route a/m }}",
        openai("a", &a, "limits rpm 1")
    );
    let clock = ManualClock::new(Millis(1_793_491_200_000));
    let r = router(&text).clock(Arc::new(clock.clone())).build().unwrap();
    r.complete(ask("w")).await.unwrap();
    clock.advance(Duration::from_secs(15));
    let err = r.complete(ask("w")).await.unwrap_err();
    assert!(matches!(err, RouteError::FallbackExhausted(_)), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(45)));
    assert_eq!(
        err.attempts()[0].clause(),
        "skipped: provider `a` is at its `limits rpm 1`; no attempt was left"
    );
    assert_eq!(a.calls(), 1);
}

#[tokio::test]
async fn tpm_counts_each_attempt_s_token_estimate_at_admission() {
    let (a, b) = (fake().await, fake().await);
    // One attempt's estimate, read from the runtime itself (input + 100).
    let estimate = estimate_of(&limited(&a, &b, "", FALLBACK), "w").await;
    let (a, b) = (fake().await, fake().await);
    let tpm = 2 * estimate + estimate / 2;
    let text = limited(&a, &b, &format!("limits tpm {tpm}"), FALLBACK);
    let clock = ManualClock::new(Millis(1_793_491_200_000));
    let r = router(&text).clock(Arc::new(clock.clone())).build().unwrap();

    assert_eq!(r.complete(ask("w")).await.unwrap().target, "a/m");
    assert_eq!(r.complete(ask("w")).await.unwrap().target, "a/m");
    let third = r.complete(ask("w")).await.unwrap();
    assert_eq!(third.target, "b/m");
    let (limit, _) = skipped(&r, &third);
    let missing = estimate - estimate / 2;
    assert_eq!(
        limit,
        LocalLimit::Tpm {
            limit: tpm,
            needed: estimate,
            free_in: Some(Duration::from_millis((missing * 60_000).div_ceil(tpm)))
        }
    );
    clock.advance(limit.free_in().unwrap());
    assert_eq!(r.complete(ask("w")).await.unwrap().target, "a/m");
    assert_eq!(a.calls(), 3);

    // An estimate above the whole `tpm` never fits, however long one waits.
    let big = "workload big { data public; max_tokens 100000; route fallback [a/m, b/m] }";
    let text = limited(&a, &b, &format!("limits tpm {tpm}"), &format!("{FALLBACK}\n{big}"));
    let r = router(&text).clock(Arc::new(clock.clone())).build().unwrap();
    let done = r.complete(ask("big")).await.unwrap();
    assert_eq!(done.target, "b/m");
    let (limit, _) = skipped(&r, &done);
    assert!(
        matches!(limit, LocalLimit::Tpm { free_in: None, needed, .. } if needed > tpm),
        "{limit:?}"
    );
    let record = r.decision(&done.decision_id).unwrap();
    let error = record.attempts()[0].error().unwrap().to_string();
    assert!(
        error.ends_with(&format!("tokens are more than the provider's `tpm {tpm}` allows")),
        "{error}"
    );
}
