//! See `ciguard_fuzz::policy_load` (fuzz/src/lib.rs) for what this target checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ciguard_fuzz::policy_load(data));
