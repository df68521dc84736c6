//! A local command as a provider: subscription CLIs (`claude -p`, `gemini`,
//! `llm`) read a prompt on stdin and print the answer.
//!
//! The child is started with `kill_on_drop`, so when the runtime abandons an
//! attempt (its deadline passed, the caller went away) the process dies with
//! the future instead of running on and billing a subscription's quota. Only
//! the direct child is killed: a wrapper script should `exec` the real tool.
//!
//! `stream` passes stdout on as it is read, so a CLI that prints its answer
//! progressively streams; one that prints it at the end yields one delta.

use std::collections::VecDeque;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::future::{BoxFuture, MaybeDone};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::time::Instant;

use crate::config::{AdapterConfig, ConfigError};
use crate::error::{ErrorClass, ProviderError, TimeoutKind};
use crate::provider::{Capabilities, EventStream, Provider};
use crate::tokens::estimate_tokens;
use crate::types::{ChatRequest, ChatResponse, ContentPart, FinishReason, ResponseFormat, Role, StreamEvent, Usage};

/// Used when no total timeout is configured: a CLI has no first byte to wait for.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// How much of stderr is kept for the error message of a failed run.
const STDERR_CAP: usize = 64 * 1024;

/// How much of stdout one read of a stream takes at most.
const READ_CHUNK: usize = 8 * 1024;

/// A provider backed by a local command.
#[derive(Debug)]
pub(crate) struct CliAdapter {
    name: String,
    command: Vec<String>,
    timeout: Duration,
    idle: Duration,
    max_output: usize,
    models: Vec<String>,
}

/// A spawned child with its three pipes taken.
struct Spawned {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    stderr: ChildStderr,
}

impl CliAdapter {
    pub(crate) fn new(config: AdapterConfig, command: Vec<String>) -> Result<Self, ConfigError> {
        if command.first().is_none_or(|c| c.is_empty()) {
            return Err(ConfigError::EmptyCommand { provider: config.name });
        }
        Ok(Self {
            name: config.name,
            command,
            timeout: config.timeouts.total.unwrap_or(DEFAULT_TIMEOUT),
            idle: config.timeouts.idle,
            max_output: config.max_body_bytes,
            models: config.models,
        })
    }

    fn labels(&self) -> Labels {
        Labels {
            name: self.name.clone(),
            program: self.command[0].clone(),
        }
    }

    fn spawn(&self, model: &str) -> Result<Spawned, ProviderError> {
        let labels = self.labels();
        let program = &self.command[0];
        let mut child = Command::new(program)
            .args(&self.command[1..])
            .env("ROUTEC_MODEL", model)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| labels.err(ErrorClass::Connection, &format!("could not start `{program}`: {e}")))?;
        let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(labels.err(ErrorClass::Connection, "child process has no pipes"));
        };
        Ok(Spawned {
            child,
            stdin,
            stdout,
            stderr,
        })
    }

    async fn run(&self, model: &str, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let labels = self.labels();
        let prompt = render_prompt(req).map_err(|m| labels.err(ErrorClass::BadRequest, m))?;
        let Spawned {
            mut child,
            stdin,
            stdout,
            stderr,
        } = self.spawn(model)?;
        let input_tokens = estimate_tokens(&prompt);
        let work = async {
            let ((), out, err, status) = tokio::join!(
                write_prompt(stdin, prompt),
                read_capped(stdout, self.max_output),
                read_capped(stderr, STDERR_CAP),
                child.wait()
            );
            (out, err, status)
        };
        let (out, err, status) = tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| labels.total_timeout(self.timeout))?;
        let status = status.map_err(|e| labels.wait_failed(&e))?;
        let out = out.map_err(|e| labels.err(ErrorClass::MalformedResponse, &e))?;
        if !status.success() {
            return Err(labels.failed(status, &err.unwrap_or_default()));
        }
        let text = String::from_utf8(out).map_err(|_| labels.invalid_utf8())?;
        let content = text.trim_end_matches(TRAILING).to_owned();
        Ok(ChatResponse {
            id: None,
            model: model.to_owned(),
            usage: Usage {
                // CLIs do not report usage; budgets still need a number.
                input_tokens,
                output_tokens: estimate_tokens(&content),
                cached_tokens: 0,
            },
            content,
            tool_calls: Vec::new(),
            finish_reason: FinishReason::Stop,
        })
    }

    async fn start_stream(&self, model: &str, req: &ChatRequest) -> Result<EventStream, ProviderError> {
        let labels = self.labels();
        let prompt = render_prompt(req).map_err(|m| labels.err(ErrorClass::BadRequest, m))?;
        let Spawned {
            child,
            stdin,
            stdout,
            stderr,
        } = self.spawn(model)?;
        let input_tokens = estimate_tokens(&prompt);
        // Writing the prompt and draining stderr run beside the stdout reads:
        // a child blocked on a full stderr pipe, or printing before it has
        // read a long prompt, would otherwise never finish.
        let side: BoxFuture<'static, Vec<u8>> = Box::pin(async move {
            let ((), err) = tokio::join!(write_prompt(stdin, prompt), read_capped(stderr, STDERR_CAP));
            err.unwrap_or_default()
        });
        let now = Instant::now();
        let state = CliStream {
            labels,
            process: Some(Process {
                child,
                stdout,
                side: MaybeDone::Future(side),
            }),
            total: self.timeout,
            // As tokio's own `timeout` does for a duration too large to add.
            deadline: now
                .checked_add(self.timeout)
                .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30)),
            idle: self.idle,
            cap: self.max_output,
            read: 0,
            buf: vec![0; READ_CHUNK],
            undecoded: Vec::new(),
            held: String::new(),
            content: String::new(),
            input_tokens,
            queue: VecDeque::new(),
        };
        let mut events = Box::pin(futures::stream::unfold(state, |mut s| async move {
            s.next_event().await.map(|e| (e, s))
        }));
        // Failures before the first event come back as `Err`, as the HTTP
        // adapters' do before the first byte: the router falls back on those.
        match events.next().await {
            Some(Ok(first)) => Ok(Box::pin(futures::stream::iter([Ok(first)]).chain(events))),
            Some(Err(e)) => Err(e),
            None => Err(self
                .labels()
                .err(ErrorClass::MalformedResponse, "stream ended without a done event")),
        }
    }
}

/// Trailing line ends are not part of the answer (`echo` adds one).
const TRAILING: [char; 2] = ['\n', '\r'];

/// What errors name, shared by `complete` and `stream` so both classify and
/// word a failure the same way.
#[derive(Debug, Clone)]
struct Labels {
    name: String,
    program: String,
}

impl Labels {
    fn err(&self, class: ErrorClass, message: &str) -> ProviderError {
        ProviderError::new(&self.name, class, message)
    }

    fn total_timeout(&self, total: Duration) -> ProviderError {
        self.err(
            ErrorClass::Timeout(TimeoutKind::Total),
            &format!("`{}` ran longer than {total:?}", self.program),
        )
    }

    fn idle_timeout(&self, idle: Duration) -> ProviderError {
        self.err(
            ErrorClass::Timeout(TimeoutKind::Idle),
            &format!("`{}` printed nothing for {idle:?}", self.program),
        )
    }

    fn wait_failed(&self, e: &std::io::Error) -> ProviderError {
        self.err(ErrorClass::Connection, &format!("waiting for `{}`: {e}", self.program))
    }

    fn read_failed(&self, e: &std::io::Error) -> ProviderError {
        self.err(ErrorClass::MalformedResponse, &format!("reading output: {e}"))
    }

    fn failed(&self, status: ExitStatus, stderr: &[u8]) -> ProviderError {
        self.err(
            ErrorClass::ServerError,
            &format!(
                "`{}` failed ({status}): {}",
                self.program,
                String::from_utf8_lossy(stderr).trim()
            ),
        )
    }

    fn invalid_utf8(&self) -> ProviderError {
        self.err(
            ErrorClass::MalformedResponse,
            &format!("`{}` printed invalid utf-8", self.program),
        )
    }
}

async fn write_prompt(mut stdin: ChildStdin, prompt: String) {
    // A CLI that exits without reading its prompt closes the pipe; its exit
    // status says more than the broken pipe would.
    let _ = stdin.write_all(prompt.as_bytes()).await;
    // Dropping stdin closes it: the CLI sees the end of its prompt.
    drop(stdin);
}

fn too_large(cap: usize) -> String {
    format!("output larger than {cap} bytes")
}

async fn read_capped(reader: impl AsyncRead + Unpin, cap: usize) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    let mut limited = reader.take(cap as u64 + 1);
    limited
        .read_to_end(&mut buf)
        .await
        .map_err(|e| format!("reading output: {e}"))?;
    if buf.len() > cap {
        return Err(too_large(cap));
    }
    Ok(buf)
}

/// The running child of a stream. Dropping it kills the child.
struct Process {
    child: Child,
    stdout: ChildStdout,
    /// Prompt writing and stderr draining; yields stderr.
    side: MaybeDone<BoxFuture<'static, Vec<u8>>>,
}

impl Process {
    /// Reads stdout, driving the side work meanwhile.
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let side_pending = matches!(self.side, MaybeDone::Future(_));
            tokio::select! {
                read = self.stdout.read(buf) => return read,
                () = &mut self.side, if side_pending => {}
            }
        }
    }

    /// Waits for the child to exit and its side work to end; returns the
    /// status and stderr.
    async fn exit(&mut self) -> (std::io::Result<ExitStatus>, Vec<u8>) {
        let (status, ()) = tokio::join!(self.child.wait(), &mut self.side);
        (status, Pin::new(&mut self.side).take_output().unwrap_or_default())
    }
}

/// The state of a CLI stream: the child while it runs, and the bytes and
/// events between its stdout and the caller.
struct CliStream {
    labels: Labels,
    /// `None` once the stream has ended (successfully or not).
    process: Option<Process>,
    total: Duration,
    deadline: Instant,
    idle: Duration,
    cap: usize,
    /// Bytes read from stdout so far.
    read: usize,
    buf: Vec<u8>,
    /// The start of a UTF-8 character whose rest has not been read yet.
    undecoded: Vec<u8>,
    /// Trailing line ends, sent only if more text follows, so the deltas add
    /// up to what `complete` returns (which trims them).
    held: String,
    /// Every delta so far, for the usage estimate.
    content: String,
    input_tokens: u64,
    queue: VecDeque<Result<StreamEvent, ProviderError>>,
}

impl CliStream {
    async fn next_event(&mut self) -> Option<Result<StreamEvent, ProviderError>> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(event);
            }
            self.process.as_ref()?;
            if let Err(e) = self.step().await {
                // Dropping the process kills the child: nothing more is wanted from it.
                self.process = None;
                return Some(Err(e));
            }
        }
    }

    /// Reads once from stdout and queues what that yields.
    async fn step(&mut self) -> Result<(), ProviderError> {
        let Some(process) = self.process.as_mut() else {
            return Ok(());
        };
        // Once the CLI has started printing, a long silence means it hung;
        // before that it may be thinking, which only the total bounds.
        let idle_until = (self.read > 0).then(|| Instant::now().checked_add(self.idle)).flatten();
        let (until, idle) = match idle_until {
            Some(at) if at < self.deadline => (at, true),
            _ => (self.deadline, false),
        };
        let n = match tokio::time::timeout_at(until, process.read(&mut self.buf)).await {
            Err(_) if idle => return Err(self.labels.idle_timeout(self.idle)),
            Err(_) => return Err(self.labels.total_timeout(self.total)),
            Ok(Err(e)) => return Err(self.labels.read_failed(&e)),
            Ok(Ok(n)) => n,
        };
        if n == 0 {
            return self.finish().await;
        }
        self.read += n;
        if self.read > self.cap {
            return Err(self.labels.err(ErrorClass::MalformedResponse, &too_large(self.cap)));
        }
        self.undecoded.extend_from_slice(&self.buf[..n]);
        // A read may end inside a character: decode up to it, keep the rest.
        let complete = match std::str::from_utf8(&self.undecoded) {
            Ok(text) => text.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => return Err(self.labels.invalid_utf8()),
        };
        let rest = self.undecoded.split_off(complete);
        let text =
            String::from_utf8(std::mem::replace(&mut self.undecoded, rest)).map_err(|_| self.labels.invalid_utf8())?;
        self.push_text(&text);
        Ok(())
    }

    fn push_text(&mut self, text: &str) {
        let body = text.trim_end_matches(TRAILING);
        if body.is_empty() {
            self.held.push_str(text);
            return;
        }
        let mut delta = std::mem::take(&mut self.held);
        delta.push_str(body);
        self.held.push_str(&text[body.len()..]);
        self.content.push_str(&delta);
        self.queue.push_back(Ok(StreamEvent::TextDelta { text: delta }));
    }

    /// Stdout is closed: the exit status decides between `done` and an error.
    async fn finish(&mut self) -> Result<(), ProviderError> {
        let Some(process) = self.process.as_mut() else {
            return Ok(());
        };
        let (status, stderr) = tokio::time::timeout_at(self.deadline, process.exit())
            .await
            .map_err(|_| self.labels.total_timeout(self.total))?;
        let status = status.map_err(|e| self.labels.wait_failed(&e))?;
        if !status.success() {
            return Err(self.labels.failed(status, &stderr));
        }
        if !self.undecoded.is_empty() {
            return Err(self.labels.invalid_utf8());
        }
        self.process = None;
        self.queue.push_back(Ok(StreamEvent::Usage(Usage {
            // CLIs do not report usage; budgets still need a number.
            input_tokens: self.input_tokens,
            output_tokens: estimate_tokens(&self.content),
            cached_tokens: 0,
        })));
        self.queue.push_back(Ok(StreamEvent::Done {
            finish_reason: FinishReason::Stop,
            skipped_events: 0,
        }));
        Ok(())
    }
}

/// The conversation as plain text. A lone user message goes through as-is,
/// so `claude -p` sees exactly what the caller wrote.
fn render_prompt(req: &ChatRequest) -> Result<String, &'static str> {
    if !req.tools.is_empty() {
        return Err("the cli adapter cannot offer tools");
    }
    if req
        .messages
        .iter()
        .any(|m| m.content.iter().any(|p| matches!(p, ContentPart::Image { .. })))
    {
        return Err("the cli adapter cannot send images");
    }
    let mut prompt = match req.messages.as_slice() {
        [only] if only.role == Role::User => only.joined_text(),
        messages => {
            let mut text = String::new();
            for m in messages {
                let label = match m.role {
                    Role::System => "System",
                    Role::User => "User",
                    Role::Assistant => "Assistant",
                    Role::Tool => "Tool result",
                };
                if !text.is_empty() {
                    text.push_str("\n\n");
                }
                text.push_str(label);
                text.push_str(": ");
                text.push_str(&m.joined_text());
            }
            text
        }
    };
    match &req.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => prompt.push_str("\n\nRespond with a single JSON object and nothing else."),
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            prompt.push_str("\n\nRespond with a single JSON object matching this JSON Schema and nothing else:\n");
            prompt.push_str(&schema.to_string());
        }
    }
    Ok(prompt)
}

#[async_trait]
impl Provider for CliAdapter {
    fn name(&self) -> &str {
        &self.name
    }

    fn models(&self) -> &[String] {
        &self.models
    }

    fn capabilities(&self, _model: &str) -> Capabilities {
        Capabilities {
            tools: false,
            json_schema: false,
            vision: false,
            stream: true,
        }
    }

    async fn complete(&self, model: &str, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        self.run(model, req).await
    }

    /// Yields stdout as `text_delta`s as it is read; a failure before the
    /// first one comes back as `Err`, later ones as an error item.
    async fn stream(&self, model: &str, req: &ChatRequest) -> Result<EventStream, ProviderError> {
        self.start_stream(model, req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Message;

    #[test]
    fn lone_user_message_is_sent_verbatim() {
        assert_eq!(render_prompt(&ChatRequest::user("hi there")).unwrap(), "hi there");
    }

    #[test]
    fn conversations_are_labelled() {
        let mut req = ChatRequest::user("hi");
        req.messages.insert(0, Message::text(Role::System, "be brief"));
        assert_eq!(render_prompt(&req).unwrap(), "System: be brief\n\nUser: hi");
    }

    #[test]
    fn tools_and_images_are_refused() {
        let mut req = ChatRequest::user("hi");
        req.tools.push(crate::Tool {
            name: "f".into(),
            description: None,
            parameters: serde_json::json!({}),
        });
        assert!(render_prompt(&req).is_err());
    }
}
