//! The runtime's side of a provider's `limits`: the `concurrency`
//! semaphore, and admitting an attempt through the limit book (in
//! `router-state`) and the health book before it is sent.

use std::sync::Arc;

use router_core::{Attempt, Policy, ProviderId};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::clock::Millis;
use crate::error::NotSent;
use crate::router::Inner;
use crate::shared::Slot;
use router_state::Admission;
use router_state::LocalLimit;

#[derive(Debug)]
pub(crate) struct Concurrency {
    providers: Vec<Option<(u64, Arc<Semaphore>)>>,
}

impl Concurrency {
    pub(crate) fn new(policy: &Policy) -> Self {
        Concurrency {
            providers: policy
                .providers
                .iter()
                .map(|p| {
                    p.limits.concurrency.map(|n| {
                        let permits = usize::try_from(n).unwrap_or(usize::MAX).min(Semaphore::MAX_PERMITS);
                        (n, Arc::new(Semaphore::new(permits)))
                    })
                })
                .collect(),
        }
    }

    /// A permit for one call to `provider`, without waiting: `Ok(None)`
    /// when the provider has no `concurrency` limit.
    pub(crate) fn try_acquire(&self, provider: ProviderId) -> Result<Option<OwnedSemaphorePermit>, LocalLimit> {
        match self.providers.get(provider.0 as usize) {
            Some(Some((limit, semaphore))) => Arc::clone(semaphore)
                .try_acquire_owned()
                .map(Some)
                .map_err(|_| LocalLimit::Concurrency { limit: *limit }),
            Some(None) | None => Ok(None),
        }
    }
}

/// A provider's `concurrency` permit for one call, held until its answer
/// is in (for a stream, until the stream ends): this instance's, and with
/// shared state its lease in Redis (or its share while Redis is down).
#[derive(Debug)]
pub(crate) struct Permit {
    _local: OwnedSemaphorePermit,
    _shared: Option<Slot>,
}

impl Permit {
    fn local(permit: OwnedSemaphorePermit) -> Self {
        Permit {
            _local: permit,
            _shared: None,
        }
    }

    pub(crate) fn with_shared(local: OwnedSemaphorePermit, shared: Option<Slot>) -> Self {
        Permit {
            _local: local,
            _shared: shared,
        }
    }
}

impl Inner {
    /// Whether the attempt may be dispatched now: its provider's `limits`
    /// (a concurrency permit, room in `rpm` and `tpm`), then the health
    /// book (a 429 or an ejection since the plan was made). What the limits
    /// granted is given back when the health book then says no, and the
    /// limits go first so a refusal never takes the half-open probe slot.
    /// With shared state, [`crate::shared::Shared::admit`] runs instead.
    pub(crate) fn admit(&self, attempt: &Attempt, now: Millis) -> Result<Option<Permit>, NotSent> {
        let permit = self
            .concurrency
            .try_acquire(attempt.provider)
            .map_err(|limit| NotSent::LocalLimit { limit })?;
        let tokens = attempt.estimate.tokens;
        let mut books = self.books();
        books
            .limits
            .admit(attempt.provider, tokens, now)
            .map_err(|limit| NotSent::LocalLimit { limit })?;
        let refused = match books.health.admit(attempt.target, now) {
            Admission::Allowed | Admission::Probe => return Ok(permit.map(Permit::local)),
            Admission::Ejected { until } => NotSent::Ejected { until },
            Admission::CoolingDown { until } => NotSent::CoolingDown { until },
        };
        books.limits.refund(attempt.provider, tokens, now);
        Err(refused)
    }

    /// The first half of [`Inner::admit`]: the concurrency permit and the
    /// local buckets, nothing taken on refusal.
    pub(crate) fn take_limits(&self, attempt: &Attempt, now: Millis) -> Result<Option<OwnedSemaphorePermit>, NotSent> {
        let permit = self
            .concurrency
            .try_acquire(attempt.provider)
            .map_err(|limit| NotSent::LocalLimit { limit })?;
        self.books()
            .limits
            .admit(attempt.provider, attempt.estimate.tokens, now)
            .map_err(|limit| NotSent::LocalLimit { limit })?;
        Ok(permit)
    }

    /// The second half: the health book's admission, which may take the
    /// half-open probe slot. The caller gives back what the first half took
    /// when this refuses.
    pub(crate) fn admit_health(&self, attempt: &Attempt, now: Millis) -> Result<(), NotSent> {
        match self.books().health.admit(attempt.target, now) {
            Admission::Allowed | Admission::Probe => Ok(()),
            Admission::Ejected { until } => Err(NotSent::Ejected { until }),
            Admission::CoolingDown { until } => Err(NotSent::CoolingDown { until }),
        }
    }
}

#[cfg(test)]
mod tests {
    use router_core::{Budget, Limits, ProviderId};
    use router_state::LocalLimit;

    use super::*;

    const P0: ProviderId = ProviderId(0);
    const P1: ProviderId = ProviderId(1);

    fn limited(limits: Limits) -> Policy {
        let mut policy = crate::testkit::policy(&[("w", Budget::default())]);
        policy.providers[0].limits = limits;
        policy
    }

    #[test]
    fn concurrency_permits_are_held_until_dropped() {
        let c = Concurrency::new(&limited(Limits {
            concurrency: Some(1),
            ..Limits::default()
        }));
        let first = c.try_acquire(P0).unwrap();
        assert!(first.is_some());
        assert_eq!(c.try_acquire(P0).unwrap_err(), LocalLimit::Concurrency { limit: 1 });
        assert!(c.try_acquire(P1).unwrap().is_none(), "no limit, no permit");
        drop(first);
        assert!(c.try_acquire(P0).unwrap().is_some());
        assert_eq!(LocalLimit::Concurrency { limit: 1 }.clause(), "concurrency 1");
    }
}
