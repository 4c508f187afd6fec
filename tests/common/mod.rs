//! Helpers shared by the integration tests.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

use std::{io::Write, path::PathBuf};

use ciguard::value::Value;
use ciguard::{ValidPolicy, merge::Rendered};

/// Parses policy YAML, panicking with the errors.
pub fn policy(yaml: &str) -> ValidPolicy {
    let text = format!("apiVersion: ciguard.io/v1alpha1\nkind: SecurityPolicy\nspec:\n{yaml}");
    match ciguard::policy::load::from_str(&text, "test-policy.yaml") {
        Ok(p) => p,
        Err(e) => panic!("policy does not load:\n{e}\n---\n{text}"),
    }
}

/// Reads a YAML/JSON file of the repo as one document.
pub fn example(path: &str) -> Value {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()));
    ciguard::source::documents(&text, path).unwrap().remove(0)
}

/// The `../shared` folder beside the project (or `sub` inside it), or `None` when it is
/// absent. A skip says why on stderr, written straight to the stream so that `cargo test`
/// shows it even for a passing test (`eprintln!` inside a test is captured and hidden).
/// With `CI` set, its absence fails the test.
pub fn shared(sub: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared")
        .join(sub);
    if dir.exists() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{} is missing and CI is set: the shared/ folder must sit beside the project",
        dir.display()
    );
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {test}: {} is absent (it sits beside the project in CI; with CI set this fails)",
        dir.display()
    );
    None
}

/// Renders and panics on error.
pub fn render(policy: &ValidPolicy, pod: &Value) -> Rendered {
    ciguard::merge::render(policy, pod).unwrap_or_else(|e| panic!("render failed: {e}"))
}

/// The pod spec of a rendered object (Pods only).
pub fn spec(r: &Rendered) -> &Value {
    &r.object["spec"]
}

/// A container (or init container) by name.
pub fn container<'a>(r: &'a Rendered, name: &str) -> &'a Value {
    ["containers", "initContainers"]
        .iter()
        .filter_map(|l| spec(r)[l].as_array())
        .flatten()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// The value a container runs with: its own, else the pod's.
pub fn effective<'a>(r: &'a Rendered, name: &str, field: &str) -> Option<&'a Value> {
    container(r, name)["securityContext"]
        .get(field)
        .or_else(|| spec(r)["securityContext"].get(field))
}

/// The real binary, run from the repository root.
pub fn ciguard() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::new(env!("CARGO_BIN_EXE_ciguard"));
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}
