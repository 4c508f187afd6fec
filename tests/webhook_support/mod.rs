//! Shared by the webhook tests: AdmissionReview bodies as the API server sends them,
//! patch application, certificates, and the `ciguard serve` process.
#![allow(dead_code)]

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use base64::Engine as _;
use ciguard::{json, value::Value};

/// The captured bodies in tests/data/admission (see generate.py there).
pub const GITLAB: &str = include_str!("../data/admission/gitlab-runner-build-pod.json");
pub const WOODPECKER: &str = include_str!("../data/admission/woodpecker-step-pod.json");
pub const TEKTON: &str = include_str!("../data/admission/tekton-taskrun-pod.json");

/// Parses a captured body.
pub fn body(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// An AdmissionReview for `object`, shaped as the API server sends it.
pub fn review(operation: &str, object: &Value, old: Option<&Value>) -> Value {
    let api_version = object["apiVersion"].as_str().unwrap_or("v1");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let kind = object["kind"].as_str().unwrap_or("");
    let resource = format!("{}s", kind.to_lowercase());
    let gvk = json!({"group": group, "version": version, "kind": kind});
    let gvr = json!({"group": group, "version": version, "resource": resource});
    let options = match operation {
        "CREATE" => json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}),
        "UPDATE" => json!({"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"}),
        _ => json!({"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"}),
    };
    json!({
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": format!("uid-{}", object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("x")),
            "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
            "name": object.pointer("/metadata/name").cloned().unwrap_or(json!("")),
            "namespace": object.pointer("/metadata/namespace").cloned().unwrap_or(json!("ci")),
            "operation": operation,
            "userInfo": {"username": "system:serviceaccount:ci:runner", "groups": ["system:authenticated"]},
            "object": object,
            "oldObject": old,
            "dryRun": false,
            "options": options,
        }
    })
}

/// `request.object` of a review.
pub fn object(review: &Value) -> Value {
    review["request"]["object"].clone()
}

/// Checks the envelope of an answer and returns its `response`.
pub fn response<'a>(answer: &'a Value, request: &Value) -> &'a Value {
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1", "{answer}");
    assert_eq!(answer["kind"], "AdmissionReview", "{answer}");
    let response = &answer["response"];
    assert_eq!(response["uid"], request["request"]["uid"], "{answer}");
    response
}

/// The decoded JSON Patch of a response (empty when there is none). The wire form must
/// be a base64 string with `patchType: JSONPatch`.
pub fn patch_of(response: &Value) -> Value {
    match &response["patch"] {
        Value::Null => {
            assert!(response.get("patchType").is_none(), "{response}");
            json!([])
        }
        Value::String(b64) => {
            assert_eq!(response["patchType"], "JSONPatch", "{response}");
            let bytes = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
            serde_json::from_slice(&bytes).unwrap()
        }
        other => panic!("patch must be a base64 string, got {other}"),
    }
}

/// Applies a response's patch to an object, as the API server does.
pub fn apply(object: &Value, response: &Value) -> Value {
    let patch: json_patch::Patch = ciguard::value::from_value(patch_of(response)).unwrap();
    let mut out = serde_json::Value::from(object.clone());
    json_patch::patch(&mut out, &patch).unwrap();
    out.into()
}

/// Warnings of a response.
pub fn warnings(response: &Value) -> Vec<String> {
    response["warnings"]
        .as_array()
        .map(|w| w.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// A CA and leaf certificates it signs, like cert-manager's CA issuer.
pub struct Ca {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

/// A PEM leaf certificate and key, and the certificate's DER.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl Ca {
    pub fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ciguard test CA");
        let issuer =
            rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    pub fn der(&self) -> Vec<u8> {
        self.issuer.der().to_vec()
    }

    /// A serving certificate for localhost and 127.0.0.1; `cn` tells leaves apart.
    pub fn leaf(&self, cn: &str) -> Leaf {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// A rustls client configuration trusting this CA only.
    pub fn client_config(&self) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth()
    }

    /// An HTTPS client trusting this CA.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .tls_backend_preconfigured(self.client_config())
            .tls_info(true)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }
}

/// Writes files the way the kubelet updates a mounted ConfigMap or Secret: a new
/// timestamped directory, then an atomic rename of the `..data` symlink onto it. The
/// visible files are symlinks through `..data`.
pub struct Projected {
    pub dir: PathBuf,
    generation: u32,
}

impl Projected {
    pub fn new(dir: &Path, files: &[(&str, &str)]) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let mut p = Projected {
            dir: dir.to_path_buf(),
            generation: 0,
        };
        p.update(files);
        for (name, _) in files {
            std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).unwrap();
        }
        p
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn update(&mut self, files: &[(&str, &str)]) {
        self.generation += 1;
        let old = format!(
            "..2025_01_01_00_00_{:02}.{}",
            self.generation - 1,
            self.generation - 1
        );
        let new = format!("..2025_01_01_00_00_{:02}.{}", self.generation, self.generation);
        std::fs::create_dir(self.dir.join(&new)).unwrap();
        for (name, text) in files {
            std::fs::write(self.dir.join(&new).join(name), text).unwrap();
        }
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&new, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
        let _ = std::fs::remove_dir_all(self.dir.join(old));
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `ciguard serve`, killed when dropped. Its stderr goes to `log`.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

impl Server {
    /// Starts the binary with `args` (plus `--addr`), and waits until `/readyz` answers.
    pub async fn start(args: &[&str], log: &Path, https: Option<&reqwest::Client>) -> Self {
        Self::start_in(Command::new(env!("CARGO_BIN_EXE_ciguard")), args, log, https).await
    }

    /// Starts `serve` over TLS: `policy` are the policy flags (`--policy P`,
    /// `--policy-dir D`), then the serving certificate and key, the audit log, and `extra`;
    /// the server's stderr goes to `stderr.log` beside the audit log.
    pub async fn start_tls(
        policy: &[&str],
        (cert, key): (&Path, &Path),
        audit: &Path,
        extra: &[&str],
        client: &reqwest::Client,
    ) -> Self {
        let mut args = policy.to_vec();
        for (flag, path) in [("--tls-cert", cert), ("--tls-key", key), ("--audit-log", audit)] {
            args.push(flag);
            args.push(path.to_str().unwrap());
        }
        args.extend_from_slice(extra);
        let log = audit.with_file_name("stderr.log");
        Self::start(&args, &log, Some(client)).await
    }

    /// Starts the binary under a hard open-file limit of `nofile` (via `sh -c ulimit`).
    pub async fn start_with_nofile(
        nofile: u32,
        args: &[&str],
        log: &Path,
        https: Option<&reqwest::Client>,
    ) -> Self {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!(
                "ulimit -Sn {nofile} && ulimit -Hn {nofile} && exec \"$0\" \"$@\""
            ))
            .arg(env!("CARGO_BIN_EXE_ciguard"));
        Self::start_in(command, args, log, https).await
    }

    async fn start_in(
        mut command: Command,
        args: &[&str],
        log: &Path,
        https: Option<&reqwest::Client>,
    ) -> Self {
        let port = free_port();
        let child = command
            .arg("serve")
            .args(args)
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .env("CIGUARD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let mut server = Server {
            child,
            port,
            log: log.to_path_buf(),
        };
        server.wait_ready(https).await;
        server
    }

    pub fn url(&self, https: bool, path: &str) -> String {
        let scheme = if https { "https" } else { "http" };
        format!("{scheme}://localhost:{}{path}", self.port)
    }

    async fn wait_ready(&mut self, https: Option<&reqwest::Client>) {
        let plain = reqwest::Client::new();
        let client = https.unwrap_or(&plain);
        let url = self.url(https.is_some(), "/readyz");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("ciguard serve exited with {status}:\n{}", self.stderr());
            }
            if client.get(&url).send().await.is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(Instant::now() < deadline, "not ready in time:\n{}", self.stderr());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit; its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> i32 {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "did not exit in time:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` every 25 ms until it returns `Some`, for at most `within`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The value of one sample in Prometheus text, e.g.
/// `ciguard_reloads_total{target="policy"}`.
pub fn metric(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// What the API server's defaulting does to a pod's containers (SetDefaults_Container in
/// pkg/apis/core/v1/defaults.go): `terminationMessagePath`, `terminationMessagePolicy`,
/// `imagePullPolicy` (Always for `:latest` or no tag, else IfNotPresent), port protocol,
/// requests from limits; and the pod fields SetDefaults_PodSpec fills.
pub fn apiserver_defaults(pod: &mut Value) {
    let spec = pod["spec"].as_object_mut().unwrap();
    for (k, v) in [
        ("dnsPolicy", json!("ClusterFirst")),
        ("restartPolicy", json!("Always")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("schedulerName", json!("default-scheduler")),
        ("securityContext", json!({})),
        ("enableServiceLinks", json!(true)),
    ] {
        spec.entry(k).or_insert(v);
    }
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        let Some(Value::Array(items)) = spec.get_mut(list) else {
            continue;
        };
        for c in items {
            let c = c.as_object_mut().unwrap();
            c.entry("terminationMessagePath")
                .or_insert(json!("/dev/termination-log"));
            c.entry("terminationMessagePolicy").or_insert(json!("File"));
            let image = c.get("image").and_then(Value::as_str).unwrap_or("").to_string();
            let last = image.rsplit('/').next().unwrap_or("");
            let policy = if !image.contains('@') && (!last.contains(':') || last.ends_with(":latest")) {
                "Always"
            } else {
                "IfNotPresent"
            };
            c.entry("imagePullPolicy").or_insert(json!(policy));
            if let Some(Value::Array(ports)) = c.get_mut("ports") {
                for p in ports {
                    p.as_object_mut()
                        .unwrap()
                        .entry("protocol")
                        .or_insert(json!("TCP"));
                }
            }
            if let Some(limits) = c.get("resources").and_then(|r| r.get("limits")).cloned() {
                let requests = c["resources"]
                    .as_object_mut()
                    .unwrap()
                    .entry("requests")
                    .or_insert(json!({}));
                for (k, v) in limits.as_object().unwrap() {
                    requests.as_object_mut().unwrap().entry(k).or_insert(v.clone());
                }
            }
        }
    }
}

/// The name the ServiceAccount admission plugin gives the projected token volume.
pub const TOKEN_VOLUME: &str = "kube-api-access-x7k2p";

/// What the ServiceAccount admission plugin (plugin/pkg/admission/serviceaccount) does
/// to a pod: `serviceAccountName: default`, the projected token volume, and its mount
/// read-only at /var/run/secrets/kubernetes.io/serviceaccount in every init and regular
/// container that has no mount there. It runs again when a webhook changed the pod.
pub fn serviceaccount_admission(pod: &mut Value) {
    const PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
    let spec = pod["spec"].as_object_mut().unwrap();
    spec.entry("serviceAccountName").or_insert(json!("default"));
    if spec.get("automountServiceAccountToken") == Some(&json!(false)) {
        return;
    }
    let volumes = spec.entry("volumes").or_insert(json!([])).as_array_mut().unwrap();
    if !volumes.iter().any(|v| v["name"] == TOKEN_VOLUME) {
        volumes.push(json!({"name": TOKEN_VOLUME, "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
        ]}}));
    }
    for list in ["initContainers", "containers"] {
        let Some(Value::Array(items)) = spec.get_mut(list) else {
            continue;
        };
        for c in items {
            let mounts = c
                .as_object_mut()
                .unwrap()
                .entry("volumeMounts")
                .or_insert(json!([]))
                .as_array_mut()
                .unwrap();
            if !mounts.iter().any(|m| m["mountPath"] == PATH) {
                mounts.push(json!({"name": TOKEN_VOLUME, "readOnly": true, "mountPath": PATH}));
            }
        }
    }
}

/// The pod as the API server hands it to a webhook: defaulted, then admitted by the
/// ServiceAccount plugin.
pub fn as_apiserver_sends(pod: &Value) -> Value {
    let mut pod = pod.clone();
    apiserver_defaults(&mut pod);
    serviceaccount_admission(&mut pod);
    pod
}
