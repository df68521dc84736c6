//! Time as a plain number, so the same state machines run on a real clock in
//! the router and on a virtual one in `routec simulate`.
//!
//! Every synchronous piece of this crate (the health book, the latency
//! window, the retry budget, the budget book) takes `now: Millis` as an
//! argument and never reads a clock itself. The async parts (the budget
//! ledger, the idempotency cache) hold a [`Clock`] so tests can move time.

use std::fmt;
use std::ops::{Add, Sub};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// A point in time: whole milliseconds since the Unix epoch (UTC).
///
/// Budget periods (UTC day, UTC month) are computed from it, so it is wall
/// time, not an arbitrary monotonic origin. A simulator may start it anywhere.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Millis(pub u64);

impl Millis {
    /// The epoch itself.
    pub const ZERO: Millis = Millis(0);

    /// Milliseconds since the epoch.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// The time `d` later, saturating at the far future.
    #[must_use]
    pub fn after(self, d: Duration) -> Millis {
        Millis(self.0.saturating_add(duration_to_ms(d)))
    }

    /// How long from `earlier` to `self`; zero when `earlier` is later.
    pub fn since(self, earlier: Millis) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Millis {
    type Output = Millis;
    fn add(self, rhs: Duration) -> Millis {
        self.after(rhs)
    }
}

impl Sub for Millis {
    type Output = Duration;
    fn sub(self, rhs: Millis) -> Duration {
        self.since(rhs)
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

/// A duration in whole milliseconds, saturating at `u64::MAX`.
pub(crate) fn duration_to_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

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
