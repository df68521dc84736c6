//! Recent decisions, kept so a caller can ask why a call went where it went.
//!
//! Why: every response names its decision (`Routed::decision_id`, and the
//! gateway's `x-routec-decision` header); `/v1/routec/decisions/{id}` and
//! `Router::decision` turn that id into the engine's explanation plus what
//! happened to each attempt. Memory is bounded twice: at most `capacity`
//! records, each for at most `ttl`; the oldest go first.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use router_core::{Decision, Policy, PolicyHash, Report, render_text};
use serde::Serialize;

use crate::clock::Millis;
use crate::error::AttemptRecord;

/// Identifies one routing decision: 16 hex digits, unique per router
/// instance with overwhelming probability, not sequential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DecisionId(u64);

impl DecisionId {
    /// The id with this numeric value.
    pub const fn from_u64(n: u64) -> Self {
        DecisionId(n)
    }

    /// The numeric value.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for DecisionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // By hand: `{:016x}` goes through the integer padding machinery,
        // and every answer writes its id twice (header and response id).
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; 16];
        for (i, digit) in hex.iter_mut().enumerate() {
            *digit = DIGITS[((self.0 >> (60 - 4 * i)) & 0xf) as usize];
        }
        f.pad(std::str::from_utf8(&hex).unwrap_or_default())
    }
}

/// A string that is not 16 hex digits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a decision id is 16 hex digits")]
pub struct ParseDecisionIdError(());

impl FromStr for DecisionId {
    type Err = ParseDecisionIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ParseDecisionIdError(()));
        }
        u64::from_str_radix(s, 16)
            .map(DecisionId)
            .map_err(|_| ParseDecisionIdError(()))
    }
}

impl Serialize for DecisionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One decision and what came of it: the engine's explanation, notes from
/// the runtime (providers left out and why), and every attempt made.
#[derive(Clone, Debug)]
pub struct DecisionRecord {
    pub(crate) id: DecisionId,
    pub(crate) workload: String,
    pub(crate) policy_hash: PolicyHash,
    pub(crate) at: Millis,
    pub(crate) decision: Arc<Decision>,
    pub(crate) notes: Vec<String>,
    pub(crate) attempts: Vec<AttemptRecord>,
    pub(crate) outcome: String,
}

impl DecisionRecord {
    /// The decision's id.
    pub fn id(&self) -> DecisionId {
        self.id
    }

    /// The workload called.
    pub fn workload(&self) -> &str {
        &self.workload
    }

    /// The hash of the policy that decided.
    pub fn policy_hash(&self) -> PolicyHash {
        self.policy_hash
    }

    /// When the decision was made (the router's clock).
    pub fn at(&self) -> Millis {
        self.at
    }

    /// The engine's decision: the plan or refusal, and its explanation.
    pub fn decision(&self) -> &Decision {
        &self.decision
    }

    /// What the runtime adds, one line each (e.g. a provider left out
    /// because its key is not set).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Every attempt made, in order (retries included).
    pub fn attempts(&self) -> &[AttemptRecord] {
        &self.attempts
    }

    /// How the call ended: `answered by provider/model` or an error code.
    pub fn outcome(&self) -> &str {
        &self.outcome
    }

    /// The record as text: the engine's explanation, then the runtime's
    /// notes and attempts. `policy` must be the one that decided.
    pub fn render(&self, policy: &Policy) -> String {
        let mut out = format!("decision {}\n", self.id);
        out.push_str(&render_text(policy, &self.decision));
        for note in &self.notes {
            out.push_str("note: ");
            out.push_str(note);
            out.push('\n');
        }
        for (i, a) in self.attempts.iter().enumerate() {
            out.push_str(&format!("attempt {}: {a}\n", i + 1));
        }
        out.push_str("outcome: ");
        out.push_str(&self.outcome);
        out.push('\n');
        out
    }

    /// The record keyed by names, for JSON (`/v1/routec/decisions/{id}`).
    pub fn report(&self, policy: &Policy) -> DecisionReport {
        DecisionReport {
            id: self.id,
            workload: self.workload.clone(),
            at_ms: self.at.as_u64(),
            notes: self.notes.clone(),
            attempts: self.attempts.clone(),
            outcome: self.outcome.clone(),
            decision: Report::new(policy, &self.decision),
        }
    }
}

/// A [`DecisionRecord`] keyed by names; field names are stable.
#[derive(Clone, Debug, Serialize)]
pub struct DecisionReport {
    /// The decision's id.
    pub id: DecisionId,
    /// The workload called.
    pub workload: String,
    /// When, in ms since the epoch.
    pub at_ms: u64,
    /// Runtime notes.
    pub notes: Vec<String>,
    /// Attempts made.
    pub attempts: Vec<AttemptRecord>,
    /// How the call ended.
    pub outcome: String,
    /// The engine's explanation.
    pub decision: Report,
}

#[derive(Debug, Default)]
struct Slots {
    by_id: HashMap<DecisionId, Arc<DecisionRecord>>,
    order: VecDeque<(Millis, DecisionId)>,
}

/// A bounded, time-limited map of recent decision records.
#[derive(Debug)]
pub(crate) struct DecisionStore {
    slots: Mutex<Slots>,
    capacity: usize,
    ttl: Duration,
}

impl DecisionStore {
    pub(crate) fn new(capacity: usize, ttl: Duration) -> Self {
        DecisionStore {
            slots: Mutex::new(Slots::default()),
            capacity,
            ttl,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keeps `record`, dropping expired records and, beyond capacity, the oldest.
    pub(crate) fn insert(&self, record: DecisionRecord, now: Millis) {
        if self.capacity == 0 {
            return;
        }
        let mut s = self.lock();
        let id = record.id;
        if s.by_id.insert(id, Arc::new(record)).is_none() {
            s.order.push_back((now, id));
        }
        self.evict(&mut s, now);
    }

    fn evict(&self, s: &mut Slots, now: Millis) {
        while let Some(&(at, id)) = s.order.front() {
            let expired = at.after(self.ttl) <= now;
            if !expired && s.order.len() <= self.capacity {
                break;
            }
            s.order.pop_front();
            s.by_id.remove(&id);
        }
    }

    /// The record of `id`, if it is still kept.
    pub(crate) fn get(&self, id: DecisionId, now: Millis) -> Option<Arc<DecisionRecord>> {
        let mut s = self.lock();
        self.evict(&mut s, now);
        s.by_id.get(&id).cloned()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use router_core::{Facts, StateSnapshot, WorkloadId, decide};

    use super::*;

    fn record(id: u64) -> DecisionRecord {
        let policy = crate::testkit::policy(&[("w", router_core::Budget::default())]);
        let decision = decide(&policy, &Facts::new(WorkloadId(0)), &StateSnapshot::default());
        DecisionRecord {
            id: DecisionId(id),
            workload: "w".into(),
            policy_hash: policy.hash(),
            at: Millis(0),
            decision: Arc::new(decision),
            notes: vec!["provider `p1` is unavailable".into()],
            attempts: Vec::new(),
            outcome: "answered by p0/a".into(),
        }
    }

    #[test]
    fn ids_print_and_parse_as_sixteen_hex_digits() {
        let id = DecisionId(0xdead_beef);
        assert_eq!(id.to_string(), "00000000deadbeef");
        assert_eq!("00000000deadbeef".parse::<DecisionId>(), Ok(id));
        assert!("deadbeef".parse::<DecisionId>().is_err());
        assert!("+0000000deadbeef".parse::<DecisionId>().is_err());
    }

    #[test]
    fn the_store_is_bounded_by_count_and_age() {
        let store = DecisionStore::new(2, Duration::from_secs(60));
        for i in 0..3 {
            store.insert(record(i), Millis(1_000));
        }
        assert_eq!(store.len(), 2);
        assert!(
            store.get(DecisionId(0), Millis(1_000)).is_none(),
            "the oldest goes first"
        );
        assert!(store.get(DecisionId(2), Millis(1_000)).is_some());
        assert!(store.get(DecisionId(2), Millis(61_000)).is_none(), "expired");
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn a_record_renders_the_explanation_notes_and_outcome() {
        let policy = crate::testkit::policy(&[("w", router_core::Budget::default())]);
        let text = record(7).render(&policy);
        assert!(text.starts_with("decision 0000000000000007\nworkload `w`"), "{text}");
        assert!(text.contains("note: provider `p1` is unavailable"), "{text}");
        assert!(text.ends_with("outcome: answered by p0/a\n"), "{text}");
    }
}
