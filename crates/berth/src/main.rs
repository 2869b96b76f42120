//! The berth command-line client.
fn main() {}
