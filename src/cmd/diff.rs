//! `routec diff`: what changes between two policies, workload by workload
//! (reachable targets, data-class exposure, worst-case cost per call,
//! attempt bound), and with `--traffic`, how many requests would route
//! differently and what it costs. A CI gate: exit 1 when the new policy
//! widens any workload's data-class exposure.
//!
//! The comparison is `router_sim::diff`; "widens" is defined there and in
//! docs/savings.md. Per workload, `router_sim::witnesses` adds a concrete
//! request on which the first target, the reachable set or the data
//! exposure changed, or says that none exists.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal};
use std::path::PathBuf;

use router_sim::{SimError, WitnessKind, WorkloadWitnesses, diff, diff_traffic, witnesses};

use crate::cmd::simulate::load_policy;
use crate::exit;

/// Arguments of `routec diff`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exposure widens when a workload's declared data class is lowered, or internal or private \
                        data it may carry can newly reach a provider, a new jurisdiction, or a provider that now \
                        trains on or keeps inputs.\n\
                        Witnesses: per workload, a request (its facts) on which the first target, the set of \
                        reachable targets or the data exposure changed, from the cells the policies' conditions \
                        and split keys define; or that the two decide identically.\n\
                        Exit status: 0 when no workload's data-class exposure widens (and no --fail-on gate \
                        trips), 1 when one does, 2 on usage, I/O or policy errors."
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
    /// Also exit 1 on these changes
    #[arg(long, value_enum, value_delimiter = ',', value_name = "GATE,...")]
    pub fail_on: Vec<Gate>,
}

/// Changes `--fail-on` can make fail.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// A witness request whose first target changed.
    TargetChange,
    /// A workload's worst-case cost per call went up (or became unknown).
    CostIncrease,
}

/// How `diff` prints.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Readable text.
    Human,
    /// One JSON document.
    Json,
    /// GitHub Actions annotations.
    Github,
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
    let found = witnesses(&old, &new);
    match args.format {
        Format::Human => print!("{}{}", result.to_human(), witnesses_text(&found)),
        Format::Json => {
            let mut value: serde_json::Value = serde_json::from_str(&result.to_json()).unwrap_or_default();
            if let serde_json::Value::Object(map) = &mut value {
                map.insert(
                    "witnesses".to_string(),
                    serde_json::to_value(&found).unwrap_or_default(),
                );
            }
            println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
        }
        Format::Github => print!("{}", github(&result, &found)),
    }
    let target_change = args.fail_on.contains(&Gate::TargetChange)
        && found
            .iter()
            .any(|w| w.witnesses.iter().any(|x| x.kind == WitnessKind::FirstTarget));
    let cost_increase = args.fail_on.contains(&Gate::CostIncrease)
        && result.workloads.iter().any(|w| {
            w.worst_case_cost
                .as_ref()
                .is_some_and(|c| match (dollars(&c.old), dollars(&c.new)) {
                    (Some(a), Some(b)) => b > a,
                    (_, None) => true,
                    (None, Some(_)) => false,
                })
        });
    if result.widens_exposure() || target_change || cost_increase {
        exit::FAILED
    } else {
        exit::OK
    }
}

/// `$0.135` as dollars.
fn dollars(s: &Option<String>) -> Option<f64> {
    s.as_deref()?.trim_start_matches('$').parse().ok()
}

fn witnesses_text(found: &[WorkloadWitnesses]) -> String {
    let mut out = String::from("\nwitnesses (requests on which the two decide differently):\n");
    for w in found {
        let scope = if w.complete {
            format!("{} cells", w.cells)
        } else {
            format!("{} cells, each fact varied on its own", w.cells)
        };
        if w.witnesses.is_empty() {
            out.push_str(&format!(
                "  {}: none; the two decide identically ({scope})\n",
                w.workload
            ));
        }
        for x in &w.witnesses {
            out.push_str(&format!("  {}: {}\n", w.workload, x.text));
        }
    }
    out
}

fn github(result: &router_sim::PolicyDiff, found: &[WorkloadWitnesses]) -> String {
    let esc = |s: &str| s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    let mut out = String::new();
    for w in &result.widened {
        out.push_str(&format!(
            "::error title=routec diff::{}\n",
            esc(&format!("workload `{w}`: data-class exposure widens"))
        ));
    }
    for w in found {
        for x in &w.witnesses {
            out.push_str(&format!(
                "::warning title=routec diff::{}\n",
                esc(&format!("workload `{}`: {}", w.workload, x.text))
            ));
        }
    }
    out
}
