//! Several policies in one `ciguard serve`, over HTTPS on 127.0.0.1: each policy at its
//! own paths with its own context, the set reloaded as one, duplicate names refused.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

mod webhook_support;

use std::time::Duration;

use ciguard::value::Value;
use ciguard::{merge, policy::load};
use webhook_support::*;

const WAIT: Duration = Duration::from_secs(15);

fn team(name: &str) -> String {
    std::fs::read_to_string(format!("docs/examples/teams/{name}.yaml")).unwrap()
}

/// A policy named `name` whose pods run as `uid`, optionally selecting a team's namespaces.
fn policy(name: &str, uid: u32) -> String {
    format!(
        "apiVersion: ciguard.io/v1alpha1\nkind: SecurityPolicy\nmetadata: {{name: {name}}}\nspec:\n  \
         match: {{namespaceSelector: {{matchLabels: {{team: {name}}}}}}}\n  \
         pod:\n    default: {{runAsUser: {uid}, runAsGroup: {uid}}}\n"
    )
}

/// A server whose `--policy-dir` is laid out as the kubelet mounts a ConfigMap.
struct Setup {
    dir: tempfile::TempDir,
    policies: Projected,
    audit: std::path::PathBuf,
    server: Server,
    client: reqwest::Client,
}

impl Setup {
    async fn start(files: &[(&str, &str)]) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new();
        let leaf = ca.leaf("multi");
        let policies = Projected::new(&dir.path().join("policies"), files);
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        std::fs::write(&cert, &leaf.cert_pem).unwrap();
        std::fs::write(&key, &leaf.key_pem).unwrap();
        let audit = dir.path().join("audit.jsonl");
        let client = ca.client();
        let policy_flag = ["--policy-dir", policies.dir.to_str().unwrap()];
        let server = Server::start_tls(&policy_flag, (&cert, &key), &audit, &[], &client).await;
        Setup {
            dir,
            policies,
            audit,
            server,
            client,
        }
    }

    /// Writes a new generation of the ConfigMap holding exactly `files`.
    fn update(&mut self, files: &[(&str, &str)]) {
        self.policies.update(files);
        // The kubelet keeps one visible symlink per key, through ..data.
        for entry in std::fs::read_dir(&self.policies.dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if !name.starts_with('.') && !files.iter().any(|(f, _)| *f == name) {
                std::fs::remove_file(self.policies.path(&name)).unwrap();
            }
        }
        for (name, _) in files {
            let link = self.policies.path(name);
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(format!("..data/{name}"), link).unwrap();
            }
        }
    }

    async fn post(&self, path: &str, review: &Value) -> reqwest::Response {
        self.client
            .post(self.server.url(true, path))
            .header("content-type", "application/json")
            .body(serde_json::to_vec(review).unwrap())
            .send()
            .await
            .unwrap()
    }

    /// The response of an admission at `path`, which must be HTTP 200.
    async fn admit(&self, path: &str, review: &Value) -> Value {
        let response = self.post(path, review).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "{path}: {text}");
        let answer: Value = serde_json::from_str(&text).unwrap();
        webhook_support::response(&answer, review).clone()
    }

    /// The pod-level `runAsUser` that the mutating webhook at `path` gives the GitLab pod,
    /// or the HTTP status when it is not 200.
    async fn uid_at(&self, path: &str) -> Result<Value, u16> {
        let review = body(GITLAB);
        let response = self.post(path, &review).await;
        if response.status() != 200 {
            return Err(response.status().as_u16());
        }
        let answer: Value = response.json().await.unwrap();
        let patched = apply(&object(&review), webhook_support::response(&answer, &review));
        Ok(patched["spec"]["securityContext"]["runAsUser"].clone())
    }

    async fn metrics(&self) -> String {
        let url = self.server.url(true, "/metrics");
        self.client.get(url).send().await.unwrap().text().await.unwrap()
    }
}

#[tokio::test]
async fn each_policy_is_served_at_its_own_paths_with_its_own_context() {
    let (a, b) = (team("team-a"), team("team-b"));
    let setup = Setup::start(&[("team-a.yaml", &a), ("team-b.yaml", &b)]).await;
    let review = body(GITLAB);
    for (name, text, uid) in [("team-a", &a, 1000), ("team-b", &b, 2000)] {
        let policy = load::from_str(text, name).unwrap();
        let expected = merge::render(&policy, &object(&review)).unwrap().object;
        let response = setup.admit(&format!("/mutate/{name}"), &review).await;
        let patched = apply(&object(&review), &response);
        assert_eq!(patched, expected, "{name}");
        assert_eq!(patched["spec"]["securityContext"]["runAsUser"], uid, "{name}");
        // The validating path of the policy judges the pod as that policy renders it.
        let validated = setup
            .admit(&format!("/validate/{name}"), &review_of(&patched))
            .await;
        assert_eq!(validated["allowed"], true, "{name}: {validated}");
    }

    // With two policies, the bare paths and unknown names serve nothing: 404, uncounted.
    for path in ["/mutate", "/validate", "/mutate/team-c", "/validate/team-c"] {
        let response = setup.post(path, &review).await;
        assert_eq!(response.status(), 404, "{path}");
        let text = response.text().await.unwrap();
        assert!(
            text.contains(&format!(
                "no policy is served at {path}; this server has the policies team-a, team-b"
            )),
            "{text}"
        );
    }

    // Metrics and the audit log carry the policy name.
    let text = setup.metrics().await;
    for name in ["team-a", "team-b"] {
        for endpoint in ["mutate", "validate"] {
            let sample =
                format!(r#"ciguard_admission_requests_total{{policy="{name}",endpoint="{endpoint}","#);
            assert!(text.contains(&sample), "{sample} missing in\n{text}");
        }
    }
    assert!(!text.contains("team-c"), "{text}");
    assert!(!text.contains(r#"outcome="invalid""#), "{text}");
    let lines = eventually(WAIT, "4 audit lines", || async {
        let text = std::fs::read_to_string(&setup.audit).unwrap_or_default();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        (lines.len() == 4).then_some(lines)
    })
    .await;
    let audited: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| (l["policy"].as_str().unwrap(), l["endpoint"].as_str().unwrap()))
        .collect();
    assert_eq!(
        audited,
        [
            ("team-a", "mutate"),
            ("team-a", "validate"),
            ("team-b", "mutate"),
            ("team-b", "validate")
        ]
    );
}

/// A review of an object as the API server sends a CREATE.
fn review_of(object: &Value) -> Value {
    review("CREATE", object, None)
}

async fn reload_errors(setup: &Setup, n: f64) -> Option<()> {
    let text = setup.metrics().await;
    (metric(&text, r#"ciguard_reload_errors_total{target="policy"}"#) == Some(n)).then_some(())
}

#[tokio::test]
async fn the_set_reloads_as_one_and_keeps_the_last_good_set() {
    let mut setup = Setup::start(&[("a.yaml", &policy("alpha", 1111))]).await;
    // One policy: the bare paths serve it too.
    assert_eq!(setup.uid_at("/mutate").await, Ok(1111.into()));
    assert_eq!(setup.uid_at("/mutate/alpha").await, Ok(1111.into()));

    // A second team is added: both served, the bare path no longer.
    setup.update(&[
        ("a.yaml", &policy("alpha", 1111)),
        ("b.yml", &policy("beta", 2222)),
    ]);
    eventually(WAIT, "beta served", || async {
        (setup.uid_at("/mutate/beta").await == Ok(2222.into())).then_some(())
    })
    .await;
    assert_eq!(setup.uid_at("/mutate/alpha").await, Ok(1111.into()));
    assert_eq!(setup.uid_at("/mutate").await, Err(404));

    // One good change and one broken file: nothing of it applies.
    let broken = policy("beta", 3333).replace("runAsUser", "runAsUsr");
    setup.update(&[("a.yaml", &policy("alpha", 1112)), ("b.yml", &broken)]);
    eventually(WAIT, "the first reload error", || reload_errors(&setup, 1.0)).await;
    assert_eq!(setup.uid_at("/mutate/alpha").await, Ok(1111.into()));
    assert_eq!(setup.uid_at("/mutate/beta").await, Ok(2222.into()));
    let log = setup.server.stderr();
    assert!(log.contains("new policy rejected"), "{log}");
    assert!(log.contains("b.yml:") && log.contains("runAsUsr"), "{log}");

    // Two files naming the same policy: refused, the last good set stays.
    setup.update(&[
        ("a.yaml", &policy("alpha", 1113)),
        ("b.yml", &policy("alpha", 1114)),
    ]);
    eventually(WAIT, "the second reload error", || reload_errors(&setup, 2.0)).await;
    assert_eq!(setup.uid_at("/mutate/alpha").await, Ok(1111.into()));
    assert_eq!(setup.uid_at("/mutate/beta").await, Ok(2222.into()));
    let log = setup.server.stderr();
    assert!(log.contains("policy name \"alpha\" is used by both"), "{log}");

    // Fixed, and down to one policy: the bare paths serve it again.
    setup.update(&[("b.yml", &policy("beta", 2223))]);
    eventually(WAIT, "beta alone", || async {
        (setup.uid_at("/mutate").await == Ok(2223.into())).then_some(())
    })
    .await;
    assert_eq!(setup.uid_at("/mutate/alpha").await, Err(404));
    let text = setup.metrics().await;
    assert_eq!(
        metric(&text, r#"ciguard_reloads_total{target="policy"}"#),
        Some(2.0)
    );
    let response = setup
        .client
        .get(setup.server.url(true, "/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    drop(setup.dir);
}

#[tokio::test]
async fn several_policy_flags_serve_and_duplicate_names_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let write = |file: &str, text: &str| {
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let (a, b, a2) = (
        write("a.yaml", &policy("alpha", 1111)),
        write("b.yaml", &policy("beta", 2222)),
        write("a2.yaml", &policy("alpha", 3333)),
    );
    let server = Server::start(
        &["--insecure-plaintext-dev-only", "--policy", &a, "--policy", &b],
        &dir.path().join("ok.log"),
        None,
    )
    .await;
    // reqwest's clients need the process-wide TLS provider, whichever test runs first.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    for (name, uid) in [("alpha", 1111), ("beta", 2222)] {
        let review = body(GITLAB);
        let response = client
            .post(server.url(false, &format!("/mutate/{name}")))
            .json(&review)
            .send()
            .await
            .unwrap();
        let answer: Value = response.json().await.unwrap();
        let patched = apply(&object(&review), webhook_support::response(&answer, &review));
        assert_eq!(patched["spec"]["securityContext"]["runAsUser"], uid);
    }
    drop(server);

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ciguard"))
        .args(["serve", "--insecure-plaintext-dev-only", "--addr", "127.0.0.1:0"])
        .args(["--policy", &a, "--policy", &b, "--policy", &a2])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "error: policy name \"alpha\" is used by both '{a}' and '{a2}'"
        )),
        "{stderr}"
    );
}

/// The routes without a socket: which path serves which policy, and what is not counted.
#[tokio::test]
async fn routes_of_a_set_and_what_the_metrics_count() {
    use axum::{body::Body, http::Request};
    use ciguard::{
        admission::{AppState, Audit, router},
        policy::set::PolicySet,
    };
    use tower::ServiceExt;

    let files: Vec<_> = [
        ("a.yaml", policy("alpha", 1111)),
        ("b.yaml", policy("beta", 2222)),
    ]
    .into_iter()
    .map(|(f, t)| (std::path::PathBuf::from(f), t.into_bytes()))
    .collect();
    let state = std::sync::Arc::new(AppState::with_policies(
        PolicySet::parse(&files).unwrap(),
        Audit::off(),
    ));
    let call = |method: &str, path: &str, body: Vec<u8>| {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        router(state.clone()).oneshot(request)
    };
    let review = serde_json::to_vec(&body(GITLAB)).unwrap();
    for (method, path, status) in [
        ("POST", "/mutate/alpha", 200),
        ("POST", "/validate/beta", 200),
        ("POST", "/mutate", 404),
        ("POST", "/mutate/gamma", 404),
        ("POST", "/mutate/alpha/x", 404),
        ("GET", "/mutate/alpha", 405),
        ("GET", "/validate", 405),
    ] {
        let response = call(method, path, review.clone()).await.unwrap();
        assert_eq!(response.status(), status, "{method} {path}");
    }
    let text = state.metrics().encode().unwrap();
    let mut counted: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("ciguard_admission_requests_total{"))
        .collect();
    counted.sort_unstable();
    assert_eq!(
        counted,
        [
            r#"ciguard_admission_requests_total{policy="alpha",endpoint="mutate",outcome="patched"} 1"#,
            r#"ciguard_admission_requests_total{policy="beta",endpoint="validate",outcome="allowed"} 1"#,
        ],
        "{text}"
    );
}
