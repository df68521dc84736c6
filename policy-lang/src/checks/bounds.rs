//! A workload whose worst case costs more than its `max_cost` (`W0311`).
//!
//! `max_cost` is checked per attempt: the engine drops a target whose one
//! call is estimated above it. A call that falls back and retries pays for
//! every attempt, so its worst case (`router_core::worst_case`, each
//! attempt at most `max_cost`) can exceed the ceiling the author wrote; say
//! so, with the figures.

use router_core::{WorkloadId, worst_case};

use super::q;
use crate::ast_to_ir::Lowered;
use crate::code::Code;
use crate::diagnostic::Diag;
use crate::errors::WorstCaseOverMaxCostWarning;
use crate::report::CheckReport;

pub(super) fn check(lowered: &Lowered, wid: WorkloadId, report: &mut CheckReport) {
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
