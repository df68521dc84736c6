//! The SQLite store: the embedded default. One file; several routers (or a
//! router and `routec budget`) may open it at once.
//!
//! Durability: WAL journal with `synchronous=FULL`. With WAL, `NORMAL`
//! already survives a process crash (`kill -9`: the WAL is in the OS page
//! cache), but can lose the last transactions on power loss or an OS crash;
//! budgets are money, and one fsync per reserve and per commit is small
//! beside an LLM call, so `FULL`: a commit that returned is on disk.
//!
//! Atomicity: every operation is one `BEGIN IMMEDIATE` transaction, which
//! takes the file's write lock before reading, so two ledgers on one file
//! serialise their check-and-reserve; a busy timeout makes the second wait
//! (up to [`SqliteStore::BUSY_TIMEOUT`]) instead of failing. Calls run on
//! tokio's blocking pool, never on the async executor.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::budget::error::{StoreError, StoreErrorKind};
use crate::budget::store::BudgetStore;
use crate::clock::Millis;
use router_state::LimitKind;
use router_state::{CommitOutcome, CommitRequest, LineKey, LineState, ReservationId, ReserveOutcome, ReserveRequest};
use router_state::{apply_commit, decide_reserve};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS budget_line (
    workload   TEXT NOT NULL,
    limit_kind TEXT NOT NULL,
    period     TEXT NOT NULL,
    committed  INTEGER NOT NULL DEFAULT 0,
    reserved   INTEGER NOT NULL DEFAULT 0,
    halted     INTEGER NOT NULL DEFAULT 0,
    unlocked   INTEGER NOT NULL DEFAULT 0,
    alerted    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (workload, limit_kind, period)
);
CREATE TABLE IF NOT EXISTS budget_reservation (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    workload   TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS budget_reservation_expiry ON budget_reservation (workload, expires_at);
CREATE TABLE IF NOT EXISTS budget_reservation_line (
    reservation INTEGER NOT NULL,
    limit_kind  TEXT NOT NULL,
    period      TEXT NOT NULL,
    amount      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS budget_reservation_line_id ON budget_reservation_line (reservation);
";

/// Budget lines in an SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl SqliteStore {
    /// How long an operation waits for another connection's write lock.
    pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

    /// Opens (creating if needed) the store in the file at `path`.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let p = path.clone();
        let conn = tokio::task::spawn_blocking(move || open_conn(&p))
            .await
            .map_err(|e| StoreError::new(StoreErrorKind::Unavailable, describe(&path), e))?
            .map_err(|e| sql_error(&path, e))?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            path,
        })
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the blocking pool.
    async fn with_tx<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let path = self.path.clone();
        let path2 = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
        .map_err(|e| StoreError::new(StoreErrorKind::Unavailable, describe(&path2), e))?
        .map_err(|e: rusqlite::Error| sql_error(&path, e))
    }
}

fn open_conn(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(SqliteStore::BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

fn describe(path: &Path) -> String {
    format!("sqlite:{}", path.display())
}

fn sql_error(path: &Path, e: rusqlite::Error) -> StoreError {
    let kind = match &e {
        rusqlite::Error::IntegralValueOutOfRange(..) | rusqlite::Error::FromSqlConversionFailure(..) => {
            StoreErrorKind::Corrupt
        }
        _ => StoreErrorKind::Unavailable,
    };
    StoreError::new(kind, describe(path), e)
}

fn to_sql(n: u64) -> rusqlite::Result<i64> {
    i64::try_from(n).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

fn from_sql(idx: usize, n: i64) -> rusqlite::Result<u64> {
    u64::try_from(n).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(idx, n))
}

fn load_line(tx: &Transaction<'_>, workload: &str, key: &LineKey) -> rusqlite::Result<LineState> {
    tx.query_row(
        "SELECT committed, reserved, halted, unlocked, alerted FROM budget_line
         WHERE workload = ?1 AND limit_kind = ?2 AND period = ?3",
        params![workload, key.limit.as_str(), key.period],
        |row| {
            Ok(LineState {
                committed: from_sql(0, row.get(0)?)?,
                reserved: from_sql(1, row.get(1)?)?,
                halted: row.get(2)?,
                unlocked: row.get(3)?,
                alerted: row.get(4)?,
            })
        },
    )
    .optional()
    .map(Option::unwrap_or_default)
}

fn store_line(tx: &Transaction<'_>, workload: &str, key: &LineKey, st: &LineState) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO budget_line (workload, limit_kind, period, committed, reserved, halted, unlocked, alerted)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (workload, limit_kind, period) DO UPDATE SET
           committed = excluded.committed, reserved = excluded.reserved, halted = excluded.halted,
           unlocked = excluded.unlocked, alerted = excluded.alerted",
        params![
            workload,
            key.limit.as_str(),
            key.period,
            to_sql(st.committed)?,
            to_sql(st.reserved)?,
            st.halted,
            st.unlocked,
            st.alerted
        ],
    )?;
    Ok(())
}

/// Frees one reservation's lines and deletes it; false if it was not there.
fn free_reservation(tx: &Transaction<'_>, workload: &str, id: i64) -> rusqlite::Result<bool> {
    let owner: Option<String> = tx
        .query_row("SELECT workload FROM budget_reservation WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?;
    if owner.as_deref() != Some(workload) {
        return Ok(false);
    }
    let lines: Vec<(String, String, i64)> = {
        let mut stmt =
            tx.prepare_cached("SELECT limit_kind, period, amount FROM budget_reservation_line WHERE reservation = ?1")?;
        stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    for (i, (limit, period, amount)) in lines.into_iter().enumerate() {
        let limit: LimitKind = limit
            .parse()
            .map_err(|()| rusqlite::Error::InvalidColumnType(i, limit.clone(), rusqlite::types::Type::Text))?;
        let key = LineKey { limit, period };
        let mut st = load_line(tx, workload, &key)?;
        st.reserved = st.reserved.saturating_sub(from_sql(2, amount)?);
        store_line(tx, workload, &key, &st)?;
    }
    tx.execute("DELETE FROM budget_reservation_line WHERE reservation = ?1", [id])?;
    tx.execute("DELETE FROM budget_reservation WHERE id = ?1", [id])?;
    Ok(true)
}

fn expire(tx: &Transaction<'_>, workload: &str, now: Millis) -> rusqlite::Result<()> {
    let ids: Vec<i64> = {
        let mut stmt =
            tx.prepare_cached("SELECT id FROM budget_reservation WHERE workload = ?1 AND expires_at <= ?2")?;
        stmt.query_map(params![workload, to_sql(now.0)?], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?
    };
    for id in ids {
        free_reservation(tx, workload, id)?;
    }
    Ok(())
}

fn reserve_tx(tx: &Transaction<'_>, req: &ReserveRequest) -> rusqlite::Result<ReserveOutcome> {
    expire(tx, &req.workload, req.now)?;
    let mut states = Vec::with_capacity(req.lines.len());
    for l in &req.lines {
        states.push(load_line(tx, &req.workload, &l.key)?);
    }
    let decision = decide_reserve(req, &states);
    for &i in &decision.newly_halted {
        states[i].halted = true;
        store_line(tx, &req.workload, &req.lines[i].key, &states[i])?;
    }
    if let Some(refusal) = decision.refusal {
        return Ok(ReserveOutcome::Refused(refusal));
    }
    tx.execute(
        "INSERT INTO budget_reservation (workload, expires_at) VALUES (?1, ?2)",
        params![req.workload, to_sql(req.expires_at.0)?],
    )?;
    let id = tx.last_insert_rowid();
    for (l, st) in req.lines.iter().zip(&mut states) {
        st.reserved = st.reserved.saturating_add(l.amount);
        store_line(tx, &req.workload, &l.key, st)?;
        tx.execute(
            "INSERT INTO budget_reservation_line (reservation, limit_kind, period, amount) VALUES (?1, ?2, ?3, ?4)",
            params![id, l.key.limit.as_str(), l.key.period, to_sql(l.amount)?],
        )?;
    }
    Ok(ReserveOutcome::Granted(ReservationId(from_sql(0, id)?)))
}

fn commit_tx(tx: &Transaction<'_>, req: &CommitRequest) -> rusqlite::Result<CommitOutcome> {
    free_reservation(tx, &req.workload, to_sql(req.id.0)?)?;
    let mut out = CommitOutcome::default();
    for l in &req.lines {
        let mut st = load_line(tx, &req.workload, &l.key)?;
        let (alert, halted) = apply_commit(l, &mut st);
        store_line(tx, &req.workload, &l.key, &st)?;
        if alert {
            out.alerts.push(l.key.limit);
        }
        if halted {
            out.halted.push(l.key.limit);
        }
        out.states.push(st);
    }
    Ok(out)
}

#[async_trait]
impl BudgetStore for SqliteStore {
    async fn reserve(&self, req: &ReserveRequest) -> Result<ReserveOutcome, StoreError> {
        let req = req.clone();
        self.with_tx(move |tx| reserve_tx(tx, &req)).await
    }

    async fn commit(&self, req: &CommitRequest) -> Result<CommitOutcome, StoreError> {
        let req = req.clone();
        self.with_tx(move |tx| commit_tx(tx, &req)).await
    }

    async fn release(&self, workload: &str, id: ReservationId) -> Result<(), StoreError> {
        let workload = workload.to_owned();
        self.with_tx(move |tx| free_reservation(tx, &workload, to_sql(id.0)?).map(|_| ()))
            .await
    }

    async fn unlock(&self, workload: &str, lines: &[LineKey]) -> Result<Vec<LimitKind>, StoreError> {
        let workload = workload.to_owned();
        let lines = lines.to_vec();
        self.with_tx(move |tx| {
            let mut lifted = Vec::new();
            for key in &lines {
                let mut st = load_line(tx, &workload, key)?;
                if st.halted {
                    st.halted = false;
                    st.unlocked = true;
                    store_line(tx, &workload, key, &st)?;
                    lifted.push(key.limit);
                }
            }
            Ok(lifted)
        })
        .await
    }

    async fn status(&self, workload: &str, lines: &[LineKey], now: Millis) -> Result<Vec<LineState>, StoreError> {
        let workload = workload.to_owned();
        let lines = lines.to_vec();
        self.with_tx(move |tx| {
            expire(tx, &workload, now)?;
            lines.iter().map(|k| load_line(tx, &workload, k)).collect()
        })
        .await
    }

    fn describe(&self) -> String {
        describe(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_file_is_in_wal_mode_with_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("b.db")).await.unwrap();
        let (mode, sync): (String, i64) = {
            let c = store.conn.lock().unwrap();
            (
                c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap(),
                c.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap(),
            )
        };
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "2 is FULL");
    }

    #[tokio::test]
    async fn an_unopenable_path_is_a_store_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = SqliteStore::open(dir.path().join("missing-dir/b.db"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), StoreErrorKind::Unavailable);
        assert!(err.to_string().contains("missing-dir"), "{err}");
    }
}
