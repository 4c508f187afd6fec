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
#[case::quoted_values("quoted-values")]
#[case::ambiguous_ids("ambiguous-ids")]
#[case::exceptions("exceptions")]
#[case::exceptions_replaced_check("exceptions-replaced-check")]
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

/// Quoted values where a number or a boolean is expected became numbers: `'0x10'` 16,
/// `' 7'` 7, `'0x0'` 0 (a forced root user), and lint said nothing. Each is an error at
/// file:line:column now, for every command that loads the policy.
#[rstest]
#[case::hex(
    "containers:\n    enforced:\n      runAsUser: '0x10'\n",
    "6:18: spec.containers.enforced.runAsUser: \"0x10\" is a quoted string, expected an integer"
)]
#[case::space(
    "containers:\n    default:\n      runAsUser: ' 7'\n",
    "6:18: spec.containers.default.runAsUser: \" 7\" is a quoted string, expected an integer"
)]
#[case::hex_zero_is_not_root(
    "containers:\n    enforced:\n      runAsUser: '0x0'\n",
    "6:18: spec.containers.enforced.runAsUser: \"0x0\" is a quoted string"
)]
#[case::double_quoted_decimal(
    "pod:\n    default: {fsGroup: \"1000\"}\n",
    "5:24: spec.pod.default.fsGroup: \"1000\" is a quoted string"
)]
#[case::list_item(
    "pod:\n    default: {supplementalGroups: [1, '2']}\n",
    "5:39: spec.pod.default.supplementalGroups[1]: \"2\" is a quoted string"
)]
#[case::tagged_str("build:\n    enforced: {runAsGroup: !!str 5}\n", "5:34: invalid i64")]
#[case::through_an_alias(
    "pod:\n    default: {fsGroup: &g '5'}\n  containers:\n    default: {runAsGroup: *g}\n",
    "7:27: spec.containers.default.runAsGroup: \"5\" is a quoted string"
)]
#[case::boolean(
    "containers:\n    enforced: {privileged: 'false'}\n",
    "5:28: spec.containers.enforced.privileged: \"false\" is a quoted string, expected true or false"
)]
#[case::leading_zero_user(
    "allowedUsers: [\"01000\"]\n",
    "4:18: allowedUsers[0] \"01000\": \"01000\" has a leading zero, which is ambiguous (octal or decimal?), expected \"1000\""
)]
#[case::double_zero(
    "allowedUsers: [\"00\"]\n",
    "4:18: allowedUsers[0] \"00\": \"00\" has a leading zero, which is ambiguous (octal or decimal?), expected \"0\""
)]
#[case::leading_zero_in_a_range(
    "allowedGroups: [\"!0100-200\"]\n",
    "4:19: allowedGroups[0] \"!0100-200\": \"0100\" has a leading zero"
)]
fn quoted_or_ambiguous_value_is_an_error(#[case] spec: &str, #[case] message: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.yaml");
    std::fs::write(
        &path,
        format!("apiVersion: ciguard.io/v1alpha1\nkind: SecurityPolicy\nspec:\n  {spec}"),
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let out = ciguard()
        .args(["render", "--policy", p, "examples/gitlab-runner/build-pod.yaml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("error: {p}:{message}")), "{stderr}");
    assert!(out.stdout.is_empty());
    let out = ciguard().args(["lint", p]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("error[invalid]: ") && stdout.contains("= help: "),
        "{stdout}"
    );
}

/// In a JSON policy a string where a number is expected is a type error; lint explains it.
#[test]
fn json_policy_with_a_string_for_a_number_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.json");
    std::fs::write(
        &path,
        r#"{"apiVersion":"ciguard.io/v1alpha1","kind":"SecurityPolicy","spec":{"containers":{"enforced":{"runAsUser":"0x0"}}}}"#,
    )
    .unwrap();
    let out = ciguard().args(["lint", path.to_str().unwrap()]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("expected i64"), "{stdout}");
    assert!(
        stdout.contains("= help: expected a whole number, e.g. 1000, written plainly"),
        "{stdout}"
    );
}

/// Unquoted numbers are numbers, in every spelling YAML 1.2 gives them.
#[rstest]
#[case::decimal("runAsUser: 1000", 1000)]
#[case::hex("runAsUser: 0x3e8", 1000)]
#[case::octal("runAsUser: 0o1750", 1000)]
fn plain_numbers_are_read(#[case] field: &str, #[case] want: i64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.yaml");
    std::fs::write(
        &path,
        format!("apiVersion: ciguard.io/v1alpha1\nkind: SecurityPolicy\nspec:\n  containers:\n    enforced: {{{field}}}\n"),
    )
    .unwrap();
    let out = ciguard()
        .args([
            "render",
            "-o",
            "json",
            "--policy",
            path.to_str().unwrap(),
            "examples/gitlab-runner/build-pod.yaml",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c < 2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pod: ciguard::value::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pod["spec"]["containers"][0]["securityContext"]["runAsUser"], want);
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
    let printed: ciguard::value::Value = serde_json::from_slice(&out.stdout).unwrap();
    let committed: ciguard::value::Value = serde_json::from_str(
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
