//! The passes over the flat attempt list after the walk, and the refusal
//! when nothing is left: rules that hold for the plan as a whole, whatever
//! combinators produced it — a target never appears twice, two attempts in a
//! row do not go to one provider unless allowed, and attempts plus retries
//! stay within the workload's bound.

use crate::explain::{Explain, Reason, Verdict};
use crate::plan::{Attempt, Refusal};

/// Keeps the first attempt on each target; later ones become `duplicate`.
pub(crate) fn drop_duplicates(attempts: &mut Vec<Attempt>, ex: &mut Explain) {
    let mut kept = 0;
    for i in 0..attempts.len() {
        let a = attempts[i];
        if let Some(first) = attempts[..kept].iter().find(|k| k.target == a.target) {
            set_verdict(
                ex,
                a.candidate,
                Verdict::Dropped {
                    reason: Reason::Duplicate { first: first.node },
                },
            );
        } else {
            attempts[kept] = a;
            kept += 1;
        }
    }
    attempts.truncate(kept);
}

/// Two attempts in a row on one provider are pointless after a 429 or an
/// outage, so unless the earlier attempt's chain says `allow_repeat`, the
/// next attempt on another provider moves up and the repeats are deferred
/// (kept, later). With no other provider left, the repeat stays.
pub(crate) fn defer_same_provider(attempts: &mut [Attempt], ex: &mut Explain) {
    for i in 1..attempts.len() {
        let prev = attempts[i - 1];
        if attempts[i].provider != prev.provider || prev.allow_repeat {
            continue;
        }
        let Some(j) = (i + 1..attempts.len()).find(|&j| attempts[j].provider != prev.provider) else {
            return;
        };
        attempts[i..=j].rotate_right(1);
        for a in &attempts[i + 1..=j] {
            set_verdict(
                ex,
                a.candidate,
                Verdict::Kept {
                    position: 0,
                    deferred: true,
                },
            );
        }
    }
}

/// Cuts the plan so attempts plus retries stay within the bound; the last
/// kept attempt's retries shrink to fit.
pub(crate) fn apply_bound(attempts: &mut Vec<Attempt>, ex: &mut Explain, bound: u8) {
    let mut used: u32 = 0;
    let mut kept = attempts.len();
    for (i, a) in attempts.iter_mut().enumerate() {
        let left = u32::from(bound).saturating_sub(used);
        if left == 0 {
            kept = i;
            break;
        }
        let cap = u8::try_from(left - 1).unwrap_or(u8::MAX);
        a.retries = a.retries.min(cap);
        a.retry_on.cap(cap);
        used += 1 + u32::from(a.max_retries());
    }
    for a in &attempts[kept..] {
        set_verdict(
            ex,
            a.candidate,
            Verdict::Dropped {
                reason: Reason::AttemptBound { bound },
            },
        );
    }
    attempts.truncate(kept);
}

fn set_verdict(ex: &mut Explain, candidate: u32, verdict: Verdict) {
    if let Some(c) = ex.candidates.get_mut(candidate as usize) {
        c.verdict = verdict;
    }
}

/// Why an empty plan is empty: the furthest filter any candidate reached
/// names it, so "every fitting target is down" wins over "some target lacks
/// tools", and a data-class refusal means the class alone stopped every one.
pub(crate) fn refusal(ex: &Explain, halted: bool) -> Refusal {
    if halted {
        return Refusal::BudgetExhausted { halted: true };
    }
    let mut furthest = 0u8;
    let mut retry_at = u64::MAX;
    for c in &ex.candidates {
        let Verdict::Dropped { reason } = c.verdict else {
            continue;
        };
        let stage = match reason {
            Reason::SplitArmNotChosen { .. } | Reason::MatchArmNotTaken { .. } | Reason::BrokenRoute => 0,
            Reason::DataClass { .. } => 1,
            // Not a data-class refusal: the class may be fine, the place not.
            Reason::Jurisdiction
            | Reason::Capability { .. }
            | Reason::EmbeddingModel
            | Reason::MaxOutput { .. }
            | Reason::ContextWindow { .. }
            | Reason::OverCostCeiling { .. }
            | Reason::Unpriced
            | Reason::Duplicate { .. }
            | Reason::AttemptBound { .. } => 2,
            Reason::OverBudget { .. } => 3,
            // Down with no time set for its return: it adds no `retry_at`.
            Reason::Unavailable => 4,
            Reason::Ejected { until_ms } | Reason::CoolingDown { until_ms } => {
                retry_at = retry_at.min(until_ms);
                4
            }
        };
        furthest = furthest.max(stage);
    }
    match furthest {
        1 => Refusal::DataClass {
            required: ex.data_class,
        },
        3 => Refusal::BudgetExhausted { halted: false },
        4 => Refusal::Unhealthy { retry_at_ms: retry_at },
        _ => Refusal::NoEligibleTarget,
    }
}
