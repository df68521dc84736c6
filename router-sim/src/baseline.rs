//! The baseline a simulation's savings are measured against: every served
//! request priced on one frontier model.

use router_core::{Policy, Price, TargetId};
use thiserror::Error;

/// The chosen baseline.
#[derive(Clone, Debug)]
pub(crate) struct Baseline {
    /// `None` when the policy prices no target (the baseline then costs nothing).
    pub target: Option<TargetId>,
    pub price: Price,
    pub chosen_by_default: bool,
}

/// The baseline target is unusable.
#[derive(Debug, Error)]
#[error("{message}")]
pub struct BaselineError {
    message: String,
}

/// The baseline the caller named, else the most expensive priced target by
/// output price, then input price, then the order written.
pub(crate) fn choose_baseline(policy: &Policy, named: Option<&str>) -> Result<Baseline, BaselineError> {
    if let Some(label) = named {
        let id = label
            .split_once('/')
            .and_then(|(p, m)| policy.target_named(p, m))
            .ok_or_else(|| BaselineError {
                message: format!("baseline `{label}` is not a `provider/model` target of the policy"),
            })?;
        let price = policy.target(id).price.ok_or_else(|| BaselineError {
            message: format!("baseline `{label}` has no price in the policy"),
        })?;
        return Ok(Baseline {
            target: Some(id),
            price,
            chosen_by_default: false,
        });
    }
    let mut best: Option<(TargetId, Price)> = None;
    for (i, t) in policy.targets.iter().enumerate() {
        let Some(price) = t.price else { continue };
        let key = (price.output_per_mtok, price.input_per_mtok);
        if best.is_none_or(|(_, b)| key > (b.output_per_mtok, b.input_per_mtok)) {
            best = Some((TargetId(i as u32), price));
        }
    }
    Ok(Baseline {
        target: best.map(|(t, _)| t),
        price: best.map_or(Price::FREE, |(_, p)| p),
        chosen_by_default: true,
    })
}
