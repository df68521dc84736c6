//! A workload whose worst case costs more than its `max_cost` (`W0311`),
//! or more than a whole dollar budget line (`W0312`).
//!
//! `max_cost` is checked per attempt: the engine drops a target whose one
//! call is estimated above it. A call that falls back and retries pays for
//! every attempt, so its worst case (`router_core::worst_case`, each
//! attempt at most `max_cost`) can exceed the ceiling the author wrote; say
//! so, with the figures.

use router_core::{WorkloadId, worst_case};

use super::q;
use crate::ast_to_ir::{BudgetLine, Lowered};
use crate::code::Code;
use crate::diagnostic::Diag;
use crate::errors::{WorstCaseOverBudgetWarning, WorstCaseOverMaxCostWarning};
use crate::report::CheckReport;

pub(super) fn check(lowered: &Lowered, wid: WorkloadId, report: &mut CheckReport) {
    over_max_cost(lowered, wid, report);
    over_budget(lowered, wid, report);
}

/// A dollar budget line smaller than one worst-case call: such a call is
/// refused before it starts (its reservation cannot be held), or, when its
/// estimate fits, can spend the whole line on fallbacks and retries.
fn over_budget(lowered: &Lowered, wid: WorkloadId, report: &mut CheckReport) {
    let policy = &lowered.policy;
    let w = policy.workload(wid);
    let Some(info) = lowered.info.workloads.get(wid.0 as usize) else {
        return;
    };
    let bound = worst_case(policy, wid);
    let Some(cost) = bound.cost else {
        return;
    };
    for (line, text, span) in &info.budgets {
        let limit = match line {
            BudgetLine::UsdPerDay => w.budget.usd_per_day,
            BudgetLine::UsdPerMonth => w.budget.usd_per_month,
            BudgetLine::TokensPerDay | BudgetLine::TokensPerMonth => None,
        };
        let Some(limit) = limit.filter(|l| cost > *l) else {
            continue;
        };
        let diag = Diag::at(
            Code::W0312,
            format!(
                "budget `{text}` of workload {} cannot cover one worst-case call ({cost})",
                q(&w.name)
            ),
            &lowered.info.src,
            *span,
            format!("one call can cost {cost}: {} attempts at most", bound.calls),
        )
        .help(format!(
            "at worst a call makes {} attempts, each at its model's whole context window, and costs {cost}, more than the whole `{text}` ({limit}); such a call either cannot reserve its estimate or spends the line on one call: raise the limit, or bound the call with `max_cost`, `max_tokens`, `retry` or `max_attempts` (`routec check --bounds` lists every workload's worst case)",
            bound.calls
        ));
        report.warning(WorstCaseOverBudgetWarning {
            workload: w.name.clone(),
            line: text.clone(),
            diag,
        });
    }
}

fn over_max_cost(lowered: &Lowered, wid: WorkloadId, report: &mut CheckReport) {
    let policy = &lowered.policy;
    let w = policy.workload(wid);
    let Some(limit) = w.max_cost_per_call else {
        return;
    };
    let Some(span) = lowered.info.workloads.get(wid.0 as usize).and_then(|i| i.max_cost) else {
        return;
    };
    let bound = worst_case(policy, wid);
    let Some(cost) = bound.cost.filter(|c| *c > limit) else {
        return;
    };
    let diag = Diag::at(
        Code::W0311,
        format!(
            "workload {} can cost {cost} per call, more than its `max_cost {limit}`",
            q(&w.name)
        ),
        &lowered.info.src,
        span,
        format!("checked per attempt; {} attempts at most", bound.calls),
    )
    .help(format!(
        "`max_cost` drops any target whose one attempt is estimated above it, but a call that retries and falls back pays for every attempt: at worst {} attempts, each up to `max_cost`, cost {cost}; lower `retry`, `max_attempts` or `max_tokens`, or raise `max_cost` if that is acceptable (`routec check --bounds` lists every workload's worst case)",
        bound.calls
    ));
    report.warning(WorstCaseOverMaxCostWarning {
        workload: w.name.clone(),
        diag,
    });
}
