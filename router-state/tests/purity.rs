//! The same purity rules as `router-core`: no clock, I/O, async or
//! randomness of its own. One file holds the rules for both crates.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../router-core/tests/purity.rs"]
mod purity;
