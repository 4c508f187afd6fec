//! "The admin overrode the job: say so" (GitLab Runner logs "Overriding user for container
//! …"): the `overridden-by-policy` notice in `render`'s stderr, in a webhook response and
//! in the audit log; and SPEC §2 Validity for a job's pod-level value that the policy
//! enforces at container level.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

mod common;

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use axum::{
    body::{Body, to_bytes},
    http::Request,
};
use ciguard::{
    admission::{AppState, Audit, router},
    merge::WarningCode,
};
use ciguard::{json, value::Value};
use common::{ciguard, effective, policy, render};
use tower::ServiceExt;

const POLICY: &str = "tests/data/fidelity/override-policy.yaml";
const POD: &str = "tests/data/fidelity/job-asks-1000.yaml";
const NOTICE: &str =
    "container \"build\": runAsUser: the job asked for 1000, the policy sets 2000 from pod.enforced";

#[test]
fn render_prints_the_notice_on_stderr() {
    let out = ciguard()
        .args(["render", "--policy", POLICY, POD])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr,
        format!("notice: {POD}#0 Pod/job-asks-1000: {NOTICE}\n"),
        "the notice names container, field, requested and resulting value"
    );
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_webhook_answers_with_the_notice_and_audits_it() {
    let text = std::fs::read_to_string(POLICY).unwrap();
    let policy = ciguard::policy::load::from_str(&text, POLICY).unwrap();
    let buffer = Buffer::default();
    let state = AppState::new(policy, Audit::to_writer(Box::new(buffer.clone())));
    state.set_ready(true);
    let state = Arc::new(state);
    let pod = common::example(POD);
    let review = json!({
        "kind": "AdmissionReview",
        "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": "0b5e3c0e-notice",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "job-asks-1000",
            "namespace": "ci",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:ci:runner"},
            "object": pod,
            "oldObject": null,
            "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
        }
    });
    let request = Request::builder()
        .method("POST")
        .uri("/mutate")
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&review).unwrap()))
        .unwrap();
    let response = router(state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value =
        serde_json::from_slice(&to_bytes(response.into_body(), usize::MAX).await.unwrap()).unwrap();
    let r = &answer["response"];
    assert_eq!(r["allowed"], true, "{answer}");
    let warnings: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains(NOTICE)
            || (w.contains("runAsUser")
                && w.contains("1000")
                && w.contains("2000")
                && w.contains("\"build\""))),
        "{warnings:?}"
    );
    state.audit().close();
    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("the job asked for 1000, the policy sets 2000"),
        "{log}"
    );
}

#[test]
fn notices_name_every_enforced_field_not_only_ids() {
    let p = policy(
        "  containers:\n    enforced: {readOnlyRootFilesystem: true, capabilities: {add: []}}\n  pod:\n    enforced: {seccompProfile: {type: RuntimeDefault}}\n",
    );
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
        "securityContext": {"seccompProfile": {"type": "Unconfined"}},
        "containers": [{"name": "build", "image": "x", "securityContext": {
            "readOnlyRootFilesystem": false, "capabilities": {"add": ["NET_ADMIN"]}}}]}});
    let r = render(&p, &pod);
    let notices: Vec<String> = r
        .warnings
        .iter()
        .filter(|w| w.code == WarningCode::OverriddenByPolicy)
        .map(|w| w.message())
        .collect();
    assert_eq!(
        notices,
        [
            "pod: seccompProfile: the job asked for {\"type\":\"Unconfined\"}, the policy sets {\"type\":\"RuntimeDefault\"} from pod.enforced",
            "container \"build\": readOnlyRootFilesystem: the job asked for false, the policy sets true from containers.enforced",
            "container \"build\": capabilities.add: the job asked for [\"NET_ADMIN\"], the policy sets [] from containers.enforced",
        ]
    );
    // A rendered pod renders again without a notice.
    let again = render(&p, &r.object);
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
}

/// SPEC §2 Validity: a pod-level `runAsNonRoot: false` under `containers.enforced.runAsNonRoot:
/// true` is dropped with a warning, so the pod passes `restricted` instead of being denied;
/// with `onViolation: deny` the request is rejected.
#[test]
fn a_pod_level_value_that_containers_enforced_contradicts_yields() {
    let spec = "  pss: {level: restricted, version: latest}\n  containers:\n    enforced: {runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}, seccompProfile: {type: RuntimeDefault}, runAsUser: 1000}\n";
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
        "securityContext": {"runAsNonRoot": false},
        "containers": [{"name": "build", "image": "x"}]}});
    let r = render(&policy(spec), &pod);
    assert!(r.denial.is_none(), "{:?}", r.denial.map(|d| d.message()));
    assert_eq!(r.object["spec"]["securityContext"].get("runAsNonRoot"), None);
    assert_eq!(effective(&r, "build", "runAsNonRoot"), Some(&json!(true)));
    let w: Vec<String> = r.warnings.iter().map(|w| w.message()).collect();
    assert_eq!(
        w,
        [
            "pod: runAsNonRoot false cannot stand with runAsNonRoot true from containers.enforced (every container runs with the enforced value, but Pod Security judges the pod-level one); the request was dropped"
        ]
    );
    let d = render(&policy(&format!("{spec}  onViolation: deny\n")), &pod);
    assert!(
        d.denial
            .unwrap()
            .message()
            .contains("pod: runAsNonRoot false cannot stand")
    );
    // The same value at pod level is no conflict.
    let mut same = pod.clone();
    same["spec"]["securityContext"]["runAsNonRoot"] = json!(true);
    assert!(render(&policy(spec), &same).warnings.is_empty());
}
