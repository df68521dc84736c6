//! A single linear pass over a file before the grammar runs.
//!
//! It does three things pest cannot do well:
//!
//! - **Splits the file into top-level items** at `provider`, `workload`,
//!   `defaults` and `route` (the last only outside brackets), so each item is
//!   parsed on its own and one broken item does not hide errors in the others.
//!   `provider`, `workload` and `defaults` also cut inside an unclosed block
//!   when they start a line: they cannot appear inside one, so a forgotten
//!   `}` costs one error, not the rest of the file.
//! - **Matches brackets**, reporting what is left open in the policy's words
//!   ("expected `}` to close workload `audit_report`", with "opened here"),
//!   stray closers and unterminated strings.
//! - **Bounds nesting** to [`MAX_DEPTH`], so the recursive-descent parser and
//!   every tree walk after it can never overflow the stack, however deep the
//!   input nests.
//!
//! It is iterative and allocates only the item list and the open-bracket
//! stack (at most [`MAX_DEPTH`] deep).

/// The deepest bracket nesting accepted. The seed policy needs 3.
pub(crate) const MAX_DEPTH: usize = 64;

/// A top-level item's byte range in its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chunk {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// A delimiter problem found by the pre-scan, with file-local offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum DelimError {
    /// `open` (at `open_at`) is never closed; the item ends at `end_at`.
    /// `cut_by` names the keyword that started the next item, if any.
    Unclosed {
        open: u8,
        open_at: usize,
        what: String,
        end_at: usize,
        cut_by: Option<&'static str>,
    },
    /// A string opened at `open_at` runs to the end of its line at `end_at`.
    UnclosedString { open_at: usize, end_at: usize },
    /// `close` at `at` closes nothing (`expected` is `Some` when another
    /// bracket is open and should be closed first).
    UnexpectedCloser {
        close: u8,
        at: usize,
        expected: Option<(u8, usize, String)>,
    },
    /// The opener at `at` nests deeper than [`MAX_DEPTH`].
    TooDeep { at: usize },
}

/// The pre-scan of one item.
#[derive(Clone, Debug, Default)]
pub(crate) struct ItemScan {
    pub(crate) chunk: Option<Chunk>,
    pub(crate) errors: Vec<DelimError>,
    /// Every matched bracket pair: opener, closer and what it opens.
    pub(crate) blocks: Vec<(usize, usize, String)>,
}

impl ItemScan {
    /// What the innermost bracket around file-local offset `at` opens.
    pub(crate) fn enclosing(&self, at: usize) -> Option<&str> {
        self.blocks
            .iter()
            .filter(|(open, close, _)| *open < at && at <= *close)
            .max_by_key(|(open, _, _)| *open)
            .map(|(_, _, what)| what.as_str())
    }
}

/// The closing character of an opening one.
pub(crate) const fn closer(open: u8) -> u8 {
    match open {
        b'{' => b'}',
        b'[' => b']',
        _ => b')',
    }
}

/// Whether `b` continues a word (a name, keyword, number or target).
pub(crate) fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'$' | b'%' | b'/') || b >= 0x80
}

/// What a `test "name" {` block is called in "expected `}` to close …".
const TEST_BLOCK: &str = "the `test` block";

struct Open {
    byte: u8,
    at: usize,
    what: String,
}

/// Describes what an opener opens, from the words before it.
fn describe(open: u8, words: &[&str; 3]) -> String {
    let [w2, w1, w0] = *words; // w0 is the last word before the opener
    match open {
        b'{' => match (w1, w0) {
            ("provider" | "workload" | "model", name) if !name.is_empty() => format!("{w1} `{name}`"),
            (_, "defaults") => "the `defaults` block".to_string(),
            ("test", "\"") => TEST_BLOCK.to_string(),
            (_, "match") => "the `match` block".to_string(),
            (_, "weighted") => "the `select weighted` block".to_string(),
            ("by", _) => "the `split` block".to_string(),
            _ if w2 == "provider" || w2 == "workload" || w2 == "model" => format!("{w2} `{w1}`"),
            _ => "this block".to_string(),
        },
        b'[' => match w0 {
            "fallback" | "free_first" | "escalate" => format!("the `{w0}` list"),
            "cheapest" | "fastest" | "first" => format!("the `select {w0}` list"),
            _ => "this list".to_string(),
        },
        _ => "these parentheses".to_string(),
    }
}

/// Splits `text` into items and checks each one's delimiters.
pub(crate) fn scan(text: &str) -> Vec<ItemScan> {
    let bytes = text.as_bytes();
    let mut items: Vec<ItemScan> = Vec::new();
    let mut current = ItemScan::default();
    let mut chunk_start = 0usize;
    let mut has_tokens = false;
    let mut stack: Vec<Open> = Vec::new();
    let mut too_deep = false;
    let mut words: [&str; 3] = ["", "", ""];
    let mut line_has_token = false;
    let mut last_token_end = 0usize;
    // A byte-order mark is not a token.
    let mut i = if text.starts_with('\u{FEFF}') { 3 } else { 0 };

    let finish = |current: &mut ItemScan,
                  stack: &mut Vec<Open>,
                  start: usize,
                  end: usize,
                  last_token_end: usize,
                  cut_by: Option<&'static str>| {
        let too_deep = current.errors.iter().any(|e| matches!(e, DelimError::TooDeep { .. }));
        if let Some(open) = stack.last().filter(|_| !too_deep) {
            current.errors.push(DelimError::Unclosed {
                open: open.byte,
                open_at: open.at,
                what: open.what.clone(),
                end_at: if cut_by.is_some() { end } else { last_token_end },
                cut_by,
            });
        }
        stack.clear();
        current.chunk = Some(Chunk { start, end });
        std::mem::take(current)
    };

    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\n' => {
                line_has_token = false;
                i += 1;
            }
            b' ' | b'\t' | b'\r' | b';' | b',' => i += 1,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                let open_at = i;
                i += 1;
                let mut closed = false;
                while i < bytes.len() && bytes[i] != b'\n' {
                    match bytes[i] {
                        b'\\' => i += 2,
                        b'"' => {
                            i += 1;
                            closed = true;
                            break;
                        }
                        _ => i += 1,
                    }
                }
                i = i.min(bytes.len());
                if !closed {
                    let end_at = if i > 0 && bytes.get(i - 1) == Some(&b'\r') {
                        i - 1
                    } else {
                        i
                    };
                    current.errors.push(DelimError::UnclosedString { open_at, end_at });
                }
                has_tokens = true;
                line_has_token = true;
                last_token_end = i;
                words = [words[1], words[2], "\""];
            }
            b'{' | b'[' | b'(' => {
                has_tokens = true;
                line_has_token = true;
                if stack.len() >= MAX_DEPTH {
                    if !too_deep {
                        current.errors.push(DelimError::TooDeep { at: i });
                        too_deep = true;
                    }
                } else {
                    stack.push(Open {
                        byte: b,
                        at: i,
                        what: describe(b, &words),
                    });
                }
                i += 1;
                last_token_end = i;
                words = [words[1], words[2], ""];
            }
            b'}' | b']' | b')' => {
                has_tokens = true;
                line_has_token = true;
                if too_deep {
                    // Past the limit the stack no longer mirrors the text;
                    // the one error already reported is enough.
                } else if stack.last().is_some_and(|o| closer(o.byte) == b) {
                    if let Some(open) = stack.pop() {
                        current.blocks.push((open.at, i, open.what));
                    }
                } else if let Some(pos) = stack.iter().rposition(|o| closer(o.byte) == b) {
                    if let Some(top) = stack.last() {
                        current.errors.push(DelimError::UnexpectedCloser {
                            close: b,
                            at: i,
                            expected: Some((closer(top.byte), top.at, top.what.clone())),
                        });
                    }
                    stack.truncate(pos);
                } else {
                    current.errors.push(DelimError::UnexpectedCloser {
                        close: b,
                        at: i,
                        expected: stack.last().map(|o| (closer(o.byte), o.at, o.what.clone())),
                    });
                    // Take it as closing the innermost bracket anyway, so the
                    // one mistake is reported once.
                    stack.pop();
                }
                i += 1;
                last_token_end = i;
                words = [words[1], words[2], ""];
            }
            _ => {
                let start = i;
                if is_word_byte(b) {
                    while i < bytes.len() && is_word_byte(bytes[i]) {
                        i += 1;
                    }
                } else {
                    // `=`, `<`, `!` and other operators: one byte (or one
                    // character) at a time.
                    i += text.get(i..).and_then(|s| s.chars().next()).map_or(1, char::len_utf8);
                }
                let word = text.get(start..i).unwrap_or("");
                // A test block names its workload on a line of its own:
                // there `workload` is a property, not a new item.
                let in_test = stack.first().is_some_and(|o| o.what == TEST_BLOCK);
                let cut_here = match word {
                    "provider" | "defaults" => stack.is_empty() || !line_has_token,
                    "workload" => stack.is_empty() || (!line_has_token && !in_test),
                    "route" => stack.is_empty(),
                    // `test "name" {`: only before a string, so a provider or
                    // route may still be called `test`.
                    "test" => stack.is_empty() && text.get(i..).is_some_and(|r| r.trim_start().starts_with('"')),
                    _ => false,
                };
                if cut_here && has_tokens {
                    let cut_by = (!stack.is_empty()).then_some(match word {
                        "provider" => "provider",
                        "workload" => "workload",
                        _ => "defaults",
                    });
                    items.push(finish(
                        &mut current,
                        &mut stack,
                        chunk_start,
                        start,
                        last_token_end,
                        cut_by,
                    ));
                    too_deep = false;
                    chunk_start = start;
                } else if cut_here {
                    chunk_start = start;
                }
                has_tokens = true;
                line_has_token = true;
                last_token_end = i;
                words = [words[1], words[2], word];
            }
        }
    }
    if has_tokens {
        items.push(finish(
            &mut current,
            &mut stack,
            chunk_start,
            bytes.len(),
            last_token_end,
            None,
        ));
    }
    items
}

/// A comment's file-local byte range (from `#` to the end of its line,
/// newline excluded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Comment {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Every comment of `text`, in order. Pest skips comments, so the formatter
/// collects them here and puts them back.
pub(crate) fn comments(text: &str) -> Vec<Comment> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'\n' {
                    match bytes[i] {
                        b'\\' => i += 2,
                        b'"' => {
                            i += 1;
                            break;
                        }
                        _ => i += 1,
                    }
                }
            }
            b'#' => {
                let start = i;
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                let mut end = i;
                while end > start && matches!(bytes[end - 1], b'\r' | b' ' | b'\t') {
                    end -= 1;
                }
                out.push(Comment { start, end });
            }
            _ => i += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(text: &str) -> Vec<&str> {
        scan(text)
            .into_iter()
            .filter_map(|s| s.chunk.map(|c| text[c.start..c.end].trim()))
            .collect()
    }

    #[test]
    fn splits_at_item_keywords_but_not_at_route_properties() {
        let text = "# c\nprovider a { model m {} }\nworkload w { route a/m }\nroute r = a/m\n";
        assert_eq!(
            chunks(text),
            vec!["provider a { model m {} }", "workload w { route a/m }", "route r = a/m"]
        );
        assert!(scan(text).iter().all(|s| s.errors.is_empty()));
    }

    #[test]
    fn an_unclosed_block_is_cut_at_the_next_item_and_described() {
        let text = "workload audit_report {\n  task generate\n\nprovider p { }\n";
        let scans = scan(text);
        assert_eq!(scans.len(), 2);
        match &scans[0].errors[..] {
            [DelimError::Unclosed { what, cut_by, .. }] => {
                assert_eq!(what, "workload `audit_report`");
                assert_eq!(*cut_by, Some("provider"));
            }
            other => panic!("{other:?}"),
        }
        assert!(scans[1].errors.is_empty());
    }

    #[test]
    fn stray_and_mismatched_closers_are_reported() {
        let scans = scan("route r = fallback [ a/b }\n}");
        assert_eq!(scans.len(), 1);
        assert!(matches!(
            scans[0].errors[0],
            DelimError::UnexpectedCloser {
                close: b'}',
                expected: Some((b']', _, _)),
                ..
            }
        ));
    }

    #[test]
    fn deep_nesting_stops_at_the_limit_without_recursion() {
        let text = format!("route r = {}", "fallback [".repeat(10_000));
        let scans = scan(&text);
        assert!(scans[0].errors.iter().any(|e| matches!(e, DelimError::TooDeep { .. })));
    }

    #[test]
    fn strings_and_comments_hide_brackets() {
        let text = "provider p { header \"{\" = \"#[\" # }\n}";
        let scans = scan(text);
        assert!(scans[0].errors.is_empty(), "{:?}", scans[0].errors);
        assert_eq!(comments(text), vec![Comment { start: 31, end: 34 }]);
    }

    #[test]
    fn unterminated_strings_end_at_the_line() {
        let scans = scan("provider p {\n  base_url \"http://x\n}\n");
        assert!(matches!(scans[0].errors[..], [DelimError::UnclosedString { .. }]));
    }
}
