//! Property tests of the engine's stated invariants, over random policies,
//! facts and states, and the split's balance over a million keys.
//!
//! Policies come from a seed through a small deterministic generator rather
//! than nested proptest strategies: the invariants are about any policy, and
//! a failing seed reproduces exactly.

use std::time::Duration;

use proptest::prelude::{Just, ProptestConfig, any, prop_assert, prop_assert_eq, prop_oneof, proptest};

use super::*;
use crate::facts::{Features, NoMetadata};
use crate::route::{CmpOp, Feature, QualityCheck, Trigger, Triggers};
use crate::split::BUCKETS;
use crate::testkit::{Builder, price};
use crate::{Capability, Price, Tier, WorkloadId};

/// splitmix64: tiny, deterministic, good enough to shape test inputs.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn class(&mut self) -> DataClass {
        DataClass::ALL[self.below(3) as usize]
    }
    fn caps(&mut self, percent: u64) -> Capabilities {
        Capability::ALL.into_iter().filter(|_| self.chance(percent)).collect()
    }
    fn rules(&mut self) -> ChainRules {
        ChainRules {
            triggers: Trigger::ALL
                .into_iter()
                .filter(|_| self.chance(60))
                .collect::<Triggers>(),
            attempt_timeout: self.chance(50).then(|| Duration::from_secs(1 + self.below(60))),
            retries: self.below(3) as u8,
            retry_on: {
                let mut r = crate::RetryClasses::default();
                for t in Trigger::ALL {
                    if self.chance(15) {
                        r.set(t, self.below(3) as u8);
                    }
                }
                r
            },
            timeouts: crate::AttemptTimeouts {
                first_token: self.chance(30).then(|| Duration::from_secs(1 + self.below(30))),
                idle: self.chance(30).then(|| Duration::from_secs(1 + self.below(30))),
                ..crate::AttemptTimeouts::default()
            },
            allow_repeat: self.chance(25),
        }
    }
}

struct Case {
    policy: Policy,
    workload: WorkloadId,
    input_tokens: u64,
    max_output: Option<u64>,
    features: Features,
    data: Option<DataClass>,
    user: Option<String>,
    request_seed: u64,
    state: StateSnapshot,
}

fn route(g: &mut Gen, b: &mut Builder, targets: &[TargetId], depth: u32) -> NodeId {
    if depth == 0 || g.chance(30) {
        return b.leaf(targets[g.below(targets.len() as u64) as usize]);
    }
    let n = 1 + g.below(4) as usize;
    let children: Vec<NodeId> = (0..n).map(|_| route(g, b, targets, depth - 1)).collect();
    match g.below(7) {
        0 => {
            let r = g.rules();
            b.fallback(children, r)
        }
        1 => {
            let r = g.rules();
            b.free_first(children, r)
        }
        2 => {
            // Weights summing to 100, some of them 0.
            let mut left = 100u32;
            let mut arms = Vec::new();
            for (i, c) in children.iter().enumerate() {
                let w = if i + 1 == n {
                    left
                } else {
                    g.below(u64::from(left) + 1) as u32
                };
                left -= w;
                arms.push((w, *c));
            }
            b.split(crate::SplitKey::User, "prop", arms)
        }
        3 => {
            let strategy = [
                Strategy::Cheapest,
                Strategy::Fastest,
                Strategy::Weighted,
                Strategy::First,
            ][g.below(4) as usize];
            let weighted = children.into_iter().map(|c| (g.below(5) as u32, c)).collect();
            let r = g.rules();
            b.select(strategy, weighted, r)
        }
        4 => {
            let mut arms: Vec<(Condition, NodeId)> = children
                .iter()
                .map(|c| {
                    let cond = if g.chance(50) {
                        Condition::Compare {
                            fact: NumericFact::InputTokens,
                            op: CmpOp::Gt,
                            value: g.below(20_000),
                        }
                    } else {
                        Condition::Has(Feature::Tools)
                    };
                    (cond, *c)
                })
                .collect();
            let otherwise = arms.pop().map(|(_, c)| c);
            b.matcher(arms, otherwise)
        }
        _ => {
            let r = g.rules();
            b.escalate(children, QualityCheck::NonEmpty, r)
        }
    }
}

fn case(seed: u64) -> Case {
    let mut g = Gen(seed);
    let mut b = Builder::new();
    let mut targets = Vec::new();
    let n_providers = 1 + g.below(6);
    for p in 0..n_providers {
        let tier = [Tier::Free, Tier::Subscription, Tier::Paid][g.below(3) as usize];
        // Mostly permissive providers, so most cases produce a plan to check.
        let class = if g.chance(60) { DataClass::Private } else { g.class() };
        let pid = b.provider(&format!("p{p}"), tier, class);
        if g.chance(30) {
            b.provider_mut(pid).timeout = Some(Duration::from_secs(1 + g.below(90)));
        }
        for m in 0..1 + g.below(3) {
            let pr = match g.below(4) {
                0 => None,
                1 => Some(Price::FREE),
                _ => Some(price(g.below(20_000), g.below(80_000))),
            };
            let t = b.model(pid, &format!("m{m}"), pr);
            let caps = g.caps(90);
            let max_output = g.chance(50).then(|| 1_000 + g.below(64_000));
            let context = g.chance(50).then(|| 8_000 + g.below(200_000));
            let model = b.target_mut(t);
            model.capabilities = caps;
            model.max_output = max_output;
            model.context_window = context;
            targets.push(t);
        }
    }
    let root = route(&mut g, &mut b, &targets, 3);
    let class = if g.chance(50) { DataClass::Public } else { g.class() };
    let w = b.workload("w", class, root);
    let requires = g.caps(10);
    let max_tokens = g.chance(50).then(|| 500 + g.below(4_000));
    let max_cost = g.chance(20).then(|| Usd::from_nanos(g.below(50_000_000)));
    let max_attempts = g.chance(70).then(|| 1 + g.below(6) as u8);
    {
        let wl = b.workload_mut(w);
        wl.requires = requires;
        wl.max_tokens = max_tokens;
        wl.max_cost_per_call = max_cost;
        wl.max_attempts = max_attempts;
        wl.latency_budget = g.chance(30).then(|| Duration::from_secs(1 + g.below(120)));
    }
    let policy = b.build();
    let mut state = StateSnapshot::for_policy(&policy, g.below(100_000));
    for t in 0..policy.targets.len() {
        let st = state.target_mut(TargetId(t as u32));
        st.ejected_until_ms = g.chance(10).then(|| g.below(200_000));
        st.p95_ms = g.chance(50).then(|| g.below(5_000) as u32);
    }
    for p in 0..policy.providers.len() {
        state.provider_mut(crate::ProviderId(p as u32)).cooling_until_ms = g.chance(10).then(|| g.below(200_000));
    }
    let budget = state.workload_mut(w);
    budget.tokens_remaining = g.chance(10).then(|| g.below(40_000));
    budget.usd_remaining = g.chance(10).then(|| Usd::from_nanos(g.below(100_000_000)));
    budget.halted = g.chance(3);
    let mut features = Features::NONE;
    for f in [Feature::Tools, Feature::Images, Feature::JsonSchema, Feature::Stream] {
        features.set(f, g.chance(10));
    }
    Case {
        policy,
        workload: w,
        input_tokens: if g.chance(80) { g.below(4_000) } else { g.below(30_000) },
        max_output: g.chance(30).then(|| g.below(20_000)),
        features,
        data: g.chance(30).then(|| g.class()),
        user: g.chance(80).then(|| format!("user-{}", g.below(1_000))),
        request_seed: g.next(),
        state,
    }
}

impl Case {
    fn facts(&self) -> Facts<'_> {
        Facts {
            workload: self.workload,
            input_tokens: self.input_tokens,
            max_output_tokens: self.max_output,
            features: self.features,
            task: None,
            metadata: &NoMetadata,
            user: self.user.as_deref(),
            data: self.data,
            request_seed: self.request_seed,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn plans_never_go_below_the_data_class_or_lack_a_capability(seed in any::<u64>()) {
        let c = case(seed);
        let facts = c.facts();
        let d = decide(&c.policy, &facts, &c.state);
        let wl = c.policy.workload(c.workload);
        let class = facts.data.map_or(wl.data, |d| d.max(wl.data));
        let needs: Capabilities = wl.requires.iter().chain(facts.features.required_capabilities().iter()).collect();
        for a in d.plan().attempts() {
            prop_assert!(c.policy.provider(a.provider).max_data >= class);
            prop_assert!(c.policy.target(a.target).capabilities.covers(needs));
        }
    }

    #[test]
    fn the_same_inputs_give_the_same_decision(seed in any::<u64>(), other in any::<u64>()) {
        let c = case(seed);
        let d1 = decide(&c.policy, &c.facts(), &c.state);
        let d2 = decide(&c.policy, &c.facts(), &c.state);
        prop_assert_eq!(&d1, &d2);
        // A reused decision, dirty from another call, ends up the same.
        let mut decider = Decider::new(&c.policy);
        let mut facts = c.facts();
        facts.request_seed = other;
        facts.input_tokens = other % 50_000;
        let mut out = decider.decide(&facts, &c.state);
        decider.decide_into(&c.facts(), &c.state, &mut out);
        prop_assert_eq!(&out, &d1);
    }

    #[test]
    fn plans_respect_the_bound_and_stay_consistent(seed in any::<u64>()) {
        let c = case(seed);
        let d = decide(&c.policy, &c.facts(), &c.state);
        let bound = c.policy.max_attempts(c.workload);
        let plan = d.plan();
        prop_assert!(plan.len() <= usize::from(bound));
        prop_assert!(plan.tries() <= u32::from(bound));
        prop_assert_eq!(d.refusal().is_some(), plan.is_empty());
        let attempts = plan.attempts();
        for (i, a) in attempts.iter().enumerate() {
            // Never twice the same target.
            prop_assert!(attempts[..i].iter().all(|b| b.target != a.target));
            // Back-to-back on one provider only when allowed or unavoidable.
            if i > 0 && attempts[i - 1].provider == a.provider && !attempts[i - 1].allow_repeat {
                prop_assert!(attempts[i..].iter().all(|b| b.provider == a.provider));
            }
            // Each attempt is a kept candidate at its position.
            let cand = d.explain().candidates[a.candidate as usize];
            prop_assert_eq!(cand.target, a.target);
            let kept_at_i = matches!(cand.verdict, Verdict::Kept { position, .. } if usize::from(position) == i + 1);
            prop_assert!(kept_at_i);
        }
        let kept = d.explain().candidates.iter().filter(|c| matches!(c.verdict, Verdict::Kept { .. })).count();
        prop_assert_eq!(kept, attempts.len());
    }

    #[test]
    fn a_weight_zero_arm_is_never_chosen(
        weights in proptest::collection::vec(prop_oneof![Just(0u32), 1u32..100], 1..6),
        salt in "[a-z_/0-9]{0,12}",
        key in proptest::collection::vec(any::<u8>(), 0..24),
    ) {
        let arms: Vec<(u32, NodeId)> = weights.iter().enumerate().map(|(i, w)| (*w, NodeId(i as u32))).collect();
        match Split::new(&salt, &arms).pick(&key) {
            Some(pick) => prop_assert!(weights[pick.arm] > 0),
            None => prop_assert!(weights.iter().all(|w| *w == 0)),
        }
    }

    #[test]
    fn the_fast_cost_equals_the_price_cost(
        a in any::<u64>(), b in any::<u64>(), small_a in 0u64..10_000_000, small_b in 0u64..1_000_000,
        pin in prop_oneof![Just(0u64), 1u64..100_000_000_000, any::<u64>()],
        pout in prop_oneof![Just(0u64), 1u64..100_000_000_000, any::<u64>()],
    ) {
        let p = Price { input_per_mtok: Usd::from_nanos(pin), output_per_mtok: Usd::from_nanos(pout) };
        prop_assert_eq!(super::cost(&p, a, b), p.cost(a, b));
        prop_assert_eq!(super::cost(&p, small_a, small_b), p.cost(small_a, small_b));
    }

    #[test]
    fn buckets_are_always_in_range(salt in ".{0,16}", key in proptest::collection::vec(any::<u8>(), 0..64)) {
        prop_assert!(crate::split::split_bucket(&salt, &key) < BUCKETS);
    }
}

/// `user-{i}` into a stack buffer, so the loop measures hashing, not formatting.
fn user_key(i: u32, buf: &mut [u8; 16]) -> &[u8] {
    buf[..5].copy_from_slice(b"user-");
    let mut digits = [0u8; 10];
    let mut n = i;
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for j in 0..len {
        buf[5 + j] = digits[len - 1 - j];
    }
    &buf[..5 + len]
}

#[test]
fn a_million_users_land_within_half_a_percent_of_the_weights() {
    const KEYS: u32 = 1_000_000;
    let configs: &[&[u32]] = &[
        &[80, 20],
        &[50, 50],
        &[33, 33, 34],
        &[1, 99],
        &[10, 0, 90],
        &[25, 25, 25, 25],
    ];
    let mut buf = [0u8; 16];
    for (c, weights) in configs.iter().enumerate() {
        let arms: Vec<(u32, NodeId)> = weights.iter().map(|w| (*w, NodeId(0))).collect();
        // A different salt per configuration: balance must not depend on it.
        let salt = format!("content_summary/{c}");
        let split = Split::new(&salt, &arms);
        let mut counts = vec![0u32; arms.len()];
        for i in 0..KEYS {
            if let Some(pick) = split.pick(user_key(i, &mut buf)) {
                counts[pick.arm] += 1;
            }
        }
        for (arm, (w, _)) in arms.iter().enumerate() {
            let share = f64::from(counts[arm]) * 100.0 / f64::from(KEYS);
            assert!(
                (share - f64::from(*w)).abs() <= 0.5,
                "weights {weights:?}: arm {arm} got {share:.3} %, wanted {w} %"
            );
        }
    }
}
