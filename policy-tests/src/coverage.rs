//! What of the route graph no test reached: route nodes, split arms,
//! `select` candidates never tried first, `match` branches and targets,
//! over every workload's route.
//!
//! A test reaches what the engine walked for its call: from the workload's
//! route down, through the split arm its key picked and the `match` branch
//! that decided (the explanation's steps), into every child of the other
//! combinators. A target is reached when some test's plan holds it.

use std::collections::{BTreeSet, HashSet};

use router_core::{Decision, MatchBranch, NodeId, NodeKind, Policy, Step, TargetId, condition_text, node_text};

/// One thing a test can reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Item {
    Node(NodeId),
    /// A split's arm (0-based).
    SplitArm(NodeId, usize),
    /// A `select`'s candidate (0-based) that some call tried first among
    /// the select's own (only candidates that are targets).
    SelectArm(NodeId, usize),
    /// A `match` branch: `Some(i)` for the `i`th `when`, `None` for `else`.
    Branch(NodeId, Option<usize>),
    Target(TargetId),
}

/// What the tests reached, out of everything reachable from a workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coverage {
    /// How many things there are to reach.
    pub total: usize,
    /// How many some test reached.
    pub reached: usize,
    /// What no test reached, in words, in graph order.
    pub missed: Vec<String>,
}

impl Coverage {
    /// Reached as a percentage of all, 100 when there is nothing to reach.
    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            100.0
        } else {
            self.reached as f64 * 100.0 / self.total as f64
        }
    }
}

/// Coverage of `policy`'s routes by these decisions.
pub fn coverage<'a>(policy: &Policy, decisions: impl IntoIterator<Item = &'a Decision>) -> Coverage {
    let mut all: BTreeSet<Item> = BTreeSet::new();
    for w in &policy.workloads {
        walk(policy, w.route, &mut all, |_, _| None);
    }
    let selects: Vec<NodeId> = all
        .iter()
        .filter_map(|i| match i {
            Item::Node(n) => Some(*n),
            _ => None,
        })
        .collect();
    for n in selects {
        if let Some(NodeKind::Select { children, .. }) = policy.routes.get(n).map(|x| &x.kind) {
            for (i, (_, child)) in children.iter().enumerate() {
                if matches!(
                    policy.routes.get(*child).map(|x| &x.kind),
                    Some(NodeKind::Target { .. })
                ) {
                    all.insert(Item::SelectArm(n, i));
                }
            }
        }
    }
    let mut reached: HashSet<Item> = HashSet::new();
    for d in decisions {
        let explain = d.explain();
        let root = policy.workload(explain.workload).route;
        let steps = &explain.steps;
        let mut seen = BTreeSet::new();
        walk(policy, root, &mut seen, |node, kind| {
            steps
                .iter()
                .find_map(|s| match (s, kind) {
                    (Step::Split { node: n, arm, .. }, NodeKind::Split { .. }) if *n == node => {
                        Some(arm.map(usize::from).map_or(Choice::Nothing, Choice::Arm))
                    }
                    (Step::Match { node: n, branch }, NodeKind::Match { .. }) if *n == node => Some(match branch {
                        MatchBranch::When(i) => Choice::Arm(usize::from(*i)),
                        MatchBranch::Else => Choice::Else,
                        MatchBranch::None => Choice::Nothing,
                    }),
                    _ => None,
                })
                // A split or match the engine did not record was not walked.
                .or(match kind {
                    NodeKind::Split { .. } | NodeKind::Match { .. } => Some(Choice::Nothing),
                    _ => None,
                })
        });
        // Targets count when a plan holds them, not when walked past.
        reached.extend(seen.into_iter().filter(|i| !matches!(i, Item::Target(_))));
        reached.extend(d.plan().attempts().iter().map(|a| Item::Target(a.target)));
        // A select's arm counts when it is the first of its attempts.
        let mut firsts: Vec<NodeId> = Vec::new();
        for a in d.plan().attempts() {
            let Some(select) = a.placed_by.filter(|s| !firsts.contains(s)) else {
                continue;
            };
            firsts.push(select);
            if let Some(NodeKind::Select { children, .. }) = policy.routes.get(select).map(|x| &x.kind)
                && let Some(i) = children.iter().position(|(_, c)| *c == a.node)
            {
                reached.insert(Item::SelectArm(select, i));
            }
        }
    }
    let missed: Vec<String> = all
        .iter()
        .filter(|i| !reached.contains(i))
        .map(|i| describe(policy, *i))
        .collect();
    Coverage {
        total: all.len(),
        reached: all.len() - missed.len(),
        missed,
    }
}

/// Which children of a split or match a call went into.
enum Choice {
    Arm(usize),
    Else,
    Nothing,
}

/// Collects what is reachable from `root`; at a split or match, `choose`
/// says which child was taken (`None`: every child, for the universe).
fn walk(policy: &Policy, root: NodeId, out: &mut BTreeSet<Item>, choose: impl Fn(NodeId, &NodeKind) -> Option<Choice>) {
    let mut stack = vec![root];
    let mut visited = HashSet::new();
    while let Some(id) = stack.pop() {
        if !visited.insert(id) {
            continue;
        }
        let Some(node) = policy.routes.get(id) else { continue };
        match &node.kind {
            NodeKind::Target { target } => {
                out.insert(Item::Target(*target));
                continue;
            }
            NodeKind::Unresolved => continue,
            _ => {
                out.insert(Item::Node(id));
            }
        }
        match (&node.kind, choose(id, &node.kind)) {
            (NodeKind::Split { arms, .. }, None) => {
                for (i, (_, child)) in arms.iter().enumerate() {
                    out.insert(Item::SplitArm(id, i));
                    stack.push(*child);
                }
            }
            (NodeKind::Split { arms, .. }, Some(Choice::Arm(i))) => {
                if let Some((_, child)) = arms.get(i) {
                    out.insert(Item::SplitArm(id, i));
                    stack.push(*child);
                }
            }
            (NodeKind::Match { arms, otherwise }, None) => {
                for (i, (_, child)) in arms.iter().enumerate() {
                    out.insert(Item::Branch(id, Some(i)));
                    stack.push(*child);
                }
                if let Some(o) = otherwise {
                    out.insert(Item::Branch(id, None));
                    stack.push(*o);
                }
            }
            (NodeKind::Match { arms, .. }, Some(Choice::Arm(i))) => {
                if let Some((_, child)) = arms.get(i) {
                    out.insert(Item::Branch(id, Some(i)));
                    stack.push(*child);
                }
            }
            (NodeKind::Match { otherwise: Some(o), .. }, Some(Choice::Else)) => {
                out.insert(Item::Branch(id, None));
                stack.push(*o);
            }
            (NodeKind::Split { .. } | NodeKind::Match { .. }, Some(_)) => {}
            (kind, _) => {
                // Children pushed in reverse so they pop in written order.
                stack.extend(kind.children().into_iter().rev());
            }
        }
    }
}

fn describe(policy: &Policy, item: Item) -> String {
    match item {
        Item::Node(id) => format!("route node {}", node_text(policy, id)),
        Item::SplitArm(id, i) => {
            let weight = match policy.routes.get(id).map(|n| &n.kind) {
                Some(NodeKind::Split { arms, .. }) => {
                    arms.get(i).map(|(w, c)| format!("{w}: {}", node_text(policy, *c)))
                }
                _ => None,
            };
            format!(
                "{} arm {} ({})",
                node_text(policy, id),
                i + 1,
                weight.unwrap_or_default()
            )
        }
        Item::Branch(id, Some(i)) => {
            let cond = match policy.routes.get(id).map(|n| &n.kind) {
                Some(NodeKind::Match { arms, .. }) => arms.get(i).map(|(c, _)| condition_text(c)),
                _ => None,
            };
            format!("{} branch `when {}`", node_text(policy, id), cond.unwrap_or_default())
        }
        Item::Branch(id, None) => format!("{} branch `else`", node_text(policy, id)),
        Item::SelectArm(id, i) => {
            let child = match policy.routes.get(id).map(|n| &n.kind) {
                Some(NodeKind::Select { children, .. }) => children.get(i).map(|(_, c)| node_text(policy, *c)),
                _ => None,
            };
            format!(
                "{} arm {} ({}) never tried first",
                node_text(policy, id),
                i + 1,
                child.unwrap_or_default()
            )
        }
        Item::Target(t) => format!("target `{}`", policy.target_label(t)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use policy_lang::{SourceFile, compile};

    use super::*;
    use crate::run::{Mode, run_all};

    #[test]
    fn what_no_test_reached_is_listed() {
        let text = r#"
            provider free { adapter mock; tier free; data public; model small { price free } }
            provider paid { adapter mock; tier paid; data public; model big { price $1/M in, $5/M out } }
            workload w {
              data public
              route match {
                when has tools => paid/big
                else => free/small
              }
            }
            test "plain" { workload w; expect first free/small }
        "#;
        let compiled = compile(&[SourceFile::new("p.route", text)]).unwrap();
        let results = run_all(compiled.policy(), compiled.tests(), None, Mode::default());
        let c = coverage(compiled.policy(), results.iter().map(|r| &r.decision));
        assert_eq!(
            c.missed,
            [
                "match (n0) branch `when has tools`".to_string(),
                "target `paid/big`".to_string()
            ]
        );
        assert_eq!((c.reached, c.total), (3, 5));
        assert!((c.percent() - 60.0).abs() < 1e-9);
    }
}
