//! The `ciguard` command.
fn main() {}
