//! Weighted A/B splits: a stable, platform-independent bucket per key, so a
//! user keeps their arm across restarts, machines and routec versions.
//!
//! The bucket is `xxh3_64(salt ‖ 0x00 ‖ key) mod 10 000`. xxh3 is specified
//! byte-for-byte (no seed, no per-process randomisation, same result on every
//! endianness), unlike `std`'s `DefaultHasher`. The 0 byte keeps `("ab", "c")`
//! and `("a", "bc")` apart. The test vectors below are a compatibility
//! promise: changing any of them moves users between arms.

use xxhash_rust::xxh3::Xxh3;

use crate::route::NodeId;

/// Buckets per split: weights are whole percentages, so each percent is 100
/// buckets and arms land on exact bucket boundaries.
pub const BUCKETS: u16 = 10_000;

/// The bucket (0 ≤ b < [`BUCKETS`]) of `key` in the split salted `salt`.
///
/// ```
/// // A commitment: in the seed policy's split (salted with its place in the
/// // policy), alice is in bucket 4814 forever.
/// assert_eq!(router_core::split_bucket("workload:content_summary", b"alice"), 4814);
/// ```
pub fn split_bucket(salt: &str, key: &[u8]) -> u16 {
    // Usual salts and keys fit a stack buffer, and one-shot xxh3 over it is
    // several times cheaper than setting up the streaming state. Longer
    // inputs stream the three parts, which hashes exactly the same bytes;
    // neither path allocates.
    const STACK: usize = 192;
    let (salt, len) = (salt.as_bytes(), salt.len() + 1 + key.len());
    let hash = if len <= STACK {
        let mut buf = [0u8; STACK];
        buf[..salt.len()].copy_from_slice(salt);
        buf[salt.len() + 1..len].copy_from_slice(key);
        xxhash_rust::xxh3::xxh3_64(&buf[..len])
    } else {
        let mut h = Xxh3::new();
        h.update(salt);
        h.update(&[0]);
        h.update(key);
        h.digest()
    };
    // 2^64 mod 10_000 = 1616, so the modulo bias is below 1e-15 per bucket.
    (hash % u64::from(BUCKETS)) as u16
}

/// One split of the route graph, seen as a picker: `pick(key) → arm`.
///
/// Arm `i` owns buckets `[sum of earlier weights × 100, + weight × 100)`, so a
/// weight-0 arm owns none and is never picked.
#[derive(Clone, Copy, Debug)]
pub struct Split<'a> {
    salt: &'a str,
    arms: &'a [(u32, NodeId)],
}

/// The arm a split picked and the bucket that decided it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitPick {
    /// Index of the chosen arm among the split's arms.
    pub arm: usize,
    /// The key's bucket, `0..BUCKETS`.
    pub bucket: u16,
}

impl<'a> Split<'a> {
    /// A picker over a split node's salt and `(weight, arm)` list.
    pub fn new(salt: &'a str, arms: &'a [(u32, NodeId)]) -> Self {
        Split { salt, arms }
    }

    /// The arm for `key`. Weights are percentages summing to 100 in checked
    /// policies; when they do not, buckets are scaled to the total so every
    /// bucket still lands in some positive-weight arm. `None` only when every
    /// weight is 0.
    pub fn pick(&self, key: &[u8]) -> Option<SplitPick> {
        let bucket = split_bucket(self.salt, key);
        self.arm_for_bucket(bucket).map(|arm| SplitPick { arm, bucket })
    }

    /// The arm owning `bucket`.
    pub fn arm_for_bucket(&self, bucket: u16) -> Option<usize> {
        let total: u64 = self.arms.iter().map(|(w, _)| u64::from(*w)).sum();
        if total == 0 {
            return None;
        }
        // Scale the bucket to a point in 0..total×100; with weights summing to
        // 100 the point is the bucket itself.
        let point = u64::from(bucket) * total / u64::from(BUCKETS / 100);
        let mut upper = 0u64;
        for (i, (w, _)) in self.arms.iter().enumerate() {
            upper += u64::from(*w) * 100;
            if point < upper {
                return Some(i);
            }
        }
        // Unreachable for total > 0: point < total × 100 = final upper.
        self.arms.iter().rposition(|(w, _)| *w > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Committed test vectors: (salt, key, xxh3-64 of `salt ‖ 0 ‖ key`,
    /// bucket). Cross-checked against the reference C implementation (Python's
    /// `xxhash.xxh3_64_intdigest`). These must never change.
    const VECTORS: &[(&str, &str, u64, u16)] = &[
        ("workload:content_summary", "alice", 0x969b_8677_36dc_134e, 4814),
        ("workload:content_summary", "bob", 0x21a1_72d8_c3b1_8bf8, 2728),
        ("workload:content_summary", "grace", 0x0095_cc6d_a440_2dfd, 8813),
        ("workload:content_summary", "zoe", 0x4ece_f9fa_44b5_5462, 8674),
        ("workload:content_summary", "", 0x4a4a_346b_8c72_48e5, 837),
        ("route:checkout/0", "user-42", 0xaff0_39fe_7a9d_cb10, 4144),
        ("content_summary", "alice", 0x517d_5a4a_a8b9_1802, 7154),
        ("", "", 0xc44b_dff4_074e_ecdb, 1883),
        ("summary_pool", "用户-7", 0xa7c9_8ff7_7917_209c, 60),
    ];

    #[test]
    fn buckets_match_the_committed_vectors() {
        for (salt, key, hash, bucket) in VECTORS {
            let mut whole = salt.as_bytes().to_vec();
            whole.push(0);
            whole.extend_from_slice(key.as_bytes());
            assert_eq!(xxhash_rust::xxh3::xxh3_64(&whole), *hash, "salt {salt:?} key {key:?}");
            assert_eq!(split_bucket(salt, key.as_bytes()), *bucket, "salt {salt:?} key {key:?}");
        }
    }

    #[test]
    fn long_inputs_stream_to_the_same_hash() {
        let salt = "route:".to_owned() + &"x".repeat(150);
        let key = vec![7u8; 100];
        let mut whole = salt.as_bytes().to_vec();
        whole.push(0);
        whole.extend_from_slice(&key);
        let expected = (xxhash_rust::xxh3::xxh3_64(&whole) % u64::from(BUCKETS)) as u16;
        assert_eq!(split_bucket(&salt, &key), expected);
        for cut in [0, 1, 40, 191, 192, 193] {
            let salt = "s".repeat(cut);
            let mut whole = salt.as_bytes().to_vec();
            whole.push(0);
            whole.extend_from_slice(b"k");
            let expected = (xxhash_rust::xxh3::xxh3_64(&whole) % u64::from(BUCKETS)) as u16;
            assert_eq!(split_bucket(&salt, b"k"), expected, "salt length {cut}");
        }
    }

    #[test]
    fn the_separator_keeps_salt_and_key_apart() {
        assert_ne!(split_bucket("ab", b"c"), split_bucket("a", b"bc"));
    }

    #[test]
    fn arms_own_contiguous_bucket_ranges() {
        let arms = [(80, NodeId(1)), (20, NodeId(2))];
        let s = Split::new("x", &arms);
        assert_eq!(s.arm_for_bucket(0), Some(0));
        assert_eq!(s.arm_for_bucket(7_999), Some(0));
        assert_eq!(s.arm_for_bucket(8_000), Some(1));
        assert_eq!(s.arm_for_bucket(9_999), Some(1));
    }

    #[test]
    fn weight_zero_arms_own_no_bucket() {
        let arms = [(0, NodeId(1)), (100, NodeId(2)), (0, NodeId(3))];
        let s = Split::new("x", &arms);
        for b in 0..BUCKETS {
            assert_eq!(s.arm_for_bucket(b), Some(1));
        }
        assert_eq!(Split::new("x", &[(0, NodeId(1))]).pick(b"k"), None);
    }

    #[test]
    fn weights_not_summing_to_100_still_cover_every_bucket() {
        let arms = [(1, NodeId(1)), (2, NodeId(2))];
        let s = Split::new("x", &arms);
        let firsts = (0..BUCKETS).filter(|b| s.arm_for_bucket(*b) == Some(0)).count();
        assert_eq!(firsts, 3_334);
    }
}
