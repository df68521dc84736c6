//! Inlay hints: the place for each workload's worst-case cost and attempts
//! per call, shown after its name, once the compiler computes those bounds.
//! It does not yet, so there are no hints, and the server does not
//! advertise the capability. When `policy_lang` gains the bounds, this
//! returns one hint per workload definition in the file (`File::definitions`
//! with `SymbolKind::Workload`, at the end of `name_range`) and
//! `server::capabilities` sets `inlay_hint_provider`.

use lsp_types::InlayHint;

use crate::workspace::{File, PolicyDir};

/// The hints for `file`: none until the bounds exist.
pub(crate) fn hints(_policy: &PolicyDir, _file: &File) -> Vec<InlayHint> {
    Vec::new()
}
