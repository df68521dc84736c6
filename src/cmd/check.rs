//! `routec check`: compile policies and report every problem, for people
//! (miette's graphical report), machines (JSON) or GitHub Actions
//! (workflow annotations).
//!
//! Each PATH is one policy: a `.route` file, or a directory whose `.route`
//! files resolve names across each other.

use std::path::{Path, PathBuf};

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, Severity};
use policy_lang::{CheckReport, Code};
use serde_json::{Value, json};

use crate::exit;

// Output that ignores a closed pipe (`routec check | head`) instead of
// panicking as `println!` does.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Arguments of `routec check`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Each PATH is checked as its own policy: a .route file, or a directory whose .route files \
                        form one policy. Exit status: 0 when clean (warnings allowed), 1 on errors (or warnings with \
                        --deny-warnings), 2 on usage or I/O errors."
)]
pub struct Args {
    /// Policy files or directories [default: policies/]
    pub paths: Vec<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Fail (exit 1) on warnings too
    #[arg(long)]
    pub deny_warnings: bool,
    /// Also print each workload's worst case per call: most upstream calls,
    /// most cost, longest time (for policies without errors)
    #[arg(long)]
    pub bounds: bool,
}

/// How `check` prints.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Diagnostics with source snippets, on stderr.
    Human,
    /// One JSON document on stdout.
    Json,
    /// GitHub Actions workflow commands (`::error file=…::…`) on stdout.
    Github,
}

/// What checking one PATH found.
struct Outcome {
    path: PathBuf,
    report: CheckReport,
    /// Each workload's worst case, with `--bounds`, when the policy has no errors.
    bounds: Vec<(String, router_core::WorstCase)>,
    /// Whether the path could not be read at all (exit 2).
    io_error: bool,
}

fn check_one(path: &Path, bounds: bool) -> Outcome {
    let files = match policy_lang::load(&[path]) {
        Ok(files) => files,
        Err(report) => {
            let io_error = report
                .errors()
                .iter()
                .any(|e| matches!(e.code(), Code::R0001 | Code::R0004));
            return Outcome {
                path: path.to_path_buf(),
                report,
                bounds: Vec::new(),
                io_error,
            };
        }
    };
    let (report, bounds) = match policy_lang::parse(&files) {
        Ok(ast) if bounds => {
            let (policy, report) = policy_lang::check_and_lower(&ast);
            let bounds = if report.errors().is_empty() {
                policy
                    .workload_ids()
                    .map(|w| (policy.workload(w).name.clone(), router_core::worst_case(&policy, w)))
                    .collect()
            } else {
                Vec::new()
            };
            (report, bounds)
        }
        Ok(ast) => (policy_lang::check(&ast), Vec::new()),
        Err(report) => (report, Vec::new()),
    };
    Outcome {
        path: path.to_path_buf(),
        report,
        bounds,
        io_error: false,
    }
}

/// Runs the command and returns its exit code.
pub fn run(args: Args) -> u8 {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from("policies")]
    } else {
        args.paths.clone()
    };
    let outcomes: Vec<Outcome> = paths.iter().map(|p| check_one(p, args.bounds)).collect();
    let errors: usize = outcomes.iter().map(|o| o.report.errors().len()).sum();
    let warnings: usize = outcomes.iter().map(|o| o.report.warnings().len()).sum();
    match args.format {
        Format::Human => {
            human(&outcomes, errors, warnings);
            print_bounds(&outcomes);
        }
        Format::Json => out!("{}", to_json(&outcomes, errors, warnings)),
        Format::Github => github(&outcomes),
    }
    if outcomes.iter().any(|o| o.io_error) {
        exit::USAGE
    } else if errors > 0 || (args.deny_warnings && warnings > 0) {
        exit::FAILED
    } else {
        exit::OK
    }
}

fn human(outcomes: &[Outcome], errors: usize, warnings: usize) {
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::default()).with_links(false);
    for o in outcomes {
        for d in o.report.diagnostics() {
            let mut out = String::new();
            if handler.render_report(&mut out, d).is_ok() {
                err!("{out}");
            } else {
                err!("{}: {d}", code_of(d));
            }
        }
    }
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let checked = outcomes
        .iter()
        .map(|o| o.path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if errors == 0 && warnings == 0 {
        err!("checked {checked}: no problems");
    } else {
        err!(
            "checked {checked}: {errors} error{}, {warnings} warning{}",
            plural(errors),
            plural(warnings)
        );
    }
}

fn code_of(d: &dyn Diagnostic) -> String {
    d.code().map(|c| c.to_string()).unwrap_or_default()
}

/// File, 1-based line and column of a span, read through the diagnostic's
/// own source (so a label in another file of the policy names that file).
fn place(d: &dyn Diagnostic, span: &miette::SourceSpan) -> Option<(String, usize, usize)> {
    let contents = d.source_code()?.read_span(span, 0, 0).ok()?;
    Some((
        contents.name().unwrap_or_default().to_string(),
        contents.line() + 1,
        contents.column() + 1,
    ))
}

fn primary(d: &dyn Diagnostic) -> Option<(String, usize, usize)> {
    let labels: Vec<miette::LabeledSpan> = d.labels()?.collect();
    let label = labels.iter().find(|l| l.primary()).or(labels.first())?;
    place(d, label.inner())
}

fn severity(d: &dyn Diagnostic) -> &'static str {
    match d.severity() {
        Some(Severity::Warning) => "warning",
        Some(Severity::Advice) => "advice",
        _ => "error",
    }
}

fn to_json(outcomes: &[Outcome], errors: usize, warnings: usize) -> Value {
    let mut diagnostics = Vec::new();
    for o in outcomes {
        for d in o.report.diagnostics() {
            let labels: Vec<Value> = d
                .labels()
                .map(|it| {
                    it.map(|l| {
                        let (file, line, column) = place(d, l.inner()).unwrap_or_default();
                        json!({
                            "message": l.label(),
                            "file": file,
                            "line": line,
                            "column": column,
                            "offset": l.offset(),
                            "length": l.len(),
                            "primary": l.primary(),
                        })
                    })
                    .collect()
                })
                .unwrap_or_default();
            let (file, line, column) = match primary(d) {
                Some((f, l, c)) => (Value::from(f), Value::from(l), Value::from(c)),
                None => (Value::Null, Value::Null, Value::Null),
            };
            diagnostics.push(json!({
                "policy": o.path.display().to_string(),
                "code": code_of(d),
                "severity": severity(d),
                "message": d.to_string(),
                "file": file,
                "line": line,
                "column": column,
                "labels": labels,
                "help": d.help().map(|h| h.to_string()),
            }));
        }
    }
    let mut out = json!({
        "policies": outcomes.iter().map(|o| o.path.display().to_string()).collect::<Vec<_>>(),
        "errors": errors,
        "warnings": warnings,
        "diagnostics": diagnostics,
    });
    if outcomes.iter().any(|o| !o.bounds.is_empty()) {
        let bounds: Vec<Value> = outcomes
            .iter()
            .flat_map(|o| {
                o.bounds.iter().map(|(name, b)| {
                    let mut one = worst_case_json(b);
                    one["policy"] = Value::from(o.path.display().to_string());
                    one["workload"] = Value::from(name.as_str());
                    one
                })
            })
            .collect();
        out["bounds"] = Value::from(bounds);
    }
    out
}

/// A worst case as JSON, the shape `check --bounds` and `explain` share:
/// `calls`, `cost_usd` (null when unknown), `time_ms`, `by_deadline`.
pub(crate) fn worst_case_json(b: &router_core::WorstCase) -> Value {
    json!({
        "calls": b.calls,
        "cost_usd": b.cost.map(|c| c.as_dollars_f64()),
        "time_ms": b.time.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        "by_deadline": b.by_deadline,
    })
}

/// `--bounds`, for people: one line per workload, on stdout.
fn print_bounds(outcomes: &[Outcome]) {
    for o in outcomes.iter().filter(|o| !o.bounds.is_empty()) {
        out!("worst case per call, {}:", o.path.display());
        let width = o.bounds.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        for (name, b) in &o.bounds {
            out!("  {name:<width$}  {}", worst_case_text(b));
        }
    }
}

/// `4 calls · $0.082 · 44s`, as `--bounds` and `routec explain` print it.
pub(crate) fn worst_case_text(b: &router_core::WorstCase) -> String {
    let cost = b.cost.map_or_else(
        || "cost unknown (a paid model without price or context)".to_owned(),
        |c| c.to_string(),
    );
    let time = b.time.map_or_else(|| "unbounded".to_owned(), duration_text);
    let deadline = if b.by_deadline { " (the workload's latency)" } else { "" };
    format!(
        "{} call{} · {cost} · {time}{deadline}",
        b.calls,
        if b.calls == 1 { "" } else { "s" }
    )
}

/// `2m 8s`, `450ms`.
fn duration_text(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    let s = d.as_secs();
    match (s / 3_600, (s % 3_600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, sec) => format!("{m}m {sec}s"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

/// Escapes data for a workflow command: `%`, CR and LF always, and `:` and
/// `,` inside properties.
fn escape(s: &str, property: bool) -> String {
    let mut out = s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    if property {
        out = out.replace(':', "%3A").replace(',', "%2C");
    }
    out
}

fn github(outcomes: &[Outcome]) {
    for o in outcomes {
        for d in o.report.diagnostics() {
            let kind = if severity(d) == "warning" { "warning" } else { "error" };
            let mut props = Vec::new();
            match primary(d) {
                Some((file, line, col)) => {
                    props.push(format!("file={}", escape(&file, true)));
                    props.push(format!("line={line}"));
                    props.push(format!("col={col}"));
                }
                None => props.push(format!("file={}", escape(&o.path.display().to_string(), true))),
            }
            props.push(format!("title={}", escape(&code_of(d), true)));
            let mut message = d.to_string();
            // The labels carry the did-you-mean and each hop of a path:
            // one line each, with where it points.
            for label in d.labels().into_iter().flatten() {
                let Some(text) = label.label() else { continue };
                match place(d, label.inner()) {
                    Some((file, line, col)) => message.push_str(&format!("\n{file}:{line}:{col}: {text}")),
                    None => message.push_str(&format!("\n{text}")),
                }
            }
            if let Some(help) = d.help() {
                message.push_str(&format!("\nhelp: {help}"));
            }
            out!("::{kind} {}::{}", props.join(","), escape(&message, false));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_commands_escape_their_separators() {
        assert_eq!(escape("a:b,c%\nd", true), "a%3Ab%2Cc%25%0Ad");
        assert_eq!(escape("a:b,c%\nd", false), "a:b,c%25%0Ad");
    }
}
