//! The simulation report: totals, per-workload and per-target rows, the
//! savings against a baseline, the independent data-class check and cost
//! over time; as data (JSON) and as text for people.

use std::collections::BTreeMap;
use std::fmt::Write;

use router_core::{Policy, TargetId, Usd};
use serde::Serialize;

use crate::baseline::Baseline;
use crate::options::CheckPassRates;
use crate::profile::{DEFAULT_P50, DEFAULT_P95, SIM_RETRY_AFTER};
use crate::stats::{CostSeries, TargetStats, WorkloadStats};
use crate::time::format_rfc3339;

/// Everything a simulation found. Money is in dollars (floats, for reading)
/// with exact nano-dollar totals alongside.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimReport {
    /// The policy's content hash.
    pub policy_hash: String,
    /// The seed every random draw came from.
    pub seed: u64,
    /// Traffic lines replayed (including unknown workloads).
    pub requests: u64,
    /// Calls that delivered an answer.
    pub served: u64,
    /// Calls that failed after dispatch (see [`WorkloadRow::failed`]).
    pub failed: u64,
    /// Calls refused because a budget was spent or halted.
    pub budget_halts: u64,
    /// Calls the engine refused for other reasons (data class, no eligible
    /// or no healthy target).
    pub refused: u64,
    /// Lines whose workload the policy does not have (not replayed).
    pub unknown_workload: u64,
    /// Unknown workload names and their line counts (the first few names).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub unknown_workloads: BTreeMap<String, u64>,
    /// Lines earlier than the line before them, replayed at that line's time.
    pub reordered: u64,
    /// Attempts sent to a provider.
    pub dispatches: u64,
    /// Dispatches whose provider's `max_data` is below the request's data
    /// class, counted by the simulator's own check (must be 0).
    pub pii_violations: u64,
    /// What all served calls cost, in dollars.
    pub total_cost: f64,
    /// The same, in nano-dollars.
    pub total_cost_nanos: u64,
    /// The target every request is priced on for comparison.
    pub baseline: BaselineInfo,
    /// What the served requests would have cost on the baseline, in dollars
    /// (the same work priced on one model; unserved calls count on neither side).
    pub baseline_cost: f64,
    /// The same, in nano-dollars.
    pub baseline_cost_nanos: u64,
    /// `1 − total_cost / baseline_cost` (0 when the baseline costs nothing).
    pub savings_ratio: f64,
    /// Median call latency (all attempts, backoffs included), ms.
    pub p50_ms: Option<u64>,
    /// 95th-percentile call latency, ms.
    pub p95_ms: Option<u64>,
    /// The first request's time (RFC 3339).
    pub start: Option<String>,
    /// The last request's time (RFC 3339).
    pub end: Option<String>,
    /// One row per workload, in policy order.
    pub workloads: Vec<WorkloadRow>,
    /// One row per target that was dispatched to, in policy order.
    pub targets: Vec<TargetRow>,
    /// Cost per provider over time.
    pub cost_over_time: CostOverTime,
    /// What the simulation assumed where the policy says nothing.
    pub assumptions: Assumptions,
}

/// The baseline target and how it was chosen.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BaselineInfo {
    /// `provider/model`; `None` when the policy prices no target.
    pub target: Option<String>,
    /// `"--baseline"` or `"default: the policy's most expensive target by output price"`.
    pub chosen_by: String,
}

/// One workload's totals.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkloadRow {
    /// The workload's name.
    pub workload: String,
    /// Requests replayed.
    pub requests: u64,
    /// Calls that delivered an answer.
    pub served: u64,
    /// Calls that moved past a failed or unhealthy target at least once.
    pub fallbacks: u64,
    /// Calls where an answer failed its quality check at least once.
    pub escalations: u64,
    /// Retries on the same target.
    pub retries: u64,
    /// Calls that failed after dispatch: every attempt failed, a failure the
    /// chain does not advance on, the deadline passed, or every answer
    /// failed its check.
    pub failed: u64,
    /// Calls refused by the budget.
    pub budget_halts: u64,
    /// When the workload first hit its budget (RFC 3339).
    pub first_halt: Option<String>,
    /// Calls the engine refused for other reasons.
    pub refused: u64,
    /// Requests that declared a data class above the workload's.
    pub raised_class: u64,
    /// Input tokens billed (every answer, rejected ones included).
    pub input_tokens: u64,
    /// Output tokens billed.
    pub output_tokens: u64,
    /// Cost in dollars.
    pub cost: f64,
    /// Baseline cost of the requests it served, in dollars.
    pub baseline_cost: f64,
    /// `1 − cost / baseline_cost`.
    pub savings_ratio: f64,
    /// Median call latency, ms.
    pub p50_ms: Option<u64>,
    /// 95th-percentile call latency, ms.
    pub p95_ms: Option<u64>,
    /// Data-class violations found by the independent check.
    pub pii_violations: u64,
}

/// One target's totals.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetRow {
    /// `provider/model`.
    pub target: String,
    /// Attempts sent.
    pub dispatches: u64,
    /// Attempts that answered.
    pub answered: u64,
    /// Attempts answered 429.
    pub rate_limited: u64,
    /// Attempts that failed with a server or connection error.
    pub errors: u64,
    /// Attempts that ran past their timeout.
    pub timeouts: u64,
    /// Answers that failed their quality check.
    pub check_failed: u64,
    /// Times the plan named it but it was ejected or cooling down.
    pub skipped_unhealthy: u64,
    /// Times the plan named it but its provider was at a `limits rpm`/`tpm`.
    pub skipped_limit: u64,
    /// Input tokens billed.
    pub input_tokens: u64,
    /// Output tokens billed.
    pub output_tokens: u64,
    /// Cost in dollars.
    pub cost: f64,
    /// Median attempt latency, ms.
    pub p50_ms: Option<u64>,
    /// 95th-percentile attempt latency, ms.
    pub p95_ms: Option<u64>,
    /// Whether its latency and error rates are the simulator's default
    /// (the policy has no `simulate` line for it).
    pub default_profile: bool,
}

/// Cost per provider per time bucket.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CostOverTime {
    /// Start of the first bucket (RFC 3339).
    pub start: Option<String>,
    /// Start of the first bucket, ms since the epoch.
    pub start_ms: Option<u64>,
    /// Bucket width, ms.
    pub bucket_ms: u64,
    /// Provider names, the columns of `cost`.
    pub providers: Vec<String>,
    /// `cost[bucket][provider]` in dollars.
    pub cost: Vec<Vec<f64>>,
}

/// The simulator's stand-ins where the policy or traffic says nothing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Assumptions {
    /// Latency median for targets without a `simulate` line, ms.
    pub default_p50_ms: u64,
    /// Latency p95 for targets without a `simulate` line, ms.
    pub default_p95_ms: u64,
    /// Targets that were dispatched to with the default profile.
    pub defaulted_targets: Vec<String>,
    /// Per-attempt timeout when the plan has none, ms.
    pub attempt_timeout_ms: u64,
    /// `Retry-After` carried by simulated 429s, ms.
    pub retry_after_ms: u64,
    /// First retry backoff (doubling, ±50 % jitter), ms.
    pub retry_backoff_ms: u64,
    /// Quality-check pass rates, basis points; the same for every model.
    pub check_pass_bp: CheckPassRates,
    /// Failed attempts are not billed; every answer is, even one that fails
    /// its quality check.
    pub billing: &'static str,
    /// How provider `limits` are applied.
    pub provider_limits: &'static str,
}

/// What [`build`] needs from a finished simulator.
pub(crate) struct Parts<'a> {
    pub policy: &'a Policy,
    pub seed: u64,
    pub check_pass: CheckPassRates,
    pub baseline: &'a Baseline,
    pub profiles: &'a [(providers::SimProfile, bool)],
    pub workloads: &'a [WorkloadStats],
    pub targets: &'a [TargetStats],
    pub series: &'a CostSeries,
    pub unknown: &'a BTreeMap<String, u64>,
    pub unknown_total: u64,
    pub reordered: u64,
    pub dispatches: u64,
    pub first_ms: Option<u64>,
    pub last_ms: u64,
}

fn dollars(u: Usd) -> f64 {
    u.as_dollars_f64()
}

/// `1 − cost / baseline`, rounded to four decimals so the JSON is stable
/// to read; 0 when the baseline is free.
fn savings(cost: Usd, baseline: Usd) -> f64 {
    if baseline == Usd::ZERO {
        return 0.0;
    }
    let r = 1.0 - cost.nanos() as f64 / baseline.nanos() as f64;
    (r * 10_000.0).round() / 10_000.0
}

pub(crate) fn build(p: Parts<'_>) -> SimReport {
    let policy = p.policy;
    let mut all_latency = crate::stats::Latencies::new();
    let mut total = Usd::ZERO;
    let mut baseline = Usd::ZERO;
    let (mut served, mut failed, mut halts, mut refused, mut pii) = (0, 0, 0, 0, 0);
    let mut workloads = Vec::with_capacity(p.workloads.len());
    for (i, s) in p.workloads.iter().enumerate() {
        let w = &policy.workloads[i];
        total += s.cost;
        baseline += s.baseline_cost;
        served += s.served;
        failed += s.failed;
        halts += s.budget_halts;
        refused += s.refused;
        pii += s.pii_violations;
        all_latency.merge(&s.latency);
        workloads.push(WorkloadRow {
            workload: w.name.clone(),
            requests: s.requests,
            served: s.served,
            fallbacks: s.fallbacks,
            escalations: s.escalations,
            retries: s.retries,
            failed: s.failed,
            budget_halts: s.budget_halts,
            first_halt: s.first_halt_ms.map(format_rfc3339),
            refused: s.refused,
            raised_class: s.raised_class,
            input_tokens: s.input_tokens,
            output_tokens: s.output_tokens,
            cost: dollars(s.cost),
            baseline_cost: dollars(s.baseline_cost),
            savings_ratio: savings(s.cost, s.baseline_cost),
            p50_ms: s.latency.quantile(0.5),
            p95_ms: s.latency.quantile(0.95),
            pii_violations: s.pii_violations,
        });
    }
    let mut targets = Vec::new();
    let mut defaulted = Vec::new();
    for (i, s) in p.targets.iter().enumerate() {
        if s.dispatches == 0 && s.skipped_unhealthy == 0 && s.skipped_limit == 0 {
            continue;
        }
        let label = policy.target_label(TargetId(i as u32));
        let default_profile = !p.profiles.get(i).is_some_and(|(_, declared)| *declared);
        if default_profile && s.dispatches > 0 {
            defaulted.push(label.clone());
        }
        targets.push(TargetRow {
            target: label,
            dispatches: s.dispatches,
            answered: s.answered,
            rate_limited: s.rate_limited,
            errors: s.errors,
            timeouts: s.timeouts,
            check_failed: s.check_failed,
            skipped_unhealthy: s.skipped_unhealthy,
            skipped_limit: s.skipped_limit,
            input_tokens: s.input_tokens,
            output_tokens: s.output_tokens,
            cost: dollars(s.cost),
            p50_ms: s.latency.quantile(0.5),
            p95_ms: s.latency.quantile(0.95),
            default_profile,
        });
    }
    let requests: u64 = p.workloads.iter().map(|s| s.requests).sum::<u64>() + p.unknown_total;
    SimReport {
        policy_hash: policy.hash().to_string(),
        seed: p.seed,
        requests,
        served,
        failed,
        budget_halts: halts,
        refused,
        unknown_workload: p.unknown_total,
        unknown_workloads: p.unknown.clone(),
        reordered: p.reordered,
        dispatches: p.dispatches,
        pii_violations: pii,
        total_cost: dollars(total),
        total_cost_nanos: total.nanos(),
        baseline: BaselineInfo {
            target: p.baseline.target.map(|t| policy.target_label(t)),
            chosen_by: if p.baseline.target.is_none() {
                "none: the policy prices no target".to_owned()
            } else if p.baseline.chosen_by_default {
                "default: the policy's most expensive target by output price".to_owned()
            } else {
                "--baseline".to_owned()
            },
        },
        baseline_cost: dollars(baseline),
        baseline_cost_nanos: baseline.nanos(),
        savings_ratio: savings(total, baseline),
        p50_ms: all_latency.quantile(0.5),
        p95_ms: all_latency.quantile(0.95),
        start: p.first_ms.map(format_rfc3339),
        end: p.first_ms.map(|_| format_rfc3339(p.last_ms)),
        workloads,
        targets,
        cost_over_time: CostOverTime {
            start: p.series.origin_ms.map(format_rfc3339),
            start_ms: p.series.origin_ms,
            bucket_ms: p.series.bucket_ms,
            providers: policy.providers.iter().map(|pr| pr.name.clone()).collect(),
            cost: p
                .series
                .buckets
                .iter()
                .map(|b| b.iter().map(|n| dollars(Usd::from_nanos(*n))).collect())
                .collect(),
        },
        assumptions: Assumptions {
            default_p50_ms: DEFAULT_P50.as_millis() as u64,
            default_p95_ms: DEFAULT_P95.as_millis() as u64,
            defaulted_targets: defaulted,
            attempt_timeout_ms: router_state::FailureRules::default()
                .default_attempt_timeout
                .as_millis() as u64,
            retry_after_ms: SIM_RETRY_AFTER.as_millis() as u64,
            retry_backoff_ms: router_state::FailureRules::default().backoff_base.as_millis() as u64,
            check_pass_bp: p.check_pass,
            billing: "failed attempts are not billed; every answer is, including answers that fail their check",
            provider_limits: "rpm and tpm paced per provider as the runtime does (a provider at a limit is skipped); \
                              concurrency is not modelled, since requests replay one after another",
        },
    }
}

impl SimReport {
    /// The report as pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        // Plain data: serialising to a string cannot fail.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    /// The report as text for a terminal.
    pub fn to_human(&self) -> String {
        render_human(self)
    }
}

/// Dollars with enough digits to tell small amounts apart.
pub(crate) fn money(d: f64) -> String {
    if d >= 100.0 {
        format!("${d:.2}")
    } else if d >= 1.0 {
        format!("${d:.3}")
    } else {
        format!("${d:.4}")
    }
}

pub(crate) fn opt_ms(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms"))
}

pub(crate) fn percent(r: f64) -> String {
    format!("{:.1} %", r * 100.0)
}

fn render_human(r: &SimReport) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "simulated {} requests (seed {}), {} → {}",
        r.requests,
        r.seed,
        r.start.as_deref().unwrap_or("-"),
        r.end.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        o,
        "served {}, failed {}, budget halts {}, refused {}{}",
        r.served,
        r.failed,
        r.budget_halts,
        r.refused,
        if r.unknown_workload > 0 {
            format!(", unknown workload {}", r.unknown_workload)
        } else {
            String::new()
        }
    );
    let _ = writeln!(o);
    let _ = writeln!(o, "total cost      {}", money(r.total_cost));
    let _ = writeln!(
        o,
        "baseline cost   {}  (every served request on {}; {})",
        money(r.baseline_cost),
        r.baseline.target.as_deref().unwrap_or("no priced target"),
        r.baseline.chosen_by
    );
    let _ = writeln!(o, "savings         {}", percent(r.savings_ratio));
    let _ = writeln!(o, "latency         p50 {}, p95 {}", opt_ms(r.p50_ms), opt_ms(r.p95_ms));
    let _ = writeln!(
        o,
        "data-class violations  {} (independent check of {} dispatches)",
        r.pii_violations, r.dispatches
    );
    let _ = writeln!(o);
    let mut t = Table::new(&[
        "workload",
        "requests",
        "served",
        "fallbacks",
        "escal.",
        "retries",
        "failed",
        "halts",
        "refused",
        "tokens",
        "cost",
        "baseline",
        "savings",
        "p50",
        "p95",
    ]);
    for w in &r.workloads {
        t.row(vec![
            w.workload.clone(),
            w.requests.to_string(),
            w.served.to_string(),
            w.fallbacks.to_string(),
            w.escalations.to_string(),
            w.retries.to_string(),
            w.failed.to_string(),
            w.budget_halts.to_string(),
            w.refused.to_string(),
            (w.input_tokens + w.output_tokens).to_string(),
            money(w.cost),
            money(w.baseline_cost),
            percent(w.savings_ratio),
            opt_ms(w.p50_ms),
            opt_ms(w.p95_ms),
        ]);
    }
    o.push_str(&t.render());
    let _ = writeln!(o);
    let mut t = Table::new(&[
        "target",
        "dispatches",
        "answered",
        "429",
        "errors",
        "timeouts",
        "check fail",
        "skipped",
        "at limit",
        "tokens",
        "cost",
        "p50",
        "p95",
    ]);
    for x in &r.targets {
        t.row(vec![
            if x.default_profile {
                format!("{}*", x.target)
            } else {
                x.target.clone()
            },
            x.dispatches.to_string(),
            x.answered.to_string(),
            x.rate_limited.to_string(),
            x.errors.to_string(),
            x.timeouts.to_string(),
            x.check_failed.to_string(),
            x.skipped_unhealthy.to_string(),
            x.skipped_limit.to_string(),
            (x.input_tokens + x.output_tokens).to_string(),
            money(x.cost),
            opt_ms(x.p50_ms),
            opt_ms(x.p95_ms),
        ]);
    }
    o.push_str(&t.render());
    if r.targets.iter().any(|x| x.default_profile) {
        let _ = writeln!(
            o,
            "* no `simulate` line in the policy: assumed p50 {} ms, p95 {} ms, no errors",
            r.assumptions.default_p50_ms, r.assumptions.default_p95_ms
        );
    }
    for w in r.workloads.iter().filter(|w| w.first_halt.is_some()) {
        let _ = writeln!(
            o,
            "budget: `{}` halted at {}",
            w.workload,
            w.first_halt.as_deref().unwrap_or("-")
        );
    }
    for (name, n) in &r.unknown_workloads {
        let lines = if *n == 1 { "line names" } else { "lines name" };
        let _ = writeln!(
            o,
            "warning: {n} {lines} workload `{name}`, which the policy does not have"
        );
    }
    if r.reordered > 0 {
        let _ = writeln!(
            o,
            "note: {} lines were out of time order and replayed at the previous line's time",
            r.reordered
        );
    }
    o
}

/// A plain text table: the first column left-aligned, the rest right-aligned.
pub(crate) struct Table {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(head: &[&str]) -> Self {
        Table {
            head: head.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn render(&self) -> String {
        let mut widths: Vec<usize> = self.head.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in std::iter::once(&self.head).chain(&self.rows) {
            let mut line = String::new();
            for (i, (c, w)) in r.iter().zip(&widths).enumerate() {
                if i == 0 {
                    let _ = write!(line, "{c:<w$}");
                } else {
                    let _ = write!(line, "  {c:>w$}");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}
