//! Why the server stopped.

use miette::Diagnostic;
use thiserror::Error;

/// Why [`serve`](crate::serve) returned an error. Bad messages from the
/// client never end a session; only a broken stream or a client that left
/// without `shutdown` does.
#[derive(Debug, Error, Diagnostic)]
#[non_exhaustive]
pub enum LspError {
    /// Reading from the client failed.
    #[error("cannot read from the client: {0}")]
    #[diagnostic(code(routec::lsp::read))]
    Read(#[source] std::io::Error),
    /// Writing to the client failed.
    #[error("cannot write to the client: {0}")]
    #[diagnostic(code(routec::lsp::write))]
    Write(#[source] std::io::Error),
    /// The client exited (or closed the stream) without `shutdown` first.
    #[error("the client exited without `shutdown`")]
    #[diagnostic(code(routec::lsp::no_shutdown))]
    ExitWithoutShutdown,
}
