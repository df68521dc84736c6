//! Whether the budget store answered the last time it was asked.
//!
//! Why: budgeted calls fail closed while the store is down, and each such
//! call says so in its own error, but an operator needs the transitions —
//! one log line when the store stops answering, one when it answers again —
//! and a gauge to alert on, not a flood of per-call errors to read.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::budget::error::{StoreError, StoreErrorKind};
use crate::metrics::Metrics;

/// The store's last known state, updated by every store operation.
#[derive(Debug)]
pub(crate) struct StoreHealth {
    up: AtomicBool,
    store: String,
    metrics: Option<Metrics>,
}

impl StoreHealth {
    /// Up until an operation fails; `store` is the store's description.
    pub(crate) fn new(store: String, metrics: Option<Metrics>) -> Self {
        if let Some(m) = &metrics {
            m.budget_store_up(true);
        }
        StoreHealth {
            up: AtomicBool::new(true),
            store,
            metrics,
        }
    }

    /// Whether the last store operation that could tell got an answer.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Notes what an operation's result says about the store, and passes
    /// the result on.
    pub(crate) fn observe<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        match &result {
            Ok(_) => {
                // A load first: the common case writes nothing shared.
                if !self.up.load(Ordering::Acquire) && !self.up.swap(true, Ordering::AcqRel) {
                    tracing::warn!(store = %self.store, "budget store answers again: budgeted calls go through");
                    if let Some(m) = &self.metrics {
                        m.budget_store_up(true);
                    }
                }
            }
            Err(e) => {
                if let Some(m) = &self.metrics {
                    m.budget_store_error(e.kind());
                }
                // A bad URL or an amount the store cannot hold is about one
                // request, not about whether the store answers.
                let down = matches!(
                    e.kind(),
                    StoreErrorKind::Unavailable | StoreErrorKind::Timeout | StoreErrorKind::Corrupt
                );
                if down && self.up.swap(false, Ordering::AcqRel) {
                    tracing::error!(
                        store = %self.store, error = %e,
                        "budget store not answering: budgeted calls fail closed until it does"
                    );
                    if let Some(m) = &self.metrics {
                        m.budget_store_up(false);
                    }
                }
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: StoreErrorKind) -> Result<(), StoreError> {
        Err(StoreError::new(kind, "redis://127.0.0.1:1", "connection refused"))
    }

    #[test]
    fn the_gauge_follows_the_store_and_errors_are_counted_by_kind() {
        let metrics = Metrics::new();
        let health = StoreHealth::new("redis://127.0.0.1:1".into(), Some(metrics.clone()));
        assert!(metrics.render().contains("routec_budget_store_up 1\n"));

        let _ = health.observe(err(StoreErrorKind::Unavailable));
        let _ = health.observe(err(StoreErrorKind::Timeout));
        assert!(!health.is_up());
        let text = metrics.render();
        assert!(text.contains("routec_budget_store_up 0\n"), "{text}");
        assert!(
            text.contains("routec_budget_store_errors_total{kind=\"unavailable\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("routec_budget_store_errors_total{kind=\"timeout\"} 1\n"),
            "{text}"
        );

        let _ = health.observe(Ok(()));
        assert!(health.is_up());
        assert!(metrics.render().contains("routec_budget_store_up 1\n"));
    }

    #[test]
    fn an_error_about_one_request_does_not_mark_the_store_down() {
        let health = StoreHealth::new("memory".into(), None);
        let _ = health.observe(err(StoreErrorKind::OutOfRange));
        assert!(health.is_up());
    }
}
