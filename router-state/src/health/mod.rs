//! Target health: outlier ejection (a circuit breaker per target) and
//! provider cool-downs after 429s.
//!
//! Why: a failing target costs every call that tries it a timeout or an
//! error before falling through, and a rate-limited provider answers 429
//! to every model it serves. Ejecting a target after consecutive failures,
//! and cooling a whole provider down for its `Retry-After`, lets the next
//! candidate be tried at once instead.
//!
//! The book is a synchronous state machine that takes `now` as an argument,
//! so the router (real clock) and `routec simulate` (virtual clock) share it.
//!
//! - **Ejection.** [`HealthConfig::failure_threshold`] consecutive counted
//!   failures (server errors, overloaded, timeouts, connection errors —
//!   see [`AttemptOutcome::counts_against_health`]) eject the target for
//!   `base × 2^n` (n = ejections since it last recovered), capped at
//!   [`HealthConfig::max_ejection`]. Any answer from a live server (a
//!   success, a 4xx, a 429) resets the count.
//! - **Half-open.** When the ejection ends, one call is let through as a
//!   probe ([`Admission::Probe`]); others are refused until it reports.
//!   A probe that answers closes the breaker and resets n; a probe that
//!   fails re-ejects for longer. A probe that never reports (its caller was
//!   cancelled) is presumed lost after [`HealthConfig::probe_timeout`].
//! - **Cool-down.** A 429 cools the model that answered it down for its
//!   `Retry-After` (default [`HealthConfig::default_retry_after`], capped
//!   at [`HealthConfig::max_retry_after`]), or the whole provider when
//!   the policy says `cooldown per_provider`; a later, shorter 429 does not
//!   shorten it. Per model by default: OpenAI, Anthropic and Gemini count
//!   rate limits per model, so a 429 on one model says nothing of the rest.
//! - **Per provider.** The policy's `breaker` and `cooldown` settings (the
//!   provider's, else `defaults`) override the book's [`HealthConfig`].
//! - **Client errors** (4xx other than 429, context length) never count.

mod retry_after;

use std::time::Duration;

use router_core::{BreakerSettings, CooldownScope, Policy, ProviderId, StateSnapshot, TargetId, Trigger};

use crate::clock::Millis;

pub use retry_after::parse_retry_after;

/// How one attempt ended, as far as health, latency and metrics care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The target answered successfully.
    Success,
    /// HTTP 429, with the `Retry-After` the provider gave, if any.
    RateLimited {
        /// The parsed `Retry-After` (see [`parse_retry_after`]).
        retry_after: Option<Duration>,
    },
    /// HTTP 503 / 529.
    Overloaded,
    /// Any other 5xx.
    ServerError,
    /// The attempt ran past its timeout.
    Timeout,
    /// The connection could not be made or broke.
    ConnectionError,
    /// The request does not fit the model's context window.
    ContextLength,
    /// Another 4xx: the request was wrong, not the target.
    ClientError,
}

impl AttemptOutcome {
    /// The keyword used in metrics and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Success => "success",
            AttemptOutcome::RateLimited { .. } => "rate_limited",
            AttemptOutcome::Overloaded => "overloaded",
            AttemptOutcome::ServerError => "server_error",
            AttemptOutcome::Timeout => "timeout",
            AttemptOutcome::ConnectionError => "connection_error",
            AttemptOutcome::ContextLength => "context_length",
            AttemptOutcome::ClientError => "client_error",
        }
    }

    /// Whether it counts toward ejecting the target: the failures a plan's
    /// triggers count as the target's fault. 429s cool the provider down
    /// instead; client errors are the caller's fault.
    pub const fn counts_against_health(self) -> bool {
        match self {
            AttemptOutcome::Overloaded
            | AttemptOutcome::ServerError
            | AttemptOutcome::Timeout
            | AttemptOutcome::ConnectionError => true,
            AttemptOutcome::Success
            | AttemptOutcome::RateLimited { .. }
            | AttemptOutcome::ContextLength
            | AttemptOutcome::ClientError => false,
        }
    }

    /// The policy trigger this outcome is, if any (what a fallback chain
    /// advances on).
    pub const fn trigger(self) -> Option<Trigger> {
        match self {
            AttemptOutcome::Success | AttemptOutcome::ClientError => None,
            AttemptOutcome::RateLimited { .. } => Some(Trigger::RateLimited),
            AttemptOutcome::Overloaded => Some(Trigger::Overloaded),
            AttemptOutcome::ServerError => Some(Trigger::ServerError),
            AttemptOutcome::Timeout => Some(Trigger::Timeout),
            AttemptOutcome::ConnectionError => Some(Trigger::ConnectionError),
            AttemptOutcome::ContextLength => Some(Trigger::ContextLength),
        }
    }
}

/// Tuning of the health book.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthConfig {
    /// Whether the breaker ejects targets at all (off: failures still fall
    /// through, but a failing target keeps being tried).
    pub breaker: bool,
    /// Consecutive counted failures that eject a target.
    pub failure_threshold: u32,
    /// The first ejection's length; each further one doubles.
    pub base_ejection: Duration,
    /// The longest ejection.
    pub max_ejection: Duration,
    /// How long a half-open probe may go unreported before another is allowed.
    pub probe_timeout: Duration,
    /// Cool-down after a 429 without a usable `Retry-After`.
    pub default_retry_after: Duration,
    /// The longest cool-down a `Retry-After` can ask for.
    pub max_retry_after: Duration,
}

impl HealthConfig {
    /// This config with a policy's `breaker` settings applied.
    #[must_use]
    pub fn with(self, b: BreakerSettings) -> HealthConfig {
        HealthConfig {
            breaker: b.enabled.unwrap_or(self.breaker),
            failure_threshold: b.failures.unwrap_or(self.failure_threshold),
            base_ejection: b.eject.unwrap_or(self.base_ejection),
            max_ejection: b.max_eject.unwrap_or(self.max_ejection),
            ..self
        }
    }
}

impl Default for HealthConfig {
    fn default() -> Self {
        // Ejections stay short: a provider that recovers should serve again
        // within half a minute, and a failed half-open probe never pushes
        // the next one past `max_ejection`. Long ejections kept users on
        // fallback prices long after an outage ended.
        HealthConfig {
            breaker: true,
            failure_threshold: 5,
            base_ejection: Duration::from_secs(5),
            max_ejection: Duration::from_secs(20),
            probe_timeout: Duration::from_secs(60),
            default_retry_after: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(300),
        }
    }
}

/// A target's breaker, as [`HealthBook::breaker`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow; `failures` consecutive counted failures so far.
    Closed {
        /// Consecutive counted failures.
        failures: u32,
    },
    /// Ejected until `until`.
    Ejected {
        /// When the ejection ends.
        until: Millis,
    },
    /// The ejection ended; one probe may go (or is in flight).
    HalfOpen {
        /// When the probe in flight started, if one is.
        probe_started: Option<Millis>,
    },
}

/// Whether a call may go to a target now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead.
    Allowed,
    /// Go ahead as the half-open probe: report the outcome with
    /// [`HealthBook::record`] (a lost probe blocks others for the probe timeout).
    Probe,
    /// The target is ejected (or its probe is in flight) until then.
    Ejected {
        /// When it may be tried again.
        until: Millis,
    },
    /// The provider is cooling down until then.
    CoolingDown {
        /// When the cool-down ends.
        until: Millis,
    },
}

/// A cool-down or ejection that another router instance saw, learnt
/// through a shared store and written into this book with
/// [`HealthBook::adopt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerReport {
    /// The target's provider cools down after a 429.
    ProviderCoolingDown,
    /// The target's model cools down after a 429.
    ModelCoolingDown,
    /// The target's breaker ejected it.
    Ejected,
}

/// What a recorded outcome changed, for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthChange {
    /// Nothing worth reporting.
    None,
    /// The target was ejected until then.
    Ejected {
        /// When the ejection ends.
        until: Millis,
    },
    /// The half-open probe answered: the target is back.
    Recovered,
    /// The target's provider cools down until then.
    CoolingDown {
        /// The provider.
        provider: ProviderId,
        /// When the cool-down ends.
        until: Millis,
    },
    /// The target alone (its model) cools down until then.
    ModelCoolingDown {
        /// When the cool-down ends.
        until: Millis,
    },
}

#[derive(Clone, Copy, Debug)]
struct TargetHealth {
    state: BreakerState,
    /// Ejections since the target last recovered (the backoff exponent).
    ejections: u32,
}

impl Default for TargetHealth {
    fn default() -> Self {
        TargetHealth {
            state: BreakerState::Closed { failures: 0 },
            ejections: 0,
        }
    }
}

/// Breakers per target and cool-downs per provider for one policy.
#[derive(Clone, Debug)]
pub struct HealthBook {
    config: HealthConfig,
    /// Per provider: the book's config with the policy's settings applied.
    configs: Vec<HealthConfig>,
    scopes: Vec<CooldownScope>,
    targets: Vec<TargetHealth>,
    provider_of: Vec<ProviderId>,
    cooling_until: Vec<Millis>,
    target_cooling_until: Vec<Millis>,
}

impl HealthBook {
    /// A book where every target of `policy` is healthy.
    pub fn new(policy: &Policy, config: HealthConfig) -> Self {
        let settings = |p: &router_core::Provider| p.failure.or(policy.defaults.failure);
        HealthBook {
            config,
            configs: policy
                .providers
                .iter()
                .map(|p| config.with(settings(p).breaker))
                .collect(),
            scopes: policy
                .providers
                .iter()
                .map(|p| settings(p).cooldown.unwrap_or(CooldownScope::PerModel))
                .collect(),
            targets: vec![TargetHealth::default(); policy.targets.len()],
            provider_of: policy.targets.iter().map(|t| t.provider).collect(),
            cooling_until: vec![Millis::ZERO; policy.providers.len()],
            target_cooling_until: vec![Millis::ZERO; policy.targets.len()],
        }
    }

    /// The configuration that applies to `target` (its provider's).
    fn config_of(&self, target: TargetId) -> HealthConfig {
        self.provider(target)
            .and_then(|p| self.configs.get(p.0 as usize))
            .copied()
            .unwrap_or(self.config)
    }

    /// The configuration.
    pub fn config(&self) -> &HealthConfig {
        &self.config
    }

    /// Whether a call may go to `target` now. Takes the half-open probe
    /// slot when it returns [`Admission::Probe`]. Unknown ids are allowed.
    pub fn admit(&mut self, target: TargetId, now: Millis) -> Admission {
        if let Some(until) = self.cooling_until(self.provider(target), now) {
            return Admission::CoolingDown { until };
        }
        if let Some(until) = self.model_cooling_until(target, now) {
            return Admission::CoolingDown { until };
        }
        let probe_timeout = self.config_of(target).probe_timeout;
        let Some(t) = self.targets.get_mut(target.0 as usize) else {
            return Admission::Allowed;
        };
        if let BreakerState::Ejected { until } = t.state {
            if now < until {
                return Admission::Ejected { until };
            }
            t.state = BreakerState::HalfOpen { probe_started: None };
        }
        match t.state {
            BreakerState::Closed { .. } => Admission::Allowed,
            BreakerState::HalfOpen {
                probe_started: Some(started),
            } if now < started.after(probe_timeout) => Admission::Ejected {
                until: started.after(probe_timeout),
            },
            BreakerState::HalfOpen { .. } | BreakerState::Ejected { .. } => {
                t.state = BreakerState::HalfOpen {
                    probe_started: Some(now),
                };
                Admission::Probe
            }
        }
    }

    /// Records how an attempt at `target` ended.
    pub fn record(&mut self, target: TargetId, outcome: AttemptOutcome, now: Millis) -> HealthChange {
        let provider = self.provider(target);
        let config = self.config_of(target);
        let mut change = HealthChange::None;
        if let AttemptOutcome::RateLimited { retry_after } = outcome {
            let wait = retry_after
                .unwrap_or(config.default_retry_after)
                .min(config.max_retry_after);
            let until = now.after(wait);
            let scope = provider.and_then(|p| self.scopes.get(p.0 as usize)).copied();
            match scope {
                Some(CooldownScope::PerProvider) => {
                    if let (Some(p), Some(slot)) = (
                        provider,
                        provider.and_then(|p| self.cooling_until.get_mut(p.0 as usize)),
                    ) && until > *slot
                    {
                        *slot = until;
                        change = HealthChange::CoolingDown { provider: p, until };
                    }
                }
                Some(CooldownScope::PerModel) | None => {
                    if let Some(slot) = self.target_cooling_until.get_mut(target.0 as usize)
                        && until > *slot
                    {
                        *slot = until;
                        change = HealthChange::ModelCoolingDown { until };
                    }
                }
            }
        }
        let Some(t) = self.targets.get_mut(target.0 as usize) else {
            return change;
        };
        let counts = outcome.counts_against_health() && config.breaker;
        match (t.state, counts) {
            (BreakerState::Closed { failures }, true) => {
                let failures = failures.saturating_add(1);
                if failures >= config.failure_threshold {
                    let until = now.after(ejection(&config, t.ejections));
                    t.ejections = t.ejections.saturating_add(1);
                    t.state = BreakerState::Ejected { until };
                    change = HealthChange::Ejected { until };
                } else {
                    t.state = BreakerState::Closed { failures };
                }
            }
            (BreakerState::Closed { .. }, false) => t.state = BreakerState::Closed { failures: 0 },
            (BreakerState::HalfOpen { .. }, true) => {
                let until = now.after(ejection(&config, t.ejections));
                t.ejections = t.ejections.saturating_add(1);
                t.state = BreakerState::Ejected { until };
                change = HealthChange::Ejected { until };
            }
            (BreakerState::HalfOpen { .. }, false) => {
                if let AttemptOutcome::RateLimited { .. } = outcome {
                    // Alive but busy: free the probe slot; the next call after
                    // the cool-down probes again.
                    t.state = BreakerState::HalfOpen { probe_started: None };
                } else {
                    t.state = BreakerState::Closed { failures: 0 };
                    t.ejections = 0;
                    change = HealthChange::Recovered;
                }
            }
            // A straggler admitted before the ejection reports late: the
            // ejection stands either way.
            (BreakerState::Ejected { .. }, true | false) => {}
        }
        change
    }

    /// Writes what a peer saw into this book, so local admissions, the
    /// decision snapshot and `explain` see it too: a cool-down is extended
    /// to `until`; an ejection closes a closed breaker until `until`
    /// without raising the ejection backoff (the peer counted it). A
    /// half-open breaker is left to its own probe.
    pub fn adopt(&mut self, target: TargetId, report: PeerReport, until: Millis) {
        match report {
            PeerReport::ProviderCoolingDown => {
                if let Some(slot) = self
                    .provider(target)
                    .and_then(|p| self.cooling_until.get_mut(p.0 as usize))
                {
                    *slot = (*slot).max(until);
                }
            }
            PeerReport::ModelCoolingDown => {
                if let Some(slot) = self.target_cooling_until.get_mut(target.0 as usize) {
                    *slot = (*slot).max(until);
                }
            }
            PeerReport::Ejected => {
                if let Some(t) = self.targets.get_mut(target.0 as usize)
                    && let BreakerState::Closed { .. } = t.state
                {
                    t.state = BreakerState::Ejected { until };
                }
            }
        }
    }

    /// The breaker of `target` as of `now`.
    pub fn breaker(&self, target: TargetId, now: Millis) -> BreakerState {
        match self.targets.get(target.0 as usize).map(|t| t.state) {
            None => BreakerState::Closed { failures: 0 },
            Some(BreakerState::Ejected { until }) if now >= until => BreakerState::HalfOpen { probe_started: None },
            Some(s) => s,
        }
    }

    /// Until when `target` is out of rotation, if it is: ejected, or its
    /// half-open probe is in flight.
    pub fn ejected_until(&self, target: TargetId, now: Millis) -> Option<Millis> {
        match self.breaker(target, now) {
            BreakerState::Ejected { until } => Some(until),
            BreakerState::HalfOpen {
                probe_started: Some(started),
            } => Some(started.after(self.config_of(target).probe_timeout)).filter(|u| *u > now),
            BreakerState::HalfOpen { probe_started: None } | BreakerState::Closed { .. } => None,
        }
    }

    /// Until when `provider` cools down, if it does.
    pub fn cooling_until(&self, provider: Option<ProviderId>, now: Millis) -> Option<Millis> {
        let until = *self.cooling_until.get(provider?.0 as usize)?;
        (until > now).then_some(until)
    }

    /// Until when `target`'s own model cools down, if it does.
    pub fn model_cooling_until(&self, target: TargetId, now: Millis) -> Option<Millis> {
        let until = *self.target_cooling_until.get(target.0 as usize)?;
        (until > now).then_some(until)
    }

    /// Writes ejections and cool-downs into the decision engine's snapshot.
    pub fn fill_snapshot(&self, snap: &mut StateSnapshot, now: Millis) {
        for i in 0..self.targets.len() {
            let id = TargetId(i as u32);
            let t = snap.target_mut(id);
            t.ejected_until_ms = self.ejected_until(id, now).map(Millis::as_u64);
            t.cooling_until_ms = self.model_cooling_until(id, now).map(Millis::as_u64);
        }
        for i in 0..self.cooling_until.len() {
            let id = ProviderId(i as u32);
            snap.provider_mut(id).cooling_until_ms = self.cooling_until(Some(id), now).map(Millis::as_u64);
        }
    }

    fn provider(&self, target: TargetId) -> Option<ProviderId> {
        self.provider_of.get(target.0 as usize).copied()
    }
}

/// `base × 2^n`, capped.
fn ejection(config: &HealthConfig, n: u32) -> Duration {
    let factor = 1u32.checked_shl(n.min(31)).unwrap_or(u32::MAX);
    config.base_ejection.saturating_mul(factor).min(config.max_ejection)
}

#[cfg(test)]
mod tests;
