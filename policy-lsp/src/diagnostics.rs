//! `routec check`'s diagnostics in LSP's shape: the same code, message and
//! help; the primary label is the range, and every labelled span (in any
//! file of the policy) is a related location.

use std::collections::BTreeMap;
use std::path::PathBuf;

use lsp_types::{Diagnostic, DiagnosticRelatedInformation, DiagnosticSeverity, Location, NumberOrString, Range, Url};
use miette::Severity;
use policy_lang::{CheckReport, SourceFile};

use crate::fixes;
use crate::workspace::PolicyDir;

/// The `source` of every diagnostic, as editors show it.
pub(crate) const SOURCE: &str = "routec";

/// Spreads a report's diagnostics over the files they point into. `sources`
/// are the files as given to the parser, `paths` their paths.
pub(crate) fn convert(
    report: &CheckReport,
    sources: &[SourceFile],
    paths: &[PathBuf],
    dir: &PolicyDir,
    out: &mut BTreeMap<PathBuf, Vec<Diagnostic>>,
) {
    let bases = policy_lang::file_offsets(sources);
    let locate = |offset: usize, len: usize| -> Option<(&PathBuf, Range)> {
        let i = bases.partition_point(|b| *b <= offset).checked_sub(1)?;
        let path = paths.get(i)?;
        let file = dir.files.get(path)?;
        let text = file.text();
        let start = offset.saturating_sub(*bases.get(i)?);
        let end = start.saturating_add(len).min(text.len());
        Some((path, file.index.range(text, start, end)))
    };
    for d in report.diagnostics() {
        let labels: Vec<miette::LabeledSpan> = d.labels().map(Iterator::collect).unwrap_or_default();
        let primary = labels.iter().find(|l| l.primary()).or(labels.first());
        let (path, range) = match primary.and_then(|l| locate(l.offset(), l.len())) {
            Some(found) => found,
            // A diagnostic with no place is about a whole file, which its
            // message names (`file `x.route` is … bytes`), or about the
            // policy: shown at the top of that file, else of the first.
            None => {
                let message = d.to_string();
                let named = sources
                    .iter()
                    .zip(paths)
                    .find(|(s, _)| message.contains(&format!("`{}`", s.name())))
                    .map(|(_, p)| p);
                match named.or(paths.first()) {
                    Some(p) => (p, Range::default()),
                    None => continue,
                }
            }
        };
        let related: Vec<DiagnosticRelatedInformation> = labels
            .iter()
            .filter_map(|l| {
                let text = l.label()?;
                let (path, range) = locate(l.offset(), l.len())?;
                Some(DiagnosticRelatedInformation {
                    location: Location::new(Url::from_file_path(path).ok()?, range),
                    message: text.to_string(),
                })
            })
            .collect();
        let mut lsp = diagnostic(d, range, related);
        // Quick fixes, from the labels in the primary label's file.
        let in_file: Vec<fixes::Label<'_>> = labels
            .iter()
            .filter_map(|l| {
                let i = bases.partition_point(|b| *b <= l.offset()).checked_sub(1)?;
                if paths.get(i)? != path {
                    return None;
                }
                let start = l.offset().saturating_sub(*bases.get(i)?);
                Some(fixes::Label {
                    start,
                    end: start + l.len(),
                    text: l.label(),
                    primary: l.primary(),
                })
            })
            .collect();
        if let (Some(code), Some(file)) = (d.code(), dir.files.get(path)) {
            let found = fixes::fixes(&code.to_string(), &in_file, file.text(), &file.index);
            if !found.is_empty() {
                lsp.data = Some(serde_json::json!({ "fixes": found }));
            }
        }
        out.entry(path.clone()).or_default().push(lsp);
    }
}

/// A load error of one file (not UTF-8, too large), shown at its top.
pub(crate) fn file_level(report: &CheckReport) -> Vec<Diagnostic> {
    report
        .diagnostics()
        .map(|d| diagnostic(d, Range::default(), Vec::new()))
        .collect()
}

fn diagnostic(d: &dyn miette::Diagnostic, range: Range, related: Vec<DiagnosticRelatedInformation>) -> Diagnostic {
    let mut message = d.to_string();
    if let Some(help) = d.help() {
        message.push_str(&format!("\nhelp: {help}"));
    }
    let severity = match d.severity() {
        Some(Severity::Warning) => DiagnosticSeverity::WARNING,
        Some(Severity::Advice) => DiagnosticSeverity::HINT,
        _ => DiagnosticSeverity::ERROR,
    };
    Diagnostic {
        range,
        severity: Some(severity),
        code: d.code().map(|c| NumberOrString::String(c.to_string())),
        code_description: None,
        source: Some(SOURCE.to_string()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        tags: None,
        data: None,
    }
}
