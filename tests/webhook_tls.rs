//! Black-box tests of `ciguard serve`: the real binary on 127.0.0.1 with certificates
//! from a test CA, real AdmissionReview bodies over HTTPS, hot reloads, bad input over
//! the wire, timeouts and graceful shutdown.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

mod webhook_support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use ciguard::value::Value;
use ciguard::{merge, policy::load};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use webhook_support::*;

const WAIT: Duration = Duration::from_secs(15);

fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A server with a policy ConfigMap and a TLS Secret laid out as the kubelet mounts them.
struct Setup {
    _dir: tempfile::TempDir,
    ca: Ca,
    policy: Projected,
    tls: Projected,
    audit: std::path::PathBuf,
    server: Server,
    client: reqwest::Client,
}

impl Setup {
    async fn start(policy: &str) -> Self {
        install_provider();
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new();
        let leaf = ca.leaf("first");
        let policy = Projected::new(&dir.path().join("policy"), &[("policy.yaml", policy)]);
        let tls = Projected::new(
            &dir.path().join("tls"),
            &[("tls.crt", &leaf.cert_pem), ("tls.key", &leaf.key_pem)],
        );
        let audit = dir.path().join("audit.jsonl");
        let client = ca.client();
        let (p, c, k) = (
            policy.path("policy.yaml"),
            tls.path("tls.crt"),
            tls.path("tls.key"),
        );
        let policy_flag = ["--policy", p.to_str().unwrap()];
        let server = Server::start_tls(&policy_flag, (&c, &k), &audit, &[], &client).await;
        Setup {
            _dir: dir,
            ca,
            policy,
            tls,
            audit,
            server,
            client,
        }
    }

    async fn post(&self, path: &str, body: Vec<u8>) -> reqwest::Response {
        self.client
            .post(self.server.url(true, path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    async fn admit(&self, path: &str, review: &Value) -> Value {
        let response = self.post(path, serde_json::to_vec(review).unwrap()).await;
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        webhook_support::response(&answer, review).clone()
    }

    async fn metrics(&self) -> String {
        let response = self
            .client
            .get(self.server.url(true, "/metrics"))
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    }
}

fn example_policy(name: &str) -> String {
    std::fs::read_to_string(format!("examples/policies/{name}.yaml")).unwrap()
}

#[tokio::test]
async fn ci_pods_over_https_get_the_patch_that_render_gives() {
    let text = example_policy("gitlab-runner");
    let setup = Setup::start(&text).await;
    let policy = load::from_str(&text, "policy.yaml").unwrap();
    for captured in [GITLAB, WOODPECKER, TEKTON] {
        let review = body(captured);
        let original = object(&review);
        let response = setup.admit("/mutate", &review).await;
        assert_eq!(response["allowed"], true, "{response}");
        let mutated = apply(&original, &response);
        assert_eq!(mutated, merge::render(&policy, &original).unwrap().object);

        let mut again = review.clone();
        again["request"]["object"] = mutated;
        let response = setup.admit("/mutate", &again).await;
        assert!(
            response.get("patch").is_none(),
            "re-invocation must change nothing: {response}"
        );
        let response = setup.admit("/validate", &again).await;
        assert_eq!(response["allowed"], true, "{response}");
    }

    // HTTP/2 works too (the API server may use either).
    let review = body(WOODPECKER);
    let mut h2_config = setup.ca.client_config();
    h2_config.alpn_protocols = vec![b"h2".to_vec()];
    let h2 = reqwest::Client::builder()
        .tls_backend_preconfigured(h2_config)
        .build()
        .unwrap();
    let response = h2
        .post(setup.server.url(true, "/mutate"))
        .body(serde_json::to_vec(&review).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);

    // One audit line per decision: 3 pods × (mutate, re-mutate, validate) + the h2 one.
    // The audit log is written from a queue, after the answer: wait for the last line.
    let audit = eventually(WAIT, "10 audit lines", || async {
        let text = std::fs::read_to_string(&setup.audit).unwrap_or_default();
        (text.lines().count() >= 10).then_some(text)
    })
    .await;
    let lines: Vec<Value> = audit.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 10, "{audit}");
    let first = &lines[0];
    assert_eq!(first["uid"], "2b8a6c1e-3f4d-4e5a-9b6c-7d8e9f0a1b2c");
    assert_eq!(first["namespace"], "gitlab-ci");
    assert_eq!(first["dryRun"], false);
    let change = first["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["container"] == "build" && c["field"] == "allowPrivilegeEscalation")
        .unwrap();
    assert_eq!(change["old"], Value::Null);
    assert_eq!(change["new"], false);
    assert_eq!(change["origin"], "containers.enforced");
}

#[tokio::test]
async fn bad_input_over_the_wire_then_a_good_request() {
    let setup = Setup::start(&example_policy("woodpecker")).await;
    let good = serde_json::to_vec(&body(WOODPECKER)).unwrap();
    let nested = format!("{{\"kind\":{}{}}}", "[".repeat(50_000), "]".repeat(50_000));
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("empty", vec![], 400),
        ("not json", b"GET / HTTP/1.1".to_vec(), 400),
        ("invalid utf-8", b"{\"kind\":\"\xff\"}".to_vec(), 400),
        ("deeply nested", nested.into_bytes(), 400),
        ("wrong kind", br#"{"apiVersion":"v1","kind":"Pod"}"#.to_vec(), 400),
        ("4 MiB", vec![b' '; 4 * 1024 * 1024], 413),
    ];
    for (name, bad, status) in cases {
        let response = setup.post("/mutate", bad).await;
        assert_eq!(response.status(), status, "{name}");
        let answer: Value = response.json().await.unwrap();
        assert!(
            !answer["message"].as_str().unwrap().is_empty(),
            "{name}: {answer}"
        );
        let response = setup.post("/mutate", good.clone()).await;
        assert_eq!(response.status(), 200, "after {name}");
    }
    assert!(setup.server.stderr().lines().all(|l| !l.contains("panicked")));
}

fn policy_with_user(name: &str, uid: u32) -> String {
    format!(
        "apiVersion: ciguard.io/v1alpha1\nkind: SecurityPolicy\nmetadata: {{name: {name}}}\nspec:\n  \
         pss: {{level: restricted}}\n  pod:\n    enforced: {{runAsNonRoot: true, seccompProfile: {{type: \
         RuntimeDefault}}}}\n  containers:\n    enforced: {{runAsUser: {uid}, allowPrivilegeEscalation: \
         false, capabilities: {{drop: [ALL]}}}}\n"
    )
}

async fn build_user(setup: &Setup) -> Value {
    let review = body(WOODPECKER);
    let response = setup.admit("/mutate", &review).await;
    let mutated = apply(&object(&review), &response);
    mutated["spec"]["containers"][0]["securityContext"]["runAsUser"].clone()
}

#[tokio::test]
async fn policy_changes_are_picked_up_and_a_broken_one_is_refused() {
    let mut setup = Setup::start(&policy_with_user("first", 1111)).await;
    assert_eq!(build_user(&setup).await, 1111);

    // A ConfigMap update: the ..data symlink swap.
    setup
        .policy
        .update(&[("policy.yaml", &policy_with_user("second", 2222))]);
    eventually(WAIT, "the new policy", || async {
        (build_user(&setup).await == 2222).then_some(())
    })
    .await;
    let metrics = setup.metrics().await;
    assert_eq!(
        metric(&metrics, r#"ciguard_reloads_total{target="policy"}"#),
        Some(1.0)
    );

    // A broken policy: refused, counted, logged with its location; the last good one serves.
    let broken = policy_with_user("broken", 3333).replace("runAsUser", "runAsUsr");
    setup.policy.update(&[("policy.yaml", &broken)]);
    eventually(WAIT, "the reload error", || async {
        let text = setup.metrics().await;
        (metric(&text, r#"ciguard_reload_errors_total{target="policy"}"#) == Some(1.0)).then_some(())
    })
    .await;
    assert_eq!(build_user(&setup).await, 2222);
    let log = setup.server.stderr();
    assert!(log.contains("new policy rejected"), "{log}");
    assert!(log.contains("policy.yaml:") && log.contains("runAsUsr"), "{log}");
    let response = setup
        .client
        .get(setup.server.url(true, "/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Fixed again.
    setup
        .policy
        .update(&[("policy.yaml", &policy_with_user("third", 4444))]);
    eventually(WAIT, "the fixed policy", || async {
        (build_user(&setup).await == 4444).then_some(())
    })
    .await;
}

fn served_certificate(response: &reqwest::Response) -> Vec<u8> {
    let info = response.extensions().get::<reqwest::tls::TlsInfo>().unwrap();
    info.peer_certificate().unwrap().to_vec()
}

#[tokio::test]
async fn certificate_rotation_without_restart_or_dropped_connections() {
    let mut setup = Setup::start(&example_policy("tekton")).await;
    let response = setup
        .client
        .get(setup.server.url(true, "/healthz"))
        .send()
        .await
        .unwrap();
    let old_der = served_certificate(&response);

    // A client keeps sending reviews over its kept-alive connection during the rotation.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let background = {
        let (client, url) = (setup.client.clone(), setup.server.url(true, "/mutate"));
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let review = serde_json::to_vec(&body(TEKTON)).unwrap();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match client.post(&url).body(review.clone()).send().await {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };

    // cert-manager renews: the Secret's ..data swap.
    let second = setup.ca.leaf("second");
    setup
        .tls
        .update(&[("tls.crt", &second.cert_pem), ("tls.key", &second.key_pem)]);
    let ca = &setup.ca;
    let url = setup.server.url(true, "/healthz");
    eventually(WAIT, "the new certificate on new connections", || async {
        // A new client: a new connection and handshake.
        let response = ca.client().get(&url).send().await.ok()?;
        (served_certificate(&response) == second.der).then_some(())
    })
    .await;
    assert_ne!(old_der, second.der);
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    background.await.unwrap();
    assert!(ok.load(Ordering::Relaxed) > 0);
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during the rotation"
    );

    // A key that does not match is refused; the good pair keeps serving.
    let third = setup.ca.leaf("third");
    setup
        .tls
        .update(&[("tls.crt", &third.cert_pem), ("tls.key", &second.key_pem)]);
    eventually(WAIT, "the certificate reload error", || async {
        let text = setup.metrics().await;
        (metric(&text, r#"ciguard_reload_errors_total{target="certificate"}"#) >= Some(1.0)).then_some(())
    })
    .await;
    let response = ca.client().get(&url).send().await.unwrap();
    assert_eq!(served_certificate(&response), second.der);
    let text = setup.metrics().await;
    assert_eq!(
        metric(&text, r#"ciguard_reloads_total{target="certificate"}"#),
        Some(1.0)
    );
}

#[tokio::test]
async fn tls_1_2_is_served_and_plain_http_is_not() {
    let setup = Setup::start(&example_policy("tekton")).await;
    let tls12 = {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(setup.ca.der()))
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth()
    };
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls12)
        .build()
        .unwrap();
    let response = client
        .get(setup.server.url(true, "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Plain HTTP on the TLS port gets nothing useful.
    let plain = reqwest::Client::new()
        .get(setup.server.url(false, "/healthz"))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
}

/// Sends the headers and part of the body of a POST /mutate over plain TCP.
async fn half_request(port: u16, body: &[u8]) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: \
         {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..body.len() / 2]).await.unwrap();
    stream.flush().await.unwrap();
    stream
}

async fn read_response(stream: &mut tokio::net::TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out);
        if let Some((head, rest)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_string)
                })
                .and_then(|v| v.trim().parse::<usize>().ok());
            if length.is_some_and(|n| rest.len() >= n) {
                break;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// A plaintext (dev-only) server with the Woodpecker example policy and `extra` flags.
async fn plaintext_server(dir: &tempfile::TempDir, extra: &[&str]) -> Server {
    // reqwest's clients need the process-wide TLS provider, whichever test runs first.
    install_provider();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, example_policy("woodpecker")).unwrap();
    let mut args = vec![
        "--policy",
        policy.to_str().unwrap(),
        "--insecure-plaintext-dev-only",
    ];
    args.extend_from_slice(extra);
    Server::start(&args, &dir.path().join("stderr.log"), None).await
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = plaintext_server(&dir, &["--audit-log", "off"]).await;
    let body = serde_json::to_vec(&body(WOODPECKER)).unwrap();
    let mut in_flight = half_request(server.port, &body).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    server.terminate();
    // Readiness goes first, then the listener closes.
    eventually(WAIT, "the listener to close", || async {
        tokio::net::TcpStream::connect(("127.0.0.1", server.port))
            .await
            .is_err()
            .then_some(())
    })
    .await;
    // The request in flight still completes.
    in_flight.write_all(&body[body.len() / 2..]).await.unwrap();
    let response = read_response(&mut in_flight).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"allowed\":true"), "{response}");
    drop(in_flight);
    assert_eq!(server.wait_exit(WAIT), 0, "{}", server.stderr());
    assert!(server.stderr().contains("SIGTERM"));
}

#[tokio::test]
async fn a_request_that_takes_too_long_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let server = plaintext_server(&dir, &["--request-timeout", "300ms"]).await;
    let body = serde_json::to_vec(&body(WOODPECKER)).unwrap();
    let mut slow = half_request(server.port, &body).await;
    let response = read_response(&mut slow).await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("request timed out"), "{response}");
    // Others are still served.
    let response = reqwest::Client::new()
        .post(server.url(false, "/mutate"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_bad_policy_or_certificate_stops_the_start_with_exit_2() {
    install_provider();
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: ciguard.io/v1alpha1\nkind: SecurityPolicy\nspec: {nope: 1}\n",
    )
    .unwrap();
    let ca = Ca::new();
    let leaf = ca.leaf("x");
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    let run = |policy: &std::path::Path, key: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ciguard"))
            .args(["serve", "--addr", "127.0.0.1:0", "--policy"])
            .arg(policy)
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(key)
            .output()
            .unwrap()
    };
    let out = run(&policy, &key);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: failed to load the policy from"),
        "{stderr}"
    );
    assert!(stderr.contains("policy.yaml:3:"), "{stderr}");

    std::fs::write(&policy, example_policy("tekton")).unwrap();
    let other = dir.path().join("other.key");
    std::fs::write(&other, ca.leaf("y").key_pem).unwrap();
    let out = run(&policy, &other);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("failed to load the TLS certificate"), "{stderr}");

    // Without --tls-cert and without the dev flag: a usage error.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ciguard"))
        .args(["serve", "--policy"])
        .arg(&policy)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-cert"));
}
