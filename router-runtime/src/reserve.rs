//! Budget around each attempt: what the engine is told is left, and the
//! reservations an attempt holds until it is committed or released.
//!
//! Why apart from the attempt loop: the budget is the one piece that fails
//! closed. A store that cannot be read refuses the call before the engine
//! decides; an attempt reserves its own estimate on the workload's budget
//! and the call's scope budget, all or nothing; an answer commits its
//! actual usage at the target's price; a failure releases.

use providers::Usage;
use router_core::{Policy, ProviderId, StateSnapshot, TargetId, Usd, WorkloadId, WorkloadState};

use crate::budget::Reservation;
use crate::budget::error::{ReserveError, StatusError};
use crate::clock::Millis;
use crate::error::{BudgetError, RouteError};
use crate::metrics::Direction;
use crate::router::Inner;
use router_state::Spend;

/// The reservations one attempt holds: the workload's, and the scope's.
#[derive(Debug)]
pub(crate) struct Held {
    workload: Reservation,
    scope: Option<Reservation>,
}

impl Held {
    /// Commits `spend` to both budgets and reports it in metrics.
    pub(crate) async fn commit(self, inner: &Inner, workload: &str, spend: Spend, usage: Usage) {
        for r in std::iter::once(self.workload).chain(self.scope) {
            if let Err(e) = r.commit(spend).await {
                tracing::warn!(error = %e, "could not commit spend; the reservation stays held until it expires");
                inner.metrics.error("budget_commit_failed");
            }
        }
        inner.metrics.tokens(workload, Direction::Input, usage.input_tokens);
        inner.metrics.tokens(workload, Direction::Output, usage.output_tokens);
        inner.metrics.cost(workload, spend.usd);
    }

    /// Frees both reservations (the attempt was not billed).
    pub(crate) async fn release(self) {
        for r in std::iter::once(self.workload).chain(self.scope) {
            if let Err(e) = r.release().await {
                tracing::warn!(error = %e, "could not release a reservation; it expires by its ttl");
            }
        }
    }
}

/// What an attempt's usage costs at `target`'s price (zero when unpriced:
/// free and subscription tiers, or a paid model the policy gives no price).
pub(crate) fn spend_of(policy: &Policy, target: TargetId, usage: Usage) -> Spend {
    let usd = policy
        .target(target)
        .price
        .map_or(Usd::ZERO, |p| p.cost(usage.input_tokens, usage.output_tokens));
    Spend {
        tokens: usage.input_tokens.saturating_add(usage.output_tokens),
        usd,
    }
}

impl Inner {
    /// Health, latency, unavailable providers and budget remaining, as the
    /// engine reads them. Budgeted workloads ask the store (failing closed).
    pub(crate) async fn snapshot(
        &self,
        wid: WorkloadId,
        scope: Option<WorkloadId>,
        now: Millis,
    ) -> Result<StateSnapshot, RouteError> {
        let policy = &*self.policy;
        let mut snap = StateSnapshot::for_policy(policy, now.as_u64());
        {
            let mut books = self.books();
            books.health.fill_snapshot(&mut snap, now);
            books.latency.refresh(now);
            books.latency.fill_snapshot(&mut snap, now);
        }
        if self.registry.any_unavailable() {
            for i in 0..policy.providers.len() {
                let id = ProviderId(i as u32);
                if self.registry.unavailable(id).is_some() {
                    // Out of every plan; the record's notes say why.
                    snap.provider_mut(id).unavailable = true;
                }
            }
        }
        let mut state = WorkloadState::default();
        for id in std::iter::once(wid).chain(scope) {
            if !self.ledger.is_budgeted(id) {
                continue;
            }
            let status = self.ledger.workload_status(id).await.map_err(|e| {
                let source = match e {
                    StatusError::StoreUnavailable(e) => ReserveError::StoreUnavailable(e),
                    StatusError::UnknownWorkload(e) => ReserveError::UnknownWorkload(e),
                };
                RouteError::Budget(Box::new(BudgetError::new(source, None, now)))
            })?;
            state = tighter(state, status.to_state());
        }
        *snap.workload_mut(wid) = state;
        Ok(snap)
    }

    /// Reserves `estimate` on the scope's budget, then the workload's.
    pub(crate) async fn reserve(
        &self,
        wid: WorkloadId,
        scope: Option<WorkloadId>,
        estimate: Spend,
    ) -> Result<Held, ReserveError> {
        let scope = match scope {
            Some(s) => Some(self.ledger.reserve(s, estimate).await?),
            None => None,
        };
        match self.ledger.reserve(wid, estimate).await {
            Ok(workload) => Ok(Held { workload, scope }),
            Err(e) => {
                if let Some(s) = scope
                    && let Err(release) = s.release().await
                {
                    tracing::warn!(error = %release, "could not release a scope reservation; it expires by its ttl");
                }
                Err(e)
            }
        }
    }
}

/// The tighter of two budget states (a workload's and its call's scope's).
fn tighter(a: WorkloadState, b: WorkloadState) -> WorkloadState {
    fn min<T: Ord>(x: Option<T>, y: Option<T>) -> Option<T> {
        match (x, y) {
            (Some(x), Some(y)) => Some(x.min(y)),
            (x, y) => x.or(y),
        }
    }
    WorkloadState {
        tokens_remaining: min(a.tokens_remaining, b.tokens_remaining),
        usd_remaining: min(a.usd_remaining, b.usd_remaining),
        halted: a.halted || b.halted,
    }
}
