//! A retry budget: retries may add at most a fixed share of traffic.
//!
//! Why: a 100 %-failing primary with "retry up to 3 times" quadruples the
//! load on everything behind it exactly when the system is weakest. Like
//! tower's `TpsBudget` (and Finagle's), every request deposits a fraction
//! of a retry and every retry withdraws one; over a sliding window, retries
//! ≤ `percent` % of requests plus a small floor per second so low-traffic
//! services can still retry. Unlike tower's it is synchronous with an
//! explicit `now`, so `routec simulate` runs it on its virtual clock.

use std::time::Duration;

use crate::clock::Millis;

/// Slots the window is cut into; expiry moves one slot at a time.
const SLOTS: u64 = 10;

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    epoch: u64,
    deposits: u64,
    withdrawals: u64,
}

/// Retries allowed as a share of recent requests, plus a floor.
#[derive(Clone, Debug)]
pub struct RetryBudget {
    slot_ms: u64,
    min_per_sec: u64,
    percent: u64,
    window_secs: u64,
    slots: [Slot; SLOTS as usize],
}

impl Default for RetryBudget {
    /// 20 % of the last 10 seconds' requests, plus 10 retries per second.
    fn default() -> Self {
        RetryBudget::new(Duration::from_secs(10), 10, 20)
    }
}

impl RetryBudget {
    /// Retries may be `percent` % of the requests of the last `window`, plus
    /// `min_per_sec` per second of it. `window` is rounded to whole seconds
    /// (at least one).
    pub fn new(window: Duration, min_per_sec: u32, percent: u32) -> Self {
        let window_secs = window.as_secs().max(1);
        RetryBudget {
            slot_ms: (window_secs * 1_000).div_ceil(SLOTS).max(1),
            min_per_sec: u64::from(min_per_sec),
            percent: u64::from(percent),
            window_secs,
            slots: [Slot::default(); SLOTS as usize],
        }
    }

    fn slot(&mut self, now: Millis) -> &mut Slot {
        let epoch = now.0 / self.slot_ms;
        let s = &mut self.slots[(epoch % SLOTS) as usize];
        if s.epoch != epoch {
            *s = Slot {
                epoch,
                deposits: 0,
                withdrawals: 0,
            };
        }
        s
    }

    fn totals(&self, now: Millis) -> (u64, u64) {
        let epoch = now.0 / self.slot_ms;
        self.slots
            .iter()
            .filter(|s| s.epoch <= epoch && epoch - s.epoch < SLOTS)
            .fold((0, 0), |(d, w), s| (d + s.deposits, w + s.withdrawals))
    }

    /// Counts one request (call this once per call, not per attempt).
    pub fn deposit(&mut self, now: Millis) {
        let s = self.slot(now);
        s.deposits = s.deposits.saturating_add(1);
    }

    /// Asks for one retry; `true` (and counted) if the budget allows it.
    pub fn withdraw(&mut self, now: Millis) -> bool {
        if self.remaining(now) == 0 {
            return false;
        }
        let s = self.slot(now);
        s.withdrawals = s.withdrawals.saturating_add(1);
        true
    }

    /// Retries still allowed in the current window.
    pub fn remaining(&self, now: Millis) -> u64 {
        let (deposits, withdrawals) = self.totals(now);
        let allowed = self.min_per_sec * self.window_secs + deposits * self.percent / 100;
        allowed.saturating_sub(withdrawals)
    }

    /// The window length.
    pub fn window(&self) -> Duration {
        Duration::from_millis(self.slot_ms * SLOTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_stay_within_the_share_plus_the_floor() {
        let mut b = RetryBudget::new(Duration::from_secs(10), 1, 20);
        let now = Millis(1_000_000);
        for _ in 0..1_000 {
            b.deposit(now);
        }
        let granted = (0..1_000).filter(|_| b.withdraw(now)).count();
        // 20 % of 1,000 plus 1/s over 10 s.
        assert_eq!(granted, 210);
    }

    #[test]
    fn without_traffic_only_the_floor_is_left() {
        let mut b = RetryBudget::new(Duration::from_secs(10), 0, 20);
        assert!(!b.withdraw(Millis(0)));
        for _ in 0..5 {
            b.deposit(Millis(0));
        }
        assert!(b.withdraw(Millis(0)));
        assert!(!b.withdraw(Millis(0)));
    }

    #[test]
    fn old_requests_and_retries_age_out() {
        let mut b = RetryBudget::new(Duration::from_secs(10), 0, 50);
        let t0 = Millis(50_000);
        for _ in 0..10 {
            b.deposit(t0);
        }
        assert_eq!(b.remaining(t0), 5);
        assert!(b.withdraw(t0));
        assert_eq!(b.remaining(t0.after(Duration::from_millis(9_999))), 4);
        // Ten seconds on, the deposits and the withdrawal are gone.
        assert_eq!(b.remaining(t0.after(Duration::from_secs(10))), 0);
        assert_eq!(b.window(), Duration::from_secs(10));
    }
}
