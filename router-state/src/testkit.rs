//! Small policies built in code, for the unit tests and, included with
//! `#[path]`, the integration tests (`tests/common`) and the budget
//! benchmark. It names only `router_core`, never `crate::`, so it compiles
//! as a module of any of them.

use router_core::{
    Adapter, Budget, Capabilities, DataClass, Defaults, Limits, NodeKind, Origin, Policy, Provider, ProviderId,
    RouteGraph, RouteNode, Target, TargetId, Tier, Workload,
};

/// Providers `p0` (targets 0 and 1) and `p1` (target 2); one workload per
/// `(name, budget)`, each routed to target 0.
pub(crate) fn policy(workloads: &[(&str, Budget)]) -> Policy {
    let provider = |name: &str, targets: Vec<TargetId>| Provider {
        name: name.into(),
        adapter: Adapter::Mock,
        base_url: None,
        key: None,
        tier: Tier::Paid,
        jurisdiction: None,
        max_data: DataClass::Private,
        trains_on_inputs: false,
        stores_inputs: false,
        no_store_header: None,
        headers: Vec::new(),
        limits: Limits::default(),
        timeout: None,
        failure: router_core::FailureSettings::default(),
        simulate: None,
        targets,
        origin: Origin::default(),
    };
    let target = |p: u32, model: &str| Target {
        provider: ProviderId(p),
        model: model.into(),
        api_id: model.into(),
        version: None,
        price: None,
        context_window: None,
        max_output: None,
        capabilities: Capabilities::NONE,
        simulate: None,
        origin: Origin::default(),
    };
    let mut routes = RouteGraph::new();
    let leaf = routes.add(RouteNode {
        name: None,
        kind: NodeKind::Target { target: TargetId(0) },
        origin: Origin::default(),
    });
    let workloads = workloads
        .iter()
        .map(|(name, budget)| Workload {
            name: (*name).into(),
            aliases: Vec::new(),
            task: None,
            quality: None,
            data: DataClass::Public,
            max_tokens: None,
            latency_budget: None,
            max_cost_per_call: None,
            jurisdictions: Vec::new(),
            requires: Capabilities::NONE,
            budget: *budget,
            max_attempts: None,
            idempotency_window: None,
            stream_recovery: router_core::StreamRecovery::Off,
            route: leaf,
            origin: Origin::default(),
        })
        .collect();
    Policy::new(
        Vec::new(),
        vec![
            provider("p0", vec![TargetId(0), TargetId(1)]),
            provider("p1", vec![TargetId(2)]),
        ],
        vec![target(0, "a"), target(0, "b"), target(1, "c")],
        workloads,
        routes,
        Defaults::default(),
    )
}
