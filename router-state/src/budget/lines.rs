//! Budget lines and the requests that cross a budget store: the data the
//! rules ([`crate::budget::book`]) and every store (in `router-runtime`) share.
//!
//! A store holds, per workload, limit and period, a *line*: committed spend,
//! reserved (in-flight) spend and three flags (halted, unlocked, alerted).
//! Caps are not stored: they come from the policy with every request, so a
//! reloaded policy applies at once.

use std::fmt;
use std::time::Duration;

use router_core::{Budget, Usd, WorkloadState};
use serde::Serialize;

use crate::budget::period::LimitKind;
use crate::clock::Millis;

/// Tokens and dollars: what a call is estimated to use, or used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Spend {
    /// Input plus output tokens.
    pub tokens: u64,
    /// Cost.
    pub usd: Usd,
}

/// How long a reservation lives if its holder never commits or releases it
/// (a crashed or partitioned router): longer than any sane call deadline,
/// short enough that a crash blocks a budget for minutes, not a day.
pub const DEFAULT_RESERVATION_TTL: Duration = Duration::from_secs(600);

/// Identifies one reservation within a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ReservationId(pub u64);

impl fmt::Display for ReservationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r{}", self.0)
    }
}

/// One limit of one workload in one period: where an amount is counted.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct LineKey {
    /// Which limit.
    pub limit: LimitKind,
    /// The period's key (`2026-11-01` or `2026-11`).
    pub period: String,
}

/// An amount asked for on one line, with the line's cap from the policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineAmount {
    /// The line.
    pub key: LineKey,
    /// The limit from the policy (tokens, or nano-dollars).
    pub cap: u64,
    /// The amount (tokens, or nano-dollars).
    pub amount: u64,
    /// Committed spend at which the alert fires, if the workload sets one.
    pub alert_at: Option<u64>,
}

/// What [`BudgetStore::reserve`] is asked: every limited line of a workload,
/// all granted or none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReserveRequest {
    /// The workload's name in the policy.
    pub workload: String,
    /// One entry per limit the workload sets.
    pub lines: Vec<LineAmount>,
    /// The time of the request; reservations that expired by then are
    /// released first.
    pub now: Millis,
    /// When this reservation expires if never committed or released (so a
    /// crashed router's in-flight spend does not block the budget forever).
    pub expires_at: Millis,
}

impl ReserveRequest {
    /// The request for reserving `estimate` against `budget` at `now`, with
    /// reservations living `ttl`. Lines are in [`LimitKind::ALL`] order.
    pub fn new(workload: &str, budget: &Budget, estimate: Spend, now: Millis, ttl: Duration) -> Self {
        ReserveRequest {
            workload: workload.to_owned(),
            lines: budget_lines(budget, estimate, now),
            now,
            expires_at: now.after(ttl),
        }
    }

    /// The line keys of this request.
    pub fn keys(&self) -> Vec<LineKey> {
        self.lines.iter().map(|l| l.key.clone()).collect()
    }
}

/// The lines `budget` sets at `now`, each with `spend`'s amount for it.
pub fn budget_lines(budget: &Budget, spend: Spend, now: Millis) -> Vec<LineAmount> {
    let alert = |cap: u64| budget.alert_percent.map(|p| alert_threshold(cap, p));
    LimitKind::ALL
        .into_iter()
        .filter_map(|limit| {
            let cap = match limit {
                LimitKind::TokensPerDay => budget.tokens_per_day?,
                LimitKind::TokensPerMonth => budget.tokens_per_month?,
                LimitKind::UsdPerDay => budget.usd_per_day?.nanos(),
                LimitKind::UsdPerMonth => budget.usd_per_month?.nanos(),
            };
            let amount = if limit.is_usd() {
                spend.usd.nanos()
            } else {
                spend.tokens
            };
            Some(LineAmount {
                key: LineKey {
                    limit,
                    period: limit.period_at(now).key(),
                },
                cap,
                amount,
                alert_at: alert(cap),
            })
        })
        .collect()
}

/// `percent` of `cap`, rounded up, so an alert at 80 % of 10 fires at 8.
fn alert_threshold(cap: u64, percent: u8) -> u64 {
    let n = u128::from(cap) * u128::from(percent.min(100));
    u64::try_from(n.div_ceil(100)).unwrap_or(u64::MAX)
}

/// Why a reservation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// The line is halted: its committed spend reached the cap, or an
    /// earlier call did not fit while nothing else was in flight. Stays so
    /// until the period rolls over or someone unlocks it.
    Halted,
    /// Only other in-flight reservations stand in the way: transient; the
    /// call may fit once they commit or release.
    Busy,
    /// The call alone is bigger than the whole limit: it can never fit, but
    /// smaller calls still can, so the workload is not halted.
    TooLarge,
}

/// The line that refused a reservation, and its numbers at the time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// The line.
    pub key: LineKey,
    /// Why.
    pub reason: RefusalReason,
    /// Whether this very request halted the line.
    pub newly_halted: bool,
    /// The cap.
    pub cap: u64,
    /// Committed spend on the line.
    pub committed: u64,
    /// Spend reserved by other in-flight calls.
    pub reserved: u64,
    /// The amount asked for.
    pub amount: u64,
}

/// The answer to a reserve request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum ReserveOutcome {
    /// Every line had room; the amounts are now reserved under this id.
    Granted(ReservationId),
    /// A line had no room; nothing was reserved.
    Refused(Refusal),
}

/// What [`BudgetStore::commit`] is asked: the reservation to settle and the
/// actual amounts per line (same lines as reserved).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CommitRequest {
    /// The workload's name.
    pub workload: String,
    /// The reservation being settled. If it already expired, the actual
    /// amounts are still added (spend is never lost).
    pub id: ReservationId,
    /// Actual amounts, on the lines (and periods) that were reserved.
    pub lines: Vec<LineAmount>,
    /// The time of the commit.
    pub now: Millis,
}

/// What a commit changed beyond the numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CommitOutcome {
    /// Lines whose alert threshold this commit crossed (each fires once per
    /// period, whichever router instance crosses it).
    pub alerts: Vec<LimitKind>,
    /// Lines this commit halted (committed spend reached the cap).
    pub halted: Vec<LimitKind>,
    /// Each line's state right after the commit, in request order (feeds
    /// the `routec_budget_remaining` gauge).
    pub states: Vec<LineState>,
}

/// A line's numbers and flags as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LineState {
    /// Committed spend.
    pub committed: u64,
    /// Spend reserved by in-flight calls.
    pub reserved: u64,
    /// Whether the line is halted.
    pub halted: bool,
    /// Whether someone lifted the line for the rest of its period.
    pub unlocked: bool,
    /// Whether the alert fired this period.
    pub alerted: bool,
}

/// One limit of one workload in the current period, for `routec budget
/// status` and `/v1/routec/budgets`. Dollar amounts are in nano-dollars.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LimitStatus {
    /// Which limit.
    pub limit: LimitKind,
    /// The current period (`2026-11-01` or `2026-11`).
    pub period: String,
    /// When the period rolls over.
    pub resets_at: Millis,
    /// The cap from the policy.
    pub cap: u64,
    /// Committed spend.
    pub committed: u64,
    /// Spend held by in-flight calls.
    pub reserved: u64,
    /// What new calls may still reserve: cap − committed − reserved, at least 0.
    pub remaining: u64,
    /// Whether the limit halts the workload.
    pub halted: bool,
    /// Whether someone lifted the limit until rollover.
    pub unlocked: bool,
    /// Committed spend at which the alert fires, if the workload sets one.
    pub alert_at: Option<u64>,
    /// Whether the alert fired this period.
    pub alert_fired: bool,
}

/// Every limit of one workload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WorkloadStatus {
    /// The workload's name.
    pub workload: String,
    /// Its limits, in [`LimitKind::ALL`] order; empty when unbudgeted.
    pub limits: Vec<LimitStatus>,
}

impl WorkloadStatus {
    /// The status of `workload` from its budget lines (as [`budget_lines`]
    /// gives them for `now`) and their stored states, in the same order.
    pub fn from_lines(workload: &str, lines: Vec<LineAmount>, states: Vec<LineState>, now: Millis) -> Self {
        let limits = lines
            .into_iter()
            .zip(states)
            .map(|(line, st)| LimitStatus {
                limit: line.key.limit,
                resets_at: line.key.limit.period_at(now).end(),
                period: line.key.period,
                cap: line.cap,
                committed: st.committed,
                reserved: st.reserved,
                remaining: line.cap.saturating_sub(st.committed.saturating_add(st.reserved)),
                halted: st.halted,
                unlocked: st.unlocked,
                alert_at: line.alert_at,
                alert_fired: st.alerted,
            })
            .collect();
        WorkloadStatus {
            workload: workload.to_owned(),
            limits,
        }
    }

    /// Whether any limit halts the workload.
    pub fn halted(&self) -> bool {
        self.limits.iter().any(|l| l.halted)
    }

    /// The budget part of the decision engine's snapshot: the tightest
    /// remaining tokens and dollars among enforced (not unlocked) limits.
    pub fn to_state(&self) -> WorkloadState {
        let enforced = || self.limits.iter().filter(|l| !l.unlocked);
        WorkloadState {
            tokens_remaining: enforced().filter(|l| !l.limit.is_usd()).map(|l| l.remaining).min(),
            usd_remaining: enforced()
                .filter(|l| l.limit.is_usd())
                .map(|l| l.remaining)
                .min()
                .map(Usd::from_nanos),
            halted: self.halted(),
        }
    }
}

#[cfg(test)]
mod tests {
    use router_core::Usd;

    use super::*;

    #[test]
    fn lines_follow_the_budget_and_the_clock() {
        let budget = Budget {
            tokens_per_day: Some(1_000),
            usd_per_month: Some(Usd::from_dollars(2)),
            alert_percent: Some(80),
            ..Budget::default()
        };
        let spend = Spend {
            tokens: 10,
            usd: Usd::from_nanos(7),
        };
        // 2026-11-01T00:00:00Z
        let lines = budget_lines(&budget, spend, Millis(1_793_491_200_000));
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].key.limit, LimitKind::TokensPerDay);
        assert_eq!(lines[0].key.period, "2026-11-01");
        assert_eq!(
            (lines[0].cap, lines[0].amount, lines[0].alert_at),
            (1_000, 10, Some(800))
        );
        assert_eq!(lines[1].key.limit, LimitKind::UsdPerMonth);
        assert_eq!(lines[1].key.period, "2026-11");
        assert_eq!((lines[1].cap, lines[1].amount), (2_000_000_000, 7));
        assert!(budget_lines(&Budget::default(), spend, Millis(0)).is_empty());
    }

    #[test]
    fn alert_threshold_rounds_up() {
        assert_eq!(alert_threshold(10, 80), 8);
        assert_eq!(alert_threshold(3, 50), 2);
        assert_eq!(alert_threshold(u64::MAX, 100), u64::MAX);
    }
}
