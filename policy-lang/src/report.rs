//! [`CheckReport`]: every problem found, errors and warnings, in source order.

use std::fmt;

use crate::code::Code;
use crate::errors::{CheckError, CheckWarning, LoadError, ParseError};

/// Everything a check found. Checks never stop at the first problem: the
/// report holds all of them, errors and warnings, each sorted by file and
/// position.
#[derive(Clone, Debug, Default)]
pub struct CheckReport {
    errors: Vec<CheckError>,
    warnings: Vec<CheckWarning>,
}

impl CheckReport {
    pub(crate) fn new() -> Self {
        CheckReport::default()
    }

    pub(crate) fn error(&mut self, e: impl Into<CheckError>) {
        self.errors.push(e.into());
    }

    pub(crate) fn parse_error(&mut self, e: impl Into<ParseError>) {
        self.errors.push(CheckError::Parse(e.into()));
    }

    pub(crate) fn load_error(&mut self, e: impl Into<LoadError>) {
        self.errors.push(CheckError::Load(e.into()));
    }

    pub(crate) fn warning(&mut self, w: impl Into<CheckWarning>) {
        self.warnings.push(w.into());
    }

    /// Sorts both lists by file and position (stable, so problems found at one
    /// place keep the order they were found in).
    pub(crate) fn sort(&mut self) {
        self.errors.sort_by_key(|e| e.diag().sort_key());
        self.warnings.sort_by_key(|w| w.diag().sort_key());
    }

    /// The errors, in source order.
    pub fn errors(&self) -> &[CheckError] {
        &self.errors
    }

    /// The warnings, in source order.
    pub fn warnings(&self) -> &[CheckWarning] {
        &self.warnings
    }

    /// Whether there are no errors (warnings allowed).
    pub fn passed(&self) -> bool {
        self.errors.is_empty()
    }

    /// Whether there is nothing at all to report.
    pub fn is_clean(&self) -> bool {
        self.errors.is_empty() && self.warnings.is_empty()
    }

    /// Errors then warnings, as miette diagnostics ready to render.
    pub fn diagnostics(&self) -> impl Iterator<Item = &dyn miette::Diagnostic> {
        self.errors
            .iter()
            .map(|e| e as &dyn miette::Diagnostic)
            .chain(self.warnings.iter().map(|w| w as &dyn miette::Diagnostic))
    }

    /// The codes of every error then every warning, in report order.
    pub fn codes(&self) -> Vec<Code> {
        self.errors
            .iter()
            .map(CheckError::code)
            .chain(self.warnings.iter().map(CheckWarning::code))
            .collect()
    }
}

impl fmt::Display for CheckReport {
    /// One line per problem, `CODE: message`; the CLI renders the full form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        write!(
            f,
            "{} error{}, {} warning{}",
            self.errors.len(),
            plural(self.errors.len()),
            self.warnings.len(),
            plural(self.warnings.len())
        )?;
        for d in self.diagnostics() {
            let code = d.code().map(|c| c.to_string()).unwrap_or_default();
            write!(f, "\n{code}: {d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CheckReport {}
