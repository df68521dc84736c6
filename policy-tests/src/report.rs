//! The four ways `routec test` reports: readable text, JSON, GitHub
//! Actions annotations and JUnit XML. Each is a pure function of the runs.

use serde::Serialize;

use crate::coverage::Coverage;
use crate::run::{Failure, SnapshotStatus, TestResult};
use crate::snapshot::line_diff;

/// The tests of one file, run against its policy.
#[derive(Clone, Debug)]
pub struct FileRun {
    /// The test file.
    pub test_file: String,
    /// The policy it ran against (a file or directory), as given.
    pub policy: String,
    /// One result per test, in file order.
    pub results: Vec<TestResult>,
    /// Coverage of the policy by these tests, when asked for.
    pub coverage: Option<Coverage>,
}

fn counts(runs: &[FileRun]) -> (usize, usize) {
    let all = runs.iter().flat_map(|r| &r.results);
    let failed = all.clone().filter(|t| !t.passed()).count();
    (all.count() - failed, failed)
}

/// Expected and actual plans side by side, then each candidate's verdict.
fn side_by_side(t: &TestResult) -> String {
    // The whole expected plan when the test gives one, else its first.
    let plan = t.failures.iter().find_map(|f| match f {
        Failure::Plan { expected, .. } => Some(expected.clone()),
        _ => None,
    });
    let first = t.failures.iter().find_map(|f| match f {
        Failure::First { expected, .. } => Some(vec![expected.clone()]),
        _ => None,
    });
    let expected = plan.or(first).unwrap_or_default();
    let mut actual = t.plan.clone();
    if let Some(r) = &t.refusal {
        actual = vec![format!("(refused: {r})")];
    }
    let width = expected.iter().map(|s| s.chars().count()).chain([8]).max().unwrap_or(8);
    let mut out = format!("      #  {:<width$}  actual\n", "expected");
    for i in 0..expected.len().max(actual.len()) {
        let e = expected.get(i).map_or("", String::as_str);
        let a = actual.get(i).map_or("", String::as_str);
        let mark = if e == a || e.is_empty() { ' ' } else { '≠' };
        out.push_str(&format!("    {mark} {:<2} {e:<width$}  {a}\n", i + 1));
    }
    if !t.candidates.is_empty() {
        out.push_str("    candidates, in the order considered:\n");
        let w = t.candidates.iter().map(|(l, _)| l.chars().count()).max().unwrap_or(0);
        for (label, verdict) in &t.candidates {
            out.push_str(&format!("      {label:<w$}  {verdict}\n"));
        }
    }
    out
}

fn plan_failure(t: &TestResult) -> bool {
    t.failures
        .iter()
        .any(|f| !matches!(f, Failure::SnapshotChanged | Failure::SnapshotMissing))
}

/// Readable text: one line per test, and for each failure what was expected
/// and what the engine did. `review` adds each changed snapshot's diff.
pub fn render_human(runs: &[FileRun], review: bool) -> String {
    let mut out = String::new();
    for run in runs {
        out.push_str(&format!("{} (policy {})\n", run.test_file, run.policy));
        for t in &run.results {
            let status = if t.passed() { "ok  " } else { "FAIL" };
            let note = match t.snapshot {
                SnapshotStatus::New => "  (snapshot written)",
                SnapshotStatus::Updated { .. } => "  (snapshot updated)",
                _ => "",
            };
            out.push_str(&format!("  {status} {}  [line {}]{note}\n", t.name, t.line));
            for f in &t.failures {
                out.push_str(&format!("       {f}\n"));
            }
            if plan_failure(t) {
                out.push_str(&side_by_side(t));
            }
            match &t.snapshot {
                SnapshotStatus::Changed { old } | SnapshotStatus::Updated { old } if review => {
                    out.push_str("    snapshot (- stored, + now):\n");
                    for line in line_diff(old, &t.explanation).lines() {
                        out.push_str(&format!("      {line}\n"));
                    }
                }
                _ => {}
            }
        }
        if let Some(c) = &run.coverage {
            out.push_str(&format!(
                "  coverage: {:.1}% ({} of {} route nodes, split and select arms, match branches and targets)\n",
                c.percent(),
                c.reached,
                c.total
            ));
            for m in &c.missed {
                out.push_str(&format!("    not reached: {m}\n"));
            }
        }
    }
    let (passed, failed) = counts(runs);
    out.push_str(&format!("\n{passed} passed, {failed} failed\n"));
    out
}

#[derive(Serialize)]
struct JsonTest<'a> {
    name: &'a str,
    file: &'a str,
    line: usize,
    workload: &'a str,
    passed: bool,
    failures: Vec<String>,
    plan: &'a [String],
    refusal: Option<&'a str>,
    snapshot: &'static str,
}

#[derive(Serialize)]
struct JsonCoverage<'a> {
    percent: f64,
    reached: usize,
    total: usize,
    missed: &'a [String],
}

#[derive(Serialize)]
struct JsonFile<'a> {
    file: &'a str,
    policy: &'a str,
    tests: Vec<JsonTest<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    coverage: Option<JsonCoverage<'a>>,
}

#[derive(Serialize)]
struct JsonOut<'a> {
    passed: usize,
    failed: usize,
    files: Vec<JsonFile<'a>>,
}

fn snapshot_word(s: &SnapshotStatus) -> &'static str {
    match s {
        SnapshotStatus::NotAsked => "none",
        SnapshotStatus::Matched => "matched",
        SnapshotStatus::New => "written",
        SnapshotStatus::Updated { .. } => "updated",
        SnapshotStatus::Missing => "missing",
        SnapshotStatus::Changed { .. } => "changed",
    }
}

/// Every result as one JSON document.
pub fn render_json(runs: &[FileRun]) -> String {
    let (passed, failed) = counts(runs);
    let files = runs
        .iter()
        .map(|r| JsonFile {
            file: &r.test_file,
            policy: &r.policy,
            tests: r
                .results
                .iter()
                .map(|t| JsonTest {
                    name: &t.name,
                    file: &t.file,
                    line: t.line,
                    workload: &t.workload,
                    passed: t.passed(),
                    failures: t.failures.iter().map(ToString::to_string).collect(),
                    plan: &t.plan,
                    refusal: t.refusal.as_deref(),
                    snapshot: snapshot_word(&t.snapshot),
                })
                .collect(),
            coverage: r.coverage.as_ref().map(|c| JsonCoverage {
                percent: (c.percent() * 10.0).round() / 10.0,
                reached: c.reached,
                total: c.total,
                missed: &c.missed,
            }),
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&JsonOut { passed, failed, files }).unwrap_or_default();
    s.push('\n');
    s
}

/// GitHub Actions workflow commands: an `::error` annotation on the test's
/// line for each failure, then the summary line.
pub fn render_github(runs: &[FileRun]) -> String {
    let esc = |s: &str| s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    let prop = |s: &str| esc(s).replace(':', "%3A").replace(',', "%2C");
    let mut out = String::new();
    for t in runs.iter().flat_map(|r| &r.results) {
        for f in &t.failures {
            out.push_str(&format!(
                "::error file={},line={},title={}::{}\n",
                prop(&t.file),
                t.line,
                prop(&format!("routec test: {}", t.name)),
                esc(&f.to_string())
            ));
        }
    }
    let (passed, failed) = counts(runs);
    out.push_str(&format!("{passed} passed, {failed} failed\n"));
    out
}

fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot hold at all.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one `<testsuite>` per test file, one `<testcase>` per test.
pub fn render_junit(runs: &[FileRun]) -> String {
    let (passed, failed) = counts(runs);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"routec test\" tests=\"{}\" failures=\"{failed}\">\n",
        passed + failed
    );
    for r in runs {
        let f = r.results.iter().filter(|t| !t.passed()).count();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\">\n",
            xml(&r.test_file),
            r.results.len()
        ));
        for t in &r.results {
            out.push_str(&format!(
                "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{}\"",
                xml(&t.name),
                xml(&t.workload),
                xml(&t.file),
                t.line
            ));
            if t.passed() {
                out.push_str("/>\n");
                continue;
            }
            let message = t.failures.first().map(ToString::to_string).unwrap_or_default();
            let mut body: String = t.failures.iter().map(|f| format!("{f}\n")).collect();
            if plan_failure(t) {
                body.push_str(&side_by_side(t));
            }
            out.push_str(&format!(
                ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                xml(&message),
                xml(&body)
            ));
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
