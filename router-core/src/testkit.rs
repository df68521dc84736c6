//! Builds small policies in code for the engine's unit tests, so they do not
//! depend on the language crate (which depends on this one).

use std::time::Duration;

use crate::origin::Origin;
use crate::policy::{Defaults, Policy};
use crate::provider::{
    Adapter, Capabilities, Capability, DataClass, Limits, Provider, ProviderId, Target, TargetId, Tier,
};
use crate::route::{ChainRules, Condition, NodeId, NodeKind, QualityCheck, RouteGraph, RouteNode, SplitKey, Strategy};
use crate::units::{Price, Usd};
use crate::workload::{Budget, Task, Workload, WorkloadId};

/// Every chat capability: all but `embeddings`, which makes a model an
/// embedding model.
pub fn all_caps() -> Capabilities {
    Capability::ALL
        .into_iter()
        .filter(|c| *c != Capability::Embeddings)
        .collect()
}

/// A price from dollars-per-million written as (input, output) in
/// thousandths of a dollar, so `price(15_000, 75_000)` is Opus.
pub fn price(in_milli: u64, out_milli: u64) -> Price {
    Price {
        input_per_mtok: Usd::from_nanos(in_milli * 1_000_000),
        output_per_mtok: Usd::from_nanos(out_milli * 1_000_000),
    }
}

/// A policy under construction.
#[derive(Default)]
pub struct Builder {
    providers: Vec<Provider>,
    targets: Vec<Target>,
    workloads: Vec<Workload>,
    routes: RouteGraph,
    defaults: Defaults,
}

impl Builder {
    pub fn new() -> Self {
        Builder::default()
    }

    /// Adds a provider.
    pub fn provider(&mut self, name: &str, tier: Tier, max_data: DataClass) -> ProviderId {
        let id = ProviderId(self.providers.len() as u32);
        self.providers.push(Provider {
            name: name.into(),
            adapter: Adapter::Mock,
            base_url: None,
            key: None,
            tier,
            jurisdiction: None,
            max_data,
            trains_on_inputs: false,
            stores_inputs: false,
            no_store_header: None,
            headers: Vec::new(),
            limits: Limits::default(),
            timeout: None,
            failure: crate::FailureSettings::default(),
            simulate: None,
            targets: Vec::new(),
            origin: Origin::default(),
        });
        id
    }

    /// Mutable access to a provider for unusual settings.
    pub fn provider_mut(&mut self, id: ProviderId) -> &mut Provider {
        &mut self.providers[id.0 as usize]
    }

    /// Adds a model with every capability, no limits and the given price.
    pub fn model(&mut self, provider: ProviderId, name: &str, price: Option<Price>) -> TargetId {
        let id = TargetId(self.targets.len() as u32);
        self.targets.push(Target {
            provider,
            model: name.into(),
            api_id: name.into(),
            version: None,
            price,
            context_window: None,
            max_output: None,
            capabilities: all_caps(),
            simulate: None,
            origin: Origin::default(),
        });
        self.providers[provider.0 as usize].targets.push(id);
        id
    }

    /// Mutable access to a target for limits and capabilities.
    pub fn target_mut(&mut self, id: TargetId) -> &mut Target {
        &mut self.targets[id.0 as usize]
    }

    fn add(&mut self, kind: NodeKind) -> NodeId {
        self.routes.add(RouteNode {
            name: None,
            kind,
            origin: Origin::default(),
        })
    }

    /// Names a node (as `route NAME = …` would).
    pub fn name(&mut self, id: NodeId, name: &str) {
        if let Some(n) = self.routes.get_mut(id) {
            n.name = Some(name.into());
        }
    }

    /// A leaf for `target`.
    pub fn leaf(&mut self, target: TargetId) -> NodeId {
        self.add(NodeKind::Target { target })
    }

    /// Leaves for several targets.
    pub fn leaves(&mut self, targets: &[TargetId]) -> Vec<NodeId> {
        targets.iter().map(|t| self.leaf(*t)).collect()
    }

    pub fn fallback(&mut self, children: Vec<NodeId>, rules: ChainRules) -> NodeId {
        self.add(NodeKind::Fallback {
            children,
            free_first: false,
            rules,
        })
    }

    /// `free_first`: sorts children that are leaves by tier, stably, as
    /// lowering does.
    pub fn free_first(&mut self, mut children: Vec<NodeId>, rules: ChainRules) -> NodeId {
        let tier = |b: &Builder, n: &NodeId| match b.routes[*n].kind {
            NodeKind::Target { target } => b.providers[b.targets[target.0 as usize].provider.0 as usize].tier,
            _ => Tier::Paid,
        };
        let tiers: Vec<Tier> = children.iter().map(|n| tier(self, n)).collect();
        let mut idx: Vec<usize> = (0..children.len()).collect();
        idx.sort_by_key(|i| tiers[*i]);
        children = idx.into_iter().map(|i| children[i]).collect();
        self.add(NodeKind::Fallback {
            children,
            free_first: true,
            rules,
        })
    }

    pub fn split(&mut self, key: SplitKey, salt: &str, arms: Vec<(u32, NodeId)>) -> NodeId {
        self.add(NodeKind::Split {
            key,
            salt: salt.into(),
            arms,
        })
    }

    pub fn select(&mut self, strategy: Strategy, children: Vec<(u32, NodeId)>, rules: ChainRules) -> NodeId {
        self.add(NodeKind::Select {
            strategy,
            children,
            rules,
        })
    }

    pub fn matcher(&mut self, arms: Vec<(Condition, NodeId)>, otherwise: Option<NodeId>) -> NodeId {
        self.add(NodeKind::Match { arms, otherwise })
    }

    pub fn escalate(&mut self, children: Vec<NodeId>, check: QualityCheck, rules: ChainRules) -> NodeId {
        self.add(NodeKind::Escalate { children, check, rules })
    }

    /// Adds a workload with defaults; adjust with [`Builder::workload_mut`].
    pub fn workload(&mut self, name: &str, data: DataClass, route: NodeId) -> WorkloadId {
        let id = WorkloadId(self.workloads.len() as u32);
        self.workloads.push(Workload {
            name: name.into(),
            aliases: Vec::new(),
            task: None,
            quality: None,
            data,
            max_tokens: None,
            latency_budget: None,
            max_cost_per_call: None,
            jurisdictions: Vec::new(),
            requires: Capabilities::NONE,
            budget: Budget::default(),
            max_attempts: None,
            idempotency_window: None,
            stream_recovery: crate::StreamRecovery::Off,
            route,
            origin: Origin::default(),
        });
        id
    }

    pub fn workload_mut(&mut self, id: WorkloadId) -> &mut Workload {
        &mut self.workloads[id.0 as usize]
    }

    #[allow(dead_code, reason = "for tests of policy-wide defaults")]
    pub fn defaults_mut(&mut self) -> &mut Defaults {
        &mut self.defaults
    }

    pub fn build(self) -> Policy {
        Policy::new(
            vec!["test.route".into()],
            self.providers,
            self.targets,
            self.workloads,
            self.routes,
            self.defaults,
        )
    }
}

/// Chain rules with a per-attempt timeout.
pub fn rules_timeout(secs: u64) -> ChainRules {
    ChainRules {
        attempt_timeout: Some(Duration::from_secs(secs)),
        ..ChainRules::default()
    }
}

/// The seed scenario of the product brief, built in code: the same
/// providers, models, workloads and routes as `examples/policies/seed.route`.
pub fn seed() -> Policy {
    use DataClass::{Internal, Private, Public};
    let mut b = Builder::new();
    let anthropic = b.provider("anthropic", Tier::Paid, Private);
    let opus = b.model(anthropic, "claude-opus-4.1", Some(price(15_000, 75_000)));
    let haiku = b.model(anthropic, "claude-haiku-4.5", Some(price(1_000, 5_000)));
    let openrouter = b.provider("openrouter", Tier::Paid, Private);
    let or_opus = b.model(openrouter, "claude-opus-4.1", Some(price(15_000, 75_000)));
    let or_haiku = b.model(openrouter, "claude-haiku-4.5", Some(price(1_000, 5_000)));
    let cerebras = b.provider("cerebras", Tier::Free, Public);
    let llama = b.model(cerebras, "llama-3.3-70b", Some(Price::FREE));
    let gemini = b.provider("gemini_free", Tier::Free, Public);
    let flash = b.model(gemini, "gemini-2.5-flash", Some(Price::FREE));
    let xai = b.provider("xai", Tier::Paid, Private);
    let grok = b.model(xai, "grok-4-fast", Some(price(200, 500)));
    let cli = b.provider("claude_cli", Tier::Subscription, Private);
    let sonnet = b.model(cli, "sonnet", None);
    let zai = b.provider("zai", Tier::Paid, Internal);
    let glm = b.model(zai, "glm-4.6", Some(price(600, 2_200)));
    for (t, ctx, out) in [
        (opus, 200_000, 32_000),
        (haiku, 200_000, 64_000),
        (or_opus, 200_000, 32_000),
        (or_haiku, 200_000, 64_000),
        (llama, 128_000, 8_000),
        (flash, 1_000_000, 64_000),
        (grok, 2_000_000, 30_000),
        (sonnet, 200_000, 32_000),
        (glm, 200_000, 128_000),
    ] {
        let m = b.target_mut(t);
        m.context_window = Some(ctx);
        m.max_output = Some(out);
    }
    b.target_mut(llama).capabilities = Capabilities::NONE
        .with(Capability::Tools)
        .with(Capability::JsonSchema)
        .with(Capability::Stream);
    b.target_mut(sonnet).capabilities = Capabilities::NONE;
    b.target_mut(glm).capabilities = Capabilities::NONE.with(Capability::Tools).with(Capability::Stream);

    let rules = |secs| ChainRules {
        triggers: [
            crate::Trigger::RateLimited,
            crate::Trigger::Overloaded,
            crate::Trigger::ServerError,
        ]
        .into_iter()
        .collect::<crate::Triggers>()
        .with(crate::Trigger::Timeout),
        ..rules_timeout(secs)
    };
    let audit_leaves = b.leaves(&[opus, or_opus, grok]);
    let audit_route = b.fallback(audit_leaves, rules(60));
    let audit = b.workload("audit_report", Private, audit_route);
    {
        let w = b.workload_mut(audit);
        w.task = Some(Task::Generate);
        w.quality = Some(crate::Quality::High);
        w.max_tokens = Some(8_000);
        w.latency_budget = Some(Duration::from_secs(120));
    }
    let short = ChainRules {
        triggers: [
            crate::Trigger::RateLimited,
            crate::Trigger::Overloaded,
            crate::Trigger::Timeout,
        ]
        .into_iter()
        .collect(),
        ..rules_timeout(15)
    };
    let pool_leaves = b.leaves(&[llama, sonnet, haiku, or_haiku]);
    let pool = b.free_first(pool_leaves, short);
    b.name(pool, "summary_pool");
    let challenger_leaves = b.leaves(&[flash, glm]);
    let challenger = b.free_first(challenger_leaves, short);
    b.name(challenger, "challenger");
    let split = b.split(
        SplitKey::User,
        "workload:content_summary",
        vec![(80, pool), (20, challenger)],
    );
    let summary = b.workload("content_summary", Public, split);
    {
        let w = b.workload_mut(summary);
        w.task = Some(Task::Summarise);
        w.quality = Some(crate::Quality::Low);
        w.max_tokens = Some(2_000);
        w.budget.tokens_per_day = Some(5_000_000);
        w.budget.alert_percent = Some(80);
    }
    b.build()
}
