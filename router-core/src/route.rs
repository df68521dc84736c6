//! The route graph: combinators (fallback, split, select, match, escalate)
//! whose leaves are targets. Stored as a petgraph graph so cycles, paths and
//! drawings come from graph algorithms; each node also keeps its ordered
//! children so the decision engine walks it without sorting edges.

use std::fmt;
use std::time::Duration;

use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};

use crate::failure::{AttemptTimeouts, RetryClasses};
use crate::origin::Origin;
use crate::provider::TargetId;
use crate::units::opt_duration_ms;
use crate::workload::{Task, WorkloadId};

/// Identifies a route node. Stable for a given policy text: lowering adds
/// nodes in source order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u32);

impl NodeId {
    fn index(self) -> NodeIndex<u32> {
        NodeIndex::new(self.0 as usize)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// A failure that makes a fallback chain move on to its next candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// HTTP 429.
    RateLimited,
    /// HTTP 503 / 529: the provider is overloaded.
    Overloaded,
    /// Any other 5xx.
    ServerError,
    /// The attempt ran past its timeout.
    Timeout,
    /// The connection could not be made or broke.
    ConnectionError,
    /// The request does not fit the model's context window.
    ContextLength,
}

impl Trigger {
    /// Every trigger, in keyword order.
    pub const ALL: [Trigger; 6] = [
        Trigger::RateLimited,
        Trigger::Overloaded,
        Trigger::ServerError,
        Trigger::Timeout,
        Trigger::ConnectionError,
        Trigger::ContextLength,
    ];

    /// The keyword used in policies.
    pub const fn as_str(self) -> &'static str {
        match self {
            Trigger::RateLimited => "rate_limited",
            Trigger::Overloaded => "overloaded",
            Trigger::ServerError => "server_error",
            Trigger::Timeout => "timeout",
            Trigger::ConnectionError => "connection_error",
            Trigger::ContextLength => "context_length",
        }
    }

    const fn bit(self) -> u8 {
        match self {
            Trigger::RateLimited => 1,
            Trigger::Overloaded => 2,
            Trigger::ServerError => 4,
            Trigger::Timeout => 8,
            Trigger::ConnectionError => 16,
            Trigger::ContextLength => 32,
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`Trigger`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Triggers(u8);

impl Triggers {
    /// No trigger: the chain never advances on failure.
    pub const NONE: Triggers = Triggers(0);
    /// What a chain advances on when the policy says nothing: every transient
    /// failure, but not `context_length` (a bigger model is a policy choice).
    pub const TRANSIENT: Triggers = Triggers(1 | 2 | 4 | 8 | 16);

    /// This set with `t` added.
    #[must_use]
    pub const fn with(self, t: Trigger) -> Self {
        Triggers(self.0 | t.bit())
    }

    /// Adds `t`.
    pub fn insert(&mut self, t: Trigger) {
        self.0 |= t.bit();
    }

    /// Whether `t` is in the set.
    pub const fn has(self, t: Trigger) -> bool {
        self.0 & t.bit() != 0
    }

    /// The members, in keyword order.
    pub fn iter(self) -> impl Iterator<Item = Trigger> {
        Trigger::ALL.into_iter().filter(move |t| self.has(*t))
    }
}

impl Default for Triggers {
    fn default() -> Self {
        Triggers::TRANSIENT
    }
}

impl FromIterator<Trigger> for Triggers {
    fn from_iter<I: IntoIterator<Item = Trigger>>(iter: I) -> Self {
        let mut set = Triggers::NONE;
        for t in iter {
            set.insert(t);
        }
        set
    }
}

impl Serialize for Triggers {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// How a fallback-like combinator behaves when an attempt fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct ChainRules {
    /// Failures that advance to the next candidate.
    pub triggers: Triggers,
    /// Per-attempt timeout, from `timeout(d)` in the trigger list.
    #[serde(with = "opt_duration_ms")]
    pub attempt_timeout: Option<Duration>,
    /// Retries allowed on the same target before moving on, for each class
    /// that is retried by default.
    pub retries: u8,
    /// Retries per failure class, where the chain names classes.
    #[serde(skip_serializing_if = "RetryClasses::is_unset")]
    pub retry_on: RetryClasses,
    /// The chain's `timeouts` (first token and idle; its total is
    /// `attempt_timeout`).
    #[serde(skip_serializing_if = "AttemptTimeouts::is_unset")]
    pub timeouts: AttemptTimeouts,
    /// Whether two consecutive attempts may go to the same provider.
    pub allow_repeat: bool,
}

impl Default for ChainRules {
    fn default() -> Self {
        ChainRules {
            triggers: Triggers::TRANSIENT,
            attempt_timeout: None,
            retries: 0,
            retry_on: RetryClasses::default(),
            timeouts: AttemptTimeouts::default(),
            allow_repeat: false,
        }
    }
}

/// The request field a split hashes to pick an arm.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "field", content = "key")]
pub enum SplitKey {
    /// The caller's user id.
    User,
    /// A metadata value.
    Metadata(String),
    /// The request itself: each call is bucketed on its own.
    Request,
}

impl fmt::Display for SplitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SplitKey::User => f.write_str("user"),
            SplitKey::Metadata(k) => write!(f, "metadata.{k}"),
            SplitKey::Request => f.write_str("request"),
        }
    }
}

/// How `select` orders its candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Lowest expected cost first.
    Cheapest,
    /// Lowest rolling p95 latency first.
    Fastest,
    /// One picked by weight, the rest by descending weight.
    Weighted,
    /// As written.
    First,
}

impl Strategy {
    /// The keyword used in policies.
    pub const fn as_str(self) -> &'static str {
        match self {
            Strategy::Cheapest => "cheapest",
            Strategy::Fastest => "fastest",
            Strategy::Weighted => "weighted",
            Strategy::First => "first",
        }
    }
}

/// A numeric request fact a `when` condition compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NumericFact {
    /// Estimated input tokens.
    InputTokens,
    /// Requested maximum output tokens.
    MaxOutputTokens,
}

/// A request feature a `when has …` condition tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// The request offers tools.
    Tools,
    /// The request contains images.
    Images,
    /// The request asks for JSON-schema output.
    JsonSchema,
    /// The request asks for a stream.
    Stream,
    /// The request asks for embeddings, not a chat answer.
    Embedding,
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum CmpOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl CmpOp {
    /// Applies the operator.
    pub fn holds<T: PartialOrd>(self, left: T, right: T) -> bool {
        match self {
            CmpOp::Lt => left < right,
            CmpOp::Le => left <= right,
            CmpOp::Gt => left > right,
            CmpOp::Ge => left >= right,
            CmpOp::Eq => left == right,
            CmpOp::Ne => left != right,
        }
    }
}

/// A `when` condition of a `match`, over request facts.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Compares a numeric fact with a constant.
    Compare {
        /// The fact.
        fact: NumericFact,
        /// The operator.
        op: CmpOp,
        /// The constant.
        value: u64,
    },
    /// The request has a feature.
    Has(Feature),
    /// The request's metadata has a key.
    HasMetadata(String),
    /// The request's task (the workload's, unless the request names one).
    TaskIs(Task),
    /// Compares a metadata value with a string (`==` or `!=`).
    Metadata {
        /// The metadata key.
        key: String,
        /// `Eq` or `Ne`.
        op: CmpOp,
        /// The string compared with.
        value: String,
    },
    /// Negation.
    Not(Box<Condition>),
    /// Every one holds.
    All(Vec<Condition>),
    /// At least one holds.
    Any(Vec<Condition>),
}

/// A check run on a response; failing it escalates to the next candidate.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "check", content = "arg")]
pub enum QualityCheck {
    /// The text parses as JSON.
    JsonValid,
    /// The text validates against the request's JSON schema.
    JsonSchema,
    /// The text is not blank.
    NonEmpty,
    /// The text matches a regular expression.
    Regex(String),
    /// Another workload judges the answer; it passes if that call's answer
    /// starts with "pass" (case-insensitive).
    Evaluator(WorkloadId),
}

/// What a route node does.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum NodeKind {
    /// A leaf: send the call to this target.
    Target {
        /// The target.
        target: TargetId,
    },
    /// Try children in order, advancing on the rules' triggers.
    /// `free_first` is a fallback whose children are ordered by tier.
    Fallback {
        /// Candidates in the order tried.
        children: Vec<NodeId>,
        /// Whether the policy wrote `free_first` (children already sorted by
        /// tier at lowering, stable within a tier).
        free_first: bool,
        /// Failure handling.
        rules: ChainRules,
    },
    /// Weighted A/B: exactly one arm, chosen by a stable hash of the split's
    /// name and a request key.
    Split {
        /// The field hashed.
        key: SplitKey,
        /// Mixed into the hash so different splits bucket independently. Set
        /// at lowering from the split's place in the policy (the named route,
        /// or the workload it is written in, plus its position inside that
        /// route), never from node ids, so a user keeps their arm when
        /// unrelated parts of the policy change.
        salt: String,
        /// `(weight, arm)`; weights sum to 100.
        arms: Vec<(u32, NodeId)>,
    },
    /// Pick among candidates by a strategy; the rest become the fallback order.
    Select {
        /// The ordering.
        strategy: Strategy,
        /// Candidates with their weights (all 1 unless `weighted`).
        children: Vec<(u32, NodeId)>,
        /// Failure handling.
        rules: ChainRules,
    },
    /// The first arm whose condition holds, else `otherwise`.
    Match {
        /// `(when, route)` in order.
        arms: Vec<(Condition, NodeId)>,
        /// The `else` route; `None` only in policies that fail `check`.
        otherwise: Option<NodeId>,
    },
    /// Cheapest first; run `check` on each answer and escalate on failure.
    Escalate {
        /// Candidates from cheap to strong.
        children: Vec<NodeId>,
        /// The quality check.
        check: QualityCheck,
        /// Failure handling for errors (not quality failures).
        rules: ChainRules,
    },
    /// A named route not yet defined; exists only while lowering or in
    /// policies that fail `check`.
    Unresolved,
}

impl NodeKind {
    /// The node's children in order, for walking the graph.
    pub fn children(&self) -> Vec<NodeId> {
        match self {
            NodeKind::Target { .. } | NodeKind::Unresolved => Vec::new(),
            NodeKind::Fallback { children, .. } | NodeKind::Escalate { children, .. } => children.clone(),
            NodeKind::Split { arms, .. } => arms.iter().map(|(_, n)| *n).collect(),
            NodeKind::Select { children, .. } => children.iter().map(|(_, n)| *n).collect(),
            NodeKind::Match { arms, otherwise } => arms.iter().map(|(_, n)| *n).chain(*otherwise).collect(),
        }
    }

    /// A short word for the node's kind, as used in explanations.
    pub fn keyword(&self) -> &'static str {
        match self {
            NodeKind::Target { .. } => "target",
            NodeKind::Fallback { free_first: true, .. } => "free_first",
            NodeKind::Fallback { .. } => "fallback",
            NodeKind::Split { .. } => "split",
            NodeKind::Select { .. } => "select",
            NodeKind::Match { .. } => "match",
            NodeKind::Escalate { .. } => "escalate",
            NodeKind::Unresolved => "unresolved",
        }
    }
}

/// One node of the route graph.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RouteNode {
    /// The route's name, for named routes (`route NAME = …`).
    pub name: Option<String>,
    /// What the node does.
    pub kind: NodeKind,
    /// Where the route expression is written.
    #[serde(skip)]
    pub origin: Origin,
}

/// An edge from a combinator to one of its children.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ChildEdge {
    /// The child's position among its parent's children.
    pub position: u32,
}

/// The route graph of a policy.
#[derive(Clone, Debug, Default)]
pub struct RouteGraph {
    graph: DiGraph<RouteNode, ChildEdge, u32>,
}

impl RouteGraph {
    /// An empty graph.
    pub fn new() -> Self {
        RouteGraph::default()
    }

    /// Adds a node and returns its id. Edges are derived from node kinds by
    /// [`RouteGraph::connect`], so children may be filled in later (routes can
    /// name routes defined further down, or in another file).
    pub fn add(&mut self, node: RouteNode) -> NodeId {
        NodeId(self.graph.add_node(node).index() as u32)
    }

    /// The node with this id.
    pub fn get(&self, id: NodeId) -> Option<&RouteNode> {
        self.graph.node_weight(id.index())
    }

    /// The node with this id, mutably (for lowering).
    pub fn get_mut(&mut self, id: NodeId) -> Option<&mut RouteNode> {
        self.graph.node_weight_mut(id.index())
    }

    /// Rebuilds the edges from the nodes' children lists.
    pub fn connect(&mut self) {
        self.graph.clear_edges();
        let mut edges = Vec::new();
        for idx in self.graph.node_indices() {
            for (position, child) in self.graph[idx].kind.children().into_iter().enumerate() {
                edges.push((idx, child.index(), position));
            }
        }
        for (from, to, position) in edges {
            if to.index() < self.graph.node_count() {
                let position = u32::try_from(position).unwrap_or(u32::MAX);
                self.graph.add_edge(from, to, ChildEdge { position });
            }
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// Every node id, in the order added.
    pub fn ids(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.graph.node_indices().map(|i| NodeId(i.index() as u32))
    }

    /// The underlying petgraph graph, for graph algorithms (cycles, paths,
    /// drawing). Node indices equal [`NodeId`] values.
    pub fn petgraph(&self) -> &DiGraph<RouteNode, ChildEdge, u32> {
        &self.graph
    }
}

impl std::ops::Index<NodeId> for RouteGraph {
    type Output = RouteNode;

    /// Panics only for an id from another policy; ids handed out by this graph
    /// are always valid because nodes are never removed.
    fn index(&self, id: NodeId) -> &RouteNode {
        &self.graph[id.index()]
    }
}

impl Serialize for RouteGraph {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.graph.node_weights())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(graph: &mut RouteGraph, t: u32) -> NodeId {
        graph.add(RouteNode {
            name: None,
            kind: NodeKind::Target { target: TargetId(t) },
            origin: Origin::default(),
        })
    }

    #[test]
    fn edges_follow_children_in_order_even_when_filled_in_late() {
        let mut g = RouteGraph::new();
        let chain = g.add(RouteNode {
            name: Some("pool".into()),
            kind: NodeKind::Unresolved,
            origin: Origin::default(),
        });
        let a = leaf(&mut g, 0);
        let b = leaf(&mut g, 1);
        g.get_mut(chain).unwrap().kind = NodeKind::Fallback {
            children: vec![b, a],
            free_first: false,
            rules: ChainRules::default(),
        };
        g.connect();
        let pg = g.petgraph();
        let mut out: Vec<(u32, u32)> = pg
            .edges(petgraph::graph::NodeIndex::new(chain.0 as usize))
            .map(|e| (e.weight().position, petgraph::visit::EdgeRef::target(&e).index() as u32))
            .collect();
        out.sort();
        assert_eq!(out, vec![(0, b.0), (1, a.0)]);
        assert_eq!(g[chain].kind.keyword(), "fallback");
    }

    #[test]
    fn default_triggers_are_transient_failures_only() {
        let t = Triggers::default();
        assert!(t.has(Trigger::RateLimited) && t.has(Trigger::Timeout));
        assert!(!t.has(Trigger::ContextLength));
        assert_eq!(t.iter().count(), 5);
    }
}
