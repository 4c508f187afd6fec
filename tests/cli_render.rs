//! `ciguard render` as a user runs it: the real binary, exit codes, stdout, stderr.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

mod common;

use common::ciguard;
use predicates::prelude::*;

#[test]
fn renders_an_example_with_the_builtin_policy() {
    ciguard()
        .args(["render", "examples/gitlab-runner/build-pod.yaml"])
        .assert()
        .success()
        .stdout(predicate::str::contains("runAsNonRoot: true"))
        .stdout(predicate::str::starts_with("apiVersion: v1\n"));
}

#[test]
fn multi_document_yaml_keeps_every_document() {
    let out = ciguard()
        .args(["render", "tests/data/render/multi.yaml"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let docs = ciguard::source::documents(&stdout, "out").unwrap();
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[1]["data"]["key"], "yes");
    assert_eq!(
        docs[2]["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"],
        true
    );
}

#[test]
fn json_output_is_one_object_or_a_list() {
    let one = ciguard()
        .args(["render", "-o", "json", "examples/woodpecker/step-pod.yaml"])
        .output()
        .unwrap();
    let v: ciguard::value::Value = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(v["kind"], "Pod");
    let many = ciguard()
        .args(["render", "-o", "json", "tests/data/render/multi.yaml"])
        .output()
        .unwrap();
    let v: ciguard::value::Value = serde_json::from_slice(&many.stdout).unwrap();
    assert_eq!(v["kind"], "List");
    assert_eq!(v["items"].as_array().unwrap().len(), 3);
}

#[test]
fn reads_stdin() {
    let pod = std::fs::read_to_string(format!(
        "{}/examples/tekton/taskrun-pod.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    ciguard()
        .args(["render", "-o", "json", "-"])
        .write_stdin(pod)
        .assert()
        .success()
        .stdout(predicate::str::contains("\"runAsNonRoot\": true"));
}

#[test]
fn reads_a_directory() {
    let out = ciguard()
        .args(["render", "examples/gitlab-runner", "examples/woodpecker"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        ciguard::source::documents(&String::from_utf8(out.stdout).unwrap(), "o")
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn warnings_go_to_stderr() {
    ciguard()
        .args(["render", "tests/data/render/root-job.yaml"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "warning: tests/data/render/root-job.yaml#0 Pod/root-job: pod: runAsUser 0 is not allowed by allowedUsers (not set: any non-root ID); the request was dropped",
        ));
}

#[test]
fn denied_documents_exit_1_and_are_not_printed() {
    ciguard()
        .args(["render", "--policy", "tests/data/policies/deny-root.yaml", "tests/data/render/root-job.yaml", "tests/data/render/multi.yaml"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("root-job").not())
        .stdout(predicate::str::contains("name: first"))
        .stderr(predicate::str::contains(
            "denied: tests/data/render/root-job.yaml#0 Pod/root-job: violates ciguard policy: pod: runAsUser 0 is not allowed by allowedUsers [\"1000-2000\"]",
        ));
}

#[test]
fn explain_names_the_layer_of_every_field() {
    let out = ciguard()
        .args([
            "render",
            "--explain",
            "--policy",
            "examples/policies/gitlab-runner.yaml",
            "examples/gitlab-runner/build-pod.yaml",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    insta::assert_snapshot!(String::from_utf8(out.stderr).unwrap());
}

#[test]
fn policy_errors_exit_2_with_positions() {
    for (file, expected) in [
        (
            "unknown-key",
            "tests/data/policies/bad/unknown-key.yaml:6:7: unknown field \"runAsUsr\"",
        ),
        (
            "reversed-range",
            "tests/data/policies/bad/reversed-range.yaml:4:26: allowedUsers[1] \"2000-1000\": range start 2000 > end 1000",
        ),
        (
            "wrong-type",
            "tests/data/policies/bad/wrong-type.yaml:4:16: unknown variant `maybe`",
        ),
    ] {
        ciguard()
            .args([
                "render",
                "--policy",
                &format!("tests/data/policies/bad/{file}.yaml"),
                "examples/woodpecker/step-pod.yaml",
            ])
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::contains(expected));
    }
}

#[test]
fn every_bad_policy_has_a_snapshot_of_its_errors() {
    let dir = format!("{}/tests/data/policies/bad", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for path in files {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let rel = format!("tests/data/policies/bad/{name}.yaml");
        let err =
            ciguard::policy::load::from_file(&format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"))).unwrap_err();
        let text = err.to_string().replace(env!("CARGO_MANIFEST_DIR"), "");
        insta::assert_snapshot!(format!("bad_policy__{name}"), text);
    }
}

#[test]
fn input_errors_exit_2() {
    ciguard()
        .args(["render", "does-not-exist.yaml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "error: failed to read 'does-not-exist.yaml'",
        ));
    ciguard()
        .args(["render", "-"])
        .write_stdin("apiVersion: v1\nkind: Pod\nspec: [1\n")
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with("error: -:"));
    ciguard()
        .args(["render", "-"])
        .write_stdin("apiVersion: v1\nkind: Pod\nspec:\n  containers: {}\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "/spec/containers: expected a list of containers",
        ));
}

#[test]
fn usage_errors_exit_2() {
    ciguard().args(["render"]).assert().code(2);
    ciguard().args(["render", "-o", "xml", "x"]).assert().code(2);
}
