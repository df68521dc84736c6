//! `routec simulate`: replay a traffic file through a policy offline and
//! report cost, latency, fallbacks, budget halts, data-class violations and
//! the savings against one frontier model; or generate traffic with
//! `--generate seed-mix`.
//!
//! The work is `router-sim`'s; this file parses arguments, draws the
//! progress bar (only when stderr is a terminal), renders and picks the
//! exit code.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use miette::{GraphicalReportHandler, GraphicalTheme};
use router_core::Policy;
use router_sim::{CheckPassRates, DEFAULT_START_MS, Mix, SimError, SimOptions, render_html, simulate};

use crate::exit;

/// Arguments of `routec simulate`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Traffic is one JSON object a line: {\"ts\":\"2026-11-01T09:30:00Z\",\"workload\":\"simple_qa\",\
                        \"input_tokens\":420,\"output_tokens\":180,\"user\":\"u0042\"} with optional task, max_output, \
                        tools, images, json_schema, stream, data and metadata.\n\
                        Exit status: 0 when the replay finds no data-class violation, 1 when it finds one, 2 on \
                        usage, I/O or policy errors."
)]
pub struct Args {
    /// The policy: a `.route` file or a directory of them
    #[arg(required_unless_present = "generate")]
    pub policy: Option<PathBuf>,
    /// Traffic to replay: a JSON-lines file, or `-` for stdin
    #[arg(long, value_name = "FILE", required_unless_present = "generate")]
    pub traffic: Option<PathBuf>,
    /// Price every request on this `provider/model` for the savings ratio
    /// [default: the policy's most expensive target by output price]
    #[arg(long, value_name = "PROVIDER/MODEL")]
    pub baseline: Option<String>,
    /// Seed for every random draw (same seed, same report)
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Write the report here instead of stdout
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Pass rate of every quality check, e.g. `95%` [default: per check, see the report]
    #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
    pub check_pass_rate: Option<u32>,
    /// Write generated traffic to stdout instead of simulating: `seed-mix`
    #[arg(long, value_name = "MIX", conflicts_with_all = ["policy", "traffic", "baseline"])]
    pub generate: Option<String>,
    /// Lines to generate
    #[arg(long, default_value_t = 2_000, requires = "generate")]
    pub requests: u64,
}

/// How `simulate` prints its report.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Tables for a terminal.
    Human,
    /// One JSON document.
    Json,
    /// One self-contained HTML page with a cost-over-time chart.
    Html,
}

/// `95%`, `95` or `99.5%` as basis points.
fn parse_percent(s: &str) -> Result<u32, String> {
    let n: f64 = s
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("`{s}` is not a percentage"))?;
    if !(0.0..=100.0).contains(&n) {
        return Err(format!("`{s}` is not between 0% and 100%"));
    }
    Ok((n * 100.0).round() as u32)
}

/// Runs the command and returns its exit code.
pub fn run(args: Args) -> u8 {
    if let Some(mix) = &args.generate {
        return generate(mix, args.requests, args.seed);
    }
    let (Some(policy_path), Some(traffic)) = (&args.policy, &args.traffic) else {
        eprintln!("error: `routec simulate` needs a POLICY and --traffic FILE (or --generate MIX)");
        return exit::USAGE;
    };
    let Some(policy) = load_policy(policy_path) else {
        return exit::USAGE;
    };
    let options = SimOptions {
        seed: args.seed,
        baseline: args.baseline.clone(),
        check_pass: args.check_pass_rate.map(CheckPassRates::uniform).unwrap_or_default(),
        ..SimOptions::default()
    };
    let (input, size): (Box<dyn BufRead>, Option<u64>) = if traffic.as_os_str() == "-" {
        (Box::new(io::stdin().lock()), None)
    } else {
        match File::open(traffic) {
            Ok(f) => {
                let size = f.metadata().ok().map(|m| m.len());
                (Box::new(BufReader::with_capacity(1 << 16, f)), size)
            }
            Err(e) => {
                eprintln!("error: cannot read traffic `{}`: {e}", traffic.display());
                return exit::USAGE;
            }
        }
    };
    let bar = size.filter(|_| io::stderr().is_terminal()).map(progress_bar);
    let result = simulate(&policy, input, options, &mut |p| {
        if let Some(bar) = &bar {
            bar.set_position(p.bytes);
            bar.set_message(format!("{} requests", p.requests));
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = match result {
        Ok(r) => r,
        Err(SimError::Traffic(e)) => {
            eprintln!("error: `{}`: {e}", traffic.display());
            return exit::USAGE;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let text = match args.format {
        Format::Human => report.to_human(),
        Format::Json => report.to_json(),
        Format::Html => render_html(&report),
    };
    if let Err(e) = write_out(args.output.as_deref(), &text) {
        eprintln!("error: cannot write the report: {e}");
        return exit::USAGE;
    }
    if report.pii_violations > 0 {
        eprintln!(
            "error: {} dispatches reached a provider below the request's data class",
            report.pii_violations
        );
        return exit::FAILED;
    }
    exit::OK
}

fn progress_bar(len: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {percent:>3}% {msg}")
    {
        bar.set_style(style);
    }
    bar
}

fn write_out(path: Option<&Path>, text: &str) -> io::Result<()> {
    match path {
        Some(p) => std::fs::write(p, text),
        None => {
            let mut out = io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()
        }
    }
}

fn generate(mix: &str, requests: u64, seed: u64) -> u8 {
    let Some(mix) = Mix::from_name(mix) else {
        eprintln!(
            "error: unknown traffic mix `{mix}`; known mixes: {}",
            Mix::NAMES.join(", ")
        );
        return exit::USAGE;
    };
    let out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    match router_sim::generate(mix, requests, seed, DEFAULT_START_MS, out) {
        Ok(()) => exit::OK,
        // A closed pipe (`| head`) is the reader's choice, not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            eprintln!("error: cannot write traffic: {e}");
            exit::USAGE
        }
    }
}

/// Loads and checks a policy, printing its diagnostics on stderr (as
/// `routec check` does) when it does not compile.
pub(crate) fn load_policy(path: &Path) -> Option<Policy> {
    match policy_lang::compile_path(path) {
        Ok(compiled) => Some(compiled.into_policy()),
        Err(report) => {
            let handler = GraphicalReportHandler::new_themed(GraphicalTheme::default()).with_links(false);
            for d in report.diagnostics() {
                let mut out = String::new();
                if handler.render_report(&mut out, d).is_ok() {
                    eprintln!("{out}");
                } else {
                    eprintln!("{d}");
                }
            }
            eprintln!("error: policy `{}` does not compile", path.display());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_percent;

    #[test]
    fn percentages_parse_to_basis_points() {
        assert_eq!(parse_percent("95%"), Ok(9_500));
        assert_eq!(parse_percent("99.5"), Ok(9_950));
        assert!(parse_percent("101%").is_err());
        assert!(parse_percent("lots").is_err());
    }
}
