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
    BadLiteralError, DuplicateNameError, DuplicatePropertyError, LiteralSecretError, MatchWithoutElseError,
    MissingPropertyError, MixedScriptsWarning, SplitWeightsError, StoresInputsError, TrainsOnInputsError,
    UnknownAdapterError, UnknownNameError, UnknownTaskError, UnreachableArmError,
};
use crate::names;
use crate::report::CheckReport;
use crate::source::{SourceMap, Span};

/// Wire protocols an `adapter` may name.
pub(crate) const PROTOCOLS: &[&str] = &["openai", "anthropic", "gemini", "openai_compatible", "cli", "mock"];
/// OpenAI-compatible presets an `adapter` may name.
pub(crate) const PRESETS: &[&str] = &[
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
    pub(crate) requires: Option<Span>,
    pub(crate) max_tokens: Option<Span>,
    pub(crate) cost_limit: Option<Span>,
    pub(crate) max_attempts: Option<Span>,
    /// Where the workload's route is written (the expression after `route`).
    pub(crate) route: Option<Span>,
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
    };
    let policy = Policy::new(ast.src.names(), l.providers, l.targets, workloads, l.graph, defaults);
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

    // ---------------------------------------------------------------- providers

    fn provider(&mut self, p: &ProviderDecl) {
        let id = ProviderId(u32::try_from(self.providers.len()).unwrap_or(u32::MAX));
        let mut seen = HashMap::new();
        let mut adapter_name: Option<&Ident> = None;
        let mut base_url = None;
        let mut command: Option<Vec<String>> = None;
        let mut key = None;
        let mut tier = None;
        let mut jurisdiction = None;
        let mut data: Option<&Lit<DataClass>> = None;
        let mut trains: Option<&Lit<bool>> = None;
        let mut stores: Option<&Lit<bool>> = None;
        let mut no_store: Option<Header> = None;
        let mut headers = Vec::new();
        let mut limits = Limits::default();
        let mut timeout = None;
        let mut simulate = None;
        let mut models: Vec<&ModelDecl> = Vec::new();
        for prop in &p.props {
            let kw = prop.kind.keyword();
            let repeatable = matches!(prop.kind, ProviderProp::Header(_) | ProviderProp::Model(_));
            if !repeatable && self.once(&mut seen, kw, prop.key) {
                continue;
            }
            match &prop.kind {
                ProviderProp::Adapter(a) => adapter_name = Some(a),
                ProviderProp::BaseUrl(s) => base_url = Some(s.value.clone()),
                ProviderProp::Command(args) => command = Some(args.iter().map(|a| a.value.clone()).collect()),
                ProviderProp::Key(KeySpec::Env(s)) => {
                    if !is_env_name(&s.value) {
                        self.out_of_range(
                            s.span,
                            &s.text,
                            format!("{} is not an environment variable name", s.text),
                            "write the variable's name, letters, digits and `_`, like `env(\"OPENAI_API_KEY\")`",
                        );
                    }
                    key = Some(KeyRef { env: s.value.clone() });
                }
                ProviderProp::Key(KeySpec::Literal(s)) => {
                    // The secret scan reports strings that look like keys;
                    // any string here is a key, whatever it looks like.
                    if !looks_like_secret(&s.value) {
                        self.secret(s.span, "a key written as a string");
                    }
                }
                ProviderProp::Tier(t) => tier = Some(t.value),
                ProviderProp::Jurisdiction(j) => jurisdiction = Some(j.name.clone()),
                ProviderProp::Data(d) => data = Some(d),
                ProviderProp::TrainsOnInputs(b) => trains = Some(b),
                ProviderProp::StoresInputs(b) => stores = Some(b),
                ProviderProp::NoStore(h) => {
                    no_store = Some(Header {
                        name: h.name.value.clone(),
                        value: h.value.value.clone(),
                    })
                }
                ProviderProp::Header(h) => headers.push(Header {
                    name: h.name.value.clone(),
                    value: h.value.value.clone(),
                }),
                ProviderProp::Limits(list) => {
                    let mut seen_limit = HashMap::new();
                    for (kind, n) in list {
                        if self.once(&mut seen_limit, kind.value.as_str(), kind.span) {
                            continue;
                        }
                        match kind.value {
                            LimitKind::Rpm => limits.rpm = Some(n.value),
                            LimitKind::Tpm => limits.tpm = Some(n.value),
                            LimitKind::Concurrency => limits.concurrency = Some(n.value),
                        }
                    }
                }
                ProviderProp::Timeout(d) => timeout = Some(d.value),
                ProviderProp::Simulate(items) => simulate = self.simulate(items, prop.key),
                ProviderProp::Model(m) => models.push(m),
            }
        }

        let block = format!("provider {}", q(&p.name.name));
        let adapter = match adapter_name {
            None => {
                self.missing(
                    "adapter",
                    block.clone(),
                    p.name.span,
                    "say which protocol it speaks, e.g. `adapter anthropic`, or an OpenAI-compatible preset like `adapter groq`".to_string(),
                );
                Adapter::Mock
            }
            Some(a) => self.adapter(a, command.clone()),
        };
        match &adapter {
            Adapter::Cli { .. } if command.is_none() => self.missing(
                "command",
                block.clone(),
                p.name.span,
                "a `cli` provider runs a program: write `command \"prog\" \"arg\" …`".to_string(),
            ),
            Adapter::OpenaiCompatible { preset: None } if base_url.is_none() => self.missing(
                "base_url",
                block.clone(),
                p.name.span,
                "an `openai_compatible` provider needs its address: `base_url \"https://…/v1\"`".to_string(),
            ),
            _ => {}
        }
        let tier = tier.unwrap_or_else(|| {
            self.missing(
                "tier",
                block.clone(),
                p.name.span,
                "say how it is paid for: `tier free`, `tier subscription` or `tier paid`".to_string(),
            );
            Tier::Paid
        });
        let max_data = data.map_or(DataClass::Public, |d| d.value);
        let trains_on_inputs = trains.is_some_and(|b| b.value);
        let stores_inputs = stores.is_some_and(|b| b.value);
        if trains_on_inputs && max_data > DataClass::Public {
            let data_span = data.map_or(p.name.span, |d| d.span);
            let mut diag = Diag::at(
                Code::R0211,
                format!(
                    "provider {} trains on inputs but is cleared for {max_data} data",
                    q(&p.name.name)
                ),
                self.src,
                data_span,
                format!("cleared for {max_data} data"),
            )
            .help("a provider that trains on inputs may only receive public data: write `data public`");
            if let Some(t) = trains {
                diag = diag.label(t.span, "trains on what it receives");
            }
            self.report.error(TrainsOnInputsError {
                provider: p.name.name.clone(),
                diag,
            });
        }
        if stores_inputs && max_data > DataClass::Public && no_store.is_none() {
            let data_span = data.map_or(p.name.span, |d| d.span);
            let mut diag = Diag::at(
                Code::R0212,
                format!(
                    "provider {} stores inputs but is cleared for {max_data} data without a no-store header",
                    q(&p.name.name)
                ),
                self.src,
                data_span,
                format!("cleared for {max_data} data"),
            )
            .help("send a header that tells it not to keep inputs (`no_store header \"NAME\" = \"VALUE\"`), or write `data public`");
            if let Some(s) = stores {
                diag = diag.label(s.span, "keeps what it receives");
            }
            self.report.error(StoresInputsError {
                provider: p.name.name.clone(),
                diag,
            });
        }

        let mut target_ids = Vec::new();
        let mut seen_models: HashMap<(&'static str, String), Span> = HashMap::new();
        for m in models {
            if self.duplicate(&mut seen_models, "model", &m.name) {
                continue;
            }
            let tid = TargetId(u32::try_from(self.targets.len()).unwrap_or(u32::MAX));
            let target = self.model(id, m);
            self.targets.push(target);
            self.target_spans.push(m.name.span);
            target_ids.push(tid);
        }

        self.provider_ids.insert(p.name.name.clone(), id);
        self.provider_info.push(ProviderInfo {
            name: p.name.span,
            data: data.map(|d| d.span),
        });
        self.providers.push(Provider {
            name: p.name.name.clone(),
            adapter,
            base_url,
            key,
            tier,
            jurisdiction,
            max_data,
            trains_on_inputs,
            stores_inputs,
            no_store_header: no_store,
            headers,
            limits,
            timeout,
            simulate,
            targets: target_ids,
            origin: self.src.origin(p.span),
        });
    }

    fn adapter(&mut self, a: &Ident, command: Option<Vec<String>>) -> Adapter {
        match a.name.as_str() {
            "openai" => Adapter::Openai,
            "anthropic" => Adapter::Anthropic,
            "gemini" => Adapter::Gemini,
            "openai_compatible" => Adapter::OpenaiCompatible { preset: None },
            "cli" => Adapter::Cli {
                command: command.unwrap_or_default(),
            },
            "mock" => Adapter::Mock,
            preset if PRESETS.contains(&preset) => Adapter::OpenaiCompatible {
                preset: Some(preset.to_string()),
            },
            other => {
                let suggestion = names::did_you_mean(other, PROTOCOLS.iter().chain(PRESETS).copied());
                let diag = Diag::at(
                    Code::R0103,
                    format!("unknown adapter {}", q(other)),
                    self.src,
                    a.span,
                    match &suggestion {
                        Some(s) => format!("did you mean {}?", q(s)),
                        None => "not an adapter".to_string(),
                    },
                )
                .help(format!(
                    "adapters are {}; OpenAI-compatible presets are {}; for any other OpenAI-compatible service write `adapter openai_compatible` and a `base_url`",
                    PROTOCOLS.iter().map(|p| q(p)).collect::<Vec<_>>().join(", "),
                    PRESETS.iter().map(|p| q(p)).collect::<Vec<_>>().join(", ")
                ));
                self.report.error(UnknownAdapterError {
                    adapter: other.to_string(),
                    suggestion,
                    diag,
                });
                Adapter::Mock
            }
        }
    }

    fn simulate(&mut self, items: &[SimItem], key: Span) -> Option<SimProfile> {
        let mut seen = HashMap::new();
        let mut latency = None;
        let mut error_bp = 0u16;
        let mut rate_limit_bp = 0u16;
        for item in items {
            match item {
                SimItem::Latency { p50, p95 } => {
                    if self.once(&mut seen, "latency", p50.span) {
                        continue;
                    }
                    let p95 = p95.as_ref().map_or(p50.value.saturating_mul(2), |p| p.value);
                    latency = Some((p50.value, p95));
                }
                SimItem::Errors(p) => {
                    if !self.once(&mut seen, "errors", p.span) {
                        error_bp = u16::try_from(p.value).unwrap_or(10_000);
                    }
                }
                SimItem::RateLimits(p) => {
                    if !self.once(&mut seen, "rate_limits", p.span) {
                        rate_limit_bp = u16::try_from(p.value).unwrap_or(10_000);
                    }
                }
            }
        }
        let Some((latency_p50, latency_p95)) = latency else {
            self.missing(
                "latency",
                "`simulate`".to_string(),
                key,
                "say how long a simulated call takes: `simulate latency 400ms p95 900ms`".to_string(),
            );
            return None;
        };
        Some(SimProfile {
            latency_p50,
            latency_p95,
            error_bp,
            rate_limit_bp,
        })
    }

    fn model(&mut self, provider: ProviderId, m: &ModelDecl) -> Target {
        let mut seen = HashMap::new();
        let mut target = Target {
            provider,
            model: m.name.name.clone(),
            api_id: m.name.name.clone(),
            version: None,
            price: None,
            context_window: None,
            max_output: None,
            capabilities: Capabilities::NONE,
            simulate: None,
            origin: self.src.origin(m.span),
        };
        for prop in &m.props {
            if self.once(&mut seen, prop.kind.keyword(), prop.key) {
                continue;
            }
            match &prop.kind {
                ModelProp::Id(s) => target.api_id = s.value.clone(),
                ModelProp::Version(s) => target.version = Some(s.value.clone()),
                ModelProp::Price(PriceAst::Free) => target.price = Some(Price::FREE),
                ModelProp::Price(PriceAst::PerMillion { input, output }) => {
                    target.price = Some(Price {
                        input_per_mtok: Usd::from_nanos(input.value),
                        output_per_mtok: Usd::from_nanos(output.value),
                    })
                }
                ModelProp::Context(n) => target.context_window = Some(n.value),
                ModelProp::MaxOutput(n) => target.max_output = Some(n.value),
                ModelProp::Supports(caps) => target.capabilities = caps.iter().map(|c| c.value).collect(),
                ModelProp::Simulate(items) => target.simulate = self.simulate(items, prop.key),
            }
        }
        target
    }

    // ---------------------------------------------------------------- workloads

    fn workload(&mut self, w: &WorkloadDecl) -> (Workload, WorkloadInfo) {
        let mut seen = HashMap::new();
        let mut info = WorkloadInfo {
            name: w.name.span,
            ..WorkloadInfo::default()
        };
        let mut wl = Workload {
            name: w.name.name.clone(),
            aliases: Vec::new(),
            task: None,
            quality: None,
            data: DataClass::Private,
            max_tokens: None,
            latency_budget: None,
            max_cost_per_call: None,
            requires: Capabilities::NONE,
            budget: Budget::default(),
            max_attempts: None,
            idempotency_window: None,
            route: NodeId(0),
            origin: self.src.origin(w.span),
        };
        let mut route = None;
        let mut seen_limits = HashMap::new();
        for prop in &w.props {
            let repeatable = matches!(prop.kind, WorkloadProp::Budget { .. });
            if !repeatable && self.once(&mut seen, prop.kind.keyword(), prop.key) {
                continue;
            }
            match &prop.kind {
                WorkloadProp::Task(t) => match Task::from_keyword(&t.name) {
                    Some(task) => wl.task = Some(task),
                    None => {
                        let suggestion = names::did_you_mean(&t.name, Task::ALL.iter().map(|t| t.as_str()));
                        let diag = Diag::at(
                            Code::R0104,
                            format!("unknown task {}", q(&t.name)),
                            self.src,
                            t.span,
                            match &suggestion {
                                Some(s) => format!("did you mean {}?", q(s)),
                                None => "not a task".to_string(),
                            },
                        )
                        .help(format!(
                            "tasks are {}",
                            Task::ALL.iter().map(|t| q(t.as_str())).collect::<Vec<_>>().join(", ")
                        ));
                        self.report.error(UnknownTaskError {
                            task: t.name.clone(),
                            suggestion,
                            diag,
                        });
                    }
                },
                WorkloadProp::Quality(x) => wl.quality = Some(x.value),
                WorkloadProp::Data(d) => {
                    wl.data = d.value;
                    info.data = Some(prop.span);
                }
                WorkloadProp::MaxTokens(n) => {
                    wl.max_tokens = Some(n.value);
                    info.max_tokens = Some(prop.span);
                }
                WorkloadProp::Latency(d) => wl.latency_budget = Some(d.value),
                WorkloadProp::MaxCost(m) => {
                    wl.max_cost_per_call = Some(Usd::from_nanos(m.value));
                    info.cost_limit.get_or_insert(prop.span);
                }
                WorkloadProp::Requires(caps) => {
                    wl.requires = caps.iter().map(|c| c.value).collect();
                    info.requires = Some(prop.span);
                }
                WorkloadProp::Budget { limits, alert } => {
                    for limit in limits {
                        let (kw, period) = match (&limit.amount, limit.period.value) {
                            (Amount::Tokens(_), Period::Day) => ("tokens/day", Period::Day),
                            (Amount::Tokens(_), Period::Month) => ("tokens/month", Period::Month),
                            (Amount::Usd(_), Period::Day) => ("$/day", Period::Day),
                            (Amount::Usd(_), Period::Month) => ("$/month", Period::Month),
                        };
                        if self.once(&mut seen_limits, kw, limit.span) {
                            continue;
                        }
                        match (&limit.amount, period) {
                            (Amount::Tokens(n), Period::Day) => wl.budget.tokens_per_day = Some(n.value),
                            (Amount::Tokens(n), Period::Month) => wl.budget.tokens_per_month = Some(n.value),
                            (Amount::Usd(m), Period::Day) => {
                                wl.budget.usd_per_day = Some(Usd::from_nanos(m.value));
                                info.cost_limit = Some(limit.span);
                            }
                            (Amount::Usd(m), Period::Month) => {
                                wl.budget.usd_per_month = Some(Usd::from_nanos(m.value));
                                info.cost_limit = Some(limit.span);
                            }
                        }
                    }
                    if let Some(a) = alert {
                        if self.once(&mut seen_limits, "alert", a.span) {
                            continue;
                        }
                        if a.value == 0 || a.value % 100 != 0 {
                            self.out_of_range(
                                a.span,
                                &a.text,
                                format!(
                                    "alert threshold `{}` must be a whole percentage from 1% to 100%",
                                    a.text
                                ),
                                "write a whole percentage, like `alert 80%`",
                            );
                        } else {
                            wl.budget.alert_percent = u8::try_from(a.value / 100).ok();
                        }
                    }
                }
                WorkloadProp::MaxAttempts(n) => {
                    wl.max_attempts = Some(self.small(n, "`max_attempts`"));
                    info.max_attempts = Some(prop.span);
                }
                WorkloadProp::Idempotent(d) => {
                    wl.idempotency_window = Some(d.as_ref().map_or(Duration::from_secs(600), |d| d.value))
                }
                WorkloadProp::Alias(list) => wl.aliases = list.iter().map(|s| s.value.clone()).collect(),
                WorkloadProp::Route(e) => route = Some(e),
            }
        }
        wl.route = match route {
            Some(e) => {
                info.route = Some(e.head);
                let owner = format!("workload:{}", w.name.name);
                self.lower_expr(e, &owner, "")
            }
            None => {
                self.missing(
                    "route",
                    format!("workload {}", q(&w.name.name)),
                    w.name.span,
                    "say where its calls go, e.g. `route anthropic/claude-haiku-4.5` or `route NAME` for a named route"
                        .to_string(),
                );
                self.add(None, w.name.span, NodeKind::Unresolved)
            }
        };
        (wl, info)
    }

    fn aliases(&mut self, decls: &[&WorkloadDecl], workloads: &[Workload]) {
        let mut seen: HashMap<String, (Span, String)> = HashMap::new();
        for w in decls {
            seen.insert(
                w.name.name.clone(),
                (w.name.span, format!("workload {}", q(&w.name.name))),
            );
        }
        for (decl, wl) in decls.iter().zip(workloads) {
            for prop in &decl.props {
                let WorkloadProp::Alias(list) = &prop.kind else {
                    continue;
                };
                for s in list {
                    if let Some((first, what)) = seen.get(&s.value) {
                        let diag = Diag::at(
                            Code::R0102,
                            format!("alias {} of workload {} is already {what}", q(&s.value), q(&wl.name)),
                            self.src,
                            s.span,
                            "alias given here",
                        )
                        .label(*first, "already used here")
                        .help("a name may mean one workload only; pick another alias");
                        self.report.error(DuplicateNameError {
                            kind: "alias",
                            name: s.value.clone(),
                            diag,
                        });
                    } else {
                        seen.insert(
                            s.value.clone(),
                            (s.span, format!("an alias of workload {}", q(&wl.name))),
                        );
                    }
                }
            }
        }
    }

    fn defaults(&mut self, decls: &[&DefaultsDecl]) -> Defaults {
        let mut defaults = Defaults::default();
        let mut seen = HashMap::new();
        for d in decls {
            for prop in &d.props {
                let DefaultsProp::MaxAttempts(n) = &prop.kind;
                if self.once(&mut seen, "max_attempts", prop.key) {
                    continue;
                }
                defaults.max_attempts = self.small(n, "`max_attempts`");
            }
        }
        defaults
    }

    // ---------------------------------------------------------------- routes

    /// Lowers `e` as a new node (or, for a reference, returns the named node).
    fn lower_expr(&mut self, e: &Expr, owner: &str, path: &str) -> NodeId {
        if let ExprKind::Ref(name) = &e.kind {
            return self.reference(name);
        }
        let node = self.add(None, e.head, NodeKind::Unresolved);
        self.lower_into(node, e, &format!("{owner}{path}"));
        node
    }

    /// Lowers `e` into the existing node `node`; `salt` is the node's place.
    fn lower_into(&mut self, node: NodeId, e: &Expr, salt: &str) {
        let kind = match &e.kind {
            ExprKind::Ref(name) => {
                let child = self.reference(name);
                self.edges.insert((node, child), name.span);
                NodeKind::Fallback {
                    children: vec![child],
                    free_first: false,
                    rules: ChainRules::default(),
                }
            }
            ExprKind::Target { provider, model } => match self.target(provider, model) {
                Some(target) => NodeKind::Target { target },
                None => NodeKind::Unresolved,
            },
            ExprKind::Fallback {
                free_first,
                items,
                rules,
            } => {
                let children = self.children(node, items.iter(), salt);
                if *free_first {
                    self.free_first.push(node);
                }
                NodeKind::Fallback {
                    children,
                    free_first: *free_first,
                    rules: self.rules(rules),
                }
            }
            ExprKind::Split { key, arms } => {
                let total: u64 = arms.iter().filter_map(|a| a.weight.as_ref()).map(|w| w.value).sum();
                if total != 100 {
                    self.split_weights(e, arms, total);
                }
                let children = self.children(node, arms.iter().map(|a| &a.expr), salt);
                let weights = arms.iter().map(|a| weight(a.weight.as_ref()));
                NodeKind::Split {
                    key: match &key.value {
                        SplitKeyAst::User => SplitKey::User,
                        SplitKeyAst::Request => SplitKey::Request,
                        SplitKeyAst::Metadata(k) => SplitKey::Metadata(k.clone()),
                    },
                    salt: salt.to_string(),
                    arms: weights.zip(children).collect(),
                }
            }
            ExprKind::Select { strategy, arms, rules } => {
                let children = self.children(node, arms.iter().map(|a| &a.expr), salt);
                let weights = arms.iter().map(|a| a.weight.as_ref().map_or(1, |w| weight(Some(w))));
                NodeKind::Select {
                    strategy: strategy.value,
                    children: weights.zip(children).collect(),
                    rules: self.rules(rules),
                }
            }
            ExprKind::Escalate { items, check, rules } => {
                let children = self.children(node, items.iter(), salt);
                NodeKind::Escalate {
                    children,
                    check: self.quality_check(check),
                    rules: self.rules(rules),
                }
            }
            ExprKind::Match { arms } => {
                let mut lowered = Vec::new();
                let mut otherwise = None;
                let exprs: Vec<&Expr> = arms.iter().map(|a| &a.expr).collect();
                let children = self.children(node, exprs.into_iter(), salt);
                let mut conds: Vec<Option<Condition>> = Vec::new();
                for (arm, child) in arms.iter().zip(children) {
                    match &arm.cond {
                        Some(c) => {
                            let c = self.condition(c);
                            conds.push(Some(c.clone()));
                            // Arms after an `else` are never taken (reported
                            // below) and do not belong in the IR.
                            if otherwise.is_none() {
                                lowered.push((c, child));
                            }
                        }
                        None => {
                            conds.push(None);
                            otherwise.get_or_insert(child);
                        }
                    }
                }
                self.unreachable_arms(arms, &conds);
                if otherwise.is_none() {
                    let diag = Diag::at(Code::R0205, "`match` has no `else` arm", self.src, e.head, "no `else`")
                        .help("add `else => ROUTE` as the last arm, for calls no `when` matches");
                    self.report.error(MatchWithoutElseError { diag });
                }
                NodeKind::Match {
                    arms: lowered,
                    otherwise,
                }
            }
        };
        self.set(node, kind);
    }

    fn children<'e>(&mut self, parent: NodeId, items: impl Iterator<Item = &'e Expr>, salt: &str) -> Vec<NodeId> {
        let mut out = Vec::new();
        for (i, item) in items.enumerate() {
            let child = self.lower_expr(item, salt, &format!("/{i}"));
            let span = match &item.kind {
                ExprKind::Ref(name) => name.span,
                _ => item.head,
            };
            self.edges.entry((parent, child)).or_insert(span);
            out.push(child);
        }
        out
    }

    fn reference(&mut self, name: &Ident) -> NodeId {
        if let Some(node) = self.routes.get(&name.name) {
            return *node;
        }
        let suggestion = names::did_you_mean(&name.name, self.routes.keys().map(String::as_str));
        let mut diag = Diag::at(
            Code::R0101,
            format!("unknown route {}", q(&name.name)),
            self.src,
            name.span,
            match &suggestion {
                Some(s) => format!("did you mean {}?", q(s)),
                None => "no route has this name".to_string(),
            },
        );
        diag = if self.provider_ids.contains_key(&name.name) {
            diag.help(format!(
                "{} is a provider; a target is written `{}/MODEL`",
                q(&name.name),
                name.name
            ))
        } else {
            diag.help("define it with `route NAME = …`, or write a target as `provider/model`")
        };
        self.report.error(UnknownNameError {
            kind: "route",
            name: name.name.clone(),
            suggestion,
            diag,
        });
        self.add(None, name.span, NodeKind::Unresolved)
    }

    fn target(&mut self, provider: &Ident, model: &Ident) -> Option<TargetId> {
        let Some(pid) = self.provider_ids.get(&provider.name).copied() else {
            let suggestion = names::did_you_mean(&provider.name, self.provider_ids.keys().map(String::as_str));
            let diag = Diag::at(
                Code::R0101,
                format!("unknown provider {}", q(&provider.name)),
                self.src,
                provider.span,
                match &suggestion {
                    Some(s) => format!("did you mean {}?", q(s)),
                    None => "no provider has this name".to_string(),
                },
            )
            .help("define it with `provider NAME { … }`");
            self.report.error(UnknownNameError {
                kind: "provider",
                name: provider.name.clone(),
                suggestion,
                diag,
            });
            return None;
        };
        let p = self.providers.get(pid.0 as usize)?;
        let found = p
            .targets
            .iter()
            .copied()
            .find(|t| self.targets.get(t.0 as usize).is_some_and(|t| t.model == model.name));
        if found.is_none() {
            let models: Vec<&str> = p
                .targets
                .iter()
                .filter_map(|t| self.targets.get(t.0 as usize))
                .map(|t| t.model.as_str())
                .collect();
            let suggestion = names::did_you_mean(&model.name, models.iter().copied());
            let help = if models.is_empty() {
                format!(
                    "provider {} declares no models; add `model {} {{ … }}` to it",
                    q(&p.name),
                    model.name
                )
            } else {
                format!(
                    "provider {} offers {}",
                    q(&p.name),
                    models.iter().map(|m| q(m)).collect::<Vec<_>>().join(", ")
                )
            };
            let diag = Diag::at(
                Code::R0101,
                format!("provider {} has no model {}", q(&provider.name), q(&model.name)),
                self.src,
                model.span,
                match &suggestion {
                    Some(s) => format!("did you mean {}?", q(s)),
                    None => "no such model".to_string(),
                },
            )
            .help(help);
            self.report.error(UnknownNameError {
                kind: "model",
                name: model.name.clone(),
                suggestion,
                diag,
            });
        }
        found
    }

    fn split_weights(&mut self, e: &Expr, arms: &[Arm], total: u64) {
        let mut diag = Diag::at(
            Code::R0204,
            format!("split weights add up to {total}, not 100"),
            self.src,
            e.head,
            format!("weights total {total}"),
        );
        for a in arms {
            if let Some(w) = &a.weight {
                diag = diag.label(w.span, format!("{}", w.value));
            }
        }
        diag = diag.help("weights are percentages of calls: make them sum to exactly 100");
        self.report.error(SplitWeightsError { total, diag });
    }

    fn rules(&mut self, items: &[RuleItem]) -> ChainRules {
        let mut rules = ChainRules::default();
        let mut seen = HashMap::new();
        for item in items {
            match item {
                RuleItem::On(triggers) => {
                    if let Some(t) = triggers.first()
                        && self.once(&mut seen, "on", t.trigger.span)
                    {
                        continue;
                    }
                    let mut set = Triggers::NONE;
                    for t in triggers {
                        set.insert(t.trigger.value);
                        if let Some(d) = &t.timeout {
                            rules.attempt_timeout = Some(d.value);
                        }
                    }
                    rules.triggers = set;
                }
                RuleItem::Retry(n) => {
                    if self.once(&mut seen, "retry", n.span) {
                        continue;
                    }
                    match u8::try_from(n.value) {
                        Ok(r) if r <= 10 => rules.retries = r,
                        _ => self.out_of_range(
                            n.span,
                            &n.text,
                            format!("`retry {}` is too many retries", n.text),
                            "retry a target at most 10 times before moving on",
                        ),
                    }
                }
                RuleItem::AllowRepeat(span) => {
                    if !self.once(&mut seen, "allow_repeat", *span) {
                        rules.allow_repeat = true;
                    }
                }
            }
        }
        rules
    }

    fn quality_check(&mut self, c: &Lit<CheckAst>) -> QualityCheck {
        match &c.value {
            CheckAst::JsonValid => QualityCheck::JsonValid,
            CheckAst::JsonSchema => QualityCheck::JsonSchema,
            CheckAst::NonEmpty => QualityCheck::NonEmpty,
            CheckAst::Regex(s) => QualityCheck::Regex(s.value.clone()),
            CheckAst::Evaluator(w) => {
                match self.workload_ids.get(&w.name) {
                    Some(id) => QualityCheck::Evaluator(*id),
                    None => {
                        let suggestion = names::did_you_mean(&w.name, self.workload_ids.keys().map(String::as_str));
                        let diag = Diag::at(
                        Code::R0101,
                        format!("unknown workload {}", q(&w.name)),
                        self.src,
                        w.span,
                        match &suggestion {
                            Some(s) => format!("did you mean {}?", q(s)),
                            None => "no workload has this name".to_string(),
                        },
                    )
                    .help("an evaluator is another workload that judges the answer; define it with `workload NAME { … }`");
                        self.report.error(UnknownNameError {
                            kind: "workload",
                            name: w.name.clone(),
                            suggestion,
                            diag,
                        });
                        QualityCheck::NonEmpty
                    }
                }
            }
        }
    }

    fn unreachable_arms(&mut self, arms: &[MatchArm], conds: &[Option<Condition>]) {
        let refs: Vec<Option<&Condition>> = conds.iter().map(Option::as_ref).collect();
        for (i, cause) in matches::unreachable(&refs) {
            let Some(arm) = arms.get(i) else { continue };
            let (label, help, other) = match cause {
                Cause::Never => (
                    "this condition is never true".to_string(),
                    "no request satisfies it; fix the condition or remove the arm".to_string(),
                    None,
                ),
                Cause::Arm(j) => (
                    "never taken".to_string(),
                    "arms are tried in order and the first that holds wins: move this arm above the one that takes its calls, or remove it".to_string(),
                    arms.get(j),
                ),
                Cause::Arms => (
                    "never taken".to_string(),
                    "the arms above take every call this one would; move it up or remove it".to_string(),
                    None,
                ),
            };
            let mut diag = Diag::at(
                Code::R0206,
                format!("`match` arm {} can never be taken", i + 1),
                self.src,
                arm.head,
                label,
            )
            .help(help);
            if let Some(other) = other {
                let what = if other.cond.is_some() {
                    "this arm takes every call it would"
                } else {
                    "`else` takes every call after it"
                };
                diag = diag.label(other.head, what);
            }
            self.report.error(UnreachableArmError { arm: i + 1, diag });
        }
    }

    fn condition(&mut self, c: &Cond) -> Condition {
        lower_cond(c, &mut |t: &Ident| self.task_name(t))
    }

    fn task_name(&mut self, t: &Ident) -> Task {
        Task::from_keyword(&t.name).unwrap_or_else(|| {
            let suggestion = names::did_you_mean(&t.name, Task::ALL.iter().map(|t| t.as_str()));
            let diag = Diag::at(
                Code::R0104,
                format!("unknown task {}", q(&t.name)),
                self.src,
                t.span,
                match &suggestion {
                    Some(s) => format!("did you mean {}?", q(s)),
                    None => "not a task".to_string(),
                },
            )
            .help(format!(
                "tasks are {}",
                Task::ALL.iter().map(|t| q(t.as_str())).collect::<Vec<_>>().join(", ")
            ));
            self.report.error(UnknownTaskError {
                task: t.name.clone(),
                suggestion,
                diag,
            });
            Task::Chat
        })
    }

    /// Sorts each `free_first` node's children by the lowest tier they reach.
    fn sort_free_first(&mut self) {
        let mut memo: HashMap<NodeId, Option<Tier>> = HashMap::new();
        for node in self.free_first.clone() {
            let Some(NodeKind::Fallback { children, .. }) = self.graph.get(node).map(|n| n.kind.clone()) else {
                continue;
            };
            let mut keyed: Vec<(Option<Tier>, NodeId)> = children
                .iter()
                .map(|c| (self.lowest_tier(*c, &mut memo, &mut Vec::new()), *c))
                .collect();
            // Unresolved children (no tier) go last; `sort_by_key` is stable.
            keyed.sort_by_key(|(t, _)| t.map_or(3, |t| t as u8));
            if let Some(RouteNode {
                kind: NodeKind::Fallback { children, .. },
                ..
            }) = self.graph.get_mut(node)
            {
                *children = keyed.into_iter().map(|(_, c)| c).collect();
            }
        }
    }

    fn lowest_tier(
        &self,
        node: NodeId,
        memo: &mut HashMap<NodeId, Option<Tier>>,
        stack: &mut Vec<NodeId>,
    ) -> Option<Tier> {
        if let Some(t) = memo.get(&node) {
            return *t;
        }
        if stack.contains(&node) {
            return None; // a cycle; reported by the cycle check
        }
        let kind = &self.graph.get(node)?.kind;
        let tier = match kind {
            NodeKind::Target { target } => self
                .targets
                .get(target.0 as usize)
                .and_then(|t| self.providers.get(t.provider.0 as usize))
                .map(|p| p.tier),
            other => {
                stack.push(node);
                let t = other
                    .children()
                    .into_iter()
                    .filter_map(|c| self.lowest_tier(c, memo, stack))
                    .min();
                stack.pop();
                t
            }
        };
        memo.insert(node, tier);
        tier
    }
}

fn weight(w: Option<&Lit<u64>>) -> u32 {
    w.map_or(0, |w| u32::try_from(w.value).unwrap_or(u32::MAX))
}

/// Lowers a condition; `task` resolves task names (reporting unknown ones).
pub(crate) fn lower_cond(c: &Cond, task: &mut dyn FnMut(&Ident) -> Task) -> Condition {
    match &c.kind {
        CondKind::Or(parts) => Condition::Any(parts.iter().map(|p| lower_cond(p, task)).collect()),
        CondKind::And(parts) => Condition::All(parts.iter().map(|p| lower_cond(p, task)).collect()),
        CondKind::Not { times, inner } => {
            let inner = lower_cond(inner, task);
            if times % 2 == 0 {
                inner
            } else {
                Condition::Not(Box::new(inner))
            }
        }
        CondKind::Paren(inner) => lower_cond(inner, task),
        CondKind::True => Condition::All(Vec::new()),
        CondKind::False => Condition::Any(Vec::new()),
        CondKind::Has(f) => Condition::Has(f.value),
        CondKind::HasMetadata(k) => Condition::HasMetadata(k.value.clone()),
        CondKind::Compare { fact, op, value } => Condition::Compare {
            fact: fact.value,
            op: op.value,
            value: value.value,
        },
        CondKind::Metadata { key, op, value } => Condition::Metadata {
            key: key.value.clone(),
            op: op.value,
            value: value.value.clone(),
        },
        CondKind::Task { op, task: t } => {
            let is = Condition::TaskIs(task(t));
            if op.value == CmpOp::Ne {
                Condition::Not(Box::new(is))
            } else {
                is
            }
        }
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
