//! Every stream fixture, split at every byte offset and cut at every byte
//! offset, through the SSE parser and each adapter's decoder.

use crate::http::{Ctx, EventPump, MAX_SKIPPED_EVENTS, StreamDecoder};
use crate::{ApiKey, ErrorClass, FinishReason, ProviderError, StreamEvent, Usage, anthropic, gemini, openai};

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/testdata/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn ctx() -> Ctx {
    Ctx {
        name: "test".into(),
        key: ApiKey::new("sk-CANARY-stream"),
    }
}

/// Runs `chunks` through the pump the transport uses, then ends the body.
fn decode<D: StreamDecoder>(decoder: D, chunks: &[&[u8]]) -> Result<Vec<StreamEvent>, ProviderError> {
    let ctx = ctx();
    let mut pump = EventPump::new(decoder, 1 << 20);
    let mut out = Vec::new();
    for chunk in chunks {
        pump.push(&ctx, chunk, &mut out)?;
        if pump.is_done() {
            return Ok(out);
        }
    }
    pump.eof(&ctx, &mut out)?;
    Ok(out)
}

/// Makes a fresh decoder for one run.
type MakeDecoder = Box<dyn Fn() -> Box<dyn FnDecode>>;

fn cases() -> Vec<(&'static str, MakeDecoder)> {
    vec![
        (
            "openai/stream_ok.sse",
            Box::new(|| Box::new(openai::ChunkDecoder::default()) as Box<dyn FnDecode>),
        ),
        (
            "openai/stream_tool_call.sse",
            Box::new(|| Box::new(openai::ChunkDecoder::default())),
        ),
        (
            "anthropic/stream_ok.sse",
            Box::new(|| Box::new(anthropic::EventDecoder::new(false))),
        ),
        (
            "anthropic/stream_tool_use.sse",
            Box::new(|| Box::new(anthropic::EventDecoder::new(false))),
        ),
        (
            "gemini/stream_ok.sse",
            Box::new(|| Box::new(gemini::ChunkDecoder::default())),
        ),
        (
            "gemini/stream_function_call.sse",
            Box::new(|| Box::new(gemini::ChunkDecoder::default())),
        ),
    ]
}

/// Object-safe wrapper so the cases can share one loop.
trait FnDecode {
    fn run(self: Box<Self>, chunks: &[&[u8]]) -> Result<Vec<StreamEvent>, ProviderError>;
}

impl<D: StreamDecoder> FnDecode for D {
    fn run(self: Box<Self>, chunks: &[&[u8]]) -> Result<Vec<StreamEvent>, ProviderError> {
        decode(*self, chunks)
    }
}

#[test]
fn every_split_point_gives_the_same_events() {
    for (path, make) in cases() {
        let bytes = fixture(path);
        let whole = make().run(&[&bytes]).unwrap();
        assert!(matches!(whole.last(), Some(StreamEvent::Done { .. })), "{path}");
        for at in 0..=bytes.len() {
            let split = make().run(&[&bytes[..at], &bytes[at..]]).unwrap();
            assert_eq!(split, whole, "{path} split at {at}");
        }
    }
}

#[test]
fn crlf_line_endings_give_the_same_events() {
    for (path, make) in cases() {
        let bytes = fixture(path);
        let crlf = String::from_utf8(bytes.clone()).unwrap().replace('\n', "\r\n");
        let whole = make().run(&[&bytes]).unwrap();
        for at in 0..=crlf.len() {
            let split = make().run(&[&crlf.as_bytes()[..at], &crlf.as_bytes()[at..]]).unwrap();
            assert_eq!(split, whole, "{path} crlf split at {at}");
        }
    }
}

/// The events without usage: a body may end cleanly after the finish and
/// before the usage chunk, and that answer is complete without it.
fn without_usage(events: &[StreamEvent]) -> Vec<StreamEvent> {
    events
        .iter()
        .filter(|e| !matches!(e, StreamEvent::Usage(_)))
        .cloned()
        .collect()
}

#[test]
fn a_stream_cut_anywhere_is_an_error_never_a_short_success() {
    for (path, make) in cases() {
        let bytes = fixture(path);
        let whole = make().run(&[&bytes]).unwrap();
        for at in 0..bytes.len() {
            match make().run(&[&bytes[..at]]) {
                Err(e) => {
                    assert_eq!(e.class(), ErrorClass::MalformedResponse, "{path} cut at {at}");
                    assert!(!format!("{e}{e:?}").contains("CANARY"));
                }
                // Only a cut after the finish reason may succeed, and then
                // with every delta and the same finish.
                Ok(events) => assert_eq!(
                    without_usage(&events),
                    without_usage(&whole),
                    "{path} cut at {at} ended early"
                ),
            }
        }
    }
}

#[test]
fn anthropic_mid_stream_error_is_classified() {
    let bytes = fixture("anthropic/stream_error_overloaded.sse");
    let err = anthropic::EventDecoder::new(false).run_boxed(&bytes).unwrap_err();
    assert_eq!(err.class(), ErrorClass::Overloaded);
}

trait RunBoxed {
    fn run_boxed(self, bytes: &[u8]) -> Result<Vec<StreamEvent>, ProviderError>;
}

impl<D: StreamDecoder> RunBoxed for D {
    fn run_boxed(self, bytes: &[u8]) -> Result<Vec<StreamEvent>, ProviderError> {
        decode(self, &[bytes])
    }
}

#[test]
fn openai_done_without_finish_reason_is_malformed() {
    let err = decode(openai::ChunkDecoder::default(), &[b"data: [DONE]\n\n"]).unwrap_err();
    assert_eq!(err.class(), ErrorClass::MalformedResponse);
}

#[test]
fn openrouter_mid_stream_error_object_is_classified() {
    let chunk = b"data: {\"error\":{\"message\":\"Provider returned error\",\"code\":502}}\n\n";
    let err = decode(openai::ChunkDecoder::default(), &[chunk]).unwrap_err();
    assert_eq!(err.class(), ErrorClass::ServerError);
}

#[test]
fn groq_usage_under_x_groq_is_read() {
    let stream = concat!(
        "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"llama\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"llama\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"x_groq\":{\"id\":\"req_1\",\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":1,\"total_tokens\":13}}}\n\n",
        "data: [DONE]\n\n"
    );
    let events = decode(openai::ChunkDecoder::default(), &[stream.as_bytes()]).unwrap();
    assert!(events.contains(&StreamEvent::Usage(Usage {
        input_tokens: 12,
        output_tokens: 1,
        cached_tokens: 0
    })));
}

const OPENAI_TEXT: &str = "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n";
const OPENAI_FINISH: &str = "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
const OPENAI_USAGE: &str = "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}\n\n";

fn done(events: &[StreamEvent]) -> Option<(FinishReason, u32)> {
    match events.last() {
        Some(StreamEvent::Done {
            finish_reason,
            skipped_events,
        }) => Some((*finish_reason, *skipped_events)),
        _ => None,
    }
}

#[test]
fn openai_clean_end_after_the_finish_is_complete_with_or_without_usage() {
    let with_usage = format!("{OPENAI_TEXT}{OPENAI_FINISH}{OPENAI_USAGE}");
    let events = decode(openai::ChunkDecoder::default(), &[with_usage.as_bytes()]).unwrap();
    assert_eq!(done(&events), Some((FinishReason::Stop, 0)));
    assert!(events.contains(&StreamEvent::Usage(Usage {
        input_tokens: 5,
        output_tokens: 1,
        cached_tokens: 0
    })));
    let without = format!("{OPENAI_TEXT}{OPENAI_FINISH}");
    let events = decode(openai::ChunkDecoder::default(), &[without.as_bytes()]).unwrap();
    assert_eq!(done(&events), Some((FinishReason::Stop, 0)));
    assert!(!events.iter().any(|e| matches!(e, StreamEvent::Usage(_))));
}

#[test]
fn openai_clean_end_without_a_finish_is_an_error() {
    let err = decode(openai::ChunkDecoder::default(), &[OPENAI_TEXT.as_bytes()]).unwrap_err();
    assert_eq!(err.class(), ErrorClass::MalformedResponse);
    assert!(err.message().contains("finish reason"), "{err}");
}

#[test]
fn a_malformed_event_is_skipped_and_counted() {
    let body = format!("{OPENAI_TEXT}data: {{\"choices\": [oops\n\n{OPENAI_TEXT}{OPENAI_FINISH}data: [DONE]\n\n");
    let events = decode(openai::ChunkDecoder::default(), &[body.as_bytes()]).unwrap();
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "hihi");
    assert_eq!(done(&events), Some((FinishReason::Stop, 1)));
}

#[test]
fn a_handful_of_malformed_events_is_an_error() {
    let bad = "data: not json sk-CANARY-stream\n\n";
    let allowed = format!(
        "{OPENAI_TEXT}{}{OPENAI_FINISH}",
        bad.repeat(MAX_SKIPPED_EVENTS as usize)
    );
    let events = decode(openai::ChunkDecoder::default(), &[allowed.as_bytes()]).unwrap();
    assert_eq!(done(&events), Some((FinishReason::Stop, MAX_SKIPPED_EVENTS)));
    let too_many = format!(
        "{OPENAI_TEXT}{}{OPENAI_FINISH}",
        bad.repeat(MAX_SKIPPED_EVENTS as usize + 1)
    );
    let err = decode(openai::ChunkDecoder::default(), &[too_many.as_bytes()]).unwrap_err();
    assert_eq!(err.class(), ErrorClass::MalformedResponse);
    assert!(err.message().contains("malformed stream events"), "{err}");
    assert!(!format!("{err}{err:?}").contains("CANARY"));
}

#[test]
fn anthropic_and_gemini_skip_malformed_events_too() {
    let anthropic = String::from_utf8(fixture("anthropic/stream_ok.sse")).unwrap();
    let broken = anthropic.replacen(
        "event: content_block_delta\n",
        "event: content_block_delta\ndata: {oops\n\nevent: content_block_delta\n",
        1,
    );
    let events = decode(anthropic::EventDecoder::new(false), &[broken.as_bytes()]).unwrap();
    assert_eq!(done(&events).map(|d| d.1), Some(1));
    let gemini = String::from_utf8(fixture("gemini/stream_ok.sse")).unwrap();
    let broken = format!("data: [1, 2\n\n{gemini}");
    let events = decode(gemini::ChunkDecoder::default(), &[broken.as_bytes()]).unwrap();
    assert_eq!(done(&events).map(|d| d.1), Some(1));
}

#[test]
fn anthropic_clean_end_after_the_stop_reason_is_complete() {
    let whole = String::from_utf8(fixture("anthropic/stream_ok.sse")).unwrap();
    let at = whole.find("event: message_stop").unwrap();
    let events = decode(anthropic::EventDecoder::new(false), &[&whole.as_bytes()[..at]]).unwrap();
    let all = decode(anthropic::EventDecoder::new(false), &[whole.as_bytes()]).unwrap();
    assert_eq!(events, all);
    let before_delta = whole.find("event: message_delta").unwrap();
    let err = decode(
        anthropic::EventDecoder::new(false),
        &[&whole.as_bytes()[..before_delta]],
    )
    .unwrap_err();
    assert_eq!(err.class(), ErrorClass::MalformedResponse);
}

#[test]
fn content_filter_finishes_are_refusals_with_the_provider_code() {
    let filtered = OPENAI_FINISH.replace("\"stop\"", "\"content_filter\"");
    let body = format!("{OPENAI_TEXT}{filtered}data: [DONE]\n\n");
    let err = decode(openai::ChunkDecoder::default(), &[body.as_bytes()]).unwrap_err();
    assert_eq!(
        (err.class(), err.provider_code()),
        (ErrorClass::ContentPolicy, Some("content_filter"))
    );

    let anthropic = String::from_utf8(fixture("anthropic/stream_ok.sse"))
        .unwrap()
        .replace("\"end_turn\"", "\"refusal\"");
    let err = decode(anthropic::EventDecoder::new(false), &[anthropic.as_bytes()]).unwrap_err();
    assert_eq!(
        (err.class(), err.provider_code()),
        (ErrorClass::ContentPolicy, Some("refusal"))
    );

    let gemini = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\"}],\"role\":\"model\"},\"finishReason\":\"SAFETY\"}]}\n\n";
    let err = decode(gemini::ChunkDecoder::default(), &[gemini.as_bytes()]).unwrap_err();
    assert_eq!(
        (err.class(), err.provider_code()),
        (ErrorClass::ContentPolicy, Some("SAFETY"))
    );
}
