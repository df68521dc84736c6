//! The failure-mode conformance suite of issue 14: one test per upstream
//! fault, each through `routec serve` as a separate process, with a primary
//! fake that misbehaves and a healthy fallback behind it, configured as a
//! user would (two retries, one fallback), with the timeouts scaled down to
//! one second so a test takes seconds.
//!
//! Each test asserts the outcome (rescued, or a clean error), the upstream
//! attempt counts and a time bound. The gateway runs as a process, so time
//! cannot be paused; the bounds are generous upper limits on real time, and
//! every wait is bounded.
//!
//! The goal, from the issue: every scenario that has a healthy fallback is
//! rescued, except a mid-stream failure where the policy chose `off`, which
//! ends with an explicit error; `buffer` and `continue` rescue those too.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_support;

use std::time::{Duration, Instant};

use fake_upstream::{Behaviour, FakeUpstream, Flavor};
use gateway_support::{Serve, chat_body, post};

/// The per-attempt timeout in the policy: the issue's 30 s, scaled down.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

/// Slack for process scheduling on a shared two-core machine.
const SLACK: Duration = Duration::from_secs(2);

const CHAT: &str = "/v1/chat/completions";

fn policy(primary: &str, secondary: &str, timeout: Duration, workload_extra: &str) -> String {
    let timeout = timeout.as_secs();
    // `continue` needs a fallback that accepts a prefill; the others do not
    // say so, so nothing is ever sent one.
    let prefill = if workload_extra.contains("continue") && !workload_extra.contains("# no prefill") {
        ", prefill"
    } else {
        ""
    };
    format!(
        r#"
provider primary {{
  adapter openai_compatible
  base_url "{primary}"
  key env("ROUTEC_TEST_PROVIDER_KEY")
  tier paid
  data private
  model m1 {{
    price $1/M in, $2/M out
    context 128k
    max_output 8k
    supports tools, json_schema, stream
  }}
}}

provider secondary {{
  adapter openai_compatible
  base_url "{secondary}"
  key env("ROUTEC_TEST_PROVIDER_KEY")
  tier paid
  data private
  model m2 {{
    price $2/M in, $4/M out
    context 128k
    max_output 8k
    supports tools, json_schema, stream{prefill}
  }}
}}

workload chat {{
  task chat
  data public
  max_tokens 1000
  {workload_extra}
  route fallback [
    primary/m1
    secondary/m2
  ] on rate_limited, overloaded, server_error, timeout({timeout}s), connection_error, context_length retry 2
    timeouts idle {timeout}s
}}
"#
    )
}

/// A primary and a secondary fake behind a running gateway.
struct Scenario {
    primary: FakeUpstream,
    secondary: FakeUpstream,
    gw: Serve,
    _dir: tempfile::TempDir,
}

impl Scenario {
    async fn start(name: &str) -> Scenario {
        Self::start_with(name, ATTEMPT_TIMEOUT).await
    }

    /// With another per-attempt timeout.
    async fn start_with(name: &str, timeout: Duration) -> Scenario {
        Self::start_serving(name, timeout, &[]).await
    }

    /// With more `routec serve` flags.
    async fn start_serving(name: &str, timeout: Duration, flags: &[&str]) -> Scenario {
        Self::start_custom(name, timeout, flags, "").await
    }

    /// With more `routec serve` flags and more workload properties.
    async fn start_custom(name: &str, timeout: Duration, flags: &[&str], workload_extra: &str) -> Scenario {
        let primary = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
        let secondary = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy.route");
        std::fs::write(
            &path,
            policy(&primary.base_url(), &secondary.base_url(), timeout, workload_extra),
        )
        .unwrap();
        let mut args = vec!["--policy", path.to_str().unwrap()];
        args.extend_from_slice(flags);
        let gw = Serve::start(name, &args, "info").await;
        Scenario {
            primary,
            secondary,
            gw,
            _dir: dir,
        }
    }

    /// Upstream calls so far: (primary, secondary).
    fn calls(&self) -> (u64, u64) {
        (self.primary.calls(), self.secondary.calls())
    }

    /// One non-streamed call, bounded in time; the answer and how long it took.
    async fn complete(&self) -> (gateway_support::Answer, Duration) {
        let started = Instant::now();
        let answer = tokio::time::timeout(
            Duration::from_secs(30),
            post(&self.gw.base, CHAT, chat_body("chat"), &[]),
        )
        .await
        .unwrap_or_else(|_| panic!("no answer within 30 s; log:\n{}", self.gw.log_text()));
        (answer, started.elapsed())
    }

    /// One streamed call, read to its end, bounded in time.
    async fn stream(&self) -> (Streamed, Duration) {
        let body = serde_json::json!({
            "model": "chat",
            "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "Say hi"}],
        })
        .to_string();
        let started = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(30), post(&self.gw.base, CHAT, body, &[]))
            .await
            .unwrap_or_else(|_| panic!("stream did not end within 30 s; log:\n{}", self.gw.log_text()));
        (Streamed::parse(answer), started.elapsed())
    }
}

/// A streamed answer, read whole.
#[derive(Debug)]
struct Streamed {
    status: u16,
    target: Option<String>,
    text: String,
    /// Whether `data: [DONE]` ended it.
    done: bool,
    /// Whether a usage chunk was sent.
    usage: bool,
    /// The code of an error event, if one ended the stream.
    error: Option<String>,
    raw: String,
}

impl Streamed {
    fn parse(a: gateway_support::Answer) -> Streamed {
        let mut s = Streamed {
            status: a.status,
            target: a.header("x-routec-target").map(str::to_owned),
            text: String::new(),
            done: false,
            usage: false,
            error: None,
            raw: a.body.clone(),
        };
        for data in a.body.split("\n\n").filter_map(|e| e.trim().strip_prefix("data: ")) {
            if data == "[DONE]" {
                s.done = true;
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
            if let Some(code) = v["error"]["code"].as_str() {
                s.error = Some(code.to_owned());
            }
            if v["usage"].is_object() {
                s.usage = true;
            }
            if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
                s.text.push_str(t);
            }
        }
        s
    }

    fn assert_complete(&self, target: &str) {
        assert_eq!(self.status, 200, "{}", self.raw);
        assert!(self.target.as_deref().is_some_and(|t| t.contains(target)), "{self:?}");
        assert_eq!(self.text, "Hello! How can I assist you today?", "{}", self.raw);
        assert!(self.usage, "no usage chunk: {}", self.raw);
        assert!(self.done && self.error.is_none(), "{}", self.raw);
    }

    /// An explicit error: an error event, never `[DONE]`, never a short success.
    fn assert_clean_error(&self) {
        assert_eq!(self.status, 200, "the stream had started: {}", self.raw);
        assert!(self.error.is_some(), "no error event: {}", self.raw);
        assert!(!self.done, "a broken stream ended with [DONE]: {}", self.raw);
    }
}

/// Rescued: a 200 with the fallback's (or, named, the primary's) answer.
fn assert_rescued(a: &gateway_support::Answer, by: &str) {
    assert_eq!(a.status, 200, "{}", a.body);
    let target = a.header("x-routec-target").unwrap_or_default();
    assert!(target.contains(by), "answered by `{target}`, not `{by}`");
    assert_eq!(
        a.json()["choices"][0]["message"]["content"],
        "Hello! How can I assist you today?"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_with_a_long_retry_after_goes_to_the_fallback_at_once() {
    let s = Scenario::start("429-retry-after").await;
    s.primary.push(Behaviour::rate_limited("60"));
    let (a, took) = s.complete().await;
    assert_rescued(&a, "secondary");
    assert_eq!(s.calls(), (1, 1));
    assert!(took < SLACK, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_without_retry_after_goes_to_the_fallback_at_once() {
    let s = Scenario::start("429").await;
    s.primary.push(Behaviour::error(429));
    let (a, took) = s.complete().await;
    assert_rescued(&a, "secondary");
    assert_eq!(s.calls(), (1, 1));
    assert!(took < SLACK, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_with_a_short_retry_after_is_waited_out_on_the_same_target() {
    let s = Scenario::start("429-short").await;
    s.primary.push(Behaviour::rate_limited("1"));
    let (a, took) = s.complete().await;
    assert_rescued(&a, "primary");
    assert_eq!(s.calls(), (2, 0));
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(1) + SLACK,
        "took {took:?}"
    );
}

/// The threshold is the operator's: with `--retry-after-wait-ms 0` even a
/// one-second Retry-After moves on to the fallback at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_after_threshold_is_settable() {
    let s = Scenario::start_serving("429-threshold", ATTEMPT_TIMEOUT, &["--retry-after-wait-ms", "0"]).await;
    s.primary.push(Behaviour::rate_limited("1"));
    let (a, took) = s.complete().await;
    assert_rescued(&a, "secondary");
    assert_eq!(s.calls(), (1, 1));
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

/// With `--no-breaker`, a primary failing every call is still tried first
/// on every call (and each call is still rescued by the fallback).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_can_be_switched_off() {
    let s = Scenario::start_serving("no-breaker", ATTEMPT_TIMEOUT, &["--no-breaker"]).await;
    s.primary.set_default(Behaviour::error(503));
    for _ in 0..4 {
        let (a, _) = s.complete().await;
        assert_rescued(&a, "secondary");
    }
    let (primary, secondary) = s.calls();
    assert_eq!(secondary, 4);
    // Three tries per call (`retry 2`), never ejected: twelve.
    assert_eq!(primary, 12, "the primary was skipped although the breaker is off");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_once_is_retried_on_the_same_target() {
    let s = Scenario::start("500-once").await;
    s.primary.push(Behaviour::error(500));
    let (a, took) = s.complete().await;
    assert_rescued(&a, "primary");
    assert_eq!(s.calls(), (2, 0));
    assert!(took < SLACK, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_503_is_rescued_by_the_fallback() {
    let s = Scenario::start("503").await;
    s.primary.set_default(Behaviour::error(503));
    let (a, took) = s.complete().await;
    assert_rescued(&a, "secondary");
    let (primary, secondary) = s.calls();
    // Today: 1 call and 2 retries on the primary.
    assert!((1..=3).contains(&primary), "primary called {primary} times");
    assert_eq!(secondary, 1);
    assert!(took < Duration::from_secs(3) + SLACK, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_before_headers_is_rescued() {
    let s = Scenario::start("reset").await;
    s.primary.set_default(Behaviour::Reset);
    let (a, took) = s.complete().await;
    assert_rescued(&a, "secondary");
    let (primary, secondary) = s.calls();
    assert!((1..=3).contains(&primary), "primary called {primary} times");
    assert_eq!(secondary, 1);
    assert!(took < Duration::from_secs(3) + SLACK, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_primary_is_rescued() {
    let s = Scenario::start("hang").await;
    s.primary.set_default(Behaviour::Hang);
    let (a, took) = s.complete().await;
    assert_rescued(&a, "secondary");
    let (primary, secondary) = s.calls();
    // Today the timeout is retried twice: three silent attempts.
    assert!((1..=3).contains(&primary), "primary called {primary} times");
    assert_eq!(secondary, 1);
    assert!(took < 3 * ATTEMPT_TIMEOUT + SLACK, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_primary_is_rescued_within_one_first_token_timeout() {
    let s = Scenario::start("hang-fast").await;
    s.primary.set_default(Behaviour::Hang);
    let (a, took) = s.complete().await;
    assert_rescued(&a, "secondary");
    assert_eq!(s.calls(), (1, 1));
    assert!(took < ATTEMPT_TIMEOUT + SLACK, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_first_token_is_rescued() {
    let s = Scenario::start("slow-first-token").await;
    s.primary.set_default(Behaviour::SlowFirstToken { delay_ms: 5_000 });
    let (out, took) = s.stream().await;
    out.assert_complete("secondary");
    let (primary, secondary) = s.calls();
    assert!((1..=3).contains(&primary), "primary called {primary} times");
    assert_eq!(secondary, 1);
    assert!(took < 3 * ATTEMPT_TIMEOUT + SLACK, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_first_token_is_rescued_within_one_first_token_timeout() {
    let s = Scenario::start("slow-first-token-fast").await;
    s.primary.set_default(Behaviour::SlowFirstToken { delay_ms: 5_000 });
    let (out, took) = s.stream().await;
    out.assert_complete("secondary");
    assert_eq!(s.calls(), (1, 1));
    assert!(took < ATTEMPT_TIMEOUT + SLACK, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_mid_answer_ends_with_an_explicit_error() {
    let s = Scenario::start("cut").await;
    s.primary.push(Behaviour::CutStream { abort: true });
    let (out, took) = s.stream().await;
    out.assert_clean_error();
    assert!(!out.text.is_empty(), "the cut came after the first text: {}", out.raw);
    // `off`: no retry or fallback once the first event reached the client.
    assert_eq!(s.calls(), (1, 0));
    assert!(took < SLACK, "took {took:?}");
}

/// `stream_recovery buffer`: the answer is held until the upstream
/// completes, so a stream cut mid-answer falls back and the client reads
/// the fallback's whole answer, with nothing of the cut one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_buffer_a_stream_cut_mid_answer_is_rescued() {
    let s = Scenario::start_custom("cut-buffer", ATTEMPT_TIMEOUT, &[], "stream_recovery buffer").await;
    // Every stream of the primary is cut: its two retries (a cut body is a
    // malformed answer, retried) are cut too, then the fallback answers.
    s.primary.set_default(Behaviour::CutStream { abort: true });
    let (out, took) = s.stream().await;
    out.assert_complete("secondary");
    assert_eq!(s.calls(), (3, 1));
    assert!(took < SLACK, "took {took:?}");
}

/// The same with a stream that stalls: the idle timeout ends the attempt,
/// and the fallback answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_buffer_a_stalled_stream_is_rescued() {
    let s = Scenario::start_custom("stall-buffer", ATTEMPT_TIMEOUT, &[], "stream_recovery buffer").await;
    s.primary.push(Behaviour::StallAfterEvents { events: 2 });
    let (out, took) = s.stream().await;
    out.assert_complete("secondary");
    assert_eq!(s.calls(), (1, 1));
    assert!(took < ATTEMPT_TIMEOUT + SLACK, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_stream_ends_with_an_explicit_error_after_the_idle_timeout() {
    let s = Scenario::start("stall").await;
    s.primary.push(Behaviour::StallAfterEvents { events: 2 });
    let (out, took) = s.stream().await;
    out.assert_clean_error();
    assert_eq!(s.calls(), (1, 0));
    assert!(
        took >= ATTEMPT_TIMEOUT && took < ATTEMPT_TIMEOUT + SLACK,
        "took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_chunk_is_skipped_and_the_answer_completes() {
    let s = Scenario::start("malformed").await;
    s.primary.push(Behaviour::MalformedEvents { count: 1 });
    let (out, took) = s.stream().await;
    out.assert_complete("primary");
    assert_eq!(s.calls(), (1, 0));
    assert!(took < SLACK, "took {took:?}");
    s.gw.wait_for_log("skipped a malformed stream event", Duration::from_secs(5))
        .await;
    gateway_support::assert_metric(
        &s.gw.base,
        r#"routec_stream_events_skipped_total{workload="chat",target="primary/m1"} 1"#,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_without_done_is_complete_after_its_finish_reason() {
    let s = Scenario::start("no-done").await;
    s.primary.push(Behaviour::NoDone);
    let (out, took) = s.stream().await;
    // Usage forwarded and `[DONE]` sent to the client.
    out.assert_complete("primary");
    assert_eq!(s.calls(), (1, 0));
    assert!(took < SLACK, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_length_exceeded_goes_to_the_fallback_without_a_retry() {
    let s = Scenario::start("context-length").await;
    s.primary.push(Behaviour::ContextLength);
    let (a, took) = s.complete().await;
    assert_rescued(&a, "secondary");
    assert_eq!(s.calls(), (1, 1));
    assert!(took < SLACK, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_filter_refusal_is_a_clean_error_not_routed_around() {
    let s = Scenario::start("content-filter").await;
    s.primary.push(Behaviour::ContentFilter);
    let (a, took) = s.complete().await;
    assert_eq!(a.status, 400, "{}", a.body);
    a.error_code();
    assert_eq!(s.calls(), (1, 0));
    assert!(took < SLACK, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_filter_refusal_carries_its_own_code() {
    let s = Scenario::start("content-filter-code").await;
    s.primary.push(Behaviour::ContentFilter);
    let (a, _) = s.complete().await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert_eq!(a.error_code(), "content_filtered", "{}", a.body);
    assert_eq!(
        a.json()["error"]["provider_code"],
        "content_policy_violation",
        "the provider's own code is kept: {}",
        a.body
    );
}

/// The trailing assistant messages (prefills) the secondary was sent.
fn prefills(s: &Scenario) -> Vec<String> {
    s.secondary
        .requests()
        .iter()
        .filter_map(|r| {
            let last = r.json()["messages"].as_array().and_then(|m| m.last()).cloned()?;
            (last["role"] == "assistant").then(|| last["content"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

/// `continue` with a fallback whose model does not declare `prefill`: no
/// prefill is sent anywhere, and the cut ends the stream explicitly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fallback_that_rejects_prefill_is_never_sent_one() {
    let s = Scenario::start_custom("prefill", ATTEMPT_TIMEOUT, &[], "stream_recovery continue # no prefill").await;
    s.primary.push(Behaviour::CutStream { abort: true });
    s.secondary.set_default(Behaviour::RejectPrefill);
    let (out, took) = s.stream().await;
    out.assert_clean_error();
    assert_eq!(prefills(&s), Vec::<String>::new());
    assert_eq!(s.calls(), (1, 0));
    assert!(took < SLACK, "took {took:?}");
}

/// `stream_recovery continue`: the primary's stream is cut mid-event; the
/// fallback is asked to continue from the text already sent and the client
/// reads one answer, nothing repeated or missing, ended by `[DONE]` with
/// usage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_continue_a_stream_cut_mid_answer_is_continued_by_the_fallback() {
    let s = Scenario::start_custom("cut-continue", ATTEMPT_TIMEOUT, &[], "stream_recovery continue").await;
    s.primary.push(Behaviour::CutStream { abort: true });
    s.secondary.set_default(Behaviour::ContinuePrefill);
    let (out, took) = s.stream().await;
    assert_eq!(out.status, 200, "{}", out.raw);
    assert_eq!(out.text, "Hello! How can I assist you today?", "{}", out.raw);
    assert!(out.done && out.error.is_none() && out.usage, "{}", out.raw);
    let sent = prefills(&s);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        !sent[0].is_empty() && out.text.starts_with(&sent[0]),
        "the prefill is the text already sent: {sent:?}"
    );
    assert_eq!(s.calls(), (1, 1));
    assert!(took < SLACK, "took {took:?}");
    gateway_support::assert_metric(
        &s.gw.base,
        "routec_streams_continued_total{workload=\"chat\",target=\"secondary/m2\"} 1",
    )
    .await;
}

/// The same with a stream that stalls after its first text: the idle
/// timeout ends the attempt, and the fallback continues it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_continue_a_stalled_stream_is_continued_by_the_fallback() {
    let s = Scenario::start_custom("stall-continue", ATTEMPT_TIMEOUT, &[], "stream_recovery continue").await;
    s.primary.push(Behaviour::StallAfterEvents { events: 2 });
    s.secondary.set_default(Behaviour::ContinuePrefill);
    let (out, took) = s.stream().await;
    assert_eq!(out.text, "Hello! How can I assist you today?", "{}", out.raw);
    assert!(out.done && out.error.is_none(), "{}", out.raw);
    assert_eq!(prefills(&s), vec!["Hello".to_owned()]);
    assert_eq!(s.calls(), (1, 1));
    assert!(took < ATTEMPT_TIMEOUT + SLACK, "took {took:?}");
}

/// A fallback that declares `prefill` but refuses it: the continuation
/// fails, and the stream ends with the explicit error, never a short
/// success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_continue_a_refused_prefill_ends_with_an_explicit_error() {
    let s = Scenario::start_custom("refused-continue", ATTEMPT_TIMEOUT, &[], "stream_recovery continue").await;
    s.primary.push(Behaviour::StallAfterEvents { events: 2 });
    s.secondary.set_default(Behaviour::RejectPrefill);
    let (out, took) = s.stream().await;
    out.assert_clean_error();
    assert_eq!(out.text, "Hello", "{}", out.raw);
    assert_eq!(prefills(&s), vec!["Hello".to_owned()]);
    assert_eq!(s.calls(), (1, 1));
    assert!(took < ATTEMPT_TIMEOUT + SLACK, "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_answer_is_not_fetched_twice() {
    // Reading 16 MiB in a debug build can take longer than a second.
    let s = Scenario::start_with("oversized", Duration::from_secs(20)).await;
    s.primary.push(Behaviour::Huge {
        bytes: 20 * 1024 * 1024,
    });
    let (a, took) = s.complete().await;
    assert_rescued(&a, "secondary");
    assert_eq!(s.calls(), (1, 1));
    assert!(took < Duration::from_secs(5) + SLACK, "took {took:?}");
}

/// Sends one call a second through a one-minute outage of the primary (the
/// issue's scenario), lifts it, and keeps sending: the primary must serve
/// again within 30 s. Traffic over time, not a wait for an event: a
/// breaker's recovery is measured in time, so this test takes 60 to 90 s
/// (it passes today: 75 s, the primary back within 30 s of its recovery).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_that_recovers_serves_again_within_30_seconds() {
    let s = Scenario::start("recovery").await;
    s.primary.set_default(Behaviour::error(503));
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    for _ in 0..60 {
        tick.tick().await;
        let (a, _) = s.complete().await;
        assert_rescued(&a, "secondary");
    }
    s.primary.set_default(Behaviour::Ok);
    let recovered = Instant::now();
    loop {
        tick.tick().await;
        let (a, _) = s.complete().await;
        assert_eq!(a.status, 200, "{}", a.body);
        if a.header("x-routec-target").is_some_and(|t| t.contains("primary")) {
            break;
        }
        assert!(
            recovered.elapsed() < Duration::from_secs(30),
            "the primary did not serve within 30 s of its recovery ({} outage calls to it)",
            s.primary.calls()
        );
    }
}
