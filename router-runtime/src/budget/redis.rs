//! The Redis store: shared by many router instances.
//!
//! Every operation is one server-side Lua script (`redis.lua`), so the
//! check-and-reserve is atomic across instances: there is no read on the
//! client followed by an increment. Keys are
//! `<prefix>:{<workload>}:line:<limit>:<period>` (one hash per line) plus
//! `<prefix>:{<workload>}:res|resdata|seq` for reservations; the braces keep
//! a workload's keys in one cluster slot. Line keys expire 35 days after
//! their period ends, given to Redis as a TTL from the ledger's own `now`,
//! so nothing depends on the ledger's clock agreeing with the server's. Reservations carry the ledger's TTL (default 10
//! minutes): a crashed router's in-flight spend is freed by the next
//! operation on that workload after it expires.
//!
//! Failure: every command is bounded by [`RedisStore::OP_TIMEOUT`]; a
//! refused connection, a reset or a timeout is a [`StoreError`], and the
//! ledger fails budgeted calls closed. The connection reconnects by itself
//! once the server is back.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};

use crate::budget::error::{StoreError, StoreErrorKind};
use crate::budget::store::BudgetStore;
use crate::clock::Millis;
use router_state::{
    CommitOutcome, CommitRequest, LineAmount, LineKey, LineState, Refusal, RefusalReason, ReservationId,
    ReserveOutcome, ReserveRequest,
};
use router_state::{LimitKind, Period};

const SCRIPT: &str = include_str!("redis.lua");

/// The largest amount the script handles exactly (`i64::MAX`).
const MAX_AMOUNT: u64 = i64::MAX as u64;

/// How long line keys outlive their period (so last month stays visible).
const LINE_GRACE_MS: u64 = 35 * 86_400_000;

/// Budget lines in Redis.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    script: Script,
    prefix: String,
    place: String,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("place", &self.place)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// The key prefix when the URL gives none.
    pub const DEFAULT_PREFIX: &'static str = "routec";
    /// The most one store operation may take before it counts as a failure.
    pub const OP_TIMEOUT: Duration = Duration::from_secs(2);

    /// Connects to the server at `url` (`redis://host:port/db`) with keys
    /// under `prefix`. Fails if the server cannot be reached now.
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisStore, StoreError> {
        let client = Client::open(url).map_err(|e| StoreError::new(StoreErrorKind::BadUrl, "redis", e))?;
        let info = client.get_connection_info();
        let place = format!("redis://{}/{}", info.addr(), info.redis_settings().db());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Self::OP_TIMEOUT))
            .set_response_timeout(Some(Self::OP_TIMEOUT))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = tokio::time::timeout(Self::OP_TIMEOUT * 2, ConnectionManager::new_with_config(client, config))
            .await
            .map_err(|_| StoreError::new(StoreErrorKind::Timeout, place.clone(), "no answer while connecting"))?
            .map_err(|e| StoreError::new(StoreErrorKind::Unavailable, place.clone(), e))?;
        Ok(RedisStore {
            conn,
            script: Script::new(SCRIPT),
            prefix: prefix.to_owned(),
            place,
        })
    }

    fn base(&self, workload: &str) -> String {
        format!("{}:{{{}}}", self.prefix, workload)
    }

    fn line_key(&self, workload: &str, key: &LineKey) -> String {
        format!("{}:line:{}:{}", self.base(workload), key.limit, key.period)
    }

    fn error(&self, kind: StoreErrorKind, detail: impl fmt::Display) -> StoreError {
        StoreError::new(kind, self.place.clone(), detail)
    }

    /// Runs the script with the workload's fixed keys, then `lines`' keys.
    async fn run(&self, workload: &str, lines: &[LineKey], args: Vec<String>) -> Result<Vec<String>, StoreError> {
        let base = self.base(workload);
        let mut inv = self.script.prepare_invoke();
        inv.key(format!("{base}:res"))
            .key(format!("{base}:resdata"))
            .key(format!("{base}:seq"));
        for l in lines {
            inv.key(self.line_key(workload, l));
        }
        for a in args {
            inv.arg(a);
        }
        let mut conn = self.conn.clone();
        match tokio::time::timeout(Self::OP_TIMEOUT, inv.invoke_async::<Vec<String>>(&mut conn)).await {
            Err(_) => Err(self.error(StoreErrorKind::Timeout, "no answer")),
            Ok(Err(e)) => Err(self.error(StoreErrorKind::Unavailable, e)),
            Ok(Ok(v)) => Ok(v),
        }
    }

    fn check_range(&self, lines: &[LineAmount]) -> Result<(), StoreError> {
        for l in lines {
            if l.cap > MAX_AMOUNT || l.amount > MAX_AMOUNT || l.alert_at.is_some_and(|a| a > MAX_AMOUNT) {
                return Err(self.error(
                    StoreErrorKind::OutOfRange,
                    format!("{} amounts above 2^63", l.key.limit),
                ));
            }
        }
        Ok(())
    }

    fn corrupt(&self, what: &str) -> StoreError {
        self.error(StoreErrorKind::Corrupt, format!("the budget script returned {what}"))
    }

    fn num(&self, s: &str) -> Result<u64, StoreError> {
        s.parse::<u64>().map_err(|_| self.corrupt("a malformed number"))
    }

    fn flag(&self, s: &str) -> Result<bool, StoreError> {
        match s {
            "1" => Ok(true),
            "0" => Ok(false),
            _ => Err(self.corrupt("a malformed flag")),
        }
    }
}

/// How long, from the ledger's `now`, a line key is kept: until 35 days
/// after its period ends. Redis is given this as a TTL (`PEXPIRE`), never as
/// an absolute time: an absolute expiry would be read against the Redis
/// server's wall clock, so a ledger whose clock differs from the server's
/// (a skewed host, or a test's manual clock) would see its lines vanish as
/// soon as they were written.
fn line_ttl(key: &LineKey, now: Millis) -> u64 {
    let end = key.limit.period_at(now).end();
    // A line of another period than `now`'s (a commit after rollover) keeps
    // at least the grace from now.
    let end = if Period::day_at(now).key() == key.period || Period::month_at(now).key() == key.period {
        end
    } else {
        now
    };
    end.0.saturating_add(LINE_GRACE_MS).saturating_sub(now.0).max(1)
}

#[async_trait]
impl BudgetStore for RedisStore {
    async fn reserve(&self, req: &ReserveRequest) -> Result<ReserveOutcome, StoreError> {
        self.check_range(&req.lines)?;
        let ttl = req.expires_at.0.saturating_sub(req.now.0).saturating_mul(2).max(1_000);
        let mut args = vec![
            "reserve".to_owned(),
            req.now.0.to_string(),
            req.expires_at.0.to_string(),
            ttl.to_string(),
        ];
        for l in &req.lines {
            args.push(l.cap.to_string());
            args.push(l.amount.to_string());
            args.push(line_ttl(&l.key, req.now).to_string());
        }
        let out = self.run(&req.workload, &req.keys(), args).await?;
        match out.first().map(String::as_str) {
            Some("granted") => {
                let id = out.get(1).ok_or_else(|| self.corrupt("no reservation id"))?;
                Ok(ReserveOutcome::Granted(ReservationId(self.num(id)?)))
            }
            Some("refused") => {
                let [_, reason, idx, newly, c, r] = out.as_slice() else {
                    return Err(self.corrupt("a malformed refusal"));
                };
                let reason = match reason.as_str() {
                    "halted" => RefusalReason::Halted,
                    "busy" => RefusalReason::Busy,
                    "too_large" => RefusalReason::TooLarge,
                    _ => return Err(self.corrupt("an unknown refusal reason")),
                };
                let idx = usize::try_from(self.num(idx)?).unwrap_or(usize::MAX);
                let line = idx
                    .checked_sub(1)
                    .and_then(|i| req.lines.get(i))
                    .ok_or_else(|| self.corrupt("a line out of range"))?;
                Ok(ReserveOutcome::Refused(Refusal {
                    key: line.key.clone(),
                    reason,
                    newly_halted: self.flag(newly)?,
                    cap: line.cap,
                    committed: self.num(c)?,
                    reserved: self.num(r)?,
                    amount: line.amount,
                }))
            }
            _ => Err(self.corrupt("an unknown answer")),
        }
    }

    async fn commit(&self, req: &CommitRequest) -> Result<CommitOutcome, StoreError> {
        self.check_range(&req.lines)?;
        let now = req.now;
        let mut args = vec!["commit".to_owned(), req.id.0.to_string()];
        let keys: Vec<LineKey> = req.lines.iter().map(|l| l.key.clone()).collect();
        for l in &req.lines {
            args.push(l.cap.to_string());
            args.push(l.amount.to_string());
            args.push(l.alert_at.map(|a| a.to_string()).unwrap_or_default());
            args.push(line_ttl(&l.key, now).to_string());
        }
        let out = self.run(&req.workload, &keys, args).await?;
        if out.len() != req.lines.len() * 7 {
            return Err(self.corrupt("a commit of the wrong length"));
        }
        let mut outcome = CommitOutcome::default();
        for (l, v) in req.lines.iter().zip(out.chunks_exact(7)) {
            if self.flag(&v[0])? {
                outcome.alerts.push(l.key.limit);
            }
            if self.flag(&v[1])? {
                outcome.halted.push(l.key.limit);
            }
            outcome.states.push(LineState {
                committed: self.num(&v[2])?,
                reserved: self.num(&v[3])?,
                halted: self.flag(&v[4])?,
                unlocked: self.flag(&v[5])?,
                alerted: self.flag(&v[6])?,
            });
        }
        Ok(outcome)
    }

    async fn release(&self, workload: &str, id: ReservationId) -> Result<(), StoreError> {
        self.run(workload, &[], vec!["release".to_owned(), id.0.to_string()])
            .await
            .map(|_| ())
    }

    async fn unlock(&self, workload: &str, lines: &[LineKey]) -> Result<Vec<LimitKind>, StoreError> {
        let out = self.run(workload, lines, vec!["unlock".to_owned()]).await?;
        out.iter()
            .map(|i| {
                let i = usize::try_from(self.num(i)?).unwrap_or(usize::MAX);
                i.checked_sub(1)
                    .and_then(|i| lines.get(i))
                    .map(|k| k.limit)
                    .ok_or_else(|| self.corrupt("a line out of range"))
            })
            .collect()
    }

    async fn status(&self, workload: &str, lines: &[LineKey], now: Millis) -> Result<Vec<LineState>, StoreError> {
        let out = self
            .run(workload, lines, vec!["status".to_owned(), now.0.to_string()])
            .await?;
        if out.len() != lines.len() * 5 {
            return Err(self.corrupt("a status of the wrong length"));
        }
        out.chunks_exact(5)
            .map(|v| {
                Ok(LineState {
                    committed: self.num(&v[0])?,
                    reserved: self.num(&v[1])?,
                    halted: self.flag(&v[2])?,
                    unlocked: self.flag(&v[3])?,
                    alerted: self.flag(&v[4])?,
                })
            })
            .collect()
    }

    fn describe(&self) -> String {
        self.place.clone()
    }
}
