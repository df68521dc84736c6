//! Iterative walks of the route graph. Syntactic nesting is bounded by the
//! pre-scan, but a chain of named routes (`route r1 = r2`, `route r2 = r3`,
//! …) is as deep as the policy is long: 100,000 routes fit under the file
//! size limit. So no walk recurses on the graph; each keeps its own stack.

use std::collections::HashSet;

use router_core::NodeId;

/// Every node reachable from `roots`, each once, children before parents
/// (post-order). An edge back to a node still being walked closes a cycle
/// (the cycle check reports it) and is skipped, so the order is a valid
/// bottom-up order for every other edge.
pub(crate) fn postorder(
    roots: impl IntoIterator<Item = NodeId>,
    children: impl Fn(NodeId) -> Vec<NodeId>,
) -> Vec<NodeId> {
    let mut seen: HashSet<NodeId> = HashSet::new();
    let mut out = Vec::new();
    // (node, its children, the next child to visit)
    let mut stack: Vec<(NodeId, Vec<NodeId>, usize)> = Vec::new();
    for root in roots {
        if !seen.insert(root) {
            continue;
        }
        stack.push((root, children(root), 0));
        while let Some((node, kids, next)) = stack.last_mut() {
            match kids.get(*next).copied() {
                Some(child) => {
                    *next += 1;
                    if seen.insert(child) {
                        let grandchildren = children(child);
                        stack.push((child, grandchildren, 0));
                    }
                }
                None => {
                    out.push(*node);
                    stack.pop();
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u32) -> impl Fn(NodeId) -> Vec<NodeId> {
        move |id: NodeId| {
            if id.0 + 1 < n {
                vec![NodeId(id.0 + 1)]
            } else {
                Vec::new()
            }
        }
    }

    #[test]
    fn children_come_before_parents() {
        assert_eq!(postorder([NodeId(0)], chain(3)), vec![NodeId(2), NodeId(1), NodeId(0)]);
    }

    #[test]
    fn a_long_chain_does_not_recurse() {
        let order = std::thread::scope(|s| {
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn_scoped(s, || postorder([NodeId(0)], chain(200_000)))
                .map(|h| h.join().unwrap_or_default())
                .unwrap_or_default()
        });
        assert_eq!(order.len(), 200_000);
        assert_eq!(order.first(), Some(&NodeId(199_999)));
    }

    #[test]
    fn a_cycle_is_walked_once() {
        let cyclic = |id: NodeId| vec![NodeId((id.0 + 1) % 3)];
        assert_eq!(postorder([NodeId(0)], cyclic), vec![NodeId(2), NodeId(1), NodeId(0)]);
    }

    #[test]
    fn shared_nodes_are_listed_once() {
        let diamond = |id: NodeId| match id.0 {
            0 => vec![NodeId(1), NodeId(2)],
            1 | 2 => vec![NodeId(3)],
            _ => Vec::new(),
        };
        assert_eq!(
            postorder([NodeId(0), NodeId(2)], diamond),
            vec![NodeId(3), NodeId(1), NodeId(2), NodeId(0)]
        );
    }
}
