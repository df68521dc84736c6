//! The language server for `.route` policies, behind `routec lsp`: the
//! compiler's own diagnostics, hover, navigation, rename, outline,
//! completion and formatting, over the Language Server Protocol on stdio.
//!
//! Each directory of `.route` files is one policy, as `routec check DIR`
//! reads it, with the editor's open buffers in place of their files. Every
//! edit re-runs `policy_lang`'s parse and checks on that policy, so what the
//! editor shows is what `routec check` prints: the same codes, messages,
//! help and labelled spans (as related locations, across files).
//!
//! Built on `lsp-server` and `lsp-types`, rust-analyzer's synchronous
//! plumbing, rather than an async framework: analysis is a pure function
//! that takes ~20 ms on 10,000 lines, so one thread answering messages in
//! order is fast enough and keeps every answer consistent with the last
//! edit, with no runtime, locks or cancellation. The framing is read here
//! (`transport`), so a malformed message is logged and skipped instead of
//! ending the session.
//!
//! ```no_run
//! let stdin = std::io::stdin();
//! policy_lsp::serve(&mut stdin.lock(), std::io::stdout())?;
//! # Ok::<(), policy_lsp::LspError>(())
//! ```
//!
//! **Architecture invariant:** the server never re-implements the language:
//! diagnostics, names, formatting and the words completion offers all come
//! from `policy_lang`, and hover's plans from `router_core`.

mod complete;
mod diagnostics;
mod error;
mod fixes;
mod hover;
mod inlay;
mod lens;
mod line_index;
mod navigate;
mod server;
mod transport;
mod workspace;

use std::io::{BufRead, Write};

pub use error::LspError;

/// Serves one LSP session: reads messages from `input`, writes answers and
/// diagnostics to `output`, until the client sends `exit`.
pub fn serve(input: &mut impl BufRead, output: impl Write) -> Result<(), LspError> {
    server::Server::new(output).run(input)
}
