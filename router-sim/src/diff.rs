//! What changes between two policies, workload by workload, and whether the
//! new one widens any workload's data-class exposure (the CI gate of
//! `routec diff`).
//!
//! Workloads are matched by name. For each, four things are compared:
//!
//! - **Reachable targets**: every `provider/model` leaf anywhere under the
//!   workload's route (every split arm and match branch) whose provider
//!   accepts the workload's data class and whose model has the
//!   capabilities the workload requires. Requests can only narrow this set
//!   (by raising the class or needing more), so it is every target some
//!   call of the workload could be sent to.
//! - **Data-class exposure**: the set of (class, provider, jurisdiction,
//!   trains on inputs, keeps inputs) tuples, for each class from
//!   `internal` up that the workload's calls may carry (its own class, or a
//!   higher one a request declares), such that data of that class can reach
//!   a target of that provider. "Keeps inputs" means `stores_inputs yes`
//!   without a `no_store` header. Public data may go anywhere, so it
//!   exposes nothing. **The exposure widens** when the new policy lowers the
//!   workload's declared class, or its exposure has a tuple the old one does
//!   not: internal or private data can newly reach a provider, or reach one
//!   in a new jurisdiction, or one that now trains on or keeps inputs.
//!   Providers are identified by name, so a renamed provider counts as new.
//!   A workload that only exists in the new policy is reported as added,
//!   not as a widening (its exposure is `routec check`'s to judge).
//! - **Worst-case cost per call**: the most one call can be billed if every
//!   attempt it may make is billed, at [`REFERENCE_INPUT_TOKENS`] input tokens
//!   and the most output it may ask for (the workload's `max_tokens`, else
//!   the model's `max_output`, else the engine's default estimate): the
//!   attempt bound's worth of the most expensive reachable attempts, each
//!   target counted at most once plus its chain's retries. Unknown when a
//!   reachable paid model has no price.
//! - **Attempt bound**: the workload's `max_attempts` (or the policy default).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::io::BufRead;

use router_core::{DEFAULT_OUTPUT_ESTIMATE, DataClass, NodeId, NodeKind, Policy, TargetId, Tier, Usd, Workload};
use serde::Serialize;

use crate::options::{Progress, SimError, SimOptions};
use crate::report::{Table, money};
use crate::simulate::Simulator;
use crate::traffic::TrafficReader;

/// Input tokens assumed for the worst-case cost per call.
pub const REFERENCE_INPUT_TOKENS: u64 = 1_000;

/// Everything that changed between two policies.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PolicyDiff {
    /// One entry per workload of either policy that changed, by name.
    pub workloads: Vec<WorkloadDiff>,
    /// Workloads whose data-class exposure widened.
    pub widened: Vec<String>,
    /// What replaying traffic through both found, when traffic was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traffic: Option<TrafficDiff>,
}

impl PolicyDiff {
    /// Whether any workload's data-class exposure widened.
    pub fn widens_exposure(&self) -> bool {
        !self.widened.is_empty()
    }
}

/// How a workload differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Only in the new policy.
    Added,
    /// Only in the old policy.
    Removed,
    /// In both, with differences.
    Changed,
}

/// One data-class exposure: data of `class` can reach `provider`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Exposure {
    /// The data class (`internal` or `private`).
    pub class: DataClass,
    /// The provider's name.
    pub provider: String,
    /// Where the provider processes data, if the policy says.
    pub jurisdiction: Option<String>,
    /// Whether the provider may train on inputs.
    pub trains_on_inputs: bool,
    /// Whether the provider keeps inputs (stores them and no `no_store` header is sent).
    pub keeps_inputs: bool,
}

/// A value before and after.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change<T> {
    /// In the old policy (`None`: not there, or unknown).
    pub old: Option<T>,
    /// In the new policy.
    pub new: Option<T>,
}

/// What changed for one workload.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkloadDiff {
    /// The workload's name.
    pub workload: String,
    /// Added, removed or changed.
    pub presence: Presence,
    /// Targets it can newly reach.
    pub targets_added: Vec<String>,
    /// Targets it can no longer reach.
    pub targets_removed: Vec<String>,
    /// Its declared data class, when it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_class: Option<Change<DataClass>>,
    /// Exposures the new policy adds (non-empty: widened).
    pub exposure_added: Vec<Exposure>,
    /// Exposures the new policy removes.
    pub exposure_removed: Vec<Exposure>,
    /// Whether the exposure widened (see the module docs).
    pub widens_exposure: bool,
    /// Worst-case cost per call in dollars, when it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worst_case_cost: Option<Change<String>>,
    /// The attempt bound, when it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_bound: Option<Change<u8>>,
}

/// What one workload reaches, statically.
#[derive(Debug, Default)]
struct Reach {
    targets: BTreeSet<String>,
    exposure: BTreeSet<Exposure>,
    /// Worst-case cost per call; `None` when a reachable paid target has no price.
    worst_case: Option<Usd>,
    bound: u8,
}

/// Compares two policies workload by workload (see the module docs).
pub fn diff(old: &Policy, new: &Policy) -> PolicyDiff {
    // Policy order of the new policy first, then removed ones in old order.
    let mut order: Vec<&str> = new.workloads.iter().map(|w| w.name.as_str()).collect();
    order.extend(
        old.workloads
            .iter()
            .map(|w| w.name.as_str())
            .filter(|n| new.workload_id(n).is_none()),
    );
    let mut out = Vec::new();
    let mut widened = Vec::new();
    for name in order {
        let before = old.workloads.iter().find(|w| w.name == name);
        let after = new.workloads.iter().find(|w| w.name == name);
        let d = match (before, after) {
            (None, Some(w)) => added_or_removed(new, w, Presence::Added),
            (Some(w), None) => added_or_removed(old, w, Presence::Removed),
            (Some(a), Some(b)) => match changed(old, a, new, b) {
                Some(d) => d,
                None => continue,
            },
            (None, None) => continue,
        };
        if d.widens_exposure {
            widened.push(d.workload.clone());
        }
        out.push(d);
    }
    PolicyDiff {
        workloads: out,
        widened,
        traffic: None,
    }
}

fn added_or_removed(policy: &Policy, w: &Workload, presence: Presence) -> WorkloadDiff {
    let r = reach(policy, w);
    let targets: Vec<String> = r.targets.into_iter().collect();
    let exposure: Vec<Exposure> = r.exposure.into_iter().collect();
    let (targets_added, targets_removed, exposure_added, exposure_removed) = match presence {
        Presence::Added => (targets, Vec::new(), exposure, Vec::new()),
        Presence::Removed | Presence::Changed => (Vec::new(), targets, Vec::new(), exposure),
    };
    WorkloadDiff {
        workload: w.name.clone(),
        presence,
        targets_added,
        targets_removed,
        data_class: None,
        exposure_added,
        exposure_removed,
        widens_exposure: false,
        worst_case_cost: None,
        attempt_bound: None,
    }
}

fn changed(old: &Policy, a: &Workload, new: &Policy, b: &Workload) -> Option<WorkloadDiff> {
    let (ra, rb) = (reach(old, a), reach(new, b));
    let exposure_added: Vec<Exposure> = rb.exposure.difference(&ra.exposure).cloned().collect();
    let exposure_removed: Vec<Exposure> = ra.exposure.difference(&rb.exposure).cloned().collect();
    let lowered = b.data < a.data;
    let d = WorkloadDiff {
        workload: b.name.clone(),
        presence: Presence::Changed,
        targets_added: rb.targets.difference(&ra.targets).cloned().collect(),
        targets_removed: ra.targets.difference(&rb.targets).cloned().collect(),
        data_class: (a.data != b.data).then_some(Change {
            old: Some(a.data),
            new: Some(b.data),
        }),
        widens_exposure: lowered || !exposure_added.is_empty(),
        exposure_added,
        exposure_removed,
        worst_case_cost: (ra.worst_case != rb.worst_case).then(|| Change {
            old: ra.worst_case.map(|u| u.to_string()),
            new: rb.worst_case.map(|u| u.to_string()),
        }),
        attempt_bound: (ra.bound != rb.bound).then_some(Change {
            old: Some(ra.bound),
            new: Some(rb.bound),
        }),
    };
    let same = d.targets_added.is_empty()
        && d.targets_removed.is_empty()
        && d.data_class.is_none()
        && d.exposure_added.is_empty()
        && d.exposure_removed.is_empty()
        && d.worst_case_cost.is_none()
        && d.attempt_bound.is_none();
    (!same).then_some(d)
}

/// Leaves under `root` with the retries of their innermost chain.
fn leaves(policy: &Policy, root: NodeId) -> BTreeMap<TargetId, u8> {
    let mut out = BTreeMap::new();
    let mut stack = vec![(root, 0u8, 0u32)];
    let mut seen = BTreeSet::new();
    while let Some((id, retries, depth)) = stack.pop() {
        // Checked policies have no cycles; the guard keeps a broken one finite.
        if depth > 64 || !seen.insert((id, retries)) {
            continue;
        }
        let Some(node) = policy.routes.get(id) else { continue };
        let inner = match &node.kind {
            NodeKind::Fallback { rules, .. } | NodeKind::Escalate { rules, .. } | NodeKind::Select { rules, .. } => {
                rules.retries
            }
            NodeKind::Target { target } => {
                let e = out.entry(*target).or_insert(0u8);
                *e = (*e).max(retries);
                continue;
            }
            NodeKind::Split { .. } | NodeKind::Match { .. } | NodeKind::Unresolved => retries,
        };
        for child in node.kind.children() {
            stack.push((child, inner, depth + 1));
        }
    }
    out
}

fn reach(policy: &Policy, w: &Workload) -> Reach {
    let mut r = Reach {
        bound: w.max_attempts.unwrap_or(policy.defaults.max_attempts),
        ..Reach::default()
    };
    let leaves = leaves(policy, w.route);
    // (cost, tries) of each reachable target, for the worst case.
    let mut attempts: Vec<(Usd, u32)> = Vec::new();
    let mut unpriced = false;
    for (&id, &retries) in &leaves {
        let Some(t) = policy.targets.get(id.0 as usize) else {
            continue;
        };
        let Some(p) = policy.providers.get(t.provider.0 as usize) else {
            continue;
        };
        if p.max_data < w.data || !t.capabilities.covers(w.requires) {
            continue;
        }
        r.targets.insert(policy.target_label(id));
        for class in [DataClass::Internal, DataClass::Private] {
            if class >= w.data && class <= p.max_data {
                r.exposure.insert(Exposure {
                    class,
                    provider: p.name.clone(),
                    jurisdiction: p.jurisdiction.clone(),
                    trains_on_inputs: p.trains_on_inputs,
                    keeps_inputs: p.stores_inputs && p.no_store_header.is_none(),
                });
            }
        }
        let output = w.max_tokens.or(t.max_output).unwrap_or(DEFAULT_OUTPUT_ESTIMATE);
        let output = t.max_output.map_or(output, |m| output.min(m));
        let cost = match (t.price, p.tier) {
            (Some(price), _) => price.cost(REFERENCE_INPUT_TOKENS, output),
            (None, Tier::Free | Tier::Subscription) => Usd::ZERO,
            (None, Tier::Paid) => {
                unpriced = true;
                Usd::ZERO
            }
        };
        attempts.push((cost, 1 + u32::from(retries)));
    }
    attempts.sort_by_key(|a| std::cmp::Reverse(a.0));
    let mut left = u32::from(r.bound);
    let mut worst = Usd::ZERO;
    for (cost, tries) in attempts {
        let n = tries.min(left);
        for _ in 0..n {
            worst += cost;
        }
        left -= n;
        if left == 0 {
            break;
        }
    }
    r.worst_case = (!unpriced).then_some(worst);
    r
}

/// How replaying one traffic file through both policies compares.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrafficDiff {
    /// Lines replayed.
    pub requests: u64,
    /// Requests whose first attempt goes to a different target (or that one
    /// policy refuses and the other routes).
    pub routed_differently: u64,
    /// Total cost under the old policy, dollars.
    pub old_cost: f64,
    /// Total cost under the new policy, dollars.
    pub new_cost: f64,
    /// `new_cost − old_cost`, dollars.
    pub cost_delta: f64,
    /// Per workload (by name), in order of first appearance in the traffic.
    pub workloads: Vec<TrafficDiffRow>,
}

/// One workload's part of a [`TrafficDiff`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrafficDiffRow {
    /// The workload's name as the traffic writes it.
    pub workload: String,
    /// Lines replayed.
    pub requests: u64,
    /// Requests whose first attempt differs.
    pub routed_differently: u64,
    /// Cost under the old policy, dollars.
    pub old_cost: f64,
    /// Cost under the new policy, dollars.
    pub new_cost: f64,
}

/// Replays `traffic` through both policies in lockstep (same seed, so the
/// same draws where the plans agree) and compares each request's first
/// attempt and the costs.
pub fn diff_traffic<R: BufRead>(
    old: &Policy,
    new: &Policy,
    traffic: R,
    seed: u64,
    progress: &mut dyn FnMut(Progress),
) -> Result<TrafficDiff, SimError> {
    let options = SimOptions {
        seed,
        ..SimOptions::default()
    };
    let mut a = Simulator::new(old, options.clone())?;
    let mut b = Simulator::new(new, options)?;
    let mut reader = TrafficReader::new(traffic);
    let mut rows: Vec<(String, u64, u64, Usd, Usd)> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut n = 0u64;
    while let Some(req) = reader.next_request() {
        let req = req?;
        let (x, y) = (a.step(&req), b.step(&req));
        let differs = x.first_target.map(|t| policy_target(old, t)) != y.first_target.map(|t| policy_target(new, t));
        let i = *index.entry(req.workload.clone()).or_insert_with(|| {
            rows.push((req.workload.clone(), 0, 0, Usd::ZERO, Usd::ZERO));
            rows.len() - 1
        });
        let row = &mut rows[i];
        row.1 += 1;
        row.2 += u64::from(differs);
        row.3 += x.cost;
        row.4 += y.cost;
        n += 1;
        if n.is_multiple_of(4_096) {
            progress(Progress {
                requests: n,
                bytes: reader.bytes_read(),
            });
        }
    }
    progress(Progress {
        requests: n,
        bytes: reader.bytes_read(),
    });
    let (old_total, new_total) = rows.iter().fold((Usd::ZERO, Usd::ZERO), |(o, w), r| (o + r.3, w + r.4));
    let delta = new_total.as_dollars_f64() - old_total.as_dollars_f64();
    Ok(TrafficDiff {
        requests: n,
        routed_differently: rows.iter().map(|r| r.2).sum(),
        old_cost: old_total.as_dollars_f64(),
        new_cost: new_total.as_dollars_f64(),
        cost_delta: (delta * 1e9).round() / 1e9,
        workloads: rows
            .into_iter()
            .map(|(workload, requests, routed_differently, o, w)| TrafficDiffRow {
                workload,
                requests,
                routed_differently,
                old_cost: o.as_dollars_f64(),
                new_cost: w.as_dollars_f64(),
            })
            .collect(),
    })
}

/// `(provider, model)` of a target, comparable across policies.
fn policy_target(p: &Policy, t: TargetId) -> (&str, &str) {
    let target = p.target(t);
    (p.provider(target.provider).name.as_str(), target.model.as_str())
}

/// `private data can now reach `openai` (jurisdiction us)`, with `verb`
/// between the class and the provider.
fn exposure_text(e: &Exposure, verb: &str) -> String {
    let mut s = format!("{} data {verb} `{}`", e.class, e.provider);
    let mut notes = Vec::new();
    if let Some(j) = &e.jurisdiction {
        notes.push(format!("jurisdiction {j}"));
    }
    if e.trains_on_inputs {
        notes.push("trains on inputs".to_owned());
    }
    if e.keeps_inputs {
        notes.push("keeps inputs".to_owned());
    }
    if !notes.is_empty() {
        let _ = write!(s, " ({})", notes.join(", "));
    }
    s
}

fn opt_text<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "unknown".to_owned(), ToString::to_string)
}

impl PolicyDiff {
    /// The diff as text for a terminal.
    pub fn to_human(&self) -> String {
        let mut o = String::new();
        if self.workloads.is_empty() {
            let _ = writeln!(o, "no workload changed");
        }
        for d in &self.workloads {
            let what = match d.presence {
                Presence::Added => "added",
                Presence::Removed => "removed",
                Presence::Changed => "changed",
            };
            let _ = writeln!(o, "workload `{}`: {what}", d.workload);
            let list = |v: &[String]| v.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ");
            if d.presence != Presence::Changed {
                let targets = if d.targets_added.is_empty() {
                    &d.targets_removed
                } else {
                    &d.targets_added
                };
                let exposure = if d.exposure_added.is_empty() {
                    &d.exposure_removed
                } else {
                    &d.exposure_added
                };
                if !targets.is_empty() {
                    let _ = writeln!(o, "  reachable targets: {}", list(targets));
                }
                for e in exposure {
                    let _ = writeln!(o, "  data-class exposure: {}", exposure_text(e, "can reach"));
                }
                continue;
            }
            if !d.targets_added.is_empty() {
                let _ = writeln!(o, "  reachable targets added: {}", list(&d.targets_added));
            }
            if !d.targets_removed.is_empty() {
                let _ = writeln!(o, "  reachable targets removed: {}", list(&d.targets_removed));
            }
            if let Some(c) = &d.data_class {
                let _ = writeln!(o, "  data class: {} → {}", opt_text(&c.old), opt_text(&c.new));
            }
            for e in &d.exposure_added {
                let _ = writeln!(
                    o,
                    "  data-class exposure WIDENED: {}",
                    exposure_text(e, "can now reach")
                );
            }
            if d.widens_exposure && d.exposure_added.is_empty() {
                let _ = writeln!(
                    o,
                    "  data-class exposure WIDENED: the workload's data class was lowered"
                );
            }
            for e in &d.exposure_removed {
                let _ = writeln!(
                    o,
                    "  data-class exposure narrowed: {}",
                    exposure_text(e, "can no longer reach")
                );
            }
            if let Some(c) = &d.worst_case_cost {
                let _ = writeln!(
                    o,
                    "  worst-case cost per call: {} → {} (at {REFERENCE_INPUT_TOKENS} input tokens)",
                    opt_text(&c.old),
                    opt_text(&c.new)
                );
            }
            if let Some(c) = &d.attempt_bound {
                let _ = writeln!(o, "  attempt bound: {} → {}", opt_text(&c.old), opt_text(&c.new));
            }
        }
        if let Some(t) = &self.traffic {
            let _ = writeln!(o);
            let _ = writeln!(
                o,
                "traffic: {} requests, {} route differently (first attempt); cost {} → {} ({}{})",
                t.requests,
                t.routed_differently,
                money(t.old_cost),
                money(t.new_cost),
                if t.cost_delta >= 0.0 { "+" } else { "-" },
                money(t.cost_delta.abs())
            );
            let mut table = Table::new(&["workload", "requests", "rerouted", "old cost", "new cost"]);
            for r in &t.workloads {
                table.row(vec![
                    r.workload.clone(),
                    r.requests.to_string(),
                    r.routed_differently.to_string(),
                    money(r.old_cost),
                    money(r.new_cost),
                ]);
            }
            o.push_str(&table.render());
        }
        let _ = writeln!(o);
        if self.widened.is_empty() {
            let _ = writeln!(o, "no workload's data-class exposure widened");
        } else {
            let names: Vec<String> = self.widened.iter().map(|n| format!("`{n}`")).collect();
            let _ = writeln!(o, "data-class exposure widened for {}", names.join(", "));
        }
        o
    }

    /// The diff as pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
