//! OpenTelemetry traces end to end: `routec serve --otlp-endpoint` as a
//! separate process, fake providers behind it, and an OTLP/HTTP receiver
//! (`fake_upstream::otlp`) decoding what it exports. The first target
//! answers 500 and the fallback answers, so each request has one SERVER
//! span with two CLIENT attempt spans under it; a `traceparent` sent by the
//! client makes the request span a child of the client's span.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_support;

use std::time::Duration;

use fake_upstream::otlp::{OtlpReceiver, ReceivedSpan};
use fake_upstream::{Behaviour, FakeUpstream, Flavor};
use gateway_support::{Serve, post};
use serde_json::json;

/// The client's trace and span, as its `traceparent` names them.
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// Spans arrive within this, or the test fails saying what it waited for.
const WAIT: Duration = Duration::from_secs(10);

struct Setup {
    _dir: tempfile::TempDir,
    openai: FakeUpstream,
    claude: FakeUpstream,
    receiver: OtlpReceiver,
    gw: Serve,
}

/// Workload `chat`: `oai/mini` (OpenAI wire) falling back to
/// `anthro/sonnet` (Anthropic wire) on a server error.
async fn setup(name: &str) -> Setup {
    let openai = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let claude = FakeUpstream::start(Flavor::Anthropic).await.unwrap();
    let receiver = OtlpReceiver::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"
provider oai {{
  adapter openai
  base_url "{}"
  key env("ROUTEC_TEST_PROVIDER_KEY")
  tier paid
  data private
  model mini {{
    id "gpt-4o-mini"
    price $1/M in, $2/M out
    context 128k
    max_output 8k
    supports tools, stream
  }}
  model emb {{ id "text-embedding-3-small"; price $0.02/M in, $0/M out; supports embeddings }}
  model emb2 {{ id "text-embedding-3-large"; price $0.13/M in, $0/M out; supports embeddings }}
}}

provider anthro {{
  adapter anthropic
  base_url "{}"
  key env("ROUTEC_TEST_PROVIDER_KEY")
  tier paid
  data private
  model sonnet {{
    id "claude-sonnet-4-5"
    price $3/M in, $15/M out
    context 200k
    max_output 8k
    supports tools, stream
  }}
}}

workload chat {{
  task chat
  data public
  max_tokens 1000
  route fallback [
    oai/mini
    anthro/sonnet
  ] on server_error
}}

workload vectors {{
  data public
  route fallback [
    oai/emb
    oai/emb2
  ] on server_error
}}
"#,
        openai.base_url(),
        claude.base_url()
    );
    let policy = dir.path().join("policy.route");
    std::fs::write(&policy, text).unwrap();
    let endpoint = receiver.endpoint();
    let gw = Serve::start_with_env(
        name,
        &["--policy", policy.to_str().unwrap(), "--otlp-endpoint", &endpoint],
        "info",
        // Batches every 50 ms instead of 5 s.
        &[("OTEL_BSP_SCHEDULE_DELAY", "50")],
    )
    .await;
    Setup {
        _dir: dir,
        openai,
        claude,
        receiver,
        gw,
    }
}

/// The request span of `trace_id` and its children, once all have arrived.
async fn tree(receiver: &OtlpReceiver, trace_id: &str, children: usize) -> (ReceivedSpan, Vec<ReceivedSpan>) {
    let what = format!("a request span of trace {trace_id} with {children} attempt spans");
    let spans = receiver
        .wait_for(&what, WAIT, |spans| {
            let Some(root) = spans.iter().find(|s| s.trace_id == trace_id && s.kind == "server") else {
                return false;
            };
            spans.iter().filter(|s| s.parent_span_id == root.span_id).count() >= children
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let root = spans
        .iter()
        .find(|s| s.trace_id == trace_id && s.kind == "server")
        .unwrap()
        .clone();
    let mut kids: Vec<ReceivedSpan> = spans.into_iter().filter(|s| s.parent_span_id == root.span_id).collect();
    kids.sort_by_key(|s| s.start_unix_nano);
    (root, kids)
}

fn assert_attempts(root: &ReceivedSpan, kids: &[ReceivedSpan]) {
    assert_eq!(kids.len(), 2, "two attempts: {kids:#?}");
    for k in kids {
        assert_eq!(k.kind, "client", "{k:#?}");
        assert_eq!(k.trace_id, root.trace_id);
        assert_eq!(k.str_attr("gen_ai.operation.name"), Some("chat"));
        assert_eq!(k.str_attr("routec.workload"), Some("chat"));
        assert!(
            root.start_unix_nano <= k.start_unix_nano && k.end_unix_nano <= root.end_unix_nano,
            "an attempt inside its request: {root:#?} {k:#?}"
        );
    }
    let (failed, answered) = (&kids[0], &kids[1]);
    assert_eq!(failed.name, "chat mini");
    assert_eq!(failed.str_attr("routec.target"), Some("oai/mini"));
    assert_eq!(failed.str_attr("gen_ai.system"), Some("openai"));
    assert_eq!(failed.str_attr("gen_ai.request.model"), Some("mini"));
    assert_eq!(failed.str_attr("routec.attempt.outcome"), Some("server_error"));
    assert_eq!(failed.str_attr("error.type"), Some("server_error"));
    assert_eq!(failed.status_code, 2, "an error status");
    assert_eq!(
        failed.attr("gen_ai.usage.input_tokens"),
        None,
        "a failed attempt has no usage"
    );

    assert_eq!(answered.name, "chat sonnet");
    assert_eq!(answered.str_attr("routec.target"), Some("anthro/sonnet"));
    assert_eq!(answered.str_attr("gen_ai.system"), Some("anthropic"));
    assert_eq!(answered.str_attr("gen_ai.response.model"), Some("sonnet"));
    assert_eq!(answered.str_attr("routec.attempt.outcome"), Some("answered"));
    assert_eq!(answered.attr("error.type"), None);
    assert!(failed.end_unix_nano <= answered.start_unix_nano, "one after the other");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fallback_is_one_request_span_with_an_attempt_span_each() {
    let s = setup("otlp-whole").await;
    s.openai.push(Behaviour::error(500));
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let body = json!({"model": "chat", "messages": [{"role": "user", "content": "Say hi"}]}).to_string();
    let a = post(
        &s.gw.base,
        "/v1/chat/completions",
        body,
        &[("traceparent", traceparent.as_str())],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.header("x-routec-attempts"), Some("2"));
    assert_eq!((s.openai.calls(), s.claude.calls()), (1, 1));
    let decision = a.header("x-routec-decision-id").unwrap().to_owned();
    let policy_hash = a.header("x-routec-policy-hash").unwrap().to_owned();

    let (root, kids) = tree(&s.receiver, CLIENT_TRACE, 2).await;
    // The client's trace continues: same trace id, the client's span as parent.
    assert_eq!(root.parent_span_id, CLIENT_SPAN);
    assert_eq!(root.name, "chat chat");
    assert_eq!(root.service_name.as_deref(), Some("routec"));
    assert_eq!(root.str_attr("gen_ai.operation.name"), Some("chat"));
    assert_eq!(root.str_attr("gen_ai.system"), Some("anthropic"));
    assert_eq!(root.str_attr("gen_ai.request.model"), Some("chat"));
    assert_eq!(root.str_attr("gen_ai.response.model"), Some("sonnet"));
    // The fake Anthropic's whole answer: 2095 tokens in plus 1024 read from
    // its prompt cache (the adapter counts both as input), 503 out.
    assert_eq!(root.int_attr("gen_ai.usage.input_tokens"), Some(3119));
    assert_eq!(root.int_attr("gen_ai.usage.output_tokens"), Some(503));
    assert_eq!(root.str_attr("routec.workload"), Some("chat"));
    assert_eq!(root.str_attr("routec.target"), Some("anthro/sonnet"));
    assert_eq!(root.str_attr("routec.decision_id"), Some(decision.as_str()));
    assert_eq!(root.str_attr("routec.policy_hash"), Some(policy_hash.as_str()));
    assert_eq!(root.int_attr("http.response.status_code"), Some(200));
    assert_eq!(root.int_attr("routec.attempts"), Some(2));
    // $3/M in, $15/M out: 3119 × 3 + 503 × 15 = 16,902 µ$.
    let cost = root.attr("routec.cost_usd").and_then(|v| v.as_f64()).unwrap();
    assert!((cost - 0.016_902).abs() < 1e-9, "cost {cost}");
    assert_eq!(root.attr("error.type"), None);
    assert_attempts(&root, &kids);
    let answered = &kids[1];
    assert_eq!(answered.int_attr("gen_ai.usage.input_tokens"), Some(3119));
    assert_eq!(answered.int_attr("gen_ai.usage.output_tokens"), Some(503));

    // Refused before routing: a request span all the same, and no attempts.
    let other_trace = "0af7651916cd43dd8448eb211c80319c";
    let traceparent = format!("00-{other_trace}-b7ad6b7169203331-01");
    let body = json!({"model": "no-such", "messages": [{"role": "user", "content": "Say hi"}]}).to_string();
    let a = post(
        &s.gw.base,
        "/v1/chat/completions",
        body,
        &[("traceparent", traceparent.as_str())],
    )
    .await;
    assert_eq!(a.status, 404, "{}", a.body);
    let (root, kids) = tree(&s.receiver, other_trace, 0).await;
    assert!(kids.is_empty(), "{kids:#?}");
    assert_eq!(root.str_attr("gen_ai.request.model"), Some("no-such"));
    assert_eq!(root.str_attr("error.type"), Some("unknown_workload"));
    assert_eq!(root.int_attr("http.response.status_code"), Some(404));
    assert_eq!(root.status_code, 0, "a client's mistake is not the server's error");
    assert_eq!(s.receiver.rejected(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embeddings_call_is_traced_as_the_embeddings_operation() {
    let s = setup("otlp-embeddings").await;
    s.openai.push(Behaviour::error(500));
    let trace = "5e8a5c1d2b3f4a6978c0d1e2f3a4b5c6";
    let traceparent = format!("00-{trace}-{CLIENT_SPAN}-01");
    let body = json!({"model": "vectors", "input": ["hello world", "abc"]}).to_string();
    let a = post(
        &s.gw.base,
        "/v1/embeddings",
        body,
        &[("traceparent", traceparent.as_str())],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.header("x-routec-attempts"), Some("2"));
    let (root, kids) = tree(&s.receiver, trace, 2).await;
    assert_eq!(root.name, "embeddings vectors");
    assert_eq!(root.str_attr("gen_ai.operation.name"), Some("embeddings"));
    assert_eq!(root.str_attr("gen_ai.system"), Some("openai"));
    assert_eq!(root.str_attr("gen_ai.response.model"), Some("emb2"));
    // The fake counts one token per word: "hello world", "abc".
    assert_eq!(root.int_attr("gen_ai.usage.input_tokens"), Some(3));
    assert_eq!(root.int_attr("gen_ai.usage.output_tokens"), Some(0));
    let names: Vec<&str> = kids.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["embeddings emb", "embeddings emb2"]);
    let outcomes: Vec<Option<&str>> = kids.iter().map(|k| k.str_attr("routec.attempt.outcome")).collect();
    assert_eq!(outcomes, [Some("server_error"), Some("answered")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_answer_ends_its_request_span_when_the_stream_ends() {
    let s = setup("otlp-stream").await;
    s.openai.push(Behaviour::error(500));
    // Anthropic's wire in front; no `traceparent`, so a trace of its own.
    let body = json!({
        "model": "chat", "max_tokens": 100, "stream": true,
        "messages": [{"role": "user", "content": "Say hi"}],
    })
    .to_string();
    let a = post(&s.gw.base, "/v1/messages", body, &[]).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("event: message_stop"), "a whole stream: {}", a.body);
    let decision = a.header("x-routec-decision-id").unwrap().to_owned();

    let spans = s
        .receiver
        .wait_for("the streamed request's span", WAIT, |spans| {
            spans
                .iter()
                .any(|sp| sp.kind == "server" && sp.str_attr("routec.decision_id") == Some(decision.as_str()))
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let root = spans
        .iter()
        .find(|sp| sp.kind == "server" && sp.str_attr("routec.decision_id") == Some(decision.as_str()))
        .unwrap();
    assert_eq!(root.parent_span_id, "", "a root span without a traceparent");
    let (root, kids) = tree(&s.receiver, &root.trace_id.clone(), 2).await;
    assert_eq!(root.str_attr("gen_ai.response.model"), Some("sonnet"));
    // The fake Anthropic stream's usage: 25 in (message_start), 15 out (message_delta).
    assert_eq!(root.int_attr("gen_ai.usage.input_tokens"), Some(25));
    assert_eq!(root.int_attr("gen_ai.usage.output_tokens"), Some(15));
    assert_eq!(root.int_attr("http.response.status_code"), Some(200));
    assert_attempts(&root, &kids);
    // The streaming attempt lasts as long as its stream: to the request's end.
    assert_eq!(kids[1].end_unix_nano, root.end_unix_nano);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_costs_requests_nothing() {
    let fake = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    // A port nothing listens on: bound, then closed.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.route");
    std::fs::write(&policy, gateway_support::policy(&fake.base_url(), &fake.base_url())).unwrap();
    let endpoint = format!("http://{closed}");
    let gw = Serve::start_with_env(
        "otlp-down",
        &["--policy", policy.to_str().unwrap(), "--otlp-endpoint", &endpoint],
        "info",
        &[("OTEL_BSP_SCHEDULE_DELAY", "10")],
    )
    .await;
    for _ in 0..3 {
        let a = post(
            &gw.base,
            "/v1/chat/completions",
            gateway_support::chat_body("chat"),
            &[],
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    assert_eq!(fake.calls(), 3);
    // Shutdown tries a last export, fails, and exits all the same.
    let mut gw = gw;
    gw.signal("TERM");
    assert_eq!(
        gw.wait_exit(Duration::from_secs(10)),
        Some(0),
        "a clean exit within 10 s"
    );
}
