//! Witnesses for `routec diff`: concrete requests on which two policies
//! decide differently, per workload.
//!
//! The fact space is cut into the cells the policies themselves can tell
//! apart: the thresholds of every `when input_tokens …`/`max_output …`
//! condition (each side of it), the features and metadata values the
//! conditions and capabilities test, the tasks they name, one key per arm of
//! every split (found by the split's own hash), the data classes a request
//! may raise the workload to, and the token counts at which a reachable
//! model's context window or output limit starts to matter. Both policies'
//! routes contribute. Every cell is decided by both engines, healthy and at
//! time 0; the first cell where the first target, the set of targets the
//! plan reaches, or the data exposure (provider and jurisdiction of every
//! target that internal or private data reaches) differs is the witness.
//! These are not random samples: with no witness, the two policies decide
//! identically on every cell (up to [`MAX_CELLS`] per workload; beyond, each
//! dimension is varied on its own and the result says so).

use std::collections::{BTreeMap, BTreeSet};

use router_core::{
    BUCKETS, Capability, Condition, DEFAULT_OUTPUT_ESTIMATE, DataClass, Decider, Decision, Feature, NodeId, NodeKind,
    NumericFact, Policy, RequestFacts, Split, SplitKey, StateSnapshot, Task, WorstCase, split_bucket, worst_case,
};
use serde::Serialize;

use crate::diff::REFERENCE_INPUT_TOKENS;

/// The most cells decided per workload before falling back to varying one
/// dimension at a time.
pub const MAX_CELLS: usize = 16_384;

/// What a witness shows changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WitnessKind {
    /// The plan's first target.
    FirstTarget,
    /// The set of targets the plan may reach.
    Reachable,
    /// Where internal or private data goes: provider and jurisdiction.
    Exposure,
    /// The worst case of any call (`router_core::worst_case`): the same for
    /// every request, so its witness is any request.
    WorstCase,
}

/// One request on which the policies differ.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Witness {
    /// What differs.
    pub kind: WitnessKind,
    /// The request.
    pub facts: RequestFacts,
    /// The old policy's answer (targets, or providers for exposure).
    pub old: Vec<String>,
    /// The new policy's answer.
    pub new: Vec<String>,
    /// One sentence saying it.
    pub text: String,
}

/// The witnesses of one workload (in both policies).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkloadWitnesses {
    /// The workload.
    pub workload: String,
    /// Cells decided.
    pub cells: usize,
    /// Whether every cell of the partition was decided (else each
    /// dimension was varied on its own).
    pub complete: bool,
    /// At most one witness per kind; empty when the policies decide alike.
    pub witnesses: Vec<Witness>,
}

/// Witnesses for every workload both policies have, by name.
pub fn witnesses(old: &Policy, new: &Policy) -> Vec<WorkloadWitnesses> {
    let mut out = Vec::new();
    let (mut d_old, mut d_new) = (Decider::new(old), Decider::new(new));
    let (s_old, s_new) = (StateSnapshot::for_policy(old, 0), StateSnapshot::for_policy(new, 0));
    for w in &old.workloads {
        let (Some(id_old), Some(id_new)) = (old.workload_id(&w.name), new.workload_id(&w.name)) else {
            continue;
        };
        let mut space = Space::default();
        space.collect(old, id_old.0 as usize);
        space.collect(new, id_new.0 as usize);
        space.split_keys();
        let (cells, complete) = space.cells();
        let mut found: Vec<Witness> = Vec::new();
        for facts in &cells {
            let a = d_old.decide(&facts.facts(id_old), &s_old);
            let b = d_new.decide(&facts.facts(id_new), &s_new);
            for kind in [WitnessKind::FirstTarget, WitnessKind::Reachable, WitnessKind::Exposure] {
                if found.iter().any(|x| x.kind == kind) {
                    continue;
                }
                let (x, y) = (answer(old, &a, kind), answer(new, &b, kind));
                if x != y {
                    found.push(witness(kind, facts, x, y));
                }
            }
            if found.len() == 3 {
                break;
            }
        }
        let (a, b) = (worst_case(old, id_old), worst_case(new, id_new));
        if a != b {
            found.push(witness(
                WitnessKind::WorstCase,
                &RequestFacts::default(),
                vec![bound_text(&a)],
                vec![bound_text(&b)],
            ));
        }
        out.push(WorkloadWitnesses {
            workload: w.name.clone(),
            cells: cells.len(),
            complete,
            witnesses: found,
        });
    }
    out
}

/// `3 calls · $7.3624 · 120000ms`.
fn bound_text(b: &WorstCase) -> String {
    let cost = b.cost.map_or_else(|| "cost unknown".to_owned(), |c| c.to_string());
    let time = b
        .time
        .map_or_else(|| "unbounded".to_owned(), |t| format!("{}ms", t.as_millis()));
    format!("{} calls · {cost} · {time}", b.calls)
}

/// What a decision says, for one kind of comparison.
fn answer(policy: &Policy, d: &Decision, kind: WitnessKind) -> Vec<String> {
    let targets = d.plan().attempts().iter().map(|a| a.target);
    match (kind, d.refusal()) {
        (WitnessKind::FirstTarget, Some(r)) => vec![format!("refused ({})", r.code())],
        (WitnessKind::FirstTarget, None) => targets.take(1).map(|t| policy.target_label(t)).collect(),
        (WitnessKind::Reachable, _) => {
            let set: BTreeSet<String> = targets.map(|t| policy.target_label(t)).collect();
            set.into_iter().collect()
        }
        (WitnessKind::WorstCase, _) => Vec::new(),
        (WitnessKind::Exposure, _) if d.explain().data_class < DataClass::Internal => Vec::new(),
        (WitnessKind::Exposure, _) => {
            let set: BTreeSet<String> = targets
                .map(|t| {
                    let p = policy.provider_of(t);
                    match &p.jurisdiction {
                        Some(j) => format!("{} ({j})", p.name),
                        None => p.name.clone(),
                    }
                })
                .collect();
            set.into_iter().collect()
        }
    }
}

fn witness(kind: WitnessKind, facts: &RequestFacts, old: Vec<String>, new: Vec<String>) -> Witness {
    let request = describe(facts);
    let list = |v: &[String]| {
        if v.is_empty() {
            "nothing".to_string()
        } else {
            v.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
        }
    };
    let text = match kind {
        WitnessKind::FirstTarget => format!("{request} now goes to {} first (was {})", list(&new), list(&old)),
        WitnessKind::Reachable => {
            let added: Vec<String> = new.iter().filter(|t| !old.contains(t)).cloned().collect();
            let removed: Vec<String> = old.iter().filter(|t| !new.contains(t)).cloned().collect();
            format!(
                "{request} can now reach {} (was {}): added {}, removed {}",
                list(&new),
                list(&old),
                list(&added),
                list(&removed)
            )
        }
        WitnessKind::WorstCase => format!(
            "any request: the worst case of a call is now {} (was {})",
            list(&new),
            list(&old)
        ),
        WitnessKind::Exposure => {
            let added: Vec<String> = new.iter().filter(|t| !old.contains(t)).cloned().collect();
            let class = facts.data.map_or("its", DataClass::as_str);
            if added.is_empty() {
                format!(
                    "{request} now sends {class} data to {} (was {})",
                    list(&new),
                    list(&old)
                )
            } else {
                format!(
                    "{request} now sends {class} data to {} (was {}): newly {}",
                    list(&new),
                    list(&old),
                    list(&added)
                )
            }
        }
    };
    Witness {
        kind,
        facts: facts.clone(),
        old,
        new,
        text,
    }
}

/// A request's facts in words: "a request with tools and 9,000 input tokens".
pub fn describe(f: &RequestFacts) -> String {
    let mut parts = Vec::new();
    if f.tools {
        parts.push("tools".to_string());
    }
    if f.images {
        parts.push("images".to_string());
    }
    if f.json_schema {
        parts.push("a JSON schema".to_string());
    }
    if f.stream {
        parts.push("streaming".to_string());
    }
    parts.push(format!("{} input tokens", thousands(f.input_tokens)));
    if let Some(m) = f.max_output {
        parts.push(format!("max output {}", thousands(m)));
    }
    if let Some(t) = f.task {
        parts.push(format!("task `{}`", t.as_str()));
    }
    for (k, v) in &f.metadata {
        parts.push(format!("metadata `{k}` = \"{v}\""));
    }
    if let Some(u) = &f.user {
        parts.push(format!("user \"{u}\""));
    }
    if let Some(d) = f.data {
        parts.push(format!("declared data `{d}`"));
    }
    if f.request_seed != 0 {
        parts.push(format!("request seed {}", f.request_seed));
    }
    match parts.split_last() {
        Some((last, [])) => format!("a request with {last}"),
        Some((last, init)) => format!("a request with {} and {last}", init.join(", ")),
        None => "a request".to_string(),
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The values each fact takes across the cells.
#[derive(Default)]
struct Space {
    input_tokens: BTreeSet<u64>,
    max_output: BTreeSet<Option<u64>>,
    features: BTreeSet<FeatureKey>,
    tasks: BTreeSet<Option<Task>>,
    metadata: BTreeMap<String, BTreeSet<Option<String>>>,
    users: BTreeSet<Option<String>>,
    seeds: BTreeSet<u64>,
    data: BTreeSet<Option<DataClass>>,
    /// Splits by key and salt, with their arms, from both policies.
    splits: BTreeMap<(SplitAxis, String), Vec<Arms>>,
}

/// A split's `(weight, arm)` list.
type Arms = Vec<(u32, NodeId)>;

/// What a split hashes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SplitAxis {
    User,
    Seed,
    Metadata(String),
}

fn feature_order(f: Feature) -> u8 {
    match f {
        Feature::Tools => 0,
        Feature::Images => 1,
        Feature::JsonSchema => 2,
        Feature::Stream => 3,
        Feature::Embedding => 4,
    }
}

impl PartialOrd for FeatureKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for FeatureKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        feature_order(self.0).cmp(&feature_order(other.0))
    }
}
#[derive(PartialEq, Eq)]
struct FeatureKey(Feature);

impl Space {
    /// Adds what workload `w` of `policy` can tell apart.
    fn collect(&mut self, policy: &Policy, w: usize) {
        let Some(workload) = policy.workloads.get(w) else {
            return;
        };
        self.input_tokens.insert(REFERENCE_INPUT_TOKENS);
        self.max_output.insert(None);
        self.tasks.insert(None);
        self.users.insert(None);
        self.seeds.insert(0);
        self.data.insert(None);
        for class in [DataClass::Internal, DataClass::Private] {
            if class > workload.data {
                self.data.insert(Some(class));
            }
        }
        let out = workload.max_tokens.unwrap_or(DEFAULT_OUTPUT_ESTIMATE);
        let mut stack = vec![workload.route];
        let mut seen: BTreeSet<NodeId> = BTreeSet::new();
        while let Some(id) = stack.pop() {
            if !seen.insert(id) || seen.len() > 10_000 {
                continue;
            }
            let Some(node) = policy.routes.get(id) else { continue };
            match &node.kind {
                NodeKind::Target { target } => {
                    let t = policy.target(*target);
                    if let Some(window) = t.context_window {
                        let edge = window.saturating_sub(out);
                        self.input_tokens.extend([edge, edge.saturating_add(1)]);
                    }
                    if let Some(limit) = t.max_output {
                        self.max_output.extend([Some(limit), Some(limit.saturating_add(1))]);
                    }
                    for (f, c) in [
                        (Feature::Tools, Capability::Tools),
                        (Feature::Images, Capability::Vision),
                        (Feature::JsonSchema, Capability::JsonSchema),
                        (Feature::Stream, Capability::Stream),
                    ] {
                        if !t.capabilities.has(c) {
                            self.add_feature(f);
                        }
                    }
                }
                NodeKind::Match { arms, .. } => {
                    for (cond, _) in arms {
                        self.condition(cond);
                    }
                }
                NodeKind::Split { key, salt, arms } => self.split(key, salt, arms),
                _ => {}
            }
            stack.extend(node.kind.children());
        }
    }

    fn add_feature(&mut self, f: Feature) {
        self.features.insert(FeatureKey(f));
    }

    fn condition(&mut self, c: &Condition) {
        let mut stack = vec![c];
        while let Some(c) = stack.pop() {
            match c {
                Condition::Compare { fact, value, .. } => {
                    let around = [value.saturating_sub(1), *value, value.saturating_add(1)];
                    match fact {
                        NumericFact::InputTokens => self.input_tokens.extend(around),
                        NumericFact::MaxOutputTokens => self.max_output.extend(around.map(Some)),
                    }
                }
                Condition::Has(f) => self.add_feature(*f),
                Condition::HasMetadata(k) => {
                    self.metadata
                        .entry(k.clone())
                        .or_default()
                        .extend([None, Some("x".to_string())]);
                }
                Condition::TaskIs(t) => {
                    self.tasks.insert(Some(*t));
                }
                Condition::Metadata { key, value, .. } => {
                    self.metadata.entry(key.clone()).or_default().extend([
                        None,
                        Some(value.clone()),
                        Some(format!("not-{value}")),
                    ]);
                }
                Condition::Not(inner) => stack.push(inner),
                Condition::All(v) | Condition::Any(v) => stack.extend(v.iter()),
            }
        }
    }

    /// Remembers a split; its keys are found once both policies are in,
    /// by [`Space::split_keys`].
    fn split(&mut self, key: &SplitKey, salt: &str, arms: &[(u32, NodeId)]) {
        let kind = match key {
            SplitKey::User => SplitAxis::User,
            SplitKey::Request => SplitAxis::Seed,
            SplitKey::Metadata(k) => SplitAxis::Metadata(k.clone()),
        };
        self.splits
            .entry((kind, salt.to_string()))
            .or_default()
            .push(arms.to_vec());
    }

    /// For the splits sharing a key and a salt (the same split in both
    /// policies, say), one key per distinct combination of arms they pick:
    /// the cells of the bucket space their cut points define, each found by
    /// the splits' own hash.
    fn split_keys(&mut self) {
        let splits = std::mem::take(&mut self.splits);
        for ((axis, salt), list) in splits {
            let pickers: Vec<Split<'_>> = list.iter().map(|arms| Split::new(&salt, arms)).collect();
            let signature =
                |bucket: u16| -> Vec<Option<usize>> { pickers.iter().map(|p| p.arm_for_bucket(bucket)).collect() };
            let mut wanted: BTreeSet<Vec<Option<usize>>> = (0..BUCKETS).map(signature).collect();
            for i in 0..200_000u64 {
                if wanted.is_empty() {
                    break;
                }
                let value = match &axis {
                    SplitAxis::Seed => i.to_string(),
                    SplitAxis::User => format!("user-{i}"),
                    SplitAxis::Metadata(_) => format!("value-{i}"),
                };
                let bytes = match &axis {
                    SplitAxis::Seed => i.to_le_bytes().to_vec(),
                    _ => value.clone().into_bytes(),
                };
                if !wanted.remove(&signature(split_bucket(&salt, &bytes))) {
                    continue;
                }
                match &axis {
                    SplitAxis::Seed => {
                        self.seeds.insert(i);
                    }
                    SplitAxis::User => {
                        self.users.insert(Some(value));
                    }
                    SplitAxis::Metadata(k) => {
                        self.metadata.entry(k.clone()).or_default().insert(Some(value));
                    }
                }
            }
        }
    }

    /// Every cell (the product), or each dimension varied on its own when
    /// the product is over [`MAX_CELLS`]; and whether it is the product.
    fn cells(&self) -> (Vec<RequestFacts>, bool) {
        let features: Vec<&FeatureKey> = self.features.iter().collect();
        let feature_sets: Vec<Vec<Feature>> = (0..1usize << features.len())
            .map(|mask| {
                features
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, f)| f.0)
                    .collect()
            })
            .collect();
        let meta: Vec<(String, Vec<Option<String>>)> = self
            .metadata
            .iter()
            .map(|(k, v)| {
                let mut v: Vec<Option<String>> = v.iter().cloned().collect();
                if !v.contains(&None) {
                    v.insert(0, None);
                }
                (k.clone(), v)
            })
            .collect();
        let dims: Vec<usize> = [
            self.input_tokens.len(),
            self.max_output.len(),
            feature_sets.len(),
            self.tasks.len(),
            self.users.len(),
            self.seeds.len(),
            self.data.len(),
        ]
        .into_iter()
        .chain(meta.iter().map(|(_, v)| v.len()))
        .collect();
        let total = dims.iter().try_fold(1usize, |acc, d| acc.checked_mul((*d).max(1)));
        let inputs: Vec<u64> = self.input_tokens.iter().copied().collect();
        let outs: Vec<Option<u64>> = self.max_output.iter().copied().collect();
        let tasks: Vec<Option<Task>> = self.tasks.iter().copied().collect();
        let users: Vec<Option<String>> = self.users.iter().cloned().collect();
        let seeds: Vec<u64> = self.seeds.iter().copied().collect();
        let data: Vec<Option<DataClass>> = self.data.iter().copied().collect();
        let build = |idx: &[usize]| {
            let mut f = RequestFacts {
                input_tokens: inputs.get(idx[0]).copied().unwrap_or(REFERENCE_INPUT_TOKENS),
                max_output: outs.get(idx[1]).copied().flatten(),
                task: tasks.get(idx[3]).copied().flatten(),
                user: users.get(idx[4]).cloned().flatten(),
                request_seed: seeds.get(idx[5]).copied().unwrap_or(0),
                data: data.get(idx[6]).copied().flatten(),
                ..RequestFacts::default()
            };
            for feature in feature_sets.get(idx[2]).map(Vec::as_slice).unwrap_or_default() {
                match feature {
                    Feature::Tools => f.tools = true,
                    Feature::Images => f.images = true,
                    Feature::JsonSchema => f.json_schema = true,
                    Feature::Stream => f.stream = true,
                    Feature::Embedding => f.embedding = true,
                }
            }
            for (j, (k, values)) in meta.iter().enumerate() {
                if let Some(Some(v)) = values.get(idx[7 + j]) {
                    f.metadata.insert(k.clone(), v.clone());
                }
            }
            f
        };
        // The base cell: the reference input size, everything else unset.
        let base: Vec<usize> = dims
            .iter()
            .enumerate()
            .map(|(i, _)| {
                if i == 0 {
                    inputs.iter().position(|v| *v == REFERENCE_INPUT_TOKENS).unwrap_or(0)
                } else {
                    0
                }
            })
            .collect();
        match total {
            Some(total) if total <= MAX_CELLS => {
                let mut out = Vec::with_capacity(total);
                let mut idx = vec![0usize; dims.len()];
                'cells: loop {
                    out.push(build(&idx));
                    for (i, d) in dims.iter().enumerate() {
                        idx[i] += 1;
                        if idx[i] < *d {
                            continue 'cells;
                        }
                        idx[i] = 0;
                    }
                    break;
                }
                (out, true)
            }
            _ => {
                let mut out = vec![build(&base)];
                for (i, d) in dims.iter().enumerate() {
                    for v in 0..*d {
                        if v != base[i] {
                            let mut idx = base.clone();
                            idx[i] = v;
                            out.push(build(&idx));
                        }
                    }
                }
                (out, false)
            }
        }
    }
}
