//! The fuzz targets' checks (fuzz/src/lib.rs) on stable Rust, without cargo-fuzz: every
//! committed seed (fuzz/corpus/<target>/) and every minimised crash
//! (fuzz/regressions/<target>/) is replayed, and each crash a fuzz run found has a test of
//! its own below. See docs/fuzzing.md.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

use std::path::{Path, PathBuf};

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod targets;

fn inputs(dir: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

/// Runs every file of `fuzz/<dir>/<target>/` through its target; a panic names the file.
fn replay(dir: &str) -> usize {
    let mut count = 0;
    for (name, run) in targets::TARGETS {
        for file in inputs(dir, name) {
            let data = std::fs::read(&file).unwrap();
            if std::panic::catch_unwind(|| run(&data)).is_err() {
                panic!("fuzz target {name} fails on {}", file.display());
            }
            count += 1;
        }
    }
    count
}

#[test]
fn seed_corpus_passes_every_target() {
    let count = replay("fuzz/corpus");
    assert!(count >= 100, "only {count} seeds in fuzz/corpus");
}

#[test]
fn minimised_crashes_pass_every_target() {
    replay("fuzz/regressions");
}
