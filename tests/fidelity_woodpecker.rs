//! Woodpecker's own Kubernetes tests, translated: each row names the upstream test and
//! case (woodpecker `pipeline/backend/kubernetes/pod_test.go`; `TestDefaultSecurityContext`
//! and `TestEnforcedSecurityContext` from PR #6310, `refs/pull/6310/head`). The agent
//! settings of the case go through `ciguard import woodpecker` (the library's importer);
//! the step pod is the one Woodpecker builds with no security settings of its own
//! (`DEFAULT_SECCTX='{}'`: its built-in rules for a step still apply, e.g. root only for a
//! privileged step); ciguard renders it, and the row asserts Woodpecker's result with the
//! settings, or a deliberate difference listed in docs/migrate-woodpecker.md.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

mod common;

use std::collections::BTreeMap;

use ciguard::{ValidPolicy, import::woodpecker};
use ciguard::{
    json,
    value::{Map, Value},
};
use common::render;

const NAME: &str = "wp-01he8bebctabr3kgk0qj36d2me-0";

fn import(env: &[(&str, &str)]) -> ValidPolicy {
    let vars: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let imported = woodpecker::import(&vars, "env").unwrap_or_else(|e| panic!("import failed: {e}"));
    let yaml = imported.to_yaml().unwrap();
    ciguard::policy::load::from_str(&yaml, "imported.yaml")
        .unwrap_or_else(|e| panic!("imported policy does not load: {e}\n{yaml}"))
}

/// The step pod Woodpecker builds (`podSecurityContext`, `containerSecurityContext` of PR
/// #6310) when the agent has no security settings, from the step's `backend_options`
/// security context and its `privileged` flag.
fn woodpecker_pod(privileged: bool, step: &Value) -> Value {
    woodpecker_pod_with(privileged, None, step)
}

/// [`woodpecker_pod`] with the step's `backend_options.hostUsers` (main branch: root is
/// allowed for a privileged step or with user namespaces, `hostUsers: false`).
fn woodpecker_pod_with(privileged: bool, host_users: Option<bool>, step: &Value) -> Value {
    let get = |k: &str| step.get(k).filter(|v| !v.is_null());
    let allow_root = privileged || host_users == Some(false);
    let mut pod = Map::new();
    for id in ["runAsUser", "runAsGroup"] {
        // only allow to set user/group if it's not root or the step is privileged
        if let Some(v) = get(id).filter(|v| v.as_i64() != Some(0) || allow_root) {
            pod.insert(id.into(), v.clone());
        }
    }
    for (from, to) in [
        ("fsGroup", "fsGroup"),
        ("runAsNonRoot", "runAsNonRoot"),
        ("seccompProfile", "seccompProfile"),
        ("apparmorProfile", "appArmorProfile"),
        ("fsGroupChangePolicy", "fsGroupChangePolicy"),
    ] {
        if let Some(v) = get(from) {
            pod.insert(to.into(), v.clone());
        }
    }
    let mut container = Map::new();
    if privileged && get("privileged").is_none_or(|p| p == &json!(true)) {
        container.insert("privileged".into(), json!(true));
    }
    if get("allowPrivilegeEscalation") == Some(&json!(false)) {
        container.insert("allowPrivilegeEscalation".into(), json!(false));
    }
    if let Some(drop) = get("capabilities")
        .and_then(|c| c.get("drop"))
        .filter(|d| d.as_array().is_some_and(|a| !a.is_empty()))
    {
        container.insert("capabilities".into(), json!({"drop": drop}));
    }
    let mut c = json!({"name": NAME, "image": "golang:1.16"});
    if !container.is_empty() {
        c["securityContext"] = Value::Object(container);
    }
    let mut out = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": NAME, "namespace": "woodpecker",
            "labels": {"step": "go-test", "woodpecker-ci.org/step": "go-test", "woodpecker-ci.org/task-uuid": "11301"}},
        "spec": {"restartPolicy": "Never", "containers": [c]},
    });
    if !pod.is_empty() {
        out["spec"]["securityContext"] = Value::Object(pod);
    }
    if let Some(h) = host_users {
        out["spec"]["hostUsers"] = json!(h);
    }
    normalized(out)
}

/// Woodpecker's "prefer nil over default values in kubernetes": `runAsNonRoot: false`,
/// `privileged: false` and `allowPrivilegeEscalation: true` mean the same as absent; so
/// does an empty security context.
fn normalized(mut pod: Value) -> Value {
    fn strip(ctx: &mut Value) {
        let Some(m) = ctx.as_object_mut() else { return };
        for (k, neutral) in [
            ("runAsNonRoot", false),
            ("privileged", false),
            ("allowPrivilegeEscalation", true),
        ] {
            if m.get(k) == Some(&json!(neutral)) {
                m.remove(k);
            }
        }
    }
    let spec = &mut pod["spec"];
    strip(&mut spec["securityContext"]);
    if spec["securityContext"].as_object().is_some_and(Map::is_empty) {
        spec.as_object_mut().unwrap().remove("securityContext");
    }
    for c in spec["containers"].as_array_mut().unwrap() {
        strip(&mut c["securityContext"]);
        if c["securityContext"].as_object().is_some_and(Map::is_empty) {
            c.as_object_mut().unwrap().remove("securityContext");
        }
    }
    pod
}

/// `pod.X` → the pod's securityContext field, `c.X` → the step container's, `pod` / `c`
/// → the whole context (`null`: absent).
fn at<'a>(pod: &'a Value, path: &str) -> &'a Value {
    let (scope, field) = path.split_once('.').unwrap_or((path, ""));
    let ctx = match scope {
        "pod" => &pod["spec"]["securityContext"],
        "c" => &pod["spec"]["containers"][0]["securityContext"],
        _ => panic!("bad path {path}"),
    };
    if field.is_empty() {
        return ctx;
    }
    field.split('.').fold(ctx, |v, k| &v[k])
}

struct Case {
    upstream: &'static str,
    env: &'static [(&'static str, &'static str)],
    privileged: bool,
    host_users: Option<bool>,
    step: &'static str,
    expect: &'static [(&'static str, &'static str)],
    difference: Option<&'static str>,
}

const DEF: &str = woodpecker::DEFAULT;
const ENF: &str = woodpecker::ENFORCED;
/// `createTestPod(…, globalRunAsNonRoot=false)`: a default `runAsNonRoot: false`.
const ROOT_OK: &[(&str, &str)] = &[(DEF, r#"{"runAsNonRoot": false}"#)];
/// `createTestPod(…, globalRunAsNonRoot=true)`: an enforced `runAsNonRoot: true`.
const NONROOT: &[(&str, &str)] = &[(ENF, r#"{"runAsNonRoot": true}"#), (DEF, "{}")];

const fn case(
    upstream: &'static str,
    env: &'static [(&'static str, &'static str)],
    privileged: bool,
    step: &'static str,
    expect: &'static [(&'static str, &'static str)],
) -> Case {
    Case {
        upstream,
        env,
        privileged,
        host_users: None,
        step,
        expect,
        difference: None,
    }
}

const POD_PRIVILEGE: &str = "TestPodPrivilege";

const CASES: &[Case] = &[
    case(
        "TestPodPrivilege/securty context is requesting user and group 101 (non-root)",
        ROOT_OK,
        false,
        r#"{"runAsUser": 101, "runAsGroup": 101, "fsGroup": 101}"#,
        &[
            ("pod.runAsUser", "101"),
            ("pod.runAsGroup", "101"),
            ("pod.fsGroup", "101"),
        ],
    ),
    Case {
        difference: Some("fsgroup-root"),
        ..case(
            "TestPodPrivilege/securty context is requesting root, but step is not privileged",
            ROOT_OK,
            false,
            r#"{"runAsUser": 0, "runAsGroup": 0, "fsGroup": 0}"#,
            &[("pod", r#"{"fsGroup": 0}"#), ("c", "null")],
        )
    },
    // Woodpecker's main branch (user namespaces), not in PR #6310's version of the test.
    Case {
        host_users: Some(false),
        ..case(
            "TestPodPrivilege/securty context is requesting root with hostUsers=false (user namespaces): allowed",
            ROOT_OK,
            false,
            r#"{"runAsUser": 0, "runAsGroup": 0, "fsGroup": 0}"#,
            &[
                ("pod.runAsUser", "0"),
                ("pod.runAsGroup", "0"),
                ("pod.fsGroup", "0"),
            ],
        )
    },
    Case {
        host_users: Some(true),
        ..case(
            "TestPodPrivilege/securty context is requesting root with hostUsers=true: still blocked",
            ROOT_OK,
            false,
            r#"{"runAsUser": 0, "runAsGroup": 0}"#,
            &[("pod.runAsUser", "null"), ("pod.runAsGroup", "null")],
        )
    },
    case(
        "TestPodPrivilege/step is not privileged, but security context is requesting privileged",
        ROOT_OK,
        false,
        r#"{"privileged": true}"#,
        &[("pod", "null")],
    ),
    case(
        "TestPodPrivilege/step is privileged and security context is requesting privileged",
        ROOT_OK,
        true,
        r#"{"privileged": true}"#,
        &[("c.privileged", "true")],
    ),
    case(
        "TestPodPrivilege/step is privileged and no security context is provided",
        ROOT_OK,
        true,
        "{}",
        &[("c.privileged", "true")],
    ),
    case(
        "TestPodPrivilege/global runAsNonRoot is true and override is requested value by security context",
        NONROOT,
        false,
        r#"{"runAsNonRoot": false}"#,
        &[("pod.runAsNonRoot", "true")],
    ),
    case(
        "TestPodPrivilege/non-privileged step with allowPrivilegeEscalation=false: applied",
        ROOT_OK,
        false,
        r#"{"allowPrivilegeEscalation": false}"#,
        &[("c.allowPrivilegeEscalation", "false"), ("c.privileged", "null")],
    ),
    case(
        "TestPodPrivilege/non-privileged step with allowPrivilegeEscalation=true: ignored",
        ROOT_OK,
        false,
        r#"{"allowPrivilegeEscalation": true}"#,
        &[("c", "null")],
    ),
    case(
        "TestPodPrivilege/privileged step with allowPrivilegeEscalation=true: ignored",
        ROOT_OK,
        true,
        r#"{"allowPrivilegeEscalation": true}"#,
        &[("c.allowPrivilegeEscalation", "null")],
    ),
    case(
        "TestPodPrivilege/non-privileged step with capabilities drop: applied",
        ROOT_OK,
        false,
        r#"{"capabilities": {"drop": ["ALL"]}}"#,
        &[
            ("c.capabilities.drop", r#"["ALL"]"#),
            ("c.capabilities.add", "null"),
            ("c.privileged", "null"),
        ],
    ),
    case(
        "TestPodPrivilege/non-privileged step with drop capabilities and allowPrivilegeEscalation=false: both applied",
        ROOT_OK,
        false,
        r#"{"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}"#,
        &[
            ("c.privileged", "null"),
            ("c.allowPrivilegeEscalation", "false"),
            ("c.capabilities.drop", r#"["ALL"]"#),
        ],
    ),
    Case {
        difference: Some("privileged-escalation"),
        ..case(
            "TestDefaultSecurityContext/default security context is applied when step has no security context",
            &[(
                DEF,
                r#"{"runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 2000, "fsGroup": 2000, "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"}, "capabilities": {"drop": ["ALL"]}, "allowPrivilegeEscalation": false}"#,
            )],
            true,
            "{}",
            &[
                ("pod.runAsNonRoot", "true"),
                ("pod.runAsUser", "1000"),
                ("pod.runAsGroup", "2000"),
                ("pod.fsGroup", "2000"),
                ("pod.fsGroupChangePolicy", r#""OnRootMismatch""#),
                ("pod.seccompProfile.type", r#""RuntimeDefault""#),
                ("c.capabilities.drop", r#"["ALL"]"#),
                ("c.capabilities.add", "null"),
                ("c.allowPrivilegeEscalation", "false"),
            ],
        )
    },
    case(
        "TestDefaultSecurityContext/step security context overrides individual fields from the default",
        &[(DEF, r#"{"runAsUser": 1000, "runAsGroup": 2000, "fsGroup": 2000}"#)],
        true,
        r#"{"runAsGroup": 999, "fsGroup": 999}"#,
        &[
            ("pod.runAsGroup", "999"),
            ("pod.fsGroup", "999"),
            ("pod.runAsUser", "1000"),
        ],
    ),
    Case {
        difference: Some("nonroot-false"),
        ..case(
            "TestDefaultSecurityContext/step can override default runAsNonRoot",
            &[(DEF, r#"{"runAsNonRoot": true}"#)],
            true,
            r#"{"runAsNonRoot": false}"#,
            &[("pod", "null")],
        )
    },
    case(
        "TestEnforcedSecurityContext/enforced security context overrides step security context",
        &[
            (
                ENF,
                r#"{"runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 2000, "fsGroup": 2000, "seccompProfile": {"type": "RuntimeDefault"}, "apparmorProfile": {"type": "RuntimeDefault"}, "capabilities": {"drop": ["ALL"]}, "allowPrivilegeEscalation": false, "privileged": false}"#,
            ),
            (DEF, "{}"),
        ],
        true,
        r#"{"runAsNonRoot": false, "runAsUser": 0, "runAsGroup": 0, "fsGroup": 0, "apparmorProfile": {"type": "Unconfined"}, "capabilities": {"drop": [""]}, "allowPrivilegeEscalation": true, "privileged": true}"#,
        &[
            ("pod.runAsNonRoot", "true"),
            ("pod.runAsUser", "1000"),
            ("pod.runAsGroup", "2000"),
            ("pod.fsGroup", "2000"),
            ("pod.seccompProfile.type", r#""RuntimeDefault""#),
            ("pod.appArmorProfile.type", r#""RuntimeDefault""#),
            ("c.capabilities.drop", r#"["ALL"]"#),
            ("c.capabilities.add", "null"),
            ("c.allowPrivilegeEscalation", "false"),
            ("c.privileged", "null"),
        ],
    ),
    case(
        "TestEnforcedSecurityContext/enforced security context is applied when no step security context is set",
        &[(ENF, r#"{"runAsUser": 1000, "fsGroup": 2000}"#), (DEF, "{}")],
        true,
        "{}",
        &[("pod.runAsUser", "1000"), ("pod.fsGroup", "2000")],
    ),
    case(
        "TestEnforcedSecurityContext/enforced security context overrides default security context",
        &[
            (DEF, r#"{"runAsUser": 1000, "runAsGroup": 2000}"#),
            (ENF, r#"{"runAsUser": 1001}"#),
        ],
        true,
        "{}",
        &[("pod.runAsUser", "1001"), ("pod.runAsGroup", "2000")],
    ),
];

fn documented(difference: &str) {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/migrate-woodpecker.md")).unwrap();
    assert!(
        doc.contains(&format!("| `{difference}` |")),
        "difference `{difference}` is not in the table of docs/migrate-woodpecker.md"
    );
}

fn check(c: &Case) -> Result<(), String> {
    let policy = import(c.env);
    let step: Value = serde_json::from_str(c.step).unwrap();
    let job = woodpecker_pod_with(c.privileged, c.host_users, &step);
    let out = normalized(render(&policy, &job).object);
    let differs: Vec<String> = c
        .expect
        .iter()
        .filter_map(|(path, want)| {
            let want: Value = serde_json::from_str(want).unwrap();
            let got = at(&out, path);
            (got != &want).then(|| format!("{path} = {got}, Woodpecker {want}"))
        })
        .collect();
    match (c.difference, differs.is_empty()) {
        (None, true) => Ok(()),
        (None, false) => Err(differs.join("; ")),
        (Some(d), false) => {
            documented(d);
            Ok(())
        }
        (Some(d), true) => Err(format!("listed as difference `{d}` but agrees with Woodpecker")),
    }
}

#[test]
fn woodpecker_security_context_tests() {
    assert!(
        CASES
            .iter()
            .filter(|c| c.upstream.starts_with(POD_PRIVILEGE))
            .count()
            == 13
    );
    let failed: Vec<String> = CASES
        .iter()
        .filter_map(|c| check(c).err().map(|e| format!("{}: {e}", c.upstream)))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} rows differ:\n{}",
        failed.len(),
        CASES.len(),
        failed.join("\n")
    );
}

const DIR: &str = "/woodpecker/src/github.com/woodpecker-ci/woodpecker";

/// TestInitContainer's `expected`: the init container Woodpecker adds for a non-root step
/// whose working directory lies inside the workspace volume.
fn woodpecker_init() -> Value {
    json!({
        "name": "init-wp-01he8bebctabr3kgk0qj36d2me-0",
        "image": "busybox:stable-musl",
        "imagePullPolicy": "Always",
        "args": ["mkdir", "-p", DIR],
        "resources": {"requests": {"cpu": "5m", "memory": "12Mi"}, "limits": {"cpu": "5m", "memory": "12Mi"}},
        "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [{"name": "workspace", "mountPath": "/woodpecker/src"}]
    })
}

/// TestInitContainer's step: `runAsNonRoot: true`, `runAsUser: 1000`, two volumes.
fn init_step(with_woodpecker_init: bool) -> Value {
    let mut job = woodpecker_pod(false, &json!({"runAsNonRoot": true, "runAsUser": 1000}));
    job["spec"]["volumes"] = json!([{"name": "workspace", "persistentVolumeClaim": {"claimName": "workspace"}},
        {"name": "other", "persistentVolumeClaim": {"claimName": "other"}}]);
    job["spec"]["containers"][0]["workingDir"] = json!(DIR);
    job["spec"]["containers"][0]["volumeMounts"] = json!([{"name": "workspace", "mountPath": "/woodpecker/src"}, {"name": "other", "mountPath": "/other"}]);
    if with_woodpecker_init {
        job["spec"]["initContainers"] = json!([woodpecker_init()]);
    }
    job
}

fn init_policy() -> ValidPolicy {
    let policy = import(&[
        (woodpecker::PERMISSION_INIT_IMAGE, "busybox:stable-musl"),
        (DEF, "{}"),
    ]);
    assert_eq!(policy.workdir_init.image, "busybox:stable-musl");
    policy
}

/// `TestInitContainer`, with the pod as Woodpecker builds it: Woodpecker's own init
/// container passes through unchanged (nothing in the imported policy touches it).
#[test]
fn init_container_as_woodpecker_builds_it() {
    let out = render(&init_policy(), &init_step(true));
    let inits = out.object["spec"]["initContainers"].as_array().unwrap();
    assert_eq!(inits[0], woodpecker_init(), "TestInitContainer");
    // Documented difference `workdir-init`: ciguard adds its own as well (the mkdir runs
    // twice, harmlessly).
    documented("workdir-init");
    assert_eq!(inits.len(), 2, "{inits:#?}");
}

/// `TestInitContainer`, for a runner that does not add the init container: ciguard adds
/// an equivalent one from `PERMISSION_INIT_IMAGE`.
#[test]
fn init_container() {
    let upstream = "TestInitContainer";
    let out = render(&init_policy(), &init_step(false));
    let inits = out.object["spec"]["initContainers"].as_array().unwrap();
    assert_eq!(inits.len(), 1, "{upstream}: {inits:#?}");
    let init = &inits[0];
    let dir = DIR;
    // Woodpecker's: image, mkdir -p of the working dir, only the mount that holds it,
    // 5m CPU / 12Mi memory, allowPrivilegeEscalation false and drop ALL.
    assert_eq!(init["image"], "busybox:stable-musl", "{upstream}");
    let cmd: Vec<&str> = init["command"]
        .as_array()
        .or(init["args"].as_array())
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(cmd, ["mkdir", "-p", dir], "{upstream}");
    assert_eq!(
        init["volumeMounts"],
        json!([{"name": "workspace", "mountPath": "/woodpecker/src"}]),
        "{upstream}"
    );
    assert_eq!(
        init["resources"]["limits"],
        json!({"cpu": "5m", "memory": "12Mi"}),
        "{upstream}"
    );
    assert_eq!(
        init["resources"]["requests"],
        json!({"cpu": "5m", "memory": "12Mi"}),
        "{upstream}"
    );
    let sc = &init["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], json!(false), "{upstream}");
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{upstream}");
    // Documented difference `workdir-init`: ciguard's is hardened further, and its name is
    // ciguard's own (so that it is regenerated, never duplicated).
    documented("workdir-init");
    assert_eq!(sc["runAsNonRoot"], json!(true));
    assert_eq!(sc["readOnlyRootFilesystem"], json!(true));
    assert!(
        init["name"]
            .as_str()
            .unwrap()
            .starts_with(ciguard::merge::WORKDIR_INIT_PREFIX)
    );
}

/// PR #6310's `TestSecurityContextFromCliContext` and `TestSecctxNonrootFromCliContext`:
/// what the agent reads from its environment, as the imported policy holds it.
#[test]
fn security_context_from_cli_context() {
    let policy = import(&[
        (
            DEF,
            "{\n\t\t\"runAsUser\":1000,\n\t\t\"runAsGroup\":1000,\n\t\t\"fsGroup\":1000,\n\t\t\"fsGroupChangePolicy\": \"OnRootMismatch\"\n\t}",
        ),
        (
            ENF,
            "{\n\t\t\"privileged\":false,\n\t\t\"runAsNonRoot\":true,\n\t\t\"allowPrivilegeEscalation\":false,\n\t\t\"seccompProfile\": {\"type\": \"RuntimeDefault\"},\n\t\t\"capabilities\": {\"drop\": [\"ALL\"]}\n\t}",
        ),
    ]);
    let upstream = "TestSecurityContextFromCliContext";
    assert_eq!(
        Value::Object(policy.pod.default.clone()),
        json!({"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000, "fsGroupChangePolicy": "OnRootMismatch"}),
        "{upstream}"
    );
    assert_eq!(
        Value::Object(policy.pod.enforced.clone()),
        json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}}),
        "{upstream}"
    );
    assert_eq!(
        Value::Object(policy.containers.enforced.clone()),
        json!({"privileged": false, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}),
        "{upstream}"
    );
    let policy = import(&[(woodpecker::NONROOT, "true")]);
    assert_eq!(
        policy.pod.enforced.get("runAsNonRoot"),
        Some(&json!(true)),
        "TestSecctxNonrootFromCliContext"
    );
}
