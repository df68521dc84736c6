//! Things written but never used (`W0301`–`W0303`), and a policy with no
//! workloads at all (`W0307`).
//!
//! "Used" means referred to: a provider is used when a route names one of
//! its models, a route when a workload or another route names it. So an
//! unused route is one warning, not one per provider it names. Not run when
//! a name is unresolved (`R0101`): the misspelt reference was most likely
//! meant for the item that would be reported unused.

use std::collections::HashSet;

use router_core::{NodeId, NodeKind, TargetId};

use super::q;
use crate::ast_to_ir::Lowered;
use crate::code::Code;
use crate::diagnostic::Diag;
use crate::errors::{NoWorkloadsWarning, UnusedModelWarning, UnusedProviderWarning, UnusedRouteWarning};
use crate::report::CheckReport;

pub(super) fn check(lowered: &Lowered, report: &mut CheckReport) {
    let policy = &lowered.policy;
    let info = &lowered.info;
    if policy.workloads.is_empty() {
        let diag = Diag::bare(Code::W0307, "the policy defines no workloads").help(
            "a workload is what callers name: add `workload NAME { data …; route … }` so calls have somewhere to go",
        );
        report.warning(NoWorkloadsWarning { diag });
        return;
    }
    let mut referenced: HashSet<NodeId> = policy.workloads.iter().map(|w| w.route).collect();
    let mut used_targets: HashSet<TargetId> = HashSet::new();
    for node in policy.routes.ids() {
        let Some(n) = policy.routes.get(node) else { continue };
        if let NodeKind::Target { target } = n.kind {
            used_targets.insert(target);
        }
        referenced.extend(n.kind.children().into_iter().filter(|c| *c != node));
    }
    for (name, node) in &info.routes {
        if !referenced.contains(node) {
            let diag = Diag::at(
                Code::W0302,
                format!("route {} is not used", q(&name.name)),
                &info.src,
                name.span,
                "no workload or route names it",
            )
            .help("use it in a workload's `route`, or delete it");
            report.warning(UnusedRouteWarning {
                route: name.name.clone(),
                diag,
            });
        }
    }
    for (i, p) in policy.providers.iter().enumerate() {
        let span = info.providers.get(i).map(|x| x.name).unwrap_or_default();
        let used: Vec<TargetId> = p.targets.iter().copied().filter(|t| used_targets.contains(t)).collect();
        if used.is_empty() {
            let diag = Diag::at(
                Code::W0301,
                format!("provider {} is not used", q(&p.name)),
                &info.src,
                span,
                "no route names any of its models",
            )
            .help(format!(
                "route some calls to `{}/MODEL`, or delete the provider",
                p.name
            ));
            report.warning(UnusedProviderWarning {
                provider: p.name.clone(),
                diag,
            });
            continue;
        }
        for t in &p.targets {
            if used_targets.contains(t) {
                continue;
            }
            let label = policy.target_label(*t);
            let span = info.targets.get(t.0 as usize).copied().unwrap_or_default();
            let diag = Diag::at(
                Code::W0303,
                format!("model {} is not used", q(&label)),
                &info.src,
                span,
                "no route names it",
            )
            .help(format!("route some calls to `{label}`, or delete the model"));
            report.warning(UnusedModelWarning { target: label, diag });
        }
    }
}
