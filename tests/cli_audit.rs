//! `ciguard audit`, run as the real binary: the table and the JSON over pods of all
//! seven CI systems, workloads, exit codes 0/1/2, stdin. Inputs are in `tests/data/audit/`.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers: a failed unwrap is a failed test

use assert_cmd::Command;
use predicates::prelude::*;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/audit");

fn audit() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ciguard"));
    cmd.current_dir(DATA).arg("audit");
    cmd
}

/// Runs the command, checks its exit code and empty stderr, returns stdout.
fn stdout_of(cmd: &mut Command, code: i32) -> String {
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(code), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn text_table_over_all_ci_systems() {
    insta::assert_snapshot!(stdout_of(audit().arg("mixed.yaml"), 1));
}

#[test]
fn json_over_all_ci_systems() {
    let out = stdout_of(audit().args(["-o", "json", "mixed.yaml"]), 1);
    let value: ciguard::value::Value = serde_json::from_str(&out).unwrap();
    insta::assert_json_snapshot!(value);
    // One object on one line, in the SPEC's key order.
    assert_eq!(out.lines().count(), 1);
    assert!(out.starts_with(r#"{"groups":[{"namespace":"arc-runners","preset":"github-arc","pods":2,"changed":2,"denied":1,"checks":{"#));
}

/// The same List under a `preset: auto` policy: each pod's containers get the roles of its
/// own system (Argo's `wait`, ARC's `runner`, Buildkite's `checkout` …), so the helper and
/// init defaults reach them. Nothing is denied (`onViolation: warn`): the dind runner's
/// `privileged` is dropped with a warning, Buildkite's root requests too.
#[test]
fn auto_policy_over_all_ci_systems() {
    let text = stdout_of(
        audit().args(["--policy", "../../../examples/policies/auto.yaml", "mixed.yaml"]),
        0,
    );
    insta::assert_snapshot!(text);
    let json = stdout_of(
        audit().args([
            "-o",
            "json",
            "--policy",
            "../../../examples/policies/auto.yaml",
            "mixed.yaml",
        ]),
        0,
    );
    let value: ciguard::value::Value = serde_json::from_str(&json).unwrap();
    insta::assert_json_snapshot!(value);
}

#[test]
fn rejected_requests_count_under_their_code() {
    // onViolation: deny turns each disallowed user and group into a denial.
    let out = stdout_of(
        audit().args([
            "--policy",
            "../policies/deny-root.yaml",
            "mixed.yaml",
            "workloads.yaml",
        ]),
        1,
    );
    insta::assert_snapshot!(out);
}

#[test]
fn workloads_count_their_pod_template_and_nothing_denied_exits_0() {
    let out = stdout_of(audit().args(["-o", "json", "workloads.yaml"]), 0);
    assert_eq!(
        out,
        concat!(
            r#"{"groups":[{"namespace":"","preset":"generic","pods":1,"changed":1,"denied":0,"checks":{},"requests":{}},"#,
            r#"{"namespace":"gitlab-ci","preset":"gitlab-runner","pods":1,"changed":1,"denied":0,"checks":{},"requests":{"disallowed-id":1}}]}"#,
            "\n"
        )
    );
}

#[test]
fn stdin_reads_like_a_file() {
    let file = stdout_of(audit().args(["-o", "json", "mixed.yaml"]), 1);
    let text = std::fs::read_to_string(format!("{DATA}/mixed.yaml")).unwrap();
    let stdin = stdout_of(audit().args(["-o", "json", "-"]).write_stdin(text), 1);
    assert_eq!(stdin, file);
}

#[test]
fn a_directory_is_read_recursively() {
    // mixed.yaml and workloads.yaml; no-pods.yaml adds nothing; malformed.yaml is elsewhere.
    let dir = stdout_of(audit().args(["-o", "json", "../../../examples"]), 1);
    assert!(
        dir.contains(r#""namespace":"tekton-ci","preset":"tekton","pods":1"#),
        "{dir}"
    );
    assert!(
        dir.contains(r#""namespace":"gitlab-ci","preset":"gitlab-runner","pods":1"#),
        "{dir}"
    );
}

#[test]
fn no_pod_carrier_warns_and_exits_0() {
    audit()
        .arg("no-pods.yaml")
        .assert()
        .code(0)
        .stderr("warning: no pod or workload with a pod template in the inputs\n");
}

#[test]
fn a_malformed_pod_exits_2_naming_it() {
    audit()
        .arg("malformed.yaml")
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(
            "error: malformed.yaml:5:15: Pod \"broken\": /spec/containers: expected a list of containers",
        ));
    // From stdin the text is gone: the document is named by its index.
    audit()
        .arg("-")
        .write_stdin(std::fs::read(format!("{DATA}/malformed.yaml")).unwrap())
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "error: -#0: Pod \"broken\": /spec/containers: expected a list of containers",
        ));
}

#[test]
fn input_and_policy_errors_exit_2() {
    audit()
        .arg("missing.yaml")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("failed to read 'missing.yaml'"));
    audit()
        .args(["--policy", "missing-policy.yaml", "mixed.yaml"])
        .assert()
        .code(2)
        .stdout("");
    audit()
        .arg("-")
        .write_stdin("")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no objects passed"));
}

#[test]
fn a_large_json_list_on_stdin_counts_every_item() {
    // `kubectl get pods -A -o json`: `items` before `kind`; more items than the reader's
    // window holds, so they are streamed (ciguard::stream) and counted on every core.
    let pods: Vec<String> = (0..3_000)
        .map(|i| {
            format!(
                r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"p{i}","namespace":"ns{}"}},"spec":{{"containers":[{{"name":"c","image":"i"}}]}}}}"#,
                i % 3
            )
        })
        .collect();
    let list = format!(
        r#"{{"apiVersion":"v1","items":[{}],"kind":"List","metadata":{{}}}}"#,
        pods.join(",")
    );
    let out = stdout_of(audit().args(["-o", "json", "-"]).write_stdin(list), 0);
    let report: ciguard::value::Value = serde_json::from_str(&out).unwrap();
    let groups = report["groups"].as_array().unwrap();
    let pods: Vec<(&str, u64)> = groups
        .iter()
        .map(|g| (g["namespace"].as_str().unwrap(), g["pods"].as_u64().unwrap()))
        .collect();
    assert_eq!(pods, [("ns0", 1_000), ("ns1", 1_000), ("ns2", 1_000)]);
}
