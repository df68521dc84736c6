//! Which tenant each recent decision was made for, so
//! `/v1/routec/decisions/{id}` shows a tenant its own decisions only.
//!
//! Why here and not in the decision record: tenancy is the gateway's
//! concept (the router only sees a budget scope), and a decision id leaks
//! into logs and into headers that proxies keep, so knowing an id must not
//! be enough to read another tenant's workload, targets and timings. The
//! map is bounded like the routers' own decision stores: oldest first out,
//! sized to cover every generation still kept, so an owner is never
//! forgotten before its record is. A record whose owner is forgotten
//! answers 404 (fail closed).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use router_runtime::DecisionId;

/// Decision id → the tenant it was made for, bounded by count.
#[derive(Debug)]
pub(crate) struct DecisionOwners {
    slots: Mutex<Slots>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Slots {
    by_id: HashMap<DecisionId, Arc<str>>,
    order: VecDeque<DecisionId>,
}

impl DecisionOwners {
    /// Keeps at most `capacity` owners.
    pub(crate) fn new(capacity: usize) -> Self {
        DecisionOwners {
            slots: Mutex::new(Slots::default()),
            capacity,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes that `id` was made for `tenant`. The first owner stays: an
    /// answer replayed to the same tenant names the same decision.
    pub(crate) fn note(&self, id: DecisionId, tenant: &Arc<str>) {
        if self.capacity == 0 {
            return;
        }
        let mut s = self.lock();
        if s.by_id.contains_key(&id) {
            return;
        }
        s.by_id.insert(id, Arc::clone(tenant));
        s.order.push_back(id);
        while s.order.len() > self.capacity {
            if let Some(old) = s.order.pop_front() {
                s.by_id.remove(&old);
            }
        }
    }

    /// Whether `id` was made for `tenant` (false when unknown or forgotten).
    pub(crate) fn is_owned_by(&self, id: DecisionId, tenant: &str) -> bool {
        self.lock().by_id.get(&id).is_some_and(|t| &**t == tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_belongs_to_its_first_tenant_only() {
        let owners = DecisionOwners::new(2);
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        owners.note(DecisionId::from_u64(1), &a);
        owners.note(DecisionId::from_u64(1), &b);
        assert!(owners.is_owned_by(DecisionId::from_u64(1), "a"));
        assert!(!owners.is_owned_by(DecisionId::from_u64(1), "b"));
        assert!(!owners.is_owned_by(DecisionId::from_u64(9), "a"), "unknown");
    }

    #[test]
    fn the_oldest_owner_is_forgotten_first() {
        let owners = DecisionOwners::new(2);
        let a: Arc<str> = Arc::from("a");
        for i in 0..3 {
            owners.note(DecisionId::from_u64(i), &a);
        }
        assert!(!owners.is_owned_by(DecisionId::from_u64(0), "a"));
        assert!(owners.is_owned_by(DecisionId::from_u64(2), "a"));
        assert_eq!(owners.lock().by_id.len(), 2);
    }
}
