//! Graph checks over the lowered policy: everything that needs names
//! resolved and the route graph built.
//!
//! - `cycles`: routes that reach themselves (`R0201`), and workloads whose
//!   answers are judged, through `evaluator` checks, by themselves (`R0213`).
//! - `paths`: what each workload can reach, over every path: data class
//!   (`R0202`), eligibility (`R0203`), capabilities (`R0207`), token limits
//!   (`R0208`), prices under a dollar limit (`R0209`).
//! - `budgets`: budget lines smaller than one call's reservation (`W0309`),
//!   run from `paths` with the targets each workload reaches.
//! - `bounds`: a worst case per call above the workload's `max_cost`
//!   (`W0311`), run from `paths`.
//! - `recovery`: `stream_recovery continue` with no reachable model that
//!   accepts a prefill (`W0310`), run from `paths` likewise.
//! - `chains`: the order attempts happen in: same provider twice in a row
//!   (`W0304`), targets never tried (`W0305`).
//! - `depth`: routes deeper (`R0214`) or larger (`R0215`) than the router
//!   walks, through references to named routes.
//! - `usage`: unused providers, routes and models, and an empty policy
//!   (`W0301`–`W0303`, `W0307`).
//! - `matches`: `match` arms that can never be taken (`R0206`), run during
//!   lowering where the arms' text is at hand.
//!
//! Every walk is iterative (`crate::walk`) or bounded by the router's depth
//! limit, and cycle-safe, so a policy with a cycle, or a chain of 100,000
//! named routes, still gets every other check.

mod bounds;
mod budgets;
mod chains;
mod cycles;
mod depth;
pub(crate) mod matches;
mod paths;
mod recovery;
mod usage;

use router_core::{NodeId, Policy};

use crate::ast_to_ir::Lowered;
use crate::report::CheckReport;

/// Runs every graph check, adding what it finds to `report`.
pub(crate) fn run(lowered: &Lowered, report: &mut CheckReport) {
    cycles::check(lowered, report);
    // Round a cycle every route is infinitely deep; the cycle says it.
    if !report.errors().iter().any(|e| e.code() == crate::code::Code::R0201) {
        depth::check(lowered, report);
    }
    let judged_by = paths::check(lowered, report);
    cycles::evaluators(lowered, &judged_by, report);
    chains::check(lowered, report);
    // With a name unresolved, what is used cannot be judged: the typo'd
    // reference was probably meant for the "unused" item.
    if !report.errors().iter().any(|e| e.code() == crate::code::Code::R0101) {
        usage::check(lowered, report);
    }
}

/// A node's children, empty for an id from nowhere.
pub(crate) fn children(policy: &Policy, node: NodeId) -> Vec<NodeId> {
    policy.routes.get(node).map(|n| n.kind.children()).unwrap_or_default()
}

/// `` `name` `` in backticks.
pub(crate) fn q(name: &str) -> String {
    format!("`{name}`")
}
