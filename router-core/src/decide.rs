//! The decision engine: policy + facts + state → an explained attempt plan.
//!
//! One walk of the workload's route graph, depth first, in the order the
//! policy is written. Each target leaf is filtered (data class, capability,
//! token limits, cost ceiling, budget, availability, health — in that
//! order, the first failing filter names the reason); combinators decide
//! which children count and in what order. Three passes over the resulting
//! list (`passes.rs`) then drop repeats of a target, defer back-to-back
//! attempts on one provider, and cut the plan at the attempt bound.
//!
//! Nothing here allocates once a [`Decider`] and a [`Decision`] have warmed
//! up: candidates and attempts go into reused vectors, sorting is an
//! insertion sort over a reused segment stack, and the split hash runs over a
//! stack buffer.

use std::time::Duration;

use crate::explain::{Candidate, Explain, KeySource, LatencySource, MatchBranch, Reason, Step, Verdict};
use crate::facts::Facts;
use crate::failure::AttemptTimeouts;
use crate::passes::{apply_bound, defer_same_provider, drop_duplicates, refusal};
use crate::plan::{Attempt, AttemptPlan, Decision, Estimate, Refusal};
use crate::policy::Policy;
use crate::provider::{Capabilities, Capability, DataClass, TargetId, Tier};
use crate::route::{ChainRules, Condition, NodeId, NodeKind, NumericFact, SplitKey, Strategy};
use crate::split::{Split, split_bucket};
use crate::state::StateSnapshot;
use crate::units::{Price, Usd};
use crate::workload::Workload;

/// Latency assumed for a target with no observed p95 and no `simulate` p95,
/// when ranking under `fastest`: pessimistic on purpose, so a measured target
/// wins unless it is slower than this.
pub const DEFAULT_P95_PRIOR_MS: u32 = 2_000;

/// Output tokens assumed for estimates when neither the request, the
/// workload's `max_tokens` nor the model's `max_output` bounds them.
pub const DEFAULT_OUTPUT_ESTIMATE: u64 = 4_096;

/// Route nesting deeper than this, counted in steps from the workload's
/// route and through named routes, is treated as broken: it keeps a cyclic,
/// unchecked policy from recursing forever. `routec check` refuses a policy
/// that goes deeper, so checked policies never meet it.
pub const MAX_ROUTE_DEPTH: u32 = 64;

/// Node visits per decision beyond which the rest of the graph is treated as
/// broken: a bound on work even for a malformed graph that fans out into
/// itself. `routec check` refuses a policy whose workload would need more.
pub const MAX_ROUTE_VISITS: u32 = 4_096;

/// Decides one call with a fresh [`Decider`]. For many calls, keep a
/// `Decider` and reuse a [`Decision`] with [`Decider::decide_into`].
///
/// ```
/// # use router_core::*;
/// # fn demo(policy: &Policy) -> Option<()> {
/// let facts = RequestFacts { user: Some("alice".into()), input_tokens: 1200, ..Default::default() };
/// let state = StateSnapshot::default();
/// let decision = decide(policy, &facts.facts_for(policy, "content_summary")?, &state);
/// match decision.outcome() {
///     Ok(plan) => { let _first = plan.attempts()[0].target; }
///     Err(refusal) => { let _why = refusal.code(); }
/// }
/// # Some(()) }
/// ```
pub fn decide(policy: &Policy, facts: &Facts<'_>, state: &StateSnapshot) -> Decision {
    Decider::new(policy).decide(facts, state)
}

/// A reusable decision engine for one policy. It owns scratch space only;
/// deciding never changes what it decides.
#[derive(Clone, Debug)]
pub struct Decider<'p> {
    policy: &'p Policy,
    segments: Vec<Segment>,
    reorder: Vec<Attempt>,
    /// The largest (attempts, candidates, steps) seen so far, so a fresh
    /// [`Decision`] is allocated once at the size it will need.
    sizes: (usize, usize, usize),
}

/// The attempts one child of a `select` produced, and its sort key.
#[derive(Clone, Copy, Debug)]
struct Segment {
    start: usize,
    end: usize,
    key: u64,
    child: u16,
    weight: u32,
}

/// What a node inherits from the combinators above it.
#[derive(Clone, Copy, Debug)]
struct Ctx {
    /// The innermost chain's rules (retries; the default step triggers).
    rules: ChainRules,
    /// The innermost `timeout(d)`.
    timeout: Option<Duration>,
    /// The innermost chains' `timeouts` (first token, idle).
    stages: AttemptTimeouts,
    /// The innermost `escalate`.
    check: Option<NodeId>,
    /// The combinator this node is written in.
    parent: Option<NodeId>,
    /// Set inside an arm that was not taken: leaves are recorded, not kept.
    skip: Option<Reason>,
}

/// Per-call values derived once from facts and workload.
struct Call<'a, 'f> {
    facts: &'a Facts<'f>,
    state: &'a StateSnapshot,
    workload: &'a Workload,
    data: DataClass,
    requires: Capabilities,
    max_output: Option<u64>,
}

impl<'p> Decider<'p> {
    /// An engine for `policy`.
    pub fn new(policy: &'p Policy) -> Self {
        Decider {
            policy,
            segments: Vec::new(),
            reorder: Vec::new(),
            sizes: (0, 0, 0),
        }
    }

    /// The policy it decides for.
    pub fn policy(&self) -> &'p Policy {
        self.policy
    }

    /// Decides one call into a new [`Decision`]: three allocations (plan,
    /// candidates, steps) once the decider has seen calls of this size.
    pub fn decide(&mut self, facts: &Facts<'_>, state: &StateSnapshot) -> Decision {
        let (attempts, candidates, steps) = self.sizes;
        let mut out = Decision {
            plan: AttemptPlan {
                attempts: Vec::with_capacity(attempts),
            },
            refusal: None,
            explain: Explain {
                policy_hash: self.policy.hash(),
                workload: facts.workload,
                data_class: DataClass::Public,
                data_raised: false,
                requires: Capabilities::NONE,
                max_output_tokens: None,
                max_attempts: 0,
                now_ms: 0,
                candidates: Vec::with_capacity(candidates),
                steps: Vec::with_capacity(steps),
            },
        };
        self.decide_into(facts, state, &mut out);
        out
    }

    /// Decides one call, overwriting `out` and reusing its buffers: once
    /// they have grown to fit, this allocates nothing.
    ///
    /// A workload id not from this policy is a caller bug; it decides as a
    /// refusal with no candidates rather than panicking.
    pub fn decide_into(&mut self, facts: &Facts<'_>, state: &StateSnapshot, out: &mut Decision) {
        let policy = self.policy;
        out.plan.attempts.clear();
        out.refusal = None;
        let ex = &mut out.explain;
        ex.candidates.clear();
        ex.steps.clear();
        ex.policy_hash = policy.hash();
        ex.workload = facts.workload;
        ex.now_ms = state.now_ms;
        let Some(workload) = policy.workloads.get(facts.workload.0 as usize) else {
            ex.max_attempts = 0;
            out.refusal = Some(Refusal::NoEligibleTarget);
            return;
        };
        let data = facts.data.map_or(workload.data, |d| d.max(workload.data));
        let max_output = match (facts.max_output_tokens, workload.max_tokens) {
            (Some(asked), Some(cap)) => Some(asked.min(cap)),
            (asked, cap) => asked.or(cap),
        };
        let call = Call {
            facts,
            state,
            workload,
            data,
            requires: workload
                .requires
                .iter()
                .chain(facts.features.required_capabilities().iter())
                .collect(),
            max_output,
        };
        ex.data_class = data;
        ex.data_raised = data > workload.data;
        ex.requires = call.requires;
        ex.max_output_tokens = max_output;
        ex.max_attempts = policy.max_attempts(facts.workload);

        let ctx = Ctx {
            rules: ChainRules::default(),
            timeout: None,
            stages: AttemptTimeouts::default(),
            check: None,
            parent: None,
            skip: None,
        };
        self.segments.clear();
        let mut walk = Walk {
            policy,
            call: &call,
            attempts: &mut out.plan.attempts,
            ex: &mut out.explain,
            segments: &mut self.segments,
            reorder: &mut self.reorder,
            visits: 0,
        };
        walk.node(workload.route, ctx, 0);
        drop_duplicates(&mut out.plan.attempts, &mut out.explain);
        defer_same_provider(&mut out.plan.attempts, &mut out.explain);
        let bound = out.explain.max_attempts;
        apply_bound(&mut out.plan.attempts, &mut out.explain, bound);
        for (i, a) in out.plan.attempts.iter().enumerate() {
            if let Some(c) = out.explain.candidates.get_mut(a.candidate as usize) {
                let deferred = matches!(c.verdict, Verdict::Kept { deferred: true, .. });
                let position = u8::try_from(i + 1).unwrap_or(u8::MAX);
                c.verdict = Verdict::Kept { position, deferred };
            }
        }
        if out.plan.attempts.is_empty() {
            out.refusal = Some(refusal(&out.explain, state.workload(facts.workload).halted));
        }
        // The walk's high-water mark, not the plan's final length: the plan
        // is truncated after it grew.
        self.sizes = (
            self.sizes.0.max(out.explain.candidates.len()),
            self.sizes.1.max(out.explain.candidates.len()),
            self.sizes.2.max(out.explain.steps.len()),
        );
    }
}

/// The state of one walk of the route graph.
struct Walk<'w, 'a, 'f> {
    policy: &'w Policy,
    call: &'w Call<'a, 'f>,
    attempts: &'w mut Vec<Attempt>,
    ex: &'w mut Explain,
    segments: &'w mut Vec<Segment>,
    reorder: &'w mut Vec<Attempt>,
    visits: u32,
}

impl Walk<'_, '_, '_> {
    fn node(&mut self, id: NodeId, ctx: Ctx, depth: u32) {
        let policy = self.policy;
        self.visits += 1;
        let Some(node) = policy
            .routes
            .get(id)
            .filter(|_| depth <= MAX_ROUTE_DEPTH && self.visits <= MAX_ROUTE_VISITS)
        else {
            self.broken(id, ctx);
            return;
        };
        match &node.kind {
            NodeKind::Target { target } => self.leaf(id, *target, ctx),
            NodeKind::Fallback { children, rules, .. } => {
                let inner = ctx.enter(id, rules);
                self.chain(children.iter().copied(), rules, inner, depth);
            }
            NodeKind::Escalate { children, rules, .. } => {
                let inner = Ctx {
                    check: Some(id),
                    ..ctx.enter(id, rules)
                };
                self.chain(children.iter().copied(), rules, inner, depth);
            }
            NodeKind::Select {
                strategy,
                children,
                rules,
            } => self.select(id, *strategy, children, rules, ctx, depth),
            NodeKind::Split { key, salt, arms } => self.split(id, key, salt, arms, ctx, depth),
            NodeKind::Match { arms, otherwise } => {
                let inner = Ctx {
                    parent: Some(id),
                    ..ctx
                };
                if ctx.skip.is_some() {
                    for (_, child) in arms {
                        self.node(*child, inner, depth + 1);
                    }
                    if let Some(child) = otherwise {
                        self.node(*child, inner, depth + 1);
                    }
                    return;
                }
                let taken = arms.iter().position(|(cond, _)| self.holds(cond));
                let branch = match (taken, otherwise) {
                    (Some(i), _) => MatchBranch::When(u16::try_from(i).unwrap_or(u16::MAX)),
                    (None, Some(_)) => MatchBranch::Else,
                    (None, None) => MatchBranch::None,
                };
                self.ex.steps.push(Step::Match { node: id, branch });
                let not_taken = Ctx {
                    skip: Some(Reason::MatchArmNotTaken { matched: id }),
                    ..inner
                };
                for (i, (_, child)) in arms.iter().enumerate() {
                    self.node(*child, if taken == Some(i) { inner } else { not_taken }, depth + 1);
                }
                if let Some(child) = otherwise {
                    self.node(*child, if taken.is_none() { inner } else { not_taken }, depth + 1);
                }
            }
            NodeKind::Unresolved => self.broken(id, ctx),
        }
    }

    /// A fallback or escalate: children in order; every boundary between two
    /// children is one of this chain's steps, so the last attempt a child
    /// produced advances on this chain's triggers.
    fn chain(&mut self, children: impl Iterator<Item = NodeId>, rules: &ChainRules, inner: Ctx, depth: u32) {
        let start = self.attempts.len();
        for child in children {
            self.node(child, inner, depth + 1);
            self.stamp(start, rules);
        }
    }

    fn stamp(&mut self, start: usize, rules: &ChainRules) {
        if self.attempts.len() > start
            && let Some(last) = self.attempts.last_mut()
        {
            last.advance_on = rules.triggers;
            last.allow_repeat = rules.allow_repeat;
        }
    }

    fn select(
        &mut self,
        id: NodeId,
        strategy: Strategy,
        children: &[(u32, NodeId)],
        rules: &ChainRules,
        ctx: Ctx,
        depth: u32,
    ) {
        let inner = ctx.enter(id, rules);
        let start = self.attempts.len();
        let base = self.segments.len();
        for (i, (weight, child)) in children.iter().enumerate() {
            let seg_start = self.attempts.len();
            self.node(*child, inner, depth + 1);
            self.stamp(seg_start, rules);
            let seg_end = self.attempts.len();
            if seg_end == seg_start {
                continue;
            }
            let first = &self.attempts[seg_start];
            let key = match strategy {
                Strategy::Cheapest => first.estimate.usd.map_or(u64::MAX, Usd::nanos),
                Strategy::Fastest => u64::from(self.ex.candidates[first.candidate as usize].p95_ms),
                // Weighted: heaviest first, after the one drawn below.
                Strategy::Weighted => 1 + u64::from(u32::MAX - *weight),
                Strategy::First => i as u64,
            };
            self.segments.push(Segment {
                start: seg_start,
                end: seg_end,
                key,
                child: u16::try_from(i).unwrap_or(u16::MAX),
                weight: *weight,
            });
        }
        if ctx.skip.is_some() {
            self.segments.truncate(base);
            return;
        }
        let mut drawn = None;
        if strategy == Strategy::Weighted {
            drawn = self.draw_weighted(id, base);
        }
        insertion_sort(&mut self.segments[base..]);
        let moved = self.segments[base..]
            .iter()
            .zip(self.segments[base..].iter().skip(1))
            .any(|(a, b)| a.end != b.start);
        if moved {
            self.reorder.clear();
            for s in &self.segments[base..] {
                self.reorder.extend_from_slice(&self.attempts[s.start..s.end]);
            }
            self.attempts.truncate(start);
            self.attempts.extend_from_slice(self.reorder);
        }
        self.segments.truncate(base);
        self.ex.steps.push(Step::Select {
            node: id,
            strategy,
            drawn,
        });
    }

    /// `select weighted`: draws one eligible child in proportion to its
    /// weight from the request seed and gives it key 0 so it sorts first.
    /// Returns the drawn child's index among the select's children.
    fn draw_weighted(&mut self, id: NodeId, base: usize) -> Option<u16> {
        let total: u64 = self.segments[base..].iter().map(|s| u64::from(s.weight)).sum();
        if total == 0 {
            return None;
        }
        // Mix the node id in so two weighted selects in one route draw independently.
        let r = xxhash_rust::xxh3::xxh3_64_with_seed(&id.0.to_le_bytes(), self.call.facts.request_seed) % total;
        let mut upper = 0;
        for seg in &mut self.segments[base..] {
            upper += u64::from(seg.weight);
            if r < upper {
                seg.key = 0;
                return Some(seg.child);
            }
        }
        None
    }

    fn split(&mut self, id: NodeId, key: &SplitKey, salt: &str, arms: &[(u32, NodeId)], ctx: Ctx, depth: u32) {
        let inner = Ctx {
            parent: Some(id),
            ..ctx
        };
        if ctx.skip.is_some() {
            for (_, child) in arms {
                self.node(*child, inner, depth + 1);
            }
            return;
        }
        let facts = self.call.facts;
        let seed = facts.request_seed.to_le_bytes();
        let (bytes, source): (&[u8], KeySource) = match key {
            SplitKey::User => match facts.user {
                Some(u) => (u.as_bytes(), KeySource::User),
                None => (&seed, KeySource::MissingUsedSeed),
            },
            SplitKey::Metadata(k) => match facts.metadata.get(k) {
                Some(v) => (v.as_bytes(), KeySource::Metadata),
                None => (&seed, KeySource::MissingUsedSeed),
            },
            SplitKey::Request => (&seed, KeySource::Request),
        };
        let bucket = split_bucket(salt, bytes);
        let chosen = Split::new(salt, arms).arm_for_bucket(bucket);
        self.ex.steps.push(Step::Split {
            node: id,
            key: source,
            bucket,
            arm: chosen.and_then(|a| u16::try_from(a).ok()),
        });
        let not_chosen = Ctx {
            skip: Some(Reason::SplitArmNotChosen { split: id }),
            ..inner
        };
        for (i, (_, child)) in arms.iter().enumerate() {
            self.node(*child, if chosen == Some(i) { inner } else { not_chosen }, depth + 1);
        }
    }

    /// Whether a `when` condition holds for this call.
    fn holds(&self, cond: &Condition) -> bool {
        let call = self.call;
        match cond {
            Condition::Compare { fact, op, value } => {
                let left = match fact {
                    NumericFact::InputTokens => call.facts.input_tokens,
                    NumericFact::MaxOutputTokens => call.max_output.unwrap_or(0),
                };
                op.holds(left, *value)
            }
            Condition::Has(f) => call.facts.features.has(*f),
            Condition::HasMetadata(k) => call.facts.metadata.get(k).is_some(),
            Condition::TaskIs(t) => call.facts.task.or(call.workload.task) == Some(*t),
            // A missing key equals no string, so `!=` holds for it.
            Condition::Metadata { key, op, value } => match call.facts.metadata.get(key) {
                Some(v) => op.holds(v, value.as_str()),
                None => matches!(op, crate::route::CmpOp::Ne),
            },
            Condition::Not(c) => !self.holds(c),
            Condition::All(cs) => cs.iter().all(|c| self.holds(c)),
            Condition::Any(cs) => cs.iter().any(|c| self.holds(c)),
        }
    }

    fn broken(&mut self, id: NodeId, ctx: Ctx) {
        // Recorded against no real target: TargetId::MAX marks "no target".
        self.ex.candidates.push(Candidate {
            target: TargetId(u32::MAX),
            node: id,
            parent: ctx.parent,
            verdict: Verdict::Dropped {
                reason: Reason::BrokenRoute,
            },
            estimated_cost: None,
            p95_ms: 0,
            p95_source: LatencySource::Prior,
        });
    }

    fn leaf(&mut self, id: NodeId, target_id: TargetId, ctx: Ctx) {
        let policy = self.policy;
        let call = self.call;
        let Some(target) = policy.targets.get(target_id.0 as usize) else {
            self.broken(id, ctx);
            return;
        };
        let Some(provider) = policy.providers.get(target.provider.0 as usize) else {
            self.broken(id, ctx);
            return;
        };
        let input = call.facts.input_tokens;
        // An embedding call has no output tokens: its vectors are not billed.
        let output = if call.requires.has(Capability::Embeddings) {
            0
        } else {
            call.max_output.or(target.max_output).unwrap_or(DEFAULT_OUTPUT_ESTIMATE)
        };
        let usd = match (target.price, provider.tier) {
            (Some(price), _) => Some(cost(&price, input, output)),
            (None, Tier::Free | Tier::Subscription) => Some(Usd::ZERO),
            (None, Tier::Paid) => None,
        };
        let estimate = Estimate {
            tokens: input.saturating_add(output),
            usd,
        };
        let (p95_ms, p95_source) = match call.state.target(target_id).p95_ms {
            Some(p) => (p, LatencySource::Observed),
            None => match target.simulate.or(provider.simulate) {
                Some(sim) => (
                    u32::try_from(sim.latency_p95.as_millis()).unwrap_or(u32::MAX),
                    LatencySource::Simulated,
                ),
                None => (DEFAULT_P95_PRIOR_MS, LatencySource::Prior),
            },
        };
        let reason = ctx.skip.or_else(|| self.filter(target_id, estimate));
        let candidate = self.ex.candidates.len();
        self.ex.candidates.push(Candidate {
            target: target_id,
            node: id,
            parent: ctx.parent,
            verdict: match reason {
                Some(reason) => Verdict::Dropped { reason },
                None => Verdict::Kept {
                    position: 0,
                    deferred: false,
                },
            },
            estimated_cost: usd,
            p95_ms,
            p95_source,
        });
        if reason.is_some() {
            return;
        }
        let defaults = &self.policy.defaults.failure.timeouts;
        let own = ctx.timeout.or(provider.timeout).or(defaults.total);
        let timeout = match (own, call.workload.latency_budget) {
            (Some(t), Some(deadline)) => Some(t.min(deadline)),
            (t, deadline) => t.or(deadline),
        };
        let stages = ctx.stages.or(provider.failure.timeouts).or(*defaults);
        self.attempts.push(Attempt {
            target: target_id,
            provider: target.provider,
            node: id,
            placed_by: ctx.parent,
            timeout,
            first_token: stages.first_token,
            idle: stages.idle,
            advance_on: ctx.rules.triggers,
            allow_repeat: ctx.rules.allow_repeat,
            retries: ctx.rules.retries,
            retry_on: ctx.rules.retry_on,
            check: ctx.check,
            estimate,
            candidate: u32::try_from(candidate).unwrap_or(u32::MAX),
        });
    }

    /// The first filter a target fails, in the documented order.
    fn filter(&self, id: TargetId, estimate: Estimate) -> Option<Reason> {
        let call = self.call;
        let target = self.policy.target(id);
        let provider = self.policy.provider(target.provider);
        if provider.max_data < call.data {
            return Some(Reason::DataClass {
                allowed: provider.max_data,
                required: call.data,
            });
        }
        let allowed = &call.workload.jurisdictions;
        if !allowed.is_empty()
            && !provider
                .jurisdiction
                .as_ref()
                .is_some_and(|j| allowed.iter().any(|a| a == j))
        {
            return Some(Reason::Jurisdiction);
        }
        if !target.capabilities.covers(call.requires) {
            return Some(Reason::Capability {
                missing: target.capabilities.missing(call.requires),
            });
        }
        if target.capabilities.has(Capability::Embeddings) && !call.requires.has(Capability::Embeddings) {
            return Some(Reason::EmbeddingModel);
        }
        if let (Some(requested), Some(limit)) = (call.max_output, target.max_output)
            && requested > limit
        {
            return Some(Reason::MaxOutput { limit, requested });
        }
        let needed = call.facts.input_tokens.saturating_add(call.max_output.unwrap_or(0));
        if let Some(window) = target.context_window
            && needed > window
        {
            return Some(Reason::ContextWindow { window, needed });
        }
        if let Some(ceiling) = call.workload.max_cost_per_call {
            match estimate.usd {
                None => return Some(Reason::Unpriced),
                Some(cost) if cost > ceiling => return Some(Reason::OverCostCeiling { cost, ceiling }),
                Some(_) => {}
            }
        }
        let budget = call.state.workload(call.facts.workload);
        let short_tokens = budget.tokens_remaining.is_some_and(|r| estimate.tokens > r);
        if budget.usd_remaining.is_some() && estimate.usd.is_none() {
            return Some(Reason::Unpriced);
        }
        let short_usd = matches!((budget.usd_remaining, estimate.usd), (Some(r), Some(c)) if c > r);
        if budget.halted || short_tokens || short_usd {
            return Some(Reason::OverBudget {
                tokens_needed: estimate.tokens,
                tokens_remaining: budget.tokens_remaining,
                usd_needed: estimate.usd,
                usd_remaining: budget.usd_remaining,
                halted: budget.halted,
            });
        }
        if call.state.provider(target.provider).unavailable {
            return Some(Reason::Unavailable);
        }
        let now = call.state.now_ms;
        if let Some(until) = call.state.target(id).ejected_until_ms
            && until > now
        {
            return Some(Reason::Ejected { until_ms: until });
        }
        if let Some(until) = call.state.provider(target.provider).cooling_until_ms
            && until > now
        {
            return Some(Reason::CoolingDown { until_ms: until });
        }
        if let Some(until) = call.state.target(id).cooling_until_ms
            && until > now
        {
            return Some(Reason::CoolingDown { until_ms: until });
        }
        None
    }
}

impl Ctx {
    /// The context inside a chain-like combinator (fallback, select, escalate).
    fn enter(self, id: NodeId, rules: &ChainRules) -> Ctx {
        Ctx {
            rules: *rules,
            timeout: rules.attempt_timeout.or(self.timeout),
            stages: rules.timeouts.or(self.stages),
            parent: Some(id),
            ..self
        }
    }
}

/// [`Price::cost`], computed in `u64` whenever the products fit (always, for
/// real prices and token counts): 128-bit division is a library call, and
/// this runs for every candidate of every decision. Same result, rounding
/// up to the nano-dollar, as the property test below checks.
fn cost(price: &Price, input_tokens: u64, output_tokens: u64) -> Usd {
    let fast = |tokens: u64, per_mtok: Usd| tokens.checked_mul(per_mtok.nanos()).map(|n| n.div_ceil(1_000_000));
    match (
        fast(input_tokens, price.input_per_mtok),
        fast(output_tokens, price.output_per_mtok),
    ) {
        (Some(a), Some(b)) => match a.checked_add(b) {
            Some(total) => Usd::from_nanos(total),
            None => price.cost(input_tokens, output_tokens),
        },
        _ => price.cost(input_tokens, output_tokens),
    }
}

/// Stable, allocation-free sort by key; selects have a handful of children.
fn insertion_sort(segs: &mut [Segment]) {
    for i in 1..segs.len() {
        let mut j = i;
        while j > 0 && segs[j - 1].key > segs[j].key {
            segs.swap(j - 1, j);
            j -= 1;
        }
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "decide_props.rs"]
mod props;
