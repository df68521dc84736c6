//! Worst-case bounds of a workload, from the IR alone: the most upstream
//! calls one call can make, the most it can cost and the longest it can
//! take, over every path its route allows.
//!
//! Why from the IR: an author should see what a policy can cost before any
//! traffic runs. The bound is an upper bound, never an estimate:
//! - calls: every target a chain can try, each with its most retries
//!   (`retry N` or the largest per-class count); a `match` or `split` takes
//!   its worst branch; capped by the workload's attempt bound;
//! - cost: each call at the model's whole context window (input as large
//!   as the window allows, output at the workload's `max_tokens`, else the
//!   model's `max_output`), but never above the workload's `max_cost`,
//!   which the engine checks per attempt; unknown when a reachable paid
//!   model has no price or no context window;
//! - time: each call's total timeout plus the longest wait before each
//!   retry; capped by the workload's `latency` deadline when it has one.
//!
//! An `escalate … check evaluator(W)` adds, for each of its candidates, one
//! worst-case call of `W` (evaluators of evaluators too, as deep as the
//! router lets them go).

use std::time::Duration;

use serde::Serialize;

use crate::policy::Policy;
use crate::provider::Tier;
use crate::route::{ChainRules, NodeId, NodeKind};
use crate::units::{Usd, opt_duration_ms};
use crate::workload::WorkloadId;

/// An attempt's total timeout when no level of the policy sets one.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest backoff before a retry.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// The longest `Retry-After` waited out when no level sets `retry_after_wait`.
pub const DEFAULT_RETRY_AFTER_WAIT: Duration = Duration::from_secs(2);

/// The worst case of one call of a workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct WorstCase {
    /// The most upstream calls, retries included.
    pub calls: u32,
    /// The most it can cost; `None` when a reachable paid model has no
    /// price or no context window.
    pub cost: Option<Usd>,
    /// The longest it can take, in milliseconds.
    #[serde(with = "opt_duration_ms")]
    pub time: Option<Duration>,
    /// Whether the workload's `latency` deadline is what bounds the time.
    pub by_deadline: bool,
}

/// What a subtree of the route can do at most.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    calls: u64,
    cost: Option<Usd>,
    time: Duration,
    /// The most any one call (with its retries) costs and takes.
    one_cost: Option<Usd>,
    one_time: Duration,
    /// Evaluator calls: outside the workload's attempt bound.
    judge_calls: u64,
    judge_cost: Option<Usd>,
    judge_time: Duration,
}

impl Tally {
    fn zero() -> Tally {
        Tally {
            cost: Some(Usd::ZERO),
            one_cost: Some(Usd::ZERO),
            judge_cost: Some(Usd::ZERO),
            ..Tally::default()
        }
    }

    /// Both happen, one after the other (a chain's candidates).
    fn then(self, o: Tally) -> Tally {
        Tally {
            calls: self.calls.saturating_add(o.calls),
            cost: self.cost.zip(o.cost).map(|(a, b)| a.saturating_add(b)),
            time: self.time.saturating_add(o.time),
            one_cost: self.one_cost.zip(o.one_cost).map(|(a, b)| a.max(b)),
            one_time: self.one_time.max(o.one_time),
            judge_calls: self.judge_calls.saturating_add(o.judge_calls),
            judge_cost: self.judge_cost.zip(o.judge_cost).map(|(a, b)| a.saturating_add(b)),
            judge_time: self.judge_time.saturating_add(o.judge_time),
        }
    }

    /// One or the other happens (a `match` or `split`'s branches).
    fn or(self, o: Tally) -> Tally {
        Tally {
            calls: self.calls.max(o.calls),
            cost: self.cost.zip(o.cost).map(|(a, b)| a.max(b)),
            time: self.time.max(o.time),
            one_cost: self.one_cost.zip(o.one_cost).map(|(a, b)| a.max(b)),
            one_time: self.one_time.max(o.one_time),
            judge_calls: self.judge_calls.max(o.judge_calls),
            judge_cost: self.judge_cost.zip(o.judge_cost).map(|(a, b)| a.max(b)),
            judge_time: self.judge_time.max(o.judge_time),
        }
    }
}

/// The worst case of one call of `workload`. Walks the route iteratively;
/// a route deeper than the router walks (`R0214`) is cut where the router
/// cuts it.
pub fn worst_case(policy: &Policy, workload: WorkloadId) -> WorstCase {
    worst_case_at(policy, workload, 0)
}

/// The runtime's evaluator depth: an evaluator's own escalations may call
/// evaluators this deep.
const MAX_EVALUATOR_DEPTH: u8 = 2;

fn worst_case_at(policy: &Policy, workload: WorkloadId, depth: u8) -> WorstCase {
    let w = policy.workload(workload);
    let bound = u64::from(policy.max_attempts(workload));
    let tally = walk(policy, workload, w.route, depth);
    let calls = tally.calls.min(bound).saturating_add(tally.judge_calls);
    // The plan keeps at most `bound` calls: no more than the `bound` most
    // expensive ones.
    let cost = tally
        .cost
        .zip(tally.one_cost)
        .map(|(all, one)| {
            let capped = Usd::from_nanos(one.nanos().saturating_mul(bound));
            if all < capped { all } else { capped }
        })
        .zip(tally.judge_cost)
        .map(|(c, j)| c.saturating_add(j));
    let time = tally
        .time
        .min(tally.one_time.saturating_mul(u32::try_from(bound).unwrap_or(u32::MAX)))
        .saturating_add(tally.judge_time);
    let (time, by_deadline) = match w.latency_budget {
        Some(deadline) if deadline <= time => (deadline, true),
        _ => (time, false),
    };
    WorstCase {
        calls: u32::try_from(calls).unwrap_or(u32::MAX),
        cost,
        time: Some(time),
        by_deadline,
    }
}

/// One frame of the walk: a node to expand, or a combinator whose children
/// are on the result stack.
enum Frame {
    Visit(NodeId, Ctx, u32),
    Fold { sequential: bool, n: usize },
}

/// The innermost chain's rules and timeout, as `decide` carries them.
#[derive(Clone, Copy)]
struct Ctx {
    rules: ChainRules,
    timeout: Option<Duration>,
}

fn walk(policy: &Policy, workload: WorkloadId, root: NodeId, judges: u8) -> Tally {
    let w = policy.workload(workload);
    let mut frames = vec![Frame::Visit(
        root,
        Ctx {
            rules: ChainRules::default(),
            timeout: None,
        },
        0,
    )];
    let mut results: Vec<Tally> = Vec::new();
    let mut visits = 0u32;
    while let Some(frame) = frames.pop() {
        match frame {
            Frame::Fold { sequential, n } => {
                let at = results.len().saturating_sub(n);
                let folded = results
                    .drain(at..)
                    .reduce(|a, b| if sequential { a.then(b) } else { a.or(b) });
                results.push(folded.unwrap_or_else(Tally::zero));
            }
            Frame::Visit(id, ctx, depth) => {
                visits += 1;
                let node = policy.routes.get(id);
                if depth > crate::MAX_ROUTE_DEPTH || visits > crate::MAX_ROUTE_VISITS {
                    results.push(Tally::zero());
                    continue;
                }
                let Some(node) = node else {
                    results.push(Tally::zero());
                    continue;
                };
                let (children, sequential, inner): (Vec<NodeId>, bool, Ctx) = match &node.kind {
                    NodeKind::Target { target } => {
                        results.push(leaf(policy, w, *target, ctx));
                        continue;
                    }
                    NodeKind::Unresolved => {
                        results.push(Tally::zero());
                        continue;
                    }
                    NodeKind::Escalate {
                        children,
                        rules,
                        check: crate::QualityCheck::Evaluator(judge),
                    } if judges < MAX_EVALUATOR_DEPTH => {
                        // Each candidate's answer may be judged: one call of
                        // the evaluator workload each, at its worst.
                        let j = worst_case_at(policy, *judge, judges + 1);
                        let judged = Tally {
                            judge_calls: u64::from(j.calls),
                            judge_cost: j.cost,
                            judge_time: j.time.unwrap_or_default(),
                            ..Tally::zero()
                        };
                        for _ in children {
                            results.push(judged);
                        }
                        frames.push(Frame::Fold {
                            sequential: true,
                            n: children.len() + 1,
                        });
                        frames.push(Frame::Fold {
                            sequential: true,
                            n: children.len(),
                        });
                        let inner = enter(ctx, rules);
                        for child in children.iter().rev() {
                            frames.push(Frame::Visit(*child, inner, depth + 1));
                        }
                        continue;
                    }
                    NodeKind::Fallback { children, rules, .. } | NodeKind::Escalate { children, rules, .. } => {
                        (children.clone(), true, enter(ctx, rules))
                    }
                    NodeKind::Select { children, rules, .. } => {
                        (children.iter().map(|(_, n)| *n).collect(), true, enter(ctx, rules))
                    }
                    NodeKind::Split { arms, .. } => (arms.iter().map(|(_, n)| *n).collect(), false, ctx),
                    NodeKind::Match { arms, otherwise } => {
                        (arms.iter().map(|(_, n)| *n).chain(*otherwise).collect(), false, ctx)
                    }
                };
                frames.push(Frame::Fold {
                    sequential,
                    n: children.len(),
                });
                for child in children.into_iter().rev() {
                    frames.push(Frame::Visit(child, inner, depth + 1));
                }
            }
        }
    }
    results.pop().unwrap_or_else(Tally::zero)
}

fn enter(ctx: Ctx, rules: &ChainRules) -> Ctx {
    Ctx {
        rules: *rules,
        timeout: rules.attempt_timeout.or(ctx.timeout),
    }
}

/// One target with its retries, at its worst.
fn leaf(policy: &Policy, w: &crate::Workload, target: crate::TargetId, ctx: Ctx) -> Tally {
    let t = policy.target(target);
    let provider = policy.provider(t.provider);
    let defaults = &policy.defaults.failure;
    let retries = ctx.rules.retries.max(ctx.rules.retry_on.max());
    let tries = 1 + u64::from(retries);
    let output = w.max_tokens.or(t.max_output);
    let one = match (t.price, provider.tier) {
        (Some(price), _) => match (t.context_window, output) {
            (Some(context), Some(out)) => Some(price.cost(context.saturating_sub(out), out.min(context))),
            _ => None,
        },
        (None, Tier::Free | Tier::Subscription) => Some(Usd::ZERO),
        (None, Tier::Paid) => None,
    };
    let total = ctx
        .timeout
        .or(provider.timeout)
        .or(defaults.timeouts.total)
        .unwrap_or(DEFAULT_ATTEMPT_TIMEOUT);
    let wait = provider
        .failure
        .retry_after_wait
        .or(defaults.retry_after_wait)
        .unwrap_or(DEFAULT_RETRY_AFTER_WAIT)
        .max(DEFAULT_BACKOFF_MAX);
    let time = total
        .saturating_mul(u32::try_from(tries).unwrap_or(u32::MAX))
        .saturating_add(wait.saturating_mul(u32::from(retries)));
    // The engine drops a target whose one attempt is estimated above the
    // workload's `max_cost`: no attempt that goes costs more.
    let one = match (one, w.max_cost_per_call) {
        (Some(c), Some(limit)) if c > limit => Some(limit),
        (one, _) => one,
    };
    let cost = one.map(|c| Usd::from_nanos(c.nanos().saturating_mul(tries)));
    Tally {
        calls: tries,
        cost,
        time,
        one_cost: one,
        one_time: total.saturating_add(wait),
        ..Tally::zero()
    }
}
