//! The webhook's HTTP surface through `router().oneshot(..)`: every endpoint, the
//! decisions for pods, workloads and other resources, and bad input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

mod webhook_support;

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use axum::{
    body::{Body, to_bytes},
    http::{Request, StatusCode},
};
use ciguard::{
    ValidPolicy,
    admission::{AppState, Audit, BODY_LIMIT, router},
    merge,
    policy::load,
};
use ciguard::{json, value::Value};
use rstest::rstest;
use tower::ServiceExt;
use webhook_support::*;

fn state(policy: ValidPolicy) -> Arc<AppState> {
    let state = AppState::new(policy, Audit::off());
    state.set_ready(true);
    Arc::new(state)
}

async fn call(
    state: &Arc<AppState>,
    method: &str,
    path: &str,
    body: impl Into<Body>,
) -> (StatusCode, Vec<u8>) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap();
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    (
        status,
        to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec(),
    )
}

/// POSTs a review; the answer must be HTTP 200 with an AdmissionReview.
async fn admit(state: &Arc<AppState>, path: &str, review: &Value) -> Value {
    let (status, body) = call(state, "POST", path, serde_json::to_vec(review).unwrap()).await;
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, StatusCode::OK, "{answer}");
    response(&answer, review).clone()
}

fn policy(name: &str) -> ValidPolicy {
    load::from_file(&format!("examples/policies/{name}.yaml")).unwrap()
}

#[rstest]
#[case::gitlab(GITLAB, "gitlab-runner")]
#[case::woodpecker(WOODPECKER, "woodpecker")]
#[case::tekton(TEKTON, "tekton")]
#[tokio::test]
async fn mutate_patches_like_render_and_is_idempotent(#[case] text: &str, #[case] policy_name: &str) {
    let policy = policy(policy_name);
    let review = body(text);
    let original = object(&review);
    let rendered = merge::render(&policy, &original).unwrap();
    let state = state(policy);

    let response = admit(&state, "/mutate", &review).await;
    assert_eq!(response["allowed"], true, "{response}");
    assert!(!patch_of(&response).as_array().unwrap().is_empty());
    let mutated = apply(&original, &response);
    assert_eq!(mutated, rendered.object);
    let expected: Vec<String> = rendered.warnings.iter().map(|w| w.message()).collect();
    assert_eq!(warnings(&response), expected);

    // Re-invocation (reinvocationPolicy: IfNeeded) changes nothing more.
    let mut again = review.clone();
    again["request"]["object"] = mutated.clone();
    let response = admit(&state, "/mutate", &again).await;
    assert_eq!(patch_of(&response), json!([]), "{response}");
    assert!(response.get("patch").is_none());

    // The mutated pod passes validation.
    let response = admit(&state, "/validate", &again).await;
    assert_eq!(response["allowed"], true, "{response}");
    assert_eq!(warnings(&response), Vec::<String>::new());
}

#[tokio::test]
async fn the_patch_is_a_base64_string_on_the_wire() {
    let state = state(ValidPolicy::builtin());
    let review = body(WOODPECKER);
    let (status, bytes) = call(&state, "POST", "/mutate", serde_json::to_vec(&review).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(bytes).unwrap();
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert!(answer["response"]["patch"].is_string(), "{text}");
    assert_eq!(answer["response"]["patchType"], "JSONPatch");
    assert!(answer.get("request").is_none());
}

fn bare_pod(name: &str, security: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "ci"},
        "spec": {"containers": [{"name": "build", "image": "alpine:3", "securityContext": security}]}
    })
}

#[tokio::test]
async fn validate_denies_a_pod_that_fails_restricted_with_the_podsecurity_message() {
    let state = state(ValidPolicy::builtin());
    let pod = bare_pod("root", json!({"privileged": true}));
    let response = admit(&state, "/validate", &review("CREATE", &pod, None)).await;
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 403);
    assert_eq!(response["status"]["reason"], "Forbidden");
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("violates PodSecurity \"restricted:latest\": "),
        "{message}"
    );
    assert!(
        message.contains("privileged (container \"build\" must not set securityContext.privileged=true)")
    );
}

#[tokio::test]
async fn mutate_patches_a_pod_that_will_fail_and_leaves_the_denial_to_validate() {
    let state = state(ValidPolicy::builtin());
    let pod = bare_pod("priv", json!({"privileged": true}));
    let response = admit(&state, "/mutate", &review("CREATE", &pod, None)).await;
    assert_eq!(response["allowed"], true, "{response}");
    let mutated = apply(&pod, &response);
    let response = admit(&state, "/validate", &review("CREATE", &mutated, None)).await;
    assert_eq!(response["allowed"], false, "{response}");
}

#[tokio::test]
async fn validate_warns_when_a_pod_was_not_mutated() {
    let state = state(ValidPolicy::builtin());
    // Passes restricted on its own, but the builtin policy would add runAsUser etc.
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ok", "namespace": "ci"},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "build", "image": "alpine:3", "securityContext": {
                "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]
        }
    });
    let response = admit(&state, "/validate", &review("CREATE", &pod, None)).await;
    assert_eq!(response["allowed"], true, "{response}");
    let w = warnings(&response);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("is the ciguard mutating webhook installed?"),
        "{w:?}"
    );
    // The places it names are the operations `/mutate` answers the same pod with.
    let mutated = admit(&state, "/mutate", &review("CREATE", &pod, None)).await;
    let places = patch_of(&mutated).as_array().unwrap().len();
    assert!(places > 1, "{mutated}");
    assert!(w[0].contains(&format!(" in {places} place(s);")), "{w:?}");
}

#[tokio::test]
async fn a_request_rejected_by_an_allowlist_under_deny_is_denied_at_mutate() {
    let state = state(load::from_file("tests/data/policies/deny-root.yaml").unwrap());
    let pod = bare_pod("root", json!({"runAsUser": 0}));
    let review = review("CREATE", &pod, None);
    for path in ["/mutate", "/validate"] {
        let response = admit(&state, path, &review).await;
        assert_eq!(response["allowed"], false, "{path}: {response}");
        assert_eq!(response["status"]["code"], 403);
        let message = response["status"]["message"].as_str().unwrap();
        assert!(message.starts_with("violates ciguard policy: "), "{message}");
        assert!(response.get("patch").is_none());
    }
}

fn deployment(security: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "ci"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx", "securityContext": security}]}
        }}
    })
}

#[tokio::test]
async fn workloads_get_warnings_not_denials_and_no_patch() {
    let state = state(ValidPolicy::builtin());
    let bad = deployment(json!({"privileged": true}));
    let review = review("CREATE", &bad, None);
    let response = admit(&state, "/validate", &review).await;
    assert_eq!(response["allowed"], true, "{response}");
    let w = warnings(&response);
    assert!(
        w.iter()
            .any(|w| w.starts_with("would violate PodSecurity \"restricted:latest\": privileged")),
        "{w:?}"
    );
    let response = admit(&state, "/mutate", &review).await;
    assert_eq!(response["allowed"], true);
    assert_eq!(patch_of(&response), json!([]));

    let good = deployment(json!({}));
    let response = admit(&state, "/validate", &review_for(&good)).await;
    assert_eq!(warnings(&response), Vec::<String>::new(), "{response}");
}

fn review_for(object: &Value) -> Value {
    review("CREATE", object, None)
}

#[rstest]
#[case::configmap(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}))]
#[case::service(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {}}))]
#[tokio::test]
async fn other_resources_are_allowed_untouched(#[case] object: Value) {
    let state = state(ValidPolicy::builtin());
    for path in ["/mutate", "/validate"] {
        let response = admit(&state, path, &review_for(&object)).await;
        assert_eq!(response["allowed"], true);
        assert!(
            response.get("patch").is_none() && response.get("warnings").is_none(),
            "{response}"
        );
    }
}

#[tokio::test]
async fn updates_are_validated_not_patched() {
    let state = state(ValidPolicy::builtin());
    let old = bare_pod("p", json!({"privileged": true}));
    let mut relabelled = old.clone();
    relabelled["metadata"]["labels"] = json!({"a": "b"});
    let response = admit(&state, "/mutate", &review("UPDATE", &relabelled, Some(&old))).await;
    assert_eq!(response["allowed"], true);
    assert!(response.get("patch").is_none());
    // A metadata-only update of a pod that predates the policy is not evaluated.
    let response = admit(&state, "/validate", &review("UPDATE", &relabelled, Some(&old))).await;
    assert_eq!(response["allowed"], true, "{response}");
    // An image change is.
    let mut new_image = old.clone();
    new_image["spec"]["containers"][0]["image"] = json!("alpine:4");
    let response = admit(&state, "/validate", &review("UPDATE", &new_image, Some(&old))).await;
    assert_eq!(response["allowed"], false, "{response}");
    // DELETE is not for ciguard.
    let mut delete = review("DELETE", &old, Some(&old));
    delete["request"]["object"] = Value::Null;
    let response = admit(&state, "/validate", &delete).await;
    assert_eq!(response["allowed"], true);
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
async fn every_decision_writes_an_audit_line_and_dry_run_is_flagged() {
    let buffer = Buffer::default();
    let audit = Audit::to_writer(Box::new(buffer.clone()));
    let state = Arc::new(AppState::new(policy("gitlab-runner"), audit));
    let mut review = body(GITLAB);
    review["request"]["dryRun"] = json!(true);
    let response = admit(&state, "/mutate", &review).await;
    assert_eq!(response["allowed"], true);
    admit(
        &state,
        "/validate",
        &review_for(&bare_pod("x", json!({"privileged": true}))),
    )
    .await;
    state.audit().close();

    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "{text}");
    let first = &lines[0];
    assert_eq!(first["endpoint"], "mutate");
    assert_eq!(first["uid"], review["request"]["uid"]);
    assert_eq!(first["namespace"], "gitlab-ci");
    assert_eq!(first["name"], "runner-x8ktyhzz-project-42-concurrent-0-abc123");
    assert_eq!(first["policy"], "gitlab-runner");
    assert_eq!(first["dryRun"], true);
    assert_eq!(first["allowed"], true);
    assert_eq!(first["outcome"], "patched");
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    let changes = first["changes"].as_array().unwrap();
    let helper_user = changes
        .iter()
        .find(|c| c["container"] == "helper" && c["field"] == "runAsUser")
        .unwrap_or_else(|| panic!("{changes:?}"));
    assert_eq!(helper_user["new"], 1000);
    assert_eq!(helper_user["origin"], "helper.enforced");
    assert!(
        changes.iter().any(|c| c["container"].is_null()),
        "pod-level changes: {changes:?}"
    );
    let second = &lines[1];
    assert_eq!(second["endpoint"], "validate");
    assert_eq!(second["allowed"], false);
    assert!(
        second["message"]
            .as_str()
            .unwrap()
            .starts_with("violates PodSecurity")
    );
}

/// A body that is not an AdmissionReview ciguard can read gets HTTP 400 and a message.
#[rstest]
#[case::empty(b"".to_vec(), "empty body")]
#[case::blank(b"  \n".to_vec(), "empty body")]
#[case::not_json(b"hello".to_vec(), "not an admission.k8s.io/v1 AdmissionReview: expected value")]
#[case::json_array(b"[1,2]".to_vec(), "not an admission.k8s.io/v1 AdmissionReview: invalid type")]
#[case::invalid_utf8(b"{\"kind\":\"Admission\xff\xfeReview\"}".to_vec(), "invalid unicode")]
#[case::deeply_nested(format!("{{\"kind\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(), "recursion limit")]
#[case::nested_in_object(nested_object(), "recursion limit")]
#[case::wrong_api_version(wire(|r| r["apiVersion"] = json!("admission.k8s.io/v1beta1")), "expected apiVersion admission.k8s.io/v1 and kind AdmissionReview")]
#[case::wrong_kind(wire(|r| r["kind"] = json!("Pod")), "got apiVersion \"admission.k8s.io/v1\" and kind \"Pod\"")]
#[case::no_request(wire(|r| { r.as_object_mut().unwrap().remove("request"); }), "has no request")]
#[case::missing_uid(wire(|r| { r["request"].as_object_mut().unwrap().remove("uid"); }), "missing field `uid`")]
#[case::empty_uid(wire(|r| r["request"]["uid"] = json!("")), "request.uid is empty")]
#[case::bad_operation(wire(|r| r["request"]["operation"] = json!("PATCH")), "unknown variant `PATCH`")]
#[tokio::test]
async fn bad_input_is_a_400_with_a_message(#[case] body: Vec<u8>, #[case] expected: &str) {
    let state = state(ValidPolicy::builtin());
    let (status, bytes) = call(&state, "POST", "/mutate", body).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&bytes)
    );
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(answer["code"], 400);
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains(expected),
        "{message:?} should contain {expected:?}"
    );
    // The next good request is served.
    let response = admit(&state, "/mutate", &body_of(WOODPECKER)).await;
    assert_eq!(response["allowed"], true);
}

fn body_of(text: &str) -> Value {
    body(text)
}

fn wire(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut review = body(WOODPECKER);
    edit(&mut review);
    serde_json::to_vec(&review).unwrap()
}

fn nested_object() -> Vec<u8> {
    let mut review = serde_json::to_string(&body(WOODPECKER)).unwrap();
    let deep = format!("{}1{}", "{\"a\":".repeat(200), "}".repeat(200));
    review = review.replacen("\"status\":{}", &format!("\"status\":{deep}"), 1);
    review.into_bytes()
}

/// A readable review whose object ciguard cannot use is answered (same uid), not
/// allowed, with code 400 and the reason.
#[rstest]
#[case::object_missing(|r: &mut Value| r["request"]["object"] = Value::Null, "request.object is missing")]
#[case::object_not_a_pod(
    |r: &mut Value| r["request"]["object"] = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
    "request.object is a v1/ConfigMap, but request.kind is v1/Pod"
)]
#[case::containers_not_a_list(
    |r: &mut Value| r["request"]["object"]["spec"]["containers"] = json!("build"),
    "expected a list of containers"
)]
#[tokio::test]
async fn an_unusable_object_is_refused_with_code_400(#[case] edit: fn(&mut Value), #[case] expected: &str) {
    let state = state(ValidPolicy::builtin());
    let mut review = body(WOODPECKER);
    edit(&mut review);
    for path in ["/mutate", "/validate"] {
        let response = admit(&state, path, &review).await;
        assert_eq!(response["allowed"], false, "{response}");
        assert_eq!(response["status"]["code"], 400);
        let message = response["status"]["message"].as_str().unwrap();
        assert!(
            message.contains(expected),
            "{message:?} should contain {expected:?}"
        );
    }
    let response = admit(&state, "/mutate", &body(WOODPECKER)).await;
    assert_eq!(response["allowed"], true);
}

#[tokio::test]
async fn a_body_over_3_mib_is_413() {
    let state = state(ValidPolicy::builtin());
    let big = vec![b' '; 4 * 1024 * 1024];
    let (status, bytes) = call(&state, "POST", "/mutate", big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let answer: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        answer["message"],
        format!("request body is larger than {BODY_LIMIT} bytes")
    );
    // Far over the limit too (the rest is not read).
    let (status, _) = call(&state, "POST", "/mutate", vec![b' '; 17 * 1024 * 1024]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Just under the limit is read (and is not a review).
    let (status, _) = call(&state, "POST", "/mutate", vec![b' '; BODY_LIMIT]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn health_readiness_metrics_and_unknown_routes() {
    let state = Arc::new(AppState::new(ValidPolicy::builtin(), Audit::off()));
    assert_eq!(
        call(&state, "GET", "/healthz", Body::empty()).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&state, "GET", "/readyz", Body::empty()).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    state.set_ready(true);
    assert_eq!(
        call(&state, "GET", "/readyz", Body::empty()).await.0,
        StatusCode::OK
    );

    admit(&state, "/mutate", &body(GITLAB)).await;
    admit(
        &state,
        "/validate",
        &review_for(&bare_pod("x", json!({"privileged": true}))),
    )
    .await;
    call(&state, "POST", "/validate", "nope").await;
    let (status, text) = call(&state, "GET", "/metrics", Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(text).unwrap();
    let sample = |s: &str| metric(&text, s).unwrap_or_else(|| panic!("{s} missing in\n{text}"));
    assert_eq!(
        sample(r#"ciguard_admission_requests_total{policy="builtin",endpoint="mutate",outcome="patched"}"#),
        1.0
    );
    assert_eq!(
        sample(r#"ciguard_admission_requests_total{policy="builtin",endpoint="validate",outcome="denied"}"#),
        1.0
    );
    assert_eq!(
        sample(r#"ciguard_admission_requests_total{policy="builtin",endpoint="validate",outcome="invalid"}"#),
        1.0
    );
    assert_eq!(
        sample(r#"ciguard_admission_request_duration_seconds_count{policy="builtin",endpoint="mutate"}"#),
        1.0
    );
    assert_eq!(
        sample(r#"ciguard_denials_total{policy="builtin",reason="privileged"}"#),
        1.0
    );
    assert_eq!(sample(r#"ciguard_reload_errors_total{target="policy"}"#), 0.0);

    let (status, body) = call(&state, "GET", "/nope", Body::empty()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(String::from_utf8(body).unwrap().contains("POST /mutate"));
    assert_eq!(
        call(&state, "GET", "/mutate", Body::empty()).await.0,
        StatusCode::METHOD_NOT_ALLOWED
    );
}
