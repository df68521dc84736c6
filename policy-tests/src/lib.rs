//! The policy test runner behind `routec test`: each `test` block of a
//! policy is decided by the same engine as production and `routec explain`
//! ([`router_core::Decider`]), its expectations are compared with the
//! decision, and its explanation with the stored snapshot.
//!
//! The steps read as files: `run` (a test through the engine, expectations
//! checked) → `snapshot` (the stored explanations, their file format and
//! diff) → `coverage` (what of the route graph no test reached) → `report`
//! (human, JSON, GitHub annotations, JUnit XML).
//!
//! ```
//! use policy_lang::{SourceFile, compile};
//!
//! let text = r#"
//!     provider mock { adapter mock; tier free; model echo { price free } }
//!     workload hello { data public; route mock/echo }
//!     test "hello goes to the mock" { workload hello; expect first mock/echo }
//! "#;
//! let compiled = compile(&[SourceFile::new("hello.route", text)]).unwrap();
//! let results = policy_tests::run_all(compiled.policy(), compiled.tests(), None, policy_tests::Mode::default());
//! assert!(results[0].passed());
//! ```
//!
//! No I/O here but [`SnapshotFile::read`] and [`SnapshotFile::write`], which
//! touch the one snapshot file a caller names.

mod coverage;
mod report;
mod run;
mod snapshot;

pub use coverage::{Coverage, coverage};
pub use report::{FileRun, render_github, render_human, render_json, render_junit};
pub use run::{Failure, Mode, SnapshotStatus, TestResult, run_all, run_test};
pub use snapshot::{SnapshotError, SnapshotFile, line_diff};
