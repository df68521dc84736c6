//! One module per subcommand; each exposes `Args` (clap) and `run(Args) -> u8`.

pub mod budget;
pub mod check;
pub mod demo;
pub mod diff;
pub mod explain;
pub mod fmt;
pub mod graph;
pub mod lsp;
pub mod serve;
pub mod simulate;
pub mod test;
