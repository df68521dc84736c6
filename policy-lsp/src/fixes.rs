//! Quick fixes, worked out when a diagnostic is converted, from what the
//! compiler already said: its "did you mean" label, the weights it labelled
//! on a split that does not sum to 100, the `match` it says has no `else`.
//! They travel in the diagnostic's `data` and are kept with the published
//! diagnostics, so `codeAction` does not depend on the client echoing them.

use lsp_types::{Range, TextEdit};
use serde::{Deserialize, Serialize};

use crate::line_index::LineIndex;

/// One fix: a title and the edits, all in the diagnostic's own file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Fix {
    pub(crate) title: String,
    pub(crate) edits: Vec<TextEdit>,
}

/// A label of the diagnostic, placed in its file: byte range, text.
pub(crate) struct Label<'a> {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) text: Option<&'a str>,
    pub(crate) primary: bool,
}

/// The fixes for a diagnostic with `code` whose labels in `text` are
/// `labels` (only those in the primary label's file).
pub(crate) fn fixes(code: &str, labels: &[Label<'_>], text: &str, index: &LineIndex) -> Vec<Fix> {
    let mut out = Vec::new();
    let range = |s: usize, e: usize| -> Range { index.range(text, s, e) };
    // "did you mean `x`?" on the misspelt name: replace it.
    for l in labels {
        if let Some(name) = l.text.and_then(suggested) {
            out.push(Fix {
                title: format!("replace with `{name}`"),
                edits: vec![TextEdit::new(range(l.start, l.end), name.to_string())],
            });
        }
    }
    match code {
        "R0204" => out.extend(fix_weights(labels, text, &range)),
        "R0205" => out.extend(fix_else(labels, text, &range)),
        _ => {}
    }
    out
}

fn suggested(label: &str) -> Option<&str> {
    let rest = label.strip_prefix("did you mean `")?;
    let name = rest.strip_suffix("`?")?;
    (!name.is_empty() && !name.contains('`')).then_some(name)
}

/// Split weights: the secondary labels are the weights, in order. Change
/// the last so they sum to 100, when that leaves it positive.
fn fix_weights(labels: &[Label<'_>], text: &str, range: &dyn Fn(usize, usize) -> Range) -> Option<Fix> {
    let weights: Vec<(&Label<'_>, u64)> = labels
        .iter()
        .filter(|l| !l.primary)
        .filter_map(|l| {
            Some((
                l,
                text.get(l.start..l.end)?.trim().replace('_', "").parse::<u64>().ok()?,
            ))
        })
        .collect();
    let (last, value) = weights.last()?;
    let others: u64 = weights.iter().map(|(_, w)| *w).sum::<u64>() - value;
    let wanted = 100u64.checked_sub(others).filter(|w| *w > 0)?;
    Some(Fix {
        title: format!("make the last weight {wanted}, so the weights sum to 100"),
        edits: vec![TextEdit::new(range(last.start, last.end), wanted.to_string())],
    })
}

/// `match` without `else`: the primary label is the `match` keyword. Add
/// `else =>` the last arm's route before the block's closing brace, as a
/// start the author then edits.
fn fix_else(labels: &[Label<'_>], text: &str, range: &dyn Fn(usize, usize) -> Range) -> Option<Fix> {
    let head = labels.iter().find(|l| l.primary)?;
    let open = head.end + text.get(head.end..)?.find('{')?;
    let close = matching_close(text, open)?;
    let body = text.get(open + 1..close)?;
    let last_route = body.rsplit("=>").next().filter(|_| body.contains("=>"))?;
    let last_route = last_route.lines().next()?.trim().trim_end_matches([',', ';']).trim();
    if last_route.is_empty() {
        return None;
    }
    // Indent like the arms; put the closing brace back on its own line.
    let line_start = text.get(..close)?.rfind('\n').map_or(0, |i| i + 1);
    let brace_indent = text.get(line_start..close)?;
    let (at, insert) = if brace_indent.trim().is_empty() {
        (line_start, format!("{brace_indent}  else => {last_route}\n"))
    } else {
        (close, format!(" else => {last_route} "))
    };
    Some(Fix {
        title: format!("add `else => {last_route}`"),
        edits: vec![TextEdit::new(range(at, at), insert)],
    })
}

/// The offset of the `}` closing the `{` at `open`, skipping strings and
/// comments.
fn matching_close(text: &str, open: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' => depth += 1,
            b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn apply(text: &str, fix: &Fix) -> String {
        let index = LineIndex::new(text);
        let mut out = text.to_string();
        for e in fix.edits.iter().rev() {
            let s = index.offset(text, e.range.start);
            let t = index.offset(text, e.range.end);
            out.replace_range(s..t, &e.new_text);
        }
        out
    }

    fn label(text: &str, needle: &str, label: Option<&'static str>, primary: bool) -> Label<'static> {
        let start = text.find(needle).unwrap();
        Label {
            start,
            end: start + needle.len(),
            text: label,
            primary,
        }
    }

    #[test]
    fn weights_are_made_to_sum_to_100() {
        let text = "route s = split by user {\n  70: a/b\n  20: c/d\n}\n";
        let labels = [
            label(text, "split", Some("weights total 90"), true),
            label(text, "70", Some("70"), false),
            label(text, "20", Some("20"), false),
        ];
        let f = fixes("R0204", &labels, text, &LineIndex::new(text));
        assert_eq!(f.len(), 1);
        assert_eq!(apply(text, &f[0]), text.replace("20:", "30:"));
    }

    #[test]
    fn a_missing_else_repeats_the_last_arm() {
        let text = "workload w {\n  route match {\n    when has tools => a/b\n  }\n}\n";
        let labels = [label(text, "match", Some("no `else`"), true)];
        let f = fixes("R0205", &labels, text, &LineIndex::new(text));
        assert_eq!(f[0].title, "add `else => a/b`");
        assert_eq!(
            apply(text, &f[0]),
            text.replace("a/b\n  }", "a/b\n    else => a/b\n  }")
        );
    }

    #[test]
    fn did_you_mean_replaces_the_name() {
        let text = "workload w { route pol }";
        let labels = [label(text, "pol", Some("did you mean `pool`?"), true)];
        let f = fixes("R0101", &labels, text, &LineIndex::new(text));
        assert_eq!(apply(text, &f[0]), "workload w { route pool }");
    }
}
