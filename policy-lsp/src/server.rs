//! The server loop: one thread reads a message, answers it, and publishes
//! what changed, in order. Analysis of a 10,000-line policy takes ~20 ms,
//! so there is no queue to cancel and no state shared between threads.

use std::io::{BufRead, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::Arc;

use lsp_server::{ErrorCode, Message, Notification, Request, RequestId, Response, ResponseError};
use lsp_types::notification::{self as notif, Notification as _};
use lsp_types::request::{self as req, Request as _};
use lsp_types::{
    CompletionOptions, DocumentSymbolResponse, GotoDefinitionResponse, Hover, HoverContents, HoverProviderCapability,
    InitializeResult, LogMessageParams, MarkupContent, MarkupKind, MessageType, OneOf, PrepareRenameResponse,
    PublishDiagnosticsParams, RenameOptions, ServerCapabilities, ServerInfo, TextDocumentSyncCapability,
    TextDocumentSyncKind, TextEdit, Url,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::LspError;
use crate::transport::{self, Frame};
use crate::workspace::{Publish, Workspace};
use crate::{complete, fixes, hover, inlay, lens, navigate};

/// Where the session is in LSP's lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Before `initialize`.
    Starting,
    Running,
    /// After `shutdown`; only `exit` is expected.
    ShutDown,
}

pub(crate) struct Server<W: Write> {
    out: W,
    phase: Phase,
    workspace: Workspace,
    root: Option<PathBuf>,
}

/// What a request handler returns: a JSON result or an error to send.
type Answer = Result<Value, ResponseError>;

fn error(code: ErrorCode, message: impl Into<String>) -> ResponseError {
    ResponseError {
        code: code as i32,
        message: message.into(),
        data: None,
    }
}

fn to_value(v: impl Serialize) -> Answer {
    serde_json::to_value(v).map_err(|e| error(ErrorCode::InternalError, format!("cannot encode the answer: {e}")))
}

fn params<P: DeserializeOwned>(method: &str, v: Value) -> Result<P, ResponseError> {
    serde_json::from_value(v).map_err(|e| error(ErrorCode::InvalidParams, format!("bad `{method}` params: {e}")))
}

impl<W: Write> Server<W> {
    pub(crate) fn new(out: W) -> Self {
        Server {
            out,
            phase: Phase::Starting,
            workspace: Workspace::default(),
            root: None,
        }
    }

    /// Serves until `exit` or the end of input. `Ok` after `shutdown` then
    /// `exit`; [`LspError::ExitWithoutShutdown`] when the client left
    /// without `shutdown`, as LSP asks servers to report.
    pub(crate) fn run(&mut self, input: &mut impl BufRead) -> Result<(), LspError> {
        loop {
            let frame = transport::read(input).map_err(LspError::Read)?;
            match frame {
                Frame::Eof => {
                    return if self.phase == Phase::ShutDown {
                        Ok(())
                    } else {
                        Err(LspError::ExitWithoutShutdown)
                    };
                }
                Frame::Malformed(why) => {
                    tracing::warn!("skipped a malformed message from the client: {why}");
                    self.log(
                        MessageType::WARNING,
                        format!("routec lsp skipped a malformed message: {why}"),
                    )?;
                }
                Frame::Message(Message::Request(r)) => self.request(r)?,
                Frame::Message(Message::Notification(n)) => {
                    if n.method == notif::Exit::METHOD {
                        return if self.phase == Phase::ShutDown {
                            Ok(())
                        } else {
                            Err(LspError::ExitWithoutShutdown)
                        };
                    }
                    self.notification(n)?;
                }
                // The server sends no requests, so expects no responses.
                Frame::Message(Message::Response(r)) => {
                    tracing::debug!("ignored a response to request {}", r.id);
                }
            }
        }
    }

    fn send(&mut self, m: impl Into<Message>) -> Result<(), LspError> {
        m.into().write(&mut self.out).map_err(LspError::Write)
    }

    fn notify(&mut self, method: &str, p: impl Serialize) -> Result<(), LspError> {
        let params = serde_json::to_value(p).map_err(|e| LspError::Write(std::io::Error::other(e)))?;
        self.send(Notification {
            method: method.to_string(),
            params,
        })
    }

    fn log(&mut self, typ: MessageType, message: String) -> Result<(), LspError> {
        self.notify(notif::LogMessage::METHOD, LogMessageParams { typ, message })
    }

    fn publish(&mut self, publish: Publish) -> Result<(), LspError> {
        for (uri, diagnostics) in publish {
            self.notify(
                notif::PublishDiagnostics::METHOD,
                PublishDiagnosticsParams {
                    uri,
                    diagnostics,
                    version: None,
                },
            )?;
        }
        Ok(())
    }

    fn request(&mut self, r: Request) -> Result<(), LspError> {
        let Request { id, method, params } = r;
        let answer = match self.phase {
            Phase::Starting if method != req::Initialize::METHOD => Err(error(
                ErrorCode::ServerNotInitialized,
                format!("`{method}` before `initialize`"),
            )),
            Phase::ShutDown => Err(error(ErrorCode::InvalidRequest, format!("`{method}` after `shutdown`"))),
            _ => {
                // Handlers never panic by design; should one, the request
                // fails and the session goes on.
                match catch_unwind(AssertUnwindSafe(|| self.answer(&method, params))) {
                    Ok(a) => a,
                    Err(_) => {
                        tracing::error!("the `{method}` handler panicked; answered with an internal error");
                        Err(error(
                            ErrorCode::InternalError,
                            format!("internal error answering `{method}`"),
                        ))
                    }
                }
            }
        };
        if let Err(e) = &answer {
            tracing::warn!("`{method}` failed: {}", e.message);
        }
        self.respond(id, answer)
    }

    fn respond(&mut self, id: RequestId, answer: Answer) -> Result<(), LspError> {
        let response = match answer {
            Ok(result) => Response {
                id,
                result: Some(result),
                error: None,
            },
            Err(e) => Response {
                id,
                result: None,
                error: Some(e),
            },
        };
        self.send(response)
    }

    fn answer(&mut self, method: &str, p: Value) -> Answer {
        match method {
            req::Initialize::METHOD => {
                let p: lsp_types::InitializeParams = params(method, p)?;
                #[expect(deprecated, reason = "older clients send only `rootUri`")]
                let root = p
                    .workspace_folders
                    .as_ref()
                    .and_then(|f| f.first())
                    .map(|f| f.uri.clone())
                    .or(p.root_uri);
                self.root = root.and_then(|u| u.to_file_path().ok());
                self.phase = Phase::Running;
                to_value(InitializeResult {
                    capabilities: capabilities(),
                    server_info: Some(ServerInfo {
                        name: "routec lsp".to_string(),
                        version: Some(env!("CARGO_PKG_VERSION").to_string()),
                    }),
                })
            }
            req::Shutdown::METHOD => {
                self.phase = Phase::ShutDown;
                Ok(Value::Null)
            }
            req::HoverRequest::METHOD => {
                let p: lsp_types::HoverParams = params(method, p)?;
                let pos = p.text_document_position_params;
                let found = self.at(&pos.text_document.uri, pos.position);
                let Some((policy, _, target)) = found else {
                    return Ok(Value::Null);
                };
                let Some(text) = hover::hover(policy, &target) else {
                    return Ok(Value::Null);
                };
                to_value(Hover {
                    contents: HoverContents::Markup(MarkupContent {
                        kind: MarkupKind::Markdown,
                        value: text,
                    }),
                    range: None,
                })
            }
            req::GotoDefinition::METHOD => {
                let p: lsp_types::GotoDefinitionParams = params(method, p)?;
                let pos = p.text_document_position_params;
                let Some((policy, _, target)) = self.at(&pos.text_document.uri, pos.position) else {
                    return Ok(Value::Null);
                };
                match navigate::definition(policy, &target) {
                    Some(loc) => to_value(GotoDefinitionResponse::Scalar(loc)),
                    None => Ok(Value::Null),
                }
            }
            req::References::METHOD => {
                let p: lsp_types::ReferenceParams = params(method, p)?;
                let pos = p.text_document_position;
                let Some((policy, _, target)) = self.at(&pos.text_document.uri, pos.position) else {
                    return Ok(Value::Null);
                };
                to_value(navigate::references(policy, &target, p.context.include_declaration))
            }
            req::PrepareRenameRequest::METHOD => {
                let p: lsp_types::TextDocumentPositionParams = params(method, p)?;
                let Some(path) = navigate::path_of(&p.text_document.uri) else {
                    return Ok(Value::Null);
                };
                let Some((_, file)) = self.workspace.file(&path) else {
                    return Ok(Value::Null);
                };
                match navigate::symbol_at(file, p.position) {
                    Some(s) => to_value(PrepareRenameResponse::Range(navigate::name_range(file, s))),
                    None => Ok(Value::Null),
                }
            }
            req::Rename::METHOD => {
                let p: lsp_types::RenameParams = params(method, p)?;
                let pos = p.text_document_position;
                let Some((policy, _, target)) = self.at(&pos.text_document.uri, pos.position) else {
                    return Err(error(ErrorCode::InvalidParams, "no name to rename here"));
                };
                if let Some(why) = navigate::invalid_name(target.kind(), &p.new_name) {
                    return Err(error(ErrorCode::InvalidParams, why));
                }
                to_value(navigate::rename(policy, &target, &p.new_name))
            }
            req::DocumentSymbolRequest::METHOD => {
                let p: lsp_types::DocumentSymbolParams = params(method, p)?;
                let Some((_, file)) =
                    navigate::path_of(&p.text_document.uri).and_then(|path| self.workspace.file(&path))
                else {
                    return Ok(Value::Null);
                };
                to_value(DocumentSymbolResponse::Nested(navigate::document_symbols(file)))
            }
            req::Formatting::METHOD => {
                let p: lsp_types::DocumentFormattingParams = params(method, p)?;
                let Some(path) = navigate::path_of(&p.text_document.uri) else {
                    return Ok(Value::Null);
                };
                let Some((_, file)) = self.workspace.file(&path) else {
                    return Ok(Value::Null);
                };
                let source = policy_lang::SourceFile::new(path.display().to_string(), file.text());
                match policy_lang::format(&source) {
                    Ok(formatted) if formatted == file.text() => to_value(Vec::<TextEdit>::new()),
                    Ok(formatted) => to_value(vec![TextEdit::new(file.index.whole(file.text()), formatted)]),
                    Err(report) => Err(error(
                        ErrorCode::RequestFailed,
                        format!(
                            "`{}` does not parse ({} error{}); fix its syntax first",
                            path.display(),
                            report.errors().len(),
                            if report.errors().len() == 1 { "" } else { "s" }
                        ),
                    )),
                }
            }
            req::Completion::METHOD => {
                let p: lsp_types::CompletionParams = params(method, p)?;
                let pos = p.text_document_position;
                let Some(path) = navigate::path_of(&pos.text_document.uri) else {
                    return Ok(Value::Null);
                };
                let Some((policy, file)) = self.workspace.file(&path) else {
                    return Ok(Value::Null);
                };
                let offset = file.index.offset(file.text(), pos.position);
                let before = file.text().get(..offset).unwrap_or_default();
                to_value(complete::complete(policy, before))
            }
            req::CodeActionRequest::METHOD => {
                let p: lsp_types::CodeActionParams = params(method, p)?;
                let uri = p.text_document.uri;
                let Some(path) = navigate::path_of(&uri) else {
                    return Ok(Value::Null);
                };
                let Some(policy) = path.parent().and_then(|d| self.workspace.dirs.get(d)) else {
                    return Ok(Value::Null);
                };
                let mut actions = Vec::new();
                for d in policy.diagnostics.get(&path).into_iter().flatten() {
                    let overlaps = d.range.start <= p.range.end && p.range.start <= d.range.end;
                    let Some(found) = d.data.as_ref().and_then(|v| v.get("fixes")) else {
                        continue;
                    };
                    let found: Vec<fixes::Fix> = serde_json::from_value(found.clone()).unwrap_or_default();
                    if !overlaps {
                        continue;
                    }
                    for (i, fix) in found.into_iter().enumerate() {
                        let mut changes = std::collections::HashMap::new();
                        changes.insert(uri.clone(), fix.edits);
                        actions.push(lsp_types::CodeActionOrCommand::CodeAction(lsp_types::CodeAction {
                            title: fix.title,
                            kind: Some(lsp_types::CodeActionKind::QUICKFIX),
                            diagnostics: Some(vec![d.clone()]),
                            edit: Some(lsp_types::WorkspaceEdit::new(changes)),
                            is_preferred: Some(i == 0),
                            ..lsp_types::CodeAction::default()
                        }));
                    }
                }
                to_value(actions)
            }
            req::CodeLensRequest::METHOD => {
                let p: lsp_types::CodeLensParams = params(method, p)?;
                let uri = p.text_document.uri;
                let Some((policy, file)) = navigate::path_of(&uri).and_then(|path| self.workspace.file(&path)) else {
                    return Ok(Value::Null);
                };
                to_value(lens::lenses(policy, file, &uri))
            }
            req::ExecuteCommand::METHOD => {
                let p: lsp_types::ExecuteCommandParams = params(method, p)?;
                if p.command != lens::EXPLAIN {
                    return Err(error(
                        ErrorCode::InvalidParams,
                        format!("unknown command `{}`", p.command),
                    ));
                }
                let args: (Url, String) = serde_json::from_value(Value::Array(p.arguments)).map_err(|e| {
                    error(
                        ErrorCode::InvalidParams,
                        format!("`{}` takes a file URI and a workload: {e}", lens::EXPLAIN),
                    )
                })?;
                let explained = navigate::path_of(&args.0)
                    .and_then(|path| self.workspace.file(&path))
                    .and_then(|(policy, _)| lens::explain(policy, &args.1))
                    .ok_or_else(|| {
                        error(
                            ErrorCode::RequestFailed,
                            format!(
                                "no plan for workload `{}`: the policy has errors or no such workload",
                                args.1
                            ),
                        )
                    })?;
                let shown = lsp_types::ShowMessageParams {
                    typ: MessageType::INFO,
                    message: explained.clone(),
                };
                if let Err(e) = self.notify(notif::ShowMessage::METHOD, shown) {
                    tracing::warn!("cannot show the explanation: {e}");
                }
                to_value(explained)
            }
            req::InlayHintRequest::METHOD => {
                let p: lsp_types::InlayHintParams = params(method, p)?;
                let Some((policy, file)) =
                    navigate::path_of(&p.text_document.uri).and_then(|path| self.workspace.file(&path))
                else {
                    return Ok(Value::Null);
                };
                to_value(inlay::hints(policy, file))
            }
            _ => Err(error(ErrorCode::MethodNotFound, format!("`{method}` is not supported"))),
        }
    }

    /// The policy, file and name at a position.
    fn at(
        &self,
        uri: &Url,
        pos: lsp_types::Position,
    ) -> Option<(
        &crate::workspace::PolicyDir,
        &crate::workspace::File,
        policy_lang::Symbol,
    )> {
        let path = navigate::path_of(uri)?;
        let (policy, file) = self.workspace.file(&path)?;
        let target = navigate::symbol_at(file, pos)?.clone();
        Some((policy, file, target))
    }

    fn notification(&mut self, n: Notification) -> Result<(), LspError> {
        if self.phase != Phase::Running {
            tracing::debug!("ignored `{}` outside a running session", n.method);
            return Ok(());
        }
        let method = n.method.clone();
        let outcome = catch_unwind(AssertUnwindSafe(|| self.notified(n)));
        match outcome {
            Ok(Ok(Some(publish))) => self.publish(publish),
            Ok(Ok(None)) => Ok(()),
            Ok(Err(e)) => {
                tracing::warn!("`{method}` ignored: {}", e.message);
                self.log(
                    MessageType::WARNING,
                    format!("routec lsp ignored `{method}`: {}", e.message),
                )
            }
            Err(_) => {
                tracing::error!("the `{method}` handler panicked; the notification was dropped");
                Ok(())
            }
        }
    }

    fn notified(&mut self, n: Notification) -> Result<Option<Publish>, ResponseError> {
        let method = n.method.as_str();
        let file_path = |uri: &Url| {
            uri.to_file_path()
                .map_err(|()| error(ErrorCode::InvalidParams, format!("`{uri}` is not a file")))
        };
        Ok(match method {
            notif::Initialized::METHOD => {
                let root = self.root.clone();
                root.and_then(|r| self.workspace.open_dir(&r))
            }
            notif::DidOpenTextDocument::METHOD => {
                let p: lsp_types::DidOpenTextDocumentParams = params(method, n.params)?;
                let path = file_path(&p.text_document.uri)?;
                Some(self.workspace.set_text(&path, Arc::from(p.text_document.text)))
            }
            notif::DidChangeTextDocument::METHOD => {
                let p: lsp_types::DidChangeTextDocumentParams = params(method, n.params)?;
                let path = file_path(&p.text_document.uri)?;
                // Full sync: the last change holds the whole text.
                let Some(change) = p.content_changes.into_iter().last() else {
                    return Ok(None);
                };
                if change.range.is_some() {
                    return Err(error(ErrorCode::InvalidParams, "ranged change under full sync"));
                }
                Some(self.workspace.set_text(&path, Arc::from(change.text)))
            }
            notif::DidCloseTextDocument::METHOD => {
                let p: lsp_types::DidCloseTextDocumentParams = params(method, n.params)?;
                let path = file_path(&p.text_document.uri)?;
                Some(self.workspace.close(&path))
            }
            notif::DidChangeWatchedFiles::METHOD => {
                let p: lsp_types::DidChangeWatchedFilesParams = params(method, n.params)?;
                let mut all = Vec::new();
                for change in p.changes {
                    if let Ok(path) = change.uri.to_file_path()
                        && let Some(publish) = self.workspace.changed_on_disk(&path)
                    {
                        all.extend(publish);
                    }
                }
                Some(all)
            }
            _ => {
                tracing::debug!("ignored notification `{method}`");
                None
            }
        })
    }
}

fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        rename_provider: Some(OneOf::Right(RenameOptions {
            prepare_provider: Some(true),
            work_done_progress_options: Default::default(),
        })),
        document_symbol_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        code_action_provider: Some(lsp_types::CodeActionProviderCapability::Options(
            lsp_types::CodeActionOptions {
                code_action_kinds: Some(vec![lsp_types::CodeActionKind::QUICKFIX]),
                ..lsp_types::CodeActionOptions::default()
            },
        )),
        inlay_hint_provider: Some(OneOf::Left(true)),
        code_lens_provider: Some(lsp_types::CodeLensOptions {
            resolve_provider: Some(false),
        }),
        execute_command_provider: Some(lsp_types::ExecuteCommandOptions {
            commands: vec![lens::EXPLAIN.to_string()],
            ..lsp_types::ExecuteCommandOptions::default()
        }),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec!["/".to_string()]),
            ..CompletionOptions::default()
        }),
        ..ServerCapabilities::default()
    }
}
