//! Time as a plain number, so the same state machines run on a real clock in
//! the router and on a virtual one in `routec simulate`.
//!
//! Every piece of this crate takes `now: Millis` as an argument and never
//! reads a clock itself.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

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
pub fn duration_to_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
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
    }
}
