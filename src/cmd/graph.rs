//! `routec graph`: draw the compiled route graph — workloads, routes and
//! targets — as Graphviz DOT or Mermaid, with edges into providers that take
//! less than `private` data marked (dashed), and edges that would send a
//! workload's data below its class in red.

use std::path::PathBuf;

use router_core::{DrawFormat, draw};

use crate::exit;

/// Arguments of `routec graph`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Render with Graphviz: routec graph POLICY --format dot | dot -Tsvg > graph.svg")]
pub struct Args {
    /// The policy: a `.route` file or a directory of them
    pub policy: PathBuf,
    /// Draw only what this workload reaches (name or alias)
    #[arg(long, short)]
    pub workload: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Dot)]
    pub format: Format,
}

/// Drawing formats.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Graphviz DOT.
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
}

/// Runs the command and returns its exit code.
pub fn run(args: Args) -> u8 {
    let Some(policy) = super::explain::load_policy(&args.policy) else {
        return exit::USAGE;
    };
    let workload = match &args.workload {
        None => None,
        Some(name) => match policy.workload_id(name) {
            Some(id) => Some(id),
            None => {
                let known: Vec<&str> = policy.workloads.iter().map(|w| w.name.as_str()).collect();
                eprintln!(
                    "error: the policy has no workload `{name}`; it has: {}",
                    known.join(", ")
                );
                return exit::USAGE;
            }
        },
    };
    let format = match args.format {
        Format::Dot => DrawFormat::Dot,
        Format::Mermaid => DrawFormat::Mermaid,
    };
    print!("{}", draw(&policy, workload, format));
    exit::OK
}
