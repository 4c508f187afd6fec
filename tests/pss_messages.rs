//! Full denial messages for pods that fail several checks at once, at the versions where
//! the checks change: the order (baseline IDs sorted, then restricted IDs sorted, overridden
//! baseline checks left out), the plurals and the joins. Reviewed with `cargo insta review`.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers: a failed unwrap is a failed test

use ciguard::pss::{LevelVersion, evaluate};
use k8s_openapi::{api::core::v1::PodSpec, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use serde::Deserialize;

#[derive(Deserialize)]
struct Pod {
    #[serde(default)]
    metadata: ObjectMeta,
    spec: PodSpec,
}

fn pod(yaml: &str) -> Pod {
    let value: ciguard::value::Value =
        serde_saphyr::from_str_with_options(yaml, ciguard::source::yaml_options()).unwrap();
    ciguard::value::from_value(value).unwrap()
}

/// `level:version => message`, one line per target.
fn messages(yaml: &str, targets: &[&str]) -> String {
    let pod = pod(yaml);
    let mut out = String::new();
    for target in targets {
        let lv: LevelVersion = target.parse().unwrap();
        let eval = evaluate(&pod.metadata, &pod.spec, lv);
        let text = if eval.allowed() {
            "allowed".to_string()
        } else {
            eval.message()
        };
        out.push_str(&format!("{target} => {text}\n"));
    }
    out
}

/// Everything a baseline pod can get wrong, through annotations and fields.
const KITCHEN_SINK: &str = r#"
metadata:
  name: sink
  annotations:
    container.apparmor.security.beta.kubernetes.io/build: unconfined
    seccomp.security.alpha.kubernetes.io/pod: unconfined
spec:
  hostNetwork: true
  hostPID: true
  hostIPC: true
  securityContext:
    runAsUser: 0
    seLinuxOptions: {type: spc_t, user: sysadm_u}
    seccompProfile: {type: Unconfined}
    sysctls:
      - {name: kernel.msgmax, value: "1"}
      - {name: net.ipv4.tcp_rmem, value: "4096 87380 6291456"}
    windowsOptions: {hostProcess: true}
  initContainers:
    - name: init
      securityContext:
        privileged: true
        procMount: Unmasked
        capabilities: {add: [SYS_ADMIN]}
  containers:
    - name: build
      ports: [{containerPort: 8080, hostPort: 8080}, {containerPort: 9000, hostPort: 9000}]
      livenessProbe: {httpGet: {port: 8080, host: 10.0.0.1}}
      securityContext:
        runAsNonRoot: false
        appArmorProfile: {type: Unconfined}
        seLinuxOptions: {type: container_engine_t}
    - name: helper
      ports: [{containerPort: 80, hostPort: 80}]
      securityContext:
        allowPrivilegeEscalation: true
        capabilities: {drop: [ALL], add: [NET_BIND_SERVICE, NET_RAW]}
  volumes:
    - name: sock
      hostPath: {path: /var/run/docker.sock}
    - name: nfs
      nfs: {server: nfs.example, path: /cache}
    - name: plain
"#;

#[test]
fn kitchen_sink_across_versions() {
    insta::assert_snapshot!(messages(
        KITCHEN_SINK,
        &[
            "baseline:v1.0",
            "baseline:v1.19",
            "baseline:v1.31",
            "baseline:v1.34",
            "baseline:latest",
            "restricted:v1.0",
            "restricted:v1.18",
            "restricted:v1.19",
            "restricted:v1.22",
            "restricted:v1.23",
            "restricted:v1.35",
            "restricted:latest",
            "restricted:v1.99",
            "privileged:latest",
        ]
    ));
}

/// A typical CI pod a runner creates without any security context.
const BARE_CI_POD: &str = r#"
metadata: {name: runner-xyz-project-42-concurrent-0}
spec:
  initContainers:
    - {name: init-permissions, image: helper}
  containers:
    - {name: build, image: alpine}
    - {name: helper, image: helper}
    - {name: svc-0, image: postgres}
  volumes:
    - {name: repo, emptyDir: {}}
    - {name: scripts, configMap: {name: scripts}}
"#;

#[test]
fn bare_ci_pod() {
    insta::assert_snapshot!(messages(
        BARE_CI_POD,
        &[
            "baseline:latest",
            "restricted:v1.21",
            "restricted:v1.22",
            "restricted:latest"
        ]
    ));
}

/// User namespaces relax runAsNonRoot, runAsUser and baseline procMount from v1.35, but
/// not restricted's procMount_restricted; Windows pods skip Linux-only checks from v1.25.
const USER_NAMESPACE_POD: &str = r#"
spec:
  hostUsers: false
  securityContext: {runAsUser: 0, runAsNonRoot: false, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: build
      securityContext:
        procMount: Unmasked
        allowPrivilegeEscalation: false
        capabilities: {drop: [ALL]}
"#;

const WINDOWS_POD: &str = r#"
spec:
  os: {name: windows}
  securityContext: {runAsNonRoot: true}
  containers:
    - {name: build}
    - {name: helper}
"#;

#[test]
fn user_namespace_and_windows_relaxations() {
    let mut out = messages(
        USER_NAMESPACE_POD,
        &[
            "baseline:v1.34",
            "baseline:v1.35",
            "restricted:v1.34",
            "restricted:v1.35",
            "restricted:latest",
        ],
    );
    out.push_str(&messages(
        WINDOWS_POD,
        &["restricted:v1.24", "restricted:v1.25", "restricted:latest"],
    ));
    insta::assert_snapshot!(out);
}
