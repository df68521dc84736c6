//! `routec`: check, format, explain and serve LLM routing policies.
//!
//! A thin edge: argument parsing, rendering and exit codes. Everything else
//! lives in the library crates.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the CLI is the edge that prints; libraries never do"
)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// Exit codes shared by every subcommand.
pub(crate) mod exit {
    /// The command did its job and found nothing wrong.
    pub const OK: u8 = 0;
    /// The command ran and found problems (check errors, files that would change).
    pub const FAILED: u8 = 1;
    /// Bad usage or an I/O error: the command could not do its job.
    pub const USAGE: u8 = 2;
}

#[derive(Parser)]
#[command(
    name = "routec",
    version,
    about = "A policy-compiled LLM router",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check policies for errors and warnings (exit 0 clean, 1 on errors, 2 on usage or I/O errors)
    Check(cmd::check::Args),
    /// Rewrite policies in canonical form, keeping comments
    Fmt(cmd::fmt::Args),
    /// Show or unlock workload budgets in a budget store
    Budget(cmd::budget::Args),
    /// Decide one call offline: print the attempt plan and why each candidate was kept or dropped
    Explain(cmd::explain::Args),
    /// Draw the compiled route graph (workloads, routes, targets) as Graphviz DOT or Mermaid
    Graph(cmd::graph::Args),
    /// Replay traffic through a policy offline: cost, latency, budgets, savings (or --generate traffic)
    Simulate(cmd::simulate::Args),
    /// Serve a policy as an OpenAI-compatible HTTP gateway (POST /v1/chat/completions)
    Serve(cmd::serve::Args),
    /// Run the gateway on a built-in policy of simulated providers, send it traffic, show what happened
    Demo(cmd::demo::Args),
    /// Compare two policies per workload; exit 1 when data-class exposure widens (a CI gate)
    Diff(cmd::diff::Args),
    /// Run the `test` blocks of policies through the engine (exit 0 all pass, 1 on a failure, 2 on usage errors)
    Test(cmd::test::Args),
    /// Serve the language server for `.route` files on stdio (editors start it)
    Lsp(cmd::lsp::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Check(args) => cmd::check::run(args),
        Command::Fmt(args) => cmd::fmt::run(args),
        Command::Budget(args) => cmd::budget::run(args),
        Command::Explain(args) => cmd::explain::run(args),
        Command::Graph(args) => cmd::graph::run(args),
        Command::Simulate(args) => cmd::simulate::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Diff(args) => cmd::diff::run(args),
        Command::Test(args) => cmd::test::run(args),
        Command::Lsp(args) => cmd::lsp::run(args),
    };
    ExitCode::from(code)
}
