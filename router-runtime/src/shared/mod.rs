//! Provider limits, Retry-After cool-downs and breaker ejections shared by
//! several router instances through one Redis.
//!
//! Why: each instance keeps its own [`LimitBook`] and [`HealthBook`], so
//! three gateways in front of a provider with `rpm 500` could send it
//! 1,500 requests a minute, and a 429 seen by one would not stop the
//! others. With a [`SharedState`], admitting an attempt is:
//!
//! 1. the local books, as without Redis: the concurrency permit, the local
//!    buckets, and a look at the health book. They stay the cheap refusal
//!    and the source of `explain` and snapshots;
//! 2. one Redis script that refuses while the target's provider or model
//!    cools down or the target is ejected (a peer's report), else takes one
//!    request from the shared `rpm`, the estimate from `tpm` and a lease
//!    from `concurrency`, all or nothing. A peer's report is written into
//!    the local health book ([`HealthBook::adopt`]), so later attempts are
//!    refused locally;
//! 3. the health book's admission proper (which may take the half-open
//!    probe slot), so a shared refusal never holds the probe.
//!
//! A cool-down or ejection this instance records is published with a
//! relative expiry (`PX`), in the background: peers see it one Redis round
//! trip after the answer arrived. Time in Redis is Redis's own (`TIME`,
//! `PX`); the router sends durations only, so a router on a manual clock
//! never meets the server's wall clock.
//!
//! Redis unreachable (an error or no answer within
//! [`SharedState::OP_TIMEOUT`]): limits fall back to this instance's share,
//! each limit divided by the number of instances (rounded down, so the
//! instances together never exceed it); cool-downs and ejections stay
//! local. One warning per outage, a gauge and an error counter; Redis is
//! tried again once a second. Budgets, in the budget store, fail closed as
//! before.

mod redis;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use router_core::{Attempt, Policy, TargetId};
use router_state::{HealthBook, HealthChange, LimitBook, LocalLimit, PeerReport};
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use self::redis::{Ask, Published, TargetKeys, Verdict};
pub use self::redis::{SharedState, SharedStateError};
use crate::clock::Millis;
use crate::error::NotSent;
use crate::limits::{Concurrency, Permit};
use crate::router::Inner;

/// A router's view of the shared state: the connection, every target's
/// keys, and the per-instance share of each limit for outages.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Arc<SharedState>,
    keys: Vec<Arc<TargetKeys>>,
    share: Mutex<LimitBook>,
    share_concurrency: Concurrency,
}

/// What an admitted attempt holds of its provider's shared `concurrency`.
#[derive(Debug)]
#[expect(dead_code, reason = "held for what dropping it does")]
pub(crate) enum Slot {
    /// A lease in Redis, renewed in the background and released when this
    /// is dropped.
    Lease(Lease),
    /// Redis was down: a permit of this instance's share.
    Share(OwnedSemaphorePermit),
}

/// A concurrency lease in Redis; dropping it ends it.
#[derive(Debug)]
pub(crate) struct Lease {
    _stop: oneshot::Sender<()>,
}

impl Shared {
    pub(crate) fn new(state: Arc<SharedState>, policy: &Policy, metrics: &crate::metrics::Metrics) -> Self {
        metrics.shared_state_up(state.is_up());
        let keys = policy
            .targets
            .iter()
            .map(|t| Arc::new(state.keys(&policy.provider(t.provider).name, &t.model)))
            .collect();
        let mut share = policy.clone();
        let n = u64::from(state.instances());
        for p in &mut share.providers {
            p.limits.rpm = p.limits.rpm.map(|l| l / n);
            p.limits.tpm = p.limits.tpm.map(|l| l / n);
            p.limits.concurrency = p.limits.concurrency.map(|l| l / n);
        }
        Shared {
            keys,
            share: Mutex::new(LimitBook::new(&share)),
            share_concurrency: Concurrency::new(&share),
            state,
        }
    }

    /// Admits `attempt` through the local books and the shared state; see
    /// the module comment for the order.
    pub(crate) async fn admit(&self, inner: &Inner, attempt: &Attempt) -> Result<Option<Permit>, NotSent> {
        let now = inner.clock.now();
        let Some(keys) = self.keys.get(attempt.target.0 as usize) else {
            return inner.admit(attempt, now);
        };
        let local = inner.take_limits(attempt, now)?;
        let tokens = attempt.estimate.tokens;
        let peeked = peek(&inner.books().health, attempt, now);
        if let Some(refused) = peeked {
            inner.books().limits.refund(attempt.provider, tokens, now);
            return Err(refused);
        }
        let limits = &inner.policy.provider(attempt.provider).limits;
        let lease = limits.concurrency.map(|_| self.state.lease_id());
        let ask = Ask {
            rpm: limits.rpm,
            tpm: limits.tpm,
            tokens,
            concurrency: limits.concurrency,
            lease: lease.as_deref(),
        };
        let verdict = if self.state.worth_asking() {
            self.state
                .observe(self.state.admit(keys, ask).await, &inner.metrics)
                .ok()
        } else {
            None
        };
        let slot = match verdict {
            Some(Verdict::Admitted) => lease
                .clone()
                .map(|id| Slot::Lease(Lease::start(Arc::clone(&self.state), Arc::clone(keys), id))),
            Some(refusal) => {
                let now = inner.clock.now();
                let mut books = inner.books();
                books.limits.refund(attempt.provider, tokens, now);
                return Err(fold(&mut books.health, attempt.target, refusal, limits, tokens, now));
            }
            None => match self.admit_share(attempt, now) {
                Ok(slot) => slot,
                Err(limit) => {
                    inner.books().limits.refund(attempt.provider, tokens, now);
                    return Err(NotSent::LocalLimit { limit });
                }
            },
        };
        let now = inner.clock.now();
        if let Err(refused) = inner.admit_health(attempt, now) {
            // The health book changed during the round trip: give back what
            // was taken (dropping `slot` ends a lease or a share permit).
            inner.books().limits.refund(attempt.provider, tokens, now);
            if verdict.is_some() {
                let (state, keys) = (Arc::clone(&self.state), Arc::clone(keys));
                let (rpm, tpm) = (limits.rpm, limits.tpm);
                tokio::spawn(async move {
                    let ask = Ask {
                        rpm,
                        tpm,
                        tokens,
                        concurrency: None,
                        lease: None,
                    };
                    let _ = state.refund(&keys, ask).await;
                });
            } else {
                self.share
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .refund(attempt.provider, tokens, now);
            }
            return Err(refused);
        }
        Ok(local.map(|local| Permit::with_shared(local, slot)))
    }

    /// This instance's share of the limits, while Redis cannot be asked.
    fn admit_share(&self, attempt: &Attempt, now: Millis) -> Result<Option<Slot>, LocalLimit> {
        let permit = self.share_concurrency.try_acquire(attempt.provider)?;
        self.share
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .admit(attempt.provider, attempt.estimate.tokens, now)?;
        Ok(permit.map(Slot::Share))
    }

    /// Publishes a cool-down or ejection just recorded in the local book,
    /// in the background (counted in the router's pending work, so
    /// [`crate::Router::settled`] waits for it).
    pub(crate) fn publish(&self, inner: &Inner, target: TargetId, change: HealthChange, now: Millis) {
        let (what, until) = match change {
            HealthChange::CoolingDown { until, .. } => (Published::ProviderCooling, until),
            HealthChange::ModelCoolingDown { until } => (Published::ModelCooling, until),
            HealthChange::Ejected { until } => (Published::Ejected, until),
            HealthChange::None | HealthChange::Recovered => return,
        };
        let ttl = until.since(now);
        let (Some(keys), false, Ok(rt)) = (
            self.keys.get(target.0 as usize),
            ttl.is_zero(),
            tokio::runtime::Handle::try_current(),
        ) else {
            return;
        };
        if !self.state.worth_asking() {
            return;
        }
        let (state, keys, metrics, pending) = (
            Arc::clone(&self.state),
            Arc::clone(keys),
            inner.metrics.clone(),
            Arc::clone(&inner.pending),
        );
        pending.start();
        rt.spawn(async move {
            let _ = state.observe(state.publish(&keys, what, ttl).await, &metrics);
            pending.finish();
        });
    }
}

impl Lease {
    /// Keeps lease `id` alive until dropped, then releases it. Renewed every
    /// third of its TTL; if this process dies, the lease lapses.
    fn start(state: Arc<SharedState>, keys: Arc<TargetKeys>, id: String) -> Lease {
        let (stop, mut stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let every = SharedState::LEASE_TTL / 3;
            loop {
                tokio::select! {
                    _ = &mut stopped => {
                        let _ = state.release(&keys, &id).await;
                        return;
                    }
                    () = tokio::time::sleep(every) => {
                        let _ = state.renew(&keys, &id).await;
                    }
                }
            }
        });
        Lease { _stop: stop }
    }
}

/// A refusal the local health book would give now, without taking the
/// probe slot.
fn peek(health: &HealthBook, attempt: &Attempt, now: Millis) -> Option<NotSent> {
    if let Some(until) = health
        .cooling_until(Some(attempt.provider), now)
        .or_else(|| health.model_cooling_until(attempt.target, now))
    {
        return Some(NotSent::CoolingDown { until });
    }
    health
        .ejected_until(attempt.target, now)
        .map(|until| NotSent::Ejected { until })
}

/// The shared refusal as the attempt's `NotSent`, and a peer's report
/// written into the local health book.
fn fold(
    health: &mut HealthBook,
    target: TargetId,
    verdict: Verdict,
    limits: &router_core::Limits,
    tokens: u64,
    now: Millis,
) -> NotSent {
    let report = |health: &mut HealthBook, report, d: Duration| {
        let until = now.after(d);
        health.adopt(target, report, until);
        until
    };
    let cap = |l: Option<u64>| l.unwrap_or(0);
    match verdict {
        Verdict::ProviderCooling(d) => NotSent::CoolingDown {
            until: report(health, PeerReport::ProviderCoolingDown, d),
        },
        Verdict::ModelCooling(d) => NotSent::CoolingDown {
            until: report(health, PeerReport::ModelCoolingDown, d),
        },
        Verdict::Ejected(d) => NotSent::Ejected {
            until: report(health, PeerReport::Ejected, d),
        },
        Verdict::Rpm(free_in) => NotSent::LocalLimit {
            limit: LocalLimit::Rpm {
                limit: cap(limits.rpm),
                free_in,
            },
        },
        Verdict::Tpm(free_in) => NotSent::LocalLimit {
            limit: LocalLimit::Tpm {
                limit: cap(limits.tpm),
                needed: tokens,
                free_in,
            },
        },
        Verdict::Concurrency | Verdict::Admitted => NotSent::LocalLimit {
            limit: LocalLimit::Concurrency {
                limit: cap(limits.concurrency),
            },
        },
    }
}

#[cfg(test)]
mod tests;
