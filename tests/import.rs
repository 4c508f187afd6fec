//! Importing runner settings: GitLab Runner's six allowed-users scenarios from their
//! config.toml, Woodpecker's documented DEFAULT/ENFORCED example and SECCTX_NONROOT.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

mod common;

use ciguard::{import, pss};
use ciguard::{json, value::Value};
use common::{ciguard, effective, render};
use rstest::rstest;

/// Imports with the real binary and loads the printed policy.
fn import_cli(args: &[&str]) -> ciguard::ValidPolicy {
    let out = ciguard().arg("import").args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    ciguard::policy::load::from_str(&String::from_utf8(out.stdout).unwrap(), "imported.yaml").unwrap()
}

fn gitlab_pod(job: Value) -> Value {
    let mut pod = common::example("examples/gitlab-runner/build-pod.yaml");
    pod["spec"]["containers"][0]["securityContext"] = job;
    pod
}

fn id(r: &ciguard::merge::Rendered, c: &str, f: &str) -> Option<i64> {
    effective(r, c, f).and_then(Value::as_i64)
}

#[rstest]
#[case::s1("s1", (1000, 1001), (Some(65534), Some(65534)), false)]
#[case::s2("s2", (1000, 1001), (Some(1000), Some(1001)), false)]
#[case::s3("s3", (1001, 1001), (None, Some(1001)), true)]
#[case::s4("s4", (2000, 2001), (Some(1000), Some(1001)), false)]
#[case::s5("s5", (1000, 1001), (Some(0), Some(0)), false)]
#[case::s6("s6", (0, 0), (None, None), true)]
fn gitlab_scenarios_from_config_toml(
    #[case] scenario: &str,
    #[case] job: (i64, i64),
    #[case] build: (Option<i64>, Option<i64>),
    #[case] warns: bool,
) {
    let policy = import_cli(&["gitlab", &format!("tests/data/import/gitlab-{scenario}.toml")]);
    assert_eq!(policy.spec().on_violation, ciguard::policy::OnViolation::Warn);
    let r = render(
        &policy,
        &gitlab_pod(json!({"runAsUser": job.0, "runAsGroup": job.1})),
    );
    assert_eq!(
        (id(&r, "build", "runAsUser"), id(&r, "build", "runAsGroup")),
        build
    );
    for helper_id in [id(&r, "helper", "runAsUser"), id(&r, "helper", "runAsGroup")]
        .into_iter()
        .flatten()
    {
        assert!(
            ![job.0, job.1].contains(&helper_id),
            "helper got the job's id {helper_id}"
        );
        assert!(
            build.0 != Some(helper_id) && build.1 != Some(helper_id),
            "helper got the build role's id"
        );
    }
    let problems: Vec<_> = r.warnings.iter().filter(|w| !w.code.is_notice()).collect();
    assert_eq!(!problems.is_empty(), warns, "{:?}", r.warnings);
    if scenario == "s3" {
        let w = &r.warnings[0].message();
        assert!(
            w.contains("\"build\"") && w.contains("runAsUser") && w.contains("1001"),
            "{w}"
        );
    }
    // GitLab drops NET_RAW unless told otherwise.
    let drop = &common::container(&r, "build")["securityContext"]["capabilities"]["drop"];
    assert!(drop.as_array().unwrap().contains(&json!("NET_RAW")));
}

#[test]
fn gitlab_import_output_is_snapshotted() {
    let out = ciguard()
        .args(["import", "gitlab", "tests/data/import/gitlab-s1.toml"])
        .output()
        .unwrap();
    assert!(out.status.success());
    insta::assert_snapshot!("gitlab_s1_policy", String::from_utf8(out.stdout).unwrap());
    insta::assert_snapshot!("gitlab_s1_warnings", String::from_utf8(out.stderr).unwrap());
}

#[test]
fn several_runners_list_the_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        "[[runners]]\nname = \"docker\"\n[[runners]]\nname = \"k8s\"\n[runners.kubernetes]\n",
    )
    .unwrap();
    ciguard()
        .args(["import", "gitlab", path.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "has 2 runners, choose one with --runner: \"docker\", \"k8s\"",
        ));
    ciguard()
        .args(["import", "gitlab", path.to_str().unwrap(), "--runner", "k8s"])
        .assert()
        .success();
}

const STEP: &str = "wp-01j9xq0r5m7a8b6c4d2e0f1g3h-0";

fn plain_step() -> Value {
    let mut pod = common::example("examples/woodpecker/step-pod.yaml");
    pod["spec"].as_object_mut().unwrap().remove("securityContext");
    pod
}

#[test]
fn woodpecker_documented_example_passes_restricted() {
    let policy = import_cli(&["woodpecker", "--env-file", "tests/data/import/woodpecker.env"]);
    let r = render(&policy, &plain_step());
    assert_eq!(effective(&r, STEP, "runAsUser"), Some(&json!(1000)));
    assert_eq!(r.object["spec"]["securityContext"]["fsGroup"], json!(1000));
    let (_, typed) = ciguard::workload::typed_pod(&r.object).unwrap().unwrap();
    let lv = pss::LevelVersion {
        level: pss::Level::Restricted,
        version: pss::Version::Latest,
    };
    let e = pss::evaluate(&typed.metadata, &typed.spec, lv);
    assert!(e.allowed(), "{}", e.message());
}

#[test]
fn woodpecker_nonroot_alone_cannot_be_turned_off() {
    let out = ciguard()
        .args(["import", "woodpecker"])
        .env("WOODPECKER_BACKEND_K8S_SECCTX_NONROOT", "true")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let policy = ciguard::policy::load::from_str(&text, "imported.yaml").unwrap();
    assert_eq!(policy.pod.enforced.get("runAsNonRoot"), Some(&json!(true)));
    let mut pod = plain_step();
    pod["spec"]["securityContext"] = json!({"runAsNonRoot": false});
    pod["spec"]["containers"][0]["securityContext"] = json!({"runAsNonRoot": false});
    let r = render(&policy, &pod);
    assert_eq!(effective(&r, STEP, "runAsNonRoot"), Some(&json!(true)));
    assert_eq!(r.object["spec"]["securityContext"]["runAsNonRoot"], json!(true));
}

#[test]
fn woodpecker_invalid_json_names_the_variable() {
    ciguard()
        .args(["import", "woodpecker"])
        .env("WOODPECKER_BACKEND_K8S_DEFAULT_SECCTX", "{\"runAsUser\": 1000,}")
        .assert()
        .code(2)
        .stderr("error: WOODPECKER_BACKEND_K8S_DEFAULT_SECCTX: line 1 column 20: trailing comma\n");
}

#[test]
fn imported_policies_lint_clean_of_errors() {
    for s in ["s1", "s2", "s3", "s4", "s6"] {
        let i = import::gitlab::import(
            &std::fs::read_to_string(format!(
                "{}/tests/data/import/gitlab-{s}.toml",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
            "c.toml",
            None,
        )
        .unwrap();
        let text = i.to_yaml().unwrap();
        let findings = ciguard::lint::lint(&text, "imported.yaml").unwrap();
        assert!(findings.is_empty(), "{s}: {findings:?}");
    }
}

/// Import errors print their message once, naming the TOML key or the variable and the
/// position.
#[rstest]
#[case::gitlab_value(
    &["gitlab", "tests/data/fidelity/gitlab-bad-value.toml"][..],
    None,
    "error: tests/data/fidelity/gitlab-bad-value.toml:6:32: runners.kubernetes.pod_security_context.fs_group_change_policy: fsGroupChangePolicy \"Bogus\": expected one of OnRootMismatch, Always\n"
)]
#[case::woodpecker_yaml(
    &["woodpecker"][..],
    Some(("WOODPECKER_BACKEND_K8S_ENFORCED_SECCTX", "runAsUser: [1")),
    "error: WOODPECKER_BACKEND_K8S_ENFORCED_SECCTX: line 1 column 12: unclosed bracket '['\n"
)]
#[case::woodpecker_value(
    &["woodpecker"][..],
    Some(("WOODPECKER_BACKEND_K8S_DEFAULT_SECCTX", "runAsUser: abc")),
    "error: WOODPECKER_BACKEND_K8S_DEFAULT_SECCTX: runAsUser \"abc\": invalid type: string \"abc\", expected i64\n"
)]
fn import_errors_name_the_setting_once(
    #[case] args: &[&str],
    #[case] var: Option<(&str, &str)>,
    #[case] stderr: &str,
) {
    let mut cmd = ciguard();
    cmd.arg("import").args(args);
    if let Some((k, v)) = var {
        cmd.env(k, v);
    }
    cmd.assert().code(2).stdout("").stderr(stderr.to_string());
}
