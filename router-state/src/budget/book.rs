//! The budget rules as a synchronous state machine: the in-memory store is
//! this behind a mutex, the SQLite store runs [`decide_reserve`] and
//! [`apply_commit`] inside one transaction, the Redis script mirrors them,
//! and `routec simulate` uses [`BudgetBook`] directly on a virtual clock.
//!
//! The rules, per line (one limit of one workload in one period):
//! - an *unlocked* line is not enforced (spend is still counted);
//! - a *halted* line refuses every reservation;
//! - an amount bigger than the cap is refused as too large (no halt);
//! - committed ≥ cap, or committed + amount > cap with nothing in flight,
//!   halts the line (the call could not fit even if it were alone);
//! - committed + reserved + amount > cap with something in flight is busy
//!   (transient: in-flight calls may release);
//! - a commit whose committed spend reaches the cap halts the line, and one
//!   that reaches the alert threshold fires the alert once per period.

use std::collections::{BTreeSet, HashMap};

use router_core::Budget;

use crate::budget::lines::{
    CommitOutcome, CommitRequest, LineAmount, LineKey, LineState, Refusal, RefusalReason, ReservationId,
    ReserveOutcome, ReserveRequest, budget_lines,
};
use crate::budget::lines::{Spend, WorkloadStatus};
use crate::budget::period::LimitKind;
use crate::clock::Millis;

/// What a reserve decided for each line: refuse (and which lines to mark
/// halted), or grant.
#[derive(Debug, PartialEq, Eq)]
pub struct ReserveDecision {
    /// The refusal to report, if any line had no room.
    pub refusal: Option<Refusal>,
    /// Indexes of lines this request halts (set even when refused).
    pub newly_halted: Vec<usize>,
}

/// Decides a reserve against the current `states` (same order as
/// `req.lines`). Pure, so every store applies the same rules.
pub fn decide_reserve(req: &ReserveRequest, states: &[LineState]) -> ReserveDecision {
    let mut worst: Option<(u8, Refusal)> = None;
    let mut newly_halted = Vec::new();
    for (i, (line, st)) in req.lines.iter().zip(states).enumerate() {
        if st.unlocked {
            continue;
        }
        let refuse = |reason: RefusalReason, newly: bool| Refusal {
            key: line.key.clone(),
            reason,
            newly_halted: newly,
            cap: line.cap,
            committed: st.committed,
            reserved: st.reserved,
            amount: line.amount,
        };
        let total = u128::from(st.committed) + u128::from(st.reserved) + u128::from(line.amount);
        let found = if st.halted {
            Some(refuse(RefusalReason::Halted, false))
        } else if line.amount > line.cap {
            Some(refuse(RefusalReason::TooLarge, false))
        } else if st.committed >= line.cap
            || (st.reserved == 0 && u128::from(st.committed) + u128::from(line.amount) > u128::from(line.cap))
        {
            newly_halted.push(i);
            Some(refuse(RefusalReason::Halted, true))
        } else if total > u128::from(line.cap) {
            Some(refuse(RefusalReason::Busy, false))
        } else {
            None
        };
        if let Some(r) = found {
            let rank = match r.reason {
                RefusalReason::Halted => 3,
                RefusalReason::TooLarge => 2,
                RefusalReason::Busy => 1,
            };
            if worst.as_ref().is_none_or(|(w, _)| rank > *w) {
                worst = Some((rank, r));
            }
        }
    }
    ReserveDecision {
        refusal: worst.map(|(_, r)| r),
        newly_halted,
    }
}

/// Adds a commit's actual amount to a line's state; returns (alert fired,
/// line halted) for this commit.
pub fn apply_commit(line: &LineAmount, st: &mut LineState) -> (bool, bool) {
    st.committed = st.committed.saturating_add(line.amount);
    let halted = !st.unlocked && !st.halted && st.committed >= line.cap;
    if halted {
        st.halted = true;
    }
    let alert = match line.alert_at {
        Some(at) if !st.alerted && st.committed >= at => {
            st.alerted = true;
            true
        }
        Some(_) | None => false,
    };
    (alert, halted)
}

#[derive(Debug)]
struct Held {
    workload: String,
    expires_at: Millis,
    lines: Vec<(LineKey, u64)>,
}

/// Budget lines and reservations in memory: the synchronous core of the
/// in-memory store, usable on its own with a virtual clock.
#[derive(Debug, Default)]
pub struct BudgetBook {
    lines: HashMap<(String, LineKey), LineState>,
    held: HashMap<ReservationId, Held>,
    by_expiry: BTreeSet<(Millis, ReservationId)>,
    next_id: u64,
}

impl BudgetBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Releases expired reservations, then reserves every line of `req` or
    /// none. See the module docs for the rules.
    pub fn reserve(&mut self, req: &ReserveRequest) -> ReserveOutcome {
        self.expire(req.now);
        let states: Vec<LineState> = req
            .lines
            .iter()
            .map(|l| self.line(&req.workload, &l.key).cloned().unwrap_or_default())
            .collect();
        let decision = decide_reserve(req, &states);
        for &i in &decision.newly_halted {
            self.line_mut(&req.workload, &req.lines[i].key).halted = true;
        }
        if let Some(refusal) = decision.refusal {
            return ReserveOutcome::Refused(refusal);
        }
        for l in &req.lines {
            let st = self.line_mut(&req.workload, &l.key);
            st.reserved = st.reserved.saturating_add(l.amount);
        }
        self.next_id += 1;
        let id = ReservationId(self.next_id);
        self.held.insert(
            id,
            Held {
                workload: req.workload.clone(),
                expires_at: req.expires_at,
                lines: req.lines.iter().map(|l| (l.key.clone(), l.amount)).collect(),
            },
        );
        self.by_expiry.insert((req.expires_at, id));
        ReserveOutcome::Granted(id)
    }

    /// Settles a reservation with the actual amounts.
    pub fn commit(&mut self, req: &CommitRequest) -> CommitOutcome {
        self.release(&req.workload, req.id);
        let mut out = CommitOutcome::default();
        for l in &req.lines {
            let st = self.line_mut(&req.workload, &l.key);
            let (alert, halted) = apply_commit(l, st);
            out.states.push(st.clone());
            if alert {
                out.alerts.push(l.key.limit);
            }
            if halted {
                out.halted.push(l.key.limit);
            }
        }
        out
    }

    /// Frees what a reservation holds; unknown ids are ignored.
    pub fn release(&mut self, workload: &str, id: ReservationId) {
        let Some(held) = self.held.get(&id) else { return };
        if held.workload != workload {
            return;
        }
        if let Some(held) = self.held.remove(&id) {
            self.by_expiry.remove(&(held.expires_at, id));
            self.free(&held);
        }
    }

    /// Lifts the halted lines among `lines` until their period rolls over.
    pub fn unlock(&mut self, workload: &str, lines: &[LineKey]) -> Vec<LimitKind> {
        let mut lifted = Vec::new();
        for key in lines {
            if let Some(st) = self.lines.get_mut(&(workload.to_owned(), key.clone()))
                && st.halted
            {
                st.halted = false;
                st.unlocked = true;
                lifted.push(key.limit);
            }
        }
        lifted
    }

    /// The state of `lines` after releasing reservations expired by `now`.
    pub fn status(&mut self, workload: &str, lines: &[LineKey], now: Millis) -> Vec<LineState> {
        self.expire(now);
        lines
            .iter()
            .map(|k| self.line(workload, k).cloned().unwrap_or_default())
            .collect()
    }

    /// The status of a workload's `budget` lines for the periods around
    /// `now`, as the async ledger reports it: what a simulator needs for the
    /// engine's snapshot (`.to_state()`).
    pub fn workload_status(&mut self, workload: &str, budget: &Budget, now: Millis) -> WorkloadStatus {
        let lines = budget_lines(budget, Spend::default(), now);
        let keys: Vec<LineKey> = lines.iter().map(|l| l.key.clone()).collect();
        let states = self.status(workload, &keys, now);
        WorkloadStatus::from_lines(workload, lines, states, now)
    }

    /// Reservations currently held (for tests and reports).
    pub fn in_flight(&self) -> usize {
        self.held.len()
    }

    fn expire(&mut self, now: Millis) {
        while let Some(&(at, id)) = self.by_expiry.first() {
            if at > now {
                break;
            }
            self.by_expiry.pop_first();
            if let Some(held) = self.held.remove(&id) {
                self.free(&held);
            }
        }
    }

    fn free(&mut self, held: &Held) {
        for (key, amount) in &held.lines {
            let st = self.line_mut(&held.workload, key);
            st.reserved = st.reserved.saturating_sub(*amount);
        }
    }

    fn line(&self, workload: &str, key: &LineKey) -> Option<&LineState> {
        self.lines.get(&(workload.to_owned(), key.clone()))
    }

    fn line_mut(&mut self, workload: &str, key: &LineKey) -> &mut LineState {
        self.lines.entry((workload.to_owned(), key.clone())).or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(limit: LimitKind) -> LineKey {
        LineKey {
            limit,
            period: "2026-11-01".into(),
        }
    }

    fn req(amount: u64, cap: u64, now: u64) -> ReserveRequest {
        ReserveRequest {
            workload: "w".into(),
            lines: vec![LineAmount {
                key: key(LimitKind::TokensPerDay),
                cap,
                amount,
                alert_at: Some(cap * 8 / 10),
            }],
            now: Millis(now),
            expires_at: Millis(now + 1_000),
        }
    }

    fn commit(id: ReservationId, amount: u64, cap: u64) -> CommitRequest {
        CommitRequest {
            workload: "w".into(),
            now: Millis(0),
            id,
            lines: req(amount, cap, 0).lines,
        }
    }

    fn granted(o: ReserveOutcome) -> ReservationId {
        match o {
            ReserveOutcome::Granted(id) => id,
            ReserveOutcome::Refused(r) => panic!("refused: {r:?}"),
        }
    }

    fn refused(o: ReserveOutcome) -> Refusal {
        match o {
            ReserveOutcome::Refused(r) => r,
            ReserveOutcome::Granted(id) => panic!("granted {id}"),
        }
    }

    #[test]
    fn busy_while_others_are_in_flight_then_halted_when_alone() {
        let mut b = BudgetBook::new();
        let a = granted(b.reserve(&req(6, 10, 0)));
        let r = refused(b.reserve(&req(6, 10, 0)));
        assert_eq!((r.reason, r.reserved, r.newly_halted), (RefusalReason::Busy, 6, false));
        // Commit less than reserved; now 4 remain and nothing is in flight.
        let out = b.commit(&commit(a, 6, 10));
        assert!(out.halted.is_empty());
        let r = refused(b.reserve(&req(6, 10, 0)));
        assert_eq!((r.reason, r.newly_halted), (RefusalReason::Halted, true));
        // Halted: even a call that would fit is refused.
        let r = refused(b.reserve(&req(1, 10, 0)));
        assert_eq!((r.reason, r.newly_halted), (RefusalReason::Halted, false));
    }

    #[test]
    fn too_large_does_not_halt() {
        let mut b = BudgetBook::new();
        assert_eq!(refused(b.reserve(&req(11, 10, 0))).reason, RefusalReason::TooLarge);
        granted(b.reserve(&req(10, 10, 0)));
    }

    #[test]
    fn commit_reaching_the_cap_halts_and_alerts_once() {
        let mut b = BudgetBook::new();
        let a = granted(b.reserve(&req(5, 10, 0)));
        let out = b.commit(&commit(a, 8, 10));
        assert_eq!(out.alerts, vec![LimitKind::TokensPerDay]);
        assert!(out.halted.is_empty());
        let a = granted(b.reserve(&req(2, 10, 0)));
        let out = b.commit(&commit(a, 3, 10));
        assert!(out.alerts.is_empty(), "alert fires once per period");
        assert_eq!(out.halted, vec![LimitKind::TokensPerDay]);
        let st = b.status("w", &[key(LimitKind::TokensPerDay)], Millis(0));
        assert_eq!((st[0].committed, st[0].reserved, st[0].halted), (11, 0, true));
    }

    #[test]
    fn unlock_lifts_only_halted_lines_for_the_period() {
        let mut b = BudgetBook::new();
        assert!(b.unlock("w", &[key(LimitKind::TokensPerDay)]).is_empty());
        let a = granted(b.reserve(&req(10, 10, 0)));
        b.commit(&commit(a, 10, 10));
        assert_eq!(refused(b.reserve(&req(1, 10, 0))).reason, RefusalReason::Halted);
        assert_eq!(
            b.unlock("w", &[key(LimitKind::TokensPerDay)]),
            vec![LimitKind::TokensPerDay]
        );
        // Unlocked: not enforced, still counted.
        let a = granted(b.reserve(&req(5, 10, 0)));
        b.commit(&commit(a, 5, 10));
        let st = b.status("w", &[key(LimitKind::TokensPerDay)], Millis(0));
        assert_eq!((st[0].committed, st[0].halted, st[0].unlocked), (15, false, true));
    }

    #[test]
    fn expired_reservations_are_released_and_late_commits_still_count() {
        let mut b = BudgetBook::new();
        let a = granted(b.reserve(&req(10, 10, 0)));
        assert_eq!(refused(b.reserve(&req(1, 10, 999))).reason, RefusalReason::Busy);
        let late = granted(b.reserve(&req(4, 10, 1_000)));
        assert_eq!(b.in_flight(), 1);
        // The expired one commits after all: its spend is added, nothing freed twice.
        b.commit(&commit(a, 3, 10));
        let st = b.status("w", &[key(LimitKind::TokensPerDay)], Millis(1_000));
        assert_eq!((st[0].committed, st[0].reserved), (3, 4));
        b.release("w", late);
        b.release("w", late);
        let st = b.status("w", &[key(LimitKind::TokensPerDay)], Millis(1_000));
        assert_eq!(st[0].reserved, 0);
    }

    #[test]
    fn multi_line_reserve_is_all_or_nothing() {
        let mut b = BudgetBook::new();
        let mut two = req(5, 10, 0);
        two.lines.push(LineAmount {
            key: key(LimitKind::UsdPerDay),
            cap: 100,
            amount: 200,
            alert_at: None,
        });
        assert_eq!(refused(b.reserve(&two)).reason, RefusalReason::TooLarge);
        let st = b.status("w", &two.keys(), Millis(0));
        assert_eq!(st[0].reserved, 0, "no line reserved when one refuses");
    }

    #[test]
    fn release_of_another_workloads_id_does_nothing() {
        let mut b = BudgetBook::new();
        let a = granted(b.reserve(&req(4, 10, 0)));
        b.release("other", a);
        assert_eq!(b.in_flight(), 1);
    }
}
