//! The `.route` policy language: text to syntax tree to the `router_core`
//! IR, with every check `routec check` runs and the formatter behind
//! `routec fmt`.
//!
//! The pipeline, one step per module: `prescan` (split into items, match
//! brackets, bound nesting) → `text_to_ast` (pest grammar, tree with spans) →
//! `ast_to_ir` (resolve names, check properties, build the IR) → `checks`
//! (graph checks: cycles, data-class paths, capabilities, reachability).
//!
//! ```
//! use policy_lang::{SourceFile, compile};
//!
//! let text = r#"
//!     provider mock { adapter mock; tier free; model echo { price free } }
//!     workload hello { data public; route mock/echo }
//! "#;
//! let compiled = compile(&[SourceFile::new("hello.route", text)]).unwrap();
//! let policy = compiled.policy();
//! assert_eq!(policy.workloads[0].name, "hello");
//! assert!(compiled.report().is_clean());
//! ```
//!
//! **Architecture invariant:** no I/O except [`load`] (and [`compile_path`],
//! which calls it), which reads the files a caller names; everything else is a
//! pure function of the text. Nothing here prints, exits or panics on input:
//! every problem is a diagnostic in a [`CheckReport`].

mod ast;
mod ast_to_ir;
mod ast_to_tests;
mod checks;
mod code;
mod diagnostic;
mod errors;
mod expected;
mod format;
mod literal;
mod load;
mod names;
mod prescan;
mod report;
mod source;
mod symbols;
mod text_to_ast;
mod walk;

use std::path::Path;

pub use ast::Ast;
pub use ast_to_tests::{Expectation, PolicyTest, Reach};
pub use code::Code;
pub use errors::*;
pub use load::load;
pub use report::CheckReport;
pub use router_core::Policy;
pub use source::{MAX_FILE_BYTES, SourceFile, file_offsets};
pub use symbols::{Symbol, SymbolKind, Symbols};

/// The words the language accepts at each place, from the tables the parser
/// and the checker use, for editors' completion.
pub mod words {
    /// The keywords that start a top-level item.
    pub const ITEMS: &[&str] = &["provider", "workload", "route", "defaults"];
    pub use crate::ast_to_ir::{PRESETS, PROTOCOLS};
    pub use crate::expected::{MODEL_PROPS, PROVIDER_PROPS, ROUTE_WORDS, TRIGGERS, WORKLOAD_PROPS};
}

/// A policy that passed every check: the IR, plus any warnings.
#[derive(Clone, Debug)]
pub struct Compiled {
    policy: Policy,
    report: CheckReport,
    tests: Vec<PolicyTest>,
}

impl Compiled {
    /// The compiled policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The compiled policy, by value.
    pub fn into_policy(self) -> Policy {
        self.policy
    }

    /// The warnings found (a compiled policy has no errors).
    pub fn warnings(&self) -> &[CheckWarning] {
        self.report.warnings()
    }

    /// The full report (warnings only).
    pub fn report(&self) -> &CheckReport {
        &self.report
    }

    /// The policy's `test` blocks, resolved against it (`routec test`).
    pub fn tests(&self) -> &[PolicyTest] {
        &self.tests
    }
}

/// Parses the files of one policy into a syntax tree. Every file is parsed
/// even when one fails, so the report holds every syntax error; names are
/// not resolved yet.
pub fn parse(files: &[SourceFile]) -> Result<Ast, CheckReport> {
    text_to_ast::parse_files(files)
}

/// Runs every check on a parsed policy and returns what it found (errors and
/// warnings); [`CheckReport::passed`] says whether it may be used.
pub fn check(ast: &Ast) -> CheckReport {
    let (_, report, _) = analyse(ast);
    report
}

/// Lowers a parsed policy to the IR, running every check; fails when any
/// check finds an error.
pub fn lower(ast: &Ast) -> Result<Compiled, CheckReport> {
    let (policy, report, tests) = analyse(ast);
    if report.passed() {
        Ok(Compiled { policy, report, tests })
    } else {
        Err(report)
    }
}

/// Rewrites one file in canonical form, keeping its comments and its line
/// endings (CRLF when its first line ends in CRLF). Fails only when the file
/// does not parse. `format` of the output returns it unchanged, and the
/// output parses to a tree equal to the input's.
pub fn format(file: &SourceFile) -> Result<String, CheckReport> {
    let ast = parse(std::slice::from_ref(file))?;
    let items = ast.files.first().map(Vec::as_slice).unwrap_or_default();
    let formatted = format::format_items(file.text(), items);
    let text = file.text();
    let crlf = text.find('\n').is_some_and(|i| text[..i].ends_with('\r'));
    Ok(if crlf {
        formatted.replace("\r\n", "\n").replace('\n', "\r\n")
    } else {
        formatted
    })
}

/// Runs every check and lowers what it can, errors or not: the report, and
/// the IR as far as it could be built (names that did not resolve are
/// missing from it). For tools that show a policy while it is being edited;
/// anything that routes calls uses [`lower`].
pub fn check_and_lower(ast: &Ast) -> (Policy, CheckReport) {
    let (policy, report, _tests) = analyse(ast);
    (policy, report)
}

/// [`parse`] then [`lower`]: policy text to checked IR.
pub fn compile(files: &[SourceFile]) -> Result<Compiled, CheckReport> {
    lower(&parse(files)?)
}

/// [`load`] then [`compile`]: a `.route` file, or a directory of them, to
/// checked IR.
pub fn compile_path(path: impl AsRef<Path>) -> Result<Compiled, CheckReport> {
    compile(&load(&[path.as_ref()])?)
}

fn analyse(ast: &Ast) -> (Policy, CheckReport, Vec<PolicyTest>) {
    let (lowered, mut report) = ast_to_ir::lower(ast);
    checks::run(&lowered, &mut report);
    let tests = ast_to_tests::lower(ast, &lowered.policy, &mut report);
    report.sort();
    (lowered.policy, report, tests)
}
