//! The official `anthropic` Python SDK against `routec serve` (a separate
//! process) with OpenAI-format fake providers behind it, so every case
//! also crosses wire formats: whole, streamed, tool use (whole and
//! streamed, and the tool's result sent back), an unknown model, an
//! invalid key, and an outage answered by fallback.
//!
//! The interpreter is `$ROUTEC_PYTHON`, else `<workspace>/.venv/bin/python`;
//! it must have `anthropic` installed (`.ci/run` sets this up). Without it
//! the test fails and says how to set it up: it never passes silently.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod gateway_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use fake_upstream::{Behaviour, FakeUpstream, Flavor};
use gateway_support::{Serve, keys_file, policy};

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Python that has the `anthropic` SDK, or a failure that says how to get one.
fn python() -> PathBuf {
    let candidate = std::env::var_os("ROUTEC_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join(".venv/bin/python"));
    let probe = Command::new(&candidate)
        .args(["-c", "import anthropic; print(anthropic.__version__)"])
        .output();
    match probe {
        Ok(out) if out.status.success() => candidate,
        _ => panic!(
            "the gateway's Anthropic SDK test needs Python with the `anthropic` package, and {} has none.\n\
             Set it up once:  python3 -m venv .venv && .venv/bin/pip install anthropic\n\
             or point ROUTEC_PYTHON at an interpreter that has it.",
            candidate.display()
        ),
    }
}

/// Runs the script in the blocking pool (the fakes keep serving on the
/// test's runtime meanwhile), killed by its PID if it outlives `within`.
async fn run_script(python: PathBuf, args: Vec<String>, within: Duration) -> Output {
    let script = workspace().join("tests/py/anthropic_cases.py");
    let child = Command::new(python)
        .arg(script)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let waited = tokio::time::timeout(
        within,
        tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()),
    )
    .await;
    match waited {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            panic!("the anthropic SDK script did not finish within {within:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_anthropic_sdk_works_through_the_gateway() {
    let python = python();
    let primary = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let secondary = FakeUpstream::start(Flavor::OpenAi).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let policy_path = dir.path().join("policy.route");
    std::fs::write(&policy_path, policy(&primary.base_url(), &secondary.base_url())).unwrap();
    let key = "rk-anthropic-sdk-test-key";
    let keys = keys_file(dir.path(), &[("sdk", key)]);
    let gw = Serve::start(
        "anthropic-sdk",
        &[
            "--policy",
            policy_path.to_str().unwrap(),
            "--keys",
            keys.to_str().unwrap(),
        ],
        "info",
    )
    .await;
    // In the script's order: text, stream, tool call and its follow-up,
    // streamed tool call, (unknown model and invalid key never reach a
    // provider), then an outage of the primary.
    primary.script(vec![
        Behaviour::Ok,
        Behaviour::Ok,
        Behaviour::ToolCall,
        Behaviour::Ok,
        Behaviour::ToolCall,
        Behaviour::error(503),
    ]);

    let out = run_script(python, vec![gw.base.clone(), key.to_owned()], Duration::from_secs(120)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let failed: Vec<String> = lines
        .iter()
        .filter(|l| l["ok"] == false)
        .map(|f| {
            format!(
                "{}: {}\n{}",
                f["case"],
                f["error"],
                f["trace"].as_str().unwrap_or_default()
            )
        })
        .collect();
    assert!(
        out.status.success() && failed.is_empty(),
        "SDK cases failed:\n{}\nstderr:\n{}\nlog:\n{}",
        failed.join("\n"),
        String::from_utf8_lossy(&out.stderr),
        gw.log_text()
    );
    let names: Vec<&str> = lines.iter().filter_map(|l| l["case"].as_str()).collect();
    assert_eq!(
        names,
        [
            "non_streaming",
            "streaming",
            "tools",
            "streamed_tool_use",
            "unknown_model",
            "invalid_key",
            "outage_fallback",
            "count_tokens",
            "models_list"
        ]
    );
    assert_eq!(
        primary.calls(),
        6,
        "text, stream, tool call, its follow-up, streamed tool call, the outage"
    );
    assert_eq!(secondary.calls(), 1, "the fallback");
    let sent = primary.requests();
    assert_eq!(sent[0].json()["messages"][0]["role"], "system");
    assert_eq!(sent[1].json()["stream"], true, "streamed upstream too");
    assert_eq!(sent[2].json()["tools"][0]["function"]["name"], "get_current_weather");
    let follow = sent[3].json();
    assert_eq!(follow["messages"][2]["role"], "tool", "{follow}");
    assert_eq!(follow["messages"][2]["content"], "22C, sunny");
    assert_eq!(
        follow["messages"][1]["tool_calls"][0]["id"], follow["messages"][2]["tool_call_id"],
        "{follow}"
    );
}
