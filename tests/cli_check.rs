//! `ciguard check`, run as the real binary: text and JSON output, exit codes 0/1/2,
//! stdin, directories, workloads. Inputs are in `tests/data/check/`.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers: a failed unwrap is a failed test

use assert_cmd::Command;
use predicates::prelude::*;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/check");

fn check() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ciguard"));
    cmd.current_dir(DATA).arg("check");
    cmd
}

fn stdout_of(cmd: &mut Command) -> String {
    String::from_utf8(cmd.output().unwrap().stdout).unwrap()
}

#[test]
fn allowed_pod_exits_0() {
    check()
        .arg("pod-allowed.yaml")
        .assert()
        .code(0)
        .stdout("pod-allowed.yaml#0 Pod/runner-abc-project-1-concurrent-0: allowed\n")
        .stderr("");
}

#[test]
fn denied_pod_exits_1_with_the_upstream_message() {
    check()
        .args(["--level", "baseline", "pod-denied.yaml"])
        .assert()
        .code(1)
        .stdout(concat!(
            "pod-denied.yaml#0 Pod/dind-job: violates PodSecurity \"baseline:latest\": ",
            "host namespaces (hostNetwork=true), ",
            "hostPath volumes (volume \"docker-sock\"), ",
            // The API server defaults hostPort to containerPort on a hostNetwork Pod.
            "hostPort (container \"build\" uses hostPort 2375), ",
            "privileged (container \"svc-0\" must not set securityContext.privileged=true)\n",
        ));
}

#[test]
fn restricted_message_snapshot() {
    let out = stdout_of(check().arg("pod-denied.yaml"));
    insta::assert_snapshot!(out);
}

#[test]
fn json_output_snapshot() {
    let out = check()
        .args([
            "-o",
            "json",
            "pod-denied.yaml",
            "multi.yaml",
            "deployment.yaml",
            "cronjob.yaml",
        ])
        .assert()
        .code(1);
    let value: ciguard::value::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    insta::assert_json_snapshot!(value);
}

#[test]
fn json_shape_is_exactly_spec() {
    let out = stdout_of(check().args(["-o", "json", "--level", "baseline", "cronjob.yaml"]));
    assert_eq!(
        out,
        r#"{"results":[{"source":"cronjob.yaml","index":0,"kind":"CronJob","name":"cache-cleanup","allowed":true,"violations":[]}]}"#
            .to_string()
            + "\n"
    );
}

#[test]
fn documents_without_a_pod_are_skipped() {
    check()
        .args(["--level", "baseline", "multi.yaml"])
        .assert()
        .code(0)
        .stdout("multi.yaml#1 Pod/second: allowed\n");
}

#[test]
fn deployment_and_cronjob_templates_are_evaluated() {
    check()
        .args(["--level", "baseline", "deployment.yaml", "cronjob.yaml"])
        .assert()
        .code(1)
        .stdout(concat!(
            "deployment.yaml#0 Deployment/runner-manager: violates PodSecurity \"baseline:latest\": ",
            "non-default capabilities (container \"runner\" must not include \"NET_ADMIN\" ",
            "in securityContext.capabilities.add)\n",
            "cronjob.yaml#0 CronJob/cache-cleanup: allowed\n",
        ));
}

#[test]
fn stdin_is_named_dash() {
    let text = std::fs::read_to_string(format!("{DATA}/cronjob.yaml")).unwrap();
    check()
        .arg("-")
        .write_stdin(text)
        .assert()
        .code(0)
        .stdout("-#0 CronJob/cache-cleanup: allowed\n");
}

#[test]
fn directories_recurse_in_sorted_order() {
    let out = check().args(["--level", "baseline", "dir"]).assert().code(1);
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let heads: Vec<&str> = stdout.lines().map(|l| l.split(": ").next().unwrap()).collect();
    assert_eq!(
        heads,
        [
            "dir/a.yaml#0 Pod/runner-abc-project-1-concurrent-0",
            "dir/nested/b.yml#0 Deployment/runner-manager",
            "dir/nested/c.json#0 Pod/in-list",
        ]
    );
}

#[test]
fn policy_pss_is_the_default_target_and_flags_override_it() {
    check()
        .args([
            "--policy",
            "policy-baseline.yaml",
            "pod-allowed.yaml",
            "multi.yaml",
        ])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("multi.yaml#1 Pod/second: allowed\n"));
    check()
        .args([
            "--policy",
            "policy-baseline.yaml",
            "--level",
            "restricted",
            "multi.yaml",
        ])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "violates PodSecurity \"restricted:v1.25\"",
        ));
    check()
        .args(["--level", "privileged", "pod-denied.yaml"])
        .assert()
        .code(0)
        .stdout("pod-denied.yaml#0 Pod/dind-job: allowed\n");
}

#[test]
fn versions_past_the_newest_are_named_as_asked() {
    check()
        .args(["--version", "v1.99", "multi.yaml"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "violates PodSecurity \"restricted:v1.99\": allowPrivilegeEscalation",
        ));
}

#[test]
fn usage_and_input_errors_exit_2() {
    check()
        .args(["--level", "strict", "pod-allowed.yaml"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::starts_with(
            "error: --level: unknown level \"strict\"",
        ));
    for bad in ["1.30", "v1.3a", "v2.0"] {
        check()
            .args(["--version", bad, "pod-allowed.yaml"])
            .assert()
            .code(2)
            .stderr(predicate::str::starts_with("error: --version: malformed version"));
    }
    check()
        .arg("no-such-file.yaml")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no-such-file.yaml"));
    // Results are written as they are known: those before the error stay printed.
    check()
        .args(["pod-allowed.yaml", "bad-spec.yaml"])
        .assert()
        .code(2)
        .stdout("pod-allowed.yaml#0 Pod/runner-abc-project-1-concurrent-0: allowed\n")
        .stderr(predicate::str::starts_with(
            "error: bad-spec.yaml:6:15: /spec/containers",
        ));
    check().assert().code(2);
}

/// A value a pod spec refuses is named by its file, line and column, whichever way the
/// file is read: a YAML stream (empty and `null` documents do not count), a JSON List
/// streamed item by item, a nested List; `check`, `render` and `audit` alike. From stdin
/// the text is gone and the document is named by its index.
#[test]
fn a_refused_value_is_named_by_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let pod = |port: &str| {
        format!(
            r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "p"}}, "spec": {{"containers": [{{"name": "c", "image": "i", "ports": [{{"containerPort": {port}}}]}}]}}}}"#
        )
    };
    let cases = [
        (
            "stream.yaml",
            "---\n---\nnull\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: ok}\nspec:\n  containers: [{name: c, image: i}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec:\n  containers:\n  - name: c\n    image: i\n    ports:\n    - containerPort: 3000000000\n".to_string(),
            "stream.yaml:19:22",
        ),
        (
            "list.json",
            format!("{{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [\n{},\n{}\n]}}\n", pod("80"), pod("\"http\"")),
            "list.json:3:144",
        ),
        (
            "nested.yaml",
            format!("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items:\n  - {}\n", pod("-1.5")),
            "nested.yaml:7:148",
        ),
    ];
    for (name, text, at) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &text).unwrap();
        for command in ["check", "render", "audit"] {
            let out = Command::new(env!("CARGO_BIN_EXE_ciguard"))
                .current_dir(dir.path())
                .args([command, name])
                .output()
                .unwrap();
            let stderr = String::from_utf8(out.stderr).unwrap();
            assert_eq!(out.status.code(), Some(2), "{command} {name}: {stderr}");
            assert!(
                stderr.starts_with(&format!("error: {at}: ")),
                "{command} {name}: {stderr}"
            );
            assert!(
                stderr.contains("/ports/0/containerPort: "),
                "{command} {name}: {stderr}"
            );
        }
        check()
            .arg("-")
            .write_stdin(text)
            .assert()
            .code(2)
            .stderr(predicate::str::starts_with("error: -#"));
    }
}

#[test]
fn many_files_keep_input_order() {
    // Enough files to be read on several threads; output order is input order.
    let dir = tempfile::tempdir().unwrap();
    let pod = std::fs::read_to_string(format!("{DATA}/multi.yaml")).unwrap();
    for i in 0..300 {
        std::fs::write(
            dir.path().join(format!("{i:04}.yaml")),
            pod.replace("second", &format!("p{i}")),
        )
        .unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ciguard"))
        .args(["check", "--level", "baseline"])
        .arg(dir.path())
        .assert()
        .code(0);
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let names: Vec<String> = stdout
        .lines()
        .map(|l| {
            l.split(" Pod/")
                .nth(1)
                .unwrap()
                .trim_end_matches(": allowed")
                .to_string()
        })
        .collect();
    let want: Vec<String> = (0..300).map(|i| format!("p{i}")).collect();
    assert_eq!(names, want);
}

/// A List as `kubectl get pods -o json` prints it (`items` before `kind`), `n` pods, then
/// `tail` appended to the items.
fn kubectl_list(n: usize, tail: &str) -> String {
    let pods: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"p{i}","namespace":"ci"}},"spec":{{"containers":[{{"name":"c","image":"i"}}]}}}}"#
            )
        })
        .collect();
    let mut items = pods.join(",");
    if !tail.is_empty() {
        items = format!("{items},{tail}");
    }
    format!(r#"{{"apiVersion":"v1","items":[{items}],"kind":"List","metadata":{{"resourceVersion":""}}}}"#)
}

#[test]
fn a_list_on_stdin_is_judged_item_by_item_in_input_order() {
    // More items than one batch and than the window holds: streamed (ciguard::stream).
    let out = check()
        .args(["--level", "baseline", "-"])
        .write_stdin(kubectl_list(2_000, ""))
        .assert()
        .code(0);
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let want: String = (0..2_000).map(|i| format!("-#{i} Pod/p{i}: allowed\n")).collect();
    assert_eq!(stdout, want);
}

#[test]
fn an_error_inside_a_streamed_list_comes_after_the_results_before_it() {
    // Text: the results before the bad item, then the error (exit 2).
    let out = check()
        .args(["--level", "baseline", "-"])
        .write_stdin(kubectl_list(100, "7"))
        .assert()
        .code(2)
        .stderr(predicate::str::starts_with(
            "error: -: document 0: /items/100: List item: expected a Kubernetes object",
        ));
    assert_eq!(
        String::from_utf8_lossy(&out.get_output().stdout).lines().count(),
        100
    );
    // JSON: still one whole object, with those results.
    let out = check()
        .args(["--level", "baseline", "-o", "json", "-"])
        .write_stdin(kubectl_list(100, "7"))
        .assert()
        .code(2);
    let value: ciguard::value::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(value["results"].as_array().unwrap().len(), 100);
    assert_eq!(value["results"][99]["name"], "p99");
}
