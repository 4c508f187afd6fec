//! Admission decisions, with no HTTP types: an `admission.k8s.io/v1` AdmissionReview in
//! (kube-core's types), a [`Decision`] out, and the AdmissionReview answer.
//!
//! - `/mutate` patches the CREATE of a Pod with what [`merge::render`] makes of it, and
//!   returns its warnings. Pod templates of workloads are not patched: the pods they
//!   create are. A job request the policy rejects (`onViolation: deny`) is denied here,
//!   because the patch would drop it and `/validate` would never see it; a pod that
//!   fails its Pod Security Standards target is patched and left to `/validate`.
//! - `/validate` evaluates the pod as it will run: its Pod Security Standards target on
//!   the object as received, and the policy's allowlists under `deny`. A pod is denied
//!   (`status.code` 403); a workload with a pod template gets warnings, as PodSecurity
//!   admission does for controllers. A pod UPDATE is evaluated only when it changes an
//!   image (the rest of a pod's security is immutable), as PodSecurity admission does.
//! - Anything else (other resources, DELETE, CONNECT, subresources) is allowed untouched.

use std::borrow::Cow;

use base64::Engine as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_core::{
    DynamicResourceScope, GroupVersionKind, Resource,
    admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation},
};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};
use serde_json::Value;

use super::{
    error::admission_status,
    metrics::{Endpoint, Outcome},
};
use crate::{
    merge::{self, Change, Denial, PatchOp, PodSecurity},
    policy::ValidPolicy,
    pss::{self, Level},
    workload::{self, WorkloadKind},
};

/// The only AdmissionReview version ciguard answers.
pub const API_VERSION: &str = "admission.k8s.io/v1";
/// The AdmissionReview kind.
pub const KIND: &str = "AdmissionReview";

/// An object exactly as the API server sent it (key order kept, no field dropped), with
/// its metadata parsed for kube-core.
#[derive(Debug, Clone, PartialEq)]
pub struct RawObject {
    metadata: ObjectMeta,
    value: Value,
}

impl RawObject {
    /// The object as JSON.
    pub fn value(&self) -> &Value {
        &self.value
    }
}

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        // Only the metadata ciguard reads; the rest stays in the raw value, parsed once.
        let metadata = workload::slim_metadata(value.get("metadata"))
            .map_err(|e| D::Error::custom(format!("metadata: {e}")))?;
        Ok(RawObject { metadata, value })
    }
}

impl Serialize for RawObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(s)
    }
}

impl Resource for RawObject {
    type DynamicType = ();
    type Scope = DynamicResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// An admission request as the API server sends it.
pub type Request = AdmissionRequest<RawObject>;

/// Why a body is not an AdmissionReview ciguard can answer.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// The body is empty.
    #[error("empty body: expected an {API_VERSION} {KIND}")]
    Empty,
    /// The body is not JSON of the AdmissionReview shape.
    #[error("not an {API_VERSION} {KIND}")]
    Json(#[source] serde_json::Error),
    /// The body is JSON of another type or version.
    #[error(
        "expected apiVersion {API_VERSION} and kind {KIND}, got apiVersion {api_version:?} and kind {kind:?}"
    )]
    WrongType {
        /// The `apiVersion` sent.
        api_version: String,
        /// The `kind` sent.
        kind: String,
    },
    /// The review has no `request`.
    #[error("the {KIND} has no request")]
    NoRequest,
    /// `request.uid` is empty.
    #[error("request.uid is empty")]
    EmptyUid,
}

/// Parses a request body.
pub fn parse(body: &[u8]) -> Result<Request, ReviewError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ReviewError::Empty);
    }
    let review: AdmissionReview<RawObject> = serde_json::from_slice(body).map_err(ReviewError::Json)?;
    if review.types.api_version != API_VERSION || review.types.kind != KIND {
        return Err(ReviewError::WrongType {
            api_version: review.types.api_version,
            kind: review.types.kind,
        });
    }
    let request: Request = review.try_into().map_err(|_| ReviewError::NoRequest)?;
    if request.uid.is_empty() {
        return Err(ReviewError::EmptyUid);
    }
    Ok(request)
}

/// What ciguard answers to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// How it is counted.
    pub outcome: Outcome,
    /// The JSON Patch (empty: no change).
    pub patch: Vec<PatchOp>,
    /// Warnings for the client.
    pub warnings: Vec<String>,
    /// The denial (or invalid-object) message.
    pub message: Option<String>,
    /// The policy's writes, for the audit log.
    pub changes: Vec<Change>,
    /// The code of each warning, for metrics.
    pub warning_codes: Vec<&'static str>,
    /// The reasons of a denial (`policy` or PodSecurity check IDs), for metrics.
    pub denial_reasons: Vec<&'static str>,
}

impl Decision {
    fn with(outcome: Outcome) -> Self {
        Decision {
            outcome,
            patch: Vec::new(),
            warnings: Vec::new(),
            message: None,
            changes: Vec::new(),
            warning_codes: Vec::new(),
            denial_reasons: Vec::new(),
        }
    }

    fn invalid(message: String) -> Self {
        Decision {
            message: Some(message),
            ..Decision::with(Outcome::Invalid)
        }
    }

    fn denied(denial: &Denial) -> Self {
        let mut reasons: Vec<&'static str> = Vec::new();
        if !denial.requests.is_empty() {
            reasons.push("policy");
        }
        reasons.extend(
            denial
                .pss
                .iter()
                .flat_map(|e| e.violations.iter().map(|v| v.check)),
        );
        Decision {
            message: Some(denial.message()),
            denial_reasons: reasons,
            ..Decision::with(Outcome::Denied)
        }
    }

    fn warn(&mut self, code: &'static str, message: String) {
        self.warning_codes.push(code);
        self.warnings.push(message);
    }

    /// Whether the request is allowed.
    pub fn allowed(&self) -> bool {
        !matches!(self.outcome, Outcome::Denied | Outcome::Invalid)
    }
}

/// Decides a request at an endpoint.
pub fn decide(endpoint: Endpoint, policy: &ValidPolicy, request: &Request) -> Decision {
    let Some(kind) = carrier(request) else {
        return Decision::with(Outcome::Skipped);
    };
    let result = match endpoint {
        Endpoint::Mutate => mutate(policy, request, kind),
        Endpoint::Validate => validate(policy, request, kind),
    };
    result.unwrap_or_else(Decision::invalid)
}

/// The kind of pod carrier a request is about, when ciguard has something to say.
fn carrier(request: &Request) -> Option<WorkloadKind> {
    if request.sub_resource.is_some() || !matches!(request.operation, Operation::Create | Operation::Update) {
        return None;
    }
    WorkloadKind::from_type(&request.kind.group, &request.kind.kind)
}

fn mutate(policy: &ValidPolicy, request: &Request, kind: WorkloadKind) -> Result<Decision, String> {
    if request.operation != Operation::Create || kind != WorkloadKind::Pod {
        return Ok(Decision::with(Outcome::Skipped));
    }
    let object = object_of(request)?;
    let rendered = merge::render_with(policy, object, PodSecurity::Skip).map_err(|e| e.to_string())?;
    let mut decision = match &rendered.denial {
        Some(denial) if !denial.requests.is_empty() => Decision::denied(denial),
        _ if rendered.patch.is_empty() => Decision::with(Outcome::Allowed),
        _ => Decision::with(Outcome::Patched),
    };
    if decision.outcome != Outcome::Denied {
        decision.patch = rendered.patch;
    }
    decision.changes = rendered.changes;
    for w in rendered.warnings {
        decision.warn(w.code.as_str(), w.message());
    }
    Ok(decision)
}

fn validate(policy: &ValidPolicy, request: &Request, kind: WorkloadKind) -> Result<Decision, String> {
    let object = object_of(request)?;
    let is_update = request.operation == Operation::Update;
    if kind == WorkloadKind::Pod && is_update && !changes_images(request.old_object.as_ref(), object) {
        return Ok(Decision::with(Outcome::Allowed));
    }
    // A workload's pods will be mutated: warn about them as rendered. A pod is judged
    // as received (below), so its rendered form needs no evaluation.
    let evaluate = if kind == WorkloadKind::Pod {
        PodSecurity::Skip
    } else {
        PodSecurity::Evaluate
    };
    let rendered = merge::render_with(policy, object, evaluate).map_err(|e| e.to_string())?;
    if kind != WorkloadKind::Pod {
        return Ok(workload_warnings(rendered.denial.as_ref(), rendered.warnings));
    }
    let requests = rendered.denial.map(|d| d.requests).unwrap_or_default();
    let pss = pod_security(policy, object)?;
    if !requests.is_empty() || pss.is_some() {
        return Ok(Decision::denied(&Denial { requests, pss }));
    }
    let mut decision = Decision::with(Outcome::Allowed);
    if !is_update && !rendered.patch.is_empty() {
        let message = format!(
            "pod differs from what ciguard policy \"{}\" makes of it in {} place(s); is the ciguard \
             mutating webhook installed?",
            policy.name(),
            rendered.patch.len()
        );
        decision.warn("not-mutated", message);
    }
    Ok(decision)
}

/// What PodSecurity would say of a workload's pods, as warnings.
fn workload_warnings(denial: Option<&Denial>, warnings: Vec<merge::Warning>) -> Decision {
    let mut decision = Decision::with(Outcome::Allowed);
    for w in warnings {
        decision.warn(w.code.as_str(), w.message());
    }
    if let Some(d) = denial {
        if !d.requests.is_empty() {
            decision.warn(
                "policy",
                format!("would violate ciguard policy: {}", d.requests.join("; ")),
            );
        }
        if let Some(e) = &d.pss {
            decision.warn(
                "pod-security",
                e.message().replacen("violates", "would violate", 1),
            );
        }
    }
    decision
}

/// The PodSecurity evaluation of a pod as received; `None` when it passes.
fn pod_security(policy: &ValidPolicy, object: &Value) -> Result<Option<pss::Evaluation>, String> {
    if policy.pss.level == Level::Privileged {
        return Ok(None);
    }
    let Some((_, pod)) = workload::typed_pod(object)? else {
        return Ok(None);
    };
    let evaluation = pss::evaluate(&pod.metadata, &pod.spec, policy.pss);
    Ok((!evaluation.allowed()).then_some(evaluation))
}

/// The request's object, checked against `request.kind`.
fn object_of(request: &Request) -> Result<&Value, String> {
    let gvk: &GroupVersionKind = &request.kind;
    let expected = format!("{}/{}", gvk.api_version(), gvk.kind);
    let Some(object) = &request.object else {
        return Err(format!(
            "request.object is missing: a {:?} of {expected} carries the object",
            request.operation
        ));
    };
    let value = object.value();
    let field = |k: &str| value.get(k).and_then(Value::as_str).unwrap_or("");
    let found = format!("{}/{}", field("apiVersion"), field("kind"));
    if found != expected {
        return Err(format!(
            "request.object is a {found}, but request.kind is {expected}"
        ));
    }
    Ok(value)
}

/// Whether a pod update changes an image (the only security-relevant change PodSecurity
/// admission evaluates on update). A missing old object counts as a change.
fn changes_images(old: Option<&RawObject>, new: &Value) -> bool {
    fn images(pod: &Value) -> Vec<(&Value, &Value)> {
        ["initContainers", "containers", "ephemeralContainers"]
            .iter()
            .filter_map(|list| pod.pointer(&format!("/spec/{list}"))?.as_array())
            .flatten()
            .map(|c| (&c["name"], &c["image"]))
            .collect()
    }
    old.is_none_or(|old| images(old.value()) != images(new))
}

/// The AdmissionReview answer, as JSON bytes: same `uid`, `patch` base64 (standard
/// alphabet) with `patchType: JSONPatch`, warnings, and a `status` when not allowed.
pub fn respond(request: &Request, decision: &Decision) -> Result<Vec<u8>, serde_json::Error> {
    let mut response = AdmissionResponse::from(request);
    if let Some(message) = &decision.message {
        let (code, reason) = admission_status(decision.outcome);
        response = response.deny(message);
        response.result.code = code;
        response.result.reason = reason.into();
    }
    let patch = if decision.patch.is_empty() {
        None
    } else {
        response = response
            .with_patch(json_patch::Patch::default())
            .map_err(|_| serde_json::Error::custom("empty patch"))?;
        Some(serde_json::to_vec(&decision.patch)?)
    };
    response.patch = None;
    if !decision.warnings.is_empty() {
        response.warnings = Some(decision.warnings.clone());
    }
    let mut review = serde_json::to_value(response.into_review())?;
    if let (Some(patch), Some(r)) = (patch, review.get_mut("response").and_then(Value::as_object_mut)) {
        let encoded = base64::engine::general_purpose::STANDARD.encode(patch);
        r.insert("patch".into(), Value::String(encoded));
    }
    serde_json::to_vec(&review)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;
    use serde_json::json;

    use super::*;

    fn raw(value: Value) -> RawObject {
        serde_json::from_value(value).unwrap()
    }

    fn pod(images: &[(&str, &str)]) -> Value {
        let containers: Vec<Value> = images
            .iter()
            .map(|(n, i)| json!({"name": n, "image": i}))
            .collect();
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}})
    }

    #[rstest]
    #[case::same(&[("a", "x:1")], &[("a", "x:1")], false)]
    #[case::new_image(&[("a", "x:1")], &[("a", "x:2")], true)]
    #[case::renamed(&[("a", "x:1")], &[("b", "x:1")], true)]
    #[case::added(&[("a", "x:1")], &[("a", "x:1"), ("b", "y")], true)]
    fn image_changes(#[case] old: &[(&str, &str)], #[case] new: &[(&str, &str)], #[case] changed: bool) {
        assert_eq!(changes_images(Some(&raw(pod(old))), &pod(new)), changed);
    }

    #[test]
    fn a_missing_old_object_counts_as_a_change() {
        assert!(changes_images(None, &pod(&[("a", "x")])));
    }

    #[test]
    fn raw_objects_keep_every_field_and_parse_metadata() {
        let value = json!({"kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}}, "x-unknown": [1]});
        let object = raw(value.clone());
        assert_eq!(object.value(), &value);
        assert_eq!(object.meta().name.as_deref(), Some("p"));
        let bad: Result<RawObject, _> = serde_json::from_value(json!({"metadata": {"name": 1}}));
        assert!(bad.unwrap_err().to_string().starts_with("metadata: "));
    }

    #[rstest]
    #[case::pod("", "v1", "Pod", Some(WorkloadKind::Pod))]
    #[case::deployment("apps", "v1", "Deployment", Some(WorkloadKind::Deployment))]
    #[case::cronjob("batch", "v1", "CronJob", Some(WorkloadKind::CronJob))]
    #[case::configmap("", "v1", "ConfigMap", None)]
    #[case::foreign_pod("example.com", "v1", "Pod", None)]
    fn carriers(
        #[case] group: &str,
        #[case] version: &str,
        #[case] kind: &str,
        #[case] expected: Option<WorkloadKind>,
    ) {
        let body = json!({
            "apiVersion": API_VERSION, "kind": KIND,
            "request": {
                "uid": "u", "kind": {"group": group, "version": version, "kind": kind},
                "resource": {"group": group, "version": version, "resource": "x"},
                "operation": "CREATE", "userInfo": {}, "object": null, "oldObject": null,
            }
        });
        let request = parse(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(carrier(&request), expected);
    }
}
