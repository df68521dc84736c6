//! Rolling latency per target, for `select fastest` and reports.
//!
//! Why: a target's speed changes through the day, so `fastest` reads a
//! recent window rather than a lifetime average, and it must see the calls
//! that went badly too: a target that times out looks slow, not absent.
//! Each target keeps a ring of one-minute HDR histograms covering the last
//! five minutes (bounded memory, ~1 % error); a read merges the live ones.
//!
//! Why a running merge: the router reads every target's p95 on every call
//! (the decision engine's snapshot), and merging the ring there cloned a
//! ~16 KiB histogram per target per call — the largest single cost of a
//! call through the gateway. So each window also keeps the merge of its
//! live slots for one minute, rebuilt when the minute turns
//! ([`LatencyBook::refresh`], or the first record of the minute) and
//! recorded into alongside the slot; a read in that minute scans it in
//! place. Reads in any other minute still merge the ring, so every answer
//! is exactly what merging at read time gives.
//!
//! What is recorded ([`LatencyWindow::record_attempt`]): successes and
//! counted failures (5xx, connection errors) at their elapsed time, and
//! timeouts at the timeout (or elapsed, if longer). 429s and client errors
//! are not recorded: a fast refusal says nothing about how fast the model
//! answers. Synchronous with explicit `now`, like the health book.

use std::borrow::Cow;
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
    /// The merge of the slots live in `minute` (see the module docs);
    /// `None` until a minute with samples has been merged.
    live: Option<Slot>,
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
            live: None,
        }
    }

    /// Whether the slot of `minute` is in the window at `current`.
    fn in_window(slot_minute: u64, current: u64) -> bool {
        slot_minute <= current && current - slot_minute < SLOTS as u64
    }

    /// The running merge, if it is the one of `minute`.
    fn live_at(&self, minute: u64) -> Option<&Histogram<u64>> {
        self.live.as_ref().filter(|l| l.minute == minute).map(|l| &l.hist)
    }

    /// Makes the running merge the one of `minute`, if any slot is live then.
    fn advance(&mut self, minute: u64) {
        if self.live.as_ref().is_some_and(|l| l.minute == minute) {
            return;
        }
        let mut live = self
            .slots
            .iter()
            .flatten()
            .filter(|s| Self::in_window(s.minute, minute));
        let Some(first) = live.next() else {
            self.live = None;
            return;
        };
        let mut merged = match self.live.take() {
            Some(mut old) => {
                // Reuse the allocation: same bounds, so `add` cannot fail.
                old.hist.reset();
                let _ = old.hist.add(&first.hist);
                old.hist
            }
            None => first.hist.clone(),
        };
        for s in live {
            let _ = merged.add(&s.hist);
        }
        self.live = Some(Slot { minute, hist: merged });
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
            // Two significant figures from 1 ms to an hour: ~16 KiB a slot.
            // The slot replaced is five or more minutes old (or ahead of a
            // clock that went back), so never part of this minute's merge.
            let Ok(hist) = Histogram::new_with_bounds(1, MAX_MS, 2) else {
                return;
            };
            *slot = Some(Slot { minute, hist });
        }
        let value = duration_to_ms(latency).clamp(1, MAX_MS);
        if let Some(s) = &mut self.slots[i] {
            s.hist.saturating_record(value);
        }
        // The slot now holds the sample, so a merge built here includes it;
        // one already current gets it added.
        let current = self.live.as_ref().is_some_and(|l| l.minute == minute);
        if current {
            if let Some(l) = &mut self.live {
                l.hist.saturating_record(value);
            }
        } else {
            self.advance(minute);
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

    /// The merged window at `now`: the running merge when it is current,
    /// else a merge made here.
    fn merged(&self, now: Millis) -> Option<Cow<'_, Histogram<u64>>> {
        let current = Self::minute(now);
        if let Some(h) = self.live_at(current) {
            return Some(Cow::Borrowed(h)).filter(|h| !h.is_empty());
        }
        let mut out: Option<Histogram<u64>> = None;
        for s in self.slots.iter().flatten() {
            if !Self::in_window(s.minute, current) {
                continue;
            }
            match &mut out {
                None => out = Some(s.hist.clone()),
                Some(h) => {
                    let _ = h.add(&s.hist);
                }
            }
        }
        out.filter(|h| !h.is_empty()).map(Cow::Owned)
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

    /// Brings the running merge to `now`'s minute, so reads in that minute
    /// need no merge of their own (see the module docs).
    pub fn refresh(&mut self, now: Millis) {
        if self.slots.iter().any(Option::is_some) {
            self.advance(Self::minute(now));
        }
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

    /// Brings every window's running merge to `now`'s minute: call it
    /// before [`LatencyBook::fill_snapshot`] so the snapshot merges nothing
    /// (once a minute per target it merges the ring instead).
    pub fn refresh(&mut self, now: Millis) {
        for w in &mut self.targets {
            w.refresh(now);
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
    fn the_running_merge_answers_as_a_merge_at_read_time_would() {
        // A merge made at read time, for comparison.
        fn fresh(w: &LatencyWindow) -> LatencyWindow {
            LatencyWindow {
                slots: w.slots.clone(),
                live: None,
            }
        }
        let mut w = LatencyWindow::new();
        let mut b = LatencyBook::new(1);
        let t0 = Millis(60_000 * 1_000);
        let mut seed = 7u64;
        for step in 0..2_000u64 {
            // Minutes with samples, idle minutes, and reads in between.
            let now = t0.after(Duration::from_millis(step * 997 + (step / 300) * 240_000));
            seed = crate::splitmix64(seed);
            if !seed.is_multiple_of(3) {
                let latency = ms(1 + seed % 40_000);
                w.record(now, latency);
                b.record_attempt(TargetId(0), now, AttemptOutcome::Success, latency, None);
            }
            if step.is_multiple_of(7) {
                w.refresh(now);
                b.refresh(now);
            }
            let reference = fresh(&w);
            for q in [0.0, 0.5, 0.95, 0.99, 1.0] {
                assert_eq!(w.quantile(now, q), reference.quantile(now, q), "step {step} q {q}");
            }
            assert_eq!(w.count(now), reference.count(now), "step {step}");
            assert_eq!(b.p95(TargetId(0), now), reference.quantile(now, 0.95), "step {step}");
        }
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
