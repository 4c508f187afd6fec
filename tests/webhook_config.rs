//! `ciguard webhook-config`: the printed configurations (snapshots), that they are what
//! the API server accepts (strict k8s-openapi types), and the exit codes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

mod common;

use common::ciguard;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use predicates::prelude::*;
use rstest::rstest;
use serde::de::DeserializeOwned;

const TEAMS: &str = "docs/examples/teams";
const CA: &str = "tests/data/webhook-config/ca.crt";

fn run(args: &[&str]) -> String {
    let out = ciguard().arg("webhook-config").args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stderr, "");
    String::from_utf8(out.stdout).unwrap()
}

/// Deserializes strictly: a field the type does not know is an error.
fn strict<T: DeserializeOwned>(doc: &ciguard::value::Value) -> T {
    let mut unknown = Vec::new();
    let value = serde_ignored::deserialize(doc, |path| unknown.push(path.to_string())).unwrap();
    assert!(unknown.is_empty(), "unknown fields {unknown:?}");
    value
}

/// The two objects of the stream, checked strictly.
fn parse(yaml: &str) -> (MutatingWebhookConfiguration, ValidatingWebhookConfiguration) {
    let docs = ciguard::source::documents(yaml, "stdout").unwrap();
    assert_eq!(docs.len(), 2, "{yaml}");
    (strict(&docs[0]), strict(&docs[1]))
}

#[rstest]
#[case::two_teams_in_the_cluster("two_teams_in_the_cluster", &[
    "--policy-dir", TEAMS, "--service", "ciguard-system/ciguard", "--cert-manager", "ciguard-system/ciguard-tls",
])]
#[case::outside_the_cluster_with_a_ca_bundle("outside_the_cluster_with_a_ca_bundle", &[
    "--policy", "docs/examples/teams/team-a.yaml", "--url-base", "https://127.0.0.1:8443/", "--ca-bundle", CA,
])]
#[case::object_selector_service_port_and_system_roots("object_selector_service_port_and_system_roots", &[
    "--policy", "tests/data/webhook-config/step-pods.yaml", "--service", "ci-system/webhooks:8443",
])]
fn output(#[case] name: &str, #[case] args: &[&str]) {
    let yaml = run(args);
    parse(&yaml);
    insta::with_settings!({description => args.join(" "), omit_expression => true}, {
        insta::assert_snapshot!(name, yaml);
    });
}

#[test]
fn one_webhook_per_policy_as_its_policy_says() {
    let (mutating, validating) = parse(&run(&[
        "--policy",
        "docs/examples/teams/team-b.yaml",
        "--policy",
        "docs/examples/teams/team-a.yaml",
        "--url-base",
        "https://127.0.0.1:8443",
        "--ca-bundle",
        CA,
    ]));
    assert_eq!(mutating.metadata.name.as_deref(), Some("ciguard"));
    assert_eq!(validating.metadata.name.as_deref(), Some("ciguard"));
    let ca = std::fs::read(CA).unwrap();
    let hooks = mutating.webhooks.unwrap();
    let names: Vec<&str> = hooks.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["team-a.mutate.ciguard.io", "team-b.mutate.ciguard.io"]);
    for (hook, (team, failure)) in hooks.iter().zip([("team-a", "Fail"), ("team-b", "Ignore")]) {
        assert_eq!(
            hook.client_config.url.as_deref(),
            Some(format!("https://127.0.0.1:8443/mutate/{team}").as_str())
        );
        assert_eq!(hook.client_config.ca_bundle.as_ref().unwrap().0, ca);
        assert_eq!(hook.failure_policy.as_deref(), Some(failure));
        assert_eq!(hook.reinvocation_policy.as_deref(), Some("IfNeeded"));
        let labels = hook
            .namespace_selector
            .as_ref()
            .unwrap()
            .match_labels
            .as_ref()
            .unwrap();
        assert_eq!(labels["ciguard.io/team"], team);
        assert!(hook.match_conditions.is_none());
    }
    let hooks = validating.webhooks.unwrap();
    let team_b = &hooks[1];
    assert_eq!(team_b.name, "team-b.validate.ciguard.io");
    assert_eq!(
        team_b.client_config.url.as_deref(),
        Some("https://127.0.0.1:8443/validate/team-b")
    );
    assert!(team_b.object_selector.is_none());
    assert_eq!(team_b.failure_policy.as_deref(), Some("Ignore"));
    let rules: Vec<(Vec<String>, Vec<String>)> = team_b
        .rules
        .iter()
        .flatten()
        .map(|r| (r.operations.clone().unwrap(), r.resources.clone().unwrap()))
        .collect();
    let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        rules,
        [
            (s(&["CREATE", "UPDATE"]), s(&["pods"])),
            (s(&["UPDATE"]), s(&["pods/ephemeralcontainers"]))
        ]
    );
}

#[test]
fn a_directory_and_its_files_give_the_same_output() {
    let common = ["--service", "ciguard-system/ciguard"];
    let dir = run(&[&["--policy-dir", TEAMS][..], &common].concat());
    let files = run(&[
        &[
            "--policy",
            "docs/examples/teams/team-b.yaml",
            "--policy",
            "docs/examples/teams/team-a.yaml",
        ][..],
        &common,
    ]
    .concat());
    assert_eq!(dir, files);
}

/// A policy file in a temporary directory.
fn policy_file(dir: &tempfile::TempDir, file: &str, name: Option<&str>, spec: &str) -> String {
    let metadata = name
        .map(|n| format!("metadata: {{name: {n}}}\n"))
        .unwrap_or_default();
    let text = format!("apiVersion: ciguard.io/v1alpha1\nkind: SecurityPolicy\n{metadata}spec:\n{spec}");
    let path = dir.path().join(file);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn identical_matches_are_an_error_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let a = policy_file(
        &dir,
        "a.yaml",
        Some("alpha"),
        "  match: {namespaceSelector: {matchExpressions: [{key: team, operator: In, values: [x, y]}]}}\n",
    );
    // The same selection in other words: values in another order, an empty objectSelector.
    let b = policy_file(
        &dir,
        "b.yaml",
        Some("beta"),
        "  match:\n    namespaceSelector: {matchExpressions: [{key: team, operator: In, values: [y, x]}]}\n    objectSelector: {}\n",
    );
    ciguard()
        .args([
            "webhook-config",
            "--policy",
            &a,
            "--policy",
            &b,
            "--service",
            "ci/ciguard",
        ])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(format!(
            "error: policies \"alpha\" ('{a}') and \"beta\" ('{b}') have the same spec.match"
        )));
    // No match at all twice: both would get every pod.
    let c = policy_file(&dir, "c.yaml", Some("gamma"), "  preset: generic\n");
    let d = policy_file(&dir, "d.yaml", Some("delta"), "  preset: tekton\n");
    ciguard()
        .args([
            "webhook-config",
            "--policy",
            &c,
            "--policy",
            &d,
            "--service",
            "ci/ciguard",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("policies \"delta\" ('"))
        .stderr(predicate::str::contains("and \"gamma\" ('"));
}

#[test]
fn duplicate_names_unnamed_and_bad_policies_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let a = policy_file(
        &dir,
        "a.yaml",
        Some("same"),
        "  match: {objectSelector: {matchLabels: {a: b}}}\n",
    );
    let b = policy_file(&dir, "b.yaml", Some("same"), "  preset: tekton\n");
    ciguard()
        .args([
            "webhook-config",
            "--policy",
            &a,
            "--policy",
            &b,
            "--service",
            "ci/ciguard",
        ])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(format!(
            "error: policy name \"same\" is used by both '{a}' and '{b}'"
        )));
    let unnamed = policy_file(&dir, "unnamed.yaml", None, "  preset: tekton\n");
    ciguard()
        .args(["webhook-config", "--policy", &unnamed, "--service", "ci/ciguard"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "error: '{unnamed}': metadata.name is missing"
        )));
    ciguard()
        .args([
            "webhook-config",
            "--policy",
            "tests/data/policies/bad/bad-match.yaml",
            "--service",
            "ci/ciguard",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "error:   tests/data/policies/bad/bad-match.yaml:10:11: match.namespaceSelector.matchExpressions[0]: operator NotIn needs at least one value",
        ));
    let empty = tempfile::tempdir().unwrap();
    ciguard()
        .args([
            "webhook-config",
            "--policy-dir",
            &empty.path().display().to_string(),
            "--service",
            "ci/ciguard",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "error: no policy file (*.yaml, *.yml, *.json) in '",
        ));
}

#[rstest]
#[case::no_policy(&["--service", "ci/ciguard"], "--policy <FILE>")]
#[case::policy_and_dir(&["--policy", "a.yaml", "--policy-dir", "d", "--service", "ci/ciguard"], "cannot be used with")]
#[case::no_client(&["--policy", "docs/examples/teams/team-a.yaml"], "--service <NS/NAME>")]
#[case::bundle_and_cert_manager(&["--policy", "docs/examples/teams/team-a.yaml", "--service", "ci/ciguard", "--ca-bundle", CA, "--cert-manager", "ci/tls"], "cannot be used with")]
#[case::bad_service(&["--policy", "docs/examples/teams/team-a.yaml", "--service", "ciguard"], "error: service \"ciguard\": expected NAMESPACE/NAME")]
#[case::plain_http(&["--policy", "docs/examples/teams/team-a.yaml", "--url-base", "http://127.0.0.1:8443"], "error: url base \"http://127.0.0.1:8443\": expected https://HOST[:PORT]")]
#[case::url_with_path(&["--policy", "docs/examples/teams/team-a.yaml", "--url-base", "https://h/hooks"], "no path, query, fragment or user")]
#[case::bad_certificate(&["--policy", "docs/examples/teams/team-a.yaml", "--service", "ci/ciguard", "--cert-manager", "tls"], "error: certificate \"tls\": expected NAMESPACE/NAME")]
#[case::not_a_ca(&["--policy", "docs/examples/teams/team-a.yaml", "--service", "ci/ciguard", "--ca-bundle", "docs/examples/teams/team-b.yaml"], "holds no PEM certificate")]
#[case::missing_ca(&["--policy", "docs/examples/teams/team-a.yaml", "--service", "ci/ciguard", "--ca-bundle", "nope.crt"], "error: failed to read 'nope.crt'")]
fn usage_errors_exit_2(#[case] args: &[&str], #[case] message: &str) {
    ciguard()
        .arg("webhook-config")
        .args(args)
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(message));
}

/// deploy/base's webhook configurations are exactly what `webhook-config` prints for the
/// policies of its ConfigMap, so the base never drifts from the generator.
#[test]
fn the_kustomize_base_is_the_output_for_its_policies() {
    let text = std::fs::read_to_string("deploy/base/configmap-policy.yaml").unwrap();
    let configmap = &ciguard::source::documents(&text, "configmap-policy.yaml").unwrap()[0];
    let dir = tempfile::tempdir().unwrap();
    let data = configmap["data"].as_object().unwrap();
    assert!(!data.is_empty());
    for (key, policy) in data {
        std::fs::write(dir.path().join(key), policy.as_str().unwrap()).unwrap();
    }
    let printed = run(&[
        "--policy-dir",
        dir.path().to_str().unwrap(),
        "--service",
        "ciguard-system/ciguard",
        "--cert-manager",
        "ciguard-system/ciguard-tls",
    ]);
    let mutating = std::fs::read_to_string("deploy/base/mutatingwebhookconfiguration.yaml").unwrap();
    let validating = std::fs::read_to_string("deploy/base/validatingwebhookconfiguration.yaml").unwrap();
    assert_eq!(
        printed,
        format!("{mutating}---\n{validating}"),
        "deploy/base is stale: regenerate it as docs/deploy.md says"
    );
}

#[test]
fn a_url_base_with_a_service_still_skips_the_service_namespace() {
    let (mutating, validating) = parse(&run(&[
        "--policy",
        "docs/examples/teams/team-a.yaml",
        "--service",
        "ciguard-system/ciguard",
        "--url-base",
        "https://10.0.0.7:8443",
    ]));
    let m = &mutating.webhooks.unwrap()[0];
    let v = &validating.webhooks.unwrap()[0];
    for (client, conditions, path) in [
        (&m.client_config, &m.match_conditions, "mutate"),
        (&v.client_config, &v.match_conditions, "validate"),
    ] {
        assert!(client.service.is_none());
        assert_eq!(
            client.url.as_deref(),
            Some(format!("https://10.0.0.7:8443/{path}/team-a").as_str())
        );
        let conditions = conditions.as_ref().unwrap();
        assert_eq!(conditions[0].expression, "request.namespace != 'ciguard-system'");
    }
}

#[test]
fn a_policy_for_every_namespace_is_printed_with_a_warning() {
    ciguard()
        .args([
            "webhook-config",
            "--policy",
            "examples/policies/tekton.yaml",
            "--url-base",
            "https://127.0.0.1:8443",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("- name: tekton.mutate.ciguard.io"))
        .stderr(
            "warning: policy \"tekton\" ('examples/policies/tekton.yaml') has no spec.match.namespaceSelector: \
             its webhooks receive the pods of every namespace, kube-system included\n",
        );
}
