//! Recovery inside a block, so two broken properties of one provider,
//! model, workload or `defaults` block give two errors, not one.
//!
//! Pest stops at an item's first error. Every property starts with a
//! keyword, so where the properties of a block begin is known without the
//! grammar: after an error, the properties around it are blanked out (made
//! spaces, so offsets stay put) and the item is parsed again; the next
//! error, if any, is a real one further on.
//!
//! What is blanked runs from the last property start before the error to
//! the next property start at or after it, or to the block's `}`: whole
//! properties only, so brackets stay balanced and what is left parses as it
//! would have on its own. A property start is a keyword of that block
//! written directly in it (not inside a nested bracket), unless it follows
//! a keyword that takes a name (`route data` names a route `data`). When an
//! error is not inside a block's properties (an item's header, a named
//! route), recovery stops there, as it does after [`MAX_ERRORS_PER_ITEM`]
//! errors; items over [`MAX_RECOVERY_BYTES`] are not re-parsed at all.
//!
//! The scan runs only on items the pre-scan passed (brackets matched,
//! nesting bounded), and is iterative.

use pest::error::{Error, ErrorVariant, InputLocation};

use super::*;
use crate::names;
use crate::prescan::{Chunk, is_word_byte};

/// Errors reported for one item at most; each costs a parse of the item.
pub(super) const MAX_ERRORS_PER_ITEM: usize = 16;

/// Items larger than this are reported at their first error only, so a
/// hostile file cannot make recovery re-parse megabytes many times over.
pub(super) const MAX_RECOVERY_BYTES: usize = 256 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyKind {
    Provider,
    Model,
    Workload,
    Defaults,
}

impl BodyKind {
    /// The keywords that start a property of this kind of block.
    fn keywords(self) -> &'static [&'static str] {
        match self {
            BodyKind::Provider => expected::PROVIDER_PROPS,
            BodyKind::Model => expected::MODEL_PROPS,
            BodyKind::Workload => expected::WORKLOAD_PROPS,
            BodyKind::Defaults => &["max_attempts"],
        }
    }
}

/// Keywords followed by a name (or, after `no_store`, by `header`): a
/// property keyword right after one is that name, not a new property.
fn takes_name(word: &str) -> bool {
    matches!(
        word,
        "adapter" | "jurisdiction" | "task" | "route" | "model" | "no_store"
    )
}

/// The inside of one block whose properties start with keywords.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Body {
    kind: BodyKind,
    /// Offsets of the `{` and the `}`.
    open: usize,
    close: usize,
    /// Where each property starts, in order.
    starts: Vec<usize>,
}

/// An open bracket: the kind of block it opens, if a property block.
struct Open {
    kind: Option<BodyKind>,
    open: usize,
    starts: Vec<usize>,
}

/// Every property block of one item, with where its properties start.
pub(super) fn bodies(text: &str) -> Vec<Body> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut stack: Vec<Open> = Vec::new();
    // The last two tokens before the current one.
    let (mut prev2, mut prev) = ("", "");
    let mut line_start = true;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let token: &str = match bytes[i] {
            b'\n' => {
                line_start = true;
                i += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && !matches!(bytes[i], b'"' | b'\n') {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(bytes.len());
                "\""
            }
            b'{' | b'[' | b'(' => {
                let top = stack.last().and_then(|o| o.kind);
                let kind = match (bytes[i], top) {
                    (b'{', None) if stack.is_empty() => match (prev2, prev) {
                        ("provider", _) => Some(BodyKind::Provider),
                        ("workload", _) => Some(BodyKind::Workload),
                        (_, "defaults") => Some(BodyKind::Defaults),
                        _ => None,
                    },
                    (b'{', Some(BodyKind::Provider)) if prev2 == "model" => Some(BodyKind::Model),
                    _ => None,
                };
                stack.push(Open {
                    kind,
                    open: i,
                    starts: Vec::new(),
                });
                i += 1;
                "("
            }
            b'}' | b']' | b')' => {
                if let Some(Open {
                    kind: Some(kind),
                    open,
                    starts,
                }) = stack.pop()
                {
                    out.push(Body {
                        kind,
                        open,
                        close: i,
                        starts,
                    });
                }
                i += 1;
                ")"
            }
            b';' => {
                i += 1;
                ";"
            }
            b if is_word_byte(b) => {
                while i < bytes.len() && is_word_byte(bytes[i]) {
                    i += 1;
                }
                let word = text.get(start..i).unwrap_or("");
                if let Some(top) = stack.last_mut()
                    && let Some(kind) = top.kind
                    && !takes_name(prev)
                {
                    // A keyword, or a misspelling of one starting a line
                    // (`tire paid`); elsewhere a near-keyword is a value.
                    let keywords = kind.keywords();
                    if keywords.contains(&word)
                        || (line_start && names::did_you_mean(word, keywords.iter().copied()).is_some())
                    {
                        top.starts.push(start);
                    }
                }
                word
            }
            _ => {
                i += text.get(i..).and_then(|s| s.chars().next()).map_or(1, char::len_utf8);
                "="
            }
        };
        (prev2, prev) = (prev, token);
        line_start = false;
    }
    out
}

/// The byte range to blank after an error at `at`, in the innermost block
/// holding it, up to the next property start (or the block's `}`). It
/// starts at `at` when a property could have started there
/// (`expects_property`: what is at `at` is the mistake, `tsk summarise`);
/// otherwise the property before `at` is the broken one (`data` then
/// `quality low`), and it starts there. `None` when `at` is in no block.
pub(super) fn region(bodies: &[Body], at: usize, expects_property: bool) -> Option<(usize, usize)> {
    let body = innermost(bodies, at)?;
    let before = body.starts.iter().rev().find(|s| **s < at).copied();
    let start = match before {
        Some(s) if !expects_property => s,
        _ => at,
    };
    let end = body
        .starts
        .iter()
        .copied()
        .find(|s| *s >= at && *s > start)
        .unwrap_or(body.close);
    (start < end).then_some((start, end))
}

/// The innermost block holding `at` (its `}` included).
fn innermost(bodies: &[Body], at: usize) -> Option<&Body> {
    bodies
        .iter()
        .filter(|b| b.open < at && at <= b.close)
        .max_by_key(|b| b.open)
}

/// What ends a property that was left without its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ValueCutBy {
    /// The next property's keyword.
    Property,
    /// The block's `}`.
    Close,
    /// A `;`.
    Semicolon,
}

/// A property keyword with no value after it (`tier` then `data private`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct MissingValue {
    /// The keyword, and where it is.
    pub(super) keyword: &'static str,
    pub(super) at: usize,
    /// Where what follows it starts, and what it is.
    pub(super) next: usize,
    pub(super) cut_by: ValueCutBy,
    /// What the value would have been, when pest cannot say: it read the
    /// next property's keyword as a name and failed after it.
    pub(super) value: Option<expected::Expect>,
}

/// Keywords whose name value may itself be a property keyword (a route
/// named `data`), so the grammar takes it: only a keyword on a later line
/// with an error right after it is read as their value missing.
fn takes_any_name(word: &str) -> Option<expected::Expect> {
    match word {
        "route" => Some(expected::Expect::Route),
        "model" => Some(expected::Expect::ModelName),
        "jurisdiction" => Some(expected::Expect::Name),
        _ => None,
    }
}

/// The word (keyword, name, number) starting at `at`, empty if none.
fn word_at(text: &str, at: usize) -> &str {
    let bytes = text.as_bytes();
    let mut end = at;
    while end < bytes.len() && is_word_byte(bytes[end]) {
        end += 1;
    }
    text.get(at..end).unwrap_or("")
}

/// Whether the parse failure at `at` (a token) is a property left without
/// its value: the block's last property keyword before `at` is followed
/// directly by a keyword of the block, its `}` or a `;`. Pest reports such
/// a failure at what follows, which is not the mistake.
pub(super) fn missing_value(bodies: &[Body], text: &str, at: usize) -> Option<MissingValue> {
    let body = innermost(bodies, at)?;
    let keywords = body.kind.keywords();
    let start = body.starts.iter().rev().copied().find(|s| *s < at)?;
    let word = word_at(text, start);
    let keyword = keywords.iter().copied().find(|k| *k == word)?;
    let after = next_token(text, start + word.len());
    let property_at = |pos: usize| {
        let w = word_at(text, pos);
        keywords.contains(&w).then_some(w.len())
    };
    let missing = |next, cut_by, value| {
        Some(MissingValue {
            keyword,
            at: start,
            next,
            cut_by,
            value,
        })
    };
    if after == at {
        let cut_by = if at == body.close {
            ValueCutBy::Close
        } else if text.as_bytes().get(at) == Some(&b';') {
            ValueCutBy::Semicolon
        } else {
            property_at(at)?;
            ValueCutBy::Property
        };
        return missing(at, cut_by, None);
    }
    // `route` then, on the next line, `max_tokens 2000`: `max_tokens` was
    // taken as the route's name and the parse failed at `2000`.
    let value = takes_any_name(keyword)?;
    let len = property_at(after)?;
    let on_a_later_line = text.get(start..after).is_some_and(|s| s.contains('\n'));
    if on_a_later_line && next_token(text, after + len) == at {
        missing(after, ValueCutBy::Property, Some(value))
    } else {
        None
    }
}

/// Replaces `start..end` of `text` by spaces; false when that is not a
/// whole range of characters.
fn blank(text: &mut String, start: usize, end: usize) -> bool {
    if end > text.len() || !text.is_char_boundary(start) || !text.is_char_boundary(end) {
        return false;
    }
    text.replace_range(start..end, &" ".repeat(end - start));
    true
}

/// The first token at or after `pos`: whitespace and comments skipped.
fn next_token(text: &str, mut pos: usize) -> usize {
    let bytes = text.as_bytes();
    loop {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        if bytes.get(pos) != Some(&b'#') {
            return pos.min(bytes.len());
        }
        while pos < bytes.len() && bytes[pos] != b'\n' {
            pos += 1;
        }
    }
}

fn position(e: &Error<Rule>) -> usize {
    match e.location {
        InputLocation::Pos(p) | InputLocation::Span((p, _)) => p,
    }
}

impl Builder<'_> {
    /// Reports the syntax error `first` of the item at `chunk` of `text`,
    /// then every further error recovery finds in its blocks. When the item
    /// parses once its broken properties are blanked, the rest is walked
    /// too, so its literal errors (a bad number, an unknown escape) are
    /// reported as well; that tree is returned.
    pub(super) fn item_errors(
        &mut self,
        text: &str,
        chunk: Chunk,
        first: Error<Rule>,
        scan: &ItemScan,
    ) -> Option<Item> {
        let original = text.get(chunk.start..chunk.end)?;
        // One linear scan, also for items too large to re-parse: it tells
        // a property left without its value.
        let bodies = bodies(original);
        let recover = original.len() <= MAX_RECOVERY_BYTES;
        let mut blanked: Option<String> = None;
        let mut pos = position(&first);
        let mut variant = first.variant;
        let mut reported: Option<usize> = None;
        for _ in 0..MAX_ERRORS_PER_ITEM {
            let current = blanked.as_deref().unwrap_or(original);
            let at = next_token(current, pos);
            // Blanking only removes text after the last error's property
            // start, so a later failure is never before the last one; it
            // may be at the same token, when the last error was the
            // property before it left incomplete (`price $1/M in` then
            // `contxt 200k`): that token is then a mistake of its own.
            if reported.is_some_and(|r| at < r) {
                return None;
            }
            let missing = missing_value(&bodies, current, at);
            self.syntax_error(text, chunk.start, at, &variant, scan, missing.as_ref());
            reported = Some(at);
            let expects_property = match &variant {
                ErrorVariant::ParsingError { positives, .. } => expected::expects_property(positives),
                ErrorVariant::CustomError { .. } => return None,
            };
            if !recover {
                return None;
            }
            // A keyword on a later line than the one missing its value
            // starts the next property: only the bare keyword goes, so that
            // property is still checked. On the same line it may be a
            // keyword misused as a name (`task data`), blanked with it.
            let region = match missing {
                Some(m) if current.get(m.at..m.next).is_some_and(|s| s.contains('\n')) => Some((m.at, m.next)),
                _ => region(&bodies, at, expects_property),
            };
            let (start, end) = region?;
            let current = blanked.get_or_insert_with(|| original.to_string());
            if !blank(current, start, end) {
                return None;
            }
            match PolicyParser::parse(Rule::item_only, current) {
                Ok(mut pairs) => {
                    let file_base = self.base;
                    self.base = file_base + chunk.start;
                    let item = pairs
                        .next()
                        .map(|p| self.kids(p))
                        .ok_or(Internal {
                            span: Span::new(self.base, self.base + current.len()),
                            what: "no item".to_string(),
                        })
                        .and_then(|mut k| k.next())
                        .and_then(|p| self.item(p));
                    let item = match item {
                        Ok(item) => Some(item),
                        Err(e) => {
                            self.internal_error(e);
                            None
                        }
                    };
                    self.base = file_base;
                    return item;
                }
                Err(e) => {
                    pos = position(&e);
                    variant = e.variant;
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(text: &str) -> Vec<Vec<&str>> {
        bodies(text)
            .iter()
            .map(|b| {
                b.starts
                    .iter()
                    .map(|s| text[*s..].split_whitespace().next().unwrap_or(""))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn property_starts_are_keywords_directly_in_their_block() {
        let text = "provider p { adapter data; no_store header \"a\" = \"b\" model m { price free; simulate latency 1s } timeout 5s }";
        // Inner blocks close first.
        assert_eq!(
            starts(text),
            vec![
                vec!["price", "simulate"],
                vec!["adapter", "no_store", "model", "timeout"]
            ]
        );
        let text = "workload w { route data\n task summarise; route fallback [ p/m ] on timeout(1s) latency 2s match { when task == code => a } }";
        assert_eq!(starts(text), vec![vec!["route", "task", "route", "latency"]]);
        // Strings and comments hide keywords; a route's braces are no block.
        let text =
            "workload w { alias \"data\" # task\n route split by user { 50: a 50: b } }\nroute r = match { else => a }";
        assert_eq!(starts(text), vec![vec!["alias", "route"]]);
        assert_eq!(starts("defaults { max_attempts 2 }"), vec![vec!["max_attempts"]]);
    }

    #[test]
    fn the_region_is_whole_properties_around_the_error() {
        let text = "workload w { data\n quality low; tsk x; route a }";
        let b = bodies(text);
        let at = |s: &str| text.find(s).unwrap_or(usize::MAX);
        let cut = |r: Option<(usize, usize)>| r.map(|(s, e)| text[s..e].trim_end());
        // `data` lacks its value: the error is at the next property, which stays.
        assert_eq!(cut(region(&b, at("quality"), false)), Some("data"));
        // A misspelt keyword where a property could start: it alone.
        assert_eq!(cut(region(&b, at("tsk"), true)), Some("tsk x;"));
        // At the closing brace.
        assert_eq!(cut(region(&b, at("}"), false)), Some("route a"));
        // Outside every block.
        assert_eq!(region(&b, at("w"), false), None);
    }

    #[test]
    fn a_value_is_missing_when_a_property_keyword_ends_where_the_next_begins() {
        fn missing<'a>(
            text: &'a str,
            at: &str,
        ) -> Option<(&'static str, &'a str, ValueCutBy, Option<expected::Expect>)> {
            let at = text.find(at).unwrap_or(usize::MAX);
            missing_value(&bodies(text), text, at).map(|m| (m.keyword, &text[m.next..m.next + 1], m.cut_by, m.value))
        }
        let text = "provider p {\n  tier # none\n  data public\n  model m { context }\n  timeout;\n}";
        assert_eq!(missing(text, "data"), Some(("tier", "d", ValueCutBy::Property, None)));
        assert_eq!(
            missing(text, "}\n  timeout"),
            Some(("context", "}", ValueCutBy::Close, None))
        );
        assert_eq!(missing(text, ";"), Some(("timeout", ";", ValueCutBy::Semicolon, None)));
        // A value was there: what follows is a mistake of its own.
        assert_eq!(missing(text, "public"), None);
        assert_eq!(missing("workload w { data public tsk x }", "tsk"), None);
        // `route data` names a route; only a keyword on the next line with a
        // failure right after it is read as the next property.
        let text = "workload w {\n  route\n  max_tokens 2000\n}";
        assert_eq!(
            missing(text, "2000"),
            Some(("route", "m", ValueCutBy::Property, Some(expected::Expect::Route)))
        );
        assert_eq!(missing("workload w { route max_tokens 2000 }", "2000"), None);
    }

    #[test]
    fn a_misspelt_keyword_starting_a_line_starts_a_property() {
        // On a line with others, it is taken for a value.
        let text = "provider p { key env(X)\n  tire paid\n  data public tirr }";
        assert_eq!(starts(text), vec![vec!["key", "tire", "data"]]);
        let b = bodies(text);
        let at = |s: &str| text.find(s).unwrap_or(usize::MAX);
        let cut = |r: Option<(usize, usize)>| r.map(|(s, e)| text[s..e].trim_end());
        assert_eq!(cut(region(&b, at("X"), false)), Some("key env(X)"));
        assert_eq!(cut(region(&b, at("tire"), true)), Some("tire paid"));
    }
}
