//! `match` arms that can never be taken (`R0206`).
//!
//! Conditions speak about a handful of request facts, so the check is exact:
//! it collects every constant the arms mention, builds the few requests that
//! tell them apart (for `input_tokens > 8000`: 7999, 8000 and 8001; for a
//! metadata key: absent, each value compared, and some other value), and
//! runs the match on each. An arm no request reaches is unreachable. When the
//! combinations would be too many, it falls back to spotting repeated
//! conditions, arms after `else` and conditions that are never true.

use router_core::{CmpOp, Condition, Feature, NumericFact, Task};

/// Why an arm is never taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cause {
    /// Its condition is never true.
    Never,
    /// This earlier arm (index) takes every call it would.
    Arm(usize),
    /// Several earlier arms together take every call it would.
    Arms,
}

/// More work than this (distinct requests × condition size) and the check
/// falls back to the simple tests, so no policy makes `check` slow.
const MAX_WORK: usize = 2_000_000;

/// Number of nodes in a condition.
fn size(c: &Condition) -> usize {
    match c {
        Condition::Not(inner) => 1 + size(inner),
        Condition::All(parts) | Condition::Any(parts) => 1 + parts.iter().map(size).sum::<usize>(),
        _ => 1,
    }
}

/// One request, as far as the conditions can tell.
#[derive(Clone, Debug)]
struct Point {
    input_tokens: u64,
    max_output: u64,
    features: Vec<(Feature, bool)>,
    /// Per metadata key: `None` absent, `Some(i)` the i-th value compared
    /// (an index one past the values means "some other value").
    metadata: Vec<(String, Option<usize>)>,
    task: Option<Task>,
}

#[derive(Default)]
struct Domain {
    input_tokens: Vec<u64>,
    max_output: Vec<u64>,
    features: Vec<Feature>,
    metadata: Vec<(String, Vec<String>)>,
    tasks: Vec<Task>,
}

fn collect(c: &Condition, d: &mut Domain) {
    match c {
        Condition::Compare { fact, value, .. } => {
            let list = match fact {
                NumericFact::InputTokens => &mut d.input_tokens,
                NumericFact::MaxOutputTokens => &mut d.max_output,
            };
            list.extend([value.saturating_sub(1), *value, value.saturating_add(1)]);
        }
        Condition::Has(f) => {
            if !d.features.contains(f) {
                d.features.push(*f);
            }
        }
        Condition::HasMetadata(k) => {
            if !d.metadata.iter().any(|(key, _)| key == k) {
                d.metadata.push((k.clone(), Vec::new()));
            }
        }
        Condition::Metadata { key, value, .. } => match d.metadata.iter_mut().find(|(k, _)| k == key) {
            Some((_, values)) => {
                if !values.contains(value) {
                    values.push(value.clone());
                }
            }
            None => d.metadata.push((key.clone(), vec![value.clone()])),
        },
        Condition::TaskIs(t) => {
            if !d.tasks.contains(t) {
                d.tasks.push(*t);
            }
        }
        Condition::Not(inner) => collect(inner, d),
        Condition::All(parts) | Condition::Any(parts) => parts.iter().for_each(|p| collect(p, d)),
    }
}

fn holds(c: &Condition, p: &Point, d: &Domain) -> bool {
    match c {
        Condition::Compare { fact, op, value } => {
            let v = match fact {
                NumericFact::InputTokens => p.input_tokens,
                NumericFact::MaxOutputTokens => p.max_output,
            };
            op.holds(v, *value)
        }
        Condition::Has(f) => p.features.iter().any(|(g, on)| g == f && *on),
        Condition::HasMetadata(k) => p.metadata.iter().any(|(key, v)| key == k && v.is_some()),
        Condition::Metadata { key, op, value } => {
            let actual = p.metadata.iter().find(|(k, _)| k == key).and_then(|(_, v)| *v);
            let values = d.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v);
            let equal = match (actual, values) {
                (Some(i), Some(values)) => values.get(i) == Some(value),
                _ => false,
            };
            // An absent key equals nothing and differs from everything.
            match op {
                CmpOp::Ne => !equal,
                _ => equal,
            }
        }
        Condition::TaskIs(t) => p.task == Some(*t),
        Condition::Not(inner) => !holds(inner, p, d),
        Condition::All(parts) => parts.iter().all(|x| holds(x, p, d)),
        Condition::Any(parts) => parts.iter().any(|x| holds(x, p, d)),
    }
}

/// The arms (by index) that can never be taken, and why. `None` is `else`;
/// arms after the first `else` are never taken. An `else` itself is never
/// reported: it is required even when the arms cover every request.
pub(crate) fn unreachable(arms: &[Option<&Condition>]) -> Vec<(usize, Cause)> {
    let first_else = arms.iter().position(Option::is_none);
    let live = first_else.map_or(arms.len(), |e| e);
    let mut out = Vec::new();
    let conds: Vec<&Condition> = arms[..live].iter().filter_map(|c| *c).collect();

    let mut d = Domain::default();
    for c in &conds {
        collect(c, &mut d);
    }
    for list in [&mut d.input_tokens, &mut d.max_output] {
        list.push(0);
        list.sort_unstable();
        list.dedup();
    }
    let sizes = [
        d.input_tokens.len(),
        d.max_output.len(),
        1usize << d.features.len().min(16),
        d.metadata.iter().map(|(_, v)| v.len() + 2).product::<usize>(),
        d.tasks.len() + 1,
    ];
    let total = sizes.iter().try_fold(1usize, |acc, s| acc.checked_mul(*s));
    let cost: usize = conds.iter().map(|c| size(c)).sum();
    match total {
        Some(total) if total.saturating_mul(cost) <= MAX_WORK => exhaustive(&conds, &d, total, &mut out),
        _ => simple(&conds, &mut out),
    }
    if let Some(e) = first_else {
        for i in e + 1..arms.len() {
            out.push((i, Cause::Arm(e)));
        }
    }
    out
}

fn exhaustive(conds: &[&Condition], d: &Domain, total: usize, out: &mut Vec<(usize, Cause)>) {
    let mut taken = vec![false; conds.len()];
    let mut ever_true = vec![false; conds.len()];
    // For each arm: the earlier arms that took its requests (when they did).
    let mut shadowed_by: Vec<Vec<usize>> = vec![Vec::new(); conds.len()];
    let meta_sizes: Vec<usize> = d.metadata.iter().map(|(_, v)| v.len() + 2).collect();
    for index in 0..total {
        let mut rest = index;
        let mut take = |n: usize| {
            let v = rest % n.max(1);
            rest /= n.max(1);
            v
        };
        let input_tokens = d.input_tokens[take(d.input_tokens.len())];
        let max_output = d.max_output[take(d.max_output.len())];
        let bits = take(1 << d.features.len().min(16));
        let features = d
            .features
            .iter()
            .enumerate()
            .map(|(i, f)| (*f, bits & (1 << i) != 0))
            .collect();
        let metadata = d
            .metadata
            .iter()
            .zip(&meta_sizes)
            .map(|((k, _), n)| {
                let v = take(*n);
                (k.clone(), v.checked_sub(1))
            })
            .collect();
        let t = take(d.tasks.len() + 1);
        let task = d.tasks.get(t).copied();
        let p = Point {
            input_tokens,
            max_output,
            features,
            metadata,
            task,
        };
        let mut first: Option<usize> = None;
        for (i, c) in conds.iter().enumerate() {
            if holds(c, &p, d) {
                ever_true[i] = true;
                match first {
                    None => {
                        first = Some(i);
                        taken[i] = true;
                    }
                    Some(f) => {
                        if !shadowed_by[i].contains(&f) {
                            shadowed_by[i].push(f);
                        }
                    }
                }
            }
        }
    }
    for i in 0..conds.len() {
        if taken[i] {
            continue;
        }
        let cause = if !ever_true[i] {
            Cause::Never
        } else if let [only] = shadowed_by[i][..] {
            Cause::Arm(only)
        } else {
            Cause::Arms
        };
        out.push((i, cause));
    }
}

fn always(c: &Condition) -> bool {
    match c {
        Condition::All(parts) => parts.iter().all(always),
        Condition::Any(parts) => parts.iter().any(always),
        Condition::Not(inner) => never(inner),
        _ => false,
    }
}

fn never(c: &Condition) -> bool {
    match c {
        Condition::All(parts) => parts.iter().any(never),
        Condition::Any(parts) => parts.iter().all(never),
        Condition::Not(inner) => always(inner),
        _ => false,
    }
}

fn simple(conds: &[&Condition], out: &mut Vec<(usize, Cause)>) {
    let mut catch_all: Option<usize> = None;
    for (i, c) in conds.iter().enumerate() {
        if let Some(j) = catch_all {
            out.push((i, Cause::Arm(j)));
        } else if never(c) {
            out.push((i, Cause::Never));
        } else if let Some(j) = conds[..i].iter().position(|e| e == c) {
            out.push((i, Cause::Arm(j)));
        } else if always(c) {
            catch_all = Some(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(op: CmpOp, value: u64) -> Condition {
        Condition::Compare {
            fact: NumericFact::InputTokens,
            op,
            value,
        }
    }

    #[test]
    fn a_narrower_threshold_after_a_wider_one_is_unreachable() {
        let wide = tokens(CmpOp::Gt, 8000);
        let narrow = tokens(CmpOp::Gt, 10_000);
        assert_eq!(
            unreachable(&[Some(&wide), Some(&narrow), None]),
            vec![(1, Cause::Arm(0))]
        );
        assert!(unreachable(&[Some(&narrow), Some(&wide), None]).is_empty());
    }

    #[test]
    fn arms_covered_together_and_never_true_conditions() {
        let tools = Condition::Has(Feature::Tools);
        let no_tools = Condition::Not(Box::new(tools.clone()));
        let images = Condition::Has(Feature::Images);
        assert_eq!(
            unreachable(&[Some(&tools), Some(&no_tools), Some(&images), None]),
            vec![(2, Cause::Arms)]
        );
        let contradiction = Condition::All(vec![tools.clone(), no_tools.clone()]);
        assert_eq!(unreachable(&[Some(&contradiction), None]), vec![(0, Cause::Never)]);
    }

    #[test]
    fn metadata_values_and_absence_are_told_apart() {
        let growth = Condition::Metadata {
            key: "team".into(),
            op: CmpOp::Eq,
            value: "growth".into(),
        };
        let has_team = Condition::HasMetadata("team".into());
        assert!(unreachable(&[Some(&growth), Some(&has_team), None]).is_empty());
        assert_eq!(
            unreachable(&[Some(&has_team), Some(&growth), None]),
            vec![(1, Cause::Arm(0))]
        );
    }

    #[test]
    fn arms_after_else_are_unreachable() {
        let tools = Condition::Has(Feature::Tools);
        assert_eq!(unreachable(&[None, Some(&tools)]), vec![(1, Cause::Arm(0))]);
    }
}
