//! What the policy says about failing calls: an attempt's timeouts, retries
//! per failure class, the circuit breaker and the scope of a cool-down.
//!
//! Every setting is optional where it is written (`defaults`, a provider, a
//! chain); the nearest one wins, field by field, and what no level sets is
//! the runtime's default (documented in docs/runtime.md). Unset settings
//! are left out of the canonical form, so a policy that says nothing of
//! failures keeps the hash it had before these settings existed.

use std::time::Duration;

use serde::Serialize;

use crate::route::Trigger;
use crate::units::opt_duration_ms;

/// The timeouts of one attempt. `None`: not set at this level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct AttemptTimeouts {
    /// Making the connection (TCP and TLS).
    #[serde(with = "opt_duration_ms", skip_serializing_if = "Option::is_none")]
    pub connect: Option<Duration>,
    /// From sending the request to the first token of a stream, or the
    /// first byte (the response headers) of a whole answer.
    #[serde(with = "opt_duration_ms", skip_serializing_if = "Option::is_none")]
    pub first_token: Option<Duration>,
    /// The longest gap between two events of a stream (two chunks of a body).
    #[serde(with = "opt_duration_ms", skip_serializing_if = "Option::is_none")]
    pub idle: Option<Duration>,
    /// The attempt as a whole.
    #[serde(with = "opt_duration_ms", skip_serializing_if = "Option::is_none")]
    pub total: Option<Duration>,
}

impl AttemptTimeouts {
    /// These settings, with `outer`'s filling what these leave unset.
    #[must_use]
    pub fn or(self, outer: AttemptTimeouts) -> AttemptTimeouts {
        AttemptTimeouts {
            connect: self.connect.or(outer.connect),
            first_token: self.first_token.or(outer.first_token),
            idle: self.idle.or(outer.idle),
            total: self.total.or(outer.total),
        }
    }

    /// Whether nothing is set.
    pub fn is_unset(&self) -> bool {
        *self == AttemptTimeouts::default()
    }
}

/// Retries on the same target per failure class, as a chain's `retry`
/// clause says them: `retry 2` sets the count for every class that is
/// retried by default; `retry server_error 2, timeout 1` sets classes one by
/// one (and may retry a class that is not retried by default, such as a
/// timeout).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct RetryClasses([Option<u8>; 6]);

impl RetryClasses {
    /// The count set for `class`, if the policy names it.
    pub fn get(&self, class: Trigger) -> Option<u8> {
        self.0.get(Self::slot(class)).copied().flatten()
    }

    /// Sets the count for `class`.
    pub fn set(&mut self, class: Trigger, n: u8) {
        if let Some(slot) = self.0.get_mut(Self::slot(class)) {
            *slot = Some(n);
        }
    }

    /// Whether no class is named.
    pub fn is_unset(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }

    /// The named classes and their counts, in keyword order.
    pub fn iter(&self) -> impl Iterator<Item = (Trigger, u8)> + '_ {
        Trigger::ALL.into_iter().filter_map(|t| self.get(t).map(|n| (t, n)))
    }

    /// Caps every named count at `max`.
    pub fn cap(&mut self, max: u8) {
        for n in self.0.iter_mut().flatten() {
            *n = (*n).min(max);
        }
    }

    /// The most retries any named class may make.
    pub fn max(&self) -> u8 {
        self.iter().map(|(_, n)| n).max().unwrap_or(0)
    }

    const fn slot(class: Trigger) -> usize {
        match class {
            Trigger::RateLimited => 0,
            Trigger::Overloaded => 1,
            Trigger::ServerError => 2,
            Trigger::Timeout => 3,
            Trigger::ConnectionError => 4,
            Trigger::ContextLength => 5,
        }
    }
}

impl Serialize for RetryClasses {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter().map(|(t, n)| (t.as_str(), n)))
    }
}

/// The circuit breaker's settings at one level. `None`: not set here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct BreakerSettings {
    /// `breaker off` (false) or a `breaker …` with settings (true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Consecutive counted failures that eject a target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failures: Option<u32>,
    /// The first ejection's length; each failed probe doubles it.
    #[serde(with = "opt_duration_ms", skip_serializing_if = "Option::is_none")]
    pub eject: Option<Duration>,
    /// The longest ejection.
    #[serde(with = "opt_duration_ms", skip_serializing_if = "Option::is_none")]
    pub max_eject: Option<Duration>,
}

impl BreakerSettings {
    /// These settings, with `outer`'s filling what these leave unset.
    #[must_use]
    pub fn or(self, outer: BreakerSettings) -> BreakerSettings {
        BreakerSettings {
            enabled: self.enabled.or(outer.enabled),
            failures: self.failures.or(outer.failures),
            eject: self.eject.or(outer.eject),
            max_eject: self.max_eject.or(outer.max_eject),
        }
    }

    /// Whether nothing is set.
    pub fn is_unset(&self) -> bool {
        *self == BreakerSettings::default()
    }
}

/// What a 429 (or a 503 with a long `Retry-After`) cools down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CooldownScope {
    /// Only the model that answered 429: most providers (OpenAI, Anthropic,
    /// Gemini) count rate limits per model, so the provider's other models
    /// still take calls.
    PerModel,
    /// Every model of the provider, for providers whose limit is per key.
    PerProvider,
}

impl CooldownScope {
    /// The keyword used in policies.
    pub const fn as_str(self) -> &'static str {
        match self {
            CooldownScope::PerModel => "per_model",
            CooldownScope::PerProvider => "per_provider",
        }
    }
}

/// The failure settings of `defaults` or of one provider.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct FailureSettings {
    /// Per-attempt timeouts.
    #[serde(skip_serializing_if = "AttemptTimeouts::is_unset")]
    pub timeouts: AttemptTimeouts,
    /// The circuit breaker.
    #[serde(skip_serializing_if = "BreakerSettings::is_unset")]
    pub breaker: BreakerSettings,
    /// A `Retry-After` up to this long is waited out and the same target
    /// retried; a longer one cools it down.
    #[serde(with = "opt_duration_ms", skip_serializing_if = "Option::is_none")]
    pub retry_after_wait: Option<Duration>,
    /// What a 429 cools down.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<CooldownScope>,
}

impl FailureSettings {
    /// These settings, with `outer`'s filling what these leave unset.
    #[must_use]
    pub fn or(self, outer: FailureSettings) -> FailureSettings {
        FailureSettings {
            timeouts: self.timeouts.or(outer.timeouts),
            breaker: self.breaker.or(outer.breaker),
            retry_after_wait: self.retry_after_wait.or(outer.retry_after_wait),
            cooldown: self.cooldown.or(outer.cooldown),
        }
    }

    /// Whether nothing is set.
    pub fn is_unset(&self) -> bool {
        *self == FailureSettings::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_level_wins_field_by_field() {
        let chain = AttemptTimeouts {
            first_token: Some(Duration::from_secs(5)),
            ..AttemptTimeouts::default()
        };
        let provider = AttemptTimeouts {
            first_token: Some(Duration::from_secs(20)),
            idle: Some(Duration::from_secs(15)),
            ..AttemptTimeouts::default()
        };
        let merged = chain.or(provider);
        assert_eq!(merged.first_token, Some(Duration::from_secs(5)));
        assert_eq!(merged.idle, Some(Duration::from_secs(15)));
        assert_eq!(merged.total, None);
    }

    #[test]
    fn retry_classes_keep_each_count_apart() {
        let mut r = RetryClasses::default();
        assert!(r.is_unset());
        r.set(Trigger::ServerError, 2);
        r.set(Trigger::Timeout, 0);
        assert_eq!(r.get(Trigger::ServerError), Some(2));
        assert_eq!(r.get(Trigger::Timeout), Some(0));
        assert_eq!(r.get(Trigger::RateLimited), None);
        assert_eq!(r.max(), 2);
        let json = serde_json::to_string(&r).unwrap_or_default();
        assert_eq!(json, r#"{"server_error":2,"timeout":0}"#);
    }

    #[test]
    fn unset_settings_leave_the_canonical_form_alone() {
        let json = serde_json::to_string(&FailureSettings::default()).unwrap_or_default();
        assert_eq!(json, "{}");
    }
}
