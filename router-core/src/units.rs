//! Money, token counts and durations as integers, so budgets add up exactly.

use std::fmt;
use std::ops::{Add, AddAssign};

use serde::{Deserialize, Serialize};

/// An amount of US dollars held as whole nano-dollars (10⁻⁹ $).
///
/// Integers because budgets are compared and summed across many calls and
/// stores: `$0.27/M` is exactly 270 nano-dollars per token, and no float ever
/// decides whether a call fits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Usd(u64);

impl Usd {
    /// Zero dollars.
    pub const ZERO: Usd = Usd(0);
    /// Nano-dollars in one dollar.
    pub const NANOS_PER_DOLLAR: u64 = 1_000_000_000;

    /// An amount from whole nano-dollars.
    pub const fn from_nanos(nanos: u64) -> Self {
        Usd(nanos)
    }

    /// An amount from whole dollars.
    pub const fn from_dollars(dollars: u64) -> Self {
        Usd(dollars.saturating_mul(Self::NANOS_PER_DOLLAR))
    }

    /// The amount in nano-dollars.
    pub const fn nanos(self) -> u64 {
        self.0
    }

    /// The amount as a float, for display and reports only.
    pub fn as_dollars_f64(self) -> f64 {
        self.0 as f64 / Self::NANOS_PER_DOLLAR as f64
    }

    /// Sum that stops at the maximum instead of wrapping.
    pub const fn saturating_add(self, other: Usd) -> Usd {
        Usd(self.0.saturating_add(other.0))
    }

    /// Difference that stops at zero.
    pub const fn saturating_sub(self, other: Usd) -> Usd {
        Usd(self.0.saturating_sub(other.0))
    }
}

impl Add for Usd {
    type Output = Usd;
    fn add(self, rhs: Usd) -> Usd {
        self.saturating_add(rhs)
    }
}

impl AddAssign for Usd {
    fn add_assign(&mut self, rhs: Usd) {
        *self = self.saturating_add(rhs);
    }
}

impl fmt::Display for Usd {
    /// Dollars with up to nine decimals and trailing zeros trimmed, as a
    /// policy author would write them: `$15`, `$0.27`, `$0.000123`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / Self::NANOS_PER_DOLLAR;
        let frac = self.0 % Self::NANOS_PER_DOLLAR;
        if frac == 0 {
            return write!(f, "${whole}");
        }
        let digits = format!("{frac:09}");
        write!(f, "${whole}.{}", digits.trim_end_matches('0'))
    }
}

/// A model's price in dollars per million tokens, input and output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Price {
    /// Dollars per million input (prompt) tokens.
    pub input_per_mtok: Usd,
    /// Dollars per million output (completion) tokens.
    pub output_per_mtok: Usd,
}

impl Price {
    /// A price of zero for both directions (free tiers, local models).
    pub const FREE: Price = Price {
        input_per_mtok: Usd::ZERO,
        output_per_mtok: Usd::ZERO,
    };

    /// The cost of a call with these token counts, rounded up to the next
    /// nano-dollar so estimates never undercount.
    pub fn cost(&self, input_tokens: u64, output_tokens: u64) -> Usd {
        let part = |tokens: u64, per_mtok: Usd| -> u128 {
            let n = u128::from(tokens) * u128::from(per_mtok.nanos());
            n.div_ceil(1_000_000)
        };
        let total = part(input_tokens, self.input_per_mtok) + part(output_tokens, self.output_per_mtok);
        Usd(u64::try_from(total).unwrap_or(u64::MAX))
    }
}

/// Serde helper: a [`std::time::Duration`] as whole milliseconds.
pub mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises a duration as integer milliseconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Reads integer milliseconds into a duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Serde helper: an optional [`std::time::Duration`] as whole milliseconds.
pub mod opt_duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises an optional duration as integer milliseconds or null.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    /// Reads optional integer milliseconds into a duration.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|o| o.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usd_displays_like_a_policy_literal() {
        assert_eq!(Usd::from_dollars(15).to_string(), "$15");
        assert_eq!(Usd::from_nanos(270_000_000).to_string(), "$0.27");
        assert_eq!(Usd::from_nanos(123_000).to_string(), "$0.000123");
        assert_eq!(Usd::ZERO.to_string(), "$0");
    }

    #[test]
    fn price_cost_is_exact_and_rounds_up() {
        // Claude Opus: $15/M in, $75/M out.
        let opus = Price {
            input_per_mtok: Usd::from_dollars(15),
            output_per_mtok: Usd::from_dollars(75),
        };
        // 1,000 in + 500 out = $0.015 + $0.0375.
        assert_eq!(opus.cost(1_000, 500), Usd::from_nanos(52_500_000));
        // deepseek-r1 input: $0.27/M; one token costs 270 nano-dollars.
        let r1 = Price {
            input_per_mtok: Usd::from_nanos(270_000_000),
            output_per_mtok: Usd::from_nanos(2_190_000_000),
        };
        assert_eq!(r1.cost(1, 0), Usd::from_nanos(270));
        // A price below one nano-dollar per token still costs one.
        let tiny = Price {
            input_per_mtok: Usd::from_nanos(1),
            output_per_mtok: Usd::ZERO,
        };
        assert_eq!(tiny.cost(1, 0), Usd::from_nanos(1));
        assert_eq!(Price::FREE.cost(1_000_000, 1_000_000), Usd::ZERO);
    }

    #[test]
    fn cost_saturates_instead_of_overflowing() {
        let p = Price {
            input_per_mtok: Usd::from_nanos(u64::MAX),
            output_per_mtok: Usd::from_nanos(u64::MAX),
        };
        assert_eq!(p.cost(u64::MAX, u64::MAX), Usd::from_nanos(u64::MAX));
    }
}
