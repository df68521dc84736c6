//! One conformance suite, run against every HTTP adapter behind a fake
//! upstream that speaks its real wire format on 127.0.0.1.
//!
//! Each case is written once, generically; the `conformance!` macro at the
//! bottom instantiates it per adapter so a failure names both.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fake_upstream::{Behaviour, FakeUpstream, Flavor};
use futures::StreamExt;
use providers::{
    AdapterConfig, AdapterKind, ApiKey, ChatRequest, ContentPart, ErrorClass, FinishReason, Provider, ProviderError,
    ResponseFormat, StreamEvent, TimeoutKind, Timeouts, Tool, ToolChoice, adapter_for, collect_stream,
};

const CANARY: &str = "sk-CANARY-7f3a9c2e41d8";

/// One adapter under test: its fake's flavor, its kind and a model id.
#[derive(Clone, Copy)]
struct Subject {
    flavor: Flavor,
    model: &'static str,
    /// The text its success fixture answers with.
    text: &'static str,
    /// The text its streaming fixture answers with.
    stream_text: &'static str,
}

fn kind(flavor: Flavor) -> AdapterKind {
    match flavor {
        Flavor::OpenAi => AdapterKind::OpenAi,
        Flavor::Anthropic => AdapterKind::Anthropic,
        Flavor::Gemini => AdapterKind::Gemini,
    }
}

const OPENAI: Subject = Subject {
    flavor: Flavor::OpenAi,
    model: "gpt-4o-mini",
    text: "Hello! How can I assist you today?",
    stream_text: "Hello! How can I assist you today?",
};
const ANTHROPIC: Subject = Subject {
    flavor: Flavor::Anthropic,
    model: "claude-sonnet-4-5",
    text: "Hi! My name is Claude.",
    stream_text: "Hello!",
};
const GEMINI: Subject = Subject {
    flavor: Flavor::Gemini,
    model: "gemini-2.5-flash",
    text: "AI learns patterns from data to make predictions or decisions.",
    stream_text: "AI learns patterns from data.",
};

/// Short real timeouts: a timeout firing is the behaviour under test, and
/// nothing here measures elapsed time.
fn short_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_millis(300),
        first_byte: Duration::from_millis(300),
        idle: Duration::from_millis(300),
        total: None,
    }
}

async fn setup(s: Subject) -> (FakeUpstream, Arc<dyn Provider>) {
    let fake = FakeUpstream::start(s.flavor).await.unwrap();
    let mut config = AdapterConfig::new("subject");
    config.base_url = Some(fake.base_url());
    config.api_key = ApiKey::new(CANARY);
    config.timeouts = short_timeouts();
    let provider = adapter_for(&kind(s.flavor), config).unwrap();
    (fake, provider)
}

/// Every error leaving an adapter is checked for the key.
fn no_key(e: ProviderError) -> ProviderError {
    let shown = format!("{e} {e:?} {}", e.message());
    assert!(!shown.contains(CANARY), "key leaked: {shown}");
    e
}

async fn complete_err(p: &Arc<dyn Provider>, s: Subject, req: &ChatRequest) -> ProviderError {
    no_key(p.complete(s.model, req).await.expect_err("expected an error"))
}

/// The last item of a stream, which must be an error; panics on a `Done`.
async fn stream_err(p: &Arc<dyn Provider>, s: Subject) -> ProviderError {
    let mut stream = match p.stream(s.model, &ChatRequest::user("hi")).await {
        Ok(stream) => stream,
        Err(e) => return no_key(e),
    };
    // Bounded: fixtures have a handful of events.
    for _ in 0..1000 {
        match stream.next().await {
            Some(Ok(StreamEvent::Done { .. })) => panic!("stream ended successfully"),
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                assert!(stream.next().await.is_none(), "items after an error");
                return no_key(e);
            }
            None => panic!("stream ended without an error or done"),
        }
    }
    panic!("stream did not end");
}

fn weather_tool() -> Tool {
    Tool {
        name: "get_weather".into(),
        description: Some("Current weather".into()),
        parameters: serde_json::json!({"type": "object", "properties": {"location": {"type": "string"}}}),
    }
}

async fn success(s: Subject) {
    let (fake, p) = setup(s).await;
    let r = p.complete(s.model, &ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.content, s.text);
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert!(r.usage.input_tokens > 0 && r.usage.output_tokens > 0);
    assert_eq!(fake.calls(), 1);
    let sent = fake.last_request().unwrap();
    // The key travels in a header only, never in the URL.
    assert!(!sent.path_and_query.contains(CANARY));
    let auth = sent
        .header("authorization")
        .or(sent.header("x-api-key"))
        .or(sent.header("x-goog-api-key"))
        .unwrap();
    assert!(auth.contains(CANARY));
}

async fn streaming(s: Subject) {
    let (fake, p) = setup(s).await;
    let events: Vec<StreamEvent> = p
        .stream(s.model, &ChatRequest::user("hi"))
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    let n = events.len();
    assert!(matches!(
        events[n - 1],
        StreamEvent::Done {
            finish_reason: FinishReason::Stop,
            skipped_events: 0
        }
    ));
    assert!(matches!(events[n - 2], StreamEvent::Usage(u) if u.input_tokens > 0 && u.output_tokens > 0));
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, s.stream_text);
    let sent = fake.last_request().unwrap();
    match s.flavor {
        Flavor::OpenAi => {
            assert_eq!(sent.json()["stream"], true);
            assert_eq!(sent.json()["stream_options"]["include_usage"], true);
        }
        Flavor::Anthropic => assert_eq!(sent.json()["stream"], true),
        Flavor::Gemini => assert!(sent.path_and_query.ends_with(":streamGenerateContent?alt=sse")),
    }
}

async fn tools(s: Subject) {
    let (fake, p) = setup(s).await;
    fake.push(Behaviour::ToolCall);
    let mut req = ChatRequest::user("weather in Boston?");
    req.tools = vec![weather_tool()];
    req.tool_choice = Some(ToolChoice::Auto);
    let r = p.complete(s.model, &req).await.unwrap();
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    let call = &r.tool_calls[0];
    assert!(!call.id.is_empty());
    assert!(call.name.starts_with("get_"));
    let args: serde_json::Value = serde_json::from_str(&call.arguments).unwrap();
    assert!(args.is_object());
    let body = fake.last_request().unwrap().json();
    match s.flavor {
        Flavor::OpenAi => assert_eq!(body["tools"][0]["function"]["name"], "get_weather"),
        Flavor::Anthropic => assert_eq!(body["tools"][0]["input_schema"]["type"], "object"),
        Flavor::Gemini => assert_eq!(body["tools"][0]["functionDeclarations"][0]["name"], "get_weather"),
    }
}

async fn streaming_tools(s: Subject) {
    let (fake, p) = setup(s).await;
    fake.push(Behaviour::ToolCall);
    let mut req = ChatRequest::user("weather?");
    req.tools = vec![weather_tool()];
    let r = collect_stream(p.stream(s.model, &req).await.unwrap(), s.model)
        .await
        .unwrap();
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(r.tool_calls.len(), 1);
    let args: serde_json::Value = serde_json::from_str(&r.tool_calls[0].arguments).unwrap();
    assert!(args.as_object().is_some_and(|o| o.contains_key("location")));
}

async fn json_mode(s: Subject) {
    let (fake, p) = setup(s).await;
    fake.push(Behaviour::Json);
    let mut req = ChatRequest::user("extract the event");
    req.response_format = Some(ResponseFormat::JsonSchema {
        name: "event".into(),
        schema: serde_json::json!({"type": "object", "properties": {"name": {"type": "string"}}}),
        strict: true,
    });
    let r = p.complete(s.model, &req).await.unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&r.content).unwrap();
    assert_eq!(parsed["name"], "science fair");
    assert!(r.tool_calls.is_empty());
    assert_eq!(r.finish_reason, FinishReason::Stop);
    let body = fake.last_request().unwrap().json();
    match s.flavor {
        Flavor::OpenAi => assert_eq!(body["response_format"]["type"], "json_schema"),
        Flavor::Anthropic => assert_eq!(body["tool_choice"]["name"], "json_response"),
        Flavor::Gemini => assert_eq!(body["generationConfig"]["responseMimeType"], "application/json"),
    }
}

async fn images(s: Subject) {
    let (fake, p) = setup(s).await;
    let mut req = ChatRequest::user("what is in these pictures?");
    req.messages[0].content.push(ContentPart::Image {
        url: "data:image/png;base64,iVBORw0KGgo=".into(),
        detail: None,
    });
    req.messages[0].content.push(ContentPart::Image {
        url: "https://example.com/cat.jpg".into(),
        detail: Some("low".into()),
    });
    assert!(p.capabilities(s.model).vision);
    p.complete(s.model, &req).await.unwrap();
    let body = fake.last_request().unwrap().json();
    match s.flavor {
        Flavor::OpenAi => {
            let parts = &body["messages"][0]["content"];
            assert_eq!(parts[1]["image_url"]["url"], "data:image/png;base64,iVBORw0KGgo=");
            assert_eq!(parts[2]["image_url"]["detail"], "low");
        }
        Flavor::Anthropic => {
            let parts = &body["messages"][0]["content"];
            assert_eq!(parts[1]["source"]["type"], "base64");
            assert_eq!(parts[1]["source"]["media_type"], "image/png");
            assert_eq!(parts[2]["source"]["url"], "https://example.com/cat.jpg");
        }
        Flavor::Gemini => {
            let parts = &body["contents"][0]["parts"];
            assert_eq!(parts[1]["inlineData"]["mimeType"], "image/png");
            assert_eq!(parts[2]["fileData"]["fileUri"], "https://example.com/cat.jpg");
        }
    }
}

async fn error_statuses(s: Subject) {
    let (fake, p) = setup(s).await;
    let mut cases = vec![
        (400, ErrorClass::BadRequest),
        (401, ErrorClass::Auth),
        (403, ErrorClass::Auth),
        (404, ErrorClass::BadRequest),
        (429, ErrorClass::RateLimited),
        (500, ErrorClass::ServerError),
        (502, ErrorClass::ServerError),
        (503, ErrorClass::Overloaded),
    ];
    if s.flavor == Flavor::Anthropic {
        cases.push((529, ErrorClass::Overloaded));
    }
    for (status, class) in cases {
        fake.push(Behaviour::error(status));
        let e = complete_err(&p, s, &ChatRequest::user("hi")).await;
        assert_eq!((e.status(), e.class()), (Some(status), class), "status {status}");
        assert!(!e.message().is_empty());
        // The same on the streaming path, before the first byte.
        fake.push(Behaviour::error(status));
        let e = stream_err(&p, s).await;
        assert_eq!(e.class(), class, "stream status {status}");
    }
}

async fn retry_after_forms(s: Subject) {
    let (fake, p) = setup(s).await;
    fake.push(Behaviour::rate_limited("7"));
    let e = complete_err(&p, s, &ChatRequest::user("hi")).await;
    assert_eq!(e.class(), ErrorClass::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));

    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
    fake.push(Behaviour::rate_limited(&date));
    let e = complete_err(&p, s, &ChatRequest::user("hi")).await;
    let wait = e.retry_after().unwrap();
    assert!(
        wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
        "{wait:?}"
    );

    fake.push(Behaviour::Error {
        status: 429,
        retry_after: Some("2".into()),
        retry_after_ms: Some("1500".into()),
    });
    let e = complete_err(&p, s, &ChatRequest::user("hi")).await;
    assert_eq!(e.retry_after(), Some(Duration::from_millis(1500)));
}

async fn provider_specific_errors(s: Subject) {
    let (fake, p) = setup(s).await;
    let (context, policy, auth): (&str, Option<(&str, u16)>, (&str, u16)) = match s.flavor {
        Flavor::OpenAi => (
            "error_400_context_length.json",
            Some(("error_400_content_policy.json", 400)),
            ("error_401_echoes_key.json", 401),
        ),
        Flavor::Anthropic => (
            "error_400_prompt_too_long.json",
            None,
            ("error_401_authentication.json", 401),
        ),
        Flavor::Gemini => (
            "error_400_token_count.json",
            Some(("blocked_prompt.json", 200)),
            ("error_400_api_key_invalid.json", 400),
        ),
    };
    fake.push(Behaviour::fixture(context, 400));
    let e = complete_err(&p, s, &ChatRequest::user("hi")).await;
    assert_eq!(e.class(), ErrorClass::ContextLengthExceeded);
    assert!(e.can_fallback() && !e.can_retry());
    if let Some((name, status)) = policy {
        fake.push(Behaviour::fixture(name, status));
        assert_eq!(
            complete_err(&p, s, &ChatRequest::user("hi")).await.class(),
            ErrorClass::ContentPolicy
        );
    }
    fake.push(Behaviour::fixture(auth.0, auth.1));
    let e = complete_err(&p, s, &ChatRequest::user("hi")).await;
    assert_eq!(e.class(), ErrorClass::Auth);
    assert!(!e.can_retry());
    if s.flavor == Flavor::OpenAi {
        // That fixture quotes the key it was sent; the error shows it redacted.
        assert!(e.message().contains("Incorrect API key provided: ***"), "{e}");
    }
}

async fn first_byte_timeout(s: Subject) {
    let (fake, p) = setup(s).await;
    fake.push(Behaviour::Hang);
    let e = complete_err(&p, s, &ChatRequest::user("hi")).await;
    assert_eq!(e.class(), ErrorClass::Timeout(TimeoutKind::FirstByte));
    fake.push(Behaviour::Hang);
    assert_eq!(
        stream_err(&p, s).await.class(),
        ErrorClass::Timeout(TimeoutKind::FirstByte)
    );
}

async fn idle_timeout(s: Subject) {
    let (fake, p) = setup(s).await;
    fake.push(Behaviour::StallAfter { bytes: 40 });
    let e = complete_err(&p, s, &ChatRequest::user("hi")).await;
    assert_eq!(e.class(), ErrorClass::Timeout(TimeoutKind::Idle));
    fake.push(Behaviour::StallAfter { bytes: 40 });
    assert_eq!(stream_err(&p, s).await.class(), ErrorClass::Timeout(TimeoutKind::Idle));
}

async fn slow_but_steady_stream_succeeds(s: Subject) {
    let (fake, p) = setup(s).await;
    // Gaps far below the idle timeout: slow is not stalled.
    fake.push(Behaviour::Trickle {
        chunk_bytes: 64,
        interval_ms: 5,
    });
    let r = collect_stream(p.stream(s.model, &ChatRequest::user("hi")).await.unwrap(), s.model)
        .await
        .unwrap();
    assert_eq!(r.content, s.stream_text);
}

async fn total_timeout(s: Subject) {
    let fake = FakeUpstream::start(s.flavor).await.unwrap();
    let mut config = AdapterConfig::new("subject");
    config.base_url = Some(fake.base_url());
    config.api_key = ApiKey::new(CANARY);
    config.timeouts = Timeouts {
        total: Some(Duration::from_millis(150)),
        ..short_timeouts()
    };
    let p = adapter_for(&kind(s.flavor), config).unwrap();
    fake.push(Behaviour::Hang);
    let e = complete_err(&p, s, &ChatRequest::user("hi")).await;
    assert_eq!(e.class(), ErrorClass::Timeout(TimeoutKind::Total));
}

async fn cut_streams(s: Subject) {
    let (fake, p) = setup(s).await;
    fake.push(Behaviour::CutStream { abort: false });
    assert_eq!(stream_err(&p, s).await.class(), ErrorClass::MalformedResponse);
    fake.push(Behaviour::CutStream { abort: true });
    assert_eq!(stream_err(&p, s).await.class(), ErrorClass::Connection);
}

async fn garbage_bodies(s: Subject) {
    let (fake, p) = setup(s).await;
    let truncated = &fake_upstream::fixture(s.flavor, success_fixture(s.flavor)).unwrap()[..60];
    for behaviour in [
        Behaviour::raw(200, "application/json", "this is not json"),
        Behaviour::raw(200, "text/html", "<html><body>Bad gateway</body></html>"),
        Behaviour::raw(200, "application/json", truncated),
        Behaviour::raw(200, "application/json", "{\"unexpected\": true}"),
        Behaviour::raw(200, "application/json", ""),
    ] {
        fake.push(behaviour.clone());
        let e = complete_err(&p, s, &ChatRequest::user("hi")).await;
        assert_eq!(e.class(), ErrorClass::MalformedResponse, "{behaviour:?}");
    }
    // A stream request answered with JSON instead of events.
    fake.push(Behaviour::raw(200, "application/json", "{}"));
    assert_eq!(stream_err(&p, s).await.class(), ErrorClass::MalformedResponse);
    // An event stream whose events are not JSON.
    fake.push(Behaviour::raw(200, "text/event-stream", "data: {not json\n\n"));
    assert_eq!(stream_err(&p, s).await.class(), ErrorClass::MalformedResponse);
}

fn success_fixture(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::OpenAi => "chat_ok.json",
        Flavor::Anthropic => "messages_ok.json",
        Flavor::Gemini => "generate_ok.json",
    }
}

async fn huge_body(s: Subject) {
    let (fake, p) = setup(s).await;
    fake.push(Behaviour::Huge {
        bytes: 50 * 1024 * 1024,
    });
    let e = complete_err(&p, s, &ChatRequest::user("hi")).await;
    assert_eq!(e.class(), ErrorClass::ResponseTooLarge);
    assert!(!e.can_retry() && e.can_fallback());
    assert!(e.message().contains("larger than"), "{e}");
}

async fn foreign_error_shape(s: Subject) {
    let (fake, p) = setup(s).await;
    // Another provider's 429 body: the status still classifies it.
    let other = match s.flavor {
        Flavor::OpenAi => Flavor::Anthropic,
        Flavor::Anthropic => Flavor::Gemini,
        Flavor::Gemini => Flavor::OpenAi,
    };
    let body = fake_upstream::fixture(other, rate_limit_fixture(other)).unwrap();
    fake.push(Behaviour::raw(429, "application/json", body));
    assert_eq!(
        complete_err(&p, s, &ChatRequest::user("hi")).await.class(),
        ErrorClass::RateLimited
    );
    fake.push(Behaviour::raw(503, "text/html", "<html>upstream connect error</html>"));
    assert_eq!(
        complete_err(&p, s, &ChatRequest::user("hi")).await.class(),
        ErrorClass::Overloaded
    );
}

fn rate_limit_fixture(flavor: Flavor) -> &'static str {
    match flavor {
        Flavor::OpenAi => "error_429_rate_limit.json",
        Flavor::Anthropic => "error_429_rate_limit.json",
        Flavor::Gemini => "error_429_resource_exhausted.json",
    }
}

async fn connection_refused(s: Subject) {
    // Bind, learn the port, close: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = AdapterConfig::new("subject");
    config.base_url = Some(format!("http://127.0.0.1:{port}"));
    config.api_key = ApiKey::new(CANARY);
    config.timeouts = short_timeouts();
    let p = adapter_for(&kind(s.flavor), config).unwrap();
    let e = complete_err(&p, s, &ChatRequest::user("hi")).await;
    assert_eq!(e.class(), ErrorClass::Connection);
}

/// The fault modes of the failure-mode suite, as each adapter classifies them.
async fn fault_modes(s: Subject) {
    let (fake, p) = setup(s).await;
    let req = ChatRequest::user("hi");

    fake.push(Behaviour::ContentFilter);
    let e = complete_err(&p, s, &req).await;
    assert_eq!(e.class(), ErrorClass::ContentPolicy, "{e}");
    let code = match s.flavor {
        Flavor::OpenAi => "content_policy_violation",
        Flavor::Anthropic => "refusal",
        Flavor::Gemini => "SAFETY",
    };
    assert_eq!(e.provider_code(), Some(code));
    fake.push(Behaviour::ContentFilter);
    assert_eq!(stream_err(&p, s).await.class(), ErrorClass::ContentPolicy);

    fake.push(Behaviour::ContextLength);
    let e = complete_err(&p, s, &req).await;
    assert_eq!(e.class(), ErrorClass::ContextLengthExceeded, "{e}");
    assert!(e.provider_code().is_some(), "{e:?}");

    fake.push(Behaviour::Reset);
    assert_eq!(complete_err(&p, s, &req).await.class(), ErrorClass::Connection);

    fake.push(Behaviour::StallAfterEvents { events: 2 });
    assert_eq!(
        stream_err(&p, s).await.class(),
        ErrorClass::Timeout(providers::TimeoutKind::Idle)
    );
}

/// Streams that are whole although imperfect: no terminal event, or a
/// malformed event among good ones; and one with too many malformed events.
async fn tolerant_streams(s: Subject) {
    let (fake, p) = setup(s).await;
    let mut whole = String::new();
    for (behaviour, skipped) in [
        (Behaviour::Ok, 0),
        (Behaviour::NoDone, 0),
        (Behaviour::MalformedEvents { count: 1 }, 1),
    ] {
        fake.push(behaviour.clone());
        let events: Vec<StreamEvent> = p
            .stream(s.model, &ChatRequest::user("hi"))
            .await
            .unwrap()
            .map(Result::unwrap)
            .collect()
            .await;
        let text: String = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::TextDelta { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        if whole.is_empty() {
            whole = text.clone();
        }
        assert_eq!(text, whole, "{behaviour:?}");
        assert!(
            events.iter().any(|e| matches!(e, StreamEvent::Usage(_))),
            "{behaviour:?}"
        );
        assert!(
            matches!(events.last(), Some(StreamEvent::Done { skipped_events, .. }) if *skipped_events == skipped),
            "{behaviour:?}: {events:?}"
        );
    }
    fake.push(Behaviour::MalformedEvents { count: 4 });
    assert_eq!(stream_err(&p, s).await.class(), ErrorClass::MalformedResponse);
}

macro_rules! conformance {
    ($module:ident, $subject:expr) => {
        mod $module {
            use super::*;
            #[tokio::test]
            async fn success() {
                super::success($subject).await;
            }
            #[tokio::test]
            async fn streaming() {
                super::streaming($subject).await;
            }
            #[tokio::test]
            async fn tools() {
                super::tools($subject).await;
            }
            #[tokio::test]
            async fn streaming_tools() {
                super::streaming_tools($subject).await;
            }
            #[tokio::test]
            async fn json_mode() {
                super::json_mode($subject).await;
            }
            #[tokio::test]
            async fn images() {
                super::images($subject).await;
            }
            #[tokio::test]
            async fn error_statuses() {
                super::error_statuses($subject).await;
            }
            #[tokio::test]
            async fn retry_after_forms() {
                super::retry_after_forms($subject).await;
            }
            #[tokio::test]
            async fn provider_specific_errors() {
                super::provider_specific_errors($subject).await;
            }
            #[tokio::test]
            async fn first_byte_timeout() {
                super::first_byte_timeout($subject).await;
            }
            #[tokio::test]
            async fn idle_timeout() {
                super::idle_timeout($subject).await;
            }
            #[tokio::test]
            async fn slow_but_steady_stream_succeeds() {
                super::slow_but_steady_stream_succeeds($subject).await;
            }
            #[tokio::test]
            async fn total_timeout() {
                super::total_timeout($subject).await;
            }
            #[tokio::test]
            async fn cut_streams() {
                super::cut_streams($subject).await;
            }
            #[tokio::test]
            async fn garbage_bodies() {
                super::garbage_bodies($subject).await;
            }
            #[tokio::test]
            async fn huge_body() {
                super::huge_body($subject).await;
            }
            #[tokio::test]
            async fn foreign_error_shape() {
                super::foreign_error_shape($subject).await;
            }
            #[tokio::test]
            async fn fault_modes() {
                super::fault_modes($subject).await;
            }
            #[tokio::test]
            async fn tolerant_streams() {
                super::tolerant_streams($subject).await;
            }
            #[tokio::test]
            async fn connection_refused() {
                super::connection_refused($subject).await;
            }
        }
    };
}

conformance!(openai, OPENAI);
conformance!(anthropic, ANTHROPIC);
conformance!(gemini, GEMINI);
