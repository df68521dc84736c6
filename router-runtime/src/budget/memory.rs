//! The in-memory store: the [`BudgetBook`] behind one mutex. Nothing
//! survives the process; for tests, demos and single-process trials.

use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::budget::error::StoreError;
use crate::budget::store::BudgetStore;
use crate::clock::Millis;
use router_state::BudgetBook;
use router_state::LimitKind;
use router_state::{CommitOutcome, CommitRequest, LineKey, LineState, ReservationId, ReserveOutcome, ReserveRequest};

/// Budget lines in this process's memory. Atomic because every operation
/// holds the one mutex for its whole check-and-update.
#[derive(Debug, Default)]
pub struct MemoryStore {
    book: Mutex<BudgetBook>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn book(&self) -> MutexGuard<'_, BudgetBook> {
        // A poisoned lock means a panic mid-operation elsewhere; the book's
        // operations keep it consistent at every step, so carry on.
        self.book.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl BudgetStore for MemoryStore {
    async fn reserve(&self, req: &ReserveRequest) -> Result<ReserveOutcome, StoreError> {
        Ok(self.book().reserve(req))
    }

    async fn commit(&self, req: &CommitRequest) -> Result<CommitOutcome, StoreError> {
        Ok(self.book().commit(req))
    }

    async fn release(&self, workload: &str, id: ReservationId) -> Result<(), StoreError> {
        self.book().release(workload, id);
        Ok(())
    }

    async fn unlock(&self, workload: &str, lines: &[LineKey]) -> Result<Vec<LimitKind>, StoreError> {
        Ok(self.book().unlock(workload, lines))
    }

    async fn status(&self, workload: &str, lines: &[LineKey], now: Millis) -> Result<Vec<LineState>, StoreError> {
        Ok(self.book().status(workload, lines, now))
    }

    fn describe(&self) -> String {
        "memory:".to_owned()
    }
}
