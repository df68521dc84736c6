//! The key never reaches a log line: every failure path runs with a
//! subscriber capturing all levels of all crates (reqwest and hyper included),
//! and the captured text is searched for the canary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_upstream::{Behaviour, FakeUpstream, Flavor};
use providers::{AdapterConfig, AdapterKind, ApiKey, ChatRequest, Timeouts, adapter_for};

const CANARY: &str = "sk-CANARY-logging-5e1b";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_log_line_contains_the_key() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    // `try_init` also bridges the `log` crate, which reqwest logs through.
    tracing_subscriber::util::SubscriberInitExt::try_init(subscriber).unwrap();

    for (flavor, kind) in [
        (Flavor::OpenAi, AdapterKind::OpenAi),
        (Flavor::Anthropic, AdapterKind::Anthropic),
        (Flavor::Gemini, AdapterKind::Gemini),
    ] {
        let fake = FakeUpstream::start(flavor).await.unwrap();
        let mut config = AdapterConfig::new("logged");
        config.base_url = Some(fake.base_url());
        config.api_key = ApiKey::new(CANARY);
        config.timeouts = Timeouts {
            first_byte: Duration::from_millis(200),
            idle: Duration::from_millis(200),
            ..Timeouts::default()
        };
        let p = adapter_for(&kind, config).unwrap();
        fake.script(vec![
            Behaviour::Ok,
            Behaviour::rate_limited("1"),
            Behaviour::error(401),
            Behaviour::error(500),
            Behaviour::Hang,
            Behaviour::StallAfter { bytes: 10 },
            Behaviour::raw(200, "text/html", "<html>"),
        ]);
        if flavor == Flavor::OpenAi {
            fake.push(Behaviour::fixture("error_401_echoes_key.json", 401));
        }
        for _ in 0..8 {
            let _ = p.complete("m", &ChatRequest::user("hi")).await;
        }
    }
    let text = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(text.contains("provider call failed"), "nothing was logged");
    assert!(text.contains("reqwest"), "transport logs were not captured");
    assert!(!text.contains(CANARY), "key in logs");
    assert!(!text.contains("CANARY"), "part of the key in logs");
}
