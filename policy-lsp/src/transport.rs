//! LSP's framing (`Content-Length` headers, then a JSON body) read so that
//! a bad message costs that message only: a malformed header, a body that
//! is not UTF-8 or not JSON-RPC is logged and skipped, and the next message
//! is read. `lsp-server`'s own reader ends the connection on the first bad
//! message instead.

use std::io::{self, BufRead, Read};

use lsp_server::Message;

/// The largest message body read; a larger one is skipped unread. A 10 MiB
/// buffer sent whole fits, and one bad header cannot make the server
/// allocate gigabytes.
pub(crate) const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// What one read gave.
pub(crate) enum Frame {
    /// A well-formed message.
    Message(Message),
    /// A message that could not be used, and why (for the log).
    Malformed(String),
    /// The client closed its end.
    Eof,
}

/// Reads the next frame. `Err` only for I/O errors of the stream itself.
pub(crate) fn read(input: &mut impl BufRead) -> io::Result<Frame> {
    let mut length: Option<usize> = None;
    let mut problem: Option<String> = None;
    let mut line = Vec::new();
    let mut seen_header = false;
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            return Ok(if seen_header {
                Frame::Malformed("the stream ended inside a message's headers".to_string())
            } else {
                Frame::Eof
            });
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            if seen_header {
                break;
            }
            // Blank lines between messages are tolerated.
            continue;
        }
        seen_header = true;
        match text.split_once(':') {
            Some((name, value)) if name.trim().eq_ignore_ascii_case("content-length") => {
                match value.trim().parse::<usize>() {
                    Ok(n) => length = Some(n),
                    Err(_) => problem = Some(format!("bad `Content-Length` value `{}`", shorten(value.trim()))),
                }
            }
            Some(_) => {}
            None => problem = Some(format!("malformed header line `{}`", shorten(text))),
        }
    }
    let Some(length) = length else {
        return Ok(Frame::Malformed(
            problem.unwrap_or_else(|| "a message without `Content-Length`".to_string()),
        ));
    };
    if length > MAX_MESSAGE_BYTES {
        io::copy(&mut input.take(length as u64), &mut io::sink())?;
        return Ok(Frame::Malformed(format!(
            "a message of {length} bytes, over the {} MiB limit; skipped",
            MAX_MESSAGE_BYTES / (1024 * 1024)
        )));
    }
    let mut body = vec![0; length];
    input.read_exact(&mut body)?;
    if let Some(problem) = problem {
        return Ok(Frame::Malformed(problem));
    }
    let Ok(body) = String::from_utf8(body) else {
        return Ok(Frame::Malformed("a message body that is not UTF-8".to_string()));
    };
    match serde_json::from_str::<Message>(&body) {
        Ok(message) => Ok(Frame::Message(message)),
        Err(e) => Ok(Frame::Malformed(format!("a body that is not a JSON-RPC message: {e}"))),
    }
}

fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn frames(input: &[u8]) -> Vec<String> {
        let mut r = io::BufReader::new(input);
        let mut out = Vec::new();
        loop {
            match read(&mut r).unwrap() {
                Frame::Eof => return out,
                Frame::Message(m) => out.push(format!("ok {}", serde_json::to_string(&m).unwrap())),
                Frame::Malformed(why) => out.push(format!("bad {why}")),
            }
        }
    }

    fn framed(body: &[u8]) -> Vec<u8> {
        let mut v = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn a_bad_message_is_skipped_and_the_next_one_read() {
        let good = br#"{"jsonrpc":"2.0","method":"exit"}"#;
        let mut input = framed(b"{not json");
        input.extend(framed(&[0xff, 0xfe, b'{']));
        input.extend(b"garbage line\r\n\r\n");
        input.extend(framed(good));
        let got = frames(&input);
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(
            got[0].starts_with("bad a body that is not a JSON-RPC message"),
            "{got:?}"
        );
        assert!(got[1].starts_with("bad a message body that is not UTF-8"), "{got:?}");
        assert!(
            got[2].starts_with("bad malformed header line `garbage line`"),
            "{got:?}"
        );
        assert!(got[3].starts_with("ok ") && got[3].contains("exit"), "{got:?}");
    }
}
