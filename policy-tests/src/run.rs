//! One test through the engine: decide, then check each expectation.

use policy_lang::{Expectation, PolicyTest, Reach};
use router_core::{Decider, Decision, Policy, Refusal, Usd, Verdict, render_text};

use crate::snapshot::SnapshotFile;

/// How snapshots are treated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mode {
    /// `--update`: a missing or changed snapshot is (re)written and passes.
    pub update: bool,
    /// `CI` is set: a missing snapshot fails instead of being written.
    pub ci: bool,
}

/// What became of a test's `expect snapshot`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotStatus {
    /// The test has no `expect snapshot`.
    NotAsked,
    /// The stored snapshot equals the explanation.
    Matched,
    /// There was none; it is to be written (outside CI, or with `--update`).
    New,
    /// It differed; `--update` accepts the new one.
    Updated {
        /// The stored text.
        old: String,
    },
    /// There is none and `CI` is set.
    Missing,
    /// It differs from the explanation.
    Changed {
        /// The stored text.
        old: String,
    },
}

/// One expectation a decision did not meet. Targets are named as the
/// policy writes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// `expect first`: another first attempt, or none (refused).
    First {
        /// Expected target.
        expected: String,
        /// Actual first target; `None` when refused.
        actual: Option<String>,
    },
    /// `expect plan`: another plan.
    Plan {
        /// Expected targets in order.
        expected: Vec<String>,
        /// Actual targets in order.
        actual: Vec<String>,
    },
    /// `expect never`: the plan reaches it.
    Reached {
        /// The provider or target named.
        what: String,
        /// 1-based attempt that reaches it.
        position: usize,
        /// The target of that attempt.
        target: String,
    },
    /// `expect refused`: the call got a plan.
    NotRefused {
        /// The code expected, if one was named.
        expected: Option<String>,
    },
    /// `expect refused CODE`: refused for another reason.
    WrongRefusal {
        /// Expected code.
        expected: String,
        /// Actual code.
        actual: String,
    },
    /// An expectation about the plan, but the call was refused.
    Refused {
        /// The refusal code.
        code: String,
        /// The refusal in words.
        message: String,
    },
    /// `expect cost`: the estimate is over the bound (or unknown).
    Cost {
        /// The bound.
        max: Usd,
        /// `<` rather than `<=`.
        strict: bool,
        /// The plan's reservation; `None` when a price is unknown.
        actual: Option<Usd>,
    },
    /// `expect snapshot`: no stored snapshot and `CI` is set.
    SnapshotMissing,
    /// `expect snapshot`: the explanation differs from the stored one.
    SnapshotChanged,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::First {
                expected,
                actual: Some(a),
            } => {
                write!(f, "expected first `{expected}`, got `{a}`")
            }
            Failure::First { expected, actual: None } => {
                write!(f, "expected first `{expected}`, got no plan")
            }
            Failure::Plan { expected, actual } => write!(
                f,
                "expected plan [{}], got [{}]",
                expected.join(", "),
                actual.join(", ")
            ),
            Failure::Reached { what, position, target } if what == target => {
                write!(f, "expected never `{what}`, but attempt {position} goes there")
            }
            Failure::Reached { what, position, target } => {
                write!(f, "expected never `{what}`, but attempt {position} goes to `{target}`")
            }
            Failure::NotRefused { expected: Some(c) } => write!(f, "expected refused `{c}`, got a plan"),
            Failure::NotRefused { expected: None } => f.write_str("expected a refusal, got a plan"),
            Failure::WrongRefusal { expected, actual } => {
                write!(f, "expected refused `{expected}`, got refused `{actual}`")
            }
            Failure::Refused { code, message } => write!(f, "the call is refused `{code}`: {message}"),
            Failure::Cost { max, strict, actual } => {
                let op = if *strict { "<" } else { "<=" };
                match actual {
                    Some(a) => write!(f, "expected cost {op} {max}, estimated {a}"),
                    None => write!(f, "expected cost {op} {max}, but a price on the plan is unknown"),
                }
            }
            Failure::SnapshotMissing => {
                f.write_str("no stored snapshot, and `CI` is set; run `routec test --update` and commit it")
            }
            Failure::SnapshotChanged => {
                f.write_str("the explanation differs from the snapshot; `--review` shows how, `--update` accepts it")
            }
        }
    }
}

/// A test's outcome, with the decision it was checked against.
#[derive(Clone, Debug)]
pub struct TestResult {
    /// The test's name.
    pub name: String,
    /// The file it is written in.
    pub file: String,
    /// Its line there.
    pub line: usize,
    /// The workload called.
    pub workload: String,
    /// The expectations not met, in the order written.
    pub failures: Vec<Failure>,
    /// The engine's decision.
    pub decision: Decision,
    /// The plan's targets, in order.
    pub plan: Vec<String>,
    /// The refusal code, when refused.
    pub refusal: Option<String>,
    /// Every candidate the engine looked at and its verdict: `kept #N` or
    /// the reason code it was dropped for.
    pub candidates: Vec<(String, String)>,
    /// The explanation a snapshot stores (empty unless the test has
    /// `expect snapshot`).
    pub explanation: String,
    /// What became of `expect snapshot`.
    pub snapshot: SnapshotStatus,
}

impl TestResult {
    /// Whether every expectation held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs every test against `policy`; `snapshots` holds the stored ones of
/// the file the tests come from.
pub fn run_all(policy: &Policy, tests: &[PolicyTest], snapshots: Option<&SnapshotFile>, mode: Mode) -> Vec<TestResult> {
    let mut decider = Decider::new(policy);
    tests
        .iter()
        .map(|t| run_with(&mut decider, t, snapshots.and_then(|s| s.get(&t.name)), mode))
        .collect()
}

/// Runs one test: `stored` is its stored snapshot, if any.
pub fn run_test(policy: &Policy, test: &PolicyTest, stored: Option<&str>, mode: Mode) -> TestResult {
    run_with(&mut Decider::new(policy), test, stored, mode)
}

fn run_with(decider: &mut Decider<'_>, test: &PolicyTest, stored: Option<&str>, mode: Mode) -> TestResult {
    let policy = decider.policy();
    let decision = decider.decide(&test.facts.facts(test.workload), &test.state);
    let label = |t: router_core::TargetId| policy.target_label(t);
    let plan: Vec<router_core::TargetId> = decision.plan().attempts().iter().map(|a| a.target).collect();
    let refusal = decision.refusal();
    let refused = |r: Refusal| Failure::Refused {
        code: r.code().to_string(),
        message: r.to_string(),
    };
    // Rendering the explanation costs more than deciding: only for snapshots.
    let explanation = if test.expects.contains(&Expectation::Snapshot) {
        explanation(policy, test, &decision)
    } else {
        String::new()
    };
    let mut failures = Vec::new();
    let mut snapshot = SnapshotStatus::NotAsked;
    for e in &test.expects {
        match e {
            Expectation::First(t) => match (refusal, plan.first()) {
                (Some(r), _) => failures.push(refused(r)),
                (None, Some(first)) if first == t => {}
                (None, first) => failures.push(Failure::First {
                    expected: label(*t),
                    actual: first.map(|f| label(*f)),
                }),
            },
            Expectation::Plan(ts) => match refusal {
                Some(r) => failures.push(refused(r)),
                None if *ts == plan => {}
                None => failures.push(Failure::Plan {
                    expected: ts.iter().map(|t| label(*t)).collect(),
                    actual: plan.iter().map(|t| label(*t)).collect(),
                }),
            },
            Expectation::Never(reach) => {
                for r in reach {
                    let hit = plan.iter().position(|t| match r {
                        Reach::Target(x) => t == x,
                        Reach::Provider(p) => policy.target(*t).provider == *p,
                    });
                    if let Some(i) = hit {
                        let what = match r {
                            Reach::Target(x) => label(*x),
                            Reach::Provider(p) => policy.provider(*p).name.clone(),
                        };
                        let target = plan.get(i).map(|t| label(*t)).unwrap_or_default();
                        failures.push(Failure::Reached {
                            what,
                            position: i + 1,
                            target,
                        });
                    }
                }
            }
            Expectation::Refused(code) => match (refusal, code) {
                (None, _) => failures.push(Failure::NotRefused { expected: code.clone() }),
                (Some(r), Some(c)) if r.code() != c => failures.push(Failure::WrongRefusal {
                    expected: c.clone(),
                    actual: r.code().to_string(),
                }),
                (Some(_), _) => {}
            },
            Expectation::CostAtMost { max, strict } => match refusal {
                Some(r) => failures.push(refused(r)),
                None => {
                    let actual = decision.plan().reserve().usd;
                    let within = actual.is_some_and(|a| if *strict { a < *max } else { a <= *max });
                    if !within {
                        failures.push(Failure::Cost {
                            max: *max,
                            strict: *strict,
                            actual,
                        });
                    }
                }
            },
            Expectation::Snapshot => {
                snapshot = match stored {
                    Some(old) if old == explanation => SnapshotStatus::Matched,
                    Some(old) if mode.update => SnapshotStatus::Updated { old: old.to_string() },
                    Some(old) => {
                        failures.push(Failure::SnapshotChanged);
                        SnapshotStatus::Changed { old: old.to_string() }
                    }
                    None if mode.update || !mode.ci => SnapshotStatus::New,
                    None => {
                        failures.push(Failure::SnapshotMissing);
                        SnapshotStatus::Missing
                    }
                };
            }
        }
    }
    // Two refusal failures for one decision say the same thing once.
    failures.dedup();
    let candidates = decision
        .explain()
        .candidates
        .iter()
        .map(|c| {
            let verdict = match c.verdict {
                Verdict::Kept { position, .. } => format!("kept #{position}"),
                Verdict::Dropped { reason } => format!("dropped: {}", reason.code()),
            };
            (label(c.target), verdict)
        })
        .collect();
    TestResult {
        plan: plan.iter().map(|t| label(*t)).collect(),
        refusal: refusal.map(|r| r.code().to_string()),
        candidates,
        name: test.name.clone(),
        file: test.file.clone(),
        line: test.line,
        workload: policy.workload(test.workload).name.clone(),
        failures,
        decision,
        explanation,
        snapshot,
    }
}

/// The explanation a snapshot stores: the facts and state the test gives,
/// then the engine's explanation as `routec explain` prints it, without
/// the policy hash (which changes with any edit, even one this call never
/// reaches).
fn explanation(policy: &Policy, test: &PolicyTest, decision: &Decision) -> String {
    let facts = serde_json::to_string(&test.facts).unwrap_or_default();
    let mut out = format!("facts: {facts}\n");
    let hash = format!(" · policy {}", policy.hash().short());
    out.push_str(&render_text(policy, decision).replacen(&hash, "", 1));
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use policy_lang::{SourceFile, compile};

    use super::*;

    const POLICY: &str = r#"
        provider free { adapter mock; tier free; data public; model small { price free } }
        provider paid { adapter mock; tier paid; data private; model big { price $1/M in, $5/M out; supports tools } }
        workload w {
          data public
          max_tokens 1000
          route match {
            when has tools => paid/big
            else => fallback [free/small, paid/big]
          }
        }
    "#;

    fn results(tests: &str, mode: Mode) -> Vec<TestResult> {
        let compiled = compile(&[SourceFile::new("p.route", format!("{POLICY}\n{tests}"))]).unwrap();
        run_all(compiled.policy(), compiled.tests(), None, mode)
    }

    #[test]
    fn each_expectation_fails_with_what_the_engine_did() {
        let r = results(
            r#"
            test "a" {
              workload w
              request tools
              expect first free/small
              expect never paid
              expect cost < $0.001
              expect refused
            }
            "#,
            Mode::default(),
        );
        assert_eq!(
            r[0].failures,
            [
                Failure::First {
                    expected: "free/small".into(),
                    actual: Some("paid/big".into())
                },
                Failure::Reached {
                    what: "paid".into(),
                    position: 1,
                    target: "paid/big".into()
                },
                Failure::Cost {
                    max: Usd::from_nanos(1_000_000),
                    strict: true,
                    actual: Some(Usd::from_nanos(5_000_000)),
                },
                Failure::NotRefused { expected: None },
            ]
        );
        assert_eq!(r[0].plan, ["paid/big"]);
        assert!(r[0].explanation.is_empty(), "rendered only for snapshots");
    }

    #[test]
    fn refusals_and_bounds_that_hold_pass() {
        let r = results(
            r#"
            test "b" {
              workload w
              state halted
              expect refused budget_exhausted
            }
            test "c" {
              workload w
              expect plan [free/small, paid/big]
              expect cost <= $0.006
            }
            test "d" {
              workload w
              state halted
              expect first free/small
              expect plan [free/small]
            }
            "#,
            Mode::default(),
        );
        assert!(
            r[0].passed() && r[1].passed(),
            "{:?} {:?}",
            r[0].failures,
            r[1].failures
        );
        // Two expectations on a refused call say "refused" once.
        assert_eq!(r[2].failures.len(), 1, "{:?}", r[2].failures);
        assert!(matches!(&r[2].failures[0], Failure::Refused { code, .. } if code == "budget_exhausted"));
    }

    #[test]
    fn a_missing_snapshot_is_new_outside_ci_and_fails_in_it() {
        let t = r#"test "s" { workload w; expect snapshot }"#;
        let local = results(t, Mode::default());
        assert_eq!(local[0].snapshot, SnapshotStatus::New);
        assert!(local[0].passed());
        assert!(
            local[0]
                .explanation
                .starts_with("facts: {\"input_tokens\":0}\nworkload `w`\n")
        );
        let ci = results(
            t,
            Mode {
                update: false,
                ci: true,
            },
        );
        assert_eq!(ci[0].failures, [Failure::SnapshotMissing]);
    }
}
