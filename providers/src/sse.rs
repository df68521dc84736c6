//! A server-sent-events parser (the WHATWG `text/event-stream` grammar) that
//! is fed raw body chunks as they arrive.
//!
//! Chunks split anywhere: inside a UTF-8 character, between `\r` and `\n`,
//! inside the `data:` prefix. So the parser keeps the unfinished line as bytes
//! and only decodes whole lines. It also tells whether the body ended cleanly
//! between events, because a stream cut mid-event must become an error, never
//! a silently shorter answer.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field, empty when absent (the spec's default, "message").
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Why the byte stream could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SseError {
    /// A line was not UTF-8.
    #[error("event stream line is not valid utf-8")]
    InvalidUtf8,
    /// A single line grew past the limit; protects memory from a body with no newlines.
    #[error("event stream line longer than {0} bytes")]
    LineTooLong(usize),
}

/// Incremental parser state.
#[derive(Debug)]
pub(crate) struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended in `\r`; a leading `\n` now belongs to that line end.
    after_cr: bool,
    event: String,
    data: String,
    has_data: bool,
    max_line: usize,
}

impl SseParser {
    /// A parser that rejects lines longer than `max_line` bytes.
    pub(crate) fn new(max_line: usize) -> Self {
        Self {
            line: Vec::new(),
            after_cr: false,
            event: String::new(),
            data: String::new(),
            has_data: false,
            max_line,
        }
    }

    /// Feeds one chunk, appending every event it completes to `out`.
    pub(crate) fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let mut rest = chunk;
        if self.after_cr {
            self.after_cr = false;
            if let Some(stripped) = rest.strip_prefix(b"\n") {
                rest = stripped;
            }
        }
        while let Some(pos) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            if self.line.len() + pos > self.max_line {
                return Err(SseError::LineTooLong(self.max_line));
            }
            self.line.extend_from_slice(&rest[..pos]);
            let was_cr = rest[pos] == b'\r';
            rest = &rest[pos + 1..];
            if was_cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, out)?;
            // Reuse the allocation for the next line.
            self.line = line;
            self.line.clear();
        }
        if self.line.len() + rest.len() > self.max_line {
            return Err(SseError::LineTooLong(self.max_line));
        }
        self.line.extend_from_slice(rest);
        Ok(())
    }

    /// Whether the input so far ended exactly between events.
    ///
    /// False means the body stopped inside a line or after fields that were
    /// never dispatched by a blank line: the stream was cut mid-event.
    pub(crate) fn is_between_events(&self) -> bool {
        self.line.is_empty() && !self.has_data && self.event.is_empty()
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if line.is_empty() {
            if self.has_data {
                out.push(SseEvent {
                    event: std::mem::take(&mut self.event),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(());
        }
        let line = std::str::from_utf8(line).map_err(|_| SseError::InvalidUtf8)?;
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => {
                self.event.clear();
                self.event.push_str(value);
            }
            // `id` and `retry` only matter for EventSource reconnection, which
            // an LLM call never does; unknown fields are ignored by the spec.
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> (Vec<SseEvent>, bool) {
        let mut p = SseParser::new(1 << 20);
        let mut out = Vec::new();
        for c in chunks {
            p.push(c, &mut out).unwrap();
        }
        (out, p.is_between_events())
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn basic_events_comments_and_multiline_data() {
        let (out, clean) = parse_all(&[b": ping\n\nevent: a\ndata: one\ndata:two\n\ndata: [DONE]\n\n"]);
        assert_eq!(out, vec![ev("a", "one\ntwo"), ev("", "[DONE]")]);
        assert!(clean);
    }

    #[test]
    fn crlf_and_bare_cr_line_endings() {
        let (out, clean) = parse_all(&[b"data: x\r\n\r\ndata: y\r\rdata: z\n\n"]);
        assert_eq!(out, vec![ev("", "x"), ev("", "y"), ev("", "z")]);
        assert!(clean);
    }

    #[test]
    fn crlf_split_between_chunks_is_one_line_end() {
        let (out, clean) = parse_all(&[b"data: x\r", b"\n\r", b"\n"]);
        assert_eq!(out, vec![ev("", "x")]);
        assert!(clean);
    }

    #[test]
    fn utf8_split_inside_a_character() {
        let text = "data: héllo\n\n".as_bytes();
        let (out, _) = parse_all(&[&text[..8], &text[8..]]);
        assert_eq!(out, vec![ev("", "héllo")]);
    }

    #[test]
    fn cut_mid_line_or_mid_event_is_detected() {
        assert!(!parse_all(&[b"data: {\"a\":"]).1);
        assert!(!parse_all(&[b"data: {}\n"]).1);
        assert!(!parse_all(&[b"event: message_stop\n"]).1);
        assert!(parse_all(&[b"data: {}\n\n"]).1);
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        let (out, clean) = parse_all(&[b"event: ping\n\n"]);
        assert!(out.is_empty());
        assert!(clean);
    }

    #[test]
    fn long_line_is_rejected() {
        let mut p = SseParser::new(8);
        let mut out = Vec::new();
        assert_eq!(p.push(b"data: 0123456789", &mut out), Err(SseError::LineTooLong(8)));
    }

    #[test]
    fn invalid_utf8_is_rejected() {
        let mut p = SseParser::new(64);
        let mut out = Vec::new();
        assert_eq!(p.push(b"data: \xff\n\n", &mut out), Err(SseError::InvalidUtf8));
    }
}
