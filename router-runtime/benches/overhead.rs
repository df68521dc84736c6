//! The runtime's per-call overhead over calling the adapter directly (filled in next).

fn main() {}
