//! Which limit a number belongs to, and which UTC day or month it counts in.
//!
//! Periods are derived from the clock reading alone, so rollover is tested by
//! setting a [`crate::ManualClock`] and a simulator gets it for free.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::clock::Millis;

/// One of the four limits a workload's budget may set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// Input plus output tokens per UTC day.
    TokensPerDay,
    /// Input plus output tokens per UTC calendar month.
    TokensPerMonth,
    /// Nano-dollars per UTC day.
    UsdPerDay,
    /// Nano-dollars per UTC calendar month.
    UsdPerMonth,
}

impl LimitKind {
    /// Every limit, in the order status lists them.
    pub const ALL: [LimitKind; 4] = [
        LimitKind::TokensPerDay,
        LimitKind::TokensPerMonth,
        LimitKind::UsdPerDay,
        LimitKind::UsdPerMonth,
    ];

    /// The name used in status output, store keys and metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            LimitKind::TokensPerDay => "tokens_per_day",
            LimitKind::TokensPerMonth => "tokens_per_month",
            LimitKind::UsdPerDay => "usd_per_day",
            LimitKind::UsdPerMonth => "usd_per_month",
        }
    }

    /// Whether the limit counts dollars (in nano-dollars) rather than tokens.
    pub const fn is_usd(self) -> bool {
        match self {
            LimitKind::UsdPerDay | LimitKind::UsdPerMonth => true,
            LimitKind::TokensPerDay | LimitKind::TokensPerMonth => false,
        }
    }

    /// Whether the limit's period is a UTC day (else a UTC calendar month).
    pub const fn is_daily(self) -> bool {
        match self {
            LimitKind::TokensPerDay | LimitKind::UsdPerDay => true,
            LimitKind::TokensPerMonth | LimitKind::UsdPerMonth => false,
        }
    }

    /// The period containing `now` for this limit.
    pub fn period_at(self, now: Millis) -> Period {
        if self.is_daily() {
            Period::day_at(now)
        } else {
            Period::month_at(now)
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LimitKind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        LimitKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or(())
    }
}

/// A UTC day (`2026-11-01`) or UTC calendar month (`2026-11`) in which a
/// limit's spend accumulates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Period {
    /// A UTC day.
    Day {
        /// Year.
        year: i32,
        /// Month, 1–12.
        month: u8,
        /// Day of the month, 1–31.
        day: u8,
    },
    /// A UTC calendar month.
    Month {
        /// Year.
        year: i32,
        /// Month, 1–12.
        month: u8,
    },
}

const MS_PER_DAY: u64 = 86_400_000;

impl Period {
    /// The UTC day containing `now`.
    pub fn day_at(now: Millis) -> Period {
        let (year, month, day) = civil_from_days(now.0 / MS_PER_DAY);
        Period::Day { year, month, day }
    }

    /// The UTC calendar month containing `now`.
    pub fn month_at(now: Millis) -> Period {
        let (year, month, _) = civil_from_days(now.0 / MS_PER_DAY);
        Period::Month { year, month }
    }

    /// When the next period starts (the instant the limit rolls over).
    pub fn end(self) -> Millis {
        match self {
            Period::Day { year, month, day } => Millis((days_from_civil(year, month, day) + 1) * MS_PER_DAY),
            Period::Month { year, month } => {
                let (y, m) = if month == 12 { (year + 1, 1) } else { (year, month + 1) };
                Millis(days_from_civil(y, m, 1) * MS_PER_DAY)
            }
        }
    }

    /// The period's key in stores: `2026-11-01` or `2026-11`.
    pub fn key(self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Period::Day { year, month, day } => write!(f, "{year:04}-{month:02}-{day:02}"),
            Period::Month { year, month } => write!(f, "{year:04}-{month:02}"),
        }
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`, for non-negative day counts).
fn civil_from_days(days: u64) -> (i32, u8, u8) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
    (year, month, day)
}

/// (year, month, day) → days since 1970-01-01 (inverse of the above).
pub(crate) fn days_from_civil(year: i32, month: u8, day: u8) -> u64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    u64::try_from(era * 146_097 + doe - 719_468).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-01T00:00:00Z
    const NOV_1_2026: u64 = 1_793_491_200_000;

    #[test]
    fn days_and_months_have_iso_keys() {
        assert_eq!(Period::day_at(Millis(0)).key(), "1970-01-01");
        assert_eq!(Period::day_at(Millis(NOV_1_2026)).key(), "2026-11-01");
        assert_eq!(Period::day_at(Millis(NOV_1_2026 - 1)).key(), "2026-10-31");
        assert_eq!(Period::month_at(Millis(NOV_1_2026 - 1)).key(), "2026-10");
        // A leap day.
        assert_eq!(Period::day_at(Millis(1_709_164_800_000)).key(), "2024-02-29");
    }

    #[test]
    fn period_end_is_the_next_period_start() {
        let d = Period::day_at(Millis(NOV_1_2026 + 5));
        assert_eq!(d.end(), Millis(NOV_1_2026 + MS_PER_DAY));
        let m = Period::month_at(Millis(NOV_1_2026 - 1));
        assert_eq!(m.end(), Millis(NOV_1_2026));
        let dec = Period::month_at(Millis(NOV_1_2026 + 31 * MS_PER_DAY));
        assert_eq!(dec.key(), "2026-12");
        assert_eq!(Period::month_at(dec.end()).key(), "2027-01");
    }

    #[test]
    fn civil_round_trips_over_centuries() {
        for days in (0..200_000u64).step_by(37) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn limit_kinds_parse_their_names() {
        for k in LimitKind::ALL {
            assert_eq!(k.as_str().parse::<LimitKind>(), Ok(k));
        }
        assert!("tokens".parse::<LimitKind>().is_err());
    }
}
