//! Decisions in words: the human text `routec explain` prints (and the eval
//! snapshots hold) and a name-keyed JSON [`Report`]. Rendering allocates
//! freely; it is off the hot path.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use crate::explain::{Candidate, KeySource, LatencySource, MatchBranch, Reason, Step, Verdict};
use crate::plan::{Attempt, Decision, Estimate};
use crate::policy::Policy;
use crate::provider::TargetId;
use crate::route::{NodeId, NodeKind, QualityCheck, SplitKey, Triggers};
use crate::units::Usd;

/// A duration as a policy author writes it: `15s`, `2m`, `250ms`.
pub(crate) fn duration_text(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        0 => "0s".to_owned(),
        // Minutes only for long spans: a `timeout(60s)` reads back as 60s.
        _ if ms >= 600_000 && ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1_000) => format!("{}s", ms / 1_000),
        _ => format!("{ms}ms"),
    }
}

fn target_text(policy: &Policy, id: TargetId) -> String {
    if (id.0 as usize) < policy.targets.len() {
        policy.target_label(id)
    } else {
        "(no target)".to_owned()
    }
}

/// A route node as explanations name it: its kind, its name when it has
/// one, and its id, e.g. ``free_first `summary_pool` (n5)``.
pub fn node_text(policy: &Policy, id: NodeId) -> String {
    match policy.routes.get(id) {
        None => format!("missing node ({id})"),
        Some(n) => match (&n.kind, &n.name) {
            (NodeKind::Target { target }, _) => format!("`{}` ({id})", target_text(policy, *target)),
            (NodeKind::Select { strategy, .. }, Some(name)) => {
                format!("select {} `{name}` ({id})", strategy.as_str())
            }
            (NodeKind::Select { strategy, .. }, None) => format!("select {} ({id})", strategy.as_str()),
            (kind, Some(name)) => format!("{} `{name}` ({id})", kind.keyword()),
            (kind, None) => format!("{} ({id})", kind.keyword()),
        },
    }
}

fn triggers_text(t: Triggers) -> String {
    let words: Vec<&str> = t.iter().map(|t| t.as_str()).collect();
    if words.is_empty() {
        "nothing".to_owned()
    } else {
        words.join(", ")
    }
}

fn check_text(policy: &Policy, check: &QualityCheck) -> String {
    match check {
        QualityCheck::JsonValid => "json_valid".to_owned(),
        QualityCheck::JsonSchema => "json_schema".to_owned(),
        QualityCheck::NonEmpty => "non_empty".to_owned(),
        QualityCheck::Regex(r) => format!("regex({r:?})"),
        QualityCheck::Evaluator(w) => match policy.workloads.get(w.0 as usize) {
            Some(w) => format!("evaluator({})", w.name),
            None => "evaluator(?)".to_owned(),
        },
    }
}

fn usd_text(usd: Option<Usd>) -> String {
    usd.map_or_else(|| "unknown".to_owned(), |u| u.to_string())
}

fn from_now(until: u64, now: u64) -> String {
    format!("until {until} ms ({} ms from now)", until.saturating_sub(now))
}

/// One line saying why a candidate was dropped, in the policy's words.
pub fn reason_text(policy: &Policy, reason: &Reason, now_ms: u64) -> String {
    match *reason {
        Reason::DataClass { allowed, required } => {
            format!("provider may receive `{allowed}` data at most; this call carries `{required}`")
        }
        Reason::Jurisdiction => "provider's jurisdiction is not one the workload's `jurisdiction` allows".to_owned(),
        Reason::Capability { missing } => format!("model lacks {missing}"),
        Reason::EmbeddingModel => "an embedding model: it answers embedding calls only".to_owned(),
        Reason::MaxOutput { limit, requested } => {
            format!("model gives at most {limit} output tokens; the call asks for {requested}")
        }
        Reason::ContextWindow { window, needed } => {
            format!("input plus output needs {needed} tokens; the context window is {window}")
        }
        Reason::OverCostCeiling { cost, ceiling } => {
            format!("estimated {cost} is over the workload's ceiling of {ceiling} per call")
        }
        Reason::Unpriced => "paid model with no price, and the workload's cost limits need one".to_owned(),
        Reason::OverBudget {
            tokens_needed,
            tokens_remaining,
            usd_needed,
            usd_remaining,
            halted,
        } => {
            if halted {
                "the workload is halted until its budget window rolls over".to_owned()
            } else if let Some(left) = tokens_remaining.filter(|left| tokens_needed > *left) {
                format!("needs {tokens_needed} tokens; the budget has {left} left")
            } else {
                format!(
                    "needs {}; the budget has {} left",
                    usd_text(usd_needed),
                    usd_text(usd_remaining)
                )
            }
        }
        Reason::Unavailable => {
            "the runtime has no adapter for this provider (its key is not set, or it could not be configured)"
                .to_owned()
        }
        Reason::Ejected { until_ms } => format!("ejected by the circuit breaker {}", from_now(until_ms, now_ms)),
        Reason::CoolingDown { until_ms } => format!("provider cooling down after a 429 {}", from_now(until_ms, now_ms)),
        Reason::Duplicate { first } => format!("already in the plan at {}", node_text(policy, first)),
        Reason::AttemptBound { bound } => format!("the plan already uses all {bound} attempts (max_attempts)"),
        Reason::SplitArmNotChosen { split } => {
            format!(
                "under an arm of {} that this call's key did not pick",
                node_text(policy, split)
            )
        }
        Reason::MatchArmNotTaken { matched } => {
            format!("under a branch of {} that did not decide", node_text(policy, matched))
        }
        Reason::BrokenRoute => "the route node is broken; run `routec check`".to_owned(),
    }
}

fn split_arm_text(policy: &Policy, node: NodeId, arm: Option<u16>) -> String {
    let Some(arm) = arm else {
        return "no arm (every weight is 0)".to_owned();
    };
    match policy.routes.get(node).map(|n| &n.kind) {
        Some(NodeKind::Split { arms, .. }) => match arms.get(usize::from(arm)) {
            Some((w, child)) => format!("arm {} ({w}%: {})", arm + 1, node_text(policy, *child)),
            None => format!("arm {}", arm + 1),
        },
        _ => format!("arm {}", arm + 1),
    }
}

fn split_key_text(policy: &Policy, node: NodeId) -> String {
    match policy.routes.get(node).map(|n| &n.kind) {
        Some(NodeKind::Split {
            key: SplitKey::User, ..
        }) => "user".to_owned(),
        Some(NodeKind::Split {
            key: SplitKey::Metadata(k),
            ..
        }) => format!("metadata.{k}"),
        _ => "request".to_owned(),
    }
}

/// One line describing a combinator's choice.
pub fn step_text(policy: &Policy, step: &Step) -> String {
    match *step {
        Step::Split { node, key, bucket, arm } => {
            let key = match key {
                KeySource::User | KeySource::Metadata => format!("by {}", split_key_text(policy, node)),
                KeySource::Request => "by request seed".to_owned(),
                KeySource::MissingUsedSeed => format!(
                    "by {}, which the request lacks, so by request seed",
                    split_key_text(policy, node)
                ),
            };
            format!(
                "{} {key}: bucket {bucket} of 10000 → {}",
                node_text(policy, node),
                split_arm_text(policy, node, arm)
            )
        }
        Step::Match { node, branch } => match branch {
            MatchBranch::When(i) => format!("{}: `when` branch {} holds", node_text(policy, node), i + 1),
            MatchBranch::Else => format!("{}: no `when` holds → else", node_text(policy, node)),
            MatchBranch::None => format!("{}: nothing holds and there is no else", node_text(policy, node)),
        },
        Step::Select { node, strategy, drawn } => {
            let how = match strategy {
                crate::route::Strategy::Cheapest => "lowest expected cost first".to_owned(),
                crate::route::Strategy::Fastest => "lowest p95 latency first".to_owned(),
                crate::route::Strategy::First => "as written".to_owned(),
                crate::route::Strategy::Weighted => match drawn {
                    Some(i) => format!("drew child {} by weight, the rest by descending weight", i + 1),
                    None => "no eligible child had weight; by descending weight".to_owned(),
                },
            };
            format!("{}: {how}", node_text(policy, node))
        }
    }
}

fn p95_text(c: &Candidate) -> String {
    let source = match c.p95_source {
        LatencySource::Observed => "observed",
        LatencySource::Simulated => "simulate prior",
        LatencySource::Prior => "default prior",
    };
    format!("p95 {}ms ({source})", c.p95_ms)
}

fn attempt_line(policy: &Policy, a: &Attempt, prev: Option<&Attempt>) -> String {
    let mut parts = vec![match a.timeout {
        Some(t) => format!("timeout {}", duration_text(t)),
        None => "runtime timeout".to_owned(),
    }];
    if let Some(t) = a.first_token {
        parts.push(format!("first token {}", duration_text(t)));
    }
    if let Some(t) = a.idle {
        parts.push(format!("idle {}", duration_text(t)));
    }
    parts.push(format!("advance on {}", triggers_text(a.advance_on)));
    if a.retries > 0 {
        parts.push(format!("retry {}", a.retries));
    }
    if !a.retry_on.is_unset() {
        let classes: Vec<String> = a.retry_on.iter().map(|(c, n)| format!("{c} {n}")).collect();
        parts.push(format!("retry {}", classes.join(", ")));
    }
    if let Some(check) = a.quality_check(policy) {
        parts.push(format!("check {}", check_text(policy, check)));
    }
    parts.push(format!("est {}", usd_text(a.estimate.usd)));
    if let Some(p) = prev.filter(|p| p.provider == a.provider) {
        parts.push(if p.allow_repeat {
            "same provider again (allow_repeat)".to_owned()
        } else {
            "same provider again (no other provider left)".to_owned()
        });
    }
    parts.join(" · ")
}

fn reserve_text(e: Estimate) -> String {
    format!("{} tokens, {}", e.tokens, usd_text(e.usd))
}

/// The decision as text: header, combinator steps, the plan (or refusal)
/// and every candidate with its verdict. Stable: snapshots hold it.
pub fn render_text(policy: &Policy, decision: &Decision) -> String {
    let ex = decision.explain();
    let mut out = String::new();
    let name = policy
        .workloads
        .get(ex.workload.0 as usize)
        .map_or("?", |w| w.name.as_str());
    let _ = writeln!(out, "workload `{name}` · policy {}", ex.policy_hash.short());
    let raised = if ex.data_raised { " (raised by the request)" } else { "" };
    let needs = if ex.requires.is_empty() {
        "nothing".to_owned()
    } else {
        ex.requires.to_string()
    };
    let max_out = ex
        .max_output_tokens
        .map_or_else(|| "unset".to_owned(), |n| n.to_string());
    let _ = writeln!(
        out,
        "call: data {}{raised} · needs {needs} · max output {max_out} · at most {} attempts",
        ex.data_class, ex.max_attempts
    );
    let below: Vec<String> = policy
        .providers
        .iter()
        .filter(|p| p.max_data < ex.data_class)
        .map(|p| format!("{} (takes {})", p.name, p.max_data))
        .collect();
    if !below.is_empty() {
        let _ = writeln!(out, "never sent {} data: {}", ex.data_class, below.join(", "));
    }
    if let Some(w) = policy.workloads.get(ex.workload.0 as usize)
        && !w.jurisdictions.is_empty()
    {
        let _ = writeln!(out, "data processed only in: {}", w.jurisdictions.join(", "));
    }
    for step in &ex.steps {
        let _ = writeln!(out, "route: {}", step_text(policy, step));
    }
    out.push('\n');
    match decision.outcome() {
        Err(refusal) => {
            let _ = writeln!(out, "refused ({}): {refusal}", refusal.code());
        }
        Ok(plan) => {
            let _ = writeln!(
                out,
                "plan: {} attempt(s), {} call(s) at most, reserve {}",
                plan.len(),
                plan.tries(),
                reserve_text(plan.reserve())
            );
            let width = plan
                .attempts()
                .iter()
                .map(|a| target_text(policy, a.target).chars().count())
                .max()
                .unwrap_or(0);
            for (i, a) in plan.attempts().iter().enumerate() {
                let prev = i.checked_sub(1).and_then(|j| plan.attempts().get(j));
                let _ = writeln!(
                    out,
                    "  {}. {:width$}  {}",
                    i + 1,
                    target_text(policy, a.target),
                    attempt_line(policy, a, prev)
                );
            }
        }
    }
    out.push_str("\ncandidates, in the order considered:\n");
    let width = ex
        .candidates
        .iter()
        .map(|c| target_text(policy, c.target).chars().count())
        .max()
        .unwrap_or(0);
    for c in &ex.candidates {
        let target = target_text(policy, c.target);
        let from = c
            .parent
            .map_or_else(|| "the workload's route".to_owned(), |p| node_text(policy, p));
        match c.verdict {
            Verdict::Kept { position, deferred } => {
                let note = if deferred {
                    " · same_provider_deferred: moved after another provider's attempt"
                } else {
                    ""
                };
                let takes = policy
                    .targets
                    .get(c.target.0 as usize)
                    .map_or(ex.data_class, |t| policy.provider(t.provider).max_data);
                let _ = writeln!(
                    out,
                    "  kept #{position:<2} {target:width$}  passes every filter (takes {takes} data) · in {from} · est {} · \
                     {}{note}",
                    usd_text(c.estimated_cost),
                    p95_text(c)
                );
            }
            Verdict::Dropped { reason } => {
                let _ = writeln!(
                    out,
                    "  dropped  {target:width$}  {}: {}",
                    reason.code(),
                    reason_text(policy, &reason, ex.now_ms)
                );
            }
        }
    }
    out
}

/// The decision keyed by names, for `routec explain --format json`, logs and
/// tools. Field names are stable.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Content hash of the policy.
    pub policy_hash: String,
    /// The workload's name.
    pub workload: String,
    /// `"plan"` or `"refused"`.
    pub outcome: &'static str,
    /// The refusal code and message, when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refusal: Option<RefusalReport>,
    /// The call as the engine saw it.
    pub call: CallReport,
    /// Combinator choices, as sentences.
    pub steps: Vec<String>,
    /// The attempts, first first.
    pub plan: Vec<AttemptReport>,
    /// What to reserve before the first attempt.
    pub reserve: EstimateReport,
    /// Every candidate considered.
    pub candidates: Vec<CandidateReport>,
}

/// A refusal in a [`Report`].
#[derive(Clone, Debug, Serialize)]
pub struct RefusalReport {
    /// Stable code (`data_class`, `budget_exhausted`, `unhealthy`, `no_eligible_target`).
    pub code: &'static str,
    /// One line for people.
    pub message: String,
    /// The refusal's data.
    pub detail: crate::plan::Refusal,
}

/// The call's derived facts in a [`Report`].
#[derive(Clone, Debug, Serialize)]
pub struct CallReport {
    /// The effective data class.
    pub data_class: crate::provider::DataClass,
    /// Whether the request raised it.
    pub data_raised: bool,
    /// Capabilities every target needed.
    pub requires: crate::provider::Capabilities,
    /// Output tokens asked for.
    pub max_output_tokens: Option<u64>,
    /// The attempt bound.
    pub max_attempts: u8,
    /// The snapshot's time.
    pub now_ms: u64,
}

/// One attempt in a [`Report`].
#[derive(Clone, Debug, Serialize)]
pub struct AttemptReport {
    /// `provider/model`.
    pub target: String,
    /// The innermost combinator that placed it.
    pub placed_by: Option<String>,
    /// Per-attempt timeout in ms.
    pub timeout_ms: Option<u64>,
    /// Failures that advance to the next attempt.
    pub advance_on: Triggers,
    /// Retries on this target.
    pub retries: u8,
    /// Whether the next attempt may use the same provider.
    pub allow_repeat: bool,
    /// The quality check on the answer.
    pub check: Option<String>,
    /// What this attempt reserves.
    pub estimate: EstimateReport,
}

/// Tokens and dollars in a [`Report`]: dollars both as text and as exact
/// nano-dollars.
#[derive(Clone, Debug, Serialize)]
pub struct EstimateReport {
    /// Tokens.
    pub tokens: u64,
    /// Dollars as a policy writes them (`$0.0112`); `None` when unknown.
    pub usd: Option<String>,
    /// The same in nano-dollars.
    pub usd_nanos: Option<u64>,
}

impl From<Estimate> for EstimateReport {
    fn from(e: Estimate) -> Self {
        EstimateReport {
            tokens: e.tokens,
            usd: e.usd.map(|u| u.to_string()),
            usd_nanos: e.usd.map(Usd::nanos),
        }
    }
}

/// One candidate in a [`Report`].
#[derive(Clone, Debug, Serialize)]
pub struct CandidateReport {
    /// `provider/model`.
    pub target: String,
    /// The combinator it was written in.
    pub parent: Option<String>,
    /// Kept (with position) or dropped (with reason and code; amounts inside
    /// `reason` are nano-dollars).
    #[serde(flatten)]
    pub verdict: Verdict,
    /// The reason in words, when dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Note codes on a kept candidate: `same_provider_deferred` when it was
    /// moved after another provider's attempt.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<&'static str>,
    /// Estimated cost at this target, as text (`$0.0112`).
    pub estimated_cost: Option<String>,
    /// Latency used by `fastest`.
    pub p95_ms: u32,
    /// Where the latency came from.
    pub p95_source: LatencySource,
}

impl Report {
    /// Builds the report of `decision`, made with `policy`.
    pub fn new(policy: &Policy, decision: &Decision) -> Report {
        let ex = decision.explain();
        let plan = decision
            .plan()
            .attempts()
            .iter()
            .map(|a| AttemptReport {
                target: target_text(policy, a.target),
                placed_by: a.placed_by.map(|n| node_text(policy, n)),
                timeout_ms: a.timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
                advance_on: a.advance_on,
                retries: a.retries,
                allow_repeat: a.allow_repeat,
                check: a.quality_check(policy).map(|c| check_text(policy, c)),
                estimate: a.estimate.into(),
            })
            .collect();
        let candidates = ex
            .candidates
            .iter()
            .map(|c| CandidateReport {
                target: target_text(policy, c.target),
                parent: c.parent.map(|n| node_text(policy, n)),
                verdict: c.verdict,
                detail: match c.verdict {
                    Verdict::Dropped { reason } => Some(reason_text(policy, &reason, ex.now_ms)),
                    Verdict::Kept { .. } => None,
                },
                notes: match c.verdict {
                    Verdict::Kept { deferred: true, .. } => vec!["same_provider_deferred"],
                    _ => Vec::new(),
                },
                estimated_cost: c.estimated_cost.map(|u| u.to_string()),
                p95_ms: c.p95_ms,
                p95_source: c.p95_source,
            })
            .collect();
        Report {
            policy_hash: ex.policy_hash.to_string(),
            workload: policy
                .workloads
                .get(ex.workload.0 as usize)
                .map_or_else(String::new, |w| w.name.clone()),
            outcome: if decision.refusal().is_some() {
                "refused"
            } else {
                "plan"
            },
            refusal: decision.refusal().map(|r| RefusalReport {
                code: r.code(),
                message: r.to_string(),
                detail: r,
            }),
            call: CallReport {
                data_class: ex.data_class,
                data_raised: ex.data_raised,
                requires: ex.requires,
                max_output_tokens: ex.max_output_tokens,
                max_attempts: ex.max_attempts,
                now_ms: ex.now_ms,
            },
            steps: ex.steps.iter().map(|s| step_text(policy, s)).collect(),
            plan,
            reserve: decision.plan().reserve().into(),
            candidates,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::RequestFacts;
    use crate::state::StateSnapshot;
    use crate::testkit::seed;

    #[test]
    fn durations_read_like_policy_literals() {
        assert_eq!(duration_text(Duration::from_secs(15)), "15s");
        assert_eq!(duration_text(Duration::from_secs(120)), "120s");
        assert_eq!(duration_text(Duration::from_secs(900)), "15m");
        assert_eq!(duration_text(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn text_names_every_candidate_and_the_plan() {
        let p = seed();
        let facts = RequestFacts {
            user: Some("alice".into()),
            input_tokens: 1_200,
            ..RequestFacts::default()
        };
        let d = crate::decide(
            &p,
            &facts.facts_for(&p, "content_summary").unwrap(),
            &StateSnapshot::default(),
        );
        let text = render_text(&p, &d);
        assert!(text.contains("1. cerebras/llama-3.3-70b"), "{text}");
        assert!(text.contains("split_arm_not_chosen"), "{text}");
        assert!(text.contains("bucket 4814 of 10000"), "{text}");
        let json = serde_json::to_value(Report::new(&p, &d)).unwrap();
        assert_eq!(json["outcome"], "plan");
        assert_eq!(json["plan"][0]["target"], "cerebras/llama-3.3-70b");
        assert_eq!(json["candidates"][4]["reason"]["code"], "split_arm_not_chosen");
    }
}
