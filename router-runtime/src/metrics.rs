//! A small Prometheus registry for the router's own metrics.
//!
//! Why our own and not the `prometheus` or `metrics` crates: the set of
//! metrics is fixed and small, the text format is a page of code, and a
//! typed method per metric (`metrics.attempt(workload, target, outcome)`)
//! keeps label sets consistent and makes it hard to put anything but a
//! policy name into a label. Label values are only ever workload, target,
//! provider and limit names from the policy, outcome keywords and error
//! classes: **never an API key, header or request content.**
//!
//! Exposed series:
//! - `routec_requests_total{workload}`
//! - `routec_attempts_total{workload,target,outcome}`
//! - `routec_fallbacks_total{workload}`
//! - `routec_local_limit_skips_total{provider,limit}`
//! - `routec_stream_events_skipped_total{workload,target}`
//! - `routec_streams_continued_total{workload,target}`
//! - `routec_errors_total{class}`
//! - `routec_tokens_total{workload,direction}`
//! - `routec_cost_usd_total{workload}` (exact: counted in nano-dollars)
//! - `routec_budget_remaining{workload,limit}` (tokens, or dollars)
//! - `routec_budget_alerts_total{workload,limit}`
//! - `routec_budget_store_up` (1 while the budget store answers, 0 after
//!   an operation found it unreachable, until one succeeds)
//! - `routec_budget_store_errors_total{kind}`
//! - `routec_latency_seconds{workload,target}` histogram

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use router_core::Usd;

use crate::budget::error::StoreErrorKind;
use router_state::AttemptOutcome;
use router_state::LimitKind;
use router_state::LocalLimit;

/// Upper bounds of the latency histogram's buckets, in milliseconds.
pub const LATENCY_BUCKETS_MS: [u64; 12] = [
    25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000,
];

/// Which way tokens went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Prompt tokens sent.
    Input,
    /// Completion tokens received.
    Output,
}

impl Direction {
    const fn as_str(self) -> &'static str {
        match self {
            Direction::Input => "input",
            Direction::Output => "output",
        }
    }
}

/// How a value is printed.
#[derive(Clone, Copy, Debug)]
enum Scale {
    /// As is.
    Unit,
    /// Nano-units printed as units with nine decimals (exact dollars).
    Nano,
}

fn render_value(v: u64, scale: Scale) -> String {
    match scale {
        Scale::Unit => v.to_string(),
        Scale::Nano => format!("{}.{:09}", v / 1_000_000_000, v % 1_000_000_000),
    }
}

type Labels = Vec<String>;

/// One value per label set. Updated on every call, so a label set already
/// seen is found from borrowed `&str`s without allocating (a map keyed by
/// `Vec<String>` needs an owned key even to look up: ~17 allocations per
/// call across the router's metrics); sorted only when rendered.
#[derive(Debug)]
struct Series<V> {
    /// Label sets by their hash; a bucket holds more than one only on a
    /// hash collision.
    by_hash: HashMap<u64, Vec<(Labels, V)>>,
}

impl<V> Default for Series<V> {
    fn default() -> Self {
        Series {
            by_hash: HashMap::new(),
        }
    }
}

impl<V> Series<V> {
    fn hash(labels: &[&str]) -> u64 {
        // Fixed keys: label values are names from the policy, not input.
        let mut h = DefaultHasher::new();
        labels.hash(&mut h);
        h.finish()
    }

    /// The value for `labels`, made by `init` the first time.
    fn entry(&mut self, labels: &[&str], init: impl FnOnce() -> V) -> &mut V {
        let bucket = self.by_hash.entry(Self::hash(labels)).or_default();
        let at = bucket
            .iter()
            .position(|(k, _)| k.iter().map(String::as_str).eq(labels.iter().copied()));
        let at = at.unwrap_or_else(|| {
            bucket.push((labels.iter().map(|l| (*l).to_owned()).collect(), init()));
            bucket.len() - 1
        });
        &mut bucket[at].1
    }

    /// Every label set and its value, in label order (stable output).
    fn sorted(&self) -> Vec<&(Labels, V)> {
        let mut all: Vec<&(Labels, V)> = self.by_hash.values().flatten().collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

#[derive(Debug)]
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    labels: &'static [&'static str],
    values: Series<(u64, Scale)>,
}

impl Family {
    fn new(name: &'static str, help: &'static str, kind: &'static str, labels: &'static [&'static str]) -> Self {
        Family {
            name,
            help,
            kind,
            labels,
            values: Series::default(),
        }
    }

    fn add(&mut self, labels: &[&str], by: u64, scale: Scale) {
        let e = self.values.entry(labels, || (0, scale));
        e.0 = e.0.saturating_add(by);
    }

    fn set(&mut self, labels: &[&str], v: u64, scale: Scale) {
        *self.values.entry(labels, || (v, scale)) = (v, scale);
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        for (labels, (v, scale)) in self.values.sorted() {
            let _ = writeln!(
                out,
                "{}{} {}",
                self.name,
                label_text(self.labels, labels, None),
                render_value(*v, *scale)
            );
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Histo {
    buckets: [u64; LATENCY_BUCKETS_MS.len()],
    count: u64,
    sum_us: u64,
}

fn label_text(names: &[&str], values: &[String], le: Option<&str>) -> String {
    let mut parts: Vec<String> = names
        .iter()
        .zip(values)
        .map(|(n, v)| format!("{n}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[derive(Debug)]
struct Registry {
    requests: Family,
    attempts: Family,
    fallbacks: Family,
    local_limit_skips: Family,
    stream_events_skipped: Family,
    streams_continued: Family,
    errors: Family,
    tokens: Family,
    cost: Family,
    budget_remaining: Family,
    budget_alerts: Family,
    budget_store_up: Family,
    budget_store_errors: Family,
    shared_state_up: Family,
    shared_state_errors: Family,
    latency: Series<Histo>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            requests: Family::new(
                "routec_requests_total",
                "Calls received, per workload.",
                "counter",
                &["workload"],
            ),
            attempts: Family::new(
                "routec_attempts_total",
                "Upstream attempts, per workload, target and outcome.",
                "counter",
                &["workload", "target", "outcome"],
            ),
            fallbacks: Family::new(
                "routec_fallbacks_total",
                "Times a call moved on to its next candidate.",
                "counter",
                &["workload"],
            ),
            local_limit_skips: Family::new(
                "routec_local_limit_skips_total",
                "Attempts skipped because their provider was at one of its limits (concurrency, rpm, tpm).",
                "counter",
                &["provider", "limit"],
            ),
            stream_events_skipped: Family::new(
                "routec_stream_events_skipped_total",
                "Malformed upstream stream events skipped in streams that still completed.",
                "counter",
                &["workload", "target"],
            ),
            streams_continued: Family::new(
                "routec_streams_continued_total",
                "Broken streams continued by another target (`stream_recovery continue`), per continuing target.",
                "counter",
                &["workload", "target"],
            ),
            errors: Family::new(
                "routec_errors_total",
                "Calls that failed, per error class.",
                "counter",
                &["class"],
            ),
            tokens: Family::new(
                "routec_tokens_total",
                "Tokens used, per workload and direction.",
                "counter",
                &["workload", "direction"],
            ),
            cost: Family::new(
                "routec_cost_usd_total",
                "Dollars spent, per workload.",
                "counter",
                &["workload"],
            ),
            budget_remaining: Family::new(
                "routec_budget_remaining",
                "What a workload may still reserve this period (tokens, or dollars).",
                "gauge",
                &["workload", "limit"],
            ),
            budget_alerts: Family::new(
                "routec_budget_alerts_total",
                "Budget alerts fired (once per limit and period).",
                "counter",
                &["workload", "limit"],
            ),
            budget_store_up: Family::new(
                "routec_budget_store_up",
                "1 while the budget store answers; 0 from a failed operation until one succeeds.",
                "gauge",
                &[],
            ),
            budget_store_errors: Family::new(
                "routec_budget_store_errors_total",
                "Budget store operations that failed, per kind (unavailable, timeout, corrupt, ...).",
                "counter",
                &["kind"],
            ),
            shared_state_up: Family::new(
                "routec_shared_state_up",
                "1 while the Redis of shared provider limits and cool-downs answers; 0 while limits fall back to this instance's share.",
                "gauge",
                &[],
            ),
            shared_state_errors: Family::new(
                "routec_shared_state_errors_total",
                "Shared provider state operations that failed, per kind (unavailable, timeout, corrupt).",
                "counter",
                &["kind"],
            ),
            latency: Series::default(),
        }
    }
}

/// The router's metrics. Cheap to clone; clones share one registry.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    inner: Arc<Mutex<Registry>>,
}

impl Metrics {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn reg(&self) -> MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A call arrived for `workload`.
    pub fn request(&self, workload: &str) {
        self.reg().requests.add(&[workload], 1, Scale::Unit);
    }

    /// An attempt at `target` (written `provider/model`) ended so.
    pub fn attempt(&self, workload: &str, target: &str, outcome: AttemptOutcome) {
        self.reg()
            .attempts
            .add(&[workload, target, outcome.as_str()], 1, Scale::Unit);
    }

    /// A call of `workload` fell through to its next candidate.
    pub fn fallback(&self, workload: &str) {
        self.reg().fallbacks.add(&[workload], 1, Scale::Unit);
    }

    /// An attempt skipped `provider` (its policy name) because it was at
    /// its `limit`.
    pub fn local_limit_skip(&self, provider: &str, limit: &LocalLimit) {
        self.reg()
            .local_limit_skips
            .add(&[provider, limit.keyword()], 1, Scale::Unit);
    }

    /// A stream to `target` completed after skipping `n` malformed events.
    pub fn stream_events_skipped(&self, workload: &str, target: &str, n: u32) {
        self.reg()
            .stream_events_skipped
            .add(&[workload, target], u64::from(n), Scale::Unit);
    }

    /// A broken stream of `workload` was continued by `target`.
    pub fn stream_continued(&self, workload: &str, target: &str) {
        self.reg().streams_continued.add(&[workload, target], 1, Scale::Unit);
    }

    /// A call failed with an error of `class` (a stable error code such as
    /// `budget_halted` or `fallback_exhausted`).
    pub fn error(&self, class: &str) {
        self.reg().errors.add(&[class], 1, Scale::Unit);
    }

    /// `n` tokens went `direction` for `workload`.
    pub fn tokens(&self, workload: &str, direction: Direction, n: u64) {
        self.reg().tokens.add(&[workload, direction.as_str()], n, Scale::Unit);
    }

    /// `workload` spent `usd`.
    pub fn cost(&self, workload: &str, usd: Usd) {
        self.reg().cost.add(&[workload], usd.nanos(), Scale::Nano);
    }

    /// What `workload` may still reserve on `limit` (tokens, or nano-dollars).
    pub fn budget_remaining(&self, workload: &str, limit: LimitKind, remaining: u64) {
        let scale = if limit.is_usd() { Scale::Nano } else { Scale::Unit };
        self.reg()
            .budget_remaining
            .set(&[workload, limit.as_str()], remaining, scale);
    }

    /// The alert of `workload`'s `limit` fired.
    pub fn budget_alert(&self, workload: &str, limit: LimitKind) {
        self.reg()
            .budget_alerts
            .add(&[workload, limit.as_str()], 1, Scale::Unit);
    }

    /// Whether the budget store answers.
    pub fn budget_store_up(&self, up: bool) {
        self.reg().budget_store_up.set(&[], u64::from(up), Scale::Unit);
    }

    /// A budget store operation failed so.
    pub fn budget_store_error(&self, kind: StoreErrorKind) {
        self.reg().budget_store_errors.add(&[kind.as_str()], 1, Scale::Unit);
    }

    /// Whether the shared provider state answers.
    pub fn shared_state_up(&self, up: bool) {
        self.reg().shared_state_up.set(&[], u64::from(up), Scale::Unit);
    }

    /// A shared provider state operation failed so.
    pub fn shared_state_error(&self, kind: StoreErrorKind) {
        self.reg().shared_state_errors.add(&[kind.as_str()], 1, Scale::Unit);
    }

    /// An attempt at `target` for `workload` took `elapsed`.
    pub fn latency(&self, workload: &str, target: &str, elapsed: Duration) {
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let mut reg = self.reg();
        let h = reg.latency.entry(&[workload, target], Histo::default);
        if let Some(i) = LATENCY_BUCKETS_MS.iter().position(|b| ms <= *b) {
            h.buckets[i] += 1;
        }
        h.count += 1;
        h.sum_us = h.sum_us.saturating_add(us);
    }

    /// The registry in Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let reg = self.reg();
        let mut out = String::new();
        for f in [
            &reg.requests,
            &reg.attempts,
            &reg.fallbacks,
            &reg.local_limit_skips,
            &reg.stream_events_skipped,
            &reg.streams_continued,
            &reg.errors,
            &reg.tokens,
            &reg.cost,
            &reg.budget_remaining,
            &reg.budget_alerts,
            &reg.budget_store_up,
            &reg.budget_store_errors,
            &reg.shared_state_up,
            &reg.shared_state_errors,
        ] {
            f.render(&mut out);
        }
        let name = "routec_latency_seconds";
        let _ = writeln!(out, "# HELP {name} Attempt latency, per workload and target.");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let names = ["workload", "target"];
        for (labels, h) in reg.latency.sorted() {
            let mut cum = 0;
            for (b, n) in LATENCY_BUCKETS_MS.iter().zip(h.buckets) {
                cum += n;
                let le = render_value(*b * 1_000_000, Scale::Nano);
                let le = le.trim_end_matches('0').trim_end_matches('.');
                let _ = writeln!(out, "{name}_bucket{} {cum}", label_text(&names, labels, Some(le)));
            }
            let _ = writeln!(
                out,
                "{name}_bucket{} {}",
                label_text(&names, labels, Some("+Inf")),
                h.count
            );
            let sum = format!("{}.{:06}", h.sum_us / 1_000_000, h.sum_us % 1_000_000);
            let _ = writeln!(out, "{name}_sum{} {sum}", label_text(&names, labels, None));
            let _ = writeln!(out, "{name}_count{} {}", label_text(&names, labels, None), h.count);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new();
        m.request("content_summary");
        m.request("content_summary");
        m.attempt(
            "content_summary",
            "cerebras/llama",
            AttemptOutcome::RateLimited { retry_after: None },
        );
        m.cost("content_summary", Usd::from_nanos(1_500_000_001));
        m.tokens("content_summary", Direction::Output, 42);
        m.budget_remaining("content_summary", LimitKind::UsdPerDay, 250_000_000);
        m.budget_remaining("content_summary", LimitKind::TokensPerDay, 900);
        m.latency("content_summary", "cerebras/llama", Duration::from_millis(420));
        m.latency("content_summary", "cerebras/llama", Duration::from_secs(500));
        let text = m.render();
        for line in [
            "# TYPE routec_requests_total counter",
            "routec_requests_total{workload=\"content_summary\"} 2",
            "routec_attempts_total{workload=\"content_summary\",target=\"cerebras/llama\",outcome=\"rate_limited\"} 1",
            "routec_cost_usd_total{workload=\"content_summary\"} 1.500000001",
            "routec_tokens_total{workload=\"content_summary\",direction=\"output\"} 42",
            "routec_budget_remaining{workload=\"content_summary\",limit=\"usd_per_day\"} 0.250000000",
            "routec_budget_remaining{workload=\"content_summary\",limit=\"tokens_per_day\"} 900",
            "routec_latency_seconds_bucket{workload=\"content_summary\",target=\"cerebras/llama\",le=\"0.25\"} 0",
            "routec_latency_seconds_bucket{workload=\"content_summary\",target=\"cerebras/llama\",le=\"0.5\"} 1",
            "routec_latency_seconds_bucket{workload=\"content_summary\",target=\"cerebras/llama\",le=\"120\"} 1",
            "routec_latency_seconds_bucket{workload=\"content_summary\",target=\"cerebras/llama\",le=\"+Inf\"} 2",
            "routec_latency_seconds_sum{workload=\"content_summary\",target=\"cerebras/llama\"} 500.420000",
            "routec_latency_seconds_count{workload=\"content_summary\",target=\"cerebras/llama\"} 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn each_label_set_is_its_own_series_and_output_is_sorted() {
        let m = Metrics::new();
        for w in ["b", "a", "b", "c", "b"] {
            m.request(w);
        }
        // Same values in another order are another series.
        m.tokens("x", Direction::Input, 1);
        m.attempt("w", "p/m", AttemptOutcome::Success);
        m.attempt("w", "p/m", AttemptOutcome::Success);
        m.attempt("p/m", "w", AttemptOutcome::Success);
        let text = m.render();
        let requests: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("routec_requests_total{"))
            .collect();
        assert_eq!(
            requests,
            [
                "routec_requests_total{workload=\"a\"} 1",
                "routec_requests_total{workload=\"b\"} 3",
                "routec_requests_total{workload=\"c\"} 1",
            ]
        );
        assert!(text.contains("routec_attempts_total{workload=\"w\",target=\"p/m\",outcome=\"success\"} 2"));
        assert!(text.contains("routec_attempts_total{workload=\"p/m\",target=\"w\",outcome=\"success\"} 1"));
        // A gauge keeps the last value set.
        m.budget_remaining("a", LimitKind::TokensPerDay, 10);
        m.budget_remaining("a", LimitKind::TokensPerDay, 7);
        assert!(
            m.render()
                .contains("routec_budget_remaining{workload=\"a\",limit=\"tokens_per_day\"} 7\n")
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.error("a\"b\\c\nd");
        assert!(m.render().contains(r#"routec_errors_total{class="a\"b\\c\nd"} 1"#));
    }
}
