//! Rolling latency per target, for `select fastest` and reports.
//!
//! Why: a target's speed changes through the day, so `fastest` reads a
//! recent window rather than a lifetime average, and it must see the calls
//! that went badly too: a target that times out looks slow, not absent.
//! Each target keeps a ring of one-minute HDR histograms covering the last
//! five minutes (bounded memory, ~1 % error); a read merges the live ones.
//!
//! What is recorded ([`LatencyWindow::record_attempt`]): successes and
//! counted failures (5xx, connection errors) at their elapsed time, and
//! timeouts at the timeout (or elapsed, if longer). 429s and client errors
//! are not recorded: a fast refusal says nothing about how fast the model
//! answers. Synchronous with explicit `now`, like the health book.

use std::time::Duration;

use hdrhistogram::Histogram;
use router_core::{StateSnapshot, TargetId};

use crate::clock::{Millis, duration_to_ms};
use crate::health::AttemptOutcome;

/// Width of one slot of the ring.
pub const SLOT: Duration = Duration::from_secs(60);
/// Slots in the ring: the window is `SLOTS × SLOT` (five minutes).
pub const SLOTS: usize = 5;
/// The largest latency held exactly (longer ones count as this).
const MAX_MS: u64 = 3_600_000;

#[derive(Debug, Clone)]
struct Slot {
    minute: u64,
    hist: Histogram<u64>,
}

/// The last five minutes of one target's latencies.
#[derive(Debug, Clone)]
pub struct LatencyWindow {
    slots: Vec<Option<Slot>>,
}

impl Default for LatencyWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyWindow {
    /// An empty window.
    pub fn new() -> Self {
        LatencyWindow {
            slots: vec![None; SLOTS],
        }
    }

    fn minute(now: Millis) -> u64 {
        now.0 / duration_to_ms(SLOT)
    }

    /// Records one latency at `now`.
    pub fn record(&mut self, now: Millis, latency: Duration) {
        let minute = Self::minute(now);
        let i = (minute % SLOTS as u64) as usize;
        let slot = &mut self.slots[i];
        if slot.as_ref().is_none_or(|s| s.minute != minute) {
            // Three significant figures from 1 ms to an hour: ~20 KiB a slot.
            let Ok(hist) = Histogram::new_with_bounds(1, MAX_MS, 2) else {
                return;
            };
            *slot = Some(Slot { minute, hist });
        }
        if let Some(s) = slot {
            s.hist.saturating_record(duration_to_ms(latency).clamp(1, MAX_MS));
        }
    }

    /// Records an attempt by its outcome (see the module docs for what
    /// counts); `timeout` is the attempt's timeout, if it had one.
    pub fn record_attempt(
        &mut self,
        now: Millis,
        outcome: AttemptOutcome,
        elapsed: Duration,
        timeout: Option<Duration>,
    ) {
        match outcome {
            AttemptOutcome::Success
            | AttemptOutcome::Overloaded
            | AttemptOutcome::ServerError
            | AttemptOutcome::ConnectionError => self.record(now, elapsed),
            AttemptOutcome::Timeout => self.record(now, timeout.map_or(elapsed, |t| t.max(elapsed))),
            AttemptOutcome::RateLimited { .. } | AttemptOutcome::ContextLength | AttemptOutcome::ClientError => {}
        }
    }

    fn merged(&self, now: Millis) -> Option<Histogram<u64>> {
        let current = Self::minute(now);
        let mut out: Option<Histogram<u64>> = None;
        for s in self.slots.iter().flatten() {
            if s.minute > current || current - s.minute >= SLOTS as u64 {
                continue;
            }
            match &mut out {
                None => out = Some(s.hist.clone()),
                Some(h) => {
                    let _ = h.add(&s.hist);
                }
            }
        }
        out.filter(|h| !h.is_empty())
    }

    /// Samples in the window.
    pub fn count(&self, now: Millis) -> u64 {
        self.merged(now).map_or(0, |h| h.len())
    }

    /// The `q` quantile (0.0–1.0) of the window, or `None` when it is empty.
    pub fn quantile(&self, now: Millis, q: f64) -> Option<Duration> {
        self.merged(now)
            .map(|h| Duration::from_millis(h.value_at_quantile(q.clamp(0.0, 1.0))))
    }

    /// p50, p95 and p99 in one pass, or `None` when empty.
    pub fn percentiles(&self, now: Millis) -> Option<Percentiles> {
        let h = self.merged(now)?;
        let at = |q: f64| Duration::from_millis(h.value_at_quantile(q));
        Some(Percentiles {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            count: h.len(),
        })
    }
}

/// Latency readouts of one window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Percentiles {
    /// Median.
    pub p50: Duration,
    /// 95th percentile.
    pub p95: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Samples behind them.
    pub count: u64,
}

/// A [`LatencyWindow`] per target of a policy.
#[derive(Debug, Clone)]
pub struct LatencyBook {
    targets: Vec<LatencyWindow>,
}

impl LatencyBook {
    /// Empty windows for `targets` targets (a policy's `targets.len()`).
    pub fn new(targets: usize) -> Self {
        LatencyBook {
            targets: vec![LatencyWindow::new(); targets],
        }
    }

    /// The window of `target`, if the id is in range.
    pub fn window(&self, target: TargetId) -> Option<&LatencyWindow> {
        self.targets.get(target.0 as usize)
    }

    /// Records an attempt at `target` (see [`LatencyWindow::record_attempt`]).
    pub fn record_attempt(
        &mut self,
        target: TargetId,
        now: Millis,
        outcome: AttemptOutcome,
        elapsed: Duration,
        timeout: Option<Duration>,
    ) {
        if let Some(w) = self.targets.get_mut(target.0 as usize) {
            w.record_attempt(now, outcome, elapsed, timeout);
        }
    }

    /// The rolling p95 of `target`.
    pub fn p95(&self, target: TargetId, now: Millis) -> Option<Duration> {
        self.window(target)?.quantile(now, 0.95)
    }

    /// Writes each target's p95 (ms) into the decision engine's snapshot;
    /// targets with no recent samples get `None` (the engine's prior).
    pub fn fill_snapshot(&self, snap: &mut StateSnapshot, now: Millis) {
        for (i, w) in self.targets.iter().enumerate() {
            let p95 = w
                .quantile(now, 0.95)
                .map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX));
            snap.target_mut(TargetId(i as u32)).p95_ms = p95;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut w = LatencyWindow::new();
        let now = Millis(1_000_000);
        for i in 1..=100 {
            w.record(now, ms(i * 10));
        }
        let p = w.percentiles(now).unwrap();
        assert_eq!(p.count, 100);
        // Two significant figures: within 1 %.
        assert!((495..=505).contains(&(p.p50.as_millis() as u64)), "{p:?}");
        assert!((945..=955).contains(&(p.p95.as_millis() as u64)), "{p:?}");
        assert!((985..=995).contains(&(p.p99.as_millis() as u64)), "{p:?}");
    }

    #[test]
    fn samples_leave_the_window_after_five_minutes() {
        let mut w = LatencyWindow::new();
        let t0 = Millis(60_000 * 1_000);
        w.record(t0, ms(2_000));
        w.record(t0.after(Duration::from_secs(120)), ms(100));
        assert_eq!(w.count(t0.after(Duration::from_secs(299))), 2);
        // The first minute's slot has aged out; the slow sample is gone.
        let later = t0.after(Duration::from_secs(300));
        assert_eq!(w.count(later), 1);
        assert_eq!(w.quantile(later, 0.95), Some(ms(100)));
        // A slot reused by a new minute starts empty.
        w.record(later, ms(300));
        assert_eq!(w.count(later), 2);
        assert_eq!(w.count(t0.after(Duration::from_secs(3_600))), 0);
        assert_eq!(w.quantile(t0.after(Duration::from_secs(3_600)), 0.5), None);
    }

    #[test]
    fn timeouts_count_as_the_timeout_and_429s_not_at_all() {
        let mut w = LatencyWindow::new();
        let now = Millis(0);
        w.record_attempt(now, AttemptOutcome::Timeout, ms(4_990), Some(ms(5_000)));
        w.record_attempt(now, AttemptOutcome::RateLimited { retry_after: None }, ms(3), None);
        w.record_attempt(now, AttemptOutcome::ClientError, ms(3), None);
        assert_eq!(w.count(now), 1);
        let p = w.quantile(now, 0.5).unwrap().as_millis();
        assert!((4_950..=5_050).contains(&p), "{p}");
    }

    #[test]
    fn the_book_fills_p95_into_the_snapshot() {
        let mut b = LatencyBook::new(2);
        let now = Millis(0);
        b.record_attempt(TargetId(1), now, AttemptOutcome::Success, ms(420), None);
        let mut snap = StateSnapshot::default();
        b.fill_snapshot(&mut snap, now);
        assert_eq!(snap.target(TargetId(0)).p95_ms, None);
        let p95 = snap.target(TargetId(1)).p95_ms.unwrap();
        assert!((416..=424).contains(&p95), "{p95}");
    }
}
