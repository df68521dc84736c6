//! Policy text and where it came from: [`SourceFile`], the [`SourceMap`] that
//! gives every file of a policy its own range of one offset space, and
//! [`Loc`], the miette `SourceCode` every diagnostic carries.
//!
//! One offset space for all files is what lets a single diagnostic label
//! spans in several files (a PII path that crosses from `workloads.route` to
//! `providers.route`): a label is just a range, and the map knows which file
//! it falls in.

use std::sync::Arc;

use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};
use router_core::Origin;

use crate::ast_to_ir::looks_like_secret;

/// The largest policy file accepted, in bytes. Real policies are a few
/// kilobytes; the limit keeps a stray log file from eating memory.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// One `.route` file: a name (its path, as shown in diagnostics) and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    name: String,
    text: Arc<str>,
}

impl SourceFile {
    /// A source file named `name` (usually its path) holding `text`.
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> Self {
        SourceFile {
            name: name.into(),
            text: text.into(),
        }
    }

    /// The file's name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file's text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// A byte range in the policy's single offset space (see [`SourceMap`]).
///
/// Spans never take part in equality: two trees that differ only in where
/// things are written compare equal, which is what lets the formatter's
/// round-trip be tested with `==`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Span {
    pub(crate) const fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub(crate) fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    pub(crate) fn len(self) -> usize {
        self.end.saturating_sub(self.start)
    }
}

impl PartialEq for Span {
    fn eq(&self, _: &Span) -> bool {
        true
    }
}

impl From<Span> for SourceSpan {
    fn from(s: Span) -> SourceSpan {
        SourceSpan::new(s.start.into(), s.len())
    }
}

#[derive(Debug)]
struct Entry {
    file: SourceFile,
    base: usize,
    /// The text diagnostics show: the file's own, with any secret written in
    /// a string literal masked. Same length, so every span still fits.
    shown: Arc<str>,
}

/// Every file of one policy, each at its own base offset.
#[derive(Debug, Default)]
pub(crate) struct SourceMap {
    entries: Vec<Entry>,
}

/// Bytes left between two files so that a span at the very end of one file
/// is never read as the start of the next.
const GAP: usize = 1;

/// Where each file starts in the one offset space that diagnostics' labels
/// use, for files given to [`parse`](crate::parse) in this order: a label at
/// offset `o` is in the last file whose start is at most `o`, at `o - start`.
pub fn file_offsets(files: &[SourceFile]) -> Vec<usize> {
    let mut base = 0;
    files
        .iter()
        .map(|f| {
            let start = base;
            base += f.text.len() + GAP;
            start
        })
        .collect()
}

impl SourceMap {
    pub(crate) fn new(files: &[SourceFile]) -> Self {
        let mut entries = Vec::with_capacity(files.len());
        let mut base = 0;
        for file in files {
            entries.push(Entry {
                file: file.clone(),
                base,
                shown: mask_secrets(&file.text),
            });
            base += file.text.len() + GAP;
        }
        SourceMap { entries }
    }

    /// Number of files.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The `i`th file's base offset, name and text.
    pub(crate) fn file(&self, i: usize) -> Option<(usize, &SourceFile)> {
        self.entries.get(i).map(|e| (e.base, &e.file))
    }

    pub(crate) fn names(&self) -> Vec<String> {
        self.entries.iter().map(|e| e.file.name.clone()).collect()
    }

    /// The index of the file holding global offset `offset`.
    pub(crate) fn file_index(&self, offset: usize) -> usize {
        self.entries.partition_point(|e| e.base <= offset).saturating_sub(1)
    }

    /// A global span as an IR origin (file index and file-local offsets).
    pub(crate) fn origin(&self, span: Span) -> Origin {
        let file = self.file_index(span.start);
        let base = self.entries.get(file).map_or(0, |e| e.base);
        let local = |o: usize| u32::try_from(o.saturating_sub(base)).unwrap_or(u32::MAX);
        Origin::new(
            u32::try_from(file).unwrap_or(u32::MAX),
            local(span.start),
            local(span.end),
        )
    }
}

impl SourceCode for SourceMap {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let i = self.file_index(span.offset());
        let e = self.entries.get(i).ok_or(MietteError::OutOfBounds)?;
        let local_start = span.offset().checked_sub(e.base).ok_or(MietteError::OutOfBounds)?;
        if local_start + span.len() > e.file.text.len() {
            // The span runs past this file: it crosses into the next one.
            return Err(MietteError::OutOfBounds);
        }
        let local = SourceSpan::new(local_start.into(), span.len());
        let text: &'a str = &e.shown;
        let contents = text.read_span(&local, context_lines_before, context_lines_after)?;
        if longest_line(contents.data()) > MAX_SHOWN_LINE {
            // Long context lines are dropped; a long line under the span is
            // cut to a window around it.
            return Ok(Box::new(window(e, text, local_start, span.len())));
        }
        let rebased = SourceSpan::new((contents.span().offset() + e.base).into(), contents.span().len());
        Ok(Box::new(MietteSpanContents::new_named(
            e.file.name.clone(),
            contents.data(),
            rebased,
            contents.line(),
            contents.column(),
            contents.line_count(),
        )))
    }
}

/// Snippet lines longer than this (in bytes) are not shown whole: a
/// diagnostic on a 130 KB line would otherwise print all of it.
const MAX_SHOWN_LINE: usize = 240;

/// Bytes of a long line shown on each side of the span.
const WINDOW_MARGIN: usize = 60;

fn longest_line(data: &[u8]) -> usize {
    data.split(|b| *b == b'\n').map(<[u8]>::len).max().unwrap_or(0)
}

/// The line(s) under the local span `start..start + len`, without context
/// lines; when longer than [`MAX_SHOWN_LINE`], only [`WINDOW_MARGIN`] bytes
/// either side of the span, on character boundaries. With the line and
/// column where what is shown starts.
fn window<'a>(e: &'a Entry, text: &'a str, start: usize, len: usize) -> MietteSpanContents<'a> {
    let end = start + len;
    let line_start = text.get(..start).and_then(|t| t.rfind('\n')).map_or(0, |i| i + 1);
    let line_end = text
        .get(end..)
        .and_then(|t| t.find('\n'))
        .map_or(text.len(), |i| end + i);
    let (mut from, mut to) = if line_end - line_start <= MAX_SHOWN_LINE {
        (line_start, line_end)
    } else {
        (
            start.saturating_sub(WINDOW_MARGIN).max(line_start),
            (end + WINDOW_MARGIN).min(line_end),
        )
    };
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    while !text.is_char_boundary(to) {
        to += 1;
    }
    let before = text.get(..from).unwrap_or_default();
    let line = before.bytes().filter(|b| *b == b'\n').count();
    let column = text.get(line_start..from).map_or(0, |t| t.chars().count());
    let data = text.get(from..to).unwrap_or_default();
    MietteSpanContents::new_named(
        e.file.name.clone(),
        data.as_bytes(),
        SourceSpan::new((from + e.base).into(), to - from),
        line,
        column,
        1,
    )
}

/// `text` with every API key replaced by `*` after its first four
/// characters: the body of a string literal that looks like one, and any
/// word outside strings (in a comment, `# was: sk-proj-…`, or written bare)
/// that does.
///
/// `R0210` tells the author a key is in the policy; rendering that key into a
/// terminal or a CI log would spread it further. Every diagnostic renders
/// through the [`SourceMap`], so masking here also covers context lines that
/// other diagnostics happen to show. Bytes are replaced one for one (with an
/// ASCII `*`), so offsets and spans are unchanged.
fn mask_secrets(text: &Arc<str>) -> Arc<str> {
    let bytes = text.as_bytes();
    let mut masked: Option<Vec<u8>> = None;
    let mut mask = |from: usize, to: usize| {
        let m = masked.get_or_insert_with(|| bytes.to_vec());
        if let Some(run) = m.get_mut(from..to) {
            run.fill(b'*');
        }
    };
    let mut in_comment = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                in_comment = false;
                i += 1;
            }
            b'#' => {
                in_comment = true;
                i += 1;
            }
            b'"' if !in_comment => {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() && bytes[end] != b'"' && bytes[end] != b'\n' {
                    end += if bytes[end] == b'\\' { 2 } else { 1 };
                }
                let end = end.min(bytes.len());
                if let Some(body) = text.get(start..end)
                    && looks_like_secret(body)
                {
                    let keep = body.char_indices().nth(4).map_or(body.len(), |(k, _)| k);
                    mask(start + keep, end);
                }
                i = end + 1;
            }
            b if is_key_byte(b) => {
                let start = i;
                while i < bytes.len() && is_key_byte(bytes[i]) {
                    i += 1;
                }
                if text.get(start..i).is_some_and(looks_like_secret) {
                    mask(start + 4, i);
                }
            }
            _ => i += 1,
        }
    }
    match masked {
        // Only ASCII replaced whole characters, so this is valid UTF-8 and the
        // lossy path never runs; it is there so no error path shows the key.
        Some(m) => Arc::from(String::from_utf8_lossy(&m).as_ref()),
        None => Arc::clone(text),
    }
}

/// A byte that can be part of an API key: keys are ASCII letters, digits,
/// `-` and `_`.
fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Where a diagnostic points: its primary span and the policy's sources, so
/// any label of the diagnostic, in any file, can be rendered.
#[derive(Clone, Debug)]
pub(crate) struct Loc {
    pub(crate) span: Span,
    pub(crate) src: Arc<SourceMap>,
}

impl SourceCode for Loc {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        self.src.read_span(span, context_lines_before, context_lines_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(map: &SourceMap, start: usize, len: usize) -> String {
        let contents = map.read_span(&SourceSpan::new(start.into(), len), 1, 1).unwrap();
        String::from_utf8(contents.data().to_vec()).unwrap()
    }

    #[test]
    fn secrets_in_string_literals_are_masked_wherever_they_are_shown() {
        let text = "provider p {\n  key \"sk-ant-REALKEY1234567890abcdef\"\n  header \"X-Name\" = \"plain\"\n}";
        let map = SourceMap::new(&[SourceFile::new("p.route", text)]);
        // A span on the line after the key still shows the key as context.
        let header = text.find("header").unwrap();
        let around = shown(&map, header, 6);
        assert!(around.contains("key \"sk-a***"), "{around}");
        assert!(!around.contains("REALKEY"), "{around}");
        // Everything else, and every offset, is untouched.
        assert!(around.contains("\"X-Name\" = \"plain\""), "{around}");
        assert_eq!(map.entries[0].shown.len(), text.len());
        // Parsing still sees the real text.
        assert_eq!(&*map.file(0).unwrap().1.text, text);
    }

    #[test]
    fn masking_leaves_escapes_unicode_and_ordinary_words_alone() {
        let text = "# see docs/limits, not-a-key_123\nx \"caf\u{e9} \\\" ok\" route_name_2";
        assert_eq!(&*mask_secrets(&Arc::from(text)), text);
    }

    #[test]
    fn keys_in_comments_and_bare_words_are_masked() {
        let text = "# was: sk-proj-REALKEY1234567890abcdef, rotated\n# \"sk-ant-QUOTEDKEY1234567890\n  key sk-ant-BAREKEY1234567890abcd\n";
        let shown = mask_secrets(&Arc::from(text));
        assert_eq!(shown.len(), text.len());
        for key in ["REALKEY", "QUOTEDKEY", "BAREKEY"] {
            assert!(!shown.contains(key), "{shown}");
        }
        assert!(shown.starts_with("# was: sk-p*"), "{shown}");
        assert!(shown.contains(", rotated\n"), "{shown}");
    }

    #[test]
    fn long_lines_are_cut_to_a_window_around_the_span() {
        let long = format!("route r = fallback [ {} ]", "p/m, ".repeat(26_000));
        let text = format!("# before\n{long}\n# after\n");
        let map = SourceMap::new(&[SourceFile::new("p.route", text.as_str())]);
        let at = text.find("fallback").unwrap() + 60_000;
        let contents = map.read_span(&SourceSpan::new(at.into(), 3), 1, 1).unwrap();
        assert!(
            contents.data().len() <= 3 + 2 * WINDOW_MARGIN,
            "{}",
            contents.data().len()
        );
        assert_eq!(contents.line(), 1);
        let start = contents.span().offset();
        assert!(start <= at && at + 3 <= start + contents.span().len());
        assert_eq!(contents.column(), start - "# before\n".len());
        // A short line next to the long one is shown whole, without it.
        let short = map.read_span(&SourceSpan::new(0.into(), 1), 1, 1).unwrap();
        assert_eq!(short.data(), b"# before");
        assert_eq!(short.line(), 0);
    }

    #[test]
    fn file_offsets_are_the_source_maps_bases() {
        let files = [
            SourceFile::new("a.route", "abc\ndef"),
            SourceFile::new("b.route", ""),
            SourceFile::new("c.route", "xyz"),
        ];
        let map = SourceMap::new(&files);
        let bases: Vec<usize> = (0..map.len()).map(|i| map.file(i).unwrap().0).collect();
        assert_eq!(file_offsets(&files), bases);
    }

    #[test]
    fn spans_map_to_the_file_they_fall_in() {
        let map = SourceMap::new(&[
            SourceFile::new("a.route", "abc\ndef"),
            SourceFile::new("b.route", "xyz"),
        ]);
        assert_eq!(map.file_index(0), 0);
        assert_eq!(map.file_index(7), 0);
        assert_eq!(map.file_index(8), 1);
        assert_eq!(map.origin(Span::new(9, 10)), Origin::new(1, 1, 2));
        let contents = map.read_span(&SourceSpan::new(9.into(), 1), 0, 0).unwrap();
        assert_eq!(contents.name(), Some("b.route"));
        assert_eq!(contents.span().offset(), 9);
    }
}
