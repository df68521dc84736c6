//! Reading policies from disk: the crate's only I/O.
//!
//! A path is a `.route` file (any name, in fact) or a directory, whose
//! `*.route` files (not its subdirectories) form one policy, read in name
//! order so ids and hashes do not depend on the file system's order.

use std::fs;
use std::path::{Path, PathBuf};

use crate::code::Code;
use crate::diagnostic::Diag;
use crate::errors::{FileTooLargeError, NoPolicyFilesError, NotUtf8Error, UnreadablePathError};
use crate::report::CheckReport;
use crate::source::{MAX_FILE_BYTES, SourceFile};

/// Reads the files of one policy: each path is a `.route` file or a
/// directory of them. Names resolve across everything read.
///
/// Every path is tried, so the report lists every unreadable one.
pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<SourceFile>, CheckReport> {
    let mut report = CheckReport::new();
    let mut files = Vec::new();
    for path in paths {
        let path = path.as_ref();
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => match route_files(path) {
                Ok(list) if list.is_empty() => {
                    let dir = path.display().to_string();
                    let diag = Diag::bare(Code::R0004, format!("directory `{dir}` has no `.route` files"))
                        .help("policy files end in `.route`; pass a file or a directory that holds some");
                    report.load_error(NoPolicyFilesError { dir, diag });
                }
                Ok(list) => {
                    for file in list {
                        read_file(&file, &mut files, &mut report);
                    }
                }
                Err(e) => unreadable(path, &e, &mut report),
            },
            Ok(_) => read_file(path, &mut files, &mut report),
            Err(e) => unreadable(path, &e, &mut report),
        }
    }
    if report.passed() { Ok(files) } else { Err(report) }
}

fn route_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "route") && path.is_file() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

fn unreadable(path: &Path, e: &std::io::Error, report: &mut CheckReport) {
    let shown = path.display().to_string();
    let reason = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    };
    let diag = Diag::bare(Code::R0001, format!("cannot read `{shown}`: {reason}"))
        .help("check the path, and that you may read it");
    report.load_error(UnreadablePathError {
        path: shown,
        reason,
        diag,
    });
}

fn read_file(path: &Path, files: &mut Vec<SourceFile>, report: &mut CheckReport) {
    let name = path.display().to_string();
    // Check the size before reading, so a huge file is never loaded.
    if let Ok(meta) = fs::metadata(path)
        && meta.len() > MAX_FILE_BYTES as u64
    {
        let diag = Diag::bare(
            Code::R0003,
            format!(
                "file `{name}` is {} bytes, over the {} MiB limit",
                meta.len(),
                MAX_FILE_BYTES / (1024 * 1024)
            ),
        )
        .help("a policy is a few kilobytes of text; check that this is the file you meant");
        report.load_error(FileTooLargeError {
            file: name,
            size: meta.len(),
            diag,
        });
        return;
    }
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) => return unreadable(path, &e, report),
    };
    match String::from_utf8(bytes) {
        Ok(text) => files.push(SourceFile::new(name, text)),
        Err(e) => {
            let offset = e.utf8_error().valid_up_to();
            let valid = e.as_bytes().get(..offset).unwrap_or_default();
            let before = String::from_utf8_lossy(valid);
            let line = before.matches('\n').count() + 1;
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let diag = Diag::bare(
                Code::R0002,
                format!("file `{name}` is not valid UTF-8 at byte {offset} (line {line}, column {col})"),
            )
            .help("policy files are UTF-8 text; re-save the file as UTF-8");
            report.load_error(NotUtf8Error {
                file: name,
                offset,
                diag,
            });
        }
    }
}
