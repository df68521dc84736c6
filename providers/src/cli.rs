//! A local command as a provider: subscription CLIs (`claude -p`, `gemini`,
//! `llm`) read a prompt on stdin and print the answer.
//!
//! The child is started with `kill_on_drop`, so when the runtime abandons an
//! attempt (its deadline passed, the caller went away) the process dies with
//! the future instead of running on and billing a subscription's quota. Only
//! the direct child is killed: a wrapper script should `exec` the real tool.

use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::config::{AdapterConfig, ConfigError};
use crate::error::{ErrorClass, ProviderError, TimeoutKind};
use crate::provider::{Capabilities, EventStream, Provider};
use crate::tokens::estimate_tokens;
use crate::types::{ChatRequest, ChatResponse, ContentPart, FinishReason, ResponseFormat, Role, StreamEvent, Usage};

/// Used when no total timeout is configured: a CLI has no first byte to wait for.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// A provider backed by a local command.
#[derive(Debug)]
pub(crate) struct CliAdapter {
    name: String,
    command: Vec<String>,
    timeout: Duration,
    max_output: usize,
    models: Vec<String>,
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
            max_output: config.max_body_bytes,
            models: config.models,
        })
    }

    fn err(&self, class: ErrorClass, message: &str) -> ProviderError {
        ProviderError::new(&self.name, class, message)
    }

    async fn run(&self, model: &str, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let prompt = render_prompt(req).map_err(|m| self.err(ErrorClass::BadRequest, m))?;
        let program = &self.command[0];
        let mut child = Command::new(program)
            .args(&self.command[1..])
            .env("ROUTEC_MODEL", model)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| self.err(ErrorClass::Connection, &format!("could not start `{program}`: {e}")))?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(self.err(ErrorClass::Connection, "child process has no pipes"));
        };
        let write = async move {
            // A CLI that exits without reading its prompt closes the pipe;
            // its exit status says more than the broken pipe would.
            let _ = stdin.write_all(prompt.as_bytes()).await;
            drop(stdin);
        };
        let work = async {
            let ((), out, err, status) = tokio::join!(
                write,
                read_capped(stdout, self.max_output),
                read_capped(stderr, 64 * 1024),
                child.wait()
            );
            (out, err, status)
        };
        let (out, err, status) = tokio::time::timeout(self.timeout, work).await.map_err(|_| {
            self.err(
                ErrorClass::Timeout(TimeoutKind::Total),
                &format!("`{program}` ran longer than {:?}", self.timeout),
            )
        })?;
        let status = status.map_err(|e| self.err(ErrorClass::Connection, &format!("waiting for `{program}`: {e}")))?;
        let out = out.map_err(|e| self.err(ErrorClass::MalformedResponse, &e))?;
        if !status.success() {
            let stderr = err.unwrap_or_default();
            return Err(self.err(
                ErrorClass::ServerError,
                &format!(
                    "`{program}` failed ({status}): {}",
                    String::from_utf8_lossy(&stderr).trim()
                ),
            ));
        }
        let text = String::from_utf8(out).map_err(|_| {
            self.err(
                ErrorClass::MalformedResponse,
                &format!("`{program}` printed invalid utf-8"),
            )
        })?;
        let content = text.trim_end_matches(['\n', '\r']).to_owned();
        Ok(ChatResponse {
            id: None,
            model: model.to_owned(),
            usage: Usage {
                // CLIs do not report usage; budgets still need a number.
                input_tokens: estimate_tokens(&prompt_for_usage(req)),
                output_tokens: estimate_tokens(&content),
                cached_tokens: 0,
            },
            content,
            tool_calls: Vec::new(),
            finish_reason: FinishReason::Stop,
        })
    }
}

async fn read_capped(reader: impl AsyncRead + Unpin, cap: usize) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    let mut limited = reader.take(cap as u64 + 1);
    limited
        .read_to_end(&mut buf)
        .await
        .map_err(|e| format!("reading output: {e}"))?;
    if buf.len() > cap {
        return Err(format!("output larger than {cap} bytes"));
    }
    Ok(buf)
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

fn prompt_for_usage(req: &ChatRequest) -> String {
    render_prompt(req).unwrap_or_default()
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
            stream: false,
        }
    }

    async fn complete(&self, model: &str, req: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        self.run(model, req).await
    }

    /// Runs the command to completion, then yields its answer as one delta:
    /// honest about `capabilities().stream` being false, and still usable by
    /// a caller that asked for a stream.
    async fn stream(&self, model: &str, req: &ChatRequest) -> Result<EventStream, ProviderError> {
        let response = self.run(model, req).await?;
        let events = vec![
            Ok(StreamEvent::TextDelta { text: response.content }),
            Ok(StreamEvent::Usage(response.usage)),
            Ok(StreamEvent::Done {
                finish_reason: response.finish_reason,
            }),
        ];
        Ok(Box::pin(futures::stream::iter(events)))
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
