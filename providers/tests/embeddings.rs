//! Embedding calls through each adapter that has an embeddings endpoint,
//! against a fake upstream speaking its real wire format on 127.0.0.1; and
//! the adapters without one, which refuse before sending anything.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use fake_upstream::{Behaviour, FakeUpstream, Flavor};
use providers::{AdapterConfig, AdapterKind, ApiKey, EmbedRequest, ErrorClass, Provider, Timeouts, adapter_for};

const CANARY: &str = "sk-CANARY-e3b0c44298fc";

async fn setup(flavor: Flavor, kind: AdapterKind) -> (FakeUpstream, std::sync::Arc<dyn Provider>) {
    let fake = FakeUpstream::start(flavor).await.unwrap();
    let mut config = AdapterConfig::new("subject");
    config.base_url = Some(fake.base_url());
    config.api_key = ApiKey::new(CANARY);
    config.timeouts = Timeouts {
        connect: Duration::from_millis(500),
        first_byte: Duration::from_millis(500),
        idle: Duration::from_millis(500),
        total: None,
    };
    (fake, adapter_for(&kind, config).unwrap())
}

fn texts() -> EmbedRequest {
    EmbedRequest {
        input: vec!["one two three".to_owned(), "four".to_owned()],
        dimensions: Some(4),
        user: None,
    }
}

/// The fake's vector for a text: its length in bytes and its word count first.
fn head(v: &[f32]) -> (f32, f32) {
    (v[0], v[1])
}

#[tokio::test]
async fn openai_embeds_in_input_order_with_reported_usage() {
    let (fake, provider) = setup(Flavor::OpenAi, AdapterKind::OpenAi).await;
    let got = provider.embed("text-embedding-3-small", &texts()).await.unwrap();
    assert_eq!(got.vectors.len(), 2);
    assert_eq!(
        head(&got.vectors[0]),
        (13.0, 3.0),
        "the first vector is the first text's"
    );
    assert_eq!(head(&got.vectors[1]), (4.0, 1.0));
    assert_eq!(got.usage.input_tokens, 4, "the fake reports one token per word");
    assert_eq!(got.usage.output_tokens, 0);
    let sent = fake.requests();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0].path_and_query.ends_with("/embeddings"),
        "{}",
        sent[0].path_and_query
    );
    let body = sent[0].json();
    assert_eq!(body["model"], "text-embedding-3-small");
    assert_eq!(body["input"], serde_json::json!(["one two three", "four"]));
    assert_eq!(body["dimensions"], 4);
    assert_eq!(body["encoding_format"], "float");
    assert_eq!(
        sent[0].header("authorization"),
        Some(format!("Bearer {CANARY}").as_str())
    );
}

#[tokio::test]
async fn gemini_embeds_through_batch_embed_contents_and_estimates_usage() {
    let (fake, provider) = setup(Flavor::Gemini, AdapterKind::Gemini).await;
    let got = provider.embed("gemini-embedding-001", &texts()).await.unwrap();
    assert_eq!(
        got.vectors.iter().map(|v| head(v)).collect::<Vec<_>>(),
        [(13.0, 3.0), (4.0, 1.0)]
    );
    assert!(got.usage.input_tokens > 0, "gemini reports no usage: it is estimated");
    let sent = fake.requests();
    assert!(
        sent[0]
            .path_and_query
            .ends_with("/models/gemini-embedding-001:batchEmbedContents"),
        "{}",
        sent[0].path_and_query
    );
    let body = sent[0].json();
    assert_eq!(body["requests"][1]["model"], "models/gemini-embedding-001");
    assert_eq!(body["requests"][1]["content"]["parts"][0]["text"], "four");
    assert_eq!(body["requests"][0]["outputDimensionality"], 4);
}

#[tokio::test]
async fn upstream_failures_classify_as_for_chat_and_never_carry_the_key() {
    let (fake, provider) = setup(Flavor::OpenAi, AdapterKind::OpenAi).await;
    fake.push(Behaviour::Error {
        status: 429,
        retry_after: Some("7".to_owned()),
        retry_after_ms: None,
    });
    let e = provider.embed("e", &texts()).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    fake.push(Behaviour::Raw {
        status: 200,
        content_type: "application/json".to_owned(),
        body: r#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":[1.0]}]}"#.to_owned(),
    });
    let e = provider.embed("e", &texts()).await.unwrap_err();
    assert_eq!(
        e.class(),
        ErrorClass::MalformedResponse,
        "one vector for two texts: {e}"
    );
    fake.push(Behaviour::Raw {
        status: 200,
        content_type: "text/html".to_owned(),
        body: "<html>gateway error</html>".to_owned(),
    });
    let e = provider.embed("e", &texts()).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::MalformedResponse);
    assert!(!format!("{e} {e:?}").contains(CANARY));
}

#[tokio::test]
async fn an_adapter_without_an_embeddings_endpoint_refuses_without_sending() {
    let (fake, provider) = setup(Flavor::Anthropic, AdapterKind::Anthropic).await;
    let e = provider.embed("claude", &texts()).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::BadRequest);
    assert!(e.to_string().contains("no embeddings endpoint"), "{e}");
    assert_eq!(fake.calls(), 0);
}
