//! SPEC §5 keys: user namespaces (`hostUsers`, `allowRootInUserNamespace`),
//! `allowedCapabilities`, `forcedUser`, `workdirInit.resources`. Each table names the
//! upstream behaviour it mirrors.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

mod common;

use ciguard::merge::WarningCode;
use ciguard::{json, value::Value};
use common::{container, effective, policy, render, spec};
use rstest::rstest;

fn pod(pod_spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "job"}, "spec": pod_spec})
}

/// A job asking for root at pod level, under a policy that puts the pod in a user
/// namespace.
fn root_job() -> Value {
    pod(json!({
        "securityContext": {"runAsUser": 0, "runAsGroup": 0, "fsGroup": 0},
        "containers": [{"name": "build", "image": "alpine"}],
    }))
}

/// Rendering twice changes nothing and gives no patch; the patch reproduces the output.
fn stable(p: &ciguard::ValidPolicy, input: &Value) -> ciguard::merge::Rendered {
    let once = render(p, input);
    let mut doc = serde_json::Value::from(input.clone());
    let patch: json_patch::Patch =
        ciguard::value::from_value(ciguard::value::to_value(&once.patch).unwrap()).unwrap();
    json_patch::patch(&mut doc, &patch).unwrap();
    assert_eq!(Value::from(doc), once.object, "the patch reproduces the output");
    let twice = render(p, &once.object);
    assert_eq!(twice.object, once.object, "render is idempotent");
    assert!(twice.patch.is_empty(), "{:?}", twice.patch);
    once
}

const USERNS: &str = "  pss: {level: restricted, version: latest}\n  pod:\n    default: {runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, runAsNonRoot: true}\n    enforced: {hostUsers: false, seccompProfile: {type: RuntimeDefault}}\n  containers:\n    enforced: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}\n";

// Woodpecker (main branch, pipeline/backend/kubernetes/pod.go): "only allow to set
// user/group if it's not root or the step is privileged" — or runs with hostUsers: false.
#[rstest]
#[case::root_kept_with_allow_root(true, Some(0), Some(0), false)]
#[case::root_dropped_without(false, Some(1000), Some(1000), true)]
fn root_in_user_namespace(
    #[case] allow: bool,
    #[case] uid: Option<i64>,
    #[case] fs_group: Option<i64>,
    #[case] warns: bool,
) {
    let p = policy(&format!("{USERNS}  allowRootInUserNamespace: {allow}\n"));
    let r = stable(&p, &root_job());
    assert_eq!(spec(&r)["hostUsers"], json!(false));
    assert_eq!(effective(&r, "build", "runAsUser").and_then(Value::as_i64), uid);
    assert_eq!(spec(&r)["securityContext"]["fsGroup"].as_i64(), fs_group);
    let disallowed = r.warnings.iter().any(|w| w.code == WarningCode::DisallowedId);
    assert_eq!(disallowed, warns, "{:?}", r.warnings);
    // restricted:latest relaxes runAsNonRoot/runAsUser for pods in a user namespace.
    assert!(r.denial.is_none(), "{:?}", r.denial.map(|d| d.message()));
}

/// Pod Security v1.35 relaxes runAsNonRoot and runAsUser for `hostUsers: false`
/// (kubernetes/pod-security-admission `check_runAsNonRoot.go`, `check_runAsUser.go`).
#[rstest]
#[case::v1_34("v1.34", true)]
#[case::v1_35("v1.35", false)]
fn check_versions_for_a_root_pod_in_a_user_namespace(#[case] version: &str, #[case] denied: bool) {
    let p = policy(&format!(
        "{}  allowRootInUserNamespace: true\n",
        USERNS.replace("version: latest", &format!("version: {version}"))
    ));
    let r = render(&p, &root_job());
    assert_eq!(effective(&r, "build", "runAsUser"), Some(&json!(0)));
    assert_eq!(r.denial.is_some(), denied, "{:?}", r.denial.map(|d| d.message()));
}

#[rstest]
// Precedence: default < job < enforced.
#[case::default_applies("{hostUsers: false}", "{}", json!({}), Some(false), None)]
#[case::job_beats_default("{hostUsers: false}", "{}", json!({"hostUsers": true}), Some(true), None)]
#[case::enforced_beats_job("{}", "{hostUsers: false}", json!({"hostUsers": true}), Some(false), None)]
// Validity: a default yields to a host namespace; an enforced value makes it disallowed.
#[case::default_yields_to_host_network("{hostUsers: false}", "{}", json!({"hostNetwork": true}), None, None)]
#[case::enforced_drops_host_pid("{}", "{hostUsers: false}", json!({"hostPID": true}), Some(false), Some("hostPID"))]
#[case::job_pair_is_the_api_servers("{}", "{}", json!({"hostUsers": false, "hostIPC": true}), Some(false), None)]
fn host_users_precedence_and_validity(
    #[case] default: &str,
    #[case] enforced: &str,
    #[case] job: Value,
    #[case] expect: Option<bool>,
    #[case] dropped: Option<&str>,
) {
    let p = policy(&format!(
        "  pod:\n    default: {default}\n    enforced: {enforced}\n"
    ));
    let mut s = job.clone();
    s["containers"] = json!([{"name": "build", "image": "alpine"}]);
    let r = stable(&p, &pod(s));
    assert_eq!(spec(&r).get("hostUsers").and_then(Value::as_bool), expect);
    match dropped {
        Some(key) => {
            assert!(spec(&r).get(key).is_none());
            assert!(
                r.warnings
                    .iter()
                    .any(|w| w.code == WarningCode::ConflictsWithPolicy && w.detail.contains(key)),
                "{:?}",
                r.warnings
            );
        }
        None => {
            for key in ["hostNetwork", "hostPID", "hostIPC"] {
                assert_eq!(spec(&r).get(key), job.get(key));
            }
        }
    }
}

#[test]
fn enforced_host_users_denies_a_host_namespace_under_deny() {
    let p = policy("  onViolation: deny\n  pod:\n    enforced: {hostUsers: false}\n");
    let r = render(
        &p,
        &pod(json!({"hostNetwork": true, "containers": [{"name": "build", "image": "alpine"}]})),
    );
    let d = r.denial.expect("denied");
    assert!(
        d.message()
            .contains("hostNetwork true cannot stand with hostUsers false from pod.enforced"),
        "{}",
        d.message()
    );
}

// SPEC §5, allowedCapabilities; the same-layer rule is GitLab Runner's `cap_add` +
// `cap_drop` (executors/kubernetes: "drop wins").
#[rstest]
#[case::allowed_as_written("[NET_BIND_SERVICE]", "[NET_BIND_SERVICE]", Some(json!(["NET_BIND_SERVICE"])), 0)]
#[case::prefix_and_case_insensitive("[cap_net_bind_service]", "[NET_BIND_SERVICE, CAP_SYS_PTRACE]", Some(json!(["NET_BIND_SERVICE"])), 1)]
#[case::job_prefix("[SYS_PTRACE]", "[CAP_SYS_PTRACE]", Some(json!(["CAP_SYS_PTRACE"])), 0)]
#[case::all_filtered("[NET_BIND_SERVICE]", "[NET_ADMIN, SYS_ADMIN]", None, 2)]
fn capability_add_is_filtered_with_a_warning(
    #[case] allowed: &str,
    #[case] add: &str,
    #[case] expect: Option<Value>,
    #[case] warnings: usize,
) {
    let p = policy(&format!(
        "  allowedCapabilities: {allowed}\n  containers:\n    enforced: {{capabilities: {{drop: [ALL]}}}}\n"
    ));
    let add: Value = serde_saphyr::from_str(add).unwrap();
    let r = stable(
        &p,
        &pod(
            json!({"containers": [{"name": "build", "image": "alpine", "securityContext": {"capabilities": {"add": add}}}]}),
        ),
    );
    let caps = &container(&r, "build")["securityContext"]["capabilities"];
    assert_eq!(caps.get("add").cloned(), expect);
    let n = r
        .warnings
        .iter()
        .filter(|w| w.code == WarningCode::DisallowedCapability)
        .count();
    assert_eq!(n, warnings, "{:?}", r.warnings);
}

#[test]
fn capability_outside_the_list_is_denied_under_deny() {
    let p = policy("  onViolation: deny\n  allowedCapabilities: [NET_BIND_SERVICE]\n");
    let r = render(
        &p,
        &pod(
            json!({"containers": [{"name": "build", "image": "alpine", "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}]}),
        ),
    );
    let d = r.denial.expect("denied");
    assert_eq!(r.denied_codes, vec![WarningCode::DisallowedCapability]);
    assert!(
        d.message().contains(
            "capabilities.add \"NET_ADMIN\" is not allowed by allowedCapabilities [NET_BIND_SERVICE]"
        ),
        "{}",
        d.message()
    );
}

#[rstest]
#[case::role_enforced_bypasses("  build:\n    enforced: {capabilities: {add: [NET_ADMIN]}}\n", json!(["NET_ADMIN"]))]
#[case::offered_by_a_default("  build:\n    default: {capabilities: {add: [NET_ADMIN]}}\n", json!(["NET_ADMIN"]))]
#[case::same_layer_drop_wins("  build:\n    enforced: {capabilities: {add: [NET_ADMIN, NET_RAW], drop: [NET_RAW]}}\n", json!(["NET_ADMIN"]))]
fn admin_layers_bypass_the_capability_list(#[case] section: &str, #[case] expect: Value) {
    let p = policy(&format!("  allowedCapabilities: []\n{section}"));
    let job = if section.contains("default") {
        json!({"capabilities": {"add": ["NET_ADMIN"]}})
    } else {
        json!({})
    };
    let r = stable(
        &p,
        &pod(json!({"containers": [{"name": "build", "image": "alpine", "securityContext": job}]})),
    );
    assert_eq!(
        container(&r, "build")["securityContext"]["capabilities"]["add"],
        expect
    );
    assert!(
        r.warnings
            .iter()
            .all(|w| w.code != WarningCode::DisallowedCapability),
        "{:?}",
        r.warnings
    );
}

const FORCED: &str =
    "  forcedUser: {home: /tmp, writableTmp: true}\n  pod:\n    default: {runAsUser: 1000}\n";

#[test]
fn home_and_tmp_are_injected_once() {
    let p = policy(FORCED);
    let input = pod(json!({"containers": [
        {"name": "build", "image": "alpine", "env": [{"name": "CI", "value": "true"}]},
        {"name": "svc", "image": "redis"},
    ]}));
    let r = stable(&p, &input);
    for name in ["build", "svc"] {
        let c = container(&r, name);
        let homes: Vec<_> = c["env"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["name"] == "HOME")
            .collect();
        assert_eq!(homes, vec![&json!({"name": "HOME", "value": "/tmp"})]);
        assert_eq!(
            c["volumeMounts"],
            json!([{"name": "ciguard-tmp", "mountPath": "/tmp"}])
        );
    }
    assert_eq!(
        spec(&r)["volumes"],
        json!([{"name": "ciguard-tmp", "emptyDir": {}}])
    );
    assert_eq!(
        container(&r, "build")["env"][0],
        json!({"name": "CI", "value": "true"})
    );
    let explain = r.explain();
    assert!(
        explain.contains(
            "spec.containers[build].env[HOME] = {\"name\":\"HOME\",\"value\":\"/tmp\"}  <- forcedUser"
        ),
        "{explain}"
    );
    assert!(explain.contains("spec.volumes[ciguard-tmp] = "), "{explain}");
}

#[rstest]
// The container's own HOME and /tmp mount are never replaced.
#[case::own_home_and_tmp(json!({"name": "build", "image": "a", "env": [{"name": "HOME", "value": "/root"}], "volumeMounts": [{"name": "scratch", "mountPath": "/tmp/"}]}), json!({"securityContext": {}}), false)]
// The job set the uid: nothing is injected.
#[case::job_uid(json!({"name": "build", "image": "a", "securityContext": {"runAsUser": 1500}}), json!({}), false)]
#[case::job_pod_uid(json!({"name": "build", "image": "a"}), json!({"securityContext": {"runAsUser": 1500}}), false)]
#[case::policy_uid(json!({"name": "build", "image": "a"}), json!({}), true)]
fn forced_user_only_where_the_policy_set_the_uid(
    #[case] c: Value,
    #[case] extra: Value,
    #[case] injected: bool,
) {
    let p = policy(FORCED);
    let mut s = extra;
    s["volumes"] = json!([{"name": "scratch", "emptyDir": {}}]);
    s["containers"] = json!([c.clone()]);
    let r = stable(&p, &pod(s));
    let out = container(&r, "build");
    let home = out["env"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["name"] == "HOME")
        .cloned();
    let own_home = c["env"].as_array().and_then(|e| e.first()).cloned();
    if injected {
        assert_eq!(home, Some(json!({"name": "HOME", "value": "/tmp"})));
        assert!(
            spec(&r)["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["name"] == "ciguard-tmp")
        );
    } else {
        assert_eq!(home, own_home);
        assert_eq!(out.get("volumeMounts"), c.get("volumeMounts"));
        assert!(
            !spec(&r)["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["name"] == "ciguard-tmp")
        );
    }
}

#[rstest]
#[case::default(None, json!({"requests": {"cpu": "5m", "memory": "12Mi"}, "limits": {"cpu": "5m", "memory": "12Mi"}}))]
#[case::set(Some("{requests: {cpu: 10m, memory: 16Mi}, limits: {memory: 16Mi}}"), json!({"limits": {"memory": "16Mi"}, "requests": {"cpu": "10m", "memory": "16Mi"}}))]
fn workdir_init_resources(#[case] resources: Option<&str>, #[case] expect: Value) {
    let mut yaml = "  pod:\n    default: {runAsUser: 1000, runAsGroup: 1000}\n".to_string();
    if let Some(r) = resources {
        yaml.push_str(&format!("  workdirInit: {{resources: {r}}}\n"));
    }
    let p = policy(&yaml);
    let input = pod(json!({
        "volumes": [{"name": "ws", "emptyDir": {}}],
        "containers": [{"name": "build", "image": "a", "workingDir": "/ws/src", "volumeMounts": [{"name": "ws", "mountPath": "/ws"}]}],
    }));
    let r = stable(&p, &input);
    let init = &spec(&r)["initContainers"][0];
    assert_eq!(init["resources"], expect);
}

/// The init container follows the pod's effective seccomp/AppArmor/SELinux.
#[test]
fn workdir_init_follows_the_pods_profiles() {
    let p = policy(
        "  pod:\n    default: {runAsUser: 1000}\n    enforced: {seccompProfile: {type: Localhost, localhostProfile: ci.json}, appArmorProfile: {type: Localhost, localhostProfile: ci}, seLinuxOptions: {level: \"s0:c1,c2\"}}\n",
    );
    let input = pod(json!({
        "volumes": [{"name": "ws", "emptyDir": {}}],
        "containers": [{"name": "build", "image": "a", "workingDir": "/ws/src", "volumeMounts": [{"name": "ws", "mountPath": "/ws"}]}],
    }));
    let r = stable(&p, &input);
    let ctx = &spec(&r)["initContainers"][0]["securityContext"];
    assert_eq!(
        ctx["seccompProfile"],
        json!({"type": "Localhost", "localhostProfile": "ci.json"})
    );
    assert_eq!(
        ctx["appArmorProfile"],
        json!({"type": "Localhost", "localhostProfile": "ci"})
    );
    assert_eq!(ctx["seLinuxOptions"], json!({"level": "s0:c1,c2"}));
}

#[rstest]
#[case::bad_capability(
    "  allowedCapabilities: [\"NET BIND\"]\n",
    "test-policy.yaml:4:25: allowedCapabilities[0] \"NET BIND\": expected a capability name"
)]
#[case::relative_home(
    "  forcedUser: {home: tmp}\n",
    "test-policy.yaml:4:22: forcedUser.home \"tmp\": expected an absolute path"
)]
#[case::host_users_type("  pod:\n    default: {hostUsers: 3}\n", "test-policy.yaml:5:")]
#[case::unknown_pod_key_lists_host_users(
    "  pod:\n    default: {hostUser: false}\n",
    "expected one of appArmorProfile, fsGroup, fsGroupChangePolicy, hostUsers,"
)]
fn bad_values(#[case] yaml: &str, #[case] expect: &str) {
    let text = format!("apiVersion: ciguard.io/v1alpha1\nkind: SecurityPolicy\nspec:\n{yaml}");
    let e = ciguard::policy::load::from_str(&text, "test-policy.yaml")
        .unwrap_err()
        .to_string();
    assert!(e.contains(expect), "{e}");
}
