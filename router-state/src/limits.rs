//! Provider limits — `limits rpm N, tpm N, concurrency N` — kept on our side.
//!
//! Why: a provider enforces its published limits by answering 429, and a
//! 429 costs the call a round trip and cools the whole provider down for
//! every call. Pacing our own traffic to the limits the policy states means
//! the provider rarely has to say no, and when we are at a limit we know it
//! before sending anything. A provider at its limit is skipped like a
//! cooling-down one: the attempt does not wait, the next attempt of the plan
//! is tried at once, and the attempt record says `local_limit` and which
//! limit.
//!
//! - **concurrency N**: a semaphore per provider, kept by the
//!   runtime (it is the one part that needs an async runtime). A permit is taken, never
//!   waited for, when an attempt is dispatched, and held until its answer
//!   is in; for a stream, until the stream ends or is dropped.
//! - **rpm N, tpm N**: token buckets in [`LimitBook`]. Each holds at most N
//!   and refills continuously at N per minute (the way providers describe
//!   their own limits), so N calls may go at once and then one every
//!   60/N s. A dispatch takes one request from `rpm` and its token
//!   estimate (input plus the output it may produce, as reserved from the
//!   budget) from `tpm`, both or neither. An estimate above `tpm` itself
//!   never fits, as the provider would refuse it too. Usage reported
//!   afterwards does not adjust the bucket.
//!
//! The book is synchronous and takes `now` as an argument, like the health
//! book, so a simulator can run it on a virtual clock. Limits are per
//! router: several gateway instances in front of one key each keep their own.

use std::time::Duration;

use router_core::{Policy, ProviderId};

use crate::clock::Millis;

/// Milliseconds in the minute that `rpm` and `tpm` count over.
const MINUTE_MS: u64 = 60_000;

/// Which of a provider's limits turned an attempt away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalLimit {
    /// `concurrency N` calls are already in flight.
    Concurrency {
        /// N.
        limit: u64,
    },
    /// `rpm N` is used up.
    Rpm {
        /// N.
        limit: u64,
        /// How long until one request is free again; `None` for `rpm 0`.
        free_in: Option<Duration>,
    },
    /// `tpm N` cannot take the attempt's token estimate.
    Tpm {
        /// N.
        limit: u64,
        /// The attempt's token estimate.
        needed: u64,
        /// How long until that many tokens are free; `None` when the
        /// estimate is above N itself, so it never fits.
        free_in: Option<Duration>,
    },
}

impl LocalLimit {
    /// The limit as the policy writes it: `concurrency 4`, `rpm 60`, `tpm 100000`.
    pub fn clause(&self) -> String {
        format!("{} {}", self.keyword(), self.limit())
    }

    /// `concurrency`, `rpm` or `tpm`: the metrics label.
    pub const fn keyword(&self) -> &'static str {
        match self {
            LocalLimit::Concurrency { .. } => "concurrency",
            LocalLimit::Rpm { .. } => "rpm",
            LocalLimit::Tpm { .. } => "tpm",
        }
    }

    /// N, as written in the policy.
    pub const fn limit(&self) -> u64 {
        match *self {
            LocalLimit::Concurrency { limit } | LocalLimit::Rpm { limit, .. } | LocalLimit::Tpm { limit, .. } => limit,
        }
    }

    /// How long until the limit has room for the attempt, when known: never
    /// for `concurrency` (a call in flight may end at any time).
    pub const fn free_in(&self) -> Option<Duration> {
        match *self {
            LocalLimit::Concurrency { .. } => None,
            LocalLimit::Rpm { free_in, .. } | LocalLimit::Tpm { free_in, .. } => free_in,
        }
    }
}

/// One `rpm` or `tpm` bucket. The level is kept in units of 1/60,000 of a
/// request or token, so refilling `capacity` per minute adds exactly
/// `capacity` units per millisecond: integer arithmetic, no drift.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    capacity: u64,
    level: u64,
    at: Millis,
}

impl Bucket {
    fn new(capacity: u64) -> Self {
        Bucket {
            capacity,
            level: capacity.saturating_mul(MINUTE_MS),
            at: Millis::ZERO,
        }
    }

    fn refill(&mut self, now: Millis) {
        // A clock that steps back adds nothing and keeps the later mark.
        let elapsed = now.as_u64().saturating_sub(self.at.as_u64());
        let full = self.capacity.saturating_mul(MINUTE_MS);
        self.level = self
            .level
            .saturating_add(elapsed.saturating_mul(self.capacity))
            .min(full);
        self.at = self.at.max(now);
    }

    /// `Ok` when `n` fits (not yet taken); else how long until it does,
    /// `None` when it never can.
    fn check(&mut self, n: u64, now: Millis) -> Result<(), Option<Duration>> {
        self.refill(now);
        if n > self.capacity {
            return Err(None);
        }
        let want = n.saturating_mul(MINUTE_MS);
        if self.level >= want {
            return Ok(());
        }
        let missing = want - self.level;
        Err(Some(Duration::from_millis(missing.div_ceil(self.capacity))))
    }

    fn take(&mut self, n: u64) {
        self.level = self.level.saturating_sub(n.saturating_mul(MINUTE_MS));
    }

    fn give_back(&mut self, n: u64) {
        let full = self.capacity.saturating_mul(MINUTE_MS);
        self.level = self.level.saturating_add(n.saturating_mul(MINUTE_MS)).min(full);
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Pacing {
    rpm: Option<Bucket>,
    tpm: Option<Bucket>,
}

/// The `rpm` and `tpm` buckets of every provider of one policy.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use policy_lang::{SourceFile, compile};
/// use router_state::{LimitBook, LocalLimit, Millis};
///
/// let text = r#"
///     provider groq { adapter mock; tier free; limits rpm 2; model llama { price free } }
///     workload w { data public; route groq/llama }
/// "#;
/// let policy = compile(&[SourceFile::new("p.route", text)]).map_err(|r| format!("{r:?}"))?.into_policy();
/// let groq = policy.target(policy.target_named("groq", "llama").ok_or("no target")?).provider;
/// let mut book = LimitBook::new(&policy);
/// let now = Millis(0);
/// assert!(book.admit(groq, 500, now).is_ok());
/// assert!(book.admit(groq, 500, now).is_ok());
/// let third = book.admit(groq, 500, now);
/// assert_eq!(third, Err(LocalLimit::Rpm { limit: 2, free_in: Some(Duration::from_secs(30)) }));
/// assert!(book.admit(groq, 500, now.after(Duration::from_secs(30))).is_ok());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct LimitBook {
    providers: Vec<Pacing>,
}

impl LimitBook {
    /// Full buckets for every provider of `policy` with `rpm` or `tpm`.
    pub fn new(policy: &Policy) -> Self {
        LimitBook {
            providers: policy
                .providers
                .iter()
                .map(|p| Pacing {
                    rpm: p.limits.rpm.map(Bucket::new),
                    tpm: p.limits.tpm.map(Bucket::new),
                })
                .collect(),
        }
    }

    /// Takes one request and `tokens` from `provider`'s buckets if both
    /// have room; otherwise takes nothing and says which limit is in the
    /// way (`rpm` first). Providers without limits, and unknown ids, are
    /// always admitted.
    pub fn admit(&mut self, provider: ProviderId, tokens: u64, now: Millis) -> Result<(), LocalLimit> {
        let Some(p) = self.providers.get_mut(provider.0 as usize) else {
            return Ok(());
        };
        if let Some(b) = &mut p.rpm {
            b.check(1, now).map_err(|free_in| LocalLimit::Rpm {
                limit: b.capacity,
                free_in,
            })?;
        }
        if let Some(b) = &mut p.tpm {
            b.check(tokens, now).map_err(|free_in| LocalLimit::Tpm {
                limit: b.capacity,
                needed: tokens,
                free_in,
            })?;
        }
        if let Some(b) = &mut p.rpm {
            b.take(1);
        }
        if let Some(b) = &mut p.tpm {
            b.take(tokens);
        }
        Ok(())
    }

    /// Gives back what [`LimitBook::admit`] took, for an attempt that was
    /// then not sent after all.
    pub fn refund(&mut self, provider: ProviderId, tokens: u64, now: Millis) {
        let Some(p) = self.providers.get_mut(provider.0 as usize) else {
            return;
        };
        if let Some(b) = &mut p.rpm {
            b.refill(now);
            b.give_back(1);
        }
        if let Some(b) = &mut p.tpm {
            b.refill(now);
            b.give_back(tokens);
        }
    }
}

/// The `concurrency` semaphores of every provider of one policy: held by
/// the router, not the synchronous book, since a permit lives as long as
/// the call it admits.
#[cfg(test)]
mod tests {
    use router_core::{Budget, Limits};

    use super::*;

    fn limited(limits: Limits) -> Policy {
        let mut policy = crate::testkit::policy(&[("w", Budget::default())]);
        policy.providers[0].limits = limits;
        policy
    }

    const P0: ProviderId = ProviderId(0);
    const P1: ProviderId = ProviderId(1);

    #[test]
    fn rpm_admits_n_at_once_then_one_per_share_of_the_minute() {
        let mut book = LimitBook::new(&limited(Limits {
            rpm: Some(3),
            ..Limits::default()
        }));
        let t0 = Millis(1_000_000);
        for _ in 0..3 {
            assert_eq!(book.admit(P0, 0, t0), Ok(()));
        }
        assert_eq!(
            book.admit(P0, 0, t0),
            Err(LocalLimit::Rpm {
                limit: 3,
                free_in: Some(Duration::from_secs(20))
            })
        );
        assert_eq!(book.admit(P1, 0, t0), Ok(()), "other providers are not limited");
        let almost = t0.after(Duration::from_millis(19_999));
        assert!(matches!(
            book.admit(P0, 0, almost),
            Err(LocalLimit::Rpm { free_in: Some(d), .. }) if d == Duration::from_millis(1)
        ));
        let later = t0.after(Duration::from_secs(20));
        assert_eq!(book.admit(P0, 0, later), Ok(()));
        assert!(book.admit(P0, 0, later).is_err());
        // A quiet spell refills up to the limit, never beyond it.
        let much_later = later.after(Duration::from_secs(3_600));
        for _ in 0..3 {
            assert_eq!(book.admit(P0, 0, much_later), Ok(()));
        }
        assert!(book.admit(P0, 0, much_later).is_err());
    }

    #[test]
    fn tpm_takes_the_estimate_and_never_fits_one_above_the_limit() {
        let mut book = LimitBook::new(&limited(Limits {
            tpm: Some(1_000),
            ..Limits::default()
        }));
        let t0 = Millis(0);
        assert_eq!(book.admit(P0, 600, t0), Ok(()));
        assert_eq!(
            book.admit(P0, 600, t0),
            Err(LocalLimit::Tpm {
                limit: 1_000,
                needed: 600,
                free_in: Some(Duration::from_millis(12_000))
            })
        );
        assert_eq!(
            book.admit(P0, 400, t0),
            Ok(()),
            "what is left still fits a smaller call"
        );
        assert_eq!(
            book.admit(P0, 1_001, t0.after(Duration::from_secs(3_600))),
            Err(LocalLimit::Tpm {
                limit: 1_000,
                needed: 1_001,
                free_in: None
            })
        );
    }

    #[test]
    fn a_refusal_takes_nothing_and_a_refund_gives_back() {
        let mut book = LimitBook::new(&limited(Limits {
            rpm: Some(2),
            tpm: Some(100),
            ..Limits::default()
        }));
        let t0 = Millis(0);
        assert_eq!(book.admit(P0, 80, t0), Ok(()));
        // tpm refuses, so the request is not taken from rpm either.
        assert!(matches!(book.admit(P0, 80, t0), Err(LocalLimit::Tpm { .. })));
        assert_eq!(book.admit(P0, 20, t0), Ok(()));
        assert!(matches!(book.admit(P0, 0, t0), Err(LocalLimit::Rpm { .. })));
        book.refund(P0, 20, t0);
        assert_eq!(book.admit(P0, 20, t0), Ok(()));
        // Refunds never raise a bucket above its limit.
        let mut fresh = LimitBook::new(&limited(Limits {
            rpm: Some(1),
            ..Limits::default()
        }));
        fresh.refund(P0, 0, t0);
        assert_eq!(fresh.admit(P0, 0, t0), Ok(()));
        assert!(fresh.admit(P0, 0, t0).is_err());
    }

    #[test]
    fn zero_limits_never_admit_and_a_clock_stepping_back_adds_nothing() {
        let mut book = LimitBook::new(&limited(Limits {
            rpm: Some(0),
            ..Limits::default()
        }));
        assert_eq!(
            book.admit(P0, 0, Millis(5)),
            Err(LocalLimit::Rpm {
                limit: 0,
                free_in: None
            })
        );
        let mut book = LimitBook::new(&limited(Limits {
            rpm: Some(1),
            ..Limits::default()
        }));
        assert_eq!(book.admit(P0, 0, Millis(120_000)), Ok(()));
        assert!(book.admit(P0, 0, Millis(0)).is_err());
        assert!(book.admit(P0, 0, Millis(119_999)).is_err());
        assert_eq!(book.admit(P0, 0, Millis(180_000)), Ok(()));
    }
}
