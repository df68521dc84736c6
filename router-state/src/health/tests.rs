use std::time::Duration;

use router_core::{Budget, ProviderId, StateSnapshot, TargetId};

use super::*;
use crate::testkit::policy;

const T0: TargetId = TargetId(0);
const T1: TargetId = TargetId(1);
const T2: TargetId = TargetId(2);

fn book() -> HealthBook {
    HealthBook::new(&policy(&[("w", Budget::default())]), HealthConfig::default())
}

/// A book whose policy says `cooldown per_provider` in `defaults`.
fn per_provider_book() -> HealthBook {
    let mut p = policy(&[("w", Budget::default())]);
    p.defaults.failure.cooldown = Some(router_core::CooldownScope::PerProvider);
    HealthBook::new(&p, HealthConfig::default())
}

fn fail(b: &mut HealthBook, t: TargetId, n: u32, now: Millis) -> HealthChange {
    let mut last = HealthChange::None;
    for _ in 0..n {
        assert!(matches!(b.admit(t, now), Admission::Allowed | Admission::Probe));
        last = b.record(t, AttemptOutcome::ServerError, now);
    }
    last
}

#[test]
fn consecutive_failures_eject_then_a_probe_recovers() {
    let mut b = book();
    let t = Millis(1_000_000);
    assert_eq!(fail(&mut b, T0, 4, t), HealthChange::None);
    assert_eq!(b.breaker(T0, t), BreakerState::Closed { failures: 4 });
    let until = t.after(Duration::from_secs(5));
    assert_eq!(fail(&mut b, T0, 1, t), HealthChange::Ejected { until });
    assert_eq!(b.admit(T0, t), Admission::Ejected { until });
    // The sibling target of the same provider is unaffected.
    assert_eq!(b.admit(T1, t), Admission::Allowed);
    // Half-open: one probe; a second caller is turned away while it flies.
    let later = until.after(Duration::from_millis(1));
    assert_eq!(b.admit(T0, later), Admission::Probe);
    assert!(matches!(b.admit(T0, later), Admission::Ejected { .. }));
    assert!(
        b.ejected_until(T0, later).is_some(),
        "a probe in flight keeps it out of plans"
    );
    assert_eq!(b.record(T0, AttemptOutcome::Success, later), HealthChange::Recovered);
    assert_eq!(b.admit(T0, later), Admission::Allowed);
    assert_eq!(b.breaker(T0, later), BreakerState::Closed { failures: 0 });
}

#[test]
fn a_failed_probe_re_ejects_for_longer_up_to_the_cap() {
    let mut b = book();
    let mut now = Millis(0);
    fail(&mut b, T0, 5, now);
    let mut expected = Duration::from_secs(5);
    for _ in 0..8 {
        let BreakerState::Ejected { until } = b.breaker(T0, now) else {
            panic!("not ejected")
        };
        assert_eq!(until - now, expected);
        now = until;
        assert_eq!(b.admit(T0, now), Admission::Probe);
        assert_eq!(
            b.record(T0, AttemptOutcome::Timeout, now),
            HealthChange::Ejected {
                until: now.after((expected * 2).min(Duration::from_secs(20)))
            }
        );
        expected = (expected * 2).min(Duration::from_secs(20));
    }
    assert_eq!(expected, Duration::from_secs(20));
    // Recovery resets the backoff.
    let BreakerState::Ejected { until } = b.breaker(T0, now) else {
        panic!("not ejected")
    };
    assert_eq!(b.admit(T0, until), Admission::Probe);
    b.record(T0, AttemptOutcome::Success, until);
    fail(&mut b, T0, 5, until);
    assert_eq!(b.ejected_until(T0, until), Some(until.after(Duration::from_secs(5))));
}

#[test]
fn client_errors_do_not_count_and_live_answers_reset_the_count() {
    let mut b = book();
    let now = Millis(0);
    for _ in 0..20 {
        b.record(T0, AttemptOutcome::ClientError, now);
        b.record(T0, AttemptOutcome::ContextLength, now);
    }
    assert_eq!(b.breaker(T0, now), BreakerState::Closed { failures: 0 });
    fail(&mut b, T0, 4, now);
    b.record(T0, AttemptOutcome::ClientError, now);
    fail(&mut b, T0, 4, now);
    assert_eq!(
        b.admit(T0, now),
        Admission::Allowed,
        "the 4xx broke the run of failures"
    );
}

#[test]
fn a_lost_probe_frees_the_slot_after_the_probe_timeout() {
    let mut b = book();
    fail(&mut b, T0, 5, Millis(0));
    let open = Millis(10_000);
    assert_eq!(b.admit(T0, open), Admission::Probe);
    let timeout = open.after(Duration::from_secs(60));
    assert_eq!(b.admit(T0, Millis(69_999)), Admission::Ejected { until: timeout });
    assert_eq!(b.admit(T0, timeout), Admission::Probe);
}

#[test]
fn a_429_cools_the_whole_provider_down_when_the_policy_says_per_provider() {
    let mut b = per_provider_book();
    let now = Millis(5_000);
    let change = b.record(
        T0,
        AttemptOutcome::RateLimited {
            retry_after: Some(Duration::from_secs(30)),
        },
        now,
    );
    let until = Millis(35_000);
    assert_eq!(
        change,
        HealthChange::CoolingDown {
            provider: ProviderId(0),
            until
        }
    );
    assert_eq!(
        b.admit(T1, now),
        Admission::CoolingDown { until },
        "same provider, other model"
    );
    assert_eq!(b.admit(T2, now), Admission::Allowed, "another provider");
    // A shorter 429 does not shorten it; 429s never eject.
    b.record(
        T1,
        AttemptOutcome::RateLimited {
            retry_after: Some(Duration::from_secs(1)),
        },
        now,
    );
    assert_eq!(b.cooling_until(Some(ProviderId(0)), now), Some(until));
    assert_eq!(b.breaker(T0, now), BreakerState::Closed { failures: 0 });
    assert_eq!(b.admit(T0, until), Admission::Allowed);
}

#[test]
fn a_429_cools_only_its_model_by_default() {
    let mut b = book();
    let now = Millis(5_000);
    let limited = AttemptOutcome::RateLimited {
        retry_after: Some(Duration::from_secs(30)),
    };
    let until = Millis(35_000);
    assert_eq!(b.record(T0, limited, now), HealthChange::ModelCoolingDown { until });
    assert_eq!(b.admit(T0, now), Admission::CoolingDown { until });
    assert_eq!(b.admit(T1, now), Admission::Allowed, "same provider, other model");
    assert_eq!(b.cooling_until(Some(ProviderId(0)), now), None);
    let mut snap = StateSnapshot::default();
    b.fill_snapshot(&mut snap, now);
    assert_eq!(snap.target(T0).cooling_until_ms, Some(35_000));
    assert_eq!(snap.target(T1).cooling_until_ms, None);
    assert_eq!(b.admit(T0, until), Admission::Allowed);
}

#[test]
fn a_providers_breaker_settings_override_the_books() {
    let mut p = policy(&[("w", Budget::default())]);
    // Provider 0 ejects after 2 failures for 1 s; provider 1 never ejects.
    p.providers[0].failure.breaker = router_core::BreakerSettings {
        enabled: Some(true),
        failures: Some(2),
        eject: Some(Duration::from_secs(1)),
        max_eject: Some(Duration::from_secs(1)),
    };
    p.providers[1].failure.breaker.enabled = Some(false);
    let mut b = HealthBook::new(&p, HealthConfig::default());
    let now = Millis(1_000);
    assert_eq!(fail(&mut b, T0, 2, now), HealthChange::Ejected { until: Millis(2_000) });
    assert_eq!(fail(&mut b, T2, 20, now), HealthChange::None, "breaker off");
    assert_eq!(b.admit(T2, now), Admission::Allowed);
}

#[test]
fn retry_after_is_capped_and_defaulted() {
    let mut b = per_provider_book();
    b.record(
        T2,
        AttemptOutcome::RateLimited {
            retry_after: Some(Duration::from_secs(86_400)),
        },
        Millis(0),
    );
    assert_eq!(b.cooling_until(Some(ProviderId(1)), Millis(0)), Some(Millis(300_000)));
    let mut b = per_provider_book();
    b.record(T2, AttemptOutcome::RateLimited { retry_after: None }, Millis(0));
    assert_eq!(b.cooling_until(Some(ProviderId(1)), Millis(0)), Some(Millis(5_000)));
}

#[test]
fn the_snapshot_carries_ejections_and_cool_downs() {
    let mut b = per_provider_book();
    fail(&mut b, T2, 5, Millis(0));
    b.record(
        T0,
        AttemptOutcome::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        },
        Millis(0),
    );
    let mut snap = StateSnapshot::default();
    b.fill_snapshot(&mut snap, Millis(1_000));
    assert_eq!(snap.target(T2).ejected_until_ms, Some(5_000));
    assert_eq!(snap.target(T0).ejected_until_ms, None);
    assert_eq!(snap.provider(ProviderId(0)).cooling_until_ms, Some(2_000));
    // Later, both have lapsed.
    b.fill_snapshot(&mut snap, Millis(20_000));
    assert_eq!(snap.target(T2).ejected_until_ms, None);
    assert_eq!(snap.provider(ProviderId(0)).cooling_until_ms, None);
}

#[test]
fn outcomes_map_to_policy_triggers() {
    assert_eq!(AttemptOutcome::Success.trigger(), None);
    assert_eq!(AttemptOutcome::ClientError.trigger(), None);
    assert_eq!(AttemptOutcome::Timeout.trigger(), Some(router_core::Trigger::Timeout));
    assert!(!AttemptOutcome::RateLimited { retry_after: None }.counts_against_health());
}

/// A target down for a minute, called once a second: with the default
/// breaker it serves again within 30 s of its recovery, however many
/// half-open probes failed during the outage.
#[test]
fn a_recovered_target_serves_again_within_half_a_minute() {
    let policy = policy(&[("w", Budget::default())]);
    let mut b = HealthBook::new(&policy, HealthConfig::default());
    let target = TargetId(0);
    let recovered_at = 60_000;
    let mut first_served = None;
    for s in 0..300u64 {
        let now = Millis(1_000_000 + s * 1_000);
        match b.admit(target, now) {
            Admission::Allowed | Admission::Probe => {}
            Admission::Ejected { .. } | Admission::CoolingDown { .. } => continue,
        }
        if s * 1_000 < recovered_at {
            b.record(target, AttemptOutcome::ServerError, now);
        } else {
            b.record(target, AttemptOutcome::Success, now);
            first_served = Some(s * 1_000);
            break;
        }
    }
    let served = first_served.expect("the target never served again");
    assert!(
        served - recovered_at <= 30_000,
        "served again {} ms after recovering",
        served - recovered_at
    );
}

/// With the breaker off, failures never eject.
#[test]
fn a_breaker_switched_off_never_ejects() {
    let policy = policy(&[("w", Budget::default())]);
    let config = HealthConfig {
        breaker: false,
        ..HealthConfig::default()
    };
    let mut b = HealthBook::new(&policy, config);
    for s in 0..50u64 {
        let now = Millis(1_000_000 + s);
        assert_eq!(b.admit(TargetId(0), now), Admission::Allowed);
        b.record(TargetId(0), AttemptOutcome::ServerError, now);
    }
}

#[test]
fn a_peers_report_is_adopted_without_shortening_or_raising_the_backoff() {
    let mut b = book();
    let t = Millis(10_000);
    b.adopt(T0, PeerReport::ModelCoolingDown, t.after(Duration::from_secs(30)));
    assert_eq!(b.admit(T0, t), Admission::CoolingDown { until: Millis(40_000) });
    b.adopt(T0, PeerReport::ModelCoolingDown, Millis(20_000));
    assert_eq!(
        b.model_cooling_until(T0, t),
        Some(Millis(40_000)),
        "a shorter report is ignored"
    );
    assert_eq!(
        b.admit(T1, t),
        Admission::Allowed,
        "per model: the sibling still serves"
    );
    b.adopt(T1, PeerReport::ProviderCoolingDown, Millis(15_000));
    assert_eq!(b.cooling_until(Some(ProviderId(0)), t), Some(Millis(15_000)));
    assert_eq!(b.admit(T1, t), Admission::CoolingDown { until: Millis(15_000) });

    b.adopt(T2, PeerReport::Ejected, Millis(12_000));
    assert_eq!(b.admit(T2, t), Admission::Ejected { until: Millis(12_000) });
    assert_eq!(b.admit(T2, Millis(12_000)), Admission::Probe);
    // The probe fails: the first ejection of this book's own, not the second.
    assert_eq!(
        b.record(T2, AttemptOutcome::ServerError, Millis(12_000)),
        HealthChange::Ejected { until: Millis(17_000) }
    );
    // A half-open or ejected breaker keeps its own state.
    b.adopt(T2, PeerReport::Ejected, Millis(99_000));
    assert_eq!(b.ejected_until(T2, Millis(12_000)), Some(Millis(17_000)));
}
