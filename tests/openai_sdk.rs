//! The official `openai` Python SDK against `routec serve` (a separate
//! process) with fake providers behind it: non-streaming, streaming, tools,
//! JSON mode, an unknown model, an invalid key, and an outage answered by
//! fallback; and the demo policy answering the SDK on its own.
//!
//! The interpreter is `$ROUTEC_PYTHON`, else `<workspace>/.venv/bin/python`;
//! it must have `openai` installed (`.ci/run` sets this up). Without it the
//! test fails and says how to set it up: it never passes silently.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fake_upstream::{Behaviour, FakeUpstream, Flavor};
use gateway_support::{Serve, keys_file, policy};

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Python that has the `openai` SDK, or a failure that says how to get one.
fn python() -> PathBuf {
    let candidate = std::env::var_os("ROUTEC_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"));
    let probe = Command::new(&candidate)
        .args(["-c", "import openai; print(openai.__version__)"])
        .output();
    match probe {
        Ok(out) if out.status.success() => candidate,
        _ => panic!(
            "the gateway's SDK tests need Python with the `openai` package, and {} has none.\n\
             Set it up once:  python3 -m venv .venv && .venv/bin/pip install openai\n\
             or point ROUTEC_PYTHON at an interpreter that has it.",
            candidate.display()
        ),
    }
}

/// Runs a script under `tests/py/` in the blocking pool (the fakes keep
/// serving on the test's runtime meanwhile).
async fn run_script(python: PathBuf, script: &str, args: Vec<String>) -> Output {
    let script = workspace().join("tests/py").join(script);
    tokio::task::spawn_blocking(move || Command::new(python).arg(script).args(args).output().unwrap())
        .await
        .unwrap()
}

/// The JSON lines a script printed, keyed by case; panics with everything
/// it printed when a case failed.
fn cases(out: &Output) -> Vec<serde_json::Value> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let failed: Vec<&serde_json::Value> = lines.iter().filter(|l| l["ok"] == false).collect();
    assert!(
        out.status.success() && failed.is_empty(),
        "SDK cases failed:\n{}\nstderr:\n{}",
        failed
            .iter()
            .map(|f| format!(
                "{}: {}\n{}",
                f["case"],
                f["error"],
                f["trace"].as_str().unwrap_or_default()
            ))
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openai_sdk_works_through_the_gateway() {
    let python = python();
    let primary = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let secondary = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let embedder = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let policy_path = dir.path().join("policy.route");
    let text = format!(
        r#"{}
provider embedder {{
  adapter openai_compatible
  base_url "{}"
  key env("ROUTEC_TEST_PROVIDER_KEY")
  tier paid
  data private
  model e1 {{ id "text-embedding-3-small"; price $0.02/M in, $0/M out; supports embeddings }}
}}

workload vectors {{
  data public
  route embedder/e1
}}
"#,
        policy(&primary.base_url(), &secondary.base_url()),
        embedder.base_url()
    );
    std::fs::write(&policy_path, text).unwrap();
    let key = "rk-sdk-test-key";
    let keys = keys_file(dir.path(), &[("sdk", key)]);
    let gw = Serve::start(
        "sdk",
        &[
            "--policy",
            policy_path.to_str().unwrap(),
            "--keys",
            keys.to_str().unwrap(),
        ],
        "info",
    )
    .await;
    // In the script's order: text, stream, tool call, JSON, (unknown model
    // and invalid key never reach a provider), then an outage of the primary.
    primary.script(vec![
        Behaviour::Ok,
        Behaviour::Ok,
        Behaviour::ToolCall,
        Behaviour::Json,
        Behaviour::error(503),
    ]);

    let out = run_script(python, "sdk_cases.py", vec![format!("{}/v1", gw.base), key.to_owned()]).await;
    let lines = cases(&out);
    let names: Vec<&str> = lines.iter().filter_map(|l| l["case"].as_str()).collect();
    assert_eq!(
        names,
        [
            "non_streaming",
            "streaming",
            "tools",
            "json_mode",
            "unknown_model",
            "invalid_key",
            "outage_fallback",
            "embeddings"
        ]
    );
    let embedded = embedder.requests();
    assert_eq!(embedded.len(), 1, "one embeddings call upstream");
    assert_eq!(embedded[0].json()["input"], serde_json::json!(["hello world", "abc"]));
    assert_eq!(primary.calls(), 5, "text, stream, tools, JSON, the outage");
    assert_eq!(secondary.calls(), 1, "the fallback");
    let streamed = primary.requests()[1].json();
    assert_eq!(streamed["stream"], true, "streamed upstream too: {streamed}");
    let tools = primary.requests()[2].json();
    assert_eq!(tools["tools"][0]["function"]["name"], "get_weather");
    let json_mode = primary.requests()[3].json();
    assert_eq!(json_mode["response_format"]["type"], "json_object");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_policy_answers_the_sdk() {
    let python = python();
    let demo = workspace().join("examples/policies/demo.route");
    let gw = Serve::start("demo", &["--policy", demo.to_str().unwrap()], "info").await;
    let script = format!(
        r#"
from openai import OpenAI
client = OpenAI(base_url="{base}/v1", api_key="open", max_retries=0)
ids = [m.id for m in client.models.list()]
assert "demo_qa" in ids and "gpt-4o-mini" in ids, ids
raw = client.chat.completions.with_raw_response.create(
    model="gpt-4o-mini", messages=[{{"role": "user", "content": "What is routec?"}}])
print("target", raw.headers["x-routec-target"])
assert raw.parse().choices[0].message.content
text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
    model="demo_code", stream=True, messages=[{{"role": "user", "content": "Write a hello world"}}]) if c.choices)
assert text
print("streamed", len(text))
vectors = client.embeddings.create(model="demo_embed", input=["routing saves money", "no keys needed"])
assert len(vectors.data) == 2 and len(vectors.data[0].embedding) > 0, vectors
assert vectors.data[0].embedding != vectors.data[1].embedding
print("embedded", len(vectors.data[0].embedding))
"#,
        base = gw.base
    );
    let out = tokio::task::spawn_blocking(move || Command::new(python).args(["-c", &script]).output().unwrap())
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\nlog:\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.log_text()
    );
    assert!(stdout.contains("target sim_"), "{stdout}");
    assert!(
        stdout.contains("embedded 8"),
        "the simulated vectors have 8 dimensions: {stdout}"
    );
}
