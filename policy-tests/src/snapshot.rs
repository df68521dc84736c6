//! Stored explanations: one snapshot file beside each test file
//! (`seed.route` → `seed.snap`), one section per `expect snapshot` test.
//!
//! The format is text, so a reviewer reads a changed snapshot in the pull
//! request's diff:
//!
//! ```text
//! # routec test snapshots; `routec test --update` rewrites this file
//! === test "private audits stay with cleared providers"
//! facts: {"input_tokens":9000,"tools":true}
//! workload `audit_report`
//! …
//! ```
//!
//! A section runs from its `=== test "NAME"` line (the name as a JSON
//! string) to the next one. Anything else before the first section but
//! `#` comments and blank lines makes the file unreadable, with its line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use thiserror::Error;

const HEADER: &str = "=== test ";
const BANNER: &str = "# routec test snapshots; `routec test --update` rewrites this file, `--review` shows changes";

/// Why a snapshot file cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The file exists but cannot be read or written.
    #[error("cannot {action} snapshot file `{path}`: {source}")]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not in the snapshot format.
    #[error("snapshot file `{path}` line {line}: {problem}; fix it or delete it and run `routec test --update`")]
    Malformed {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong there.
        problem: String,
    },
}

/// The snapshots of one test file, by test name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotFile {
    path: PathBuf,
    entries: BTreeMap<String, String>,
}

impl SnapshotFile {
    /// Where the snapshots of `test_file` are kept: beside it, `.snap`
    /// instead of `.route`.
    pub fn path_for(test_file: &Path) -> PathBuf {
        test_file.with_extension("snap")
    }

    /// Reads the file at `path`; an absent file is an empty set.
    pub fn read(path: &Path) -> Result<SnapshotFile, SnapshotError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SnapshotFile {
                path: path.to_path_buf(),
                entries: BTreeMap::new(),
            }),
            Err(source) => Err(SnapshotError::Io {
                action: "read",
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Parses snapshot text; `path` names the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<SnapshotFile, SnapshotError> {
        let malformed = |line: usize, problem: String| SnapshotError::Malformed {
            path: path.display().to_string(),
            line,
            problem,
        };
        let mut entries = BTreeMap::new();
        let mut current: Option<(String, String)> = None;
        for (i, line) in text.lines().enumerate() {
            if let Some(rest) = line.strip_prefix(HEADER) {
                let name: String = serde_json::from_str(rest)
                    .map_err(|_| malformed(i + 1, format!("`{rest}` is not a test name in double quotes")))?;
                if let Some((n, body)) = current.take() {
                    entries.insert(n, body);
                }
                if entries.contains_key(&name) {
                    return Err(malformed(i + 1, format!("test `{name}` has two snapshots")));
                }
                current = Some((name, String::new()));
            } else if let Some((_, body)) = current.as_mut() {
                body.push_str(line);
                body.push('\n');
            } else if !(line.trim().is_empty() || line.starts_with('#')) {
                return Err(malformed(i + 1, format!("expected `{HEADER}\"NAME\"`, found `{line}`")));
            }
        }
        if let Some((n, body)) = current {
            entries.insert(n, body);
        }
        // The writer ends every section with one blank line.
        for body in entries.values_mut() {
            if body.ends_with("\n\n") {
                body.pop();
            }
        }
        Ok(SnapshotFile {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The stored snapshot of `test`.
    pub fn get(&self, test: &str) -> Option<&str> {
        self.entries.get(test).map(String::as_str)
    }

    /// Stores `text` as the snapshot of `test`.
    pub fn set(&mut self, test: &str, text: &str) {
        self.entries.insert(test.to_string(), text.to_string());
    }

    /// Keeps only the snapshots of these tests (the others' tests are gone).
    pub fn retain(&mut self, tests: &[&str]) {
        self.entries.retain(|k, _| tests.contains(&k.as_str()));
    }

    /// Whether it holds no snapshot.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut out = format!("{BANNER}\n");
        for (name, body) in &self.entries {
            let quoted = serde_json::to_string(name).unwrap_or_default();
            out.push_str(&format!("\n{HEADER}{quoted}\n{body}"));
            if !body.ends_with('\n') {
                out.push('\n');
            }
        }
        out
    }

    /// Writes the file.
    pub fn write(&self) -> Result<(), SnapshotError> {
        std::fs::write(&self.path, self.render()).map_err(|source| SnapshotError::Io {
            action: "write",
            path: self.path.display().to_string(),
            source,
        })
    }
}

/// A line diff of `old` and `new`: each line prefixed `-`, `+` or ` `.
pub fn line_diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Longest common subsequence, table from the end; snapshots are short.
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            // Removals before additions, as unified diffs show them.
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn files_round_trip() {
        let mut f = SnapshotFile::parse(Path::new("x.snap"), "").unwrap();
        f.set("a \"quoted\" name", "line one\nline two\n");
        f.set("b", "only\n");
        let text = f.render();
        let back = SnapshotFile::parse(Path::new("x.snap"), &text).unwrap();
        assert_eq!(back.get("a \"quoted\" name"), Some("line one\nline two\n"));
        assert_eq!(back.get("b"), Some("only\n"));
        assert_eq!(back.render(), text);
    }

    #[test]
    fn nonsense_names_the_file_and_line() {
        let err = SnapshotFile::parse(Path::new("tests/seed.snap"), "# ok\nhello\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "snapshot file `tests/seed.snap` line 2: expected `=== test \"NAME\"`, found `hello`; fix it or \
             delete it and run `routec test --update`"
        );
        let err = SnapshotFile::parse(Path::new("s.snap"), "=== test oops\n").unwrap_err();
        assert!(err.to_string().contains("line 1: `oops` is not a test name"), "{err}");
    }

    #[test]
    fn diffs_mark_changed_lines() {
        let d = line_diff("a\nb\nc\n", "a\nx\nc\n");
        assert_eq!(d, "  a\n- b\n+ x\n  c\n");
    }
}
