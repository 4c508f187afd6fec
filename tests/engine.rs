//! The merge engine's contract: precedence, roles, allowlists, validity, the
//! working-directory init container; GitLab Runner's and Woodpecker's scenarios.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

mod common;

use ciguard::{json, value::Value};
use common::{container, effective, policy, render};
use rstest::rstest;

/// A GitLab-Runner-shaped pod whose build container asks for `job` (a securityContext).
fn gitlab_pod(job: Value) -> Value {
    let mut pod = common::example("examples/gitlab-runner/build-pod.yaml");
    pod["spec"]["containers"][0]["securityContext"] = job;
    pod
}

fn uid_gid(r: &ciguard::merge::Rendered, name: &str) -> (Option<i64>, Option<i64>) {
    (
        effective(r, name, "runAsUser").and_then(Value::as_i64),
        effective(r, name, "runAsGroup").and_then(Value::as_i64),
    )
}

// GitLab Runner's "Kubernetes allowed users/groups" scenarios.
const S1: &str = "  preset: gitlab-runner\n  allowedUsers: [\"1000\", \"1001\"]\n  allowedGroups: [\"1001\", \"1002\"]\n  build:\n    enforced: {runAsUser: 65534, runAsGroup: 65534}\n";
const S2: &str = "  preset: gitlab-runner\n  allowedUsers: [\"1000\", \"65534\"]\n  allowedGroups: [\"1001\", \"65534\"]\n";
const S3: &str = "  preset: gitlab-runner\n  allowedUsers: [\"1000\", \"65534\"]\n";
const S4: &str = "  preset: gitlab-runner\n  build:\n    enforced: {runAsUser: 1000, runAsGroup: 1001}\n";
const S5: &str = "  preset: gitlab-runner\n  allowedUsers: [\"1000\", \"1001\"]\n  build:\n    enforced: {runAsUser: 0, runAsGroup: 0}\n";
const S6: &str = "  preset: gitlab-runner\n  allowedUsers: [\"1000\", \"1001\"]\n";

#[rstest]
#[case::s1_role_enforced_beats_allowed_job(S1, (1000, 1001), (Some(65534), Some(65534)), false)]
#[case::s2_allowed_job(S2, (1000, 1001), (Some(1000), Some(1001)), false)]
#[case::s3_disallowed_user(S3, (1001, 1001), (None, Some(1001)), true)]
#[case::s4_role_enforced_beats_job(S4, (2000, 2001), (Some(1000), Some(1001)), false)]
#[case::s5_admin_root_bypasses_list(S5, (1000, 1001), (Some(0), Some(0)), false)]
#[case::s6_job_root_disallowed(S6, (0, 0), (None, None), true)]
fn gitlab_allowed_users_scenarios(
    #[case] spec: &str,
    #[case] job: (i64, i64),
    #[case] build: (Option<i64>, Option<i64>),
    #[case] warns: bool,
) {
    let pod = gitlab_pod(json!({"runAsUser": job.0, "runAsGroup": job.1}));

    let r = render(&policy(spec), &pod);
    assert_eq!(uid_gid(&r, "build"), build);
    assert!(r.denial.is_none());
    // The helper never gets the job's ids, nor the build role's.
    let helper = uid_gid(&r, "helper");
    for id in [Some(job.0), Some(job.1), build.0, build.1] {
        if id.is_some() {
            assert_ne!(helper.0, id, "helper runAsUser");
            assert_ne!(helper.1, id, "helper runAsGroup");
        }
    }
    let (notices, problems): (Vec<_>, Vec<_>) = r.warnings.iter().partition(|w| w.code.is_notice());
    assert_eq!(!problems.is_empty(), warns, "{:?}", r.warnings);
    // A role's enforced user that replaces the job's is told, as GitLab logs
    // "Overriding user for container \"build\" …".
    let overridden = build.0.is_some_and(|u| u != job.0);
    assert_eq!(
        notices
            .iter()
            .any(|n| n.container.as_deref() == Some("build") && n.detail.starts_with("runAsUser:")),
        overridden,
        "{notices:?}"
    );

    // The same with onViolation: deny: disallowed requests reject the pod.
    let denying = policy(&format!("{spec}  onViolation: deny\n"));
    let d = render(&denying, &pod);
    assert_eq!(d.denial.is_some(), warns);
    assert!(d.warnings.iter().all(|w| w.code.is_notice()), "{:?}", d.warnings);
    if !warns {
        assert_eq!(d.object, r.object);
    }
}

#[test]
fn s3_warning_names_container_field_value_and_list() {
    let r = render(
        &policy(S3),
        &gitlab_pod(json!({"runAsUser": 1001, "runAsGroup": 1001})),
    );
    assert_eq!(r.warnings.len(), 1);
    let w = &r.warnings[0].message();
    assert_eq!(
        w,
        "container \"build\": runAsUser 1001 is not allowed by allowedUsers [\"1000\", \"65534\"]; the request was dropped"
    );
    assert_ne!(effective(&r, "build", "runAsUser"), Some(&json!(1001)));
}

#[test]
fn s6_no_container_runs_as_root() {
    let r = render(&policy(S6), &gitlab_pod(json!({"runAsUser": 0, "runAsGroup": 0})));
    for name in ["build", "helper", "svc-0", "init-permissions"] {
        assert_ne!(effective(&r, name, "runAsUser"), Some(&json!(0)), "{name}");
    }
    let msgs: Vec<_> = r.warnings.iter().map(|w| w.message()).collect();
    assert!(
        msgs[0].starts_with("container \"build\": runAsUser 0 is not allowed by allowedUsers"),
        "{msgs:?}"
    );
    assert!(
        msgs[1].starts_with(
            "container \"build\": runAsGroup 0 is not allowed by allowedGroups (not set: any non-root ID)"
        ),
        "{msgs:?}"
    );
}

#[test]
fn deny_message_is_clear() {
    let d = render(
        &policy(&format!("{S3}  onViolation: deny\n")),
        &gitlab_pod(json!({"runAsUser": 1001})),
    );
    assert_eq!(
        d.denial.unwrap().message(),
        "violates ciguard policy: container \"build\": runAsUser 1001 is not allowed by allowedUsers [\"1000\", \"65534\"]"
    );
}

// Woodpecker's documented DEFAULT / ENFORCED example.
const WOODPECKER: &str = r#"  preset: woodpecker
  pss: {level: restricted, version: latest}
  pod:
    default: {runAsUser: 1000, runAsGroup: 1000, fsGroup: 1000, fsGroupChangePolicy: OnRootMismatch}
    enforced: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
  containers:
    enforced: {privileged: false, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
"#;

fn woodpecker_step(pod_ctx: Value, step_ctx: Value) -> Value {
    let mut pod = common::example("examples/woodpecker/step-pod.yaml");
    pod["spec"]["securityContext"] = pod_ctx;
    pod["spec"]["containers"][0]["securityContext"] = step_ctx;
    pod
}

const STEP: &str = "wp-01j9xq0r5m7a8b6c4d2e0f1g3h-0";

#[test]
fn woodpecker_step_asking_a_user_runs_as_it() {
    let r = render(
        &policy(WOODPECKER),
        &woodpecker_step(json!({"runAsUser": 2000}), json!({})),
    );
    assert_eq!(effective(&r, STEP, "runAsUser"), Some(&json!(2000)));
    assert!(r.denial.is_none(), "{:?}", r.denial.map(|d| d.message()));
}

#[rstest]
#[case::privileged(json!({}), json!({"privileged": true}), "privileged", json!(false))]
#[case::non_root_container(json!({}), json!({"runAsNonRoot": false}), "runAsNonRoot", json!(true))]
#[case::non_root_pod(json!({"runAsNonRoot": false}), json!({}), "runAsNonRoot", json!(true))]
#[case::escalation(json!({}), json!({"allowPrivilegeEscalation": true}), "allowPrivilegeEscalation", json!(false))]
fn woodpecker_step_cannot_override_enforced(
    #[case] pod_ctx: Value,
    #[case] step_ctx: Value,
    #[case] field: &str,
    #[case] expected: Value,
) {
    let r = render(&policy(WOODPECKER), &woodpecker_step(pod_ctx, step_ctx));
    assert_eq!(effective(&r, STEP, field), Some(&expected));
}

#[test]
fn woodpecker_plain_step_gets_defaults_and_passes_restricted() {
    let r = render(&policy(WOODPECKER), &woodpecker_step(json!(null), json!(null)));
    assert_eq!(effective(&r, STEP, "runAsUser"), Some(&json!(1000)));
    assert_eq!(r.object["spec"]["securityContext"]["fsGroup"], json!(1000));
    assert!(r.denial.is_none(), "{:?}", r.denial.map(|d| d.message()));
}

// Precedence, one rule per row: (policy, pod securityContext, container securityContext,
// field, expected effective value for the container "build").
#[rstest]
#[case::default_applies("pod: {default: {runAsUser: 1000}}", json!({}), json!({}), "runAsUser", Some(json!(1000)))]
#[case::job_beats_default("pod: {default: {runAsUser: 1000}}", json!({"runAsUser": 2000}), json!({}), "runAsUser", Some(json!(2000)))]
#[case::job_container_beats_pod_default("pod: {default: {runAsUser: 1000}}", json!({}), json!({"runAsUser": 2000}), "runAsUser", Some(json!(2000)))]
#[case::job_pod_beats_containers_default("containers: {default: {runAsUser: 1000}}", json!({"runAsUser": 2000}), json!({}), "runAsUser", Some(json!(2000)))]
#[case::role_default_beats_default("containers: {default: {readOnlyRootFilesystem: false}}\n  build: {default: {readOnlyRootFilesystem: true}}", json!({}), json!({}), "readOnlyRootFilesystem", Some(json!(true)))]
#[case::job_beats_role_default("build: {default: {readOnlyRootFilesystem: true}}", json!({}), json!({"readOnlyRootFilesystem": false}), "readOnlyRootFilesystem", Some(json!(false)))]
#[case::enforced_beats_job("containers: {enforced: {readOnlyRootFilesystem: true}}", json!({}), json!({"readOnlyRootFilesystem": false}), "readOnlyRootFilesystem", Some(json!(true)))]
#[case::pod_enforced_beats_job_container("pod: {enforced: {runAsNonRoot: true}}", json!({}), json!({"runAsNonRoot": false}), "runAsNonRoot", Some(json!(true)))]
#[case::role_enforced_beats_enforced("containers: {enforced: {runAsUser: 1000}}\n  build: {enforced: {runAsUser: 3000}}", json!({}), json!({}), "runAsUser", Some(json!(3000)))]
#[case::container_beats_pod_same_layer("pod: {enforced: {runAsUser: 1000}}\n  containers: {enforced: {runAsUser: 3000}}", json!({}), json!({}), "runAsUser", Some(json!(3000)))]
#[case::profile_replaced_whole("pod: {default: {seccompProfile: {type: Localhost, localhostProfile: a.json}}}", json!({"seccompProfile": {"type": "RuntimeDefault"}}), json!({}), "seccompProfile", Some(json!({"type": "RuntimeDefault"})))]
#[case::nothing_set("pod: {default: {fsGroup: 1}}", json!({}), json!({}), "runAsUser", None)]
fn precedence(
    #[case] spec: &str,
    #[case] pod_ctx: Value,
    #[case] ctx: Value,
    #[case] field: &str,
    #[case] expected: Option<Value>,
) {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"securityContext": pod_ctx, "containers": [{"name": "build", "image": "x", "securityContext": ctx}]}});
    let r = render(&policy(&format!("  {spec}\n")), &pod);
    assert_eq!(effective(&r, "build", field), expected.as_ref());
}

#[rstest]
#[case::union("containers: {default: {capabilities: {drop: [ALL]}}}\n  build: {enforced: {capabilities: {drop: [NET_RAW]}}}", json!({"drop": ["CHOWN"]}), json!({"drop": ["CHOWN", "ALL", "NET_RAW"]}))]
#[case::job_add_kept("containers: {default: {capabilities: {drop: [ALL]}}}", json!({"add": ["NET_BIND_SERVICE"]}), json!({"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}))]
#[case::enforced_empty_add_removes("containers: {enforced: {capabilities: {add: []}}}", json!({"add": ["NET_ADMIN"]}), json!({"add": []}))]
#[case::add_from_highest("build: {default: {capabilities: {add: [CHOWN]}}}\n  containers: {enforced: {capabilities: {add: [KILL]}}}", json!({"add": ["NET_ADMIN"]}), json!({"add": ["KILL"]}))]
#[case::job_already_drops_all("containers: {default: {capabilities: {drop: [ALL]}}}", json!({"drop": ["ALL"]}), json!({"drop": ["ALL"]}))]
#[case::same_layer_drop_wins("containers: {enforced: {capabilities: {add: [CAP_1, NET_RAW], drop: [CAP_1]}}}", json!({}), json!({"drop": ["CAP_1"], "add": ["NET_RAW"]}))]
#[case::job_junk_does_not_survive_a_policy_list("containers: {enforced: {capabilities: {drop: [ALL]}}}", json!({"drop": ["", "CHOWN"]}), json!({"drop": ["CHOWN", "ALL"]}))]
#[case::job_junk_alone_is_the_job_s("containers: {enforced: {privileged: false}}", json!({"drop": [""]}), json!({"drop": [""]}))]
fn capabilities(#[case] spec: &str, #[case] caps: Value, #[case] expected: Value) {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "build", "image": "x", "securityContext": {"capabilities": caps}}]}});
    let r = render(&policy(&format!("  {spec}\n")), &pod);
    assert_eq!(
        container(&r, "build")["securityContext"]["capabilities"],
        expected
    );
}

// Validity: a lower layer's value yields where a higher one makes the pair invalid.
#[rstest]
#[case::default_ape_yields_to_job_privileged("containers: {default: {allowPrivilegeEscalation: false}}", json!({"privileged": true}), json!({"privileged": true}), 0)]
#[case::default_ape_yields_to_sys_admin("containers: {default: {allowPrivilegeEscalation: false}}", json!({"capabilities": {"add": ["SYS_ADMIN"]}}), json!({"capabilities": {"add": ["SYS_ADMIN"]}}), 0)]
#[case::job_privileged_yields_to_enforced_ape("containers: {enforced: {allowPrivilegeEscalation: false}}", json!({"privileged": true}), json!({"allowPrivilegeEscalation": false}), 1)]
#[case::job_sys_admin_yields_to_enforced_ape("containers: {enforced: {allowPrivilegeEscalation: false}}", json!({"capabilities": {"add": ["CAP_SYS_ADMIN"]}}), json!({"allowPrivilegeEscalation": false, "capabilities": {}}), 1)]
#[case::default_nonroot_yields_to_role_root("pod: {default: {runAsNonRoot: true}}\n  build: {enforced: {runAsUser: 0}}", json!({}), json!({"runAsUser": 0, "runAsNonRoot": false}), 0)]
fn validity(#[case] spec: &str, #[case] ctx: Value, #[case] expected: Value, #[case] warnings: usize) {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "build", "image": "x", "securityContext": ctx}]}});
    let r = render(&policy(&format!("  {spec}\n")), &pod);
    assert_eq!(container(&r, "build")["securityContext"], expected);
    assert_eq!(r.warnings.len(), warnings, "{:?}", r.warnings);
}

#[test]
fn helper_inheriting_job_pod_user_gets_its_own_default() {
    let p = policy("  preset: gitlab-runner\n  pod: {default: {runAsUser: 1000}}\n");
    let mut pod = gitlab_pod(json!({}));
    pod["spec"]["securityContext"] = json!({"runAsUser": 4242});
    let r = render(&p, &pod);
    assert_eq!(effective(&r, "build", "runAsUser"), Some(&json!(4242)));
    assert_eq!(effective(&r, "helper", "runAsUser"), Some(&json!(1000)));
}

#[test]
fn helper_without_any_default_is_warned() {
    let p = policy("  preset: gitlab-runner\n");
    let mut pod = gitlab_pod(json!({}));
    pod["spec"]["securityContext"] = json!({"runAsUser": 4242});
    let r = render(&p, &pod);
    assert!(r.warnings.iter().any(|w| {
        w.message()
            .starts_with("container \"helper\": inherits the job's pod-level runAsUser 4242")
    }));
}

#[test]
fn services_inherit_the_job_user_unless_the_role_sets_one() {
    let mut pod = gitlab_pod(json!({}));
    pod["spec"]["securityContext"] = json!({"runAsUser": 4242});
    let r = render(&policy("  preset: gitlab-runner\n"), &pod);
    assert_eq!(effective(&r, "svc-0", "runAsUser"), Some(&json!(4242)));
    let r = render(
        &policy("  preset: gitlab-runner\n  service: {default: {runAsUser: 999}}\n"),
        &pod,
    );
    assert_eq!(effective(&r, "svc-0", "runAsUser"), Some(&json!(999)));
}

#[test]
fn roles_matchers_come_before_the_preset() {
    let p = policy(
        "  preset: gitlab-runner\n  roles:\n    - {role: helper, containerNames: [\"svc-*\"]}\n  helper: {enforced: {readOnlyRootFilesystem: true}}\n",
    );
    let r = render(&p, &gitlab_pod(json!({})));
    assert_eq!(
        effective(&r, "svc-0", "readOnlyRootFilesystem"),
        Some(&json!(true))
    );
    assert_eq!(effective(&r, "build", "readOnlyRootFilesystem"), None);
}

#[test]
fn allowlists_apply_to_pod_level_groups() {
    let p = policy("  allowedGroups: [\"1000-1999\"]\n  pod: {default: {fsGroup: 1000}}\n");
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"securityContext": {"fsGroup": 5, "supplementalGroups": [1500, 7, 1600]}, "containers": [{"name": "c"}]}});
    let r = render(&p, &pod);
    assert_eq!(
        r.object["spec"]["securityContext"],
        json!({"fsGroup": 1000, "supplementalGroups": [1500, 1600]})
    );
    assert_eq!(r.warnings.len(), 2);
}

// The working-directory init container.
#[test]
fn workdir_init_container_for_nested_working_dir() {
    let r = render(
        &policy("  preset: woodpecker\n"),
        &common::example("examples/woodpecker/step-pod.yaml"),
    );
    let init = container(&r, "ciguard-workdir");
    assert_eq!(
        init["command"],
        json!(["mkdir", "-p", "/woodpecker/src/codeberg.org/acme/app"])
    );
    assert_eq!(init["securityContext"]["runAsUser"], 2000);
    assert_eq!(init["securityContext"]["runAsGroup"], 2000);
    assert_eq!(
        init["volumeMounts"],
        json!([{"name": "wp-01j9xq0r5m7a8b6c4d2e0f1g3h-0-default", "mountPath": "/woodpecker"}])
    );
    assert_eq!(
        init["resources"]["limits"],
        json!({"cpu": "5m", "memory": "12Mi"})
    );
    assert_eq!(init["image"], "busybox:stable-musl");
    // Never added twice.
    let again = render(&policy("  preset: woodpecker\n"), &r.object);
    assert_eq!(again.object, r.object);
    assert!(again.patch.is_empty(), "{:?}", again.patch);
}

#[rstest]
#[case::root(json!({"runAsUser": 0}), "/woodpecker/src/x")]
#[case::unset(json!({}), "/woodpecker/src/x")]
#[case::equal_to_mount(json!({"runAsUser": 1000}), "/woodpecker")]
#[case::outside(json!({"runAsUser": 1000}), "/src")]
fn no_workdir_init_container(#[case] ctx: Value, #[case] dir: &str) {
    let mut pod = common::example("examples/woodpecker/step-pod.yaml");
    pod["spec"]["securityContext"] = ctx;
    pod["spec"]["containers"][0]["workingDir"] = json!(dir);
    let r = render(
        &policy("  preset: woodpecker\n  allowedUsers: [\"0\", \"*\"]\n"),
        &pod,
    );
    assert!(
        r.object["spec"].get("initContainers").is_none(),
        "{}",
        r.object["spec"]
    );
}

#[test]
fn workdir_init_can_be_disabled_and_uses_the_policy_image() {
    let pod = common::example("examples/woodpecker/step-pod.yaml");
    let r = render(&policy("  workdirInit: {enabled: false}\n"), &pod);
    assert!(r.object["spec"].get("initContainers").is_none());
    let r = render(
        &policy("  workdirInit: {image: registry.local/busybox:1}\n"),
        &pod,
    );
    assert_eq!(
        container(&r, "ciguard-workdir")["image"],
        "registry.local/busybox:1"
    );
}

#[test]
fn a_job_cannot_smuggle_its_own_workdir_container() {
    let mut pod = common::example("examples/woodpecker/step-pod.yaml");
    pod["spec"]["initContainers"] =
        json!([{"name": "ciguard-workdir", "image": "evil", "securityContext": {"privileged": true}}]);
    let r = render(&policy("  preset: woodpecker\n"), &pod);
    assert_eq!(container(&r, "ciguard-workdir")["image"], "busybox:stable-musl");
    assert_eq!(r.object["spec"]["initContainers"].as_array().unwrap().len(), 1);
}

#[test]
fn untouched_fields_and_key_order_are_kept() {
    let pod = common::example("examples/gitlab-runner/build-pod.yaml");
    let r = render(&ciguard::ValidPolicy::builtin(), &pod);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&r.object["spec"])[..5], keys(&pod["spec"])[..5]);
    assert_eq!(r.object["metadata"], pod["metadata"]);
    assert_eq!(
        r.object["spec"]["containers"][2]["env"],
        pod["spec"]["containers"][2]["env"]
    );
}

#[test]
fn every_workload_kind_is_rendered() {
    let template =
        json!({"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}});
    let cases = [
        ("apps/v1", "Deployment", json!({"spec": {"template": template}})),
        ("apps/v1", "StatefulSet", json!({"spec": {"template": template}})),
        ("apps/v1", "DaemonSet", json!({"spec": {"template": template}})),
        ("apps/v1", "ReplicaSet", json!({"spec": {"template": template}})),
        ("batch/v1", "Job", json!({"spec": {"template": template}})),
        (
            "v1",
            "ReplicationController",
            json!({"spec": {"template": template}}),
        ),
        (
            "batch/v1",
            "CronJob",
            json!({"spec": {"jobTemplate": {"spec": {"template": template}}}}),
        ),
        ("v1", "PodTemplate", json!({"template": template})),
    ];
    for (api, kind, mut obj) in cases {
        obj["apiVersion"] = json!(api);
        obj["kind"] = json!(kind);
        let r = render(&ciguard::ValidPolicy::builtin(), &obj);
        let kind_ = ciguard::workload::WorkloadKind::of(&obj).unwrap();
        let spec = r.object.pointer(kind_.spec_pointer()).unwrap();
        assert_eq!(spec["securityContext"]["runAsNonRoot"], true, "{kind}");
        assert_eq!(
            spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"], false,
            "{kind}"
        );
        assert!(r.denial.is_none(), "{kind}: {:?}", r.denial.map(|d| d.message()));
    }
}

#[test]
fn other_objects_pass_through() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "b"}});
    let r = render(&ciguard::ValidPolicy::builtin(), &cm);
    assert_eq!(r.object, cm);
    assert!(r.kind.is_none());
}

#[rstest]
#[case::spec_not_object(json!({"apiVersion": "v1", "kind": "Pod", "spec": 5}), "/spec: expected the pod spec, an object")]
#[case::containers_not_list(json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": {}}}), "/spec/containers: expected a list of containers")]
#[case::context_not_object(json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "c", "securityContext": []}]}}), "/spec/containers/0/securityContext: expected an object")]
fn malformed_pods_are_errors(#[case] pod: Value, #[case] message: &str) {
    let e = ciguard::merge::render(&ciguard::ValidPolicy::builtin(), &pod).unwrap_err();
    assert!(e.to_string().ends_with(message), "{e}");
}

#[test]
fn patch_applied_to_input_gives_output() {
    for path in [
        "examples/gitlab-runner/build-pod.yaml",
        "examples/woodpecker/step-pod.yaml",
        "examples/tekton/taskrun-pod.yaml",
    ] {
        let pod = common::example(path);
        let r = render(&ciguard::ValidPolicy::builtin(), &pod);
        let patch: json_patch::Patch =
            ciguard::value::from_value(ciguard::value::to_value(&r.patch).unwrap()).unwrap();
        let mut doc = serde_json::Value::from(pod.clone());
        json_patch::patch(&mut doc, &patch).unwrap();
        assert_eq!(Value::from(doc), r.object, "{path}");
    }
}

/// Woodpecker's real pods (../shared/realpods): the built-in policy makes every one run as
/// non-root and pass restricted, except TestFullPod, whose step asks for privileged.
#[test]
fn woodpecker_real_pods_pass_restricted_under_the_builtin_policy() {
    let Some(dir) = common::shared("realpods") else {
        return;
    };
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let pod: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let r = render(&ciguard::ValidPolicy::builtin(), &pod);
        seen += 1;
        if name == "woodpecker-TestFullPod.json" {
            let message = r.denial.expect("privileged step is denied").message();
            assert!(message.contains("privileged (container"), "{message}");
            continue;
        }
        assert!(r.denial.is_none(), "{name}: {:?}", r.denial.map(|d| d.message()));
        for c in r.object["spec"]["containers"].as_array().unwrap() {
            let uid = c["securityContext"]
                .get("runAsUser")
                .or(r.object["spec"]["securityContext"].get("runAsUser"));
            assert!(
                uid.and_then(Value::as_i64).is_some_and(|u| u > 0),
                "{name}: {} runs as {uid:?}",
                c["name"]
            );
        }
        let again = render(&ciguard::ValidPolicy::builtin(), &r.object);
        assert!(
            again.patch.is_empty(),
            "{name}: not idempotent: {:?}",
            again.patch
        );
    }
    assert_eq!(seen, 11);
}
