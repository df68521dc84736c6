//! µs per normalisation through each adapter: a typical request to each wire
//! format, and each provider's documented response back to `ChatResponse`,
//! against a plain `serde_json` round trip of the same payloads in the same run.
//!
//! `cargo bench -p providers --bench normalise`
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use providers::bench_api::{Wire, decode, encode};
use providers::{ChatRequest, Message, ResponseFormat, Role, Tool, ToolChoice};

fn typical_request() -> ChatRequest {
    let mut req = ChatRequest::user(
        "Summarise the following support ticket in two sentences and say whether it needs an engineer. \
         Ticket: since this morning our invoices page shows totals in the wrong currency for customers \
         in Switzerland; the PDF export is correct, only the web view is wrong. Several customers have \
         written in and one has paid the wrong amount. We have not changed anything on our side.",
    );
    req.messages.insert(
        0,
        Message::text(Role::System, "You are a concise support triage assistant."),
    );
    req.tools = vec![Tool {
        name: "open_ticket".into(),
        description: Some("Escalate to the engineering queue".into()),
        parameters: serde_json::json!({
            "type": "object",
            "properties": {"severity": {"type": "string", "enum": ["low", "high"]}, "summary": {"type": "string"}},
            "required": ["severity", "summary"]
        }),
    }];
    req.tool_choice = Some(ToolChoice::Auto);
    req.temperature = Some(0.2);
    req.max_tokens = Some(300);
    req.stop = vec!["\n\n\n".into()];
    req.user = Some("user-123".into());
    req
}

const RESPONSES: [(Wire, &str, &str); 3] = [
    (
        Wire::OpenAi,
        "openai",
        include_str!("../testdata/openai/chat_tool_call.json"),
    ),
    (
        Wire::Anthropic,
        "anthropic",
        include_str!("../testdata/anthropic/messages_tool_use.json"),
    ),
    (
        Wire::Gemini,
        "gemini",
        include_str!("../testdata/gemini/generate_function_call.json"),
    ),
];

fn requests(c: &mut Criterion) {
    let req = typical_request();
    let mut g = c.benchmark_group("request");
    g.bench_function("baseline_serde_roundtrip", |b| {
        b.iter(|| {
            let bytes = serde_json::to_vec(black_box(&req)).unwrap();
            black_box(serde_json::from_slice::<ChatRequest>(&bytes).unwrap())
        })
    });
    g.bench_function("baseline_serde_to_vec", |b| {
        b.iter(|| black_box(serde_json::to_vec(black_box(&req)).unwrap()))
    });
    for (wire, name, _) in RESPONSES {
        g.bench_function(format!("to_{name}_wire"), |b| {
            b.iter(|| black_box(encode(wire, "model-x", black_box(&req))))
        });
    }
    let mut json = req.clone();
    json.response_format = Some(ResponseFormat::JsonSchema {
        name: "triage".into(),
        schema: serde_json::json!({"type": "object", "properties": {"needs_engineer": {"type": "boolean"}}}),
        strict: true,
    });
    g.bench_function("to_anthropic_wire_json_schema", |b| {
        b.iter(|| black_box(encode(Wire::Anthropic, "model-x", black_box(&json))))
    });
    g.finish();
}

fn responses(c: &mut Criterion) {
    let mut g = c.benchmark_group("response");
    for (wire, name, body) in RESPONSES {
        assert!(decode(wire, body.as_bytes()).is_ok());
        g.bench_function(format!("baseline_serde_parse_{name}"), |b| {
            b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(black_box(body.as_bytes())).unwrap()))
        });
        g.bench_function(format!("baseline_serde_roundtrip_{name}"), |b| {
            b.iter(|| {
                let value: serde_json::Value = serde_json::from_slice(black_box(body.as_bytes())).unwrap();
                black_box(serde_json::to_vec(&value).unwrap())
            })
        });
        g.bench_function(format!("from_{name}_wire"), |b| {
            b.iter(|| black_box(decode(wire, black_box(body.as_bytes())).unwrap()))
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! { name = benches; config = config(); targets = requests, responses }
criterion_main!(benches);
