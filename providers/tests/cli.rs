//! The CLI adapter against small shell scripts in `testdata/cli/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use providers::{
    AdapterConfig, AdapterKind, ChatRequest, ErrorClass, EventStream, FinishReason, Message, Provider, ProviderError,
    Role, StreamEvent, TimeoutKind, Usage, adapter_for, estimate_tokens,
};

fn script(name: &str) -> String {
    format!("{}/testdata/cli/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn cli(args: &[&str], total: Option<Duration>) -> Arc<dyn Provider> {
    let mut config = AdapterConfig::new("claude_cli");
    config.timeouts.total = total;
    cli_with(args, config)
}

fn cli_with(args: &[&str], config: AdapterConfig) -> Arc<dyn Provider> {
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

/// Writes a line to the FIFO `pieces.sh` waits on before its second write.
async fn release(path: PathBuf) {
    let task = tokio::task::spawn_blocking(move || {
        let mut fifo = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        writeln!(fifo).unwrap();
    });
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("script never waited for its release")
        .unwrap();
}

/// Bounds a step that a broken adapter could leave waiting forever.
async fn bounded<T>(step: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), step)
        .await
        .expect("the adapter never answered")
}

/// Every item left in the stream.
async fn drain(mut stream: EventStream) -> Vec<Result<StreamEvent, ProviderError>> {
    bounded(async {
        let mut items = Vec::new();
        while let Some(item) = stream.next().await {
            items.push(item);
        }
        items
    })
    .await
}

fn delta(text: &str) -> StreamEvent {
    StreamEvent::TextDelta { text: text.to_owned() }
}

fn text_of(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// The last item of a failed stream, after checking nothing announced success.
fn final_error(items: Vec<Result<StreamEvent, ProviderError>>) -> ProviderError {
    let mut items = items;
    let last = items.pop().expect("the stream ended with nothing");
    for item in &items {
        let event = item.as_ref().expect("an error before the last item");
        assert!(
            !matches!(event, StreamEvent::Done { .. }),
            "done before the error: {items:?}"
        );
    }
    last.expect_err("a failed run ended without an error item")
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

/// `pieces.sh` as a provider: it writes the printf format `first`, then
/// `second` once the test releases the returned FIFO. The directory must
/// outlive the test's use of the FIFO.
fn pieces(first: &str, second: &str) -> (tempfile::TempDir, PathBuf, Arc<dyn Provider>) {
    let dir = tempfile::tempdir().unwrap();
    let path = fifo(dir.path());
    let p = cli(
        &["sh", &script("pieces.sh"), path.to_str().unwrap(), first, second],
        None,
    );
    (dir, path, p)
}

/// Reads the first event (which the script sent before waiting on the
/// FIFO, so it came on its own), checks it, releases the second write and
/// returns every event of the stream.
async fn first_then_rest(mut stream: EventStream, path: PathBuf, expected_first: &str) -> Vec<StreamEvent> {
    let first = bounded(stream.next()).await.unwrap().unwrap();
    assert_eq!(first, delta(expected_first));
    release(path).await;
    let mut events = vec![first];
    events.extend(drain(stream).await.into_iter().map(Result::unwrap));
    events
}

#[tokio::test]
async fn stream_yields_each_write_as_it_arrives() {
    let (_dir, path, p) = pieces("one\\n", "two\\n\\n");
    assert!(p.capabilities("m").stream);
    let req = ChatRequest::user("hi");
    let stream = bounded(p.stream("m", &req)).await.unwrap();
    // The first line end is held back until text follows it.
    let events = first_then_rest(stream, path.clone(), "one").await;
    assert_eq!(text_of(&events), "one\ntwo");
    let tail = &events[events.len() - 2..];
    let usage = Usage {
        input_tokens: estimate_tokens("hi"),
        output_tokens: estimate_tokens("one\ntwo"),
        cached_tokens: 0,
    };
    assert_eq!(
        tail,
        [
            StreamEvent::Usage(usage),
            StreamEvent::Done {
                finish_reason: FinishReason::Stop,
                skipped_events: 0
            }
        ]
    );
    assert!(
        events[..events.len() - 2]
            .iter()
            .all(|e| matches!(e, StreamEvent::TextDelta { .. }))
    );

    // The deltas add up to exactly what `complete` answers, usage included.
    let call = tokio::spawn(async move { p.complete("m", &req).await });
    release(path).await;
    let whole = bounded(call).await.unwrap().unwrap();
    assert_eq!(whole.content, text_of(&events));
    assert_eq!(whole.usage, usage);
}

#[tokio::test]
async fn a_character_split_across_writes_arrives_whole() {
    // `é` is \303\251; the script stops between its two bytes.
    let (_dir, path, p) = pieces("caf\\303", "\\251 ok");
    let stream = bounded(p.stream("m", &ChatRequest::user("hi"))).await.unwrap();
    let events = first_then_rest(stream, path, "caf").await;
    assert_eq!(text_of(&events), "café ok");
    assert!(matches!(events.last(), Some(StreamEvent::Done { .. })), "{events:?}");
}

#[tokio::test]
async fn a_failure_after_output_ends_the_stream_with_an_error() {
    let p = cli(&["sh", &script("fail_after_output.sh")], None);
    let stream = bounded(p.stream("m", &ChatRequest::user("hi"))).await.unwrap();
    let mut items = drain(stream).await;
    assert_eq!(items.remove(0).unwrap(), delta("partial answer"));
    let e = final_error(items);
    assert_eq!(e.class(), ErrorClass::ServerError);
    assert!(e.message().contains("usage limit reached"), "{e}");
    assert!(e.message().contains("exit status: 3"), "{e}");
}

#[tokio::test]
async fn a_failure_before_output_is_returned_by_stream() {
    // The router falls back only on failures before the first event.
    let p = cli(&["sh", &script("fail.sh")], None);
    let e = bounded(p.stream("m", &ChatRequest::user("hi"))).await.err().unwrap();
    assert_eq!(e.class(), ErrorClass::ServerError);
    assert!(e.message().contains("usage limit reached"), "{e}");

    let p = cli(&["/nonexistent/routec-test-cli"], None);
    let e = bounded(p.stream("m", &ChatRequest::user("hi"))).await.err().unwrap();
    assert_eq!(e.class(), ErrorClass::Connection);
}

#[tokio::test]
async fn invalid_utf8_at_the_end_of_a_stream_is_an_error() {
    let p = cli(&["sh", &script("bad_utf8.sh")], None);
    let stream = bounded(p.stream("m", &ChatRequest::user("hi"))).await.unwrap();
    let mut items = drain(stream).await;
    assert_eq!(items.remove(0).unwrap(), delta("ok"));
    let e = final_error(items);
    assert_eq!(e.class(), ErrorClass::MalformedResponse);
    assert!(e.message().contains("invalid utf-8"), "{e}");
    let whole = p.complete("m", &ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(whole.class(), e.class());
}

#[tokio::test]
async fn stream_output_over_the_cap_is_an_error_and_kills_the_child() {
    let dir = tempfile::tempdir().unwrap();
    let path = fifo(dir.path());
    let mut config = AdapterConfig::new("claude_cli");
    config.max_body_bytes = 4096;
    let p = cli_with(&["sh", &script("flood.sh"), path.to_str().unwrap()], config);
    let call = tokio::spawn(async move { p.stream("m", &ChatRequest::user("hi")).await });
    let (_pid, reader) = read_pid(path).await;
    // Whether the cap is passed before or after the first delta depends on
    // how the pipe is read; either way the run ends in the error.
    let e = match bounded(call).await.unwrap() {
        Err(e) => e,
        Ok(stream) => final_error(drain(stream).await),
    };
    assert_eq!(e.class(), ErrorClass::MalformedResponse);
    assert!(e.message().contains("larger than 4096 bytes"), "{e}");
    wait_for_exit(reader).await;
}

#[tokio::test]
async fn dropping_the_stream_kills_the_child() {
    let dir = tempfile::tempdir().unwrap();
    let path = fifo(dir.path());
    let p = cli(&["sh", &script("stall.sh"), path.to_str().unwrap()], None);
    let call = tokio::spawn(async move { p.stream("m", &ChatRequest::user("hi")).await });
    let (pid, reader) = read_pid(path).await;
    assert!(pid > 0);
    let mut stream = bounded(call).await.unwrap().unwrap();
    assert_eq!(bounded(stream.next()).await.unwrap().unwrap(), delta("partial"));
    // The child is mid-answer; a caller going away drops the stream.
    drop(stream);
    wait_for_exit(reader).await;
}

#[tokio::test]
async fn a_stream_silent_past_the_idle_timeout_fails_and_kills_the_child() {
    let dir = tempfile::tempdir().unwrap();
    let path = fifo(dir.path());
    let mut config = AdapterConfig::new("claude_cli");
    config.timeouts.idle = Duration::from_millis(300);
    let p = cli_with(&["sh", &script("stall.sh"), path.to_str().unwrap()], config);
    let call = tokio::spawn(async move { p.stream("m", &ChatRequest::user("hi")).await });
    let (_pid, reader) = read_pid(path).await;
    let stream = bounded(call).await.unwrap().unwrap();
    let mut items = drain(stream).await;
    assert_eq!(items.remove(0).unwrap(), delta("partial"));
    let e = final_error(items);
    assert_eq!(e.class(), ErrorClass::Timeout(TimeoutKind::Idle));
    wait_for_exit(reader).await;
}

#[tokio::test]
async fn a_stream_with_no_output_before_the_total_timeout_is_an_error_from_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = fifo(dir.path());
    let p = cli(
        &["sh", &script("hang.sh"), path.to_str().unwrap()],
        Some(Duration::from_millis(300)),
    );
    let call = tokio::spawn(async move { p.stream("m", &ChatRequest::user("hi")).await });
    let (_pid, reader) = read_pid(path).await;
    let e = bounded(call).await.unwrap().err().unwrap();
    assert_eq!(e.class(), ErrorClass::Timeout(TimeoutKind::Total));
    wait_for_exit(reader).await;
}

#[test]
fn an_empty_command_is_a_config_error() {
    let e = adapter_for(&AdapterKind::Cli { command: vec![] }, AdapterConfig::new("x")).unwrap_err();
    assert_eq!(e.to_string(), "provider `x` has an empty cli command");
}
