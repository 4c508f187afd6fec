//! What each fuzz target does with one input, and the checks that turn a wrong answer
//! (not only a panic) into a crash libFuzzer reports.
//!
//! The targets in `fuzz_targets/` only call these functions. `tests/fuzz_regressions.rs`
//! includes this file too, so the committed seed corpus and every minimised crash are
//! replayed by a plain `cargo test` on stable Rust, without cargo-fuzz.

use std::sync::OnceLock;

use base64::Engine as _;
use ciguard::value::Value;
use ciguard::{
    ValidPolicy,
    admission::{self, Endpoint},
    merge::{self, PatchOp},
    policy::load,
    workload,
};

/// What a target does with one input.
pub type Target = fn(&[u8]);

/// The targets: name (as in `fuzz/Cargo.toml`), seed corpus (`fuzz/corpus/<seeds>/`), and
/// what it does.
pub const TARGETS: [(&str, &str, Target); 5] = [
    ("policy_load", "policy_load", policy_load),
    ("input_reader", "input_reader", input_reader),
    ("render", "render", render),
    ("render_idempotent", "render", render_idempotent),
    ("admission", "admission", admission),
];

/// The pod `policy_load` renders with every policy that loads.
const POD: &str = include_str!("../../examples/gitlab-runner/build-pod.yaml");

/// The policies `render` and `admission` choose from (by the input's first byte): the
/// builtin one, two shipped examples and a `deny` policy with an allowlist.
pub fn policies() -> &'static [ValidPolicy] {
    static POLICIES: OnceLock<Vec<ValidPolicy>> = OnceLock::new();
    POLICIES.get_or_init(|| {
        let mut out = vec![ValidPolicy::builtin()];
        for (name, text) in [
            (
                "gitlab-runner.yaml",
                include_str!("../../examples/policies/gitlab-runner.yaml"),
            ),
            ("tekton.yaml", include_str!("../../examples/policies/tekton.yaml")),
            (
                "deny-root.yaml",
                include_str!("../../tests/data/policies/deny-root.yaml"),
            ),
        ] {
            match load::from_str(text, name) {
                Ok(p) => out.push(p),
                Err(e) => panic!("fuzz setup: {name} does not load: {e}"),
            }
        }
        out
    })
}

/// The policy loader: any text into `policy::load::from_str`. A policy that loads then
/// renders a real CI pod, so the merge engine sees every policy the loader accepts.
pub fn policy_load(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match load::from_str(text, "fuzz.yaml") {
        Ok(policy) => {
            static PODS: OnceLock<Vec<Value>> = OnceLock::new();
            let pods = PODS.get_or_init(|| match ciguard::source::documents(POD, "pod.yaml") {
                Ok(docs) => docs,
                Err(e) => panic!("fuzz setup: the example pod does not parse: {e}"),
            });
            for pod in pods {
                if let Ok(rendered) = merge::render(&policy, pod) {
                    let _ = rendered.explain();
                    assert_patch_reproduces(pod, &rendered.patch, &rendered.object);
                }
            }
        }
        Err(errors) => {
            let _ = errors.to_string();
        }
    }
}

/// The input reader: any text as one `render`/`check` input (YAML stream, JSON, v1/List),
/// through `workload::parse_text` (which reads with `source::documents`). Inputs are read
/// with `read_to_string`, so text that is not UTF-8 never gets that far. Every pod is read
/// three ways: `checked_pod` (what `render` and `check` use) must take and refuse what
/// `typed_pod` (the full k8s-openapi `PodSpec`) does, and say the same when it refuses.
pub fn input_reader(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match workload::parse_text(text, "fuzz.yaml") {
        Ok(docs) => {
            for doc in &docs {
                let _ = doc.kind();
                let typed = workload::typed_pod(&doc.object).map(|p| p.map(|(kind, _)| kind));
                let checked = workload::checked_pod(&doc.object).map(|p| {
                    p.map(|(kind, pod)| {
                        let _ = pod.view();
                        kind
                    })
                });
                assert_eq!(checked, typed, "checked_pod and typed_pod disagree");
                // What an input error's `file:line:column` is found with, on any text.
                if let (Some(place), Err(e)) = (&doc.place, &checked) {
                    let _ = ciguard::source::position(
                        text,
                        place.document,
                        &format!("{}{}", place.pointer, e.pointer),
                    );
                }
                let _ = workload::admitted_pod(&doc.object)
                    .map(|p| p.map(|(_, pod)| pod.view().containers().len()));
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// `render`: the first byte picks a policy, the rest is read as a `render` input and every
/// document is rendered. The returned RFC 6902 patch must turn the input into the rendered
/// object.
pub fn render(data: &[u8]) {
    let Some((policy, docs)) = policy_and_documents(data) else {
        return;
    };
    for doc in &docs {
        match merge::render(policy, &doc.object) {
            Ok(rendered) => {
                let _ = rendered.explain();
                for w in &rendered.warnings {
                    let _ = w.message();
                }
                if let Some(denial) = &rendered.denial {
                    let _ = denial.message();
                }
                assert_patch_reproduces(&doc.object, &rendered.patch, &rendered.object);
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}

/// `render` twice: a document the policy accepts, rendered again with the same policy,
/// gets no patch (the mutating webhook is called again with its own output under
/// `reinvocationPolicy: IfNeeded`). Same input layout and seeds as [`render`].
pub fn render_idempotent(data: &[u8]) {
    let Some((policy, docs)) = policy_and_documents(data) else {
        return;
    };
    for doc in &docs {
        let Ok(first) = merge::render(policy, &doc.object) else {
            continue;
        };
        if first.denial.is_some() {
            continue;
        }
        match merge::render(policy, &first.object) {
            Ok(second) => assert!(
                second.patch.is_empty(),
                "rendering the rendered object again patches it: {:?}",
                second.patch
            ),
            Err(e) => panic!("the rendered object does not render again: {e}"),
        }
    }
}

/// The admission handler without HTTP: raw request bytes -> `admission::parse` ->
/// `decide` -> `respond`; the first byte picks the policy (bits 1..) and the endpoint
/// (bit 0). The answer must be an AdmissionReview with the request's uid and `allowed` as
/// decided; a denial carries no patch, and a patch must apply to `request.object`. The
/// same request with the patched object (a reinvocation) must get no patch.
pub fn admission(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let all = policies();
    let policy = &all[usize::from(selector >> 1) % all.len()];
    let endpoint = if selector & 1 == 0 {
        Endpoint::Mutate
    } else {
        Endpoint::Validate
    };
    let request = match admission::parse(body) {
        Ok(r) => r,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let decision = admission::decide(endpoint, policy, &request);
    let bytes = match admission::respond(&request, &decision) {
        Ok(b) => b,
        Err(e) => panic!("respond failed: {e}"),
    };
    let review: Value =
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("the answer is not JSON: {e}"));
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    let response = &review["response"];
    assert_eq!(
        response["uid"].as_str(),
        Some(request.uid.as_str()),
        "uid not echoed"
    );
    assert_eq!(response["allowed"].as_bool(), Some(decision.allowed()));
    if !decision.allowed() {
        assert!(response.get("patch").is_none(), "a denial carries a patch");
    }
    if let Some(patch) = response.get("patch") {
        let Some(object) = request.object.as_ref() else {
            panic!("a patch without request.object");
        };
        let text = patch.as_str().unwrap_or_else(|| panic!("patch is not a string"));
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap_or_else(|e| panic!("patch is not standard base64: {e}"));
        let ops: json_patch::Patch =
            serde_json::from_slice(&raw).unwrap_or_else(|e| panic!("patch is not RFC 6902: {e}"));
        let mut patched = serde_json::Value::from(object.value().clone());
        if let Err(e) = json_patch::patch(&mut patched, &ops) {
            panic!("the answer's patch does not apply to request.object: {e}");
        }
        // Reinvocation: the same request with the patched object gets no patch.
        let mut again = serde_json::to_value(&request).unwrap_or_else(|e| panic!("{e}"));
        again["object"] = patched;
        let again = serde_json::json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": again,
        });
        let again = serde_json::to_vec(&again).unwrap_or_else(|e| panic!("{e}"));
        let request =
            admission::parse(&again).unwrap_or_else(|e| panic!("the patched request does not parse: {e}"));
        let second = admission::decide(endpoint, policy, &request);
        assert!(
            second.patch.is_empty(),
            "reinvoked with its own patched pod, the webhook patches again: {:?}",
            second.patch
        );
    }
}

/// The policy picked by the first byte, and the rest read as a `render` input; `None`
/// when the rest is not UTF-8 or not readable.
fn policy_and_documents(data: &[u8]) -> Option<(&'static ValidPolicy, Vec<workload::Document>)> {
    let (policy, rest) = pick_policy(data);
    let text = std::str::from_utf8(rest).ok()?;
    let docs = workload::parse_text(text, "fuzz.yaml").ok()?;
    Some((policy, docs))
}

/// Splits an input into the policy its first byte picks and the rest.
pub fn pick_policy(data: &[u8]) -> (&'static ValidPolicy, &[u8]) {
    let all = policies();
    match data.split_first() {
        Some((b, rest)) => (&all[usize::from(*b) % all.len()], rest),
        None => (&all[0], data),
    }
}

/// Applies `patch` to `input` and checks the result is `expected`: the RFC 6902 patch
/// ciguard returns must describe exactly the object it rendered.
pub fn assert_patch_reproduces(input: &Value, patch: &[PatchOp], expected: &Value) {
    if patch.is_empty() {
        assert_eq!(
            input, expected,
            "no patch, but the rendered object differs from the input"
        );
        return;
    }
    let ops = serde_json::to_value(patch).unwrap_or_else(|e| panic!("patch does not serialize: {e}"));
    let ops: json_patch::Patch =
        serde_json::from_value(ops).unwrap_or_else(|e| panic!("patch is not RFC 6902: {e}"));
    let mut patched = serde_json::Value::from(input.clone());
    if let Err(e) = json_patch::patch(&mut patched, &ops) {
        panic!("patch does not apply to its input: {e}\npatch: {ops:?}");
    }
    assert_eq!(
        &Value::from(patched),
        expected,
        "the patch does not produce the rendered object"
    );
}
