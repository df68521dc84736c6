//! `test` blocks to [`PolicyTest`]s, after the policy is lowered so every
//! name a test uses resolves against it (with "did you mean", as in any
//! other block). `routec test` runs them through the engine.

use std::collections::HashMap;
use std::sync::Arc;

use router_core::{Policy, ProviderId, RequestFacts, StateSnapshot, TargetId, Usd, WorkloadId};

use crate::ast::*;
use crate::code::Code;
use crate::diagnostic::Diag;
use crate::errors::{BadLiteralError, DuplicateNameError, MissingPropertyError, UnknownNameError};
use crate::names;
use crate::report::CheckReport;
use crate::source::{SourceMap, Span};

/// How long `state ejected …` or `cooling …` lasts when no `for` is given.
const DEFAULT_OUT_MS: u64 = 60_000;

/// The facts a test's `request` line may set.
pub(crate) const FACTS: &[&str] = &[
    "input_tokens",
    "max_output",
    "tools",
    "images",
    "json_schema",
    "stream",
    "task",
    "user",
    "data",
    "request_seed",
    "metadata.NAME",
];

/// The refusal codes `expect refused` may name.
const REFUSALS: &[&str] = &["data_class", "budget_exhausted", "unhealthy", "no_eligible_target"];

/// One `test` block, resolved against its policy: a call, the state it is
/// decided in, and what the decision must be.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyTest {
    /// The test's name, as written.
    pub name: String,
    /// The file it is written in, as the policy's file list names it.
    pub file: String,
    /// Its 1-based line in that file.
    pub line: usize,
    /// The workload called.
    pub workload: WorkloadId,
    /// The request facts.
    pub facts: RequestFacts,
    /// The state the call is decided in (time 0, healthy unless the test
    /// says otherwise).
    pub state: StateSnapshot,
    /// What the decision must be, in the order written.
    pub expects: Vec<Expectation>,
}

/// One `expect` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expectation {
    /// `expect first P/M`: the plan's first attempt.
    First(TargetId),
    /// `expect plan [P/M, …]`: every attempt, in order.
    Plan(Vec<TargetId>),
    /// `expect never …`: no attempt goes to these.
    Never(Vec<Reach>),
    /// `expect refused [CODE]`: the call is refused (for that reason).
    Refused(Option<String>),
    /// `expect cost <= $X` (or `<`): the most one call is estimated to
    /// cost, the budget reservation of its plan.
    CostAtMost {
        /// The bound.
        max: Usd,
        /// `<` rather than `<=`.
        strict: bool,
    },
    /// `expect snapshot`: the whole explanation equals the stored one.
    Snapshot,
}

/// A target or a whole provider, as `expect never` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// One model of a provider.
    Target(TargetId),
    /// Every model of a provider.
    Provider(ProviderId),
}

struct TestLowerer<'a> {
    src: &'a Arc<SourceMap>,
    policy: &'a Policy,
    report: &'a mut CheckReport,
    /// The last line found: file, byte offset, 1-based line. Tests come in
    /// file order, so counting on from it keeps 10,000 tests linear.
    cursor: (u32, usize, usize),
}

/// Lowers every `test` block of `ast` against `policy`; problems go into
/// `report`.
pub(crate) fn lower(ast: &Ast, policy: &Policy, report: &mut CheckReport) -> Vec<PolicyTest> {
    let mut l = TestLowerer {
        src: &ast.src,
        policy,
        report,
        cursor: (0, 0, 1),
    };
    let mut seen: HashMap<String, Span> = HashMap::new();
    let mut out = Vec::new();
    for item in ast.items() {
        let Item::Test(t) = item else { continue };
        if let Some(first) = seen.get(&t.name.value) {
            let diag = Diag::at(
                Code::R0102,
                format!("test {} is defined twice", q(&t.name.value)),
                l.src,
                t.name.span,
                "defined again here",
            )
            .label(*first, "first defined here")
            .help("give each test its own name: reports and snapshots are keyed by it");
            l.report.error(DuplicateNameError {
                kind: "test",
                name: t.name.value.clone(),
                diag,
            });
            continue;
        }
        seen.insert(t.name.value.clone(), t.name.span);
        if let Some(test) = l.test(t) {
            out.push(test);
        }
    }
    out
}

fn q(name: &str) -> String {
    format!("`{name}`")
}

impl TestLowerer<'_> {
    fn test(&mut self, t: &TestDecl) -> Option<PolicyTest> {
        let mut ok = true;
        let mut workload = None;
        let mut facts = RequestFacts::default();
        let mut state = StateSnapshot::for_policy(self.policy, 0);
        let mut expects = Vec::new();
        let mut budget_lines = Vec::new();
        for prop in &t.props {
            match &prop.kind {
                TestProp::Workload(name) => match self.policy.workload_id(&name.name) {
                    Some(id) => workload = workload.or(Some(id)),
                    None => {
                        self.unknown_workload(name);
                        ok = false;
                    }
                },
                TestProp::Request(list) => {
                    for f in list {
                        ok &= self.fact(&mut facts, f);
                    }
                }
                TestProp::State(items) => {
                    for s in items {
                        match s {
                            StateAst::BudgetLeft(_) | StateAst::Halted(_) => budget_lines.push(s),
                            _ => ok &= self.state(&mut state, s),
                        }
                    }
                }
                TestProp::Expect(e) => match self.expectation(e) {
                    Some(x) => expects.push(x),
                    None => ok = false,
                },
            }
        }
        let Some(workload) = workload else {
            if ok {
                let diag = Diag::at(
                    Code::R0106,
                    format!("test {} has no `workload`", q(&t.name.value)),
                    self.src,
                    t.name.span,
                    "needs `workload`",
                )
                .help("name the workload the call is tagged with: `workload audit_report`");
                self.report.error(MissingPropertyError {
                    property: "workload".to_string(),
                    block: format!("test {}", q(&t.name.value)),
                    diag,
                });
            }
            return None;
        };
        for s in budget_lines {
            let w = state.workload_mut(workload);
            match s {
                StateAst::BudgetLeft(Amount::Tokens(n)) => w.tokens_remaining = Some(n.value),
                StateAst::BudgetLeft(Amount::Usd(m)) => w.usd_remaining = Some(Usd::from_nanos(m.value)),
                StateAst::Halted(_) => w.halted = true,
                _ => {}
            }
        }
        let origin = self.src.origin(t.span);
        let (file, text) = self
            .src
            .file(origin.file as usize)
            .map(|(_, f)| (f.name().to_string(), f.text()))
            .unwrap_or_default();
        let line = self.line_of(origin.file, text, origin.start as usize);
        ok.then(|| PolicyTest {
            name: t.name.value.clone(),
            file,
            line,
            workload,
            facts,
            state,
            expects,
        })
    }

    /// The 1-based line of byte `at` of file `file`, whose text is `text`.
    fn line_of(&mut self, file: u32, text: &str, at: usize) -> usize {
        let (f, from, line) = self.cursor;
        let (from, line) = if f == file && from <= at { (from, line) } else { (0, 1) };
        let line = line
            + text
                .get(from..at)
                .map_or(0, |s| s.bytes().filter(|b| *b == b'\n').count());
        self.cursor = (file, at, line);
        line
    }

    fn unknown(&mut self, kind: &'static str, name: &Ident, candidates: &[&str], help: &str) {
        let suggestion = names::did_you_mean(&name.name, candidates.iter().copied());
        let label = match &suggestion {
            Some(s) => format!("did you mean {}?", q(s)),
            None => format!("no {kind} has this name"),
        };
        let diag = Diag::at(
            Code::R0101,
            format!("unknown {kind} {}", q(&name.name)),
            self.src,
            name.span,
            label,
        )
        .help(help.to_string());
        self.report.error(UnknownNameError {
            kind,
            name: name.name.clone(),
            suggestion,
            diag,
        });
    }

    fn unknown_workload(&mut self, name: &Ident) {
        let known: Vec<&str> = self.policy.workloads.iter().map(|w| w.name.as_str()).collect();
        self.unknown(
            "workload",
            name,
            &known,
            "a test calls one workload of the policy it runs against",
        );
    }

    fn provider(&mut self, name: &Ident) -> Option<ProviderId> {
        let found = self.policy.providers.iter().position(|p| p.name == name.name);
        match found {
            Some(i) => Some(ProviderId(u32::try_from(i).unwrap_or(u32::MAX))),
            None => {
                let known: Vec<&str> = self.policy.providers.iter().map(|p| p.name.as_str()).collect();
                self.unknown("provider", name, &known, "define it with `provider NAME { … }`");
                None
            }
        }
    }

    fn target(&mut self, t: &TargetAst) -> Option<TargetId> {
        let pid = self.provider(&t.provider)?;
        if let Some(id) = self.policy.target_named(&t.provider.name, &t.model.name) {
            return Some(id);
        }
        let models: Vec<&str> = self
            .policy
            .targets
            .iter()
            .filter(|x| x.provider == pid)
            .map(|x| x.model.as_str())
            .collect();
        let help = format!("provider {} has: {}", q(&t.provider.name), models.join(", "));
        self.unknown("model", &t.model, &models, &help);
        None
    }

    fn fact(&mut self, facts: &mut RequestFacts, f: &FactAst) -> bool {
        let key = f.key.name.as_str();
        let known = FACTS.contains(&key) || key.strip_prefix("metadata.").is_some_and(|m| !m.is_empty());
        if !known {
            let keys: Vec<&str> = FACTS.iter().copied().filter(|k| *k != "metadata.NAME").collect();
            self.unknown(
                "fact",
                &f.key,
                &keys,
                "facts are `input_tokens`, `max_output`, `tools`, `images`, `json_schema`, `stream`, `task`, \
                 `user`, `data`, `request_seed` and `metadata.NAME`",
            );
            return false;
        }
        let flag = matches!(key, "tools" | "images" | "json_schema" | "stream");
        let (value, span) = match &f.value {
            Some(v) => (v.value.as_str(), v.span),
            None if flag => ("true", f.key.span),
            None => {
                self.bad_value(
                    f.key.span,
                    key,
                    format!("fact {} needs a value", q(key)),
                    "write the value after the fact: `input_tokens 9000`, `user \"alice\"`, `data private`",
                );
                return false;
            }
        };
        match facts.set(key, value) {
            Ok(()) => true,
            Err(e) => {
                let text = f.value.as_ref().map_or(key, |v| v.text.as_str()).to_string();
                self.bad_value(
                    span,
                    &text,
                    e.to_string(),
                    "see `docs/testing.md` for each fact's values",
                );
                false
            }
        }
    }

    fn bad_value(&mut self, span: Span, literal: &str, problem: String, help: &str) {
        let diag = Diag::at(Code::R0009, problem, self.src, span, "").help(help.to_string());
        self.report.parse_error(BadLiteralError {
            literal: literal.to_string(),
            diag,
        });
    }

    fn state(&mut self, state: &mut StateSnapshot, s: &StateAst) -> bool {
        let ms = |d: &Option<Lit<std::time::Duration>>| {
            d.as_ref().map_or(DEFAULT_OUT_MS, |d| {
                u64::try_from(d.value.as_millis()).unwrap_or(u64::MAX)
            })
        };
        match s {
            StateAst::Ejected(t, d) => match self.target(t) {
                Some(id) => state.target_mut(id).ejected_until_ms = Some(ms(d)),
                None => return false,
            },
            StateAst::Cooling(p, d) => match self.provider(p) {
                Some(id) => state.provider_mut(id).cooling_until_ms = Some(ms(d)),
                None => return false,
            },
            StateAst::Unavailable(p) => match self.provider(p) {
                Some(id) => state.provider_mut(id).unavailable = true,
                None => return false,
            },
            StateAst::P95(t, d) => match self.target(t) {
                Some(id) => {
                    state.target_mut(id).p95_ms = Some(u32::try_from(d.value.as_millis()).unwrap_or(u32::MAX));
                }
                None => return false,
            },
            StateAst::BudgetLeft(_) | StateAst::Halted(_) => {}
        }
        true
    }

    fn expectation(&mut self, e: &ExpectAst) -> Option<Expectation> {
        Some(match e {
            ExpectAst::First(t) => Expectation::First(self.target(t)?),
            ExpectAst::Plan(ts) => {
                let mut ids = Vec::new();
                let mut ok = true;
                for t in ts {
                    match self.target(t) {
                        Some(id) => ids.push(id),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                Expectation::Plan(ids)
            }
            ExpectAst::Never(rs) => {
                let mut out = Vec::new();
                let mut ok = true;
                for r in rs {
                    let reach = match r {
                        ReachAst::Target(t) => self.target(t).map(Reach::Target),
                        ReachAst::Provider(p) => self.provider(p).map(Reach::Provider),
                    };
                    match reach {
                        Some(x) => out.push(x),
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                Expectation::Never(out)
            }
            ExpectAst::Refused(None) => Expectation::Refused(None),
            ExpectAst::Refused(Some(code)) => {
                if !REFUSALS.contains(&code.name.as_str()) {
                    self.unknown(
                        "refusal",
                        code,
                        REFUSALS,
                        "refusals are `data_class`, `budget_exhausted`, `unhealthy` and `no_eligible_target`; \
                         `expect refused` alone accepts any",
                    );
                    return None;
                }
                Expectation::Refused(Some(code.name.clone()))
            }
            ExpectAst::Cost { strict, max } => Expectation::CostAtMost {
                max: Usd::from_nanos(max.value),
                strict: strict.value,
            },
            ExpectAst::Snapshot => Expectation::Snapshot,
        })
    }
}
