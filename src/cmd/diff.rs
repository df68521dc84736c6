//! `routec diff`: what changes between two policies, workload by workload
//! (reachable targets, data-class exposure, worst-case cost per call,
//! attempt bound), and with `--traffic`, how many requests would route
//! differently and what it costs. A CI gate: exit 1 when the new policy
//! widens any workload's data-class exposure.
//!
//! The comparison is `router_sim::diff`; "widens" is defined there and in
//! docs/savings.md.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal};
use std::path::PathBuf;

use router_sim::{SimError, diff, diff_traffic};

use crate::cmd::simulate::load_policy;
use crate::exit;

/// Arguments of `routec diff`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exposure widens when a workload's declared data class is lowered, or internal or private \
                        data it may carry can newly reach a provider, a new jurisdiction, or a provider that now \
                        trains on or keeps inputs.\n\
                        Exit status: 0 when no workload's data-class exposure widens, 1 when one does, 2 on usage, \
                        I/O or policy errors."
)]
pub struct Args {
    /// The policy as it is: a `.route` file or a directory of them
    pub old: PathBuf,
    /// The policy as proposed
    pub new: PathBuf,
    /// Replay this traffic (JSON lines) through both and compare routing and cost
    #[arg(long, value_name = "FILE")]
    pub traffic: Option<PathBuf>,
    /// Seed for the replay's random draws
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// How `diff` prints.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Readable text.
    Human,
    /// One JSON document.
    Json,
}

/// Runs the command and returns its exit code.
pub fn run(args: Args) -> u8 {
    let (Some(old), Some(new)) = (load_policy(&args.old), load_policy(&args.new)) else {
        return exit::USAGE;
    };
    let mut result = diff(&old, &new);
    if let Some(path) = &args.traffic {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: cannot read traffic `{}`: {e}", path.display());
                return exit::USAGE;
            }
        };
        let size = file.metadata().ok().map(|m| m.len());
        let input: Box<dyn BufRead> = Box::new(BufReader::with_capacity(1 << 16, file));
        let bar = size
            .filter(|_| io::stderr().is_terminal())
            .map(indicatif::ProgressBar::new);
        let replay = diff_traffic(&old, &new, input, args.seed, &mut |p| {
            if let Some(bar) = &bar {
                bar.set_position(p.bytes);
            }
        });
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        match replay {
            Ok(t) => result.traffic = Some(t),
            Err(SimError::Traffic(e)) => {
                eprintln!("error: `{}`: {e}", path.display());
                return exit::USAGE;
            }
            Err(e) => {
                eprintln!("error: {e}");
                return exit::USAGE;
            }
        }
    }
    match args.format {
        Format::Human => print!("{}", result.to_human()),
        Format::Json => print!("{}", result.to_json()),
    }
    if result.widens_exposure() {
        exit::FAILED
    } else {
        exit::OK
    }
}
