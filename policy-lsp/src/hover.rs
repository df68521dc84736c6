//! Hover text: what a name stands for, read from the compiled policy (the
//! last version that passed every check), or from its declaration as
//! written when the compiled policy does not have it yet.

use policy_lang::{Symbol, SymbolKind};
use router_core::{Adapter, Decider, NodeKind, Policy, RequestFacts, StateSnapshot, node_text};

use crate::workspace::PolicyDir;

/// The most lines of a declaration shown when it is shown as written.
const MAX_SHOWN_LINES: usize = 20;

/// Markdown for the name `target`.
pub(crate) fn hover(policy: &PolicyDir, target: &Symbol) -> Option<String> {
    let from_ir = policy.policy.as_ref().and_then(|p| match target.kind() {
        SymbolKind::Provider => provider(p, target.name()),
        SymbolKind::Model => model(p, target.provider()?, target.name()),
        SymbolKind::Workload => workload(p, target.name()),
        SymbolKind::Route => route(p, target.name()),
    });
    from_ir.or_else(|| as_written(policy, target))
}

fn adapter_text(a: &Adapter) -> String {
    match a {
        Adapter::Openai => "openai".to_string(),
        Adapter::Anthropic => "anthropic".to_string(),
        Adapter::Gemini => "gemini".to_string(),
        Adapter::OpenaiCompatible { preset: Some(p) } => format!("{p} (openai_compatible)"),
        Adapter::OpenaiCompatible { preset: None } => "openai_compatible".to_string(),
        Adapter::Cli { command } => format!("cli `{}`", command.join(" ")),
        Adapter::Mock => "mock".to_string(),
    }
}

fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "—".to_string(), |v| v.to_string())
}

fn provider(p: &Policy, name: &str) -> Option<String> {
    let pr = p.providers.iter().find(|pr| pr.name == name)?;
    let models: Vec<String> = pr
        .targets
        .iter()
        .filter_map(|t| p.targets.get(t.0 as usize))
        .map(|t| format!("`{}`", t.model))
        .collect();
    let mut out = format!("**provider** `{}`\n\n", pr.name);
    out.push_str(&format!("- adapter: {}\n", adapter_text(&pr.adapter)));
    out.push_str(&format!("- tier: {}\n", pr.tier));
    out.push_str(&format!("- data class: up to {}\n", pr.max_data));
    out.push_str(&format!("- jurisdiction: {}\n", or_dash(pr.jurisdiction.as_deref())));
    out.push_str(&format!(
        "- limits: rpm {}, tpm {}, concurrency {}\n",
        or_dash(pr.limits.rpm),
        or_dash(pr.limits.tpm),
        or_dash(pr.limits.concurrency)
    ));
    out.push_str(&format!(
        "- trains on inputs: {}; stores inputs: {}\n",
        yes_no(pr.trains_on_inputs),
        yes_no(pr.stores_inputs)
    ));
    out.push_str(&format!("- models: {}\n", models.join(", ")));
    Some(out)
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn model(p: &Policy, provider: &str, name: &str) -> Option<String> {
    let pr = p.providers.iter().find(|pr| pr.name == provider)?;
    let t = pr
        .targets
        .iter()
        .filter_map(|t| p.targets.get(t.0 as usize))
        .find(|t| t.model == name)?;
    let mut out = format!("**model** `{provider}/{name}`\n\n");
    if t.api_id != t.model {
        out.push_str(&format!("- id: `{}`\n", t.api_id));
    }
    let price = match &t.price {
        Some(pr) if pr.input_per_mtok.nanos() == 0 && pr.output_per_mtok.nanos() == 0 => "free".to_string(),
        Some(pr) => format!("{}/M in, {}/M out", pr.input_per_mtok, pr.output_per_mtok),
        None => "not given".to_string(),
    };
    out.push_str(&format!("- price: {price}\n"));
    out.push_str(&format!("- context: {} tokens\n", or_dash(t.context_window)));
    out.push_str(&format!("- max output: {} tokens\n", or_dash(t.max_output)));
    let caps: Vec<String> = t.capabilities.iter().map(|c| c.to_string()).collect();
    out.push_str(&format!(
        "- capabilities: {}\n",
        if caps.is_empty() {
            "none".to_string()
        } else {
            caps.join(", ")
        }
    ));
    if let Some(v) = &t.version {
        out.push_str(&format!("- version: `{v}`\n"));
    }
    Some(out)
}

/// The attempts the router would make for a call with default facts (no
/// tools, no images, no user, zero input tokens) and fresh state, as
/// `routec explain POLICY -w NAME` prints them; or why it would refuse.
pub(crate) fn first_targets(p: &Policy, name: &str) -> Option<String> {
    let id = p.workload_id(name)?;
    let facts = RequestFacts::default();
    let state = StateSnapshot::for_policy(p, 0);
    let decision = Decider::new(p).decide(&facts.facts(id), &state);
    Some(match decision.outcome() {
        Ok(plan) => plan
            .attempts()
            .iter()
            .map(|a| format!("`{}`", p.target_label(a.target)))
            .collect::<Vec<_>>()
            .join(" → "),
        Err(refusal) => format!("refused: {refusal}"),
    })
}

fn workload(p: &Policy, name: &str) -> Option<String> {
    let w = p.workload_named(name)?;
    let mut out = format!("**workload** `{}`\n\n", w.name);
    out.push_str(&format!("- task: {}\n", or_dash(w.task)));
    out.push_str(&format!("- quality: {}\n", or_dash(w.quality)));
    out.push_str(&format!("- data class: {}\n", w.data));
    out.push_str(&format!("- max tokens: {}\n", or_dash(w.max_tokens)));
    out.push_str(&format!("- route: {}\n", node_text(p, w.route)));
    out.push_str(&format!(
        "- plan for default facts: {}\n",
        or_dash(first_targets(p, name))
    ));
    out.push_str(&format!(
        "- worst case per call: {}\n",
        or_dash(crate::inlay::bound_text(p, name))
    ));
    Some(out)
}

fn route(p: &Policy, name: &str) -> Option<String> {
    let id = p
        .routes
        .ids()
        .find(|id| p.routes.get(*id).is_some_and(|n| n.name.as_deref() == Some(name)))?;
    let node = p.routes.get(id)?;
    let mut out = format!("**route** `{name}`: {}\n\n", node_text(p, id));
    let children = node.kind.children();
    if !matches!(node.kind, NodeKind::Target { .. }) {
        for child in children {
            out.push_str(&format!("- {}\n", node_text(p, child)));
        }
    }
    Some(out)
}

fn as_written(policy: &PolicyDir, target: &Symbol) -> Option<String> {
    let (_, file, def) = policy.definitions().find(|(_, _, s)| s.same_target(target))?;
    let text = file.text().get(def.range())?;
    let mut shown: Vec<&str> = text.lines().take(MAX_SHOWN_LINES).collect();
    if text.lines().count() > MAX_SHOWN_LINES {
        shown.push("…");
    }
    Some(format!("```route\n{}\n```", shown.join("\n")))
}
