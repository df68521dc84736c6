//! Syntax tree to IR: resolves every name, checks each block's properties and
//! builds the `router_core` policy, keeping side tables of spans so the graph
//! checks (`checks/`) can point back at the text.
//!
//! Lowering choices, stable because other crates rely on them:
//!
//! - Ids follow source order: files in the order given, items in file order.
//!   Named routes get their node first (in declaration order), so a route can
//!   be used before or after it is defined, in any file.
//! - A route reference is an edge to the named node, never a copy.
//! - Each `provider/model` written in a route is its own `Target` leaf node
//!   (occurrences are not shared), so every node has one place in the text.
//! - `route a = b` (one route naming another) lowers to a one-child fallback.
//! - A split's salt is its place in the policy: `route:NAME` or
//!   `workload:NAME`, plus `/i/j…` child positions (as written) for splits
//!   nested inside that route — never node ids.
//! - `free_first` children are sorted by the lowest tier each can reach
//!   (stable within a tier) after every route is lowered.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use router_core::{
    Adapter, Budget, Capabilities, ChainRules, CmpOp, Condition, DataClass, Defaults, Header, KeyRef, Limits, NodeId,
    NodeKind, Policy, Price, Provider, ProviderId, QualityCheck, RouteGraph, RouteNode, SimProfile, SplitKey, Target,
    TargetId, Task, Tier, Triggers, Usd, Workload, WorkloadId,
};

use crate::ast::*;
use crate::checks::matches::{self, Cause};
use crate::code::Code;
use crate::diagnostic::Diag;
use crate::errors::{
    BadLiteralError, DuplicateNameError, DuplicatePropertyError, InvalidRegexError, LiteralSecretError,
    MatchWithoutElseError, MissingPropertyError, MixedScriptsWarning, NoEmbeddingsEndpointError, NoFreeTargetWarning,
    SplitWeightsError, StoresInputsError, TrainsOnInputsError, UnknownAdapterError, UnknownNameError, UnknownTaskError,
    UnreachableArmError,
};
use crate::names;
use crate::report::CheckReport;
use crate::source::{SourceMap, Span};
use crate::walk;

mod failure;
mod providers;
mod routes;
mod workloads;

/// Wire protocols an `adapter` may name.
pub const PROTOCOLS: &[&str] = &["openai", "anthropic", "gemini", "openai_compatible", "cli", "mock"];
/// OpenAI-compatible presets an `adapter` may name.
pub const PRESETS: &[&str] = &[
    "groq",
    "cerebras",
    "openrouter",
    "xai",
    "deepseek",
    "together",
    "fireworks",
    "mistral",
    "zai",
    "vllm",
    "ollama",
];

/// Spans of a provider block the checks point at.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProviderInfo {
    pub(crate) name: Span,
    pub(crate) data: Option<Span>,
}

/// Spans of a workload block the checks point at.
#[derive(Clone, Debug, Default)]
pub(crate) struct WorkloadInfo {
    pub(crate) name: Span,
    pub(crate) data: Option<Span>,
    /// The `jurisdiction` line, when given.
    pub(crate) jurisdiction: Option<Span>,
    pub(crate) requires: Option<Span>,
    pub(crate) max_tokens: Option<Span>,
    pub(crate) cost_limit: Option<Span>,
    pub(crate) max_attempts: Option<Span>,
    /// Where the workload's route is written (the expression after `route`).
    pub(crate) route: Option<Span>,
    /// Each budget line as written (`30 tokens/day`) and where.
    pub(crate) budgets: Vec<(BudgetLine, String, Span)>,
    /// Where `stream_recovery` is written.
    pub(crate) stream_recovery: Option<Span>,
    /// Where `max_cost` is written.
    pub(crate) max_cost: Option<Span>,
}

/// Which limit of a workload's [`router_core::Budget`] a budget line sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BudgetLine {
    TokensPerDay,
    TokensPerMonth,
    UsdPerDay,
    UsdPerMonth,
}

/// Where the IR came from, for diagnostics.
#[derive(Debug)]
pub(crate) struct Info {
    pub(crate) src: Arc<SourceMap>,
    pub(crate) providers: Vec<ProviderInfo>,
    /// The model name in each target's `model NAME { … }` block.
    pub(crate) targets: Vec<Span>,
    pub(crate) workloads: Vec<WorkloadInfo>,
    /// Named routes: name span and node.
    pub(crate) routes: Vec<(Ident, NodeId)>,
    /// Where each child is written inside its parent: `(parent, child)`.
    pub(crate) edges: HashMap<(NodeId, NodeId), Span>,
    /// For each node, the span of its head (keyword or target).
    pub(crate) heads: Vec<Span>,
    /// For each `escalate … check evaluator(W)` node, where `W` is written.
    pub(crate) evaluators: HashMap<NodeId, Span>,
}

impl Info {
    pub(crate) fn head(&self, node: NodeId) -> Span {
        self.heads.get(node.0 as usize).copied().unwrap_or_default()
    }

    pub(crate) fn edge(&self, parent: NodeId, child: NodeId) -> Span {
        self.edges
            .get(&(parent, child))
            .copied()
            .unwrap_or_else(|| self.head(child))
    }
}

/// The result of lowering: the policy (usable only when the report has no
/// errors) and the spans behind it.
pub(crate) struct Lowered {
    pub(crate) policy: Policy,
    pub(crate) info: Info,
}

struct Lowerer<'a> {
    src: &'a Arc<SourceMap>,
    report: CheckReport,
    providers: Vec<Provider>,
    provider_info: Vec<ProviderInfo>,
    provider_ids: HashMap<String, ProviderId>,
    targets: Vec<Target>,
    target_spans: Vec<Span>,
    workload_ids: HashMap<String, WorkloadId>,
    routes: HashMap<String, NodeId>,
    route_list: Vec<(Ident, NodeId)>,
    graph: RouteGraph,
    heads: Vec<Span>,
    edges: HashMap<(NodeId, NodeId), Span>,
    evaluators: HashMap<NodeId, Span>,
    free_first: Vec<NodeId>,
}

fn q(name: &str) -> String {
    format!("`{name}`")
}

/// Lowers a parsed policy. Problems go into the returned report; the policy
/// is complete (every id valid, unresolved names as `Unresolved` nodes) so
/// the graph checks can still run over it.
pub(crate) fn lower(ast: &Ast) -> (Lowered, CheckReport) {
    let mut l = Lowerer {
        src: &ast.src,
        report: CheckReport::new(),
        providers: Vec::new(),
        provider_info: Vec::new(),
        provider_ids: HashMap::new(),
        targets: Vec::new(),
        target_spans: Vec::new(),
        workload_ids: HashMap::new(),
        routes: HashMap::new(),
        route_list: Vec::new(),
        graph: RouteGraph::new(),
        heads: Vec::new(),
        edges: HashMap::new(),
        evaluators: HashMap::new(),
        free_first: Vec::new(),
    };
    l.mixed_scripts(&ast.names);
    l.secrets(&ast.strings);

    // Pass 1: declare every name, so references resolve in any order.
    let mut workload_decls: Vec<&WorkloadDecl> = Vec::new();
    let mut route_decls: Vec<(&RouteDecl, NodeId)> = Vec::new();
    let mut first_seen: HashMap<(&'static str, String), Span> = HashMap::new();
    let mut defaults_decls: Vec<&DefaultsDecl> = Vec::new();
    for item in ast.items() {
        match item {
            Item::Provider(p) => {
                if l.duplicate(&mut first_seen, "provider", &p.name) {
                    continue;
                }
                l.provider(p);
            }
            Item::Workload(w) => {
                if l.duplicate(&mut first_seen, "workload", &w.name) {
                    continue;
                }
                let id = WorkloadId(u32::try_from(workload_decls.len()).unwrap_or(u32::MAX));
                l.workload_ids.insert(w.name.name.clone(), id);
                workload_decls.push(w);
            }
            Item::Route(r) => {
                if l.duplicate(&mut first_seen, "route", &r.name) {
                    continue;
                }
                let node = l.add(
                    Some(r.name.name.clone()),
                    r.name.span.to(r.expr.head),
                    NodeKind::Unresolved,
                );
                l.routes.insert(r.name.name.clone(), node);
                l.route_list.push((r.name.clone(), node));
                route_decls.push((r, node));
            }
            Item::Defaults(d) => defaults_decls.push(d),
            // Tests are lowered after the policy (`ast_to_tests`).
            Item::Test(_) => {}
        }
    }

    // Pass 2: routes, then workloads (whose inline routes come after).
    for (r, node) in &route_decls {
        let owner = format!("route:{}", r.name.name);
        l.lower_into(*node, &r.expr, &owner);
    }
    let mut workloads = Vec::with_capacity(workload_decls.len());
    let mut workload_info = Vec::with_capacity(workload_decls.len());
    for w in &workload_decls {
        let (wl, info) = l.workload(w);
        workloads.push(wl);
        workload_info.push(info);
    }
    l.aliases(&workload_decls, &workloads);
    let defaults = l.defaults(&defaults_decls);
    l.sort_free_first();

    let info = Info {
        src: Arc::clone(l.src),
        providers: l.provider_info,
        targets: l.target_spans,
        workloads: workload_info,
        routes: l.route_list,
        edges: l.edges,
        heads: l.heads,
        evaluators: l.evaluators,
    };
    // `cache D` of each workload, by the workload's index (its id).
    let cache: Vec<(router_core::WorkloadId, Duration)> = workload_decls
        .iter()
        .enumerate()
        .filter_map(|(i, w)| {
            w.props.iter().find_map(|p| match &p.kind {
                WorkloadProp::Cache(d) => Some((router_core::WorkloadId(u32::try_from(i).ok()?), d.value)),
                _ => None,
            })
        })
        .collect();
    let policy =
        Policy::new(ast.src.names(), l.providers, l.targets, workloads, l.graph, defaults).with_response_cache(cache);
    (Lowered { policy, info }, l.report)
}

impl Lowerer<'_> {
    // ---------------------------------------------------------------- helpers

    fn add(&mut self, name: Option<String>, head: Span, kind: NodeKind) -> NodeId {
        let origin = self.src.origin(head);
        self.heads.push(head);
        self.graph.add(RouteNode { name, kind, origin })
    }

    fn set(&mut self, node: NodeId, kind: NodeKind) {
        if let Some(n) = self.graph.get_mut(node) {
            n.kind = kind;
        }
    }

    /// Records a duplicate definition; true when `name` was already defined.
    fn duplicate(
        &mut self,
        seen: &mut HashMap<(&'static str, String), Span>,
        kind: &'static str,
        name: &Ident,
    ) -> bool {
        match seen.get(&(kind, name.name.clone())) {
            Some(first) => {
                let diag = Diag::at(
                    Code::R0102,
                    format!("{kind} {} is defined twice", q(&name.name)),
                    self.src,
                    name.span,
                    "defined again here",
                )
                .label(*first, "first defined here")
                .help(format!("rename one of them, or remove the second {kind}"));
                self.report.error(DuplicateNameError {
                    kind,
                    name: name.name.clone(),
                    diag,
                });
                true
            }
            None => {
                seen.insert((kind, name.name.clone()), name.span);
                false
            }
        }
    }

    /// Reports a property given twice in one block; true for the second.
    fn once(&mut self, seen: &mut HashMap<&'static str, Span>, keyword: &'static str, key: Span) -> bool {
        if let Some(first) = seen.get(keyword) {
            let diag = Diag::at(
                Code::R0105,
                format!("{} is given twice", q(keyword)),
                self.src,
                key,
                "given again here",
            )
            .label(*first, "first given here")
            .help(format!("keep one {}", q(keyword)));
            self.report.error(DuplicatePropertyError {
                property: keyword.to_string(),
                diag,
            });
            true
        } else {
            seen.insert(keyword, key);
            false
        }
    }

    fn missing(&mut self, property: &str, block: String, at: Span, help: String) {
        let diag = Diag::at(
            Code::R0106,
            format!("{block} has no {}", q(property)),
            self.src,
            at,
            format!("needs {}", q(property)),
        )
        .help(help);
        self.report.error(MissingPropertyError {
            property: property.to_string(),
            block,
            diag,
        });
    }

    fn out_of_range(&mut self, span: Span, text: &str, problem: String, help: &str) {
        let diag = Diag::at(Code::R0009, problem, self.src, span, "").help(help);
        self.report.parse_error(BadLiteralError {
            literal: text.to_string(),
            diag,
        });
    }

    fn small(&mut self, lit: &Lit<u64>, what: &str) -> u8 {
        match u8::try_from(lit.value) {
            Ok(n) if n >= 1 => n,
            _ => {
                self.out_of_range(
                    lit.span,
                    &lit.text,
                    format!("{what} must be from 1 to 255, not `{}`", lit.text),
                    "write a whole number from 1 to 255",
                );
                1
            }
        }
    }

    fn mixed_scripts(&mut self, idents: &[Ident]) {
        for id in idents {
            if let Some(scripts) = names::mixed_scripts(&id.name) {
                let list: Vec<String> = scripts.iter().map(|s| s.full_name().to_string()).collect();
                let diag = Diag::at(
                    Code::W0306,
                    format!("name {} mixes {} letters", q(&id.name), list.join(" and ")),
                    self.src,
                    id.span,
                    "letters from several scripts",
                )
                .help("a letter that looks Latin may be Cyrillic or Greek; retype the name with one script");
                self.report.warning(MixedScriptsWarning {
                    name: id.name.clone(),
                    scripts: list,
                    diag,
                });
            }
        }
    }

    fn secrets(&mut self, strings: &[Str]) {
        for s in strings {
            if looks_like_secret(&s.value) {
                self.secret(s.span, "this looks like an API key");
            }
        }
    }

    fn secret(&mut self, span: Span, label: &str) {
        let diag = Diag::at(
            Code::R0210,
            "a secret is written in the policy",
            self.src,
            span,
            label,
        )
        .help("policies are committed and shared: put the key in an environment variable and write `key env(\"NAME\")`, then rotate this key");
        self.report.error(LiteralSecretError { diag });
    }
}

/// Whether a string is an environment variable name.
fn is_env_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether a string looks like an API key: a known key prefix, or a long
/// run of letters and digits with no spaces that mixes both (how generated
/// keys look, and how words, URLs and header names do not).
pub(crate) fn looks_like_secret(s: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "sk-",
        "sk_live_",
        "sk_test_",
        "xai-",
        "gsk_",
        "AIza",
        "ghp_",
        "gho_",
        "github_pat_",
        "glpat-",
        "hf_",
        "csk-",
        "xoxb-",
        "xoxp-",
        "AKIA",
    ];
    s.split(|c: char| c.is_whitespace() || c == '=' || c == ':')
        .any(|token| {
            let token = token.trim_matches(|c: char| c == '"' || c == '\'');
            let prefixed = PREFIXES
                .iter()
                .any(|p| token.starts_with(p) && token.len() >= p.len() + 16);
            let keyish = token.len() >= 32
                && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && token.chars().any(|c| c.is_ascii_digit())
                && token.chars().any(|c| c.is_ascii_uppercase())
                && token.chars().any(|c| c.is_ascii_lowercase());
            prefixed || keyish
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_look_like_keys_and_words_do_not() {
        assert!(looks_like_secret("sk-ant-api03-abcdefghijklmnopqrstuvwxyz"));
        assert!(looks_like_secret("Bearer sk-proj-0123456789abcdefABCDEF"));
        assert!(looks_like_secret("AIzaSyD-0123456789abcdefghijklmnop"));
        assert!(looks_like_secret("Zx8kQ2mNp4Lr7Tv1Wy3Bc6Df9Gh0Jk5Lm"));
        assert!(!looks_like_secret("X-OpenRouter-Data-Collection"));
        assert!(!looks_like_secret("https://api.example.com/v1/chat/completions"));
        assert!(!looks_like_secret("anthropic/claude-haiku-4.5"));
        assert!(!looks_like_secret("sk-"));
        assert!(!looks_like_secret("OPENROUTER_API_KEY"));
    }

    #[test]
    fn env_names_are_identifiers() {
        assert!(is_env_name("OPENAI_API_KEY"));
        assert!(!is_env_name("1KEY"));
        assert!(!is_env_name("MY KEY"));
        assert!(!is_env_name(""));
    }
}
