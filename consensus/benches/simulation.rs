//! Placeholder until the simulation exists.
fn main() {}
