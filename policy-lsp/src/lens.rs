//! Code lens: above each workload, the plan the router makes for a call
//! with default facts (no tools or images, no user, zero input tokens) and
//! fresh state, from `router_core`'s own decision. Running the lens's
//! command (`routec.explain`, with the file's URI and the workload's name) answers with the full explanation, as
//! `routec explain POLICY -w NAME` prints it.

use lsp_types::{CodeLens, Command};
use policy_lang::SymbolKind;
use router_core::{Decider, RequestFacts, StateSnapshot, render_text};
use serde_json::json;

use crate::hover::first_targets;
use crate::workspace::{File, PolicyDir};

/// The command a lens runs.
pub(crate) const EXPLAIN: &str = "routec.explain";

/// One lens per workload defined in `file`; none while the policy has
/// never passed its checks (there is no plan to show).
pub(crate) fn lenses(policy: &PolicyDir, file: &File, uri: &lsp_types::Url) -> Vec<CodeLens> {
    let Some(p) = &policy.policy else {
        return Vec::new();
    };
    file.definitions
        .iter()
        .filter(|s| s.kind() == SymbolKind::Workload)
        .filter_map(|s| {
            let plan = first_targets(p, s.name())?;
            let r = s.name_range();
            Some(CodeLens {
                range: file.index.range(file.text(), r.start, r.end),
                command: Some(Command {
                    title: format!("explain: {}", plan.replace('`', "")),
                    command: EXPLAIN.to_string(),
                    arguments: Some(vec![json!(uri), json!(s.name())]),
                }),
                data: None,
            })
        })
        .collect()
}

/// The full explanation for `workload` with default facts.
pub(crate) fn explain(policy: &PolicyDir, workload: &str) -> Option<String> {
    let p = policy.policy.as_ref()?;
    let id = p.workload_id(workload)?;
    let facts = RequestFacts::default();
    let decision = Decider::new(p).decide(&facts.facts(id), &StateSnapshot::for_policy(p, 0));
    Some(render_text(p, &decision))
}
