//! `routec test`: run the `test` blocks of policies through the engine,
//! compare each decision with what the test expects and with its stored
//! snapshot, and report (text, JSON, GitHub annotations, JUnit XML).
//!
//! Which policy a test file runs against: a file in a `tests/` directory,
//! `tests/NAME.route`, runs against `../NAME.route` (or the directory
//! `../NAME/`), else against the policy in the directory above `tests/`;
//! any other file holds its tests beside its own policy items.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use miette::{GraphicalReportHandler, GraphicalTheme};
use policy_tests::{FileRun, Mode, SnapshotFile, SnapshotStatus};

use crate::exit;

macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}
macro_rules! err {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Arguments of `routec test`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Each PATH is a .route file with `test` blocks or a directory: its .route files and those of its \
                  tests/ subdirectory are run. tests/NAME.route runs against ../NAME.route (or ../NAME/, else the \
                  directory above tests/). Snapshots live beside each test file in NAME.snap; a missing one is \
                  written, except when CI is set, where it fails.\n\
                  Exit status: 0 when every test passes, 1 when one fails (or a test file does not compile, or \
                  coverage is under --min-coverage), 2 on usage or I/O errors."
)]
pub struct Args {
    /// Test files or directories [default: .]
    pub paths: Vec<PathBuf>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Write missing snapshots and accept changed ones
    #[arg(long, conflicts_with = "review")]
    pub update: bool,
    /// Show how each changed snapshot differs (writes nothing)
    #[arg(long)]
    pub review: bool,
    /// List the route nodes, split arms, match branches and targets no test reached
    #[arg(long)]
    pub coverage: bool,
    /// Fail when a policy's coverage is under N percent (implies --coverage)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=100))]
    pub min_coverage: Option<u8>,
}

/// How `test` prints.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Readable text.
    Human,
    /// One JSON document.
    Json,
    /// GitHub Actions annotations (`::error file=…,line=…::…`).
    Github,
    /// JUnit XML.
    Junit,
}

/// Runs the command and returns its exit code.
pub fn run(args: Args) -> u8 {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let files = match discover(&paths) {
        Ok(files) => files,
        Err(message) => {
            err!("error: {message}");
            return exit::USAGE;
        }
    };
    if files.is_empty() {
        let shown: Vec<String> = paths.iter().map(|p| format!("`{}`", p.display())).collect();
        err!("error: no `test` blocks found in {}", shown.join(", "));
        return exit::USAGE;
    }
    let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    let mode = Mode {
        update: args.update,
        ci,
    };
    let want_coverage = args.coverage || args.min_coverage.is_some();
    let mut runs = Vec::new();
    let mut broken = false;
    for file in &files {
        match run_file(file, mode, args.review, want_coverage) {
            Ok(Some(run)) => runs.push(run),
            Ok(None) => broken = true,
            Err(message) => {
                err!("error: {message}");
                return exit::USAGE;
            }
        }
    }
    let text = match args.format {
        Format::Human => policy_tests::render_human(&runs, args.review),
        Format::Json => policy_tests::render_json(&runs),
        Format::Github => policy_tests::render_github(&runs),
        Format::Junit => policy_tests::render_junit(&runs),
    };
    out!("{text}");
    let failed = runs.iter().flat_map(|r| &r.results).any(|t| !t.passed());
    let low = args.min_coverage.and_then(|min| {
        runs.iter()
            .filter_map(|r| r.coverage.as_ref().map(|c| (r, c)))
            .find(|(_, c)| c.percent() < f64::from(min))
            .map(|(r, c)| (min, r.policy.clone(), c.percent()))
    });
    if let Some((min, policy, percent)) = &low {
        err!("error: coverage of `{policy}` is {percent:.1}%, under --min-coverage {min}");
    }
    if failed || broken || low.is_some() {
        exit::FAILED
    } else {
        exit::OK
    }
}

/// One test file and the policy files it runs against (itself included).
struct TestFile {
    file: PathBuf,
    policy: Vec<PathBuf>,
    /// The policy as shown: the file or directory it comes from.
    policy_shown: String,
}

/// The test files under `paths`, each with its policy, in a stable order.
fn discover(paths: &[PathBuf]) -> Result<Vec<TestFile>, String> {
    let mut candidates: Vec<(PathBuf, bool)> = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        if meta.is_dir() {
            for f in route_files(path)? {
                candidates.push((f, false));
            }
            let tests = path.join("tests");
            if tests.is_dir() {
                for f in route_files(&tests)? {
                    candidates.push((f, false));
                }
            }
        } else {
            candidates.push((path.clone(), true));
        }
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (file, named) in candidates {
        let canonical = file.canonicalize().unwrap_or_else(|_| file.clone());
        if !seen.insert(canonical) {
            continue;
        }
        let in_tests_dir = file.parent().and_then(Path::file_name).is_some_and(|n| n == "tests");
        if in_tests_dir {
            let (policy, shown) = policy_of(&file)?;
            let mut files = policy;
            files.push(file.clone());
            out.push(TestFile {
                file,
                policy: files,
                policy_shown: shown,
            });
        } else {
            // A file outside `tests/` counts when it holds tests, or when
            // it was named on the command line.
            let text = std::fs::read_to_string(&file).map_err(|e| format!("cannot read `{}`: {e}", file.display()))?;
            if named || has_tests(&text) {
                out.push(TestFile {
                    policy_shown: file.display().to_string(),
                    policy: vec![file.clone()],
                    file,
                });
            }
        }
    }
    Ok(out)
}

/// Whether a line of `text` starts a `test "…"` block.
fn has_tests(text: &str) -> bool {
    text.lines().any(|l| {
        l.trim_start()
            .strip_prefix("test")
            .is_some_and(|r| r.trim_start().starts_with('"'))
    })
}

/// The policy of `dir/tests/NAME.route`: `dir/NAME.route`, `dir/NAME/`, or `dir/`.
fn policy_of(file: &Path) -> Result<(Vec<PathBuf>, String), String> {
    let tests = file.parent().unwrap_or(Path::new("."));
    let dir = tests
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stem = file.file_stem().unwrap_or_default();
    let single = dir.join(stem).with_extension("route");
    if single.is_file() {
        let shown = single.display().to_string();
        return Ok((vec![single], shown));
    }
    let sub = dir.join(stem);
    let from = if sub.is_dir() { sub } else { dir.to_path_buf() };
    let files = route_files(&from)?;
    if files.is_empty() {
        return Err(format!(
            "test file `{}` has no policy: no `{}`, and no `.route` files in `{}`",
            file.display(),
            single.display(),
            from.display()
        ));
    }
    Ok((files, from.display().to_string()))
}

fn route_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read `{}`: {e}", dir.display()))?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "route") && p.is_file())
        .collect();
    out.sort();
    Ok(out)
}

/// Compiles one test file with its policy, runs its tests and keeps its
/// snapshots. `Ok(None)` when it does not compile (the diagnostics are
/// printed); `Err` on an unusable snapshot file.
fn run_file(t: &TestFile, mode: Mode, review: bool, want_coverage: bool) -> Result<Option<FileRun>, String> {
    let compiled = match policy_lang::load(&t.policy).and_then(|files| policy_lang::compile(&files)) {
        Ok(c) => c,
        Err(report) => {
            let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_links(false);
            for d in report.diagnostics() {
                let mut text = String::new();
                if handler.render_report(&mut text, d).is_ok() {
                    err!("{text}");
                } else {
                    err!("{d}");
                }
            }
            err!(
                "error: `{}` does not compile with its policy `{}` ({} error(s)); no test in it ran",
                t.file.display(),
                t.policy_shown,
                report.errors().len()
            );
            return Ok(None);
        }
    };
    let file_name = t.file.display().to_string();
    let tests: Vec<_> = compiled
        .tests()
        .iter()
        .filter(|x| x.file == file_name)
        .cloned()
        .collect();
    let snap_path = SnapshotFile::path_for(&t.file);
    let mut snapshots = SnapshotFile::read(&snap_path).map_err(|e| e.to_string())?;
    let results = policy_tests::run_all(compiled.policy(), &tests, Some(&snapshots), mode);
    if !review {
        let before = snapshots.clone();
        for r in &results {
            if matches!(r.snapshot, SnapshotStatus::New | SnapshotStatus::Updated { .. }) {
                snapshots.set(&r.name, &r.explanation);
            }
        }
        if mode.update {
            let wanted: Vec<&str> = results
                .iter()
                .filter(|r| !matches!(r.snapshot, SnapshotStatus::NotAsked))
                .map(|r| r.name.as_str())
                .collect();
            snapshots.retain(&wanted);
        }
        if snapshots != before && (!snapshots.is_empty() || snap_path.exists()) {
            snapshots.write().map_err(|e| e.to_string())?;
        }
    }
    let coverage =
        want_coverage.then(|| policy_tests::coverage(compiled.policy(), results.iter().map(|r| &r.decision)));
    Ok(Some(FileRun {
        test_file: file_name,
        policy: t.policy_shown.clone(),
        results,
        coverage,
    }))
}
