//! Where an IR item was written, so diagnostics and explanations can point at
//! the policy text without `router-core` knowing about files or miette.

use serde::Serialize;

/// A byte range in one of the policy's source files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Origin {
    /// Index into [`crate::Policy::files`].
    pub file: u32,
    /// Byte offset of the first character.
    pub start: u32,
    /// Byte offset one past the last character.
    pub end: u32,
}

impl Origin {
    /// A range in file `file`.
    pub const fn new(file: u32, start: u32, end: u32) -> Self {
        Origin { file, start, end }
    }
}
