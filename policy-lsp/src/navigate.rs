//! Names under the cursor, and where else they are: go-to-definition,
//! references, rename and the outline, all from the symbol tables
//! `policy_lang` reads off the syntax tree.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lsp_types::{DocumentSymbol, Location, Position, Range, SymbolKind as LspKind, TextEdit, Url, WorkspaceEdit};
use policy_lang::{Symbol, SymbolKind};

use crate::workspace::{File, PolicyDir};

/// The name at `pos` in `file`: a use or a definition. A cursor just after
/// the name still counts, as editors place it there after typing.
pub(crate) fn symbol_at(file: &File, pos: Position) -> Option<&Symbol> {
    let offset = file.index.offset(file.text(), pos);
    file.references
        .iter()
        .chain(&file.definitions)
        .find(|s| s.name_range().contains(&offset))
        .or_else(|| {
            file.references
                .iter()
                .chain(&file.definitions)
                .find(|s| s.name_range().end == offset)
        })
}

fn location(path: &Path, file: &File, s: &Symbol) -> Option<Location> {
    let r = s.name_range();
    Some(Location::new(
        Url::from_file_path(path).ok()?,
        file.index.range(file.text(), r.start, r.end),
    ))
}

/// Where `target` is defined.
pub(crate) fn definition(policy: &PolicyDir, target: &Symbol) -> Option<Location> {
    policy
        .definitions()
        .find(|(_, _, s)| s.same_target(target))
        .and_then(|(p, f, s)| location(p, f, s))
}

/// Every use of `target`, and its definition when asked.
pub(crate) fn references(policy: &PolicyDir, target: &Symbol, with_definition: bool) -> Vec<Location> {
    let defs = policy.definitions().filter(|_| with_definition);
    defs.chain(policy.references())
        .filter(|(_, _, s)| s.same_target(target))
        .filter_map(|(p, f, s)| location(p, f, s))
        .collect()
}

/// The grammar's reserved words (its `keyword` rule): no name may be one.
const RESERVED: &[&str] = &[
    "provider",
    "workload",
    "route",
    "defaults",
    "fallback",
    "free_first",
    "split",
    "select",
    "match",
    "when",
    "else",
    "escalate",
    "check",
    "on",
    "retry",
    "allow_repeat",
    "by",
    "and",
    "or",
    "not",
    "has",
    "true",
    "false",
];

/// Why a name cannot be renamed to `new`, if it cannot.
pub(crate) fn invalid_name(kind: SymbolKind, new: &str) -> Option<String> {
    let mut chars = new.chars();
    let first_ok = match kind {
        // A model's name may start with a digit (`4o-mini`) and hold `.`
        // and `:` (`llama-3.3`, `llama3:8b`).
        SymbolKind::Model => chars.next().is_some_and(|c| c.is_alphanumeric() || c == '_'),
        _ => chars.next().is_some_and(|c| c.is_alphabetic() || c == '_'),
    };
    let rest_ok = new
        .chars()
        .skip(1)
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || (kind == SymbolKind::Model && (c == '.' || c == ':')));
    if kind != SymbolKind::Model && RESERVED.contains(&new) {
        Some(format!("`{new}` is a keyword, not a {} name", kind.keyword()))
    } else if first_ok && rest_ok {
        None
    } else {
        Some(format!("`{new}` is not a valid {} name", kind.keyword()))
    }
}

/// The edits that rename `target` to `new` everywhere in its policy.
pub(crate) fn rename(policy: &PolicyDir, target: &Symbol, new: &str) -> WorkspaceEdit {
    let mut changes: HashMap<Url, Vec<TextEdit>> = HashMap::new();
    for (path, file, s) in policy.definitions().chain(policy.references()) {
        if !s.same_target(target) {
            continue;
        }
        let Ok(uri) = Url::from_file_path(path) else { continue };
        let r = s.name_range();
        changes.entry(uri).or_default().push(TextEdit::new(
            file.index.range(file.text(), r.start, r.end),
            new.to_string(),
        ));
    }
    WorkspaceEdit::new(changes)
}

/// The outline of one file: providers (with their models), workloads and
/// named routes.
pub(crate) fn document_symbols(file: &File) -> Vec<DocumentSymbol> {
    let mut out: Vec<DocumentSymbol> = Vec::new();
    for s in &file.definitions {
        let r = s.range();
        let n = s.name_range();
        #[expect(deprecated, reason = "the field is deprecated but has no default")]
        let sym = DocumentSymbol {
            name: s.name().to_string(),
            detail: Some(s.kind().keyword().to_string()),
            kind: match s.kind() {
                SymbolKind::Provider => LspKind::MODULE,
                SymbolKind::Model => LspKind::CLASS,
                SymbolKind::Workload => LspKind::FUNCTION,
                SymbolKind::Route => LspKind::VARIABLE,
            },
            tags: None,
            deprecated: None,
            range: file.index.range(file.text(), r.start, r.end.max(n.end)),
            selection_range: file.index.range(file.text(), n.start, n.end),
            children: None,
        };
        let parent = out
            .iter_mut()
            .rev()
            .find(|p| p.kind == LspKind::MODULE && Some(p.name.as_str()) == s.provider());
        match (s.kind(), parent) {
            (SymbolKind::Model, Some(parent)) => parent.children.get_or_insert_with(Vec::new).push(sym),
            _ => out.push(sym),
        }
    }
    out
}

/// The range of the name at `pos`, for `prepareRename`.
pub(crate) fn name_range(file: &File, s: &Symbol) -> Range {
    let r = s.name_range();
    file.index.range(file.text(), r.start, r.end)
}

/// The file at `path`, or the reason the request cannot be answered.
pub(crate) fn path_of(uri: &Url) -> Option<PathBuf> {
    uri.to_file_path().ok()
}
