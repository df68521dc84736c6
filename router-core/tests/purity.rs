//! Enforces the crate's architecture invariant as far as a test can: no
//! clock, no I/O, no async and no randomness of its own. `router-state`
//! (the books and the attempt machine) runs this same file against itself.
//!
//! Dependencies are checked against an allow-list, so adding one means
//! editing this file and saying why it keeps the crate pure. Sources are
//! scanned for the std and crate paths that read the clock, touch the
//! outside world or draw random numbers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

/// Pure, synchronous crates: data structures, serialisation, hashing, errors;
/// for `router-state`, also the pure engine it reads and a histogram.
const ALLOWED_DEPENDENCIES: &[&str] = match env!("CARGO_PKG_NAME").as_bytes() {
    b"router-state" => &["router-core", "serde", "hdrhistogram"],
    _ => &["petgraph", "serde", "serde_json", "xxhash-rust", "thiserror"],
};

const CRATE: &str = env!("CARGO_PKG_NAME");

/// Text that means a clock, I/O, async or randomness in library code.
const FORBIDDEN: &[&str] = &[
    "SystemTime",
    "Instant::now",
    "std::fs",
    "std::net",
    "std::io::stdin",
    "std::env",
    "std::thread",
    "std::process",
    "tokio",
    "async fn",
    ".await",
    "rand::",
    "getrandom",
    "RandomState::new",
    "println!",
    "eprintln!",
];

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn only_pure_dependencies() {
    let manifest = std::fs::read_to_string(manifest_dir().join("Cargo.toml")).unwrap();
    let mut section = String::new();
    let mut deps = Vec::new();
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.trim_matches(['[', ']']).to_owned();
            continue;
        }
        // Normal and build dependencies ship in the library; dev ones do not.
        let ships = section == "dependencies" || section == "build-dependencies" || section.ends_with(".dependencies");
        if ships && !section.contains("dev-dependencies") && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.', ' ']).next().unwrap().trim().to_owned();
            deps.push(name);
        }
    }
    assert!(!deps.is_empty(), "parsed no dependencies: the test is broken");
    for d in &deps {
        assert!(
            ALLOWED_DEPENDENCIES.contains(&d.as_str()),
            "{CRATE} depends on `{d}`; it must stay pure (no clock, I/O, async or randomness). \
             If `{d}` is pure, add it to ALLOWED_DEPENDENCIES with a reason."
        );
    }
}

#[test]
fn no_clock_io_async_or_randomness_in_the_sources() {
    let mut checked = 0;
    let mut dirs = vec![manifest_dir().join("src")];
    let mut files = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("tests.rs") {
                files.push(path);
            }
        }
    }
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        // Unit tests may do what they like; scan the code above them.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            let line = line.trim_start();
            if line.starts_with("//") {
                continue;
            }
            for bad in FORBIDDEN {
                assert!(
                    !line.contains(bad),
                    "{}:{}: `{bad}` in {CRATE}, which has no clock, I/O, async or randomness of its own",
                    path.display(),
                    n + 1
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 10, "scanned only {checked} files");
}
