//! `ciguard lint`, `ciguard schema` and `ciguard import` as a user runs them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

mod common;

use common::ciguard;
use rstest::rstest;

#[rstest]
#[case::root_conflict("root-conflict")]
#[case::empty_allowlist("empty-allowlist")]
#[case::unreachable_matcher("unreachable-matcher")]
#[case::hidden_default("hidden-default")]
#[case::pss_probe("pss-probe")]
#[case::pss_probe_origin("pss-probe-origin")]
#[case::invalid("invalid")]
fn each_finding_kind(#[case] name: &str) {
    let out = ciguard()
        .args(["lint", &format!("tests/data/lint/{name}.yaml")])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    insta::assert_snapshot!(format!("lint__{name}"), String::from_utf8(out.stdout).unwrap());
}

#[test]
fn every_example_policy_is_clean() {
    let mut policies: Vec<String> =
        std::fs::read_dir(format!("{}/examples/policies", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .map(|e| format!("examples/policies/{}", e.unwrap().file_name().to_string_lossy()))
            .collect();
    policies.push("src/policy/builtin.yaml".into());
    for p in policies {
        ciguard()
            .args(["lint", &p])
            .assert()
            .code(0)
            .stdout(format!("{p}: no findings\n"));
    }
}

#[test]
fn unreadable_policy_exits_2() {
    ciguard().args(["lint", "nope.yaml"]).assert().code(2);
    ciguard()
        .args(["lint", "tests/data/policies/bad/syntax.yaml"])
        .assert()
        .code(2);
}

#[test]
fn finding_codes() {
    let codes: String = ciguard::lint::Code::ALL
        .iter()
        .map(|c| format!("{}: {}\n", c.as_str(), c.description()))
        .collect();
    insta::assert_snapshot!(codes);
}

#[test]
fn schema_is_the_committed_one_and_describes_the_policy() {
    let out = ciguard().arg("schema").output().unwrap();
    assert!(out.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/schema/policy.schema.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        printed, committed,
        "schema/policy.schema.json is stale: run `cargo run -- schema > schema/policy.schema.json`"
    );
    let spec = &printed["$defs"]["PolicySpec"]["properties"];
    for key in [
        "preset",
        "roles",
        "pss",
        "onViolation",
        "allowedUsers",
        "allowedGroups",
        "pod",
        "containers",
        "build",
        "helper",
        "service",
        "init",
        "workdirInit",
    ] {
        assert!(spec.get(key).is_some(), "schema lacks spec.{key}");
    }
}

#[test]
fn examples_reference_the_schema() {
    for entry in std::fs::read_dir(format!("{}/examples/policies", env!("CARGO_MANIFEST_DIR"))).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../../schema/policy.schema.json\n"),
            "{} lacks the schema comment",
            path.display()
        );
    }
}
