//! The simulator's own random numbers: splitmix64, seeded per request, so a
//! replay is a pure function of (seed, traffic) on any machine and a request's
//! draws do not depend on how many draws the requests before it made.

/// splitmix64 (Steele, Lea, Flood 2014): tiny, fast and the same everywhere.
#[derive(Clone, Debug)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator for stream `index` of `seed` within `domain` (e.g. one per
    /// request of a replay). The domain keeps uses apart: traffic generated
    /// and replayed with the same seed must not draw the same numbers, or the
    /// replay's draws would be correlated with the request's class.
    pub(crate) fn new(domain: &str, seed: u64, index: u64) -> Self {
        let base = xxhash_rust::xxh3::xxh3_64_with_seed(domain.as_bytes(), seed);
        let mut g = SplitMix64(base ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03).rotate_left(29));
        // One step so that nearby (seed, index) pairs start far apart.
        g.next_u64();
        g
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 bits.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal draw (Box–Muller; `1 - u` keeps the log's argument in (0, 1]).
    pub(crate) fn next_normal(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Whether an event with probability `bp` basis points happens.
    pub(crate) fn chance_bp(&mut self, bp: u32) -> bool {
        self.next_u64() % 10_000 < u64::from(bp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = (0..4).map(|_| SplitMix64::new("t", 7, 1).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            SplitMix64::new("t", 7, 1).next_u64(),
            SplitMix64::new("t", 7, 2).next_u64()
        );
        assert_ne!(
            SplitMix64::new("t", 7, 1).next_u64(),
            SplitMix64::new("t", 8, 1).next_u64()
        );
        assert_ne!(
            SplitMix64::new("t", 7, 1).next_u64(),
            SplitMix64::new("u", 7, 1).next_u64()
        );
    }

    #[test]
    fn uniform_draws_stay_in_range_and_average_a_half() {
        let mut g = SplitMix64::new("t", 1, 0);
        let n = 10_000;
        let sum: f64 = (0..n)
            .map(|_| g.next_f64())
            .inspect(|x| assert!((0.0..1.0).contains(x)))
            .sum();
        assert!((sum / f64::from(n) - 0.5).abs() < 0.02);
    }
}
