//! Property tests: the parser and checker never panic, whatever the input;
//! the formatter is idempotent, keeps every comment and never changes what a
//! policy says (`parse(format(x)) == parse(x)`).
//!
//! Inputs: random text, corpus and example files with random mutations, and
//! generated policies (every construct, random layout and comments).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use policy_lang::SourceFile;
use proptest::prelude::*;

// ------------------------------------------------------------------ helpers

/// Parses, checks and formats, which must not panic; returns the formatted
/// text when the input parses.
fn exercise(text: &str) -> Option<String> {
    let file = SourceFile::new("p.route", text);
    if let Ok(ast) = policy_lang::parse(std::slice::from_ref(&file)) {
        let report = policy_lang::check(&ast);
        // Rendering walks every label through the source map.
        for d in report.diagnostics() {
            let mut out = String::new();
            let _ = miette::GraphicalReportHandler::new().render_report(&mut out, d);
        }
    }
    policy_lang::format(&file).ok()
}

/// Asserts the formatter's properties on one parseable text.
fn assert_round_trip(text: &str) {
    let file = SourceFile::new("p.route", text);
    let Ok(ast) = policy_lang::parse(std::slice::from_ref(&file)) else {
        return;
    };
    let once = policy_lang::format(&file).unwrap();
    let reparsed = policy_lang::parse(&[SourceFile::new("p.route", once.as_str())])
        .unwrap_or_else(|r| panic!("formatted text does not parse: {r}\n--- input\n{text}\n--- output\n{once}"));
    assert!(
        reparsed == ast,
        "formatting changed the tree\n--- input\n{text}\n--- output\n{once}"
    );
    let twice = policy_lang::format(&SourceFile::new("p.route", once.as_str())).unwrap();
    assert_eq!(once, twice, "format is not idempotent\n--- input\n{text}");
    for marker in comment_markers(text) {
        assert!(
            once.contains(&marker),
            "comment `{marker}` lost\n--- input\n{text}\n--- output\n{once}"
        );
    }
}

/// The generator's comments carry unique markers (`#c12`).
fn comment_markers(text: &str) -> Vec<String> {
    text.match_indices("#c")
        .map(|(i, _)| text[i..].chars().take_while(|c| !c.is_whitespace()).collect::<String>())
        .collect()
}

fn corpus_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    let mut dirs = vec![
        root.join("testdata/check/ok"),
        root.join("testdata/check/err"),
        root.join("testdata/check/warn"),
        root.join("../examples/policies"),
    ];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn corpus_texts() -> Vec<String> {
    corpus_files()
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect()
}

// ------------------------------------------------------------------ generated policies

/// A tiny deterministic generator, seeded by proptest.
struct Gen {
    state: u64,
    comments: u32,
    tokens: Vec<String>,
}

impl Gen {
    fn new(seed: u64) -> Self {
        Gen {
            state: seed | 1,
            comments: 0,
            tokens: Vec::new(),
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn t(&mut self, token: &str) {
        self.tokens.push(token.to_string());
    }

    fn ts(&mut self, tokens: &[&str]) {
        for t in tokens {
            self.t(t);
        }
    }

    fn name(&mut self) -> String {
        self.pick(&["alpha", "b2", "c_d", "ev-1", "сводка", "pool", "main", "_x"])
            .to_string()
    }

    fn sep(&mut self, sep: &str) {
        if self.chance(30) {
            self.t(sep);
        }
    }

    fn list<F: FnMut(&mut Gen)>(&mut self, min: usize, max: usize, mut item: F) {
        let n = min + self.below(max - min + 1);
        for i in 0..n {
            if i > 0 {
                self.sep(",");
            }
            item(self);
        }
    }

    fn count(&mut self) -> String {
        self.pick(&["1", "8000", "128_000", "200k", "1.5M", "2B", "64"])
            .to_string()
    }

    fn string(&mut self) -> String {
        self.pick(&[
            r#""x""#,
            r#""with \"escapes\" \\ \n""#,
            r##""# not a comment""##,
            r#""{ [ (""#,
            r#""\u{1F600}""#,
        ])
        .to_string()
    }

    fn duration(&mut self) -> String {
        self.pick(&["250ms", "1.5s", "30s", "5m", "1h"]).to_string()
    }

    fn percent(&mut self) -> String {
        self.pick(&["80%", "0.5%", "100%", "1%"]).to_string()
    }

    fn item(&mut self) {
        match self.below(4) {
            0 => self.provider(),
            1 => self.workload(),
            2 => {
                let name = self.name();
                self.ts(&["route", &name, "="]);
                self.expr(3);
            }
            _ => {
                self.ts(&["defaults", "{"]);
                if self.chance(70) {
                    self.ts(&["max_attempts", "4"]);
                }
                self.t("}");
            }
        }
    }

    fn provider(&mut self) {
        let name = self.name();
        self.ts(&["provider", &name, "{"]);
        for _ in 0..self.below(8) {
            match self.below(15) {
                0 => {
                    let a = self.pick(&["mock", "openai", "groq", "cli"]);
                    self.ts(&["adapter", a]);
                }
                1 => {
                    let s = self.string();
                    self.ts(&["base_url", &s]);
                }
                2 => {
                    self.t("command");
                    self.list(1, 3, |g| {
                        let s = g.string();
                        g.t(&s);
                    });
                }
                3 => self.ts(&["key", "env", "(", "\"KEY\"", ")"]),
                4 => {
                    let tier = self.pick(&["free", "subscription", "paid"]);
                    self.ts(&["tier", tier]);
                }
                5 => self.ts(&["jurisdiction", "us"]),
                6 => {
                    let d = self.pick(&["public", "internal", "private"]);
                    self.ts(&["data", d]);
                }
                7 => {
                    let yn = self.pick(&["yes", "no"]);
                    self.ts(&["trains_on_inputs", yn]);
                }
                8 => {
                    let yn = self.pick(&["yes", "no"]);
                    self.ts(&["stores_inputs", yn]);
                }
                9 => self.ts(&["no_store", "header", "\"X\"", "=", "\"deny\""]),
                10 => self.ts(&["header", "\"H\"", "=", "\"v\""]),
                11 => {
                    self.t("limits");
                    self.list(1, 3, |g| {
                        let k = g.pick(&["rpm", "tpm", "concurrency"]);
                        let n = g.count();
                        g.ts(&[k, &n]);
                    });
                }
                12 => {
                    let d = self.duration();
                    self.ts(&["timeout", &d]);
                }
                13 => self.simulate(),
                _ => self.model(),
            }
            self.sep(";");
        }
        self.t("}");
    }

    fn simulate(&mut self) {
        self.t("simulate");
        self.list(1, 3, |g| match g.below(3) {
            0 => {
                let d = g.duration();
                g.ts(&["latency", &d]);
                if g.chance(50) {
                    let p = g.duration();
                    g.ts(&["p95", &p]);
                }
            }
            1 => {
                let p = g.percent();
                g.ts(&["errors", &p]);
            }
            _ => {
                let p = g.percent();
                g.ts(&["rate_limits", &p]);
            }
        });
    }

    fn model(&mut self) {
        let name = self.pick(&["m1", "llama-3.3-70b", "qwen3:8b", "4o-mini"]);
        self.ts(&["model", name, "{"]);
        for _ in 0..self.below(5) {
            match self.below(7) {
                0 => {
                    let s = self.string();
                    self.ts(&["id", &s]);
                }
                1 => self.ts(&["version", "\"1\""]),
                2 => {
                    if self.chance(50) {
                        self.ts(&["price", "free"]);
                    } else {
                        self.ts(&["price", "$0.27", "/M", "in"]);
                        self.sep(",");
                        self.ts(&["$2.19", "/M", "out"]);
                    }
                }
                3 => {
                    let n = self.count();
                    self.ts(&["context", &n]);
                }
                4 => {
                    let n = self.count();
                    self.ts(&["max_output", &n]);
                }
                5 => {
                    self.t("supports");
                    self.list(1, 4, |g| {
                        let c = g.pick(&["tools", "json_schema", "vision", "stream"]);
                        g.t(c);
                    });
                }
                _ => self.simulate(),
            }
            self.sep(";");
        }
        self.t("}");
    }

    fn workload(&mut self) {
        let name = self.name();
        self.ts(&["workload", &name, "{"]);
        for _ in 0..self.below(8) {
            match self.below(12) {
                0 => {
                    let t = self.pick(&["chat", "code", "summarise"]);
                    self.ts(&["task", t]);
                }
                1 => {
                    let q = self.pick(&["low", "medium", "high"]);
                    self.ts(&["quality", q]);
                }
                2 => {
                    let d = self.pick(&["public", "internal", "private"]);
                    self.ts(&["data", d]);
                }
                3 => {
                    let n = self.count();
                    self.ts(&["max_tokens", &n]);
                }
                4 => {
                    let d = self.duration();
                    self.ts(&["latency", &d]);
                }
                5 => self.ts(&["max_cost", "$0.80", "per", "call"]),
                6 => {
                    self.t("requires");
                    self.list(1, 2, |g| {
                        let c = g.pick(&["tools", "vision"]);
                        g.t(c);
                    });
                }
                7 => {
                    self.t("budget");
                    self.list(1, 3, |g| {
                        if g.chance(50) {
                            let n = g.count();
                            g.ts(&[&n, "tokens", "/", "day"]);
                        } else {
                            g.ts(&["$200", "/", "month"]);
                        }
                    });
                    if self.chance(50) {
                        let p = self.percent();
                        self.ts(&["alert", &p]);
                    }
                }
                8 => self.ts(&["max_attempts", "4"]),
                9 => {
                    self.t("idempotent");
                    if self.chance(50) {
                        let d = self.duration();
                        self.t(&d);
                    }
                }
                10 => {
                    self.t("alias");
                    self.list(1, 2, |g| {
                        let s = g.string();
                        g.t(&s);
                    });
                }
                _ => {
                    self.t("route");
                    self.expr(3);
                }
            }
            self.sep(";");
        }
        self.t("}");
    }

    fn rules(&mut self) {
        for _ in 0..self.below(3) {
            match self.below(3) {
                0 => {
                    self.t("on");
                    // Up to six, so deep lists' rules wrap.
                    self.list(1, 6, |g| {
                        if g.chance(30) {
                            let d = g.duration();
                            g.ts(&["timeout", "(", &d, ")"]);
                        } else {
                            let t = g.pick(&[
                                "429",
                                "503",
                                "rate_limited",
                                "server_error",
                                "timeout",
                                "context_length",
                            ]);
                            g.t(t);
                        }
                    });
                }
                1 => self.ts(&["retry", "2"]),
                _ => self.t("allow_repeat"),
            }
        }
    }

    fn expr(&mut self, depth: usize) {
        let choice = if depth == 0 { self.below(2) } else { self.below(8) };
        match choice {
            0 => {
                let p = self.name();
                let m = self.pick(&["m1", "llama-3.3-70b", "qwen3:8b"]);
                self.t(&format!("{p}/{m}"));
            }
            1 => {
                let n = self.name();
                self.t(&n);
            }
            2 | 3 => {
                let kw = self.pick(&["fallback", "free_first"]);
                self.ts(&[kw, "["]);
                self.list(0, 3, |g| g.expr(depth - 1));
                self.t("]");
                self.rules();
            }
            4 => {
                self.ts(&["split", "by"]);
                let key = self.pick(&["user", "request", "metadata.team"]);
                self.ts(&[key, "{"]);
                self.list(0, 3, |g| {
                    let w = g.pick(&["50", "20", "80"]);
                    g.ts(&[w, ":"]);
                    g.expr(depth - 1);
                });
                self.t("}");
            }
            5 => {
                self.t("select");
                if self.chance(30) {
                    self.ts(&["weighted", "{"]);
                    self.list(1, 3, |g| {
                        g.ts(&["3", ":"]);
                        g.expr(depth - 1);
                    });
                    self.t("}");
                } else {
                    let s = self.pick(&["cheapest", "fastest", "first"]);
                    self.ts(&[s, "["]);
                    self.list(1, 3, |g| g.expr(depth - 1));
                    self.t("]");
                }
                self.rules();
            }
            6 => {
                self.ts(&["match", "{"]);
                for _ in 0..self.below(3) {
                    self.t("when");
                    self.cond(2);
                    self.t("=>");
                    self.expr(depth - 1);
                    self.sep(",");
                }
                if self.chance(80) {
                    self.ts(&["else", "=>"]);
                    self.expr(depth - 1);
                }
                self.t("}");
            }
            _ => {
                self.ts(&["escalate", "["]);
                self.list(1, 3, |g| g.expr(depth - 1));
                self.ts(&["]", "check"]);
                match self.below(5) {
                    0 => self.t("json_valid"),
                    1 => self.t("non_empty"),
                    2 => self.t("json_schema"),
                    3 => self.ts(&["regex", "(", r#""^a+$""#, ")"]),
                    _ => {
                        let n = self.name();
                        self.ts(&["evaluator", "(", &n, ")"]);
                    }
                }
                self.rules();
            }
        }
    }

    fn cond(&mut self, depth: usize) {
        let parts = 1 + self.below(3);
        let joiner = self.pick(&["and", "or"]);
        for i in 0..parts {
            if i > 0 {
                self.t(joiner);
            }
            for _ in 0..self.below(3) {
                if self.chance(30) {
                    self.t("not");
                }
            }
            match if depth == 0 { self.below(6) } else { self.below(7) } {
                0 => {
                    let op = self.pick(&["<", "<=", ">", ">=", "==", "!="]);
                    let n = self.count();
                    let fact = self.pick(&["input_tokens", "max_output"]);
                    self.ts(&[fact, op, &n]);
                }
                1 => {
                    let f = self.pick(&["tools", "images", "json_schema", "stream", "metadata.team"]);
                    self.ts(&["has", f]);
                }
                2 => {
                    let op = self.pick(&["==", "!="]);
                    self.ts(&["metadata.team", op, "\"growth\""]);
                }
                3 => {
                    let op = self.pick(&["==", "!="]);
                    self.ts(&["task", op, "code"]);
                }
                4 => self.t("true"),
                5 => self.t("false"),
                _ => {
                    self.t("(");
                    self.cond(depth - 1);
                    self.t(")");
                }
            }
        }
    }

    /// Joins the tokens with random layout: spaces, newlines, tabs, CRLF,
    /// blank lines and comments (each ending its line).
    fn text(mut self) -> String {
        let tokens = std::mem::take(&mut self.tokens);
        let mut out = String::new();
        if self.chance(30) {
            self.comments += 1;
            out.push_str(&format!("#c{} header\n\n", self.comments));
        }
        for (i, tok) in tokens.iter().enumerate() {
            if i > 0 {
                match self.below(20) {
                    0..=11 => out.push(' '),
                    12..=14 => out.push('\n'),
                    15 => out.push_str("\n\n"),
                    16 => out.push('\t'),
                    17 => out.push_str("\r\n"),
                    _ => {
                        // Half the trailing comments are aligned at column
                        // 40, as authors align them (when the line is short
                        // enough), to exercise alignment.
                        let column = out.len() - out.rfind('\n').map_or(0, |i| i + 1);
                        let pad = if self.chance(50) && column < 39 { 40 - column } else { 1 };
                        self.comments += 1;
                        out.push_str(&" ".repeat(pad));
                        out.push_str(&format!("#c{} note {{ [ \"\n", self.comments));
                    }
                }
            }
            out.push_str(tok);
        }
        if self.chance(50) {
            self.comments += 1;
            out.push_str(&format!("\n#c{} trailer", self.comments));
        }
        out.push('\n');
        out
    }
}

fn generated(seed: u64) -> String {
    let mut g = Gen::new(seed);
    for _ in 0..1 + g.below(4) {
        g.item();
    }
    g.text()
}

// ------------------------------------------------------------------ mutations

const VOCAB: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    "\"",
    "#",
    "=>",
    ":",
    "/",
    ",",
    ";",
    "=",
    "route",
    "provider",
    "workload",
    "match",
    "when",
    "else",
    "fallback",
    "not",
    "and",
    "$",
    "%",
    "1.5",
    "99999999999999999999",
    "\\",
    "\\u{",
    "\n",
    "\r",
    "\t",
    "é",
    "а",
    "\u{FEFF}",
    "\0",
];

fn mutate(text: &str, ops: &[(u8, u16, u16)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for &(op, a, b) in ops {
        let len = chars.len().max(1);
        let i = a as usize % len;
        let j = (i + b as usize % 40).min(chars.len());
        match op % 4 {
            0 => {
                if i < chars.len() {
                    chars.drain(i..j);
                }
            }
            1 => {
                let piece: Vec<char> = chars.get(i..j).map(<[char]>::to_vec).unwrap_or_default();
                let at = j.min(chars.len());
                chars.splice(at..at, piece);
            }
            2 => {
                let word = VOCAB[b as usize % VOCAB.len()];
                let at = i.min(chars.len());
                chars.splice(at..at, word.chars());
            }
            _ => {
                if i < chars.len() && j < chars.len() {
                    chars.swap(i, j);
                }
            }
        }
    }
    chars.into_iter().collect()
}

// ------------------------------------------------------------------ tests

#[test]
fn format_round_trips_every_corpus_and_example_file() {
    for text in corpus_texts() {
        assert_round_trip(&text);
    }
}

// 256 cases each by default; `PROPTEST_CASES=5000 cargo test` for a longer run.
proptest! {
    #[test]
    fn random_text_never_panics(text in "\\PC{0,400}") {
        exercise(&text);
    }

    #[test]
    fn token_soup_never_panics(words in proptest::collection::vec(proptest::sample::select(VOCAB), 0..120)) {
        exercise(&words.join(" "));
    }

    #[test]
    fn mutated_corpus_files_never_panic(
        file in 0usize..1000,
        ops in proptest::collection::vec((any::<u8>(), any::<u16>(), any::<u16>()), 1..6),
    ) {
        let texts = corpus_texts();
        let text = mutate(&texts[file % texts.len()], &ops);
        if exercise(&text).is_some() {
            assert_round_trip(&text);
        }
    }

    #[test]
    fn generated_policies_round_trip(seed in any::<u64>()) {
        let text = generated(seed);
        let file = SourceFile::new("p.route", text.as_str());
        prop_assert!(
            policy_lang::parse(std::slice::from_ref(&file)).is_ok(),
            "generator produced an unparseable policy:\n{}", text
        );
        exercise(&text);
        assert_round_trip(&text);
    }
}
