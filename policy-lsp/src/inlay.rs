//! Inlay hints: after each workload's name, its worst case per call
//! (`router_core::worst_case`, what `routec check --bounds` prints): most
//! upstream calls, most cost, longest time. None while the policy has never
//! passed its checks (there is no IR to bound).

use lsp_types::{InlayHint, InlayHintKind, InlayHintLabel};
use policy_lang::SymbolKind;
use router_core::{Policy, WorstCase, worst_case};

use crate::workspace::{File, PolicyDir};

/// One hint per workload defined in `file`.
pub(crate) fn hints(policy: &PolicyDir, file: &File) -> Vec<InlayHint> {
    let Some(p) = &policy.policy else {
        return Vec::new();
    };
    file.definitions
        .iter()
        .filter(|s| s.kind() == SymbolKind::Workload)
        .filter_map(|s| {
            let text = bound_text(p, s.name())?;
            let r = s.name_range();
            Some(InlayHint {
                position: file.index.position(file.text(), r.end),
                label: InlayHintLabel::String(format!("worst case: {text}")),
                kind: Some(InlayHintKind::TYPE),
                text_edits: None,
                tooltip: None,
                padding_left: Some(true),
                padding_right: None,
                data: None,
            })
        })
        .collect()
}

/// `4 calls · $0.082 · 44s`, for a workload of `p`.
pub(crate) fn bound_text(p: &Policy, workload: &str) -> Option<String> {
    let id = p.workload_id(workload)?;
    Some(text(&worst_case(p, id)))
}

fn text(b: &WorstCase) -> String {
    let cost = b.cost.map_or_else(|| "cost unknown".to_owned(), |c| c.to_string());
    let time = b.time.map_or_else(
        || "unbounded".to_owned(),
        |t| {
            let s = t.as_secs();
            match s {
                0 => format!("{}ms", t.as_millis()),
                1..=59 => format!("{s}s"),
                _ => format!("{}m {}s", s / 60, s % 60),
            }
        },
    );
    format!(
        "{} call{} · {cost} · {time}{}",
        b.calls,
        if b.calls == 1 { "" } else { "s" },
        if b.by_deadline { " (latency)" } else { "" }
    )
}
