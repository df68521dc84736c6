//! `POST /v1/embeddings` end to end: `routec serve` as a separate process,
//! an OpenAI-format embedding provider that fails and a Gemini one behind
//! it, and the workload's fallback, budget, keys and errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_support;

use fake_upstream::{Behaviour, FakeUpstream, Flavor};
use gateway_support::{Answer, Serve, get, keys_file, policy, post};
use serde_json::{Value, json};

const KEY: &str = "rk-embeddings-test-key";

struct Setup {
    _dir: tempfile::TempDir,
    primary: FakeUpstream,
    openai: FakeUpstream,
    gemini: FakeUpstream,
    gw: Serve,
}

/// The shared test policy (chat workloads) plus `vectors` (alias
/// `text-embedding-3-small`): `openai/small`, falling back to
/// `google/embed`, under a 1M tokens/day budget.
async fn setup(name: &str) -> Setup {
    let primary = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let secondary = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let openai = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let gemini = FakeUpstream::start(Flavor::Gemini).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        r#"{}
provider openai {{
  adapter openai
  base_url "{}"
  key env("ROUTEC_TEST_PROVIDER_KEY")
  tier paid
  data internal
  model small {{ id "text-embedding-3-small"; price $0.02/M in, $0/M out; context 8k; supports embeddings }}
}}

provider google {{
  adapter gemini
  base_url "{}"
  key env("ROUTEC_TEST_PROVIDER_KEY")
  tier paid
  data internal
  model embed {{ id "gemini-embedding-001"; price $0.15/M in, $0/M out; context 2k; supports embeddings }}
}}

workload vectors {{
  data public
  alias "text-embedding-3-small"
  budget 1M tokens/day
  route fallback [ openai/small, google/embed ] on server_error, rate_limited
}}
"#,
        policy(&primary.base_url(), &secondary.base_url()),
        openai.base_url(),
        gemini.base_url(),
    );
    let policy_path = dir.path().join("policy.route");
    std::fs::write(&policy_path, text).unwrap();
    let keys = keys_file(dir.path(), &[("t", KEY)]);
    let gw = Serve::start(
        name,
        &[
            "--policy",
            policy_path.to_str().unwrap(),
            "--keys",
            keys.to_str().unwrap(),
        ],
        "info",
    )
    .await;
    Setup {
        _dir: dir,
        primary,
        openai,
        gemini,
        gw,
    }
}

async fn embed(gw: &Serve, body: &Value) -> Answer {
    post(
        &gw.base,
        "/v1/embeddings",
        body.to_string(),
        &[
            ("authorization", &format!("Bearer {KEY}")),
            ("content-type", "application/json"),
        ],
    )
    .await
}

/// The fake upstreams' vector for a text starts with its byte length and
/// its word count.
fn heads(answer: &Value) -> Vec<(f64, f64)> {
    answer["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["embedding"][0].as_f64().unwrap(), d["embedding"][1].as_f64().unwrap()))
        .collect()
}

#[tokio::test]
async fn embeddings_answer_through_the_policy_and_fall_back() {
    let s = setup("embeddings_fallback").await;
    let body = json!({"model": "text-embedding-3-small", "input": ["hello world", "abc"]});

    let a = embed(&s.gw, &body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let j = a.json();
    assert_eq!(j["object"], "list");
    assert_eq!(heads(&j), [(11.0, 2.0), (3.0, 1.0)], "vectors in input order: {j}");
    assert_eq!(j["data"][1]["index"], 1);
    assert_eq!(j["usage"]["prompt_tokens"], 3, "the upstream's own count: {j}");
    assert_eq!(a.header("x-routec-target"), Some("openai/small"));
    assert_eq!(s.openai.calls(), 1);
    assert_eq!(s.gemini.calls(), 0);
    assert_eq!(s.primary.calls(), 0, "no chat provider is asked");

    // The OpenAI-format provider fails: the Gemini one answers.
    s.openai.push(Behaviour::Error {
        status: 500,
        retry_after: None,
        retry_after_ms: None,
    });
    let a = embed(&s.gw, &body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.header("x-routec-target"), Some("google/embed"));
    assert_eq!(a.header("x-routec-attempts"), Some("2"));
    assert_eq!(heads(&a.json()), [(11.0, 2.0), (3.0, 1.0)]);
    let sent = s.gemini.requests();
    assert_eq!(sent.len(), 1);
    assert!(
        sent[0]
            .path_and_query
            .ends_with("gemini-embedding-001:batchEmbedContents")
    );

    // Both answered calls were charged to the workload's budget.
    let budgets = get(
        &s.gw.base,
        "/v1/routec/budgets",
        &[("authorization", &format!("Bearer {KEY}"))],
    )
    .await
    .json();
    let line = budgets["workloads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["workload"] == "vectors")
        .unwrap()["limits"][0]
        .clone();
    assert!(line["committed"].as_u64().unwrap() > 0, "{line}");
    assert_eq!(line["reserved"], 0, "{line}");
}

#[tokio::test]
async fn base64_vectors_decode_to_the_same_floats() {
    let s = setup("embeddings_base64").await;
    let a = embed(
        &s.gw,
        &json!({"model": "vectors", "input": "hello world", "encoding_format": "base64"}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let b64 = a.json()["data"][0]["embedding"].as_str().unwrap().to_owned();
    let floats = providers::openai_wire::floats_of_base64(&b64).unwrap();
    assert_eq!(floats, [11.0, 2.0, 0.5, -0.25]);
}

#[tokio::test]
async fn bad_embedding_requests_get_precise_errors_and_send_nothing() {
    let s = setup("embeddings_errors").await;
    let cases = [
        (json!({"model": "vectors", "input": [1, 2, 3]}), 400, "input"),
        (json!({"model": "vectors", "input": []}), 400, "input"),
        (
            json!({"model": "vectors", "input": "x", "encoding_format": "int8"}),
            400,
            "encoding_format",
        ),
        // Param null, as OpenAI answers an unknown model.
        (json!({"model": "nope", "input": "x"}), 404, ""),
        (json!({"model": "vectors"}), 400, ""),
    ];
    for (body, status, param) in cases {
        let a = embed(&s.gw, &body).await;
        assert_eq!(a.status, status, "{body}: {}", a.body);
        if !param.is_empty() {
            assert_eq!(a.json()["error"]["param"], param, "{body}: {}", a.body);
        }
    }
    let too_many: Vec<String> = (0..2049).map(|i| format!("t{i}")).collect();
    let a = embed(&s.gw, &json!({"model": "vectors", "input": too_many})).await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("at most 2048"), "{}", a.body);

    // A chat workload has no embedding model: refused, nothing sent.
    let a = embed(&s.gw, &json!({"model": "chat", "input": "x"})).await;
    assert_eq!(a.error_code(), "no_eligible_target", "{}", a.body);
    // And an embedding workload cannot chat.
    let a = post(
        &s.gw.base,
        "/v1/chat/completions",
        json!({"model": "vectors", "messages": [{"role": "user", "content": "hi"}]}).to_string(),
        &[
            ("authorization", &format!("Bearer {KEY}")),
            ("content-type", "application/json"),
        ],
    )
    .await;
    assert_eq!(a.error_code(), "no_eligible_target", "{}", a.body);
    // No key, no call.
    let a = post(
        &s.gw.base,
        "/v1/embeddings",
        json!({"model": "vectors", "input": "x"}).to_string(),
        &[("content-type", "application/json")],
    )
    .await;
    assert_eq!(a.status, 401, "{}", a.body);
    assert_eq!(s.openai.calls() + s.gemini.calls() + s.primary.calls(), 0);
}
