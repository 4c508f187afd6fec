//! See `ciguard_fuzz::input_reader` (fuzz/src/lib.rs) for what this target checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ciguard_fuzz::input_reader(data));
