//! Routes too deep or too large for the router to walk.
//!
//! The router walks a workload's route graph once per call, depth first,
//! visiting every candidate of every chain and every arm of every split and
//! match, and treats what lies more than [`MAX_ROUTE_DEPTH`] steps down, or
//! beyond [`MAX_ROUTE_VISITS`] visits, as broken: it never calls it. Nesting
//! inside one route is bounded by the pre-scan, but references to named
//! routes are not, so a chain of named routes (`route r1 = r2`, …) or routes
//! referred to from several places (each place walks them again) can pass
//! those limits. Both are errors here, so a checked policy never meets them.
//!
//! - `R0214`: a workload whose route goes deeper than the router follows.
//! - `R0215`: a workload whose route has more steps than the router walks.
//!
//! Both numbers are properties of the node, not of the workload: each node's
//! height and walk size are computed once, bottom-up, over an iterative
//! post-order of the whole graph.

use std::collections::HashMap;

use router_core::{MAX_ROUTE_DEPTH, MAX_ROUTE_VISITS, NodeId};

use super::{children, q};
use crate::ast_to_ir::Lowered;
use crate::code::Code;
use crate::diagnostic::Diag;
use crate::errors::{RouteTooDeepError, RouteTooLargeError};
use crate::report::CheckReport;
use crate::walk;

/// Per node: the most steps down to a leaf, and the visits a walk from it
/// makes (itself included), saturating.
#[derive(Clone, Copy)]
struct Size {
    height: u64,
    visits: u64,
}

pub(super) fn check(lowered: &Lowered, report: &mut CheckReport) {
    let policy = &lowered.policy;
    let roots = policy.workloads.iter().map(|w| w.route);
    let mut sizes: HashMap<NodeId, Size> = HashMap::new();
    for node in walk::postorder(roots, |n| children(policy, n)) {
        // A child not sized yet closes a cycle (reported as `R0201`).
        let below: Vec<Size> = children(policy, node)
            .iter()
            .filter_map(|c| sizes.get(c).copied())
            .collect();
        let size = Size {
            height: below.iter().map(|s| s.height.saturating_add(1)).max().unwrap_or(0),
            visits: below.iter().fold(1u64, |sum, s| sum.saturating_add(s.visits)),
        };
        sizes.insert(node, size);
    }
    for wid in policy.workload_ids() {
        let root = policy.workload(wid).route;
        let Some(size) = sizes.get(&root) else { continue };
        if size.height > u64::from(MAX_ROUTE_DEPTH) {
            too_deep(lowered, wid, &sizes, size.height, report);
        } else if size.visits > u64::from(MAX_ROUTE_VISITS) {
            too_large(lowered, wid, size.visits, report);
        }
    }
}

fn too_deep(
    lowered: &Lowered,
    wid: router_core::WorkloadId,
    sizes: &HashMap<NodeId, Size>,
    height: u64,
    report: &mut CheckReport,
) {
    let policy = &lowered.policy;
    let info = &lowered.info;
    let w = policy.workload(wid);
    let span = info
        .workloads
        .get(wid.0 as usize)
        .and_then(|i| i.route)
        .unwrap_or_else(|| info.head(w.route));
    let mut diag = Diag::at(
        Code::R0214,
        format!(
            "workload {} routes {height} steps deep; the router follows {MAX_ROUTE_DEPTH}",
            q(&w.name)
        ),
        &info.src,
        span,
        format!("{} starts here", q(&w.name)),
    );
    // Down the deepest path to the first step past the limit.
    let deepest = |n: NodeId| {
        children(policy, n)
            .into_iter()
            .filter_map(|c| sizes.get(&c).map(|s| (s.height, c)))
            .max_by_key(|(h, _)| *h)
            .map(|(_, c)| c)
    };
    let mut at = w.route;
    for _ in 0..MAX_ROUTE_DEPTH {
        match deepest(at) {
            Some(c) => at = c,
            None => break,
        }
    }
    if let Some(next) = deepest(at) {
        let what = match policy.routes.get(next).and_then(|n| n.name.as_ref()) {
            Some(name) => format!("route {} is step {}: never called", q(name), MAX_ROUTE_DEPTH + 1),
            None => format!("step {}: never called", MAX_ROUTE_DEPTH + 1),
        };
        diag = diag.label(info.edge(at, next), what);
    }
    diag = diag.help(format!(
        "each route a call passes through, named or written inline, is one step; the router treats whatever lies more than {MAX_ROUTE_DEPTH} steps down as broken and never calls it: refer to the targets directly rather than through a long chain of routes"
    ));
    report.error(RouteTooDeepError {
        workload: w.name.clone(),
        depth: height,
        diag,
    });
}

fn too_large(lowered: &Lowered, wid: router_core::WorkloadId, visits: u64, report: &mut CheckReport) {
    let policy = &lowered.policy;
    let info = &lowered.info;
    let w = policy.workload(wid);
    let span = info
        .workloads
        .get(wid.0 as usize)
        .and_then(|i| i.route)
        .unwrap_or_else(|| info.head(w.route));
    let shown = if visits == u64::MAX {
        "more than 18446744073709551614".to_string()
    } else {
        visits.to_string()
    };
    let diag = Diag::at(
        Code::R0215,
        format!(
            "workload {} has {shown} route steps to walk; the router walks {MAX_ROUTE_VISITS} per call",
            q(&w.name)
        ),
        &info.src,
        span,
        format!("{} starts here", q(&w.name)),
    )
    .help(format!(
        "the router walks every candidate and every arm once for each place its route is referred to, so routes that refer to a shared route several times multiply; past {MAX_ROUTE_VISITS} steps it treats the rest as broken and never calls it: refer to each shared route from fewer places, or list targets directly"
    ));
    report.error(RouteTooLargeError {
        workload: w.name.clone(),
        steps: visits,
        diag,
    });
}
