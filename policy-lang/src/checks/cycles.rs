//! Cycles, each strongly connected component with one reported as one
//! error showing the whole cycle, every reference on it labelled:
//!
//! - route cycles (`R0201`): a route that reaches itself would loop forever;
//! - evaluator cycles (`R0213`): a workload whose answers an evaluator
//!   judges, where that evaluator's answers (directly or through other
//!   evaluators) are judged by the workload itself, so judging never ends.
//!
//! Components come from petgraph's `kosaraju_scc`, whose depth-first
//! searches keep their own stack: its `tarjan_scc` recurses once per node
//! and overflowed the stack on a long chain of named routes.

use std::collections::{HashMap, HashSet, VecDeque};

use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use router_core::{NodeId, WorkloadId};

use super::{children, q};
use crate::ast_to_ir::Lowered;
use crate::code::Code;
use crate::diagnostic::Diag;
use crate::errors::{EvaluatorCycleError, RouteCycleError};
use crate::report::CheckReport;

pub(super) fn check(lowered: &Lowered, report: &mut CheckReport) {
    let policy = &lowered.policy;
    let graph = policy.routes.petgraph();
    for scc in kosaraju_scc(graph) {
        let nodes: Vec<NodeId> = scc.iter().map(|i| NodeId(i.index() as u32)).collect();
        let self_loop = nodes.len() == 1 && children(policy, nodes[0]).contains(&nodes[0]);
        if nodes.len() < 2 && !self_loop {
            continue;
        }
        // Start at the first named route (every cycle passes through one:
        // only named routes can be referred to).
        let Some(start) = nodes
            .iter()
            .copied()
            .filter(|n| policy.routes.get(*n).is_some_and(|r| r.name.is_some()))
            .min()
        else {
            continue;
        };
        let members: HashSet<NodeId> = nodes.iter().copied().collect();
        let Some(path) = cycle_through(lowered, start, &members) else {
            continue;
        };
        report_cycle(lowered, &path, report);
    }
}

/// A path `start → … → start` inside the component, by breadth-first search
/// (so the shortest such cycle).
fn cycle_through(lowered: &Lowered, start: NodeId, component: &HashSet<NodeId>) -> Option<Vec<NodeId>> {
    let policy = &lowered.policy;
    let mut parent: std::collections::HashMap<NodeId, NodeId> = std::collections::HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for child in children(policy, node) {
            if !component.contains(&child) {
                continue;
            }
            if child == start {
                let mut path = vec![start, node];
                let mut at = node;
                while at != start {
                    at = *parent.get(&at)?;
                    path.push(at);
                }
                path.reverse();
                return Some(path);
            }
            if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(child) {
                e.insert(node);
                queue.push_back(child);
            }
        }
    }
    None
}

fn report_cycle(lowered: &Lowered, path: &[NodeId], report: &mut CheckReport) {
    let policy = &lowered.policy;
    let info = &lowered.info;
    let name = |n: NodeId| policy.routes.get(n).and_then(|r| r.name.clone());
    let names: Vec<String> = path.iter().filter_map(|n| name(*n)).collect();
    // Each hop into a named route is a reference written in the policy.
    let mut hops = Vec::new();
    let mut current_named = names.first().cloned().unwrap_or_default();
    for pair in path.windows(2) {
        if let Some(to) = name(pair[1]) {
            hops.push((info.edge(pair[0], pair[1]), current_named.clone(), to.clone()));
            current_named = to;
        }
    }
    let shown = names.iter().map(|n| q(n)).collect::<Vec<_>>().join(" → ");
    let Some((first_span, from, to)) = hops.first() else {
        return;
    };
    let mut diag = Diag::at(
        Code::R0201,
        format!("route cycle: {shown}"),
        &info.src,
        *first_span,
        format!("{} uses {}", q(from), q(to)),
    );
    for (span, from, to) in hops.iter().skip(1) {
        diag = diag.label(*span, format!("{} uses {}", q(from), q(to)));
    }
    diag =
        diag.help("a route cannot reach itself: a call would loop forever; end one of these routes in targets instead");
    report.error(RouteCycleError { cycle: names, diag });
}

/// Evaluator cycles over `judged_by`: `(workload, escalate node, evaluator)`
/// for every `evaluator` check a workload can reach, in the order found.
pub(super) fn evaluators(lowered: &Lowered, judged_by: &[(WorkloadId, NodeId, WorkloadId)], report: &mut CheckReport) {
    let count = lowered.policy.workloads.len();
    // Adjacency in the order found, so the cycle shown is stable.
    let mut next: Vec<Vec<(usize, NodeId)>> = vec![Vec::new(); count];
    let mut graph: DiGraph<(), ()> = DiGraph::with_capacity(count, judged_by.len());
    for _ in 0..count {
        graph.add_node(());
    }
    for (w, node, e) in judged_by {
        let (w, e) = (w.0 as usize, e.0 as usize);
        if w < count && e < count && !next[w].iter().any(|(x, _)| *x == e) {
            next[w].push((e, *node));
            graph.add_edge(NodeIndex::new(w), NodeIndex::new(e), ());
        }
    }
    for scc in kosaraju_scc(&graph) {
        let members: Vec<usize> = scc.iter().map(|i| i.index()).collect();
        let Some(start) = members.iter().copied().min() else {
            continue;
        };
        let self_loop = next[start].iter().any(|(e, _)| *e == start);
        if members.len() < 2 && !self_loop {
            continue;
        }
        let members: HashSet<usize> = members.into_iter().collect();
        if let Some(hops) = judge_cycle(&next, start, &members) {
            report_judge_cycle(lowered, &hops, report);
        }
    }
}

/// The shortest cycle `start → … → start` inside the component, as hops
/// `(workload, escalate node, evaluator)`.
fn judge_cycle(
    next: &[Vec<(usize, NodeId)>],
    start: usize,
    component: &HashSet<usize>,
) -> Option<Vec<(usize, NodeId, usize)>> {
    let mut parent: HashMap<usize, (usize, NodeId)> = HashMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(w) = queue.pop_front() {
        for (e, node) in next.get(w)? {
            if !component.contains(e) {
                continue;
            }
            if *e == start {
                let mut hops = vec![(w, *node, start)];
                let mut at = w;
                while at != start {
                    let (from, via) = *parent.get(&at)?;
                    hops.push((from, via, at));
                    at = from;
                }
                hops.reverse();
                return Some(hops);
            }
            if let std::collections::hash_map::Entry::Vacant(v) = parent.entry(*e) {
                v.insert((w, *node));
                queue.push_back(*e);
            }
        }
    }
    None
}

fn report_judge_cycle(lowered: &Lowered, hops: &[(usize, NodeId, usize)], report: &mut CheckReport) {
    let policy = &lowered.policy;
    let info = &lowered.info;
    let name = |w: usize| policy.workload(WorkloadId(w as u32)).name.clone();
    let mut names: Vec<String> = hops.iter().map(|(w, _, _)| name(*w)).collect();
    if let Some(first) = names.first().cloned() {
        names.push(first);
    }
    let shown = names.iter().map(|n| q(n)).collect::<Vec<_>>().join(" → ");
    let label = |(w, node, e): &(usize, NodeId, usize)| {
        let span = info.evaluators.get(node).copied().unwrap_or_else(|| info.head(*node));
        (span, format!("{} is judged by {}", q(&name(*w)), q(&name(*e))))
    };
    let Some((span, text)) = hops.first().map(label) else {
        return;
    };
    let mut diag = Diag::at(Code::R0213, format!("evaluator cycle: {shown}"), &info.src, span, text);
    for hop in hops.iter().skip(1) {
        let (span, text) = label(hop);
        diag = diag.label(span, text);
    }
    diag = diag.help(
        "judging an answer calls the evaluator, whose own answers are judged in turn: around this cycle that never ends, so the runtime fails these checks at its nesting limit and they can never pass; judge with a workload whose routes have no `evaluator` check leading back here",
    );
    report.error(EvaluatorCycleError { cycle: names, diag });
}
