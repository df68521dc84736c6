//! The order attempts happen in.
//!
//! - `W0304`: two consecutive candidates of a chain at the same provider,
//!   without `allow_repeat`: when the first fails (rate limit, outage) the
//!   second usually fails the same way.
//! - `W0305`: targets never tried: a second occurrence of a target in one
//!   chain, or a target that every workload reaching it can only get to
//!   after its `max_attempts` are spent. Each attempt costs at least one, so
//!   the count is a lower bound and the warning is never a false alarm.

use std::collections::{HashMap, HashSet};

use router_core::{NodeId, NodeKind, ProviderId, Strategy, TargetId, WorkloadId};

use super::{children, q};
use crate::ast_to_ir::Lowered;
use crate::code::Code;
use crate::diagnostic::Diag;
use crate::errors::{RepeatedProviderWarning, UnreachableTargetWarning};
use crate::report::CheckReport;
use crate::walk;

pub(super) fn check(lowered: &Lowered, report: &mut CheckReport) {
    repeated_providers(lowered, report);
    duplicates(lowered, report);
    beyond_max_attempts(lowered, report);
}

/// The candidates of a node whose order is fixed: fallbacks (after the
/// free-first sort), `select first` and escalations.
fn ordered_children(kind: &NodeKind) -> Option<(Vec<NodeId>, bool)> {
    match kind {
        NodeKind::Fallback { children, rules, .. } => Some((children.clone(), rules.allow_repeat)),
        NodeKind::Select {
            strategy: Strategy::First,
            children,
            rules,
        } => Some((children.iter().map(|(_, c)| *c).collect(), rules.allow_repeat)),
        _ => None,
    }
}

/// The target a node certainly tries first (`last == false`) or last.
/// A loop, at most the runtime's depth limit long (beyond it, or round a
/// cycle, nothing is certain and the cycle or depth check reports it).
fn end_target(lowered: &Lowered, mut node: NodeId, last: bool) -> Option<TargetId> {
    for _ in 0..=router_core::MAX_ROUTE_DEPTH {
        match &lowered.policy.routes.get(node)?.kind {
            NodeKind::Target { target } => return Some(*target),
            other => {
                let (children, _) = ordered_children(other)?;
                node = *if last { children.last() } else { children.first() }?;
            }
        }
    }
    None
}

fn repeated_providers(lowered: &Lowered, report: &mut CheckReport) {
    let policy = &lowered.policy;
    let info = &lowered.info;
    for node in policy.routes.ids() {
        let Some((children, allow_repeat)) = policy.routes.get(node).and_then(|n| ordered_children(&n.kind)) else {
            continue;
        };
        if allow_repeat {
            continue;
        }
        for pair in children.windows(2) {
            let (Some(a), Some(b)) = (end_target(lowered, pair[0], true), end_target(lowered, pair[1], false)) else {
                continue;
            };
            let pa: ProviderId = policy.target(a).provider;
            if pa != policy.target(b).provider {
                continue;
            }
            let provider = &policy.provider(pa).name;
            let diag = Diag::at(
                Code::W0304,
                format!("provider {} is tried twice in a row", q(provider)),
                &info.src,
                info.edge(node, pair[1]),
                format!("then {}", q(&policy.target_label(b))),
            )
            .label(info.edge(node, pair[0]), format!("{} first", q(&policy.target_label(a))))
            .help(format!(
                "when {} fails (rate limit, outage) the next attempt there usually fails too; put another provider between them, or add `allow_repeat` to the chain's rules if you mean it",
                q(provider)
            ));
            report.warning(RepeatedProviderWarning {
                provider: provider.clone(),
                diag,
            });
        }
    }
}

fn duplicates(lowered: &Lowered, report: &mut CheckReport) {
    let policy = &lowered.policy;
    let info = &lowered.info;
    for node in policy.routes.ids() {
        let Some((children, _)) = policy.routes.get(node).and_then(|n| ordered_children(&n.kind)) else {
            continue;
        };
        let mut seen: HashMap<TargetId, NodeId> = HashMap::new();
        for child in children {
            let Some(NodeKind::Target { target }) = policy.routes.get(child).map(|n| &n.kind) else {
                continue;
            };
            match seen.get(target) {
                Some(first) => {
                    let label = policy.target_label(*target);
                    let diag = Diag::at(
                        Code::W0305,
                        format!("target {} is never tried here: it is already in this chain", q(&label)),
                        &info.src,
                        info.edge(node, child),
                        "already tried",
                    )
                    .label(info.edge(node, *first), "tried here first")
                    .help("a chain moves on once a target fails; remove the repeat, or use `retry N` to try a target again");
                    report.warning(UnreachableTargetWarning { target: label, diag });
                }
                None => {
                    seen.insert(*target, child);
                }
            }
        }
    }
}

/// The fewest attempts each node uses before it gives up: one per target,
/// all candidates of a chain, the cheapest arm of a split or match.
/// Bottom-up over an iterative post-order; an edge closing a cycle counts
/// nothing.
fn min_exhaust(lowered: &Lowered) -> HashMap<NodeId, u32> {
    let policy = &lowered.policy;
    let roots = policy.workloads.iter().map(|w| w.route);
    let mut memo: HashMap<NodeId, u32> = HashMap::new();
    for node in walk::postorder(roots, |n| children(policy, n)) {
        let Some(kind) = policy.routes.get(node).map(|n| &n.kind) else {
            continue;
        };
        let below = kind.children().into_iter().map(|c| memo.get(&c).copied().unwrap_or(0));
        let n = match kind {
            NodeKind::Target { .. } => 1,
            NodeKind::Unresolved => 0,
            NodeKind::Fallback { .. } | NodeKind::Select { .. } | NodeKind::Escalate { .. } => {
                below.fold(0u32, u32::saturating_add)
            }
            NodeKind::Split { .. } | NodeKind::Match { .. } => below.min().unwrap_or(0),
        };
        memo.insert(node, n);
    }
    memo
}

fn beyond_max_attempts(lowered: &Lowered, report: &mut CheckReport) {
    let policy = &lowered.policy;
    let info = &lowered.info;
    let memo = min_exhaust(lowered);
    let mut in_budget: HashSet<NodeId> = HashSet::new();
    // A target reached only too late: the first workload seen and its limit.
    let mut too_late: HashMap<NodeId, (WorkloadId, u32)> = HashMap::new();
    for wid in policy.workload_ids() {
        let max = u32::from(policy.max_attempts(wid));
        let mut seen: HashSet<(NodeId, u32)> = HashSet::new();
        let mut work = vec![(policy.workload(wid).route, 0u32)];
        while let Some((node, before)) = work.pop() {
            let before = before.min(max);
            if !seen.insert((node, before)) {
                continue;
            }
            let Some(kind) = policy.routes.get(node).map(|n| n.kind.clone()) else {
                continue;
            };
            match &kind {
                NodeKind::Target { .. } => {
                    if before < max {
                        in_budget.insert(node);
                    } else {
                        too_late.entry(node).or_insert((wid, max));
                    }
                }
                NodeKind::Unresolved => {}
                NodeKind::Fallback { children, .. } | NodeKind::Escalate { children, .. } => {
                    let mut cum = before;
                    for c in children {
                        work.push((*c, cum));
                        cum = cum.saturating_add(memo.get(c).copied().unwrap_or(0));
                    }
                }
                NodeKind::Select {
                    strategy: Strategy::First,
                    children,
                    ..
                } => {
                    let mut cum = before;
                    for (_, c) in children {
                        work.push((*c, cum));
                        cum = cum.saturating_add(memo.get(c).copied().unwrap_or(0));
                    }
                }
                // Ordered at run time (cost, latency, weight): any candidate
                // may come first.
                NodeKind::Select { children, .. } => {
                    for (_, c) in children {
                        work.push((*c, before));
                    }
                }
                NodeKind::Split { .. } | NodeKind::Match { .. } => {
                    for c in kind.children() {
                        work.push((c, before));
                    }
                }
            }
        }
    }
    let mut late: Vec<(NodeId, (WorkloadId, u32))> =
        too_late.into_iter().filter(|(n, _)| !in_budget.contains(n)).collect();
    late.sort_by_key(|(n, _)| *n);
    for (node, (wid, max)) in late {
        let Some(NodeKind::Target { target }) = policy.routes.get(node).map(|n| &n.kind) else {
            continue;
        };
        let label = policy.target_label(*target);
        let w = policy.workload(wid);
        let mut diag = Diag::at(
            Code::W0305,
            format!(
                "target {} is never tried: workload {} gives up after {max} attempts",
                q(&label),
                q(&w.name)
            ),
            &info.src,
            info.head(node),
            format!("at least {max} attempts come before this"),
        );
        if let Some(span) = info.workloads.get(wid.0 as usize).and_then(|x| x.max_attempts) {
            diag = diag.label(span, "the limit");
        }
        diag = diag.help(format!(
            "raise the workload's `max_attempts` (or `defaults {{ max_attempts N }}`), or move {} earlier",
            q(&label)
        ));
        report.warning(UnreachableTargetWarning { target: label, diag });
    }
}
