//! The check corpus: one scenario per file under `testdata/check/`.
//!
//! - `ok/`: checks clean, no warnings.
//! - `err/`: has errors, among them the code its name starts with; the
//!   rendered diagnostics are an insta snapshot.
//! - `warn/`: no errors, a warning with the code its name starts with; also
//!   snapshotted.
//!
//! An entry may be a directory: its `.route` files form one policy (for
//! diagnostics whose labels cross files).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use miette::{GraphicalReportHandler, GraphicalTheme};
use policy_lang::{CheckReport, Code};

/// Checks one corpus entry, named relative to the crate so snapshots do not
/// depend on where the repository is.
fn check(path: &Path) -> CheckReport {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let relative = path.strip_prefix(root).unwrap_or(path);
    let files = match policy_lang::load(&[relative]) {
        Ok(files) => files,
        Err(report) => return report,
    };
    match policy_lang::parse(&files) {
        Ok(ast) => policy_lang::check(&ast),
        Err(report) => report,
    }
}

/// Renders a report as `routec check` does, without colour or links and at
/// a fixed width, so snapshots are stable.
fn render(report: &CheckReport) -> String {
    let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor())
        .with_width(100)
        .with_links(false);
    let mut out = String::new();
    for d in report.diagnostics() {
        handler.render_report(&mut out, d).unwrap();
        out.push('\n');
    }
    out
}

fn expected_code(path: &Path) -> Code {
    let name = path.file_name().unwrap().to_string_lossy();
    let prefix = name.split('-').next().unwrap();
    Code::ALL
        .into_iter()
        .find(|c| c.as_str() == prefix)
        .unwrap_or_else(|| panic!("{name} does not start with a diagnostic code"))
}

#[test]
fn ok_files_check_clean() {
    insta::glob!("../testdata/check/ok", "?*", |path| {
        let report = check(path);
        assert!(report.is_clean(), "{}:\n{}", path.display(), render(&report));
    });
}

#[test]
fn err_files_report_their_code() {
    insta::glob!("../testdata/check/err", "?*", |path| {
        let report = check(path);
        let code = expected_code(path);
        assert!(!report.passed(), "{} should fail", path.display());
        assert!(
            report.errors().iter().any(|e| e.code() == code),
            "{} should report {code}, got {:?}",
            path.display(),
            report.codes()
        );
        insta::assert_snapshot!(render(&report));
    });
}

#[test]
fn warn_files_report_their_code_and_no_error() {
    insta::glob!("../testdata/check/warn", "?*", |path| {
        let report = check(path);
        let code = expected_code(path);
        assert!(report.passed(), "{}:\n{}", path.display(), render(&report));
        assert!(
            report.warnings().iter().any(|w| w.code() == code),
            "{} should warn {code}, got {:?}",
            path.display(),
            report.codes()
        );
        insta::assert_snapshot!(render(&report));
    });
}

/// Codes no committed corpus entry can show, tested in `tests/bad_input.rs`
/// instead: a path that cannot be read (a dangling entry would break every
/// walk of the corpus) and a policy over 4 MiB (generated there). R0004 is
/// a corpus directory holding no `.route` file.
const LOAD_CODES: [Code; 2] = [Code::R0001, Code::R0003];

#[test]
fn every_code_has_a_corpus_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/check");
    let mut names = Vec::new();
    for dir in ["err", "warn"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            names.push(entry.unwrap().file_name().to_string_lossy().to_string());
        }
    }
    for code in Code::ALL {
        if LOAD_CODES.contains(&code) {
            continue;
        }
        assert!(
            names.iter().any(|n| n.starts_with(code.as_str())),
            "no testdata/check/{{err,warn}} file for {code}"
        );
    }
}

#[test]
fn every_code_is_documented() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/diagnostics.md")).unwrap();
    for code in Code::ALL {
        assert!(
            doc.contains(&format!("## {code}")),
            "docs/diagnostics.md has no `## {code}` section"
        );
    }
}
