//! Issue 11, webhook side, over real HTTPS on 127.0.0.1 against the binary:
//! `kubectl debug` (pods/ephemeralcontainers), idempotence under reinvocation with the
//! API server's defaulting, warnings grouped within 4,096 characters, wrong methods and
//! paths, `Status` error bodies, a quiet drain, and the working-directory init container
//! under the pod's enforced profiles.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

mod webhook_support;

use std::time::Duration;

use ciguard::{json, value::Value};
use webhook_support::*;

const POLICY: &str = r#"
apiVersion: ciguard.io/v1alpha1
kind: SecurityPolicy
metadata: {name: hardening}
spec:
  preset: gitlab-runner
  pss: {level: restricted, version: latest}
  onViolation: warn
  allowedUsers: [">=1000"]
  allowedGroups: [">=1000"]
  pod:
    default: {runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000}
    enforced: {seccompProfile: {type: RuntimeDefault}}
  containers:
    enforced: {allowPrivilegeEscalation: false, privileged: false, capabilities: {drop: [ALL]}}
  build:
    enforced: {runAsUser: 1234}
"#;

fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

struct Setup {
    dir: tempfile::TempDir,
    server: Server,
    client: reqwest::Client,
}

impl Setup {
    async fn start(policy: &str, extra: &[&str]) -> Self {
        install_provider();
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new();
        let leaf = ca.leaf("hardening");
        let p = dir.path().join("policy.yaml");
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        std::fs::write(&p, policy).unwrap();
        std::fs::write(&cert, &leaf.cert_pem).unwrap();
        std::fs::write(&key, &leaf.key_pem).unwrap();
        let audit = dir.path().join("audit.jsonl");
        let client = ca.client();
        let policy_flag = ["--policy", p.to_str().unwrap()];
        let server = Server::start_tls(&policy_flag, (&cert, &key), &audit, extra, &client).await;
        Setup { dir, server, client }
    }

    async fn admit(&self, path: &str, review: &Value) -> Value {
        let response = self
            .client
            .post(self.server.url(true, path))
            .json(review)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        response_of(&answer, review)
    }

    async fn metrics(&self) -> String {
        let r = self
            .client
            .get(self.server.url(true, "/metrics"))
            .send()
            .await
            .unwrap();
        r.text().await.unwrap()
    }

    /// The audit lines written so far.
    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn response_of(answer: &Value, review: &Value) -> Value {
    webhook_support::response(answer, review).clone()
}

fn pod(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": "ci", "labels": {"app": "ci"}},
           "spec": spec})
}

/// A CI pod whose build container works in a directory inside its volume.
fn ci_pod(name: &str) -> Value {
    pod(
        name,
        json!({
            "containers": [
                {"name": "build", "image": "registry.example.com/build:1.2", "workingDir": "/builds/group/project",
                 "volumeMounts": [{"name": "repo", "mountPath": "/builds"}]},
                {"name": "helper", "image": "registry.example.com/helper",
                 "volumeMounts": [{"name": "repo", "mountPath": "/builds"}]}
            ],
            "volumes": [{"name": "repo", "emptyDir": {}}]
        }),
    )
}

/// An UPDATE of pods/ephemeralcontainers as the API server sends it for `kubectl debug`.
fn debug_review(running: &Value, debugger: Value) -> Value {
    let mut new = running.clone();
    new["spec"]["ephemeralContainers"] = json!([debugger]);
    let mut r = review("UPDATE", &new, Some(running));
    r["request"]["subResource"] = json!("ephemeralcontainers");
    r["request"]["requestSubResource"] = json!("ephemeralcontainers");
    r["request"]["uid"] = json!("uid-debug");
    r
}

/// A pod as it runs after ciguard mutated it at CREATE.
async fn running(setup: &Setup, name: &str) -> Value {
    let created = as_apiserver_sends(&ci_pod(name));
    let r = review("CREATE", &created, None);
    let response = setup.admit("/mutate", &r).await;
    as_apiserver_sends(&apply(&created, &response))
}

#[tokio::test]
async fn kubectl_debug_cannot_add_a_privileged_root_container() {
    let setup = Setup::start(POLICY, &[]).await;
    let running = running(&setup, "job-1").await;
    let debugger = json!({"name": "debugger", "image": "busybox", "stdin": true, "tty": true,
        "securityContext": {"privileged": true, "runAsUser": 0}});
    let review = debug_review(&running, debugger);

    // /mutate: the new ephemeral container gets the containers layers and the
    // allowlists (runAsUser 0 dropped, with a warning), and no role (not build's 1234).
    let response = setup.admit("/mutate", &review).await;
    assert_eq!(response["allowed"], true, "{response}");
    let patch = patch_of(&response);
    let paths: Vec<&str> = patch
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/spec/ephemeralContainers/0/securityContext"], "{patch}");
    let patched = apply(&object(&review), &response);
    let ctx = &patched["spec"]["ephemeralContainers"][0]["securityContext"];
    assert_eq!(ctx["privileged"], false, "{ctx}");
    assert_eq!(ctx["allowPrivilegeEscalation"], false, "{ctx}");
    assert_eq!(ctx["capabilities"]["drop"], json!(["ALL"]), "{ctx}");
    assert!(ctx.get("runAsUser").is_none(), "{ctx}");
    let w = warnings(&response);
    assert!(
        w.iter()
            .any(|w| w.contains("\"debugger\"") && w.contains("runAsUser 0")),
        "{w:?}"
    );

    // Reinvoked with its own patch, defaulted: no patch.
    let mut again = review.clone();
    again["request"]["object"] = as_apiserver_sends(&patched);
    again["request"]["uid"] = json!("uid-debug-again");
    assert_eq!(patch_of(&setup.admit("/mutate", &again).await), json!([]));

    // /validate: as sent, denied as upstream PodSecurity denies it; as patched, allowed.
    let response = setup.admit("/validate", &review).await;
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 403);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(message.contains("privileged"), "{message}");
    let mut fixed = review.clone();
    fixed["request"]["object"] = patched;
    let response = setup.admit("/validate", &fixed).await;
    assert_eq!(response["allowed"], true, "{response}");

    // Other subresources stay untouched.
    let mut status = review.clone();
    status["request"]["subResource"] = json!("status");
    let response = setup.admit("/validate", &status).await;
    assert_eq!(response["allowed"], true);
    assert_eq!(patch_of(&setup.admit("/mutate", &status).await), json!([]));
}

/// The API server's sequence for `reinvocationPolicy: IfNeeded`: default and admit
/// (ServiceAccount), call ciguard, apply its patch, default and admit again, call again
/// with a new uid. The second call must return no patch.
async fn reinvoke(setup: &Setup, submitted: &Value) -> (Value, Value) {
    let first_object = as_apiserver_sends(submitted);
    let first = review("CREATE", &first_object, None);
    let response = setup.admit("/mutate", &first).await;
    let second_object = as_apiserver_sends(&apply(&first_object, &response));
    let mut second = review("CREATE", &second_object, None);
    second["request"]["uid"] = json!("uid-reinvocation");
    let again = setup.admit("/mutate", &second).await;
    (response, again)
}

#[tokio::test]
async fn reinvocation_after_apiserver_defaulting_returns_no_patch() {
    let setup = Setup::start(POLICY, &[]).await;
    let (first, again) = reinvoke(&setup, &ci_pod("job-2")).await;
    let added = patch_of(&first);
    assert!(
        added
            .as_array()
            .unwrap()
            .iter()
            .any(|op| op["path"] == "/spec/initContainers"),
        "the first call adds the workdir init container: {added}"
    );
    assert_eq!(patch_of(&again), json!([]), "{again}");
    // The captured CI pods too.
    for text in [GITLAB, WOODPECKER, TEKTON] {
        let pod = object(&body(text));
        let (_, again) = reinvoke(&setup, &pod).await;
        assert_eq!(
            patch_of(&again),
            json!([]),
            "{}: {again}",
            pod["metadata"]["name"]
        );
    }
}

fn services_pod(uid: impl Fn(usize) -> u32) -> Value {
    let mut containers = vec![json!({"name": "build", "image": "build:1"})];
    for i in 0..40 {
        containers.push(json!({"name": format!("svc-{i}"), "image": "postgres:16",
            "securityContext": {"runAsUser": uid(i), "runAsGroup": uid(i)}}));
    }
    pod("services", json!({"containers": containers}))
}

#[tokio::test]
async fn forty_services_with_disallowed_ids_get_warnings_that_fit() {
    let setup = Setup::start(POLICY, &[]).await;
    let chars = |w: &[String]| w.iter().map(|w| w.chars().count()).sum::<usize>();

    // The same reason for all 40: one warning per field, naming every service.
    let same = review("CREATE", &services_pod(|_| 0), None);
    let w = warnings(&setup.admit("/mutate", &same).await);
    eprintln!("same ids: {} warnings, {} characters", w.len(), chars(&w));
    assert_eq!(w.len(), 2, "{w:#?}");
    for i in 0..40 {
        assert!(
            w.iter().all(|w| w.contains(&format!("\"svc-{i}\""))),
            "svc-{i}: {w:#?}"
        );
    }
    assert!(chars(&w) <= 4096);

    // 80 different reasons: within 4,096 characters, the last says what is left out;
    // the audit log has all 80.
    let mut different = review("CREATE", &services_pod(|i| 100 + i as u32), None);
    different["request"]["uid"] = json!("uid-different");
    let w = warnings(&setup.admit("/mutate", &different).await);
    eprintln!("different ids: {} warnings, {} characters", w.len(), chars(&w));
    assert!(chars(&w) <= 4096, "{} characters", chars(&w));
    assert!(w.last().unwrap().contains("audit log"), "{w:#?}");
    let line = eventually(Duration::from_secs(10), "the audit line", || async {
        setup.audit().into_iter().find(|l| l["uid"] == "uid-different")
    })
    .await;
    let full = line["warnings"].as_array().unwrap();
    assert_eq!(full.len(), 80, "{line}");
}

#[tokio::test]
async fn wrong_methods_and_paths_are_not_admission_errors_and_errors_are_status_objects() {
    let setup = Setup::start(POLICY, &[]).await;
    let url = |p: &str| setup.server.url(true, p);
    let cases = [
        (setup.client.get(url("/mutate")), 405),
        (setup.client.put(url("/validate")), 405),
        (setup.client.post(url("/healthz")), 405),
        (setup.client.post(url("/nope")), 404),
        (setup.client.post(url("/mutate")).body("{not json"), 400),
        (
            setup
                .client
                .post(url("/validate"))
                .body(vec![b' '; 4 * 1024 * 1024]),
            413,
        ),
    ];
    for (request, code) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), code);
        let status: Value = response.json().await.unwrap();
        assert_eq!(status["kind"], "Status", "{status}");
        assert_eq!(status["apiVersion"], "v1", "{status}");
        assert_eq!(status["status"], "Failure", "{status}");
        assert_eq!(status["code"], code, "{status}");
        assert!(
            status["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{status}"
        );
    }
    let metrics = setup.metrics().await;
    let count = |outcome: &str| -> f64 {
        ["mutate", "validate"]
            .iter()
            .filter_map(|e| {
                metric(
                    &metrics,
                    &format!("ciguard_admission_requests_total{{policy=\"hardening\",endpoint=\"{e}\",outcome=\"{outcome}\"}}"),
                )
            })
            .sum()
    };
    assert_eq!(count("error"), 0.0, "{metrics}");
    // Only the two unreadable bodies are counted, as invalid.
    assert_eq!(count("invalid"), 2.0, "{metrics}");
}

#[tokio::test]
async fn a_drain_is_not_logged_as_an_error() {
    let mut setup = Setup::start(POLICY, &["--shutdown-delay", "3s", "--shutdown-grace", "1s"]).await;
    setup.server.terminate();
    let url = setup.server.url(true, "/readyz");
    let client = setup.client.clone();
    eventually(Duration::from_secs(3), "/readyz 503", || async {
        let r = client.get(&url).send().await.ok()?;
        (r.status() == 503).then_some(())
    })
    .await;
    assert_eq!(setup.server.wait_exit(Duration::from_secs(15)), 0);
    let log = setup.server.stderr();
    assert!(!log.contains("ERROR"), "{log}");
}

#[tokio::test]
async fn the_workdir_init_container_runs_under_the_pods_enforced_profiles() {
    let policy = POLICY.replace(
        "enforced: {seccompProfile: {type: RuntimeDefault}}",
        "enforced: {seccompProfile: {type: Localhost, localhostProfile: profiles/ci.json}, \
         appArmorProfile: {type: Localhost, localhostProfile: ci-build}, seLinuxOptions: {level: \"s0:c123,c456\"}}",
    );
    let setup = Setup::start(&policy, &[]).await;
    let created = as_apiserver_sends(&ci_pod("job-3"));
    let response = setup.admit("/mutate", &review("CREATE", &created, None)).await;
    let patched = apply(&created, &response);
    let pod_ctx = &patched["spec"]["securityContext"];
    assert_eq!(pod_ctx["seccompProfile"]["type"], "Localhost", "{pod_ctx}");
    let init = &patched["spec"]["initContainers"][0];
    assert_eq!(init["name"], "ciguard-workdir", "{patched}");
    let ctx = &init["securityContext"];
    for field in ["seccompProfile", "appArmorProfile", "seLinuxOptions"] {
        // The pod's enforced profile, not RuntimeDefault.
        assert_eq!(ctx[field], pod_ctx[field], "{field}: {ctx}");
    }
    // The pod passes the PodSecurity target as patched.
    let mut check = review("CREATE", &patched, None);
    check["request"]["uid"] = json!("uid-check");
    assert_eq!(setup.admit("/validate", &check).await["allowed"], true);
}

/// `allowRootInUserNamespace` for `kubectl debug`: `hostUsers` cannot change on a running
/// pod, so the pod's own value decides whether a debug container may run as root, not the
/// policy's `pod.default.hostUsers` (SPEC §5, user namespaces).
#[tokio::test]
async fn kubectl_debug_root_follows_the_running_pods_host_users() {
    let policy = POLICY
        .replace(
            "  onViolation: warn\n",
            "  onViolation: warn\n  allowRootInUserNamespace: true\n",
        )
        .replace(
            "    default: {runAsNonRoot: true,",
            "    default: {hostUsers: false, runAsNonRoot: true,",
        );
    let setup = Setup::start(&policy, &[]).await;
    for (host_users, root_kept) in [(Some(false), true), (Some(true), false), (None, false)] {
        let mut running = as_apiserver_sends(&ci_pod("job-userns"));
        if let Some(h) = host_users {
            running["spec"]["hostUsers"] = json!(h);
        }
        let debugger = json!({"name": "debugger", "image": "busybox", "securityContext": {"runAsUser": 0}});
        let review = debug_review(&running, debugger);
        let response = setup.admit("/mutate", &review).await;
        assert_eq!(response["allowed"], true, "{response}");
        let patched = apply(&object(&review), &response);
        let ctx = &patched["spec"]["ephemeralContainers"][0]["securityContext"];
        assert_eq!(
            ctx.get("runAsUser") == Some(&json!(0)),
            root_kept,
            "hostUsers {host_users:?}: {ctx}"
        );
    }
}
