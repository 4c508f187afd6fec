//! The Helm chart `charts/ciguard`: its webhook entries are exactly what `ciguard
//! webhook-config` prints for the policies the chart deploys, its pod passes `restricted`,
//! bad values are refused with clear messages, values.schema.json embeds the policy
//! schema, and the README names every value.
//!
//! The tests that render the chart need helm: `CIGUARD_HELM`, else `helm` on `PATH`
//! (`.ci/run` sets `CIGUARD_HELM` from `e2e/build-helm`). Without one they say so on
//! stderr and pass, and fail when `CI` is set.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

mod common;

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::Command,
};

use ciguard::{json, value::Value};
use common::ciguard;
use rstest::rstest;

const CHART: &str = "charts/ciguard";
const NAMESPACE: &str = "ciguard-system";
const RELEASE: &str = "ciguard";

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The helm binary, or `None` (said on stderr) when there is none and `CI` is not set.
fn helm() -> Option<PathBuf> {
    if let Some(h) = std::env::var_os("CIGUARD_HELM") {
        return Some(PathBuf::from(h));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("helm"))
            .find(|p| p.is_file())
    });
    if on_path.is_some() {
        return on_path;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "no helm and CI is set: set CIGUARD_HELM (e2e/build-helm prints its directory)"
    );
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let _ = writeln!(
        std::io::stderr(),
        "skipped: {test}: no helm (set CIGUARD_HELM or put helm on PATH; e2e/build-helm builds it; with CI set this fails)"
    );
    None
}

/// `helm template` with these values (JSON is YAML); stdout, or stderr as the error.
fn template(helm: &Path, values: &Value) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("values.json");
    std::fs::write(&file, serde_json::to_vec(values).unwrap()).unwrap();
    let out = Command::new(helm)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["template", RELEASE, CHART, "--namespace", NAMESPACE, "-f"])
        .arg(&file)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn documents(yaml: &str) -> Vec<Value> {
    ciguard::source::documents(yaml, "helm template")
        .unwrap()
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// A policy file of the repository as a JSON value.
fn policy_file(path: &str) -> Value {
    common::example(path)
}

/// Four policies: two team policies with their own match and failurePolicy, the Tekton
/// example with an objectSelector only, and the Woodpecker example with neither (it gets
/// the chart's webhook.* values).
fn four_policies() -> Value {
    let mut tekton = policy_file("examples/policies/tekton.yaml");
    tekton["spec"]["match"] =
        json!({"objectSelector": {"matchLabels": {"app.kubernetes.io/managed-by": "tekton-pipelines"}}});
    json!([
        policy_file("docs/examples/teams/team-b.yaml"),
        policy_file("docs/examples/teams/team-a.yaml"),
        tekton,
        policy_file("examples/policies/woodpecker.yaml"),
    ])
}

/// The ConfigMaps' policy files written into a directory, as the Deployment projects them.
fn deployed_policies(docs: &[Value], dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for cm in of_kind(docs, "ConfigMap") {
        for (key, text) in cm["data"].as_object().unwrap() {
            std::fs::write(dir.join(key), text.as_str().unwrap()).unwrap();
            names.push(key.clone());
        }
    }
    names.sort();
    names
}

/// `ciguard webhook-config` over the deployed policies.
fn webhook_config(dir: &Path, extra: &[&str]) -> Vec<Value> {
    let out = ciguard()
        .arg("webhook-config")
        .arg("--policy-dir")
        .arg(dir)
        .args(["--service", &format!("{NAMESPACE}/{RELEASE}:443")])
        .args(extra)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    documents(&String::from_utf8(out.stdout).unwrap())
}

/// The `webhooks` of the one object of a kind.
fn webhooks<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let objects = of_kind(docs, kind);
    assert_eq!(objects.len(), 1, "one {kind}");
    &objects[0]["webhooks"]
}

#[rstest]
#[case::cert_manager("cert-manager", "")]
#[case::self_signed("self-signed", "")]
#[case::url_base("self-signed", "https://ciguard.example.com:8443")]
fn chart_webhooks_equal_webhook_config(#[case] mode: &str, #[case] url_base: &str) {
    let Some(helm) = helm() else { return };
    let values = json!({
        "policies": four_policies(),
        "certificates": {"mode": mode},
        "webhook": {"urlBase": url_base},
    });
    let docs = documents(&template(&helm, &values).unwrap());

    let dir = tempfile::tempdir().unwrap();
    let names = deployed_policies(&docs, dir.path());
    assert_eq!(
        names,
        ["team-a.yaml", "team-b.yaml", "tekton.yaml", "woodpecker.yaml"]
    );
    let mut args: Vec<String> = Vec::new();
    if mode == "cert-manager" {
        args.extend(["--cert-manager".into(), format!("{NAMESPACE}/{RELEASE}-tls")]);
    } else {
        let secret = of_kind(&docs, "Secret");
        let ca = secret[0]["data"]["ca.crt"].as_str().unwrap();
        let pem = base64_decode(ca);
        let file = dir.path().join("ca.crt.pem");
        std::fs::write(&file, pem).unwrap();
        args.extend(["--ca-bundle".into(), file.display().to_string()]);
    }
    if !url_base.is_empty() {
        args.extend(["--url-base".into(), url_base.into()]);
    }
    // webhook-config reads the directory: the CA file must not look like a policy.
    let policy_dir = dir.path().join("policies");
    std::fs::create_dir(&policy_dir).unwrap();
    for n in &names {
        std::fs::rename(dir.path().join(n), policy_dir.join(n)).unwrap();
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let cli = webhook_config(&policy_dir, &args);

    for kind in ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"] {
        assert_eq!(webhooks(&docs, kind), webhooks(&cli, kind), "{kind} webhooks");
        let chart = of_kind(&docs, kind)[0];
        let printed = of_kind(&cli, kind)[0];
        assert_eq!(
            chart["metadata"]["annotations"], printed["metadata"]["annotations"],
            "{kind} annotations"
        );
    }
    // The defaults went into the deployed policy that set none, nowhere else.
    let woodpecker =
        ciguard::policy::load::from_file(policy_dir.join("woodpecker.yaml").to_str().unwrap()).unwrap();
    assert_eq!(
        woodpecker.spec().failure_policy,
        Some(ciguard::policy::FailurePolicy::Fail)
    );
    let team_b = ciguard::policy::load::from_file(policy_dir.join("team-b.yaml").to_str().unwrap()).unwrap();
    assert_eq!(
        team_b.spec().failure_policy,
        Some(ciguard::policy::FailurePolicy::Ignore)
    );
}

fn base64_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| *c != b'=' && !c.is_ascii_whitespace()) {
        let v = ALPHABET.iter().position(|a| *a == c).unwrap() as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// The chart's own pod passes Pod Security `restricted` (ciguard check on the Deployment).
#[test]
fn chart_pod_is_restricted() {
    let Some(helm) = helm() else { return };
    let docs = documents(&template(&helm, &json!({})).unwrap());
    let deployment = of_kind(&docs, "Deployment");
    assert_eq!(deployment.len(), 1);
    let out = ciguard()
        .args(["check", "--level", "restricted", "--version", "latest", "-"])
        .write_stdin(serde_json::to_vec(deployment[0]).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The default install, cert-manager mode (the self-signed certificates are random).
#[test]
fn chart_default_render() {
    let Some(helm) = helm() else { return };
    let text = template(
        &helm,
        &json!({"certificates": {"mode": "cert-manager"}, "metrics": {"serviceMonitor": {"enabled": true}}}),
    )
    .unwrap();
    insta::assert_snapshot!(text);
}

/// Values the chart refuses, each with the message a user needs (table: the same cases
/// as `ciguard webhook-config`'s errors in src/webhook_config.rs, and the schema).
#[rstest]
#[case::unnamed(json!({"policies": [{"apiVersion": "ciguard.io/v1alpha1", "kind": "SecurityPolicy", "spec": {}}]}), "metadata.name is missing")]
#[case::duplicate_name(json!({"policies": [policy_file("docs/examples/teams/team-a.yaml"), policy_file("docs/examples/teams/team-a.yaml")]}), "two policies are named \"team-a\"")]
#[case::same_match(json!({"policies": [policy_file("examples/policies/tekton.yaml"), policy_file("examples/policies/woodpecker.yaml")]}), "have the same spec.match")]
#[case::bad_name(json!({"policies": [{"apiVersion": "ciguard.io/v1alpha1", "kind": "SecurityPolicy", "metadata": {"name": "Team_A"}, "spec": {}}]}), "expected a DNS subdomain")]
#[case::unknown_policy_key(json!({"policies": [{"apiVersion": "ciguard.io/v1alpha1", "kind": "SecurityPolicy", "metadata": {"name": "a"}, "spec": {"onViolaton": "deny"}}]}), "onViolaton")]
#[case::bad_mode(json!({"certificates": {"mode": "vault"}}), "certificates/mode")]
#[case::bad_failure_policy(json!({"webhook": {"failurePolicy": "fail"}}), "webhook/failurePolicy")]
#[case::unknown_value(json!({"replicas": 3}), "replicas")]
#[case::http_url(json!({"webhook": {"urlBase": "http://ciguard:8443"}}), "webhook/urlBase")]
fn chart_refuses_bad_values(#[case] values: Value, #[case] message: &str) {
    let Some(helm) = helm() else { return };
    let err = template(&helm, &values).unwrap_err();
    assert!(err.contains(message), "expected {message:?} in:\n{err}");
}

/// values.schema.json's `policies.items` and `$defs` are the policy schema
/// (`ciguard schema`, kept in schema/policy.schema.json). With
/// `CIGUARD_UPDATE_CHART_SCHEMA=1` the test writes them instead.
#[test]
fn values_schema_embeds_the_policy_schema() {
    let mut policy = Value::from(ciguard::policy::schema());
    let defs = policy.as_object_mut().unwrap().remove("$defs").unwrap();
    policy.as_object_mut().unwrap().remove("$schema");
    let path = repo("charts/ciguard/values.schema.json");
    let mut values: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    if values["properties"]["policies"]["items"] == policy && values["$defs"] == defs {
        return;
    }
    if std::env::var_os("CIGUARD_UPDATE_CHART_SCHEMA").is_some() {
        values["properties"]["policies"]["items"] = policy;
        values["$defs"] = defs;
        std::fs::write(&path, serde_json::to_string_pretty(&values).unwrap() + "\n").unwrap();
        return;
    }
    panic!(
        "charts/ciguard/values.schema.json does not embed the current policy schema: run CIGUARD_UPDATE_CHART_SCHEMA=1 cargo test --test chart values_schema"
    );
}

/// Every value of values.yaml is named in the chart README's table, as `a.b.c`.
#[test]
fn readme_names_every_value() {
    let values = common::example("charts/ciguard/values.yaml");
    let readme = std::fs::read_to_string(repo("charts/ciguard/README.md")).unwrap();
    let mut missing = Vec::new();
    fn walk(prefix: &str, v: &Value, out: &mut Vec<String>) {
        match v.as_object() {
            // A map with keys is a group of values, unless it is a free-form value
            // whose default happens to be a map (selectors, resources).
            Some(map) if !map.is_empty() && !FREE_FORM.contains(&prefix) => {
                for (k, v) in map {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&path, v, out);
                }
            }
            _ => out.push(prefix.to_string()),
        }
    }
    const FREE_FORM: [&str; 3] = ["webhook.namespaceSelector", "resources", "webhook.objectSelector"];
    let mut paths = Vec::new();
    walk("", &values, &mut paths);
    for p in &paths {
        if !readme.contains(&format!("| `{p}` |")) {
            missing.push(p.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "charts/ciguard/README.md does not describe {missing:?}"
    );
}
