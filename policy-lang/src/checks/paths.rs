//! What each workload can reach, over every path through the route graph:
//! every arm of every split and match, every candidate of every chain.
//!
//! One breadth-first walk per workload finds every target occurrence it can
//! reach, with the shortest path to it; the path is what the diagnostics
//! show, one label per hop, across files.
//!
//! - `R0202`: a provider below the workload's data class (one error per
//!   workload and provider).
//! - `R0203`: no target the workload may use at all.
//! - `R0207`: a model lacking a capability the workload requires.
//! - `R0208`: `max_tokens` above a model's output or context limit.
//! - `R0209`: a dollar limit over a paid model with no price.

use std::collections::{HashMap, VecDeque};

use router_core::{NodeId, NodeKind, QualityCheck, TargetId, Tier, WorkloadId};

use super::{children, q};
use crate::ast_to_ir::Lowered;
use crate::code::Code;
use crate::diagnostic::Diag;
use crate::errors::{
    CapabilityMismatchError, EvaluatorBelowClassError, MaxTokensError, NoEligibleTargetError, PiiViolationError,
    ResidencyViolationError, UnpricedModelError,
};
use crate::report::CheckReport;
use crate::source::Span;

/// One target occurrence a workload reaches, and how.
struct Reached {
    node: NodeId,
    target: TargetId,
    /// Nodes from the workload's root to `node`, both included.
    path: Vec<NodeId>,
}

/// Every target occurrence reachable from `root`, in breadth-first order,
/// each with its shortest path. Also says whether any unresolved node is
/// reachable (then eligibility is not judged: an error is already out).
fn reach(lowered: &Lowered, root: NodeId) -> (Vec<Reached>, bool, Vec<(NodeId, WorkloadId)>) {
    let policy = &lowered.policy;
    let mut parent: HashMap<NodeId, Option<NodeId>> = HashMap::from([(root, None)]);
    let mut queue = VecDeque::from([root]);
    let mut out = Vec::new();
    let mut unresolved = false;
    let mut evaluators = Vec::new();
    while let Some(node) = queue.pop_front() {
        let Some(n) = policy.routes.get(node) else {
            continue;
        };
        match &n.kind {
            NodeKind::Target { target } => {
                let mut path = vec![node];
                let mut at = node;
                while let Some(Some(p)) = parent.get(&at) {
                    path.push(*p);
                    at = *p;
                }
                path.reverse();
                out.push(Reached {
                    node,
                    target: *target,
                    path,
                });
            }
            NodeKind::Unresolved => unresolved = true,
            other => {
                if let NodeKind::Escalate {
                    check: QualityCheck::Evaluator(w),
                    ..
                } = other
                {
                    evaluators.push((node, *w));
                }
                for child in children(policy, node) {
                    if let std::collections::hash_map::Entry::Vacant(e) = parent.entry(child) {
                        e.insert(Some(node));
                        queue.push_back(child);
                    }
                }
            }
        }
    }
    (out, unresolved, evaluators)
}

/// The path in words (`audit_report` → route `pool` → `cerebras/llama`)
/// and one label per hop into a named route.
fn describe_path(lowered: &Lowered, workload: WorkloadId, r: &Reached) -> (Vec<String>, Vec<(Span, String)>) {
    let policy = &lowered.policy;
    let info = &lowered.info;
    let w = policy.workload(workload);
    let mut words = vec![format!("workload {}", q(&w.name))];
    let mut labels = Vec::new();
    if let (Some(first), Some(route)) = (
        r.path.first(),
        info.workloads.get(workload.0 as usize).and_then(|i| i.route),
    ) && let Some(name) = policy.routes.get(*first).and_then(|n| n.name.as_ref())
    {
        words.push(format!("route {}", q(name)));
        labels.push((route, format!("{} uses route {}", q(&w.name), q(name))));
    }
    for pair in r.path.windows(2) {
        if let Some(name) = policy.routes.get(pair[1]).and_then(|n| n.name.as_ref()) {
            words.push(format!("route {}", q(name)));
            let text = match policy.routes.get(pair[0]).and_then(|n| n.name.as_ref()) {
                Some(from) => format!("{} uses route {}", q(from), q(name)),
                None => format!("uses route {}", q(name)),
            };
            labels.push((info.edge(pair[0], pair[1]), text));
        }
    }
    words.push(q(&policy.target_label(r.target)));
    (words, labels)
}

/// Runs the path checks; returns every `evaluator` check a workload can
/// reach, as `(workload, escalate node, evaluator)`, for the evaluator-cycle
/// check.
pub(super) fn check(lowered: &Lowered, report: &mut CheckReport) -> Vec<(WorkloadId, NodeId, WorkloadId)> {
    let policy = &lowered.policy;
    let mut judged_by = Vec::new();
    for wid in policy.workload_ids() {
        let (reached, unresolved, evaluators) = reach(lowered, policy.workload(wid).route);
        pii(lowered, wid, &reached, report);
        residency(lowered, wid, &reached, report);
        evaluator_classes(lowered, wid, &evaluators, report);
        per_target(lowered, wid, &reached, report);
        let targets: Vec<TargetId> = reached.iter().map(|r| r.target).collect();
        super::budgets::check(lowered, wid, &targets, report);
        super::recovery::check(lowered, wid, &targets, report);
        super::recovery::mixed_kinds(lowered, wid, &targets, report);
        if !unresolved {
            super::bounds::check(lowered, wid, report);
        }
        if !unresolved {
            eligible(lowered, wid, &reached, report);
        }
        judged_by.extend(evaluators.into_iter().map(|(node, e)| (wid, node, e)));
    }
    judged_by
}

fn workload_span(lowered: &Lowered, wid: WorkloadId) -> Span {
    lowered
        .info
        .workloads
        .get(wid.0 as usize)
        .map(|w| w.name)
        .unwrap_or_default()
}

fn pii(lowered: &Lowered, wid: WorkloadId, reached: &[Reached], report: &mut CheckReport) {
    let policy = &lowered.policy;
    let info = &lowered.info;
    let w = policy.workload(wid);
    // First (shortest) path per provider below the class, and how many others.
    let mut by_provider: Vec<(usize, usize)> = Vec::new(); // (index into reached, count)
    for (i, r) in reached.iter().enumerate() {
        let provider = policy.provider_of(r.target);
        if provider.max_data >= w.data {
            continue;
        }
        let pid = policy.target(r.target).provider;
        match by_provider
            .iter_mut()
            .find(|(j, _)| policy.target(reached[*j].target).provider == pid)
        {
            Some((_, count)) => *count += 1,
            None => by_provider.push((i, 1)),
        }
    }
    for (i, count) in by_provider {
        let r = &reached[i];
        let target = policy.target(r.target);
        let provider = policy.provider(target.provider);
        let (words, hops) = describe_path(lowered, wid, r);
        let winfo = info.workloads.get(wid.0 as usize);
        let data_span = winfo
            .and_then(|x| x.data)
            .unwrap_or_else(|| workload_span(lowered, wid));
        let class_note = if winfo.and_then(|x| x.data).is_some() {
            format!("carries {} data", w.data)
        } else {
            format!("carries {} data (the default)", w.data)
        };
        let mut diag = Diag::at(
            Code::R0202,
            format!(
                "workload {} can reach provider {} below its data class",
                q(&w.name),
                q(&provider.name)
            ),
            &info.src,
            info.head(r.node),
            format!(
                "{} is cleared for {} data only",
                q(&policy.target_label(r.target)),
                provider.max_data
            ),
        )
        .label(data_span, class_note);
        for (span, text) in hops {
            diag = diag.label(span, text);
        }
        if let Some(pinfo) = info.providers.get(target.provider.0 as usize) {
            let span = pinfo.data.unwrap_or(pinfo.name);
            diag = diag.label(
                span,
                format!("{} is cleared for {} data", q(&provider.name), provider.max_data),
            );
        }
        let more = if count > 1 {
            format!(" ({} more paths reach it)", count - 1)
        } else {
            String::new()
        };
        diag = diag.help(format!(
            "path: {}{more}; remove {} from this workload's routes, or lower the workload's `data` if its calls really carry {} data",
            words.join(" → "),
            q(&provider.name),
            provider.max_data
        ));
        report.error(PiiViolationError {
            workload: w.name.clone(),
            provider: provider.name.clone(),
            path: words,
            diag,
        });
    }
}

/// `R0220`: a workload with a `jurisdiction` list reaches a provider whose
/// `jurisdiction` is not in it (or that names none). One error per
/// provider, on its shortest path, as for data classes.
fn residency(lowered: &Lowered, wid: WorkloadId, reached: &[Reached], report: &mut CheckReport) {
    let policy = &lowered.policy;
    let info = &lowered.info;
    let w = policy.workload(wid);
    if w.jurisdictions.is_empty() {
        return;
    }
    let allowed = |j: &Option<String>| j.as_ref().is_some_and(|j| w.jurisdictions.contains(j));
    let mut by_provider: Vec<(usize, usize)> = Vec::new();
    for (i, r) in reached.iter().enumerate() {
        let pid = policy.target(r.target).provider;
        if allowed(&policy.provider(pid).jurisdiction) {
            continue;
        }
        match by_provider
            .iter_mut()
            .find(|(j, _)| policy.target(reached[*j].target).provider == pid)
        {
            Some((_, count)) => *count += 1,
            None => by_provider.push((i, 1)),
        }
    }
    let list = w.jurisdictions.iter().map(|j| q(j)).collect::<Vec<_>>().join(", ");
    for (i, count) in by_provider {
        let r = &reached[i];
        let provider = policy.provider_of(r.target);
        let pid = policy.target(r.target).provider;
        let (words, hops) = describe_path(lowered, wid, r);
        let place = match &provider.jurisdiction {
            Some(j) => format!("processes data in {}", q(j)),
            None => "names no `jurisdiction`".to_string(),
        };
        let winfo = info.workloads.get(wid.0 as usize);
        let line = winfo
            .and_then(|x| x.jurisdiction)
            .unwrap_or_else(|| workload_span(lowered, wid));
        let mut diag = Diag::at(
            Code::R0220,
            format!(
                "workload {} can reach provider {} outside its jurisdictions",
                q(&w.name),
                q(&provider.name)
            ),
            &info.src,
            info.head(r.node),
            format!("{} {place}", q(&policy.target_label(r.target))),
        )
        .label(line, format!("data may be processed only in {list}"));
        for (span, text) in hops {
            diag = diag.label(span, text);
        }
        if let Some(pinfo) = info.providers.get(pid.0 as usize) {
            diag = diag.label(pinfo.name, format!("{} {place}", q(&provider.name)));
        }
        let more = if count > 1 {
            format!(" ({} more paths reach it)", count - 1)
        } else {
            String::new()
        };
        diag = diag.help(format!(
            "path: {}{more}; remove {} from this workload's routes, or add its jurisdiction to the workload's \
             `jurisdiction` list if its data may go there",
            words.join(" → "),
            q(&provider.name)
        ));
        report.error(ResidencyViolationError {
            workload: w.name.clone(),
            provider: provider.name.clone(),
            path: words,
            diag,
        });
    }
}

/// An evaluator workload sees the answers it judges, so it must carry at
/// least the data class of the workload whose answers they are; its own
/// route is then checked against its own class.
fn evaluator_classes(
    lowered: &Lowered,
    wid: WorkloadId,
    evaluators: &[(NodeId, WorkloadId)],
    report: &mut CheckReport,
) {
    let policy = &lowered.policy;
    let info = &lowered.info;
    let w = policy.workload(wid);
    let mut seen = Vec::new();
    for (node, eid) in evaluators {
        let e = policy.workload(*eid);
        if e.data >= w.data || seen.contains(eid) {
            continue;
        }
        seen.push(*eid);
        let winfo = info.workloads.get(wid.0 as usize);
        let einfo = info.workloads.get(eid.0 as usize);
        let mut diag = Diag::at(
            Code::R0202,
            format!(
                "workload {} sends its answers to evaluator {}, below its data class",
                q(&w.name),
                q(&e.name)
            ),
            &info.src,
            info.head(*node),
            format!("answers checked by {}", q(&e.name)),
        )
        .label(
            winfo
                .and_then(|x| x.data)
                .unwrap_or_else(|| workload_span(lowered, wid)),
            format!("carries {} data", w.data),
        );
        if let Some(x) = einfo {
            diag = diag.label(
                x.data.unwrap_or(x.name),
                format!("{} carries {} data", q(&e.name), e.data),
            );
        }
        diag = diag.help(format!(
            "an evaluator reads the answers it judges: give {} `data {}` (its own routes are then held to it), or judge with another workload",
            q(&e.name),
            w.data
        ));
        report.error(EvaluatorBelowClassError {
            workload: w.name.clone(),
            evaluator: e.name.clone(),
            diag,
        });
    }
}

fn per_target(lowered: &Lowered, wid: WorkloadId, reached: &[Reached], report: &mut CheckReport) {
    let policy = &lowered.policy;
    let info = &lowered.info;
    let w = policy.workload(wid);
    let winfo = info.workloads.get(wid.0 as usize);
    let mut seen_caps: Vec<TargetId> = Vec::new();
    let mut seen_tokens: Vec<TargetId> = Vec::new();
    let mut seen_price: Vec<TargetId> = Vec::new();
    for r in reached {
        let target = policy.target(r.target);
        let provider = policy.provider(target.provider);
        let label = policy.target_label(r.target);
        let model_span = info.targets.get(r.target.0 as usize).copied();

        let missing = target.capabilities.missing(w.requires);
        if !missing.is_empty() && !seen_caps.contains(&r.target) {
            seen_caps.push(r.target);
            let (words, hops) = describe_path(lowered, wid, r);
            let missing_list: Vec<String> = missing.iter().map(|c| c.as_str().to_string()).collect();
            let mut diag = Diag::at(
                Code::R0207,
                format!(
                    "workload {} requires {} but can reach {}, which lacks it",
                    q(&w.name),
                    missing_list.iter().map(|c| q(c)).collect::<Vec<_>>().join(", "),
                    q(&label)
                ),
                &info.src,
                info.head(r.node),
                format!("lacks {}", missing_list.join(", ")),
            );
            if let Some(span) = winfo.and_then(|x| x.requires) {
                diag = diag.label(span, "required here");
            }
            for (span, text) in hops {
                diag = diag.label(span, text);
            }
            if let Some(span) = model_span {
                diag = diag.label(
                    span,
                    if target.capabilities.is_empty() {
                        "declares no capabilities".to_string()
                    } else {
                        format!("supports {}", target.capabilities)
                    },
                );
            }
            diag = diag.help(format!(
                "path: {}; use a model that supports {}, or add it to the model's `supports` if it does",
                words.join(" → "),
                missing_list.join(", ")
            ));
            report.error(CapabilityMismatchError {
                workload: w.name.clone(),
                target: label.clone(),
                missing: missing_list,
                path: words,
                diag,
            });
        }

        if let Some(max_tokens) = w.max_tokens {
            let over = [("max_output", target.max_output), ("context", target.context_window)]
                .into_iter()
                .find_map(|(what, limit)| limit.filter(|l| max_tokens > *l).map(|l| (what, l)));
            if let Some((what, limit)) = over
                && !seen_tokens.contains(&r.target)
            {
                seen_tokens.push(r.target);
                let (words, hops) = describe_path(lowered, wid, r);
                let mut diag = Diag::at(
                    Code::R0208,
                    format!(
                        "workload {} allows {max_tokens} output tokens but {} has a {what} of {limit}",
                        q(&w.name),
                        q(&label)
                    ),
                    &info.src,
                    info.head(r.node),
                    format!("{what} {limit}"),
                );
                if let Some(span) = winfo.and_then(|x| x.max_tokens) {
                    diag = diag.label(span, format!("{max_tokens} tokens"));
                }
                for (span, text) in hops {
                    diag = diag.label(span, text);
                }
                diag = diag.help(format!(
                    "path: {}; lower `max_tokens` to {limit} or less, or route to a model with a larger {what}",
                    words.join(" → ")
                ));
                report.error(MaxTokensError {
                    workload: w.name.clone(),
                    target: label.clone(),
                    max_tokens,
                    limit,
                    diag,
                });
            }
        }

        let cost_limited = w.budget.has_cost_limit() || w.max_cost_per_call.is_some();
        if cost_limited && provider.tier == Tier::Paid && target.price.is_none() && !seen_price.contains(&r.target) {
            seen_price.push(r.target);
            let (words, hops) = describe_path(lowered, wid, r);
            let mut diag = Diag::at(
                Code::R0209,
                format!(
                    "workload {} has a dollar limit but can reach {}, a paid model with no price",
                    q(&w.name),
                    q(&label)
                ),
                &info.src,
                info.head(r.node),
                "no price",
            );
            if let Some(span) = winfo.and_then(|x| x.cost_limit) {
                diag = diag.label(span, "dollar limit here");
            }
            for (span, text) in hops {
                diag = diag.label(span, text);
            }
            if let Some(span) = model_span {
                diag = diag.label(span, "model declared here without `price`");
            }
            diag = diag.help(format!(
                "path: {}; without a price no call can be costed against the limit: add `price $IN/M in, $OUT/M out` to the model",
                words.join(" → ")
            ));
            report.error(UnpricedModelError {
                workload: w.name.clone(),
                target: label,
                diag,
            });
        }
    }
}

fn eligible(lowered: &Lowered, wid: WorkloadId, reached: &[Reached], report: &mut CheckReport) {
    let policy = &lowered.policy;
    let info = &lowered.info;
    let w = policy.workload(wid);
    let ok = reached.iter().any(|r| {
        let t = policy.target(r.target);
        policy.provider(t.provider).max_data >= w.data && t.capabilities.covers(w.requires)
    });
    if ok {
        return;
    }
    let mut reasons: Vec<String> = Vec::new();
    for r in reached {
        let t = policy.target(r.target);
        let p = policy.provider(t.provider);
        let label = q(&policy.target_label(r.target));
        let reason = if p.max_data < w.data {
            format!("{label} is cleared for {} data only", p.max_data)
        } else {
            format!("{label} lacks {}", t.capabilities.missing(w.requires))
        };
        if !reasons.contains(&reason) {
            reasons.push(reason);
        }
    }
    let route_span = info
        .workloads
        .get(wid.0 as usize)
        .and_then(|x| x.route)
        .unwrap_or_else(|| workload_span(lowered, wid));
    let (label, help) = if reached.is_empty() {
        (
            "this route has no targets".to_string(),
            "give the route at least one `provider/model` target".to_string(),
        )
    } else {
        let shown: Vec<String> = reasons.iter().take(4).cloned().collect();
        let more = reasons.len().saturating_sub(4);
        let more = if more > 0 {
            format!(", and {more} more")
        } else {
            String::new()
        };
        (
            "every target here is ruled out".to_string(),
            format!("{}{more}; add a target the workload may use", shown.join("; ")),
        )
    };
    let diag = Diag::at(
        Code::R0203,
        format!("workload {} has no eligible target", q(&w.name)),
        &info.src,
        workload_span(lowered, wid),
        "no call of this workload can be sent anywhere",
    )
    .label(route_span, label)
    .help(help);
    report.error(NoEligibleTargetError {
        workload: w.name.clone(),
        diag,
    });
}
