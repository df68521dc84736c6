//! What a routed call can fail with, and what each attempt of it did.
//!
//! Why one enum per operation, not `#[non_exhaustive]`: an embedder maps
//! [`RouteError`] to HTTP statuses and retry decisions, and a new failure
//! mode should break their build rather than fall into a catch-all. Every
//! variant wraps one struct with private fields and accessors; fallback
//! keeps every attempt's error and the policy clause that acted on it.

use std::fmt;
use std::time::Duration;

use providers::{ErrorClass, ProviderError, TimeoutKind};
use router_core::{DataClass, NodeId, Refusal};
use serde::Serialize;
use thiserror::Error;

use crate::budget::error::{ReserveError, UnknownWorkloadError};
use crate::clock::Millis;
use crate::decisions::DecisionId;
use crate::idempotency::KeyReusedError;
use router_state::LocalLimit;

/// Why a routed call failed.
///
/// The larger payloads are boxed so a `Result<_, RouteError>` stays small.
///
/// Not `#[non_exhaustive]` on purpose: a new failure mode must be handled
/// by every embedder on purpose.
#[derive(Clone, Debug, Error)]
pub enum RouteError {
    /// The call names no workload (or alias) of the policy.
    #[error(transparent)]
    UnknownWorkload(UnknownWorkloadError),
    /// The engine refused the call: no eligible target, the data class,
    /// the budget pre-check, or every fitting target unhealthy. Nothing was sent.
    #[error(transparent)]
    Refused(RefusedError),
    /// The budget refused a reservation: halted, busy, too large, or the
    /// store could not be asked (budgets fail closed).
    #[error(transparent)]
    Budget(Box<BudgetError>),
    /// Every attempt the plan allowed failed, or the policy said not to go on.
    #[error(transparent)]
    FallbackExhausted(FallbackExhaustedError),
    /// The workload's overall deadline (`latency`) passed.
    #[error(transparent)]
    DeadlineExceeded(DeadlineExceededError),
    /// The idempotency key came with a different request body.
    #[error(transparent)]
    IdempotencyKeyReused(KeyReusedError),
    /// An upstream rejected the request itself (e.g. a 400); trying another
    /// provider would fail the same way, so the call stops.
    #[error(transparent)]
    UpstreamRejected(Box<UpstreamRejectedError>),
    /// A stream broke after its first event had reached the caller; the
    /// answer is incomplete.
    #[error(transparent)]
    StreamInterrupted(Box<StreamInterruptedError>),
}

impl RouteError {
    /// The stable snake_case code, for metrics, logs and error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            RouteError::UnknownWorkload(_) => "unknown_workload",
            RouteError::Refused(e) => e.refusal.code(),
            RouteError::Budget(e) => e.source.code(),
            RouteError::FallbackExhausted(_) => "fallback_exhausted",
            RouteError::DeadlineExceeded(_) => "deadline_exceeded",
            RouteError::IdempotencyKeyReused(_) => KeyReusedError::CODE,
            RouteError::UpstreamRejected(e) => e.code(),
            RouteError::StreamInterrupted(_) => "stream_interrupted",
        }
    }

    /// The HTTP status a gateway answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            RouteError::UnknownWorkload(_) => 404,
            RouteError::Refused(e) => match e.refusal {
                Refusal::DataClass { .. } => 403,
                Refusal::BudgetExhausted { .. } => 429,
                Refusal::Unhealthy { .. } => 503,
                Refusal::NoEligibleTarget => 422,
            },
            RouteError::Budget(e) => match e.source {
                ReserveError::Halted(_) | ReserveError::Busy(_) => 429,
                ReserveError::TooLarge(_) => 413,
                ReserveError::StoreUnavailable(_) => 503,
                ReserveError::UnknownWorkload(_) => 500,
            },
            RouteError::FallbackExhausted(e) => match e.common_cause() {
                Some(CommonCause::RateLimited) => 429,
                Some(CommonCause::Overloaded) => 503,
                None => 502,
            },
            RouteError::StreamInterrupted(_) => 502,
            RouteError::DeadlineExceeded(_) => 504,
            RouteError::IdempotencyKeyReused(e) => {
                if e.in_flight() {
                    409
                } else {
                    422
                }
            }
            RouteError::UpstreamRejected(e) => e.error.status().filter(|s| (400..500).contains(s)).unwrap_or(400),
        }
    }

    /// How long the caller should wait before trying again, when that is
    /// known: a halted budget's rollover, the end of a cool-down, a busy
    /// budget's short pause, the earliest `Retry-After` among the attempts
    /// (a provider's own, or when a provider's `rpm`/`tpm` has room again).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after_inner()
    }

    /// The provider's own error code, when the call ended with the
    /// provider's refusal of the request (e.g. `content_policy_violation`
    /// behind `content_filtered`).
    pub fn provider_code(&self) -> Option<&str> {
        if let RouteError::UpstreamRejected(e) = self {
            e.error.provider_code()
        } else {
            None
        }
    }

    fn retry_after_inner(&self) -> Option<Duration> {
        match self {
            RouteError::Refused(e) => e.retry_after,
            RouteError::Budget(e) => e.retry_after,
            RouteError::FallbackExhausted(e) => e
                .attempts
                .iter()
                .filter_map(|a| match &a.error {
                    Some(AttemptError::Upstream(p))
                        if matches!(p.class(), ErrorClass::RateLimited | ErrorClass::Overloaded) =>
                    {
                        p.retry_after()
                    }
                    Some(AttemptError::NotSent(NotSentError {
                        reason: NotSent::LocalLimit { limit },
                    })) => limit.free_in(),
                    _ => None,
                })
                .min(),
            RouteError::UnknownWorkload(_)
            | RouteError::DeadlineExceeded(_)
            | RouteError::IdempotencyKeyReused(_)
            | RouteError::UpstreamRejected(_)
            | RouteError::StreamInterrupted(_) => None,
        }
    }

    /// The decision behind the failure, when one was made
    /// (see [`crate::Router::decision`]).
    pub fn decision_id(&self) -> Option<DecisionId> {
        match self {
            RouteError::Refused(e) => Some(e.decision),
            RouteError::Budget(e) => e.decision,
            RouteError::FallbackExhausted(e) => Some(e.decision),
            RouteError::DeadlineExceeded(e) => Some(e.decision),
            RouteError::UpstreamRejected(e) => Some(e.decision),
            RouteError::StreamInterrupted(e) => Some(e.decision),
            RouteError::UnknownWorkload(_) | RouteError::IdempotencyKeyReused(_) => None,
        }
    }

    /// The attempts made before the failure (empty when none was).
    pub fn attempts(&self) -> &[AttemptRecord] {
        match self {
            RouteError::FallbackExhausted(e) => &e.attempts,
            RouteError::DeadlineExceeded(e) => &e.attempts,
            RouteError::UpstreamRejected(e) => &e.attempts,
            RouteError::Budget(e) => &e.attempts,
            RouteError::UnknownWorkload(_)
            | RouteError::Refused(_)
            | RouteError::IdempotencyKeyReused(_)
            | RouteError::StreamInterrupted(_) => &[],
        }
    }
}

/// The engine refused the call; nothing was sent.
#[derive(Clone, Debug, Error)]
#[error("workload `{workload}` refused the call: {refusal}{}", notes_suffix(notes))]
pub struct RefusedError {
    pub(crate) workload: String,
    pub(crate) refusal: Refusal,
    pub(crate) decision: DecisionId,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) notes: Vec<String>,
}

fn notes_suffix(notes: &[String]) -> String {
    notes.iter().map(|n| format!("; {n}")).collect()
}

impl RefusedError {
    /// The workload.
    pub fn workload(&self) -> &str {
        &self.workload
    }
    /// The engine's refusal.
    pub fn refusal(&self) -> Refusal {
        self.refusal
    }
    /// The decision that refused.
    pub fn decision(&self) -> DecisionId {
        self.decision
    }
    /// Runtime notes that explain it (providers left out, and why).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}

/// The budget refused the call (or a scope's budget did).
#[derive(Clone, Debug, Error)]
#[error("{source}")]
pub struct BudgetError {
    pub(crate) source: ReserveError,
    pub(crate) decision: Option<DecisionId>,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) attempts: Vec<AttemptRecord>,
}

impl BudgetError {
    pub(crate) fn new(source: ReserveError, decision: Option<DecisionId>, now: Millis) -> Self {
        let retry_after = match &source {
            ReserveError::Halted(h) => Some(h.until().since(now)),
            ReserveError::Busy(_) => Some(Duration::from_secs(1)),
            ReserveError::TooLarge(_) | ReserveError::StoreUnavailable(_) | ReserveError::UnknownWorkload(_) => None,
        };
        BudgetError {
            source,
            decision,
            retry_after,
            attempts: Vec::new(),
        }
    }

    /// The ledger's refusal.
    pub fn reserve_error(&self) -> &ReserveError {
        &self.source
    }
    /// The decision, when the refusal came after one.
    pub fn decision(&self) -> Option<DecisionId> {
        self.decision
    }
}

/// Every attempt failed, or the policy said not to go on after one.
#[derive(Clone, Debug, Error)]
#[error("every attempt for workload `{workload}` failed: {}", attempts_text(attempts))]
pub struct FallbackExhaustedError {
    pub(crate) workload: String,
    pub(crate) decision: DecisionId,
    pub(crate) attempts: Vec<AttemptRecord>,
}

fn attempts_text(attempts: &[AttemptRecord]) -> String {
    if attempts.is_empty() {
        return "no attempt could be made".to_owned();
    }
    let parts: Vec<String> = attempts.iter().map(ToString::to_string).collect();
    parts.join(" · ")
}

/// What every attempt of an exhausted call failed with, when they all
/// agree: a client told "rate limited" (429) or "overloaded" (503), with
/// the earliest `Retry-After` among the attempts, backs off instead of
/// retrying a 502 at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CommonCause {
    /// Every attempt was rate limited: a provider's 429, a provider cooling
    /// down after one, or its own `rpm`/`tpm` used up.
    RateLimited,
    /// Every attempt found its provider overloaded: a 503/529, or the
    /// provider's `concurrency` full.
    Overloaded,
}

impl CommonCause {
    /// The cause of one attempt, when it is one of the shared kinds.
    /// Exhaustive on purpose: a new failure mode is placed here on purpose.
    fn of(error: Option<&AttemptError>) -> Option<CommonCause> {
        match error? {
            AttemptError::Upstream(p) => match p.class() {
                ErrorClass::RateLimited => Some(CommonCause::RateLimited),
                ErrorClass::Overloaded => Some(CommonCause::Overloaded),
                ErrorClass::ServerError
                | ErrorClass::Timeout(_)
                | ErrorClass::Connection
                | ErrorClass::Auth
                | ErrorClass::BadRequest
                | ErrorClass::ContextLengthExceeded
                | ErrorClass::ContentPolicy
                | ErrorClass::MalformedResponse
                | ErrorClass::ResponseTooLarge => None,
            },
            AttemptError::NotSent(n) => match &n.reason {
                NotSent::CoolingDown { .. } => Some(CommonCause::RateLimited),
                NotSent::LocalLimit { limit } => match limit {
                    LocalLimit::Rpm { .. } | LocalLimit::Tpm { .. } => Some(CommonCause::RateLimited),
                    LocalLimit::Concurrency { .. } => Some(CommonCause::Overloaded),
                },
                NotSent::Ejected { .. } | NotSent::DataClass { .. } | NotSent::Unavailable { .. } => None,
            },
            AttemptError::TimedOut(_) | AttemptError::Budget(_) | AttemptError::QualityCheck(_) => None,
        }
    }
}

impl FallbackExhaustedError {
    /// The cause every attempt shares, if they all share one; `None` for
    /// mixed causes (a 502) or when no attempt was made.
    pub(crate) fn common_cause(&self) -> Option<CommonCause> {
        let (first, rest) = self.attempts.split_first()?;
        let cause = CommonCause::of(first.error.as_ref())?;
        rest.iter()
            .all(|a| CommonCause::of(a.error.as_ref()) == Some(cause))
            .then_some(cause)
    }

    /// The workload.
    pub fn workload(&self) -> &str {
        &self.workload
    }
    /// The decision whose plan ran out.
    pub fn decision(&self) -> DecisionId {
        self.decision
    }
    /// Every attempt, with its error and the clause that acted on it.
    pub fn attempts(&self) -> &[AttemptRecord] {
        &self.attempts
    }
}

/// The overall deadline passed.
#[derive(Clone, Debug, Error)]
#[error(
    "workload `{workload}` ran past its {}ms deadline after {} attempts: {}",
    deadline.as_millis(),
    attempts.len(),
    attempts_text(attempts)
)]
pub struct DeadlineExceededError {
    pub(crate) workload: String,
    pub(crate) decision: DecisionId,
    pub(crate) deadline: Duration,
    pub(crate) attempts: Vec<AttemptRecord>,
}

impl DeadlineExceededError {
    /// The workload.
    pub fn workload(&self) -> &str {
        &self.workload
    }
    /// The decision.
    pub fn decision(&self) -> DecisionId {
        self.decision
    }
    /// The deadline (`latency` of the workload).
    pub fn deadline(&self) -> Duration {
        self.deadline
    }
    /// The attempts made within it.
    pub fn attempts(&self) -> &[AttemptRecord] {
        &self.attempts
    }
}

/// An upstream rejected the request itself.
#[derive(Clone, Debug, Error)]
#[error("`{target}` rejected the request for workload `{workload}`: {error}")]
pub struct UpstreamRejectedError {
    pub(crate) workload: String,
    pub(crate) decision: DecisionId,
    pub(crate) target: String,
    pub(crate) error: ProviderError,
    pub(crate) attempts: Vec<AttemptRecord>,
}

impl UpstreamRejectedError {
    /// The stable code: `content_filtered` when a provider's content
    /// filter refused the request (the client must change the request,
    /// and wants to tell that from a malformed one), else
    /// `upstream_rejected`. The provider's own code is
    /// `providers::ProviderError::provider_code`.
    pub fn code(&self) -> &'static str {
        match self.error.class() {
            ErrorClass::ContentPolicy => "content_filtered",
            ErrorClass::RateLimited
            | ErrorClass::Overloaded
            | ErrorClass::ServerError
            | ErrorClass::Timeout(_)
            | ErrorClass::Connection
            | ErrorClass::Auth
            | ErrorClass::BadRequest
            | ErrorClass::ContextLengthExceeded
            | ErrorClass::MalformedResponse
            | ErrorClass::ResponseTooLarge => "upstream_rejected",
        }
    }

    /// The workload.
    pub fn workload(&self) -> &str {
        &self.workload
    }
    /// The decision.
    pub fn decision(&self) -> DecisionId {
        self.decision
    }
    /// The target that rejected it, as `provider/model`.
    pub fn target(&self) -> &str {
        &self.target
    }
    /// The provider's error (redacted, truncated).
    pub fn provider_error(&self) -> &ProviderError {
        &self.error
    }
    /// The attempts made, the rejected one last.
    pub fn attempts(&self) -> &[AttemptRecord] {
        &self.attempts
    }
}

/// A stream broke after it started.
#[derive(Clone, Debug, Error)]
#[error("the stream from `{target}` broke after it started: {cause}")]
pub struct StreamInterruptedError {
    pub(crate) decision: DecisionId,
    pub(crate) target: String,
    pub(crate) cause: AttemptError,
}

impl StreamInterruptedError {
    /// The decision.
    pub fn decision(&self) -> DecisionId {
        self.decision
    }
    /// The target that was streaming, as `provider/model`.
    pub fn target(&self) -> &str {
        &self.target
    }
    /// What broke it.
    pub fn cause(&self) -> &AttemptError {
        &self.cause
    }
}

/// Why one attempt did not produce an accepted answer.
#[derive(Clone, Debug, Error)]
pub enum AttemptError {
    /// The provider answered with an error (classified by the adapter).
    #[error(transparent)]
    Upstream(ProviderError),
    /// No answer within the attempt's timeout (or the overall deadline).
    #[error(transparent)]
    TimedOut(TimedOutError),
    /// The attempt was not sent.
    #[error(transparent)]
    NotSent(NotSentError),
    /// The budget refused this attempt's reservation.
    #[error(transparent)]
    Budget(ReserveError),
    /// The answer came back and failed the escalate check.
    #[error(transparent)]
    QualityCheck(QualityCheckError),
}

impl AttemptError {
    /// A stable snake_case code: the provider error's class, `timeout`,
    /// the not-sent reason, the budget refusal's code, or
    /// `quality_check_failed`.
    pub fn code(&self) -> &'static str {
        match self {
            AttemptError::Upstream(e) => class_code(e.class()),
            AttemptError::TimedOut(_) => "timeout",
            AttemptError::NotSent(e) => e.reason.code(),
            AttemptError::Budget(e) => e.code(),
            AttemptError::QualityCheck(_) => "quality_check_failed",
        }
    }
}

/// The stable code of a provider error class.
pub(crate) fn class_code(class: ErrorClass) -> &'static str {
    match class {
        ErrorClass::RateLimited => "rate_limited",
        ErrorClass::Overloaded => "overloaded",
        ErrorClass::ServerError => "server_error",
        ErrorClass::Timeout(TimeoutKind::Connect | TimeoutKind::FirstByte | TimeoutKind::Idle | TimeoutKind::Total) => {
            "timeout"
        }
        ErrorClass::Connection => "connection_error",
        ErrorClass::Auth => "auth",
        ErrorClass::BadRequest => "bad_request",
        ErrorClass::ContextLengthExceeded => "context_length",
        ErrorClass::ContentPolicy => "content_policy",
        ErrorClass::MalformedResponse => "malformed_response",
        ErrorClass::ResponseTooLarge => "response_too_large",
    }
}

/// No answer in time.
#[derive(Clone, Debug, Error)]
#[error(
    "no {} within {}ms{}",
    if *first_token { "first token" } else { "answer" },
    after.as_millis(),
    if *deadline { " (the call's deadline)" } else { "" }
)]
pub struct TimedOutError {
    pub(crate) after: Duration,
    pub(crate) deadline: bool,
    /// The stream's first-token timeout fired, not the attempt's total.
    pub(crate) first_token: bool,
}

impl TimedOutError {
    /// How long the attempt was given.
    pub fn after(&self) -> Duration {
        self.after
    }
    /// Whether the overall deadline, not the attempt's own timeout, cut it.
    pub fn by_deadline(&self) -> bool {
        self.deadline
    }
}

/// Why an attempt was not sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotSent {
    /// The target's breaker is open until then.
    Ejected {
        /// When it may be tried again.
        until: Millis,
    },
    /// The provider cools down after a 429 until then.
    CoolingDown {
        /// When the cool-down ends.
        until: Millis,
    },
    /// The provider may not receive data of the call's class (the runtime's
    /// own check, behind the engine's).
    DataClass {
        /// What the provider may receive.
        allowed: DataClass,
        /// What the call carries.
        required: DataClass,
    },
    /// The provider could not be set up (its key is missing, say).
    Unavailable {
        /// Why, in words (never a key).
        why: String,
    },
    /// The provider is at one of its `limits` (`concurrency`, `rpm`,
    /// `tpm`); the plan moved on at once rather than wait.
    LocalLimit {
        /// Which limit, and when it has room again.
        limit: LocalLimit,
    },
}

impl NotSent {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            NotSent::Ejected { .. } => "ejected",
            NotSent::CoolingDown { .. } => "cooling_down",
            NotSent::DataClass { .. } => "data_class",
            NotSent::Unavailable { .. } => "unavailable",
            NotSent::LocalLimit { .. } => "local_limit",
        }
    }
}

/// An attempt that was not sent.
#[derive(Clone, Debug, Error)]
#[error("{}", not_sent_text(reason))]
pub struct NotSentError {
    pub(crate) reason: NotSent,
}

fn not_sent_text(reason: &NotSent) -> String {
    match reason {
        NotSent::Ejected { until } => format!("not sent: the target is ejected until {until}"),
        NotSent::CoolingDown { until } => format!("not sent: the provider cools down until {until}"),
        NotSent::DataClass { allowed, required } => {
            format!("not sent: the provider may receive `{allowed}` data, the call carries `{required}`")
        }
        NotSent::Unavailable { why } => format!("not sent: {why}"),
        NotSent::LocalLimit { limit } => local_limit_text(limit),
    }
}

fn local_limit_text(limit: &LocalLimit) -> String {
    let clause = limit.clause();
    match *limit {
        LocalLimit::Concurrency { .. } => format!("not sent: the provider already has `{clause}` calls in flight"),
        LocalLimit::Rpm { free_in: Some(d), .. } => {
            format!(
                "not sent: the provider's `{clause}` is used up; a request is free in {}ms",
                d.as_millis()
            )
        }
        LocalLimit::Rpm { free_in: None, .. } => format!("not sent: the provider's `{clause}` admits no request"),
        LocalLimit::Tpm {
            needed,
            free_in: Some(d),
            ..
        } => format!(
            "not sent: the provider's `{clause}` has no room for this attempt's {needed} tokens; they are free in {}ms",
            d.as_millis()
        ),
        LocalLimit::Tpm {
            needed, free_in: None, ..
        } => format!("not sent: this attempt's {needed} tokens are more than the provider's `{clause}` allows"),
    }
}

impl NotSentError {
    /// Why.
    pub fn reason(&self) -> &NotSent {
        &self.reason
    }
}

/// An answer that failed its escalate check (it was paid for).
#[derive(Clone, Debug, Error)]
#[error("the answer failed check `{check}`: {detail}")]
pub struct QualityCheckError {
    pub(crate) check: String,
    pub(crate) detail: String,
}

impl QualityCheckError {
    /// The check, as written in the policy (`json_valid`, `regex`, …).
    pub fn check(&self) -> &str {
        &self.check
    }
    /// Why it failed.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

/// One attempt of a call: where it went, how it ended, and what the
/// policy made of that (the clause that fired).
#[derive(Clone, Debug)]
pub struct AttemptRecord {
    pub(crate) target: String,
    pub(crate) node: NodeId,
    pub(crate) retry: u8,
    pub(crate) elapsed: Duration,
    /// From the start of the call to the end of this attempt.
    pub(crate) ended: Duration,
    pub(crate) error: Option<AttemptError>,
    pub(crate) clause: String,
}

impl AttemptRecord {
    /// The target, as `provider/model`.
    pub fn target(&self) -> &str {
        &self.target
    }
    /// The target's leaf node in the route graph.
    pub fn node(&self) -> NodeId {
        self.node
    }
    /// 0 for the first try of this target, then 1, 2, … for retries.
    pub fn retry(&self) -> u8 {
        self.retry
    }
    /// How long it took (zero when not sent).
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }
    /// When it started, from the start of the call (waits before it, for
    /// backoff or `Retry-After`, included): what a trace of the call needs
    /// to place the attempt.
    pub fn started_after(&self) -> Duration {
        self.ended.saturating_sub(self.elapsed)
    }
    /// When it ended (for a stream: its first event), from the start of the call.
    pub fn ended_after(&self) -> Duration {
        self.ended
    }
    /// The error; `None` when the attempt answered and was accepted.
    pub fn error(&self) -> Option<&AttemptError> {
        self.error.as_ref()
    }
    /// What the runtime did next and the policy clause behind it, e.g.
    /// ``advanced: `on rate_limited` of fallback `summary_pool` ``.
    pub fn clause(&self) -> &str {
        &self.clause
    }
}

impl fmt::Display for AttemptRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`", self.target)?;
        if self.retry > 0 {
            write!(f, " (retry {})", self.retry)?;
        }
        match &self.error {
            Some(e) => write!(f, ": {e}; {}", self.clause),
            None => write!(f, ": {}", self.clause),
        }
    }
}

impl Serialize for AttemptRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct View<'a> {
            target: &'a str,
            node: NodeId,
            retry: u8,
            elapsed_ms: u64,
            outcome: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            error: Option<String>,
            clause: &'a str,
        }
        View {
            target: &self.target,
            node: self.node,
            retry: self.retry,
            elapsed_ms: u64::try_from(self.elapsed.as_millis()).unwrap_or(u64::MAX),
            outcome: self.error.as_ref().map_or("success", AttemptError::code),
            error: self.error.as_ref().map(ToString::to_string),
            clause: &self.clause,
        }
        .serialize(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::error::BusyError;
    use router_state::LimitKind;

    fn attempt(error: Option<AttemptError>) -> AttemptRecord {
        AttemptRecord {
            target: "p0/a".into(),
            node: NodeId(1),
            retry: 0,
            elapsed: Duration::from_millis(5),
            ended: Duration::from_millis(5),
            error,
            clause: "advanced: `on server_error` of fallback n0".into(),
        }
    }

    #[test]
    fn codes_statuses_and_hints_are_stable() {
        let decision = DecisionId::from_u64(1);
        let refused = RouteError::Refused(RefusedError {
            workload: "w".into(),
            refusal: Refusal::DataClass {
                required: DataClass::Private,
            },
            decision,
            retry_after: None,
            notes: Vec::new(),
        });
        assert_eq!((refused.code(), refused.http_status()), ("data_class", 403));
        assert_eq!(
            refused.to_string(),
            "workload `w` refused the call: no target in the route may receive `private` data; nothing was sent"
        );
        let busy = RouteError::Budget(Box::new(BudgetError::new(
            ReserveError::Busy(BusyError {
                workload: "w".into(),
                limit: LimitKind::TokensPerDay,
                committed: 1,
                reserved: 2,
                cap: 3,
                amount: 4,
            }),
            None,
            Millis(0),
        )));
        assert_eq!((busy.code(), busy.http_status()), ("budget_busy", 429));
        assert_eq!(busy.retry_after(), Some(Duration::from_secs(1)));
        let exhausted = RouteError::FallbackExhausted(FallbackExhaustedError {
            workload: "w".into(),
            decision,
            attempts: vec![attempt(Some(AttemptError::TimedOut(TimedOutError {
                after: Duration::from_millis(200),
                deadline: false,
                first_token: false,
            })))],
        });
        assert_eq!((exhausted.code(), exhausted.http_status()), ("fallback_exhausted", 502));
        assert_eq!(
            exhausted.to_string(),
            "every attempt for workload `w` failed: `p0/a`: no answer within 200ms; advanced: `on server_error` of fallback n0"
        );
        assert_eq!(exhausted.decision_id(), Some(decision));
        assert_eq!(exhausted.attempts().len(), 1);
    }

    #[test]
    fn an_exhausted_call_answers_with_the_cause_its_attempts_share() {
        let not_sent = |reason| Some(AttemptError::NotSent(NotSentError { reason }));
        let rpm = |secs| NotSent::LocalLimit {
            limit: LocalLimit::Rpm {
                limit: 60,
                free_in: Some(Duration::from_secs(secs)),
            },
        };
        let exhausted = |errors: Vec<Option<AttemptError>>| {
            RouteError::FallbackExhausted(FallbackExhaustedError {
                workload: "w".into(),
                decision: DecisionId::from_u64(1),
                attempts: errors.into_iter().map(attempt).collect(),
            })
        };
        let limited = exhausted(vec![
            not_sent(rpm(9)),
            not_sent(NotSent::CoolingDown { until: Millis(5) }),
            not_sent(rpm(4)),
        ]);
        assert_eq!(limited.http_status(), 429);
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(4)), "the earliest");
        let busy = exhausted(vec![not_sent(NotSent::LocalLimit {
            limit: LocalLimit::Concurrency { limit: 2 },
        })]);
        assert_eq!(busy.http_status(), 503);
        let mixed = exhausted(vec![
            not_sent(rpm(9)),
            Some(AttemptError::TimedOut(TimedOutError {
                after: Duration::from_millis(200),
                deadline: false,
                first_token: false,
            })),
        ]);
        assert_eq!(mixed.http_status(), 502);
        assert_eq!(exhausted(Vec::new()).http_status(), 502, "no attempt made");
        assert_eq!(exhausted(vec![not_sent(rpm(1)), None]).http_status(), 502);
    }

    #[test]
    fn attempt_records_serialise_with_their_outcome_code() {
        let json = serde_json::to_value(attempt(None)).unwrap();
        assert_eq!(json["outcome"], "success");
        assert_eq!(json["elapsed_ms"], 5);
        assert!(json.get("error").is_none());
    }
}
