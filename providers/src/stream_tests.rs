//! Every stream fixture, split at every byte offset and cut at every byte
//! offset, through the SSE parser and each adapter's decoder.

use crate::http::{Ctx, StreamDecoder};
use crate::sse::SseParser;
use crate::{ApiKey, ProviderError, StreamEvent, anthropic, gemini, openai};

fn fixture(path: &str) -> Vec<u8> {
    std::fs::read(format!("{}/testdata/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn ctx() -> Ctx {
    Ctx {
        name: "test".into(),
        key: ApiKey::new("sk-CANARY-stream"),
    }
}

/// Runs `chunks` through a parser and decoder as the transport does.
fn decode<D: StreamDecoder>(mut decoder: D, chunks: &[&[u8]]) -> Result<Vec<StreamEvent>, ProviderError> {
    let ctx = ctx();
    let mut parser = SseParser::new(1 << 20);
    let mut out = Vec::new();
    let mut sse = Vec::new();
    for chunk in chunks {
        parser
            .push(chunk, &mut sse)
            .map_err(|e| ctx.err(crate::ErrorClass::MalformedResponse, &e.to_string()))?;
        for event in sse.drain(..) {
            decoder.on_event(&ctx, event, &mut out)?;
            if decoder.is_done() {
                return Ok(out);
            }
        }
    }
    if !parser.is_between_events() {
        return Err(ctx.err(crate::ErrorClass::MalformedResponse, "ended mid-event"));
    }
    decoder.on_eof(&ctx, &mut out)?;
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

#[test]
fn a_stream_cut_anywhere_is_an_error_never_a_short_success() {
    for (path, make) in cases() {
        let bytes = fixture(path);
        let whole = make().run(&[&bytes]).unwrap();
        for at in 0..bytes.len() {
            match make().run(&[&bytes[..at]]) {
                Err(e) => {
                    assert_eq!(e.class(), crate::ErrorClass::MalformedResponse, "{path} cut at {at}");
                    assert!(!format!("{e}{e:?}").contains("CANARY"));
                }
                // Only a cut after the terminal event may succeed, and then completely.
                Ok(events) => assert_eq!(events, whole, "{path} cut at {at} ended early"),
            }
        }
    }
}

#[test]
fn anthropic_mid_stream_error_is_classified() {
    let bytes = fixture("anthropic/stream_error_overloaded.sse");
    let err = anthropic::EventDecoder::new(false).run_boxed(&bytes).unwrap_err();
    assert_eq!(err.class(), crate::ErrorClass::Overloaded);
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
    assert_eq!(err.class(), crate::ErrorClass::MalformedResponse);
}

#[test]
fn openrouter_mid_stream_error_object_is_classified() {
    let chunk = b"data: {\"error\":{\"message\":\"Provider returned error\",\"code\":502}}\n\n";
    let err = decode(openai::ChunkDecoder::default(), &[chunk]).unwrap_err();
    assert_eq!(err.class(), crate::ErrorClass::ServerError);
}

#[test]
fn groq_usage_under_x_groq_is_read() {
    let stream = concat!(
        "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"llama\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"llama\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"x_groq\":{\"id\":\"req_1\",\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":1,\"total_tokens\":13}}}\n\n",
        "data: [DONE]\n\n"
    );
    let events = decode(openai::ChunkDecoder::default(), &[stream.as_bytes()]).unwrap();
    assert!(events.contains(&StreamEvent::Usage(crate::Usage {
        input_tokens: 12,
        output_tokens: 1,
        cached_tokens: 0
    })));
}
