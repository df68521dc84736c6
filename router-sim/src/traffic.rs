//! The traffic file: one JSON object per line, one line per request.
//!
//! ```json
//! {"ts":"2026-11-01T09:30:00.250Z","workload":"simple_qa","input_tokens":420,"output_tokens":180,"user":"u0042"}
//! ```
//!
//! Required: `ts` (RFC 3339, or integer milliseconds since the epoch),
//! `workload` (a name or alias of the policy), `input_tokens` and
//! `output_tokens` (what the answer will be; the simulator caps it at the
//! call's max output). Optional, as in `routec explain`'s facts: `user`,
//! `task`, `max_output`, `tools`, `images`, `json_schema`, `stream`, `data`
//! (a declared data class: raises the workload's, never lowers it) and
//! `metadata`. Unknown fields are errors, so a typo is not silently ignored.
//!
//! [`TrafficReader`] streams: a million lines never become a million structs.

use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;

use router_core::{DataClass, Features, Task};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

use crate::time::{format_rfc3339, parse_rfc3339};

/// One request of a traffic file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficRequest {
    /// When the request arrives, in milliseconds since the Unix epoch (UTC).
    #[serde(rename = "ts", serialize_with = "ser_ts", deserialize_with = "de_ts")]
    pub ts_ms: u64,
    /// The workload the call is tagged with (name or alias).
    pub workload: String,
    /// Input (prompt) tokens.
    pub input_tokens: u64,
    /// Output tokens the answer has when it is not cut short by a max.
    pub output_tokens: u64,
    /// The caller's user id (the usual split key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// A task overriding the workload's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
    /// The max output tokens the request asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output: Option<u64>,
    /// The request offers tools.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tools: bool,
    /// The request contains images.
    #[serde(default, skip_serializing_if = "is_false")]
    pub images: bool,
    /// The request asks for JSON-schema output.
    #[serde(default, skip_serializing_if = "is_false")]
    pub json_schema: bool,
    /// The request asks for a stream.
    #[serde(default, skip_serializing_if = "is_false")]
    pub stream: bool,
    /// A declared data class; raises the workload's, never lowers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataClass>,
    /// Request metadata (`metadata.team` in `when` conditions and split keys).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl TrafficRequest {
    /// The request's features as the engine's bit set.
    pub fn features(&self) -> Features {
        use router_core::Feature;
        let mut f = Features::NONE;
        f.set(Feature::Tools, self.tools);
        f.set(Feature::Images, self.images);
        f.set(Feature::JsonSchema, self.json_schema);
        f.set(Feature::Stream, self.stream);
        f
    }

    /// The line as written in a traffic file (no newline).
    pub fn to_line(&self) -> String {
        // Plain data with string keys: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn ser_ts<S: Serializer>(ms: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339(*ms))
}

fn de_ts<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    struct Ts;
    impl Visitor<'_> for Ts {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an RFC 3339 UTC time or milliseconds since the epoch")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            parse_rfc3339(v).ok_or_else(|| E::custom(format_args!("`{v}` is not an RFC 3339 time")))
        }
    }
    d.deserialize_any(Ts)
}

/// A traffic line that could not be read.
#[derive(Debug, Error)]
#[error("traffic line {line}: {kind}")]
pub struct TrafficError {
    line: u64,
    kind: TrafficErrorKind,
}

impl TrafficError {
    /// The 1-based line number.
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Whether the file could not be read at all (rather than a bad line).
    pub fn is_io(&self) -> bool {
        matches!(self.kind, TrafficErrorKind::Io(_))
    }
}

#[derive(Debug, Error)]
enum TrafficErrorKind {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

/// Reads traffic lines one at a time from any buffered reader; blank lines
/// are skipped.
#[derive(Debug)]
pub struct TrafficReader<R> {
    input: R,
    buf: String,
    line: u64,
    bytes: u64,
}

impl<R: BufRead> TrafficReader<R> {
    /// A reader over `input`.
    pub fn new(input: R) -> Self {
        TrafficReader {
            input,
            buf: String::with_capacity(512),
            line: 0,
            bytes: 0,
        }
    }

    /// Bytes consumed so far (for a progress bar over the file size).
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// The next request, `None` at the end of the input.
    pub fn next_request(&mut self) -> Option<Result<TrafficRequest, TrafficError>> {
        loop {
            self.buf.clear();
            self.line += 1;
            let n = match self.input.read_line(&mut self.buf) {
                Ok(n) => n,
                Err(e) => return Some(Err(self.error(e.into()))),
            };
            if n == 0 {
                return None;
            }
            self.bytes += n as u64;
            let text = self.buf.trim();
            if text.is_empty() {
                continue;
            }
            return Some(serde_json::from_str(text).map_err(|e| self.error(e.into())));
        }
    }

    fn error(&self, kind: TrafficErrorKind) -> TrafficError {
        TrafficError { line: self.line, kind }
    }
}

impl<R: BufRead> Iterator for TrafficReader<R> {
    type Item = Result<TrafficRequest, TrafficError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_request()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_with_either_timestamp_form_and_round_trip() {
        let text = "{\"ts\":\"2026-11-01T00:00:01.500Z\",\"workload\":\"qa\",\"input_tokens\":10,\"output_tokens\":5}\n\
                    \n\
                    {\"ts\":1793491201500,\"workload\":\"qa\",\"input_tokens\":10,\"output_tokens\":5,\"user\":\"u1\",\
                    \"data\":\"private\",\"tools\":true,\"metadata\":{\"team\":\"a\"}}\n";
        let reqs: Vec<TrafficRequest> = TrafficReader::new(text.as_bytes()).map(Result::unwrap).collect();
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].ts_ms, reqs[1].ts_ms);
        assert_eq!(reqs[1].data, Some(DataClass::Private));
        assert!(reqs[1].features().has(router_core::Feature::Tools));
        let line = reqs[1].to_line();
        assert!(line.starts_with("{\"ts\":\"2026-11-01T00:00:01.500Z\""), "{line}");
        let back: TrafficRequest = serde_json::from_str(&line).unwrap();
        assert_eq!(back, reqs[1]);
    }

    #[test]
    fn bad_lines_name_their_line_number() {
        let text = "{\"ts\":0,\"workload\":\"qa\",\"input_tokens\":1,\"output_tokens\":1}\n{\"ts\":0,\"workload\":\"qa\",\"input_tokens\":1,\"output_tokens\":1,\"colour\":1}\n";
        let mut r = TrafficReader::new(text.as_bytes());
        assert!(r.next_request().unwrap().is_ok());
        let err = r.next_request().unwrap().unwrap_err();
        assert_eq!(err.line(), 2);
        assert!(err.to_string().contains("unknown field `colour`"), "{err}");
        assert!(r.next_request().is_none());
    }
}
