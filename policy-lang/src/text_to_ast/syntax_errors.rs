//! Parse failures in the policy's words: pest's expected rules become
//! phrases (`expected.rs`), pre-scan delimiter problems become "expected
//! `}` to close workload `x`" with where it was opened.

use super::recover::{MissingValue, ValueCutBy};
use super::*;

impl Builder<'_> {
    pub(super) fn internal_error(&mut self, e: Internal) {
        let diag = Diag::at(
            Code::R0005,
            format!("internal error: the parser built an unexpected tree ({})", e.what),
            self.src,
            e.span,
            "while reading this",
        )
        .help("this is a bug in routec, not in your policy; please report it with this file");
        self.errors.push(
            SyntaxError {
                expected: Vec::new(),
                found: String::new(),
                diag,
            }
            .into(),
        );
    }

    /// The token at file-local `at`, as shown after "found".
    pub(super) fn found(text: &str, at: usize) -> (String, usize) {
        let rest = text.get(at..).unwrap_or("");
        let Some(c) = rest.chars().next() else {
            return ("end of file".to_string(), 0);
        };
        let is_word = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '$' | '%');
        let len = if c == '"' {
            rest[1..].find(['"', '\n']).map_or(rest.len(), |e| e + 2)
        } else if is_word(c) {
            rest.find(|c: char| !is_word(c)).unwrap_or(rest.len())
        } else {
            c.len_utf8()
        };
        let token = &rest[..len.min(rest.len())];
        let shown: String = token.chars().take(24).collect();
        let ellipsis = if shown.len() < token.len() { "…" } else { "" };
        (format!("`{shown}{ellipsis}`"), len)
    }

    /// Reports a parse failure at `pos` (an offset in the item starting at
    /// `chunk_start` of `text`); `missing`, when the failure is a property
    /// left without its value.
    pub(super) fn syntax_error(
        &mut self,
        text: &str,
        chunk_start: usize,
        pos: usize,
        variant: &pest::error::ErrorVariant<Rule>,
        scan: &ItemScan,
        missing: Option<&MissingValue>,
    ) {
        let mut at = chunk_start + pos;
        // Point at the next token, not at the whitespace before it.
        let bytes = text.as_bytes();
        loop {
            while at < bytes.len() && bytes[at].is_ascii_whitespace() {
                at += 1;
            }
            if bytes.get(at) == Some(&b'#') {
                while at < bytes.len() && bytes[at] != b'\n' {
                    at += 1;
                }
                continue;
            }
            break;
        }
        let at_eof = at >= bytes.len();
        if at_eof {
            // At the end of the file: point just after the last token.
            at = text.trim_end().len();
            while let Some(start) = text[..at].rfind('\n') {
                let line = text[start + 1..at].trim_start();
                if line.starts_with('#') {
                    at = text[..start].trim_end().len();
                } else {
                    break;
                }
            }
        }
        let (found, len) = if at_eof {
            ("end of file".to_string(), 0)
        } else {
            Self::found(text, at)
        };
        let span = Span::new(self.base + at, self.base + at + len);
        let context = scan.enclosing(at).map(str::to_string);
        let (message, expected, help) = match variant {
            pest::error::ErrorVariant::ParsingError { positives, negatives } => {
                // A bare-name value (`task`, `adapter`) refuses a property
                // keyword: pest then reports only that refusal.
                let refused = positives.is_empty() && !negatives.is_empty() && !negatives.contains(&Rule::keyword);
                let groups = match missing.and_then(|m| m.value) {
                    Some(value) => std::collections::BTreeSet::from([value]),
                    None if refused => std::collections::BTreeSet::from([expected::Expect::Name]),
                    None => expected::groups(positives),
                };
                let phrases = expected::phrase_all(&groups);
                if let Some(m) = missing {
                    self.value_missing(text, chunk_start, m, phrases, context.as_deref());
                    return;
                }
                let word = found.trim_matches('`');
                let keywords = expected::keywords_of(&groups);
                let suggestion = crate::names::did_you_mean(word, keywords.iter().copied());
                let help = if refused {
                    Some(format!(
                        "a value is missing before `{word}`, which starts the next property"
                    ))
                } else if negatives.contains(&Rule::keyword) || (positives.contains(&Rule::name) && is_keyword(word)) {
                    Some(format!("`{word}` is a keyword and cannot be used as a name"))
                } else {
                    suggestion.map(|s| format!("did you mean `{s}`?"))
                };
                let message = format!("expected {}, found {found}", expected::join_or(&phrases));
                (message, phrases, help)
            }
            pest::error::ErrorVariant::CustomError { message } => {
                // Pest's own stack and call limits; the pre-scan should make
                // them unreachable.
                let diag = Diag::at(
                    Code::R0008,
                    format!("this item is too deeply nested to parse ({message})"),
                    self.src,
                    span,
                    "",
                )
                .help(format!(
                    "nest at most {MAX_DEPTH} levels deep; name inner routes with `route NAME = …`"
                ));
                self.errors.push(NestingTooDeepError { limit: MAX_DEPTH, diag }.into());
                return;
            }
        };
        let label = match (&context, found.as_str()) {
            (_, "end of file") => "the file ends here".to_string(),
            (Some(c), _) => format!("not valid here, in {c}"),
            (None, _) => "not valid here".to_string(),
        };
        let help = help.or_else(|| {
            let word = found.trim_matches('`');
            matches!(word, "on" | "retry" | "allow_repeat").then(|| {
                format!("`{word}` is a rule of a list: write it after the `]` of a `fallback`, `free_first`, `select` or `escalate`")
            })
        });
        let diag = Diag::at(Code::R0005, message, self.src, span, label).maybe_help(help);
        self.errors.push(SyntaxError { expected, found, diag }.into());
    }

    /// Reports `m.keyword` left without its value, on that keyword: pest
    /// failed at what follows it, which is fine where it is. `expected`
    /// phrases the value.
    fn value_missing(
        &mut self,
        text: &str,
        chunk_start: usize,
        m: &MissingValue,
        expected: Vec<String>,
        context: Option<&str>,
    ) {
        let kw = m.keyword;
        let at = chunk_start + m.at;
        let next = chunk_start + m.next;
        let (found, len) = Self::found(text, next);
        let message = format!(
            "`{kw}` needs a value: expected {}, found {found}",
            expected::join_or(&expected)
        );
        let label = match context {
            Some(c) => format!("no value after this, in {c}"),
            None => "no value after this".to_string(),
        };
        let (next_label, help) = match m.cut_by {
            ValueCutBy::Property => (
                format!("{found} starts the next property"),
                format!("{found} is a property keyword, not a value: write the value of `{kw}` before it"),
            ),
            ValueCutBy::Close => (
                "the block ends here".to_string(),
                format!("write the value of `{kw}` before the `}}` that ends the block"),
            ),
            ValueCutBy::Semicolon => (
                "the property ends here".to_string(),
                format!("write the value of `{kw}` before the `;`"),
            ),
        };
        let diag = Diag::at(
            Code::R0005,
            message,
            self.src,
            Span::new(self.base + at, self.base + at + kw.len()),
            label,
        )
        .label(Span::new(self.base + next, self.base + next + len), next_label)
        .help(help);
        self.errors.push(SyntaxError { expected, found, diag }.into());
    }

    pub(super) fn delimiter_errors(&mut self, text: &str, scan: &ItemScan) {
        let b = self.base;
        for e in &scan.errors {
            let err: ParseError = match e {
                DelimError::Unclosed {
                    open,
                    open_at,
                    what,
                    end_at,
                    cut_by,
                } => {
                    let close = prescan::closer(*open) as char;
                    let (span, label) = match cut_by {
                        Some(kw) => (
                            Span::new(b + end_at, b + end_at + kw.len()),
                            format!("`{kw}` starts a new item here"),
                        ),
                        None => (Span::new(b + end_at, b + end_at), format!("expected `{close}` here")),
                    };
                    let diag = Diag::at(
                        Code::R0006,
                        format!("expected `{close}` to close {what}"),
                        self.src,
                        span,
                        label,
                    )
                    .label(Span::new(b + open_at, b + open_at + 1), "opened here")
                    .help(format!("add `{close}` where {what} should end"));
                    UnclosedError {
                        delimiter: close,
                        what: what.clone(),
                        diag,
                    }
                    .into()
                }
                DelimError::UnclosedString { open_at, end_at } => {
                    let diag = Diag::at(
                        Code::R0006,
                        "expected `\"` to close the string",
                        self.src,
                        Span::new(b + end_at, b + end_at),
                        "the line ends here",
                    )
                    .label(Span::new(b + open_at, b + open_at + 1), "opened here")
                    .help("strings end on the line they start; write a newline inside one as `\\n`");
                    UnclosedError {
                        delimiter: '"',
                        what: "the string".to_string(),
                        diag,
                    }
                    .into()
                }
                DelimError::UnexpectedCloser { close, at, expected } => {
                    let close = *close as char;
                    let span = Span::new(b + at, b + at + 1);
                    let diag = match expected {
                        Some((want, open_at, what)) => Diag::at(
                            Code::R0010,
                            format!(
                                "unexpected `{close}`: expected `{}` to close {what} first",
                                *want as char
                            ),
                            self.src,
                            span,
                            "this does not match",
                        )
                        .label(Span::new(b + open_at, b + open_at + 1), "opened here")
                        .help(format!("close {what} with `{}` before this `{close}`", *want as char)),
                        None => Diag::at(
                            Code::R0010,
                            format!("unexpected `{close}`: nothing is open here"),
                            self.src,
                            span,
                            "nothing to close",
                        )
                        .help(format!(
                            "remove this `{close}`, or add the opening bracket it belongs to"
                        )),
                    };
                    UnexpectedCloserError { delimiter: close, diag }.into()
                }
                DelimError::TooDeep { at } => {
                    let diag = Diag::at(
                        Code::R0008,
                        format!("brackets nest more than {MAX_DEPTH} levels deep"),
                        self.src,
                        Span::new(b + at, b + at + 1),
                        format!("level {} starts here", MAX_DEPTH + 1),
                    )
                    .help("name inner routes with `route NAME = …` and refer to them by name");
                    NestingTooDeepError { limit: MAX_DEPTH, diag }.into()
                }
            };
            self.errors.push(err);
        }
        let _ = text;
    }
}

const KEYWORDS: &[&str] = &[
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

fn is_keyword(word: &str) -> bool {
    KEYWORDS.contains(&word)
}
