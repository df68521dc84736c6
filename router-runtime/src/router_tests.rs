//! The router over in-process providers (the simulated one and a fixed
//! answerer), on tokio's paused clock where time matters.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use futures::StreamExt;
use policy_lang::{SourceFile, compile};
use providers::{
    Capabilities, ChatResponse, EventStream, FinishReason, ProviderError, ResponseFormat, StreamEvent, Usage,
};
use router_core::Refusal;

use super::*;
use crate::error::AttemptError;

fn policy(text: &str) -> Arc<Policy> {
    match compile(&[SourceFile::new("test.route", text)]) {
        Ok(c) => Arc::new(c.into_policy()),
        Err(report) => panic!("policy does not compile: {report:?}"),
    }
}

/// Answers every call with the same text and usage.
#[derive(Debug)]
struct Fixed {
    content: String,
    calls: AtomicU64,
}

impl Fixed {
    fn new(content: &str) -> Arc<Fixed> {
        Arc::new(Fixed {
            content: content.to_owned(),
            calls: AtomicU64::new(0),
        })
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

const USAGE: Usage = Usage {
    input_tokens: 10,
    output_tokens: 5,
    cached_tokens: 0,
};

#[async_trait]
impl Provider for Fixed {
    fn name(&self) -> &str {
        "fixed"
    }
    fn models(&self) -> &[String] {
        &[]
    }
    fn capabilities(&self, _model: &str) -> Capabilities {
        Capabilities {
            tools: true,
            json_schema: true,
            vision: true,
            stream: true,
        }
    }
    async fn complete(&self, model: &str, _req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(ChatResponse {
            id: None,
            model: model.to_owned(),
            content: self.content.clone(),
            tool_calls: Vec::new(),
            finish_reason: FinishReason::Stop,
            usage: USAGE,
        })
    }
    async fn stream(&self, model: &str, req: &ChatRequest) -> Result<EventStream, ProviderError> {
        let r = self.complete(model, req).await?;
        let (first, second) = r.content.split_at(r.content.len() / 2);
        Ok(Box::pin(futures::stream::iter(
            [
                StreamEvent::TextDelta { text: first.to_owned() },
                StreamEvent::TextDelta {
                    text: second.to_owned(),
                },
                StreamEvent::Usage(r.usage),
                StreamEvent::Done {
                    finish_reason: FinishReason::Stop,
                    skipped_events: 0,
                },
            ]
            .map(Ok),
        )))
    }
}

fn ask(workload: &str) -> Call {
    Call::new(workload, ChatRequest::user("summarise this, please"))
}

async fn committed_tokens(router: &Router, workload: &str) -> u64 {
    router.settled().await;
    let status = router.ledger().status().await.unwrap();
    let w = status.iter().find(|s| s.workload == workload).unwrap();
    w.limits.iter().find(|l| !l.limit.is_usd()).map_or(0, |l| l.committed)
}

const TWO_MOCKS: &str = r#"
    provider flaky { adapter mock; tier free; data private
      simulate latency 5ms p95 5ms, errors 100%
      model m { price free; supports stream } }
    provider steady { adapter mock; tier paid; data private
      model m { price $1/M in, $2/M out; supports stream } }
    workload w { data public; max_tokens 50
      route fallback [flaky/m, steady/m] on server_error, timeout(2s) }
"#;

#[tokio::test(start_paused = true)]
async fn completes_over_a_simulated_provider_and_keeps_the_decision() {
    let router = Router::builder(policy(TWO_MOCKS)).seed(7).build().unwrap();
    let r = router.complete(ask("w")).await.unwrap();
    assert_eq!(
        (r.target.as_str(), r.attempts, r.served),
        ("steady/m", 2, Served::Fresh)
    );
    assert!(!r.value.content.is_empty());
    let record = router.decision(&r.decision_id).expect("the decision is kept");
    assert_eq!(record.attempts().len(), 2);
    let first = &record.attempts()[0];
    assert_eq!(first.target(), "flaky/m");
    assert_eq!(first.error().map(AttemptError::code), Some("server_error"));
    assert!(
        first.clause().starts_with("advanced: `server_error`"),
        "{}",
        first.clause()
    );
    assert_eq!(record.outcome(), "answered by steady/m");
    let text = record.render(router.policy());
    assert!(text.contains("attempt 2: `steady/m`: answered"), "{text}");
    let metrics = router.metrics().render();
    assert!(
        metrics.contains("routec_fallbacks_total{workload=\"w\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("routec_attempts_total{workload=\"w\",target=\"flaky/m\",outcome=\"server_error\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(start_paused = true)]
async fn every_attempt_s_error_is_kept_when_fallback_runs_out() {
    let text = TWO_MOCKS.replace(
        "model m { price $1/M in",
        "simulate latency 1ms p95 1ms, errors 100%\n model m { price $1/M in",
    );
    let router = Router::builder(policy(&text)).seed(7).build().unwrap();
    let err = router.complete(ask("w")).await.unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("fallback_exhausted", 502));
    let attempts = err.attempts();
    assert_eq!(attempts.len(), 2);
    assert!(
        attempts
            .iter()
            .all(|a| a.error().map(AttemptError::code) == Some("server_error"))
    );
    assert!(
        attempts[1].clause().contains("no attempt was left"),
        "{}",
        attempts[1].clause()
    );
    assert!(router.decision(&err.decision_id().unwrap()).is_some());
    assert!(
        router
            .metrics()
            .render()
            .contains("routec_errors_total{class=\"fallback_exhausted\"} 1")
    );
}

#[tokio::test(start_paused = true)]
async fn refusals_name_the_reason_and_send_nothing() {
    let text = r#"
        provider open { adapter mock; tier free; data public; model m { price free } }
        workload w { data public; route open/m }
    "#;
    let fixed = Fixed::new("hello");
    let router = Router::builder(policy(text))
        .provider("open", fixed.clone())
        .build()
        .unwrap();
    let mut call = ask("w");
    call.data_class = Some(DataClass::Private);
    let err = router.complete(call).await.unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("data_class", 403));
    let RouteError::Refused(refused) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        refused.refusal(),
        Refusal::DataClass {
            required: DataClass::Private
        }
    );
    assert_eq!(fixed.calls(), 0, "nothing is sent");
    let err = router.complete(ask("nope")).await.unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("unknown_workload", 404));
    assert_eq!(err.to_string(), "no workload `nope` in the policy");
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_within_the_plan_s_bound() {
    let text = r#"
        provider flaky { adapter mock; tier free; simulate latency 1ms p95 1ms, errors 100%
          model m { price free } }
        workload w { data public; route fallback [flaky/m] retry 2 }
    "#;
    let router = Router::builder(policy(text))
        .backoff(Duration::from_millis(100), Duration::from_secs(1))
        .health(HealthConfig {
            failure_threshold: 100,
            ..HealthConfig::default()
        })
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let err = router.complete(ask("w")).await.unwrap_err();
    let attempts = err.attempts();
    assert_eq!(attempts.len(), 3, "{err}");
    assert!(
        attempts[0].clause().starts_with("retried after"),
        "{}",
        attempts[0].clause()
    );
    assert_eq!(attempts[2].retry(), 2);
    // Paused time: the backoffs (50–100 ms, then 100–200 ms) are all that passed.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(150) && waited <= Duration::from_millis(310),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_deadline_bounds_every_attempt_together() {
    let text = r#"
        provider slow { adapter mock; tier free; simulate latency 10s p95 10s
          model a { price free }
          model b { price free } }
        workload w { data public; latency 1s
          route fallback [slow/a, slow/b] on timeout(600ms) allow_repeat }
    "#;
    let router = Router::builder(policy(text)).build().unwrap();
    let err = router.complete(ask("w")).await.unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("deadline_exceeded", 504));
    let attempts = err.attempts();
    assert_eq!(attempts.len(), 2, "{err}");
    let cut = |i: usize| match attempts[i].error() {
        Some(AttemptError::TimedOut(t)) => (t.after(), t.by_deadline()),
        other => panic!("{other:?}"),
    };
    assert_eq!(cut(0), (Duration::from_millis(600), false));
    assert!(cut(1).1, "the second attempt gets what is left of the deadline");
    assert!(cut(1).0 <= Duration::from_millis(400));
}

#[tokio::test]
async fn escalate_checks_answers_and_commits_both_costs() {
    let text = r#"
        provider cheap { adapter mock; tier free; model m { price free } }
        provider strong { adapter mock; tier paid; model m { price $1/M in, $1/M out } }
        workload w { data public; max_tokens 5; budget 1000 tokens/day
          route escalate [cheap/m, strong/m] check json_valid }
    "#;
    let (cheap, strong) = (Fixed::new("sure! here it is"), Fixed::new(r#"{"ok": true}"#));
    let router = Router::builder(policy(text))
        .provider("cheap", cheap.clone())
        .provider("strong", strong.clone())
        .build()
        .unwrap();
    let r = router.complete(ask("w")).await.unwrap();
    assert_eq!((r.target.as_str(), r.attempts), ("strong/m", 2));
    assert_eq!((cheap.calls(), strong.calls()), (1, 1));
    let record = router.decision(&r.decision_id).unwrap();
    assert_eq!(
        record.attempts()[0].error().map(AttemptError::code),
        Some("quality_check_failed")
    );
    assert_eq!(committed_tokens(&router, "w").await, 30, "both answers are paid for");
}

fn judged(verdict: &str) -> (Router, Arc<Fixed>) {
    let text = r#"
        provider a { adapter mock; tier free; data private; model m { price free } }
        provider b { adapter mock; tier free; data private; model m { price free } }
        provider judge { adapter mock; tier free; data private; model m { price free } }
        workload w { data internal; route escalate [a/m, b/m] check evaluator(reviewer) }
        workload reviewer { data internal; route judge/m }
    "#;
    let judge = Fixed::new(verdict);
    let router = Router::builder(policy(text))
        .provider("a", Fixed::new("first answer"))
        .provider("b", Fixed::new("second answer"))
        .provider("judge", judge.clone())
        .build()
        .unwrap();
    (router, judge)
}

#[tokio::test]
async fn an_evaluator_workload_judges_each_answer() {
    let (router, judge) = judged("PASS: fine");
    let r = router.complete(ask("w")).await.unwrap();
    assert_eq!((r.target.as_str(), r.value.content.as_str()), ("a/m", "first answer"));
    assert_eq!(judge.calls(), 1);
    let (router, judge) = judged("fail: not good enough");
    let err = router.complete(ask("w")).await.unwrap_err();
    assert_eq!(err.code(), "fallback_exhausted");
    assert_eq!(judge.calls(), 2);
    let detail = err.attempts()[0].error().unwrap().to_string();
    assert_eq!(
        detail,
        "the answer failed check `evaluator`: evaluator `reviewer` said: fail: not good enough"
    );
    let metrics = router.metrics().render();
    assert!(
        metrics.contains("routec_requests_total{workload=\"reviewer\"} 2"),
        "{metrics}"
    );
}

const IDEMPOTENT: &str = r#"
    provider p { adapter mock; tier paid; model m { price $1/M in, $1/M out; supports stream } }
    workload w { data public; max_tokens 5; budget 1000 tokens/day; idempotent 1m; route p/m }
"#;

#[tokio::test]
async fn identical_calls_replay_without_new_spend_and_reused_keys_are_refused() {
    let fixed = Fixed::new("the answer");
    let router = Router::builder(policy(IDEMPOTENT))
        .provider("p", fixed.clone())
        .build()
        .unwrap();
    let first = router.complete(ask("w")).await.unwrap();
    let again = router.complete(ask("w")).await.unwrap();
    assert_eq!((first.served, again.served), (Served::Fresh, Served::Replayed));
    assert_eq!(again.value, first.value);
    assert_eq!(again.decision_id, first.decision_id);
    assert_eq!(fixed.calls(), 1);
    assert_eq!(committed_tokens(&router, "w").await, 15);
    // A streamed call of the same request replays the stored answer too.
    let streamed = router.stream(ask("w")).await.unwrap();
    assert_eq!(streamed.served, Served::Replayed);
    let events: Vec<_> = streamed.value.collect().await;
    assert!(matches!(events.last(), Some(Ok(StreamEvent::Done { .. }))));
    assert_eq!(fixed.calls(), 1);

    let mut keyed = ask("w");
    keyed.idempotency_key = Some("order-1".into());
    router.complete(keyed.clone()).await.unwrap();
    keyed.request = ChatRequest::user("something else");
    let err = router.complete(keyed).await.unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("idempotency_key_reused", 422));
}

#[tokio::test]
async fn a_stream_passes_events_through_and_commits_the_reported_usage() {
    let text = IDEMPOTENT.replace("idempotent 1m;", "");
    let router = Router::builder(policy(&text))
        .provider("p", Fixed::new("streamed words"))
        .build()
        .unwrap();
    let routed = router.stream(ask("w")).await.unwrap();
    assert_eq!((routed.target.as_str(), routed.attempts), ("p/m", 1));
    let events: Vec<StreamEvent> = routed.value.map(|e| e.unwrap()).collect().await;
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "streamed words");
    assert_eq!(committed_tokens(&router, "w").await, 15);
}

#[tokio::test]
async fn a_dropped_stream_commits_what_was_seen() {
    let text = IDEMPOTENT.replace("idempotent 1m;", "");
    let router = Router::builder(policy(&text))
        .provider("p", Fixed::new("streamed words"))
        .build()
        .unwrap();
    let mut routed = router.stream(ask("w")).await.unwrap();
    let first = routed.value.next().await.unwrap().unwrap();
    assert!(matches!(first, StreamEvent::TextDelta { .. }));
    drop(routed);
    let spent = committed_tokens(&router, "w").await;
    assert!(spent > 0, "a streamed call never records zero spend");
    assert!(spent < 15 + 50, "{spent}");
}

#[tokio::test]
async fn a_scope_budget_is_charged_alongside_the_workload_s() {
    let text = r#"
        provider p { adapter mock; tier free; model m { price free } }
        workload w { data public; max_tokens 5; route p/m }
    "#;
    let router = Router::builder(policy(text))
        .provider("p", Fixed::new("ok"))
        .scope_budget(
            "acme",
            Budget {
                tokens_per_day: Some(25),
                ..Budget::default()
            },
        )
        .build()
        .unwrap();
    let mut call = ask("w");
    call.budget_scope = Some("acme".into());
    router.complete(call.clone()).await.unwrap();
    let err = router.complete(call.clone()).await.unwrap_err();
    // The scope's line cannot take the call with nothing in flight: the
    // ledger halts it, as `status` will show and `unlock` can lift.
    assert_eq!((err.code(), err.http_status()), ("budget_halted", 429), "{err}");
    assert!(err.to_string().contains("`scope:acme`"), "{err}");
    // Another tenant, or none, is not limited by acme's budget.
    call.budget_scope = Some("globex".into());
    router.complete(call).await.unwrap();
    router.complete(ask("w")).await.unwrap();
}

#[tokio::test]
async fn a_provider_without_its_key_is_left_out_with_a_note() {
    let text = r#"
        provider keyed { adapter openai; key env("ROUTEC_TEST_UNSET_KEY"); tier paid
          model m { price $1/M in, $1/M out } }
        provider sim { adapter mock; tier free; model m { price free } }
        workload both { data public; route fallback [keyed/m, sim/m] }
        workload only { data public; route keyed/m }
    "#;
    let router = Router::builder(policy(text))
        .env_vars::<String, String>([])
        .build()
        .unwrap();
    assert_eq!(
        router.notes(),
        ["provider `keyed` is unavailable: environment variable `ROUTEC_TEST_UNSET_KEY` is not set"]
    );
    let r = router.complete(ask("both")).await.unwrap();
    assert_eq!((r.target.as_str(), r.attempts), ("sim/m", 1));
    let record = router.decision(&r.decision_id).unwrap();
    assert_eq!(record.notes(), router.notes());
    // The explanation says the provider is unavailable, not ejected.
    let text = record.render(router.policy());
    assert!(
        text.contains("dropped  keyed/m  unavailable: the runtime has no adapter for this provider"),
        "{text}"
    );
    assert!(!text.contains("ejected"), "{text}");
    let err = router.complete(ask("only")).await.unwrap_err();
    assert_eq!((err.code(), err.http_status()), ("unhealthy", 503));
    assert_eq!(
        err.to_string(),
        "workload `only` refused the call: every target that fits is unavailable or out of rotation with no end \
         time; provider `keyed` is unavailable: environment variable `ROUTEC_TEST_UNSET_KEY` is not set"
    );
    assert_eq!(err.retry_after(), None);
}

#[tokio::test]
async fn json_schema_checks_use_the_request_s_schema() {
    let text = r#"
        provider cheap { adapter mock; tier free; model m { price free; supports json_schema } }
        provider strong { adapter mock; tier paid; model m { price $1/M in, $1/M out; supports json_schema } }
        workload w { data public; route escalate [cheap/m, strong/m] check json_schema }
    "#;
    let router = Router::builder(policy(text))
        .provider("cheap", Fixed::new(r#"{"n": "one"}"#))
        .provider("strong", Fixed::new(r#"{"n": 1}"#))
        .build()
        .unwrap();
    let mut call = ask("w");
    call.request.response_format = Some(ResponseFormat::JsonSchema {
        name: "n".into(),
        schema: serde_json::json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}),
        strict: true,
    });
    let r = router.complete(call).await.unwrap();
    assert_eq!(r.target, "strong/m");
}
