//! Running totals of one simulation, kept per workload, per target and per
//! time bucket, so memory stays the same for ten requests or ten million.

use hdrhistogram::Histogram;
use router_core::Usd;

/// Latencies are held to two significant figures from 1 ms to an hour.
const MAX_MS: u64 = 3_600_000;

/// Time buckets of the cost chart before they are merged pairwise.
const MAX_BUCKETS: usize = 2_048;

/// A whole-run latency histogram.
#[derive(Debug, Clone)]
pub(crate) struct Latencies(Option<Histogram<u64>>);

impl Latencies {
    pub(crate) fn new() -> Self {
        Latencies(Histogram::new_with_bounds(1, MAX_MS, 2).ok())
    }

    pub(crate) fn record(&mut self, ms: u64) {
        if let Some(h) = &mut self.0 {
            h.saturating_record(ms.clamp(1, MAX_MS));
        }
    }

    /// Adds another histogram's samples.
    pub(crate) fn merge(&mut self, other: &Latencies) {
        if let (Some(h), Some(o)) = (&mut self.0, &other.0) {
            // Same bounds on both sides, so adding cannot fail.
            let _ = h.add(o);
        }
    }

    /// The `q` quantile in whole milliseconds; `None` with no samples.
    pub(crate) fn quantile(&self, q: f64) -> Option<u64> {
        self.0
            .as_ref()
            .filter(|h| !h.is_empty())
            .map(|h| h.value_at_quantile(q))
    }
}

/// How a call ended, for the per-workload counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// An answer was delivered (and passed its quality check, if any).
    Served,
    /// Every attempt failed, or one failed in a way the chain does not
    /// advance on, or the deadline passed, or every answer failed its check.
    Failed,
    /// The budget refused the call (engine refusal or reservation refused).
    BudgetHalted,
    /// The engine refused the call for another reason (data class, no
    /// eligible target, every target unhealthy).
    Refused,
}

/// Totals of one workload.
#[derive(Debug, Clone)]
pub(crate) struct WorkloadStats {
    pub requests: u64,
    pub served: u64,
    pub failed: u64,
    pub budget_halts: u64,
    pub refused: u64,
    pub fallbacks: u64,
    pub escalations: u64,
    pub retries: u64,
    pub raised_class: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost: Usd,
    pub baseline_cost: Usd,
    pub pii_violations: u64,
    pub first_halt_ms: Option<u64>,
    pub latency: Latencies,
}

impl WorkloadStats {
    pub(crate) fn new() -> Self {
        WorkloadStats {
            requests: 0,
            served: 0,
            failed: 0,
            budget_halts: 0,
            refused: 0,
            fallbacks: 0,
            escalations: 0,
            retries: 0,
            raised_class: 0,
            input_tokens: 0,
            output_tokens: 0,
            cost: Usd::ZERO,
            baseline_cost: Usd::ZERO,
            pii_violations: 0,
            first_halt_ms: None,
            latency: Latencies::new(),
        }
    }

    pub(crate) fn end(&mut self, ending: Ending) {
        match ending {
            Ending::Served => self.served += 1,
            Ending::Failed => self.failed += 1,
            Ending::BudgetHalted => self.budget_halts += 1,
            Ending::Refused => self.refused += 1,
        }
    }
}

/// Totals of one target.
#[derive(Debug, Clone)]
pub(crate) struct TargetStats {
    pub dispatches: u64,
    pub answered: u64,
    pub rate_limited: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub check_failed: u64,
    pub skipped_unhealthy: u64,
    pub skipped_limit: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost: Usd,
    pub latency: Latencies,
}

impl TargetStats {
    pub(crate) fn new() -> Self {
        TargetStats {
            dispatches: 0,
            answered: 0,
            rate_limited: 0,
            errors: 0,
            timeouts: 0,
            check_failed: 0,
            skipped_unhealthy: 0,
            skipped_limit: 0,
            input_tokens: 0,
            output_tokens: 0,
            cost: Usd::ZERO,
            latency: Latencies::new(),
        }
    }
}

/// Cost per provider per time bucket, for the chart. Buckets start at the
/// hour of the first request and are an hour wide until there would be
/// more than [`MAX_BUCKETS`]; then neighbours merge and the width doubles.
#[derive(Debug, Clone)]
pub(crate) struct CostSeries {
    pub origin_ms: Option<u64>,
    pub bucket_ms: u64,
    pub providers: usize,
    /// `buckets[i][provider]`, nano-dollars.
    pub buckets: Vec<Vec<u64>>,
}

impl CostSeries {
    pub(crate) fn new(providers: usize) -> Self {
        CostSeries {
            origin_ms: None,
            bucket_ms: 3_600_000,
            providers,
            buckets: Vec::new(),
        }
    }

    /// Sets the origin from the first request's time (floored to the hour).
    pub(crate) fn start(&mut self, ts_ms: u64) {
        if self.origin_ms.is_none() {
            self.origin_ms = Some(ts_ms - ts_ms % 3_600_000);
        }
    }

    pub(crate) fn add(&mut self, at_ms: u64, provider: usize, cost: Usd) {
        let origin = *self.origin_ms.get_or_insert(at_ms - at_ms % 3_600_000);
        let mut i = (at_ms.saturating_sub(origin) / self.bucket_ms) as usize;
        while i >= MAX_BUCKETS {
            self.coarsen();
            i = (at_ms.saturating_sub(origin) / self.bucket_ms) as usize;
        }
        if self.buckets.len() <= i {
            self.buckets.resize(i + 1, vec![0; self.providers]);
        }
        if let Some(slot) = self.buckets[i].get_mut(provider) {
            *slot = slot.saturating_add(cost.nanos());
        }
    }

    fn coarsen(&mut self) {
        self.bucket_ms *= 2;
        let merged = self
            .buckets
            .chunks(2)
            .map(|pair| {
                let mut sum = vec![0u64; self.providers];
                for b in pair {
                    for (s, v) in sum.iter_mut().zip(b) {
                        *s = s.saturating_add(*v);
                    }
                }
                sum
            })
            .collect();
        self.buckets = merged;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_recorded_latencies() {
        let mut l = Latencies::new();
        assert_eq!(l.quantile(0.5), None);
        for ms in 1..=100 {
            l.record(ms * 10);
        }
        let p50 = l.quantile(0.5).unwrap();
        assert!((495..=505).contains(&p50), "{p50}");
    }

    #[test]
    fn cost_buckets_coarsen_instead_of_growing_without_bound() {
        let mut s = CostSeries::new(1);
        s.start(0);
        s.add(0, 0, Usd::from_nanos(1));
        s.add(3_600_000 * 5_000, 0, Usd::from_nanos(2));
        assert!(s.buckets.len() <= MAX_BUCKETS);
        assert_eq!(s.bucket_ms, 3_600_000 * 4);
        let total: u64 = s.buckets.iter().flatten().sum();
        assert_eq!(total, 3);
    }
}
