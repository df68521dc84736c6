//! Unit tests of the engine against policies built in code (the `.route`
//! corpus lives in `testdata/eval` and runs from `tests/eval.rs`).

use std::time::Duration;

use super::*;
use crate::facts::{Features, RequestFacts};
use crate::route::{CmpOp, Feature, QualityCheck, Trigger, Triggers};
use crate::testkit::{Builder, price, rules_timeout, seed};
use crate::{Price, Tier, WorkloadId};

fn labels(policy: &Policy, d: &Decision) -> Vec<String> {
    d.plan()
        .attempts()
        .iter()
        .map(|a| policy.target_label(a.target))
        .collect()
}

fn dropped(policy: &Policy, d: &Decision, code: &str) -> Vec<String> {
    d.explain()
        .dropped_for(code)
        .map(|c| policy.target_label(c.target))
        .collect()
}

fn run(policy: &Policy, workload: &str, facts: &RequestFacts, state: &StateSnapshot) -> Decision {
    decide(policy, &facts.facts_for(policy, workload).unwrap(), state)
}

fn user(name: &str) -> RequestFacts {
    RequestFacts {
        user: Some(name.into()),
        input_tokens: 1_200,
        ..RequestFacts::default()
    }
}

/// A user whose bucket lands in the given arm of the seed split.
fn user_in_arm(arm: usize) -> String {
    let arms = [(80, NodeId(0)), (20, NodeId(1))];
    let split = Split::new("workload:content_summary", &arms);
    (0..)
        .map(|i| format!("user-{i}"))
        .find(|u| split.pick(u.as_bytes()).map(|p| p.arm) == Some(arm))
        .unwrap()
}

#[test]
fn seed_summary_goes_free_tier_first_and_explains_the_other_arm() {
    let p = seed();
    let d = run(&p, "content_summary", &user(&user_in_arm(0)), &StateSnapshot::default());
    assert_eq!(
        labels(&p, &d),
        [
            "cerebras/llama-3.3-70b",
            "claude_cli/sonnet",
            "anthropic/claude-haiku-4.5",
            "openrouter/claude-haiku-4.5"
        ]
    );
    assert_eq!(
        dropped(&p, &d, "split_arm_not_chosen"),
        ["gemini_free/gemini-2.5-flash", "zai/glm-4.6"]
    );
    let first = d.plan().attempts()[0];
    assert_eq!(first.timeout, Some(Duration::from_secs(15)));
    assert!(first.advance_on.has(Trigger::RateLimited) && !first.advance_on.has(Trigger::ServerError));

    let d = run(&p, "content_summary", &user(&user_in_arm(1)), &StateSnapshot::default());
    assert_eq!(labels(&p, &d), ["gemini_free/gemini-2.5-flash", "zai/glm-4.6"]);
    assert!(matches!(
        d.explain().steps[0],
        Step::Split {
            key: KeySource::User,
            arm: Some(1),
            ..
        }
    ));
}

#[test]
fn audit_report_keeps_private_providers_only_and_caps_timeouts() {
    let p = seed();
    let d = run(&p, "audit_report", &user("alice"), &StateSnapshot::default());
    assert_eq!(
        labels(&p, &d),
        [
            "anthropic/claude-opus-4.1",
            "openrouter/claude-opus-4.1",
            "xai/grok-4-fast"
        ]
    );
    for a in d.plan().attempts() {
        assert_eq!(a.timeout, Some(Duration::from_secs(60)));
        assert!(p.provider(a.provider).max_data >= DataClass::Private);
    }
}

#[test]
fn a_request_can_raise_the_data_class_but_not_lower_it() {
    let p = seed();
    let mut facts = user(&user_in_arm(0));
    facts.data = Some(DataClass::Private);
    let d = run(&p, "content_summary", &facts, &StateSnapshot::default());
    assert_eq!(dropped(&p, &d, "data_class"), ["cerebras/llama-3.3-70b"]);
    assert!(d.explain().data_raised);
    assert_eq!(labels(&p, &d)[0], "claude_cli/sonnet");

    let mut facts = user("alice");
    facts.data = Some(DataClass::Public);
    let d = run(&p, "audit_report", &facts, &StateSnapshot::default());
    assert_eq!(d.explain().data_class, DataClass::Private);
    assert!(!d.explain().data_raised);
}

#[test]
fn data_class_alone_refuses_when_no_provider_may_receive_it() {
    let p = seed();
    let mut facts = user(&user_in_arm(1));
    facts.data = Some(DataClass::Private);
    let d = run(&p, "content_summary", &facts, &StateSnapshot::default());
    assert_eq!(
        d.outcome().unwrap_err(),
        Refusal::DataClass {
            required: DataClass::Private
        }
    );
    assert!(d.plan().is_empty());
}

#[test]
fn capability_token_and_window_filters_name_what_failed() {
    let p = seed();
    let mut facts = user(&user_in_arm(0));
    facts.tools = true;
    let d = run(&p, "content_summary", &facts, &StateSnapshot::default());
    assert_eq!(dropped(&p, &d, "capability"), ["claude_cli/sonnet"]);

    let mut facts = user(&user_in_arm(0));
    facts.input_tokens = 127_000;
    let d = run(&p, "content_summary", &facts, &StateSnapshot::default());
    let c = d.explain().dropped_for("context_window").next().unwrap();
    assert_eq!(
        c.verdict,
        Verdict::Dropped {
            reason: Reason::ContextWindow {
                window: 128_000,
                needed: 129_000
            }
        }
    );

    // The request's max output is capped by the workload's max_tokens (8000).
    let mut facts = user("alice");
    facts.max_output = Some(50_000);
    let d = run(&p, "audit_report", &facts, &StateSnapshot::default());
    assert_eq!(d.explain().max_output_tokens, Some(8_000));
    assert!(d.refusal().is_none());
}

#[test]
fn max_output_above_a_models_limit_drops_it() {
    let mut b = Builder::new();
    let pr = b.provider("p", Tier::Paid, DataClass::Private);
    let small = b.model(pr, "small", Some(price(1_000, 1_000)));
    let big = b.model(pr, "big", Some(price(1_000, 1_000)));
    b.target_mut(small).max_output = Some(4_000);
    let leaves = b.leaves(&[small, big]);
    let route = b.fallback(leaves, ChainRules::default());
    b.workload("w", DataClass::Public, route);
    let p = b.build();
    let facts = RequestFacts {
        max_output: Some(6_000),
        ..RequestFacts::default()
    };
    let d = run(&p, "w", &facts, &StateSnapshot::default());
    assert_eq!(dropped(&p, &d, "max_output"), ["p/small"]);
    assert_eq!(labels(&p, &d), ["p/big"]);
}

#[test]
fn cost_ceiling_drops_expensive_and_unpriced_paid_models() {
    let mut b = Builder::new();
    let a = b.provider("a", Tier::Paid, DataClass::Private);
    let opus = b.model(a, "opus", Some(price(15_000, 75_000)));
    let mystery = b.model(a, "mystery", None);
    let c = b.provider("c", Tier::Subscription, DataClass::Private);
    let cli = b.model(c, "cli", None);
    let leaves = b.leaves(&[opus, mystery, cli]);
    let route = b.fallback(leaves, ChainRules::default());
    let w = b.workload("w", DataClass::Public, route);
    b.workload_mut(w).max_cost_per_call = Some(Usd::from_nanos(10_000_000)); // $0.01
    b.workload_mut(w).max_tokens = Some(1_000);
    let p = b.build();
    let d = run(&p, "w", &user("u"), &StateSnapshot::default());
    assert_eq!(dropped(&p, &d, "over_cost_ceiling"), ["a/opus"]);
    assert_eq!(dropped(&p, &d, "unpriced"), ["a/mystery"]);
    assert_eq!(labels(&p, &d), ["c/cli"]);
}

#[test]
fn budgets_fail_closed_and_halted_workloads_refuse() {
    let p = seed();
    let w = p.workload_id("content_summary").unwrap();
    let mut state = StateSnapshot::for_policy(&p, 0);
    state.workload_mut(w).tokens_remaining = Some(3_000);
    // 1200 in + 2000 out = 3200 > 3000: every target is over budget.
    let d = run(&p, "content_summary", &user(&user_in_arm(0)), &state);
    assert_eq!(d.refusal(), Some(Refusal::BudgetExhausted { halted: false }));
    assert_eq!(dropped(&p, &d, "over_budget").len(), 4);

    state.workload_mut(w).tokens_remaining = Some(10_000);
    state.workload_mut(w).usd_remaining = Some(Usd::from_nanos(1_000));
    let d = run(&p, "content_summary", &user(&user_in_arm(0)), &state);
    // Free and subscription models cost nothing; paid ones exceed $0.000001.
    assert_eq!(labels(&p, &d), ["cerebras/llama-3.3-70b", "claude_cli/sonnet"]);

    state.workload_mut(w).halted = true;
    let d = run(&p, "content_summary", &user(&user_in_arm(0)), &state);
    assert_eq!(d.refusal(), Some(Refusal::BudgetExhausted { halted: true }));
}

#[test]
fn ejected_targets_and_cooling_providers_are_skipped_until_their_time() {
    let p = seed();
    let opus = p.target_named("anthropic", "claude-opus-4.1").unwrap();
    let openrouter = p
        .target(p.target_named("openrouter", "claude-opus-4.1").unwrap())
        .provider;
    let mut state = StateSnapshot::for_policy(&p, 10_000);
    state.target_mut(opus).ejected_until_ms = Some(40_000);
    state.provider_mut(openrouter).cooling_until_ms = Some(25_000);
    let d = run(&p, "audit_report", &user("a"), &state);
    assert_eq!(labels(&p, &d), ["xai/grok-4-fast"]);
    assert_eq!(dropped(&p, &d, "ejected"), ["anthropic/claude-opus-4.1"]);
    assert_eq!(dropped(&p, &d, "cooling_down"), ["openrouter/claude-opus-4.1"]);

    let grok = p.target_named("xai", "grok-4-fast").unwrap();
    state.target_mut(grok).ejected_until_ms = Some(90_000);
    let d = run(&p, "audit_report", &user("a"), &state);
    assert_eq!(d.refusal(), Some(Refusal::Unhealthy { retry_at_ms: 25_000 }));

    // At the ejection time the target is back (half-open).
    state.now_ms = 40_000;
    let d = run(&p, "audit_report", &user("a"), &state);
    assert_eq!(
        labels(&p, &d),
        ["anthropic/claude-opus-4.1", "openrouter/claude-opus-4.1"]
    );
}

#[test]
fn unavailable_providers_are_skipped_at_any_time_and_set_no_retry_time() {
    let p = seed();
    let provider = |name: &str| crate::ProviderId(p.providers.iter().position(|x| x.name == name).unwrap() as u32);
    let mut state = StateSnapshot::for_policy(&p, 10_000);
    state.provider_mut(provider("anthropic")).unavailable = true;
    let d = run(&p, "audit_report", &user("a"), &state);
    assert_eq!(labels(&p, &d), ["openrouter/claude-opus-4.1", "xai/grok-4-fast"]);
    assert_eq!(dropped(&p, &d, "unavailable"), ["anthropic/claude-opus-4.1"]);
    state.now_ms = u64::MAX - 1;
    let d = run(&p, "audit_report", &user("a"), &state);
    assert_eq!(
        dropped(&p, &d, "unavailable"),
        ["anthropic/claude-opus-4.1"],
        "no time brings it back"
    );

    state.now_ms = 10_000;
    state.provider_mut(provider("xai")).unavailable = true;
    state.provider_mut(provider("openrouter")).unavailable = true;
    let d = run(&p, "audit_report", &user("a"), &state);
    assert_eq!(d.refusal(), Some(Refusal::Unhealthy { retry_at_ms: u64::MAX }));
    assert_eq!(
        d.refusal().unwrap().to_string(),
        "every target that fits is unavailable or out of rotation with no end time"
    );
    // A cooling provider among unavailable ones gives the refusal its time.
    state.provider_mut(provider("openrouter")).unavailable = false;
    state.provider_mut(provider("openrouter")).cooling_until_ms = Some(25_000);
    let d = run(&p, "audit_report", &user("a"), &state);
    assert_eq!(d.refusal(), Some(Refusal::Unhealthy { retry_at_ms: 25_000 }));
}

#[test]
fn a_target_never_appears_twice() {
    let mut b = Builder::new();
    let a = b.provider("a", Tier::Paid, DataClass::Private);
    let m1 = b.model(a, "m1", Some(price(1, 1)));
    let c = b.provider("c", Tier::Paid, DataClass::Private);
    let m2 = b.model(c, "m2", Some(price(1, 1)));
    let first = b.leaves(&[m1, m2]);
    let inner = b.fallback(first, ChainRules::default());
    let again = b.leaf(m1);
    let route = b.fallback(vec![inner, again], ChainRules::default());
    b.workload("w", DataClass::Public, route);
    let p = b.build();
    let d = run(&p, "w", &user("u"), &StateSnapshot::default());
    assert_eq!(labels(&p, &d), ["a/m1", "c/m2"]);
    assert_eq!(dropped(&p, &d, "duplicate"), ["a/m1"]);
}

#[test]
fn back_to_back_same_provider_is_deferred_unless_allowed() {
    let mut b = Builder::new();
    let a = b.provider("a", Tier::Paid, DataClass::Private);
    let a1 = b.model(a, "one", Some(price(1, 1)));
    let a2 = b.model(a, "two", Some(price(1, 1)));
    let c = b.provider("c", Tier::Paid, DataClass::Private);
    let c1 = b.model(c, "one", Some(price(1, 1)));
    let leaves = b.leaves(&[a1, a2, c1]);
    let route = b.fallback(leaves.clone(), ChainRules::default());
    b.workload("deferred", DataClass::Public, route);
    let allowed = b.fallback(
        leaves,
        ChainRules {
            allow_repeat: true,
            ..ChainRules::default()
        },
    );
    b.workload("allowed", DataClass::Public, allowed);
    let p = b.build();
    let d = run(&p, "deferred", &user("u"), &StateSnapshot::default());
    assert_eq!(labels(&p, &d), ["a/one", "c/one", "a/two"]);
    let deferred: Vec<_> = d
        .explain()
        .candidates
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Kept { deferred: true, .. }))
        .map(|c| p.target_label(c.target))
        .collect();
    assert_eq!(deferred, ["a/two"]);
    let d = run(&p, "allowed", &user("u"), &StateSnapshot::default());
    assert_eq!(labels(&p, &d), ["a/one", "a/two", "c/one"]);
}

#[test]
fn the_attempt_bound_counts_retries() {
    let mut b = Builder::new();
    let ids: Vec<_> = (0..5)
        .map(|i| {
            let pr = b.provider(&format!("p{i}"), Tier::Paid, DataClass::Private);
            b.model(pr, "m", Some(price(1, 1)))
        })
        .collect();
    let leaves = b.leaves(&ids);
    let route = b.fallback(
        leaves,
        ChainRules {
            retries: 1,
            ..ChainRules::default()
        },
    );
    let w = b.workload("w", DataClass::Public, route);
    b.workload_mut(w).max_attempts = Some(5);
    let p = b.build();
    let d = run(&p, "w", &user("u"), &StateSnapshot::default());
    // 2 + 2 + 1 (retry trimmed) = 5.
    assert_eq!(labels(&p, &d), ["p0/m", "p1/m", "p2/m"]);
    let retries: Vec<u8> = d.plan().attempts().iter().map(|a| a.retries).collect();
    assert_eq!(retries, [1, 1, 0]);
    assert_eq!(d.plan().tries(), 5);
    assert_eq!(dropped(&p, &d, "attempt_bound"), ["p3/m", "p4/m"]);
}

fn three_way(strategy: Strategy, weights: [u32; 3]) -> Policy {
    let mut b = Builder::new();
    let mut ids = Vec::new();
    for (name, pr) in [
        ("slow", price(100, 100)),
        ("pricey", price(9_000, 9_000)),
        ("cheap", price(10, 10)),
    ] {
        let pid = b.provider(name, Tier::Paid, DataClass::Private);
        ids.push(b.model(pid, "m", Some(pr)));
    }
    let leaves = b.leaves(&ids);
    let children = weights.into_iter().zip(leaves).collect();
    let route = b.select(strategy, children, ChainRules::default());
    b.workload("w", DataClass::Public, route);
    b.build()
}

#[test]
fn select_cheapest_orders_by_expected_cost() {
    let p = three_way(Strategy::Cheapest, [1, 1, 1]);
    let d = run(&p, "w", &user("u"), &StateSnapshot::default());
    assert_eq!(labels(&p, &d), ["cheap/m", "slow/m", "pricey/m"]);
}

#[test]
fn select_fastest_uses_observed_p95_then_the_prior() {
    let p = three_way(Strategy::Fastest, [1, 1, 1]);
    let mut state = StateSnapshot::for_policy(&p, 0);
    state.target_mut(TargetId(0)).p95_ms = Some(2_500);
    state.target_mut(TargetId(1)).p95_ms = Some(300);
    let d = run(&p, "w", &user("u"), &state);
    // cheap/m has no figure: the 2000 ms prior puts it between the others.
    assert_eq!(labels(&p, &d), ["pricey/m", "cheap/m", "slow/m"]);
    let prior = d.explain().candidates.iter().find(|c| c.target == TargetId(2)).unwrap();
    assert_eq!(
        (prior.p95_ms, prior.p95_source),
        (DEFAULT_P95_PRIOR_MS, LatencySource::Prior)
    );
}

#[test]
fn select_first_keeps_the_written_order() {
    let p = three_way(Strategy::First, [1, 1, 1]);
    let d = run(&p, "w", &user("u"), &StateSnapshot::default());
    assert_eq!(labels(&p, &d), ["slow/m", "pricey/m", "cheap/m"]);
}

#[test]
fn select_weighted_draws_by_seed_then_orders_by_weight() {
    let p = three_way(Strategy::Weighted, [70, 0, 30]);
    let w = p.workload_id("w").unwrap();
    let mut firsts = [0u32; 3];
    for seed in 0..2_000 {
        let mut f = Facts::new(w);
        f.request_seed = seed;
        let d = decide(&p, &f, &StateSnapshot::default());
        let order: Vec<u32> = d.plan().attempts().iter().map(|a| a.target.0).collect();
        firsts[order[0] as usize] += 1;
        // The rest by descending weight: the weight-0 child always last.
        assert_eq!(*order.last().unwrap(), 1);
    }
    assert_eq!(firsts[1], 0, "a weight-0 child is never drawn");
    assert!((1_300..1_500).contains(&firsts[0]), "{firsts:?}");
}

#[test]
fn match_takes_the_first_arm_that_holds() {
    let mut b = Builder::new();
    let pr = b.provider("p", Tier::Paid, DataClass::Private);
    let big = b.model(pr, "big", Some(price(1, 1)));
    let q = b.provider("q", Tier::Paid, DataClass::Private);
    let coder = b.model(q, "coder", Some(price(1, 1)));
    let r = b.provider("r", Tier::Paid, DataClass::Private);
    let small = b.model(r, "small", Some(price(1, 1)));
    let [big_n, coder_n, small_n] = [b.leaf(big), b.leaf(coder), b.leaf(small)];
    let route = b.matcher(
        vec![
            (
                Condition::Compare {
                    fact: NumericFact::InputTokens,
                    op: CmpOp::Gt,
                    value: 8_000,
                },
                big_n,
            ),
            (
                Condition::Any(vec![
                    Condition::TaskIs(crate::Task::Code),
                    Condition::Metadata {
                        key: "team".into(),
                        op: CmpOp::Eq,
                        value: "dev".into(),
                    },
                ]),
                coder_n,
            ),
        ],
        Some(small_n),
    );
    b.workload("w", DataClass::Public, route);
    let p = b.build();
    let st = StateSnapshot::default();
    let mut f = user("u");
    assert_eq!(labels(&p, &run(&p, "w", &f, &st)), ["r/small"]);
    f.set("metadata.team", "dev").unwrap();
    let d = run(&p, "w", &f, &st);
    assert_eq!(labels(&p, &d), ["q/coder"]);
    assert_eq!(dropped(&p, &d, "match_arm_not_taken"), ["p/big", "r/small"]);
    f.input_tokens = 9_000;
    assert_eq!(labels(&p, &run(&p, "w", &f, &st)), ["p/big"]);
}

#[test]
fn escalate_attaches_its_check_to_every_attempt() {
    let mut b = Builder::new();
    let pr = b.provider("free", Tier::Free, DataClass::Private);
    let cheap = b.model(pr, "small", Some(Price::FREE));
    let q = b.provider("paid", Tier::Paid, DataClass::Private);
    let strong = b.model(q, "large", Some(price(3_000, 15_000)));
    let leaves = b.leaves(&[cheap, strong]);
    let route = b.escalate(leaves, QualityCheck::JsonValid, ChainRules::default());
    b.workload("w", DataClass::Public, route);
    let p = b.build();
    let d = run(&p, "w", &user("u"), &StateSnapshot::default());
    assert_eq!(labels(&p, &d), ["free/small", "paid/large"]);
    for a in d.plan().attempts() {
        assert_eq!(a.quality_check(&p), Some(&QualityCheck::JsonValid));
    }
    // Each answer is paid for, so the reservation adds the estimates up.
    let reserve = d.plan().reserve();
    assert_eq!(reserve.tokens, 2 * (1_200 + DEFAULT_OUTPUT_ESTIMATE));
}

#[test]
fn timeouts_come_from_the_chain_else_the_provider_capped_by_the_deadline() {
    let mut b = Builder::new();
    let pr = b.provider("p", Tier::Paid, DataClass::Private);
    b.provider_mut(pr).timeout = Some(Duration::from_secs(30));
    let m = b.model(pr, "m", Some(price(1, 1)));
    let q = b.provider("q", Tier::Paid, DataClass::Private);
    let n = b.model(q, "n", Some(price(1, 1)));
    let inner_leaves = b.leaves(&[m, n]);
    let inner = b.fallback(inner_leaves, rules_timeout(5));
    let m2 = b.leaf(m);
    let plain = b.fallback(vec![m2], ChainRules::default());
    let w1 = b.workload("chain", DataClass::Public, inner);
    let w2 = b.workload("provider", DataClass::Public, plain);
    b.workload_mut(w2).latency_budget = Some(Duration::from_secs(20));
    let _ = w1;
    let p = b.build();
    let st = StateSnapshot::default();
    let d = run(&p, "chain", &user("u"), &st);
    assert_eq!(d.plan().attempts()[0].timeout, Some(Duration::from_secs(5)));
    let d = run(&p, "provider", &user("u"), &st);
    assert_eq!(d.plan().attempts()[0].timeout, Some(Duration::from_secs(20)));
}

#[test]
fn advancing_between_chains_uses_the_chain_that_joins_them() {
    let mut b = Builder::new();
    let ids: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|n| {
            let pr = b.provider(n, Tier::Paid, DataClass::Private);
            b.model(pr, "m", Some(price(1, 1)))
        })
        .collect();
    let inner_leaves = b.leaves(&ids[..2]);
    let only_429 = ChainRules {
        triggers: Triggers::NONE.with(Trigger::RateLimited),
        ..ChainRules::default()
    };
    let only_timeout = ChainRules {
        triggers: Triggers::NONE.with(Trigger::Timeout),
        ..ChainRules::default()
    };
    let inner = b.fallback(inner_leaves, only_429);
    let c = b.leaf(ids[2]);
    let outer = b.fallback(vec![inner, c], only_timeout);
    b.workload("w", DataClass::Public, outer);
    let p = b.build();
    let d = run(&p, "w", &user("u"), &StateSnapshot::default());
    let on: Vec<Triggers> = d.plan().attempts().iter().map(|a| a.advance_on).collect();
    assert_eq!(on[0], only_429.triggers);
    assert_eq!(on[1], only_timeout.triggers);
}

#[test]
fn a_missing_split_key_falls_back_to_the_request_seed() {
    let p = seed();
    let w = p.workload_id("content_summary").unwrap();
    let mut arms = [0u32; 2];
    for seed in 0..1_000 {
        let mut f = Facts::new(w);
        f.request_seed = seed;
        let d = decide(&p, &f, &StateSnapshot::default());
        let Step::Split { key, arm, .. } = d.explain().steps[0] else {
            panic!("first step is the split")
        };
        assert_eq!(key, KeySource::MissingUsedSeed);
        arms[arm.unwrap() as usize] += 1;
    }
    assert!((720..880).contains(&arms[0]), "{arms:?}");
}

#[test]
fn an_unknown_workload_id_or_broken_route_refuses_without_panicking() {
    let p = seed();
    let d = decide(&p, &Facts::new(WorkloadId(99)), &StateSnapshot::default());
    assert_eq!(d.refusal(), Some(Refusal::NoEligibleTarget));

    let mut b = Builder::new();
    let pr = b.provider("p", Tier::Paid, DataClass::Private);
    let m = b.model(pr, "m", Some(price(1, 1)));
    let leaf = b.leaf(m);
    // A cycle: the chain contains itself.
    let chain = b.fallback(vec![leaf, NodeId(1)], ChainRules::default());
    b.workload("w", DataClass::Public, chain);
    let p = b.build();
    let d = run(&p, "w", &user("u"), &StateSnapshot::default());
    assert_eq!(labels(&p, &d), ["p/m"]);
    assert!(d.explain().dropped_for("broken_route").count() >= 1);
}

#[test]
fn decide_into_reuses_a_decision_and_matches_decide() {
    let p = seed();
    let mut decider = Decider::new(&p);
    let facts = user("alice");
    let f = facts.facts_for(&p, "content_summary").unwrap();
    let mut out = decider.decide(&f, &StateSnapshot::default());
    let g = facts.facts_for(&p, "audit_report").unwrap();
    decider.decide_into(&g, &StateSnapshot::default(), &mut out);
    assert_eq!(out, decide(&p, &g, &StateSnapshot::default()));
    decider.decide_into(&f, &StateSnapshot::default(), &mut out);
    assert_eq!(out, decide(&p, &f, &StateSnapshot::default()));
}

#[test]
fn features_require_matching_capabilities() {
    let f = Features::NONE.with(Feature::Images).with(Feature::Stream);
    let caps = f.required_capabilities();
    assert!(caps.has(crate::Capability::Vision) && caps.has(crate::Capability::Stream));
}

#[test]
fn embedding_calls_reach_embedding_models_only_and_chat_calls_never_do() {
    let mut p = seed();
    // The summary workload's first model becomes an embedding model.
    let first = run(&p, "content_summary", &user("alice"), &StateSnapshot::default());
    let embedder = first.plan().attempts()[0].target;
    p.targets[embedder.0 as usize]
        .capabilities
        .insert(crate::Capability::Embeddings);
    let label = p.target_label(embedder);

    let chat = run(&p, "content_summary", &user("alice"), &StateSnapshot::default());
    assert_eq!(dropped(&p, &chat, "embedding_model"), std::slice::from_ref(&label));
    assert!(!labels(&p, &chat).contains(&label));

    let mut facts = user("alice");
    facts.embedding = true;
    facts.input_tokens = 1_000;
    let embed = run(&p, "content_summary", &facts, &StateSnapshot::default());
    assert_eq!(
        labels(&p, &embed),
        std::slice::from_ref(&label),
        "only the embedding model is planned"
    );
    assert!(
        !dropped(&p, &embed, "capability").is_empty(),
        "chat models lack `embeddings`"
    );
    // No output tokens are estimated for an embedding call.
    assert_eq!(embed.plan().attempts()[0].estimate.tokens, 1_000);
}

#[test]
fn a_workload_s_jurisdictions_filter_providers_at_run_time() {
    let mut p = seed();
    for provider in &mut p.providers {
        let place = match provider.name.as_str() {
            "claude_cli" => "local",
            "zai" => "cn",
            _ => "us",
        };
        provider.jurisdiction = Some(place.into());
    }
    // Only local processing: of the seed's providers, the Claude CLI.
    let audit = p.workload_id("audit_report").unwrap();
    p.workloads[audit.0 as usize].jurisdictions = vec!["local".into()];
    let d = run(&p, "audit_report", &user("alice"), &StateSnapshot::default());
    assert_eq!(d.refusal(), Some(Refusal::NoEligibleTarget));
    assert_eq!(
        dropped(&p, &d, "jurisdiction"),
        [
            "anthropic/claude-opus-4.1",
            "openrouter/claude-opus-4.1",
            "xai/grok-4-fast"
        ]
    );
    // The summary workload allows `us` and `local`: the CLI and the US
    // providers stay, and the data-class filter still runs first.
    let summary = p.workload_id("content_summary").unwrap();
    p.workloads[summary.0 as usize].jurisdictions = vec!["us".into(), "local".into()];
    let d = run(&p, "content_summary", &user(&user_in_arm(1)), &StateSnapshot::default());
    assert_eq!(labels(&p, &d), ["gemini_free/gemini-2.5-flash"]);
    assert_eq!(dropped(&p, &d, "jurisdiction"), ["zai/glm-4.6"]);
    // A provider that names no jurisdiction fails closed.
    let cerebras = p.providers.iter().position(|x| x.name == "cerebras").unwrap();
    p.providers[cerebras].jurisdiction = None;
    let d = run(&p, "content_summary", &user(&user_in_arm(0)), &StateSnapshot::default());
    assert_eq!(dropped(&p, &d, "jurisdiction"), ["cerebras/llama-3.3-70b"]);
}
