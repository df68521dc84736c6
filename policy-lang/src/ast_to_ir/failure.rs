//! Failure settings (`timeouts`, `breaker`, `retry_after_wait`,
//! `cooldown`) of a provider or of `defaults`, and a chain's `timeouts` and
//! per-class `retry`.

use router_core::{AttemptTimeouts, FailureSettings};

use super::*;

/// The most consecutive failures a breaker may wait for.
const MAX_BREAKER_FAILURES: u64 = 1_000;

impl Lowerer<'_> {
    /// Lowers one failure setting into `into`. A `timeouts total` goes to
    /// `total` (a provider's `timeout`), which the caller owns.
    pub(super) fn failure_prop(
        &mut self,
        prop: &FailureProp,
        into: &mut FailureSettings,
        total: &mut Option<Duration>,
    ) {
        match prop {
            FailureProp::Timeouts(items) => {
                let mut set = AttemptTimeouts {
                    total: *total,
                    ..AttemptTimeouts::default()
                };
                self.stage_timeouts(items, &mut set);
                *total = set.total;
                set.total = None;
                into.timeouts = set;
            }
            FailureProp::BreakerOff(_) => into.breaker.enabled = Some(false),
            FailureProp::Breaker(items) => {
                into.breaker.enabled = Some(true);
                let mut seen = HashMap::new();
                for item in items {
                    match item {
                        BreakerItem::Failures(n) => {
                            if self.once(&mut seen, "breaker failures", n.span) {
                                continue;
                            }
                            if (1..=MAX_BREAKER_FAILURES).contains(&n.value) {
                                into.breaker.failures = u32::try_from(n.value).ok();
                            } else {
                                self.out_of_range(
                                    n.span,
                                    &n.text,
                                    format!("`breaker failures {}` is out of range", n.text),
                                    "eject a target after 1 to 1000 consecutive failures, or write `breaker off`",
                                );
                            }
                        }
                        BreakerItem::Eject(d) => {
                            if !self.once(&mut seen, "breaker eject", d.span) {
                                into.breaker.eject = Some(d.value);
                            }
                        }
                        BreakerItem::MaxEject(d) => {
                            if !self.once(&mut seen, "breaker max_eject", d.span) {
                                into.breaker.max_eject = Some(d.value);
                            }
                        }
                    }
                }
                if let (Some(eject), Some(max)) = (into.breaker.eject, into.breaker.max_eject)
                    && max < eject
                {
                    let span = items
                        .iter()
                        .find_map(|i| match i {
                            BreakerItem::MaxEject(d) => Some((d.span, d.text.clone())),
                            BreakerItem::Failures(_) | BreakerItem::Eject(_) => None,
                        })
                        .unwrap_or_default();
                    self.out_of_range(
                        span.0,
                        &span.1,
                        format!("`max_eject {}` is shorter than the first ejection", span.1),
                        "`max_eject` caps ejections that double from `eject`: make it at least as long",
                    );
                }
            }
            FailureProp::RetryAfterWait(d) => into.retry_after_wait = Some(d.value),
            FailureProp::Cooldown(scope) => into.cooldown = Some(scope.value),
        }
    }

    /// The items of a `timeouts` clause, each stage once.
    pub(super) fn stage_timeouts(&mut self, items: &[(Lit<Stage>, Lit<Duration>)], into: &mut AttemptTimeouts) {
        let mut seen = HashMap::new();
        for (stage, d) in items {
            let keyword = match stage.value {
                Stage::Connect => "connect timeout",
                Stage::FirstToken => "first_token timeout",
                Stage::Idle => "idle timeout",
                Stage::Total => "total timeout",
            };
            let already = match stage.value {
                Stage::Total => into.total.is_some() && !seen.contains_key(keyword),
                Stage::Connect | Stage::FirstToken | Stage::Idle => false,
            };
            if already {
                self.out_of_range(
                    stage.span,
                    &stage.text,
                    "the total timeout is given twice".to_string(),
                    "keep one: `timeout D` (or `on timeout(D)` in a chain) and `timeouts total D` say the same",
                );
                continue;
            }
            if self.once(&mut seen, keyword, stage.span) {
                continue;
            }
            let slot = match stage.value {
                Stage::Connect => &mut into.connect,
                Stage::FirstToken => &mut into.first_token,
                Stage::Idle => &mut into.idle,
                Stage::Total => &mut into.total,
            };
            *slot = Some(d.value);
        }
    }
}
