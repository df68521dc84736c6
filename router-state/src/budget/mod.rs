//! Budget rules as data and a synchronous book: the lines a workload's
//! budget makes for a period, and the rules that reserve, commit, halt and
//! unlock them. The async ledger and the stores that keep lines across
//! processes live in `router-runtime`; the in-memory store and the
//! simulator run this book directly.

pub(crate) mod book;
pub(crate) mod lines;
pub(crate) mod period;
