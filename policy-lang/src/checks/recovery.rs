//! `stream_recovery continue` with nothing to continue on (`W0310`).
//!
//! A broken stream is continued only by a later target of the plan whose
//! model declares `supports prefill`. When no target the workload reaches
//! declares it, `continue` can never rescue a stream: every break ends with
//! the explicit error, as with `off`, which the author likely did not mean.

use router_core::{Capability, StreamRecovery, TargetId, WorkloadId};

use super::q;
use crate::ast_to_ir::Lowered;
use crate::code::Code;
use crate::diagnostic::Diag;
use crate::errors::{ContinueWithoutPrefillWarning, MixedModelKindsWarning};
use crate::report::CheckReport;

pub(super) fn check(lowered: &Lowered, wid: WorkloadId, targets: &[TargetId], report: &mut CheckReport) {
    let policy = &lowered.policy;
    let w = policy.workload(wid);
    if w.stream_recovery != StreamRecovery::Continue || targets.is_empty() {
        return;
    }
    if targets
        .iter()
        .any(|t| policy.target(*t).capabilities.has(Capability::Prefill))
    {
        return;
    }
    let Some(span) = lowered
        .info
        .workloads
        .get(wid.0 as usize)
        .and_then(|i| i.stream_recovery)
    else {
        return;
    };
    let diag = Diag::at(
        Code::W0310,
        format!(
            "workload {} continues broken streams, but none of its models accepts a prefill",
            q(&w.name)
        ),
        &lowered.info.src,
        span,
        "no target it reaches `supports prefill`",
    )
    .help(
        "`continue` asks a later target to go on from the text already sent, and only a model that declares \
         `supports prefill` is asked; add `prefill` to the `supports` of a model that continues a trailing \
         assistant message (Anthropic's do), or use `stream_recovery buffer`",
    );
    report.warning(ContinueWithoutPrefillWarning {
        workload: w.name.clone(),
        diag,
    });
}

/// A workload whose route reaches both chat models and embedding models
/// (`W0313`). A chat call never reaches an embedding model and an embedding
/// call never reaches a chat model, so whichever kind a call is, part of the
/// route is dead weight for it: its fallback is shorter than it reads.
pub(super) fn mixed_kinds(lowered: &Lowered, wid: WorkloadId, targets: &[TargetId], report: &mut CheckReport) {
    let policy = &lowered.policy;
    let embeds = |t: &TargetId| policy.target(*t).capabilities.has(Capability::Embeddings);
    let Some(embedding) = targets.iter().find(|t| embeds(t)) else {
        return;
    };
    let Some(chat) = targets.iter().find(|t| !embeds(t)) else {
        return;
    };
    let w = policy.workload(wid);
    let Some(span) = lowered
        .info
        .workloads
        .get(wid.0 as usize)
        .map(|i| i.route.unwrap_or(i.name))
    else {
        return;
    };
    let diag = Diag::at(
        Code::W0313,
        format!("workload {} reaches both chat and embedding models", q(&w.name)),
        &lowered.info.src,
        span,
        format!(
            "{} chats, {} embeds",
            q(&policy.target_label(*chat)),
            q(&policy.target_label(*embedding))
        ),
    )
    .help(
        "a chat call skips the models that `supports embeddings` and an embedding call skips the others, so \
         each call sees only part of this route; give embeddings a workload of their own",
    );
    report.warning(MixedModelKindsWarning {
        workload: w.name.clone(),
        diag,
    });
}
