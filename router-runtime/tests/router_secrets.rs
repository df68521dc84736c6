//! API keys never appear in logs, spans, errors, metrics or decision
//! records: a canary key goes to a fake that echoes it back in its 401
//! body, and every output of the router is searched for it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use fake_upstream::{Behaviour, FakeUpstream, Flavor};
use router_runtime::Router;
use support::{ask, policy};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;

const CANARY: &str = "sk-CANARY-7f3a9c";

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

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn provider(name: &str, fake: &FakeUpstream) -> String {
    format!(
        r#"provider {name} {{ adapter openai; base_url "{}"; key env("CANARY_KEY"); tier paid; data private
             model m {{ price $1/M in, $1/M out; supports stream }} }}
        "#,
        fake.base_url()
    )
}

#[tokio::test]
async fn a_canary_key_never_leaves_the_adapter() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::FULL)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (a, b) = (
        FakeUpstream::start(Flavor::OpenAi).await.unwrap(),
        FakeUpstream::start(Flavor::OpenAi).await.unwrap(),
    );
    let text = format!(
        "{}{}{}workload w {{ data public; route fallback [a/m, b/m] }}
         workload only_a {{ data public; route a/m }}
         workload missing {{ data public; route nokey/m }}",
        provider("a", &a),
        provider("b", &b),
        r#"provider nokey { adapter openai; key env("UNSET_KEY"); tier paid; model m { price $1/M in, $1/M out } }"#,
    );
    let router = Router::builder(policy(&text))
        .env_vars([("CANARY_KEY", CANARY)])
        .build()
        .unwrap();
    a.script(vec![Behaviour::fixture("error_401_echoes_key.json", 401); 3]);
    let mut outputs = Vec::new();

    // Auth failures fall back; the upstream's echo of the key is redacted.
    let done = router.complete(ask("w")).await.unwrap();
    assert_eq!(done.target, "b/m");
    let record = router.decision(&done.decision_id).unwrap();
    outputs.push(record.render(router.policy()));
    outputs.push(serde_json::to_string(&record.report(router.policy())).unwrap());
    outputs.push(format!("{record:?}"));
    let err = router.complete(ask("only_a")).await.unwrap_err();
    outputs.push(err.to_string());
    outputs.push(format!("{err:?}"));
    let err = router.complete(ask("missing")).await.unwrap_err();
    outputs.push(err.to_string());
    let mut streamed = router.stream(ask("only_a")).await.unwrap_err().to_string();
    streamed.push_str(&format!("{router:?}"));
    outputs.push(streamed);
    outputs.push(router.metrics().render());
    outputs.push(router.notes().join("\n"));

    // The canary was really in play: the fake saw it, and echoed it.
    let seen = a.last_request().unwrap();
    assert!(seen.header("authorization").unwrap().contains(CANARY));
    assert_eq!(a.calls(), 3);

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("routec.attempt"), "spans were captured:\n{logs}");
    assert!(logs.contains("UNSET_KEY"), "the missing variable is named:\n{logs}");
    outputs.push(logs);
    for (i, out) in outputs.iter().enumerate() {
        assert!(!out.contains(CANARY), "output {i} leaks the key:\n{out}");
        assert!(!out.contains("CANARY-7f3a"), "output {i} leaks part of the key:\n{out}");
    }
}
