//! Byte offsets, which the compiler speaks, to LSP positions, which count
//! UTF-16 code units within a line, and back.

use lsp_types::{Position, Range};

/// The start of every line of one text.
#[derive(Clone, Debug, Default)]
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// The position of byte `offset` (clamped to the text, and moved back to
    /// a character boundary).
    pub(crate) fn position(&self, text: &str, offset: usize) -> Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|s| *s <= offset).saturating_sub(1);
        let start = self.starts.get(line).copied().unwrap_or(0);
        let character = text.get(start..offset).map_or(0, |t| t.encode_utf16().count());
        Position::new(
            u32::try_from(line).unwrap_or(u32::MAX),
            u32::try_from(character).unwrap_or(u32::MAX),
        )
    }

    pub(crate) fn range(&self, text: &str, start: usize, end: usize) -> Range {
        Range::new(self.position(text, start), self.position(text, end))
    }

    /// The byte offset of `pos`; a position past the end of its line is the
    /// line's end, past the last line the text's end.
    pub(crate) fn offset(&self, text: &str, pos: Position) -> usize {
        let Some(&start) = self.starts.get(pos.line as usize) else {
            return text.len();
        };
        let end = self
            .starts
            .get(pos.line as usize + 1)
            .map_or(text.len(), |next| next.saturating_sub(1));
        let line = text.get(start..end).unwrap_or_default();
        let mut units = 0u32;
        for (i, c) in line.char_indices() {
            if units >= pos.character {
                return start + i;
            }
            units += u32::try_from(c.len_utf16()).unwrap_or(2);
        }
        end
    }

    /// The range from the start of the text to its end.
    pub(crate) fn whole(&self, text: &str) -> Range {
        self.range(text, 0, text.len())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn positions_count_utf16_units() {
        let text = "ab\n€x😀y\nz";
        let ix = LineIndex::new(text);
        let y = text.find('y').unwrap();
        assert_eq!(ix.position(text, y), Position::new(1, 4));
        assert_eq!(ix.offset(text, Position::new(1, 4)), y);
        assert_eq!(ix.offset(text, Position::new(1, 99)), text.find("\nz").unwrap());
        assert_eq!(ix.offset(text, Position::new(9, 0)), text.len());
        assert_eq!(ix.position(text, text.len()), Position::new(2, 1));
    }
}
