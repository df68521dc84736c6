//! The names of a parsed policy, where each is defined and where each is
//! used: what an editor needs for outline, go-to-definition, references and
//! rename, read off the syntax tree so nothing re-parses the text.
//!
//! Ranges are byte offsets local to their file (index into the files given
//! to [`parse`](crate::parse)), so a caller maps them to lines with the
//! file's own text.

use std::ops::Range;

use crate::ast::{Ast, CheckAst, Expr, ExprKind, Item, ModelDecl, ProviderProp, WorkloadProp};
use crate::source::Span;

/// What a name names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SymbolKind {
    /// A `provider` block.
    Provider,
    /// A `model` inside a provider; its name is unique within the provider.
    Model,
    /// A `workload` block.
    Workload,
    /// A named `route`.
    Route,
}

impl SymbolKind {
    /// The keyword that defines this kind of name.
    pub const fn keyword(self) -> &'static str {
        match self {
            SymbolKind::Provider => "provider",
            SymbolKind::Model => "model",
            SymbolKind::Workload => "workload",
            SymbolKind::Route => "route",
        }
    }
}

/// A name as it is defined or used: its kind, the name, the provider a
/// model belongs to, and where it is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    kind: SymbolKind,
    name: String,
    provider: Option<String>,
    file: usize,
    name_range: Range<usize>,
    range: Range<usize>,
}

impl Symbol {
    /// What the name names.
    pub fn kind(&self) -> SymbolKind {
        self.kind
    }

    /// The name as written.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// For a model, the provider it belongs to.
    pub fn provider(&self) -> Option<&str> {
        self.provider.as_deref()
    }

    /// The index of the file it is written in.
    pub fn file(&self) -> usize {
        self.file
    }

    /// The bytes of the name itself, local to its file.
    pub fn name_range(&self) -> Range<usize> {
        self.name_range.clone()
    }

    /// For a definition, the whole declaration; for a use, the name.
    pub fn range(&self) -> Range<usize> {
        self.range.clone()
    }

    /// Whether `other` names the same thing (kind, name and provider).
    pub fn same_target(&self, other: &Symbol) -> bool {
        self.kind == other.kind && self.name == other.name && self.provider == other.provider
    }
}

/// Every definition and every use of a name in a policy, in source order.
#[derive(Clone, Debug, Default)]
pub struct Symbols {
    definitions: Vec<Symbol>,
    references: Vec<Symbol>,
}

impl Symbols {
    /// Providers, models, workloads and named routes as defined.
    pub fn definitions(&self) -> &[Symbol] {
        &self.definitions
    }

    /// Names used in routes: providers and models of targets, named routes,
    /// and evaluator workloads.
    pub fn references(&self) -> &[Symbol] {
        &self.references
    }
}

impl Ast {
    /// The names this policy defines and uses, with where they are written.
    pub fn symbols(&self) -> Symbols {
        let mut out = Symbols::default();
        let local = |span: Span| -> (usize, Range<usize>) {
            let file = self.src.file_index(span.start);
            let base = self.src.file(file).map_or(0, |(b, _)| b);
            (file, span.start.saturating_sub(base)..span.end.saturating_sub(base))
        };
        let def = |kind, name: &crate::ast::Ident, provider: Option<&str>, whole: Span| {
            let (file, name_range) = local(name.span);
            let (_, range) = local(whole);
            Symbol {
                kind,
                name: name.name.clone(),
                provider: provider.map(str::to_string),
                file,
                name_range,
                range,
            }
        };
        let mut exprs: Vec<&Expr> = Vec::new();
        for item in self.items() {
            match item {
                Item::Provider(p) => {
                    out.definitions.push(def(SymbolKind::Provider, &p.name, None, p.span));
                    for prop in &p.props {
                        if let ProviderProp::Model(ModelDecl { name, span, .. }) = &prop.kind {
                            out.definitions
                                .push(def(SymbolKind::Model, name, Some(&p.name.name), *span));
                        }
                    }
                }
                Item::Workload(w) => {
                    out.definitions.push(def(SymbolKind::Workload, &w.name, None, w.span));
                    for prop in &w.props {
                        if let WorkloadProp::Route(e) = &prop.kind {
                            exprs.push(e);
                        }
                    }
                }
                Item::Route(r) => {
                    out.definitions.push(def(SymbolKind::Route, &r.name, None, r.span));
                    exprs.push(&r.expr);
                }
                // Test blocks name workloads and targets too; the language
                // server does not index them yet.
                Item::Defaults(_) | Item::Test(_) => {}
            }
        }
        // An explicit stack: route expressions nest as deep as the pre-scan
        // allows, and walks here never recurse.
        let mut stack: Vec<&Expr> = exprs.into_iter().rev().collect();
        while let Some(e) = stack.pop() {
            let use_of = |kind, name: &crate::ast::Ident, provider: Option<&str>| def(kind, name, provider, name.span);
            let children: Vec<&Expr> = match &e.kind {
                ExprKind::Target { provider, model } => {
                    out.references.push(use_of(SymbolKind::Provider, provider, None));
                    out.references
                        .push(use_of(SymbolKind::Model, model, Some(&provider.name)));
                    Vec::new()
                }
                ExprKind::Ref(name) => {
                    out.references.push(use_of(SymbolKind::Route, name, None));
                    Vec::new()
                }
                ExprKind::Fallback { items, .. } => items.iter().collect(),
                ExprKind::Split { arms, .. } | ExprKind::Select { arms, .. } => arms.iter().map(|a| &a.expr).collect(),
                ExprKind::Match { arms } => arms.iter().map(|a| &a.expr).collect(),
                ExprKind::Escalate { items, check, .. } => {
                    if let CheckAst::Evaluator(w) = &check.value {
                        out.references.push(use_of(SymbolKind::Workload, w, None));
                    }
                    items.iter().collect()
                }
            };
            stack.extend(children.into_iter().rev());
        }
        out.references.sort_by_key(|s| (s.file, s.name_range.start));
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{SourceFile, file_offsets, parse};

    #[test]
    fn definitions_and_uses_are_found_in_every_file_with_local_ranges() {
        let a = "provider p { adapter mock; tier free; model m { price free } }\n";
        let b = "route r = fallback [ p/m ]\nworkload w { data public; route r }\nworkload e { data public; route escalate [ r ] check evaluator(w) }\n";
        let files = [SourceFile::new("a.route", a), SourceFile::new("b.route", b)];
        let s = parse(&files).unwrap().symbols();
        let defs: Vec<(SymbolKind, &str, usize)> =
            s.definitions().iter().map(|d| (d.kind(), d.name(), d.file())).collect();
        assert_eq!(
            defs,
            [
                (SymbolKind::Provider, "p", 0),
                (SymbolKind::Model, "m", 0),
                (SymbolKind::Route, "r", 1),
                (SymbolKind::Workload, "w", 1),
                (SymbolKind::Workload, "e", 1),
            ]
        );
        assert_eq!(s.definitions()[1].provider(), Some("p"));
        let uses: Vec<(SymbolKind, &str, &str)> = s
            .references()
            .iter()
            .map(|r| (r.kind(), r.name(), &b[r.name_range()]))
            .collect();
        assert_eq!(
            uses,
            [
                (SymbolKind::Provider, "p", "p"),
                (SymbolKind::Model, "m", "m"),
                (SymbolKind::Route, "r", "r"),
                (SymbolKind::Route, "r", "r"),
                (SymbolKind::Workload, "w", "w"),
            ]
        );
        assert!(s.references()[1].same_target(&s.definitions()[1]));
        assert_eq!(file_offsets(&files), [0, a.len() + 1]);
    }
}
