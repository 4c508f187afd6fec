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

use std::sync::Arc;

use crate::value::{Value, write_str};
use kube_core::{
    GroupVersionKind,
    admission::{AdmissionRequest, AdmissionReview, Operation},
};

pub use super::object::RawObject;
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
    // UTF-8 checked once for the whole body, not string by string; a body that is not
    // UTF-8 is read as bytes, for serde_json's error with its position.
    let review: AdmissionReview<RawObject> = match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
    .map_err(ReviewError::Json)?;
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
    /// Every warning, one per container, in full: the audit log's. The client gets
    /// them grouped and within the API server's budget ([`Decision::client_warnings`]).
    pub warnings: Vec<String>,
    /// The same warnings, with their subject apart, for grouping.
    pub warning_items: Vec<WarningItem>,
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
            warning_items: Vec::new(),
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
        self.warnings.push(message.clone());
        self.warning_items.push(WarningItem {
            code,
            subject: Subject::None,
            detail: message,
        });
    }

    /// A warning of the engine, about the pod or one container.
    fn warn_about(&mut self, w: merge::Warning) {
        let code = w.code.as_str();
        self.warning_codes.push(code);
        self.warnings.push(w.message());
        let subject = match w.container {
            Some(name) => Subject::Container(name),
            None => Subject::Pod,
        };
        self.warning_items.push(WarningItem {
            code,
            subject,
            detail: w.detail,
        });
    }

    /// The warnings as the client gets them: containers with the same code and detail
    /// grouped into one warning, and all of them within `WARNINGS_BUDGET` characters
    /// (the API server drops what is past that); when some do not fit, the last says how
    /// many were left out and that the audit log has them all.
    pub fn client_warnings(&self) -> Vec<String> {
        fit_warnings(group_warnings(&self.warning_items), WARNINGS_BUDGET)
    }

    /// Whether the request is allowed.
    pub fn allowed(&self) -> bool {
        !matches!(self.outcome, Outcome::Denied | Outcome::Invalid)
    }
}

/// The characters of warnings the API server keeps per response (its warning recorder
/// truncates past 4 × 1024 runes).
pub const WARNINGS_BUDGET: usize = 4096;

/// The longest one grouped warning gets before its container list is shortened.
const GROUP_BUDGET: usize = 1024;

/// What a warning is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// The whole object (the text says everything).
    None,
    /// The pod-level security context.
    Pod,
    /// One container.
    Container(Arc<str>),
}

/// One warning, its subject apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarningItem {
    /// The warning code (metrics).
    pub code: &'static str,
    /// What it is about.
    pub subject: Subject,
    /// What happened.
    pub detail: String,
}

/// One text per distinct (code, detail): the containers it concerns are named together,
/// in order of first appearance; pod-level and whole-object warnings stay as they are.
fn group_warnings(items: &[WarningItem]) -> Vec<String> {
    let mut groups: Vec<(&WarningItem, Vec<&str>)> = Vec::new();
    for item in items {
        let Subject::Container(name) = &item.subject else {
            groups.push((item, Vec::new()));
            continue;
        };
        let same = groups
            .iter_mut()
            .find(|(g, names)| !names.is_empty() && g.code == item.code && g.detail == item.detail);
        match same {
            Some((_, names)) => {
                if !names.contains(&&**name) {
                    names.push(name);
                }
            }
            None => groups.push((item, vec![&**name])),
        }
    }
    groups
        .into_iter()
        .map(|(item, names)| match (&item.subject, names.as_slice()) {
            (Subject::None, _) => item.detail.clone(),
            (Subject::Pod, _) => format!("pod: {}", item.detail),
            (_, [one]) => format!("container \"{one}\": {}", item.detail),
            (_, names) => {
                let room = GROUP_BUDGET.saturating_sub(item.detail.chars().count() + 40);
                let mut listed = String::new();
                let mut shown = 0;
                for name in names {
                    let next = format!("{}\"{name}\"", if shown == 0 { "" } else { ", " });
                    if shown > 0 && listed.chars().count() + next.chars().count() > room {
                        break;
                    }
                    listed.push_str(&next);
                    shown += 1;
                }
                if shown < names.len() {
                    listed.push_str(&format!(" and {} more", names.len() - shown));
                }
                format!("containers {listed}: {}", item.detail)
            }
        })
        .collect()
}

/// Keeps warnings, in order, while they fit in `budget` characters; when some do not,
/// the last warning says how many were left out.
fn fit_warnings(warnings: Vec<String>, budget: usize) -> Vec<String> {
    let len = |w: &String| w.chars().count();
    let total: usize = warnings.iter().map(len).sum();
    if total <= budget {
        return warnings;
    }
    let note = |n: usize| {
        format!(
            "{n} more ciguard warning(s) not shown: the API server keeps {budget} characters of \
             warnings; the audit log has every one"
        )
    };
    let room = budget.saturating_sub(len(&note(warnings.len())));
    let mut out = Vec::new();
    let mut used = 0;
    for w in &warnings {
        // A single warning longer than the room is cut (on a character boundary).
        let w: String = if out.is_empty() && len(w) > room {
            w.chars().take(room.saturating_sub(1)).chain(['…']).collect()
        } else {
            w.clone()
        };
        if used + len(&w) > room {
            break;
        }
        used += len(&w);
        out.push(w);
    }
    let left = warnings.len() - out.len();
    if left > 0 {
        out.push(note(left));
    }
    out
}

/// [`decide`], rendering the object of a pod CREATE at `/mutate`, and of a pod CREATE or
/// UPDATE at `/validate`, in place instead of a copy of it: what the server does, which
/// has no use for the object once decided. Afterwards `request.object` holds the
/// rendered pod (`null` when it could not be rendered); its metadata, as
/// [`Resource::meta`](kube_core::Resource::meta) gives it, is the metadata received.
pub fn decide_in_place(endpoint: Endpoint, policy: &ValidPolicy, request: &mut Request) -> Decision {
    let pod = carrier(request) == Some(WorkloadKind::Pod) && !is_ephemeral(request);
    if endpoint == Endpoint::Validate && pod {
        return validate_pod_in_place(policy, request).unwrap_or_else(Decision::invalid);
    }
    let pod_create = endpoint == Endpoint::Mutate && pod && request.operation == Operation::Create;
    if !pod_create {
        return decide(endpoint, policy, request);
    }
    if let Err(e) = object_of(request) {
        return Decision::invalid(e);
    }
    match render_request_object(policy, request, MUTATE) {
        Some(Ok(rendered)) => mutate_pod(rendered),
        Some(Err(e)) => Decision::invalid(e.to_string()),
        None => decide(endpoint, policy, request),
    }
}

/// How `/mutate` renders a pod: Pod Security is left to `/validate`; the patch is the
/// answer, the changes go into the audit line. Nothing reads the provenance.
const MUTATE: merge::Options = merge::Options {
    changes: true,
    patch: true,
    ..merge::Options::without_records(PodSecurity::Skip)
};

/// How `/validate` renders a pod: Pod Security is judged apart, on the object as
/// received ([`pod_security`]), and of the render only the number of changes is read
/// (a pod that differs from its rendering was not mutated).
const VALIDATE: merge::Options = merge::Options {
    patch: false,
    ..MUTATE
};

/// Renders the request's object itself, not a copy, and leaves the rendered pod in its
/// place (`null` when it cannot be rendered); `None` when the request has no object.
fn render_request_object(
    policy: &ValidPolicy,
    request: &mut Request,
    options: merge::Options,
) -> Option<Result<merge::Rendered, merge::RenderError>> {
    let value = request.object.as_mut()?.value_mut();
    let rendered = merge::render_owned_with(policy, std::mem::take(value), options);
    Some(rendered.map(|mut rendered| {
        *value = std::mem::take(&mut rendered.object);
        rendered
    }))
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

/// The subresource `kubectl debug` updates to add ephemeral containers.
pub const EPHEMERAL_CONTAINERS: &str = "ephemeralcontainers";

/// The kind of pod carrier a request is about, when ciguard has something to say: a
/// CREATE or UPDATE of a carrier, or an UPDATE of a pod's `ephemeralcontainers`.
fn carrier(request: &Request) -> Option<WorkloadKind> {
    if !matches!(request.operation, Operation::Create | Operation::Update) {
        return None;
    }
    let kind = WorkloadKind::from_type(&request.kind.group, &request.kind.kind)?;
    match request.sub_resource.as_deref() {
        None => Some(kind),
        Some(EPHEMERAL_CONTAINERS) if is_ephemeral(request) && kind == WorkloadKind::Pod => Some(kind),
        Some(_) => None,
    }
}

/// Whether the request is an UPDATE of `pods/ephemeralcontainers`.
fn is_ephemeral(request: &Request) -> bool {
    request.operation == Operation::Update && request.sub_resource.as_deref() == Some(EPHEMERAL_CONTAINERS)
}

/// The ephemeral containers of `new` that `old` does not have (by name), with their index.
fn new_ephemeral<'a>(old: Option<&RawObject>, new: &'a Value) -> Vec<(usize, &'a Value)> {
    let names = |pod: &Value| -> Vec<Value> {
        pod.pointer("/spec/ephemeralContainers")
            .and_then(Value::as_array)
            .map(|l| l.iter().map(|c| c["name"].clone()).collect())
            .unwrap_or_default()
    };
    let old = old.map(|o| names(o.value())).unwrap_or_default();
    new.pointer("/spec/ephemeralContainers")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .enumerate()
                .filter(|(_, c)| !old.contains(&c["name"]))
                .collect()
        })
        .unwrap_or_default()
}

/// Renders a pod's new ephemeral containers as upstream PodSecurity sees them: with
/// the `containers` layers and the allowlists, no role, against the pod's own
/// security context. Returns the rendering of a pod made of them (their indexes in the
/// same order).
fn render_ephemeral(
    policy: &ValidPolicy,
    request: &Request,
    object: &Value,
) -> Result<Option<(Vec<usize>, merge::Rendered)>, String> {
    let new = new_ephemeral(request.old_object.as_ref(), object);
    if new.is_empty() {
        return Ok(None);
    }
    let mut no_roles = policy.clone();
    for role in &mut no_roles.roles {
        role.default.clear();
        role.enforced.clear();
    }
    no_roles.workdir_init.enabled = false;
    // Exceptions are for the job's containers by role; a debug container has none.
    no_roles.exceptions.clear();
    let pod = crate::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": object.get("metadata").cloned().unwrap_or_default(),
        "spec": {
            "securityContext": object.pointer("/spec/securityContext").cloned().unwrap_or_default(),
            "containers": new.iter().map(|(_, c)| (*c).clone()).collect::<Vec<_>>(),
        },
    });
    let mut pod = pod;
    // Whether the pod runs in a user namespace decides whether root is admitted
    // (`allowRootInUserNamespace`): the running pod's own `hostUsers` (immutable) decides,
    // not what the policy would give a new pod.
    if let Some(v) = object.pointer("/spec/hostUsers") {
        pod["spec"]["hostUsers"] = v.clone();
    }
    no_roles.pod.default.remove("hostUsers");
    no_roles.pod.enforced.remove("hostUsers");
    // Its own patch is built from the rendered containers (`mutate_ephemeral`).
    let options = merge::Options {
        patch: false,
        ..MUTATE
    };
    let rendered = merge::render_owned_with(&no_roles, pod, options).map_err(|e| e.to_string())?;
    Ok(Some((new.iter().map(|(i, _)| *i).collect(), rendered)))
}

/// `/mutate` of `pods/ephemeralcontainers`: the new ephemeral containers' security
/// contexts, nothing else (the subresource changes nothing else).
fn mutate_ephemeral(policy: &ValidPolicy, request: &Request, object: &Value) -> Result<Decision, String> {
    let Some((indexes, rendered)) = render_ephemeral(policy, request, object)? else {
        return Ok(Decision::with(Outcome::Allowed));
    };
    if let Some(denial) = rendered.denial.as_ref().filter(|d| !d.requests.is_empty()) {
        return Ok(Decision::denied(denial));
    }
    let mut patch = Vec::new();
    for (k, i) in indexes.iter().enumerate() {
        let before = object.pointer(&format!("/spec/ephemeralContainers/{i}/securityContext"));
        let after = rendered
            .object
            .pointer(&format!("/spec/containers/{k}/securityContext"));
        if let Some(after) = after
            && before != Some(after)
        {
            patch.push(PatchOp {
                op: "add",
                path: format!("/spec/ephemeralContainers/{i}/securityContext"),
                value: Some(after.clone()),
            });
        }
    }
    let mut decision = Decision::with(if patch.is_empty() {
        Outcome::Allowed
    } else {
        Outcome::Patched
    });
    decision.patch = patch;
    decision.changes = rendered.changes;
    for w in rendered.warnings.into_iter().filter(|w| w.container.is_some()) {
        decision.warn_about(w);
    }
    Ok(decision)
}

fn mutate(policy: &ValidPolicy, request: &Request, kind: WorkloadKind) -> Result<Decision, String> {
    if is_ephemeral(request) {
        return mutate_ephemeral(policy, request, object_of(request)?);
    }
    if request.operation != Operation::Create || kind != WorkloadKind::Pod {
        return Ok(Decision::with(Outcome::Skipped));
    }
    let object = object_of(request)?;
    let rendered = merge::render_with(policy, object, MUTATE).map_err(|e| e.to_string())?;
    Ok(mutate_pod(rendered))
}

/// The `/mutate` answer for a pod CREATE rendered as `rendered`.
fn mutate_pod(rendered: merge::Rendered) -> Decision {
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
        decision.warn_about(w);
    }
    decision
}

fn validate(policy: &ValidPolicy, request: &Request, kind: WorkloadKind) -> Result<Decision, String> {
    let object = object_of(request)?;
    let is_update = request.operation == Operation::Update;
    if kind == WorkloadKind::Pod && is_update && !changes_images(request.old_object.as_ref(), object) {
        return Ok(Decision::with(Outcome::Allowed));
    }
    if is_ephemeral(request) {
        // As upstream PodSecurity: the whole pod, its new ephemeral containers included;
        // and the allowlists for the new ephemeral containers.
        let requests = render_ephemeral(policy, request, object)?
            .and_then(|(_, r)| r.denial)
            .map(|d| d.requests)
            .unwrap_or_default();
        let pss = pod_security(policy, object)?;
        if !requests.is_empty() || pss.is_some() {
            return Ok(Decision::denied(&Denial { requests, pss }));
        }
        return Ok(Decision::with(Outcome::Allowed));
    }
    // A workload's pods will be mutated: warn about them as rendered. A pod is judged
    // as received (`judge_pod`), so its rendered form needs no evaluation.
    if kind != WorkloadKind::Pod {
        let options = merge::Options {
            pod_security: PodSecurity::EvaluateAdmitted,
            changes: false,
            ..VALIDATE
        };
        let rendered = merge::render_with(policy, object, options).map_err(|e| e.to_string())?;
        return Ok(workload_warnings(rendered.denial.as_ref(), rendered.warnings));
    }
    let rendered = merge::render_with(policy, object, VALIDATE);
    judge_pod(policy, rendered, pod_security(policy, object), is_update)
}

/// [`validate`] of a pod (not its ephemeral containers), rendering the request's object
/// in place once Pod Security has judged it as received.
fn validate_pod_in_place(policy: &ValidPolicy, request: &mut Request) -> Result<Decision, String> {
    let object = object_of(request)?;
    let is_update = request.operation == Operation::Update;
    if is_update && !changes_images(request.old_object.as_ref(), object) {
        return Ok(Decision::with(Outcome::Allowed));
    }
    let pss = pod_security(policy, object);
    let Some(rendered) = render_request_object(policy, request, VALIDATE) else {
        return validate(policy, request, WorkloadKind::Pod);
    };
    judge_pod(policy, rendered, pss, is_update)
}

/// The `/validate` answer for a pod: `rendered` for the policy's disallowed requests and
/// whether ciguard's mutation is missing, `pss` (the pod as received) for Pod Security.
/// A render error comes before a Pod Security one, as when both were computed in turn.
fn judge_pod(
    policy: &ValidPolicy,
    rendered: Result<merge::Rendered, merge::RenderError>,
    pss: Result<Option<pss::Evaluation>, String>,
    is_update: bool,
) -> Result<Decision, String> {
    let rendered = rendered.map_err(|e| e.to_string())?;
    let requests = rendered.denial.map(|d| d.requests).unwrap_or_default();
    let pss = pss?;
    if !requests.is_empty() || pss.is_some() {
        return Ok(Decision::denied(&Denial { requests, pss }));
    }
    let mut decision = Decision::with(Outcome::Allowed);
    if !is_update && !rendered.changes.is_empty() {
        let message = format!(
            "pod differs from what ciguard policy \"{}\" makes of it in {} place(s); is the ciguard \
             mutating webhook installed?",
            policy.name(),
            rendered.changes.len()
        );
        decision.warn("not-mutated", message);
    }
    Ok(decision)
}

/// What PodSecurity would say of a workload's pods, as warnings.
fn workload_warnings(denial: Option<&Denial>, warnings: Vec<merge::Warning>) -> Decision {
    let mut decision = Decision::with(Outcome::Allowed);
    for w in warnings {
        decision.warn_about(w);
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
    let Some((_, pod)) = workload::admitted_pod(object).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let evaluation = policy.pod_security_of(&pod.metadata, &pod.view(), policy.pss);
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
///
/// Written straight into the body buffer, no intermediate `Value`: the shape and field
/// order of kube-core's `AdmissionResponse` (`uid`, `allowed`, `status`, `patchType`,
/// `warnings`), then `patch`, base64-encoded straight into the same buffer.
pub fn respond(request: &Request, decision: &Decision) -> Result<Vec<u8>, serde_json::Error> {
    use std::io::Write as _;

    use base64::Engine as _;
    let mut out = Vec::with_capacity(RESPONSE_PREFIX.len() + 256 + decision.patch.len() * 192);
    out.extend_from_slice(RESPONSE_PREFIX.as_bytes());
    write_str(&mut out, request.uid.as_str());
    match &decision.message {
        None => out.extend_from_slice(br#","allowed":true,"status":{}"#),
        Some(message) => {
            let (code, reason) = admission_status(decision.outcome);
            write!(out, r#","allowed":false,"status":{{"code":{code}"#).map_err(serde_json::Error::io)?;
            if !message.is_empty() {
                out.extend_from_slice(br#","message":"#);
                write_str(&mut out, message);
            }
            out.extend_from_slice(br#","reason":"#);
            write_str(&mut out, reason);
            out.push(b'}');
        }
    }
    if !decision.patch.is_empty() {
        out.extend_from_slice(br#","patchType":"JSONPatch""#);
    }
    if !decision.warning_items.is_empty() {
        out.extend_from_slice(br#","warnings":"#);
        serde_json::to_writer(&mut out, &decision.client_warnings())?;
    }
    if !decision.patch.is_empty() {
        out.extend_from_slice(br#","patch":""#);
        // Serialized once, then encoded into the body in one pass (a base64 writer fed by
        // serde's many small writes costs more than this one buffer).
        let mut patch = Vec::with_capacity(decision.patch.len() * 96);
        PatchOp::write_all(&decision.patch, &mut patch);
        let at = out.len();
        out.resize(at + base64::encoded_len(patch.len(), true).unwrap_or(0), 0);
        let written = base64::engine::general_purpose::STANDARD
            .encode_slice(&patch, &mut out[at..])
            .map_err(|e| serde_json::Error::io(std::io::Error::other(e)))?;
        out.truncate(at + written);
        out.push(b'"');
    }
    out.extend_from_slice(b"}}");
    Ok(out)
}

/// The answer up to `response.uid`'s value: `parse` accepts only this version and kind.
const RESPONSE_PREFIX: &str =
    r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"#;

#[cfg(test)]
mod tests {
    use crate::json;
    use base64::Engine as _;
    use kube_core::{Resource, admission::AdmissionResponse};
    use rstest::rstest;
    use serde::de::Error as _;

    use super::*;

    /// The answer as it was built before `respond` wrote it by hand, through kube-core's
    /// `AdmissionResponse` and a `Value`: the reference `respond` is compared with.
    fn respond_via_kube_core(request: &Request, decision: &Decision) -> Result<Vec<u8>, serde_json::Error> {
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
        if !decision.warning_items.is_empty() {
            response.warnings = Some(decision.client_warnings());
        }
        let mut review = crate::value::to_value(&response.into_review())?;
        if let (Some(patch), Some(r)) = (patch, review.get_mut("response").and_then(Value::as_object_mut)) {
            let encoded = base64::engine::general_purpose::STANDARD.encode(patch);
            r.insert("patch".into(), Value::String(encoded.into()));
        }
        serde_json::to_vec(&review)
    }

    fn raw(value: Value) -> RawObject {
        crate::value::from_value(value).unwrap()
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

    fn item(code: &'static str, container: Option<&str>, detail: &str) -> WarningItem {
        WarningItem {
            code,
            subject: container.map_or(Subject::Pod, |c| Subject::Container(c.into())),
            detail: detail.into(),
        }
    }

    #[test]
    fn containers_with_the_same_reason_are_one_warning() {
        let items = [
            item("disallowed-id", Some("a"), "runAsUser 0 is not allowed"),
            item("disallowed-id", None, "runAsUser 0 is not allowed"),
            item("disallowed-id", Some("b"), "runAsUser 0 is not allowed"),
            item("disallowed-id", Some("b"), "runAsGroup 0 is not allowed"),
            item("conflicts-with-policy", Some("c"), "runAsUser 0 is not allowed"),
        ];
        assert_eq!(
            group_warnings(&items),
            [
                r#"containers "a", "b": runAsUser 0 is not allowed"#,
                "pod: runAsUser 0 is not allowed",
                r#"container "b": runAsGroup 0 is not allowed"#,
                r#"container "c": runAsUser 0 is not allowed"#,
            ]
        );
    }

    #[test]
    fn a_long_container_list_is_shortened() {
        let names: Vec<String> = (0..300).map(|i| format!("service-{i}")).collect();
        let items: Vec<WarningItem> = names.iter().map(|n| item("x", Some(n), "same")).collect();
        let grouped = group_warnings(&items);
        assert_eq!(grouped.len(), 1);
        assert!(grouped[0].chars().count() <= GROUP_BUDGET, "{}", grouped[0]);
        assert!(grouped[0].ends_with(" more: same"), "{}", grouped[0]);
    }

    #[rstest]
    #[case::fits(vec!["a".repeat(10); 3], 30, 3, "a")]
    #[case::over(vec!["a".repeat(100); 80], 4096, 40, "audit log has every one")]
    #[case::one_huge(vec!["é".repeat(10_000)], 4096, 1, "é…")]
    fn warnings_fit_the_budget(
        #[case] warnings: Vec<String>,
        #[case] budget: usize,
        #[case] len: usize,
        #[case] last_ends: &str,
    ) {
        let out = fit_warnings(warnings, budget);
        let total: usize = out.iter().map(|w| w.chars().count()).sum();
        assert!(total <= budget, "{total} > {budget}");
        assert_eq!(out.len(), len, "{out:?}");
        assert!(out.last().unwrap().ends_with(last_ends), "{out:?}");
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
        let bad: Result<RawObject, _> = crate::value::from_value(json!({"metadata": {"name": 1}}));
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

    fn review_of(uid: &str, body: &str) -> Request {
        let mut value: Value = serde_json::from_str(body).unwrap();
        value["request"]["uid"] = Value::String(uid.into());
        parse(&serde_json::to_vec(&value).unwrap()).unwrap()
    }

    /// A request about a pod, parsed: `operation`, an object of `object_kind` with `spec`,
    /// and, with `old`, an old object with that spec.
    fn pod_request(operation: &str, object_kind: &str, spec: &Value, old: Option<&Value>) -> Request {
        let object = |spec: &Value| {
            json!({"apiVersion": "v1", "kind": object_kind,
                "metadata": {"generateName": "job-", "namespace": "ci"}, "spec": spec})
        };
        let body = json!({
            "apiVersion": API_VERSION, "kind": KIND,
            "request": {
                "uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "operation": operation, "userInfo": {}, "oldObject": old.map(object),
                "object": object(spec),
            }
        });
        parse(&serde_json::to_vec(&body).unwrap()).unwrap()
    }

    fn spec_policy(spec: &str) -> ValidPolicy {
        let text = format!(
            "apiVersion: ciguard.io/v1alpha1\nkind: SecurityPolicy\nmetadata: {{name: p}}\nspec: {spec}\n"
        );
        crate::policy::load::from_str(&text, "p.yaml").unwrap()
    }

    /// The server's in-place answers (`/mutate` and `/validate`) are [`decide`]'s:
    /// patched (at `/validate`: allowed, with the not-mutated warning), nothing to change,
    /// denied, not a pod spec, a spec that cannot be rendered, an object of the wrong
    /// kind; and the request keeps the metadata it was sent with.
    #[rstest]
    #[case::patched(json!({"containers": [{"name": "build", "image": "alpine"}]}), "Pod", Outcome::Patched, Outcome::Allowed)]
    #[case::as_the_policy_makes_it(json!({"securityContext": {"runAsUser": 1000}, "containers": [{"name": "build", "image": "alpine"}]}), "Pod", Outcome::Allowed, Outcome::Allowed)]
    #[case::denied(json!({"containers": [{"name": "build", "image": "alpine", "securityContext": {"runAsUser": 0}}]}), "Pod", Outcome::Denied, Outcome::Denied)]
    #[case::not_a_spec(json!("nope"), "Pod", Outcome::Invalid, Outcome::Invalid)]
    #[case::containers_not_a_list(json!({"containers": {"name": "build"}}), "Pod", Outcome::Invalid, Outcome::Invalid)]
    #[case::wrong_kind(json!({"containers": []}), "ConfigMap", Outcome::Invalid, Outcome::Invalid)]
    fn in_place_decisions_are_decide_s(
        #[case] spec: Value,
        #[case] object_kind: &str,
        #[case] at_mutate: Outcome,
        #[case] at_validate: Outcome,
        #[values(Endpoint::Mutate, Endpoint::Validate)] endpoint: Endpoint,
    ) {
        let policy =
            spec_policy("{onViolation: deny, allowedUsers: ['1000'], pod: {default: {runAsUser: 1000}}}");
        let mut request = pod_request("CREATE", object_kind, &spec, None);
        let decision = decide(endpoint, &policy, &request);
        let outcome = match endpoint {
            Endpoint::Mutate => at_mutate,
            Endpoint::Validate => at_validate,
        };
        assert_eq!(decision.outcome, outcome, "{decision:?}");
        assert_eq!(decide_in_place(endpoint, &policy, &mut request), decision);
        let meta = request.object.as_ref().map(Resource::meta).unwrap();
        assert_eq!(meta.generate_name.as_deref(), Some("job-"));
    }

    /// In-place `/validate` under a Pod Security target: a pod that fails it as received,
    /// one that cannot be rendered and fails it too (the render error is the answer, as
    /// `decide` gives it), an UPDATE that changes no image (allowed, nothing rendered) and
    /// one that does.
    #[rstest]
    #[case::fails_pod_security("CREATE", json!({"containers": [{"name": "b", "image": "a", "securityContext": {"privileged": true}}]}), None, Outcome::Denied)]
    #[case::render_error_first("CREATE", json!({"securityContext": "x", "containers": [{"name": "b", "image": "a", "securityContext": {"privileged": true}}]}), None, Outcome::Invalid)]
    #[case::update_same_images("UPDATE", json!({"containers": [{"name": "b", "image": "a"}]}), Some(json!({"containers": [{"name": "b", "image": "a"}]})), Outcome::Allowed)]
    #[case::update_new_image("UPDATE", json!({"containers": [{"name": "b", "image": "a", "securityContext": {"privileged": true}}]}), Some(json!({"containers": [{"name": "b", "image": "old"}]})), Outcome::Denied)]
    fn in_place_validate_is_decide_s(
        #[case] operation: &str,
        #[case] spec: Value,
        #[case] old: Option<Value>,
        #[case] outcome: Outcome,
    ) {
        let policy = spec_policy("{pss: {level: baseline}}");
        let mut request = pod_request(operation, "Pod", &spec, old.as_ref());
        let decision = decide(Endpoint::Validate, &policy, &request);
        assert_eq!(decision.outcome, outcome, "{decision:?}");
        assert_eq!(
            decide_in_place(Endpoint::Validate, &policy, &mut request),
            decision
        );
    }

    /// The answer written straight into bytes is the one kube-core's types gave, byte for
    /// byte, for every kind of decision (allowed, patched with warnings, denied, invalid).
    #[rstest]
    #[case::gitlab_mutate(Endpoint::Mutate, include_str!("../../tests/data/admission/gitlab-runner-build-pod.json"))]
    #[case::gitlab_validate(Endpoint::Validate, include_str!("../../tests/data/admission/gitlab-runner-build-pod.json"))]
    #[case::woodpecker(Endpoint::Mutate, include_str!("../../tests/data/admission/woodpecker-step-pod.json"))]
    #[case::tekton(Endpoint::Validate, include_str!("../../tests/data/admission/tekton-taskrun-pod.json"))]
    fn answers_are_kube_cores(#[case] endpoint: Endpoint, #[case] body: &str) {
        let policy = ValidPolicy::builtin();
        for uid in ["u-1", "quote\"\\ é \u{1}"] {
            let request = review_of(uid, body);
            let decision = decide(endpoint, &policy, &request);
            let mut decisions = vec![decision.clone()];
            let mut denied = decision.clone();
            denied.outcome = Outcome::Denied;
            denied.patch.clear();
            denied.message = Some("no \"root\" here".into());
            decisions.push(denied);
            decisions.push(Decision::invalid("bad object".into()));
            decisions.push(Decision::invalid(String::new()));
            let mut warned = decision;
            warned.warn("x", "a warning".into());
            decisions.push(warned);
            for d in decisions {
                let new = respond(&request, &d).unwrap();
                let old = respond_via_kube_core(&request, &d).unwrap();
                assert_eq!(
                    String::from_utf8(new).unwrap(),
                    String::from_utf8(old).unwrap(),
                    "{d:?}"
                );
            }
        }
    }
}
