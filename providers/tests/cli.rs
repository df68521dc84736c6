//! The CLI adapter against small shell scripts in `testdata/cli/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use providers::{
    AdapterConfig, AdapterKind, ChatRequest, ErrorClass, Message, Provider, Role, TimeoutKind, adapter_for,
};

fn script(name: &str) -> String {
    format!("{}/testdata/cli/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn cli(args: &[&str], total: Option<Duration>) -> Arc<dyn Provider> {
    let mut config = AdapterConfig::new("claude_cli");
    config.timeouts.total = total;
    let command = args.iter().map(|s| (*s).to_owned()).collect();
    adapter_for(&AdapterKind::Cli { command }, config).unwrap()
}

fn fifo(dir: &Path) -> PathBuf {
    let path = dir.join("pid.fifo");
    let status = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
    assert!(status.success());
    path
}

/// Opens the FIFO for reading (blocks until the script opens it for writing)
/// and returns the pid line and the reader.
async fn read_pid(path: PathBuf) -> (u32, BufReader<std::fs::File>) {
    let task = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(std::fs::File::open(path).unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        (line.trim().parse::<u32>().unwrap(), reader)
    });
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("script never started")
        .unwrap()
}

/// Reads to end-of-file: returns once every writer, i.e. the script, is gone.
async fn wait_for_exit(mut reader: BufReader<std::fs::File>) {
    let task = tokio::task::spawn_blocking(move || {
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
    });
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("child was not killed")
        .unwrap();
}

#[tokio::test]
async fn prompt_goes_in_on_stdin_and_the_answer_comes_back() {
    let p = cli(&["sh", &script("echo.sh")], None);
    let r = p
        .complete("sonnet", &ChatRequest::user("summarise this"))
        .await
        .unwrap();
    assert_eq!(r.content, "[sonnet] summarise this");
    assert!(r.usage.input_tokens > 0 && r.usage.output_tokens > 0);
    assert!(!p.capabilities("sonnet").tools);
}

#[tokio::test]
async fn a_conversation_is_rendered_with_roles() {
    let p = cli(&["sh", &script("echo.sh")], None);
    let mut req = ChatRequest::user("hi");
    req.messages.insert(0, Message::text(Role::System, "be brief"));
    let r = providers::collect_stream(p.stream("m", &req).await.unwrap(), "m")
        .await
        .unwrap();
    assert_eq!(r.content, "[m] System: be brief\n\nUser: hi");
}

#[tokio::test]
async fn failure_exit_is_a_server_error_with_stderr() {
    let p = cli(&["sh", &script("fail.sh")], None);
    let e = p.complete("m", &ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::ServerError);
    assert!(e.message().contains("usage limit reached"), "{e}");
}

#[tokio::test]
async fn a_missing_program_is_a_connection_error() {
    let p = cli(&["/nonexistent/routec-test-cli"], None);
    let e = p.complete("m", &ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Connection);
}

#[tokio::test]
async fn timeout_kills_the_child() {
    let dir = tempfile::tempdir().unwrap();
    let path = fifo(dir.path());
    let p = cli(
        &["sh", &script("hang.sh"), path.to_str().unwrap()],
        Some(Duration::from_millis(300)),
    );
    let call = tokio::spawn(async move { p.complete("m", &ChatRequest::user("hi")).await });
    let (_pid, reader) = read_pid(path).await;
    let e = call.await.unwrap().unwrap_err();
    assert_eq!(e.class(), ErrorClass::Timeout(TimeoutKind::Total));
    wait_for_exit(reader).await;
}

#[tokio::test]
async fn dropping_the_call_kills_the_child() {
    let dir = tempfile::tempdir().unwrap();
    let path = fifo(dir.path());
    let p = cli(&["sh", &script("hang.sh"), path.to_str().unwrap()], None);
    let call = tokio::spawn(async move { p.complete("m", &ChatRequest::user("hi")).await });
    let (pid, reader) = read_pid(path).await;
    assert!(pid > 0);
    // Abort drops the future mid-call, as a deadline or a vanished caller would.
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    wait_for_exit(reader).await;
}

#[test]
fn an_empty_command_is_a_config_error() {
    let e = adapter_for(&AdapterKind::Cli { command: vec![] }, AdapterConfig::new("x")).unwrap_err();
    assert_eq!(e.to_string(), "provider `x` has an empty cli command");
}
