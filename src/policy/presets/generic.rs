//! `generic`: any pod. Regular containers run the job, init containers are init.

use super::{Definition, Preset, Role};

/// The `generic` table: no rules, only remainders; `auto` falls back to it.
pub const DEFINITION: Definition = Definition {
    preset: Preset::Generic,
    recognise: &[],
    rules: &[],
    remainder: Role::Build,
    remainder_probe: "build",
    init_remainder: Role::Init,
    init_probe: "init",
    source: "SPEC §2 \"Roles\"",
};
