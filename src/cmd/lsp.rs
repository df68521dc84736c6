//! `routec lsp`: the language server for `.route` files, on stdin/stdout.
//! Editors start it (see docs/editors.md); its log goes to stderr, filtered
//! by `RUST_LOG` (default `info`), or to `--log FILE`.

use std::path::PathBuf;

use crate::exit;

/// Arguments of `routec lsp`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Speaks the Language Server Protocol on stdin/stdout; editors start it, people rarely do. \
                        Exit status: 0 after the client's `shutdown` and `exit`, 1 when the client left without \
                        `shutdown`, 2 on an I/O error."
)]
pub struct Args {
    /// Append the log here instead of stderr
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Accepted for editors that pass it (VS Code's client does); stdio is the only transport
    #[arg(long, hide = true)]
    pub stdio: bool,
}

/// Runs the server and returns its exit code.
pub fn run(args: Args) -> u8 {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false);
    let _ = match &args.log {
        Some(path) => match std::fs::OpenOptions::new().create(true).append(true).open(path) {
            Ok(file) => builder.with_writer(std::sync::Mutex::new(file)).try_init(),
            Err(e) => {
                eprintln!("error: cannot open the log `{}`: {e}", path.display());
                return exit::USAGE;
            }
        },
        None => builder.with_writer(std::io::stderr).try_init(),
    };
    tracing::info!("routec lsp {} started", env!("CARGO_PKG_VERSION"));
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    match policy_lsp::serve(&mut stdin.lock(), stdout.lock()) {
        Ok(()) => {
            tracing::info!("routec lsp stopped after `shutdown` and `exit`");
            exit::OK
        }
        Err(policy_lsp::LspError::ExitWithoutShutdown) => {
            tracing::warn!("the client exited without `shutdown`");
            exit::FAILED
        }
        Err(e) => {
            tracing::error!("{e}");
            exit::USAGE
        }
    }
}
