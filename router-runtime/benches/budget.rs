//! Budget reserve+commit per store (filled in below).

fn main() {}
