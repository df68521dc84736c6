//! Route cycles (`R0201`): a route that reaches itself would loop forever.
//! Each strongly connected component with a cycle is one error showing the
//! whole cycle, every reference on it labelled.

use petgraph::algo::tarjan_scc;
use router_core::NodeId;

use super::{children, q};
use crate::ast_to_ir::Lowered;
use crate::code::Code;
use crate::diagnostic::Diag;
use crate::errors::RouteCycleError;
use crate::report::CheckReport;

pub(super) fn check(lowered: &Lowered, report: &mut CheckReport) {
    let policy = &lowered.policy;
    let graph = policy.routes.petgraph();
    for scc in tarjan_scc(graph) {
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
        let Some(path) = cycle_through(lowered, start, &nodes) else {
            continue;
        };
        report_cycle(lowered, &path, report);
    }
}

/// A path `start → … → start` inside the component, by breadth-first search
/// (so the shortest such cycle).
fn cycle_through(lowered: &Lowered, start: NodeId, component: &[NodeId]) -> Option<Vec<NodeId>> {
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
