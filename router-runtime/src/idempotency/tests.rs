use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::clock::ManualClock;

type Cache = IdempotencyCache<String, String>;

const W: WorkloadId = WorkloadId(0);
const WINDOW: Duration = Duration::from_secs(60);

fn cache(capacity: usize) -> (Cache, ManualClock) {
    let clock = ManualClock::new(Millis(1_000));
    (IdempotencyCache::new(capacity, Arc::new(clock.clone())), clock)
}

fn key(s: &str) -> IdempotencyKey {
    IdempotencyKey::Caller(s.to_owned())
}

#[tokio::test]
async fn concurrent_identical_calls_share_one_upstream_call() {
    let (c, _) = cache(16);
    let calls = Arc::new(AtomicUsize::new(0));
    let (release_tx, release_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let c = c.clone();
        let calls = Arc::clone(&calls);
        let mut rx = release_rx.clone();
        tasks.push(tokio::spawn(async move {
            c.run(W, key("k"), 7, WINDOW, || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                // Hold the call open until every caller has claimed.
                let _ = rx.wait_for(|go| *go).await;
                Ok::<_, String>("answer".to_owned())
            })
            .await
        }));
    }
    // Every caller is either leading or waiting once all 20 tasks yielded;
    // release the leader only then (bounded wait, no sleep).
    for _ in 0..1_000 {
        tokio::task::yield_now().await;
    }
    release_tx.send_replace(true);
    let mut fresh = 0;
    for t in tasks {
        let (result, served) = t.await.unwrap().unwrap();
        assert_eq!(result.unwrap(), "answer");
        if served == Served::Fresh {
            fresh += 1;
        }
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(fresh, 1);
}

#[tokio::test]
async fn replay_within_the_window_then_a_fresh_call_after_it() {
    let (c, clock) = cache(16);
    let calls = AtomicUsize::new(0);
    let call = || async {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        Ok::<_, String>(format!("answer {n}"))
    };
    let (r, s) = c.run(W, key("k"), 7, WINDOW, call).await.unwrap();
    assert_eq!((r.unwrap(), s), ("answer 0".to_owned(), Served::Fresh));
    clock.advance(Duration::from_secs(59));
    let (r, s) = c.run(W, key("k"), 7, WINDOW, call).await.unwrap();
    assert_eq!((r.unwrap(), s), ("answer 0".to_owned(), Served::Replayed));
    clock.advance(Duration::from_secs(1));
    let (r, s) = c.run(W, key("k"), 7, WINDOW, call).await.unwrap();
    assert_eq!((r.unwrap(), s), ("answer 1".to_owned(), Served::Fresh));
    // Keys are per workload.
    let (_, s) = c.run(WorkloadId(1), key("k"), 7, WINDOW, call).await.unwrap();
    assert_eq!(s, Served::Fresh);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_an_error() {
    let (c, _) = cache(16);
    let (first, _) = c
        .run(W, key("k"), 7, WINDOW, || async { Ok::<_, String>("a".to_owned()) })
        .await
        .unwrap();
    assert_eq!(first.unwrap(), "a");
    let err = c
        .run(W, key("k"), 8, WINDOW, || async { Ok::<_, String>("b".to_owned()) })
        .await
        .unwrap_err();
    assert!(!err.in_flight());
    assert_eq!(
        err.to_string(),
        "idempotency key was already used with a different request body"
    );
    // In flight too.
    let Claim::Lead(leader) = c.claim(W, key("j"), 1, WINDOW).await.unwrap() else {
        panic!("expected to lead")
    };
    assert!(c.claim(W, key("j"), 2, WINDOW).await.unwrap_err().in_flight());
    leader.finish(Ok("x".to_owned()));
}

#[tokio::test]
async fn failures_are_shared_with_waiters_but_never_replayed() {
    let (c, _) = cache(16);
    let Claim::Lead(leader) = c.claim(W, key("k"), 7, WINDOW).await.unwrap() else {
        panic!("expected to lead")
    };
    let c2 = c.clone();
    let waiter = tokio::spawn(async move { c2.claim(W, key("k"), 7, WINDOW).await });
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    leader.finish(Err("upstream 503".to_owned()));
    match waiter.await.unwrap().unwrap() {
        Claim::Joined(Err(e)) => assert_eq!(e, "upstream 503"),
        other => panic!("expected the shared failure, got {other:?}"),
    }
    assert_eq!(c.stored(), 0);
    assert!(matches!(c.claim(W, key("k"), 7, WINDOW).await.unwrap(), Claim::Lead(_)));
}

#[tokio::test]
async fn a_cancelled_leader_hands_the_call_to_a_waiter() {
    let (c, _) = cache(16);
    let Claim::Lead(leader) = c.claim(W, key("k"), 7, WINDOW).await.unwrap() else {
        panic!("expected to lead")
    };
    let c2 = c.clone();
    let waiter = tokio::spawn(async move { c2.claim(W, key("k"), 7, WINDOW).await });
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    drop(leader);
    let Claim::Lead(next) = waiter.await.unwrap().unwrap() else {
        panic!("the waiter should lead")
    };
    next.finish(Ok("done".to_owned()));
    assert!(matches!(c.claim(W, key("k"), 7, WINDOW).await.unwrap(), Claim::Replayed(v) if v == "done"));
}

#[tokio::test]
async fn stored_results_are_bounded() {
    let (c, clock) = cache(3);
    for i in 0..10u128 {
        clock.advance(Duration::from_millis(1));
        let (r, _) = c
            .run(W, IdempotencyKey::Content(i), i, WINDOW, || async {
                Ok::<_, String>(i.to_string())
            })
            .await
            .unwrap();
        assert_eq!(r.unwrap(), i.to_string());
    }
    assert_eq!(c.stored(), 3);
    // The newest survive.
    let (_, s) = c
        .run(W, IdempotencyKey::Content(9), 9, WINDOW, || async {
            Ok::<_, String>(String::new())
        })
        .await
        .unwrap();
    assert_eq!(s, Served::Replayed);
    let (_, s) = c
        .run(W, IdempotencyKey::Content(0), 0, WINDOW, || async {
            Ok::<_, String>(String::new())
        })
        .await
        .unwrap();
    assert_eq!(s, Served::Fresh);
}
