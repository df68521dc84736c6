//! Drawings of the compiled route graph for `routec graph`: workloads, route
//! nodes and targets, in Graphviz DOT or Mermaid.
//!
//! Leaves are drawn as one box per target (two leaves naming the same model
//! meet at one box). An edge into a target whose provider may receive less
//! than `private` data is marked, because that is where data-class gates act:
//! dashed grey when every workload reaching it is within the provider's class
//! (a request that raises its class loses the edge), solid red when a
//! reaching workload's class is above it (a PII violation `check` reports).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::policy::Policy;
use crate::provider::{DataClass, TargetId};
use crate::route::{CmpOp, Condition, NodeId, NodeKind, NumericFact};
use crate::workload::WorkloadId;

/// Output format of [`draw`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrawFormat {
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// The provider takes `private`: nothing to flag.
    Plain,
    /// The provider takes less than `private`, but every reaching workload fits.
    Restricted,
    /// A reaching workload's class is above what the provider may receive.
    Violation,
}

enum Vertex {
    Workload(WorkloadId),
    Node(NodeId),
    Target(TargetId),
}

struct Edge {
    from: Vertex,
    to: Vertex,
    label: String,
    mark: Mark,
    /// The data classes involved, for marked edges: (reaching, allowed).
    classes: Option<(DataClass, DataClass)>,
}

/// A `when` condition as written in a policy.
pub fn condition_text(c: &Condition) -> String {
    let op = |op: &CmpOp| match op {
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
        CmpOp::Eq => "==",
        CmpOp::Ne => "!=",
    };
    let group = |c: &Condition| match c {
        Condition::All(_) | Condition::Any(_) => format!("({})", condition_text(c)),
        _ => condition_text(c),
    };
    match c {
        Condition::Compare { fact, op: o, value } => {
            let fact = match fact {
                NumericFact::InputTokens => "input_tokens",
                NumericFact::MaxOutputTokens => "max_output",
            };
            format!("{fact} {} {value}", op(o))
        }
        Condition::Has(f) => format!("has {}", feature_word(*f)),
        Condition::HasMetadata(k) => format!("has metadata.{k}"),
        Condition::TaskIs(t) => format!("task == {t}"),
        Condition::Metadata { key, op: o, value } => format!("metadata.{key} {} {value:?}", op(o)),
        Condition::Not(inner) => format!("not {}", group(inner)),
        Condition::All(cs) => cs.iter().map(group).collect::<Vec<_>>().join(" and "),
        Condition::Any(cs) => cs.iter().map(group).collect::<Vec<_>>().join(" or "),
    }
}

fn feature_word(f: crate::route::Feature) -> &'static str {
    match f {
        crate::route::Feature::Tools => "tools",
        crate::route::Feature::Images => "images",
        crate::route::Feature::JsonSchema => "json_schema",
        crate::route::Feature::Stream => "stream",
        crate::route::Feature::Embedding => "embedding",
    }
}

/// Draws the policy's graph, or only what `workload` reaches.
pub fn draw(policy: &Policy, workload: Option<WorkloadId>, format: DrawFormat) -> String {
    let workloads: Vec<WorkloadId> = match workload {
        Some(w) if (w.0 as usize) < policy.workloads.len() => vec![w],
        Some(_) => Vec::new(),
        None => policy.workload_ids().collect(),
    };
    // The highest class of any drawn workload reaching each node.
    let mut reach: Vec<Option<DataClass>> = vec![None; policy.routes.len()];
    for w in &workloads {
        let class = policy.workload(*w).data;
        let mut seen = vec![false; policy.routes.len()];
        let mut stack = vec![policy.workload(*w).route];
        while let Some(n) = stack.pop() {
            let Some(slot) = seen.get_mut(n.0 as usize).filter(|s| !**s) else {
                continue;
            };
            *slot = true;
            let r = &mut reach[n.0 as usize];
            *r = Some(r.map_or(class, |c| c.max(class)));
            if let Some(node) = policy.routes.get(n) {
                stack.extend(node.kind.children());
            }
        }
    }
    let mut nodes = Vec::new();
    let mut targets = BTreeSet::new();
    let mut edges = Vec::new();
    for w in &workloads {
        edges.push(Edge {
            from: Vertex::Workload(*w),
            to: Vertex::Node(policy.workload(*w).route),
            label: String::new(),
            mark: Mark::Plain,
            classes: None,
        });
    }
    for id in policy.routes.ids() {
        let Some(reaching) = reach[id.0 as usize] else {
            continue;
        };
        let kind = &policy.node(id).kind;
        if let NodeKind::Target { target } = kind {
            // A workload whose route is a bare target: draw the target only.
            targets.insert(*target);
            continue;
        }
        nodes.push(id);
        let labelled: Vec<(String, NodeId)> = match kind {
            NodeKind::Fallback { children, .. } | NodeKind::Escalate { children, .. } => children
                .iter()
                .enumerate()
                .map(|(i, c)| ((i + 1).to_string(), *c))
                .collect(),
            NodeKind::Split { arms, .. } => arms.iter().map(|(w, c)| (format!("{w}%"), *c)).collect(),
            NodeKind::Select { children, strategy, .. } => children
                .iter()
                .enumerate()
                .map(|(i, (w, c))| match strategy {
                    crate::route::Strategy::Weighted => (format!("weight {w}"), *c),
                    _ => ((i + 1).to_string(), *c),
                })
                .collect(),
            NodeKind::Match { arms, otherwise } => arms
                .iter()
                .map(|(cond, c)| (format!("when {}", condition_text(cond)), *c))
                .chain(otherwise.map(|c| ("else".to_owned(), c)))
                .collect(),
            NodeKind::Target { .. } | NodeKind::Unresolved => Vec::new(),
        };
        for (label, child) in labelled {
            let to = match policy.routes.get(child).map(|n| &n.kind) {
                Some(NodeKind::Target { target }) => {
                    targets.insert(*target);
                    Vertex::Target(*target)
                }
                _ => Vertex::Node(child),
            };
            let (mark, classes) = match to {
                Vertex::Target(t) => {
                    let allowed = policy.provider_of(t).max_data;
                    if reaching > allowed {
                        (Mark::Violation, Some((reaching, allowed)))
                    } else if allowed < DataClass::Private {
                        (Mark::Restricted, Some((reaching, allowed)))
                    } else {
                        (Mark::Plain, None)
                    }
                }
                _ => (Mark::Plain, None),
            };
            edges.push(Edge {
                from: Vertex::Node(id),
                to,
                label,
                mark,
                classes,
            });
        }
    }
    // A workload whose whole route is one target points straight at it.
    for e in &mut edges {
        if let Vertex::Node(n) = e.to
            && let Some(NodeKind::Target { target }) = policy.routes.get(n).map(|x| &x.kind)
        {
            e.to = Vertex::Target(*target);
        }
    }
    match format {
        DrawFormat::Dot => dot(policy, &workloads, &nodes, &targets, &edges),
        DrawFormat::Mermaid => mermaid(policy, &workloads, &nodes, &targets, &edges),
    }
}

fn node_label(policy: &Policy, id: NodeId) -> String {
    let n = policy.node(id);
    let head = match &n.kind {
        NodeKind::Split { key, .. } => format!("split by {key}"),
        NodeKind::Select { strategy, .. } => format!("select {}", strategy.as_str()),
        NodeKind::Escalate { check, .. } => format!("escalate, check {}", check_word(policy, check)),
        kind => kind.keyword().to_owned(),
    };
    match &n.name {
        Some(name) => format!("{name}\n{head} ({id})"),
        None => format!("{head} ({id})"),
    }
}

fn check_word(policy: &Policy, check: &crate::route::QualityCheck) -> String {
    use crate::route::QualityCheck;
    match check {
        QualityCheck::JsonValid => "json_valid".into(),
        QualityCheck::JsonSchema => "json_schema".into(),
        QualityCheck::NonEmpty => "non_empty".into(),
        QualityCheck::Regex(_) => "regex".into(),
        QualityCheck::Evaluator(w) => match policy.workloads.get(w.0 as usize) {
            Some(w) => format!("evaluator({})", w.name),
            None => "evaluator".into(),
        },
    }
}

fn workload_label(policy: &Policy, id: WorkloadId) -> String {
    let w = policy.workload(id);
    match w.task {
        Some(task) => format!("{}\n{task} · data {}", w.name, w.data),
        None => format!("{}\ndata {}", w.name, w.data),
    }
}

fn target_label(policy: &Policy, id: TargetId) -> String {
    let p = policy.provider_of(id);
    format!("{}\n{} · takes {}", policy.target_label(id), p.tier, p.max_data)
}

fn edge_note(e: &Edge) -> String {
    match (e.mark, e.classes) {
        (Mark::Violation, Some((reaching, allowed))) => format!("PII: {reaching} data, provider takes {allowed}"),
        (Mark::Restricted, Some((_, allowed))) => format!("{allowed} only"),
        _ => String::new(),
    }
}

fn join_label(e: &Edge) -> String {
    let note = edge_note(e);
    match (e.label.is_empty(), note.is_empty()) {
        (true, _) => note,
        (false, true) => e.label.clone(),
        (false, false) => format!("{}\n{note}", e.label),
    }
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn dot_id(v: &Vertex) -> String {
    match v {
        Vertex::Workload(w) => format!("w{}", w.0),
        Vertex::Node(n) => format!("n{}", n.0),
        Vertex::Target(t) => format!("t{}", t.0),
    }
}

fn dot(
    policy: &Policy,
    workloads: &[WorkloadId],
    nodes: &[NodeId],
    targets: &BTreeSet<TargetId>,
    edges: &[Edge],
) -> String {
    let mut out = String::from("digraph routec {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=11];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=9];\n");
    for w in workloads {
        let _ = writeln!(
            out,
            "  w{} [shape=box, style=\"rounded,bold\", label=\"{}\"];",
            w.0,
            dot_escape(&workload_label(policy, *w))
        );
    }
    for n in nodes {
        let shape = match policy.node(*n).kind {
            NodeKind::Split { .. } | NodeKind::Match { .. } => "diamond",
            _ => "ellipse",
        };
        let _ = writeln!(
            out,
            "  n{} [shape={shape}, label=\"{}\"];",
            n.0,
            dot_escape(&node_label(policy, *n))
        );
    }
    for t in targets {
        let _ = writeln!(
            out,
            "  t{} [shape=box, label=\"{}\"];",
            t.0,
            dot_escape(&target_label(policy, *t))
        );
    }
    for e in edges {
        let mut attrs = Vec::new();
        let label = join_label(e);
        if !label.is_empty() {
            attrs.push(format!("label=\"{}\"", dot_escape(&label)));
        }
        match e.mark {
            Mark::Violation => attrs.push("color=red, fontcolor=red, penwidth=2".to_owned()),
            Mark::Restricted => attrs.push("style=dashed, color=gray40".to_owned()),
            Mark::Plain => {}
        }
        let attrs = if attrs.is_empty() {
            String::new()
        } else {
            format!(" [{}]", attrs.join(", "))
        };
        let _ = writeln!(out, "  {} -> {}{attrs};", dot_id(&e.from), dot_id(&e.to));
    }
    out.push_str("}\n");
    out
}

fn mermaid_escape(s: &str) -> String {
    s.replace('"', "#quot;").replace('\n', "<br/>")
}

fn mermaid(
    policy: &Policy,
    workloads: &[WorkloadId],
    nodes: &[NodeId],
    targets: &BTreeSet<TargetId>,
    edges: &[Edge],
) -> String {
    let mut out = String::from("flowchart LR\n");
    for w in workloads {
        let _ = writeln!(out, "  w{}([\"{}\"])", w.0, mermaid_escape(&workload_label(policy, *w)));
    }
    for n in nodes {
        let label = mermaid_escape(&node_label(policy, *n));
        let _ = match policy.node(*n).kind {
            NodeKind::Split { .. } | NodeKind::Match { .. } => writeln!(out, "  n{}{{\"{label}\"}}", n.0),
            _ => writeln!(out, "  n{}(\"{label}\")", n.0),
        };
    }
    for t in targets {
        let _ = writeln!(out, "  t{}[\"{}\"]", t.0, mermaid_escape(&target_label(policy, *t)));
    }
    let mut styles = Vec::new();
    for (i, e) in edges.iter().enumerate() {
        let label = join_label(e);
        let arrow = if e.mark == Mark::Restricted { "-.->" } else { "-->" };
        if label.is_empty() {
            let _ = writeln!(out, "  {} {arrow} {}", dot_id(&e.from), dot_id(&e.to));
        } else {
            let _ = writeln!(
                out,
                "  {} {arrow}|\"{}\"| {}",
                dot_id(&e.from),
                mermaid_escape(&label),
                dot_id(&e.to)
            );
        }
        match e.mark {
            Mark::Violation => styles.push(format!("  linkStyle {i} stroke:red,stroke-width:2px")),
            Mark::Restricted => styles.push(format!("  linkStyle {i} stroke:gray")),
            Mark::Plain => {}
        }
    }
    for s in styles {
        out.push_str(&s);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::seed;

    #[test]
    fn dot_marks_public_only_edges_and_names_everything() {
        let p = seed();
        let dot = draw(&p, None, DrawFormat::Dot);
        assert!(dot.starts_with("digraph routec {"));
        assert!(dot.contains("content_summary"), "{dot}");
        assert!(dot.contains("cerebras/llama-3.3-70b"), "{dot}");
        assert!(dot.contains("public only"), "{dot}");
        assert!(!dot.contains("PII:"), "the seed has no violation\n{dot}");
    }

    #[test]
    fn one_workload_draws_only_what_it_reaches() {
        let p = seed();
        let w = p.workload_id("audit_report").unwrap();
        let m = draw(&p, Some(w), DrawFormat::Mermaid);
        assert!(m.starts_with("flowchart LR"));
        assert!(m.contains("anthropic/claude-opus-4.1"));
        assert!(!m.contains("cerebras"), "{m}");
    }

    #[test]
    fn a_workload_above_its_providers_class_draws_a_red_edge() {
        let mut p = seed();
        let w = p.workload_id("content_summary").unwrap();
        p.workloads[w.0 as usize].data = DataClass::Private;
        let dot = draw(&p, Some(w), DrawFormat::Dot);
        assert!(dot.contains("PII: private data, provider takes public"), "{dot}");
        assert!(dot.contains("color=red"));
    }

    #[test]
    fn conditions_print_as_written() {
        let c = Condition::Any(vec![
            Condition::All(vec![
                Condition::Compare {
                    fact: NumericFact::InputTokens,
                    op: CmpOp::Gt,
                    value: 8000,
                },
                Condition::Has(crate::route::Feature::Tools),
            ]),
            Condition::Not(Box::new(Condition::Metadata {
                key: "team".into(),
                op: CmpOp::Eq,
                value: "growth".into(),
            })),
        ]);
        assert_eq!(
            condition_text(&c),
            "(input_tokens > 8000 and has tools) or not metadata.team == \"growth\""
        );
    }
}
