//! The berth daemon.
fn main() {}
