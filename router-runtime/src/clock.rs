//! Time as a plain number, so the same state machines run on a real clock in
//! the router and on a virtual one in `routec simulate`.
//!
//! Every synchronous piece of this crate (the health book, the latency
//! window, the retry budget, the budget book) takes `now: Millis` as an
//! argument and never reads a clock itself. The async parts (the budget
//! ledger, the idempotency cache) hold a [`Clock`] so tests can move time.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use router_state::{Millis, duration_to_ms};

/// Where the async parts read the time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Millis;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        // A clock before 1970 is a broken host; treat it as the epoch.
        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Millis(duration_to_ms(d))
    }
}

/// Wall time that follows tokio's clock: the system time when it was made,
/// plus tokio's elapsed time since. Under `tokio::time::pause` it moves only
/// when the test advances time, so cool-downs and windows are testable.
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    base: Millis,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// A clock starting at the current system time.
    pub fn new() -> Self {
        Self::starting_at(SystemClock.now())
    }

    /// A clock that reads `base` now and moves with tokio's time.
    pub fn starting_at(base: Millis) -> Self {
        TokioClock {
            base,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Millis {
        self.base.after(self.start.elapsed())
    }
}

/// A clock that moves only when told to: for tests (day and month rollover
/// without sleeping) and for a simulator driving the async parts.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock reading `at`.
    pub fn new(at: Millis) -> Self {
        ManualClock(Arc::new(AtomicU64::new(at.0)))
    }

    /// Sets the time (it may go backwards; stores must cope).
    pub fn set(&self, at: Millis) {
        self.0.store(at.0, Ordering::SeqCst);
    }

    /// Moves the time forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(duration_to_ms(d), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        Millis(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_arithmetic_saturates() {
        let t = Millis(1_000);
        assert_eq!(t + Duration::from_millis(500), Millis(1_500));
        assert_eq!(Millis(1_500) - t, Duration::from_millis(500));
        assert_eq!(t - Millis(1_500), Duration::ZERO);
        assert_eq!(Millis(u64::MAX).after(Duration::from_secs(1)), Millis(u64::MAX));
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(Millis(10));
        let shared = c.clone();
        assert_eq!(c.now(), Millis(10));
        shared.advance(Duration::from_secs(2));
        assert_eq!(c.now(), Millis(2_010));
        c.set(Millis(5));
        assert_eq!(shared.now(), Millis(5));
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let c = TokioClock::starting_at(Millis(1_000));
        assert_eq!(c.now(), Millis(1_000));
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(c.now(), Millis(1_250));
    }
}
