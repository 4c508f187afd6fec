//! `spec.exceptions` through the admission webhook in process: `/mutate` lets the dind
//! service's privileged request stand and patches nothing on reinvocation; `/validate`
//! exempts it from the listed Pod Security checks and still judges the rest of the pod;
//! a `kubectl debug` container never gets an exception.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

mod common;
mod webhook_support;

use ciguard::{
    ValidPolicy,
    admission::{Decision, Endpoint, decide, parse},
};
use ciguard::{json, value::Value};
use webhook_support::review;

fn policy() -> ValidPolicy {
    ciguard::policy::load::from_file(&format!(
        "{}/examples/policies/gitlab-runner-dind.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn admit(endpoint: Endpoint, operation: &str, pod: &Value, old: Option<&Value>) -> Decision {
    let r = review(operation, pod, old);
    decide(
        endpoint,
        &policy(),
        &parse(&serde_json::to_vec(&r).unwrap()).unwrap(),
    )
}

fn patched(pod: &Value, decision: &Decision) -> Value {
    let patch: json_patch::Patch =
        ciguard::value::from_value(ciguard::value::to_value(&decision.patch).unwrap()).unwrap();
    let mut out = serde_json::Value::from(pod.clone());
    json_patch::patch(&mut out, &patch).unwrap();
    out.into()
}

#[test]
fn mutate_then_validate_a_dind_pod() {
    let pod = common::example("docs/examples/gitlab-dind-pod.yaml");
    let mutated = admit(Endpoint::Mutate, "CREATE", &pod, None);
    assert!(mutated.allowed(), "{mutated:?}");
    let out = patched(&pod, &mutated);
    assert_eq!(
        out["spec"]["containers"][2]["securityContext"]["privileged"],
        json!(true)
    );
    assert_eq!(
        out["spec"]["containers"][3]["securityContext"]["privileged"],
        json!(false)
    );
    // Reinvocation: nothing more to patch.
    let again = admit(Endpoint::Mutate, "CREATE", &out, None);
    assert!(again.patch.is_empty(), "{:?}", again.patch);
    // /validate of the mutated pod: allowed, the dind container exempt.
    let validated = admit(Endpoint::Validate, "CREATE", &out, None);
    assert!(validated.allowed(), "{:?}", validated.message);
}

#[test]
fn validate_judges_the_rest_of_the_pod() {
    let pod = common::example("tests/data/exceptions/dind-raw-pod.yaml");
    let d = admit(Endpoint::Validate, "CREATE", &pod, None);
    assert!(!d.allowed());
    let message = d.message.unwrap();
    assert!(!message.contains("privileged (container"), "{message}");
    assert!(
        message.contains("runAsNonRoot != true (pod or containers \"build\", \"helper\" must set securityContext.runAsNonRoot=true)"),
        "{message}"
    );
}

#[test]
fn a_debug_container_never_gets_an_exception() {
    let mut pod = common::example("docs/examples/gitlab-dind-pod.yaml");
    let out = patched(&pod, &admit(Endpoint::Mutate, "CREATE", &pod, None));
    pod = out.clone();
    pod["spec"]["ephemeralContainers"] = json!([{
        "name": "debugger", "image": "docker:27-dind",
        "securityContext": {"privileged": true, "runAsUser": 0, "runAsNonRoot": false},
    }]);
    let mut r = review("UPDATE", &pod, Some(&out));
    r["request"]["subResource"] = json!("ephemeralcontainers");
    let request = parse(&serde_json::to_vec(&r).unwrap()).unwrap();
    let mutated = decide(Endpoint::Mutate, &policy(), &request);
    let fixed = patched(&pod, &mutated);
    let sc = &fixed["spec"]["ephemeralContainers"][0]["securityContext"];
    assert_eq!(sc["privileged"], json!(false), "{sc}");
    // Validating the request as sent (privileged debug container): denied.
    let validated = decide(Endpoint::Validate, &policy(), &request);
    assert!(!validated.allowed());
    assert!(
        validated
            .message
            .unwrap()
            .contains("privileged (container \"debugger\" must not set securityContext.privileged=true)")
    );
}
