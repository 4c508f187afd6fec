//! The merge engine: applies a [`ValidPolicy`] to a pod or pod template.
//!
//! [`render`] walks the five precedence layers field by field, at pod and container level,
//! applies the allowlists to what the job asked for, keeps the result valid (a lower
//! layer yields where a higher one makes it invalid together), adds the working-directory
//! init container for non-root jobs, and evaluates the result against the policy's Pod
//! Security Standards target. Every write goes through one door (`Writer`), which
//! records the provenance of each resulting field and the JSON Patch from the input.

pub mod layer;

mod exception;
pub(crate) mod fields;
mod validity;
mod workdir;
mod writer;

use std::{borrow::Cow, sync::Arc};

use crate::value::{Map, Value, object};
use serde::Serialize;

pub use layer::{Change, FieldRef, Layer, List, Origin, Provenance, Scope};
pub use writer::PatchOp;

use self::{
    fields::{CONTAINER_FIELDS, Candidates, POD_FIELDS},
    writer::{Target, Writer},
};
use crate::{
    policy::{ContainerKind, OnViolation, PodFacts, Role, ValidPolicy},
    pss::{Evaluation, Level},
    workload::{self, WorkloadKind},
};

/// The name prefix of the init containers ciguard adds; containers with this prefix are
/// ciguard's own and are regenerated on every render.
pub const WORKDIR_INIT_PREFIX: &str = "ciguard-workdir";

/// The name of the emptyDir volume `forcedUser.writableTmp` mounts at `/tmp`.
pub const TMP_VOLUME: &str = "ciguard-tmp";

/// A capability name as `allowedCapabilities` compares it: upper case, without `CAP_`.
fn capability_name(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    match upper.strip_prefix("CAP_") {
        Some(rest) => rest.to_string(),
        None => upper,
    }
}

/// A document that cannot be rendered because it is not a well-formed pod carrier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} \"{name}\": {pointer}: {message}")]
pub struct RenderError {
    /// The object's kind.
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// JSON pointer of the offending value.
    pub pointer: String,
    /// What was expected.
    pub message: String,
}

/// The kind of a warning, stable for scripts and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WarningCode {
    /// A requested user or group ID is not in the allowlist; the request was dropped.
    DisallowedId,
    /// A request cannot stand with a value the policy enforces; the request was dropped.
    ConflictsWithPolicy,
    /// A helper container inherits the job's pod-level user or group; no policy layer
    /// gives it one of its own.
    HelperInheritsJobId,
    /// A capability the job adds is not in `allowedCapabilities`; the request was dropped.
    DisallowedCapability,
    /// A higher policy layer replaced a value the job asked for (a notice: the pod is
    /// allowed; GitLab Runner logs "Overriding user for container …").
    OverriddenByPolicy,
}

impl WarningCode {
    /// Every code.
    pub const ALL: [WarningCode; 5] = [
        WarningCode::DisallowedId,
        WarningCode::ConflictsWithPolicy,
        WarningCode::HelperInheritsJobId,
        WarningCode::DisallowedCapability,
        WarningCode::OverriddenByPolicy,
    ];

    /// The code as text.
    pub fn as_str(self) -> &'static str {
        match self {
            WarningCode::DisallowedId => "disallowed-id",
            WarningCode::ConflictsWithPolicy => "conflicts-with-policy",
            WarningCode::HelperInheritsJobId => "helper-inherits-job-id",
            WarningCode::DisallowedCapability => "disallowed-capability",
            WarningCode::OverriddenByPolicy => "overridden-by-policy",
        }
    }

    /// What the code means.
    pub fn description(self) -> &'static str {
        match self {
            WarningCode::DisallowedId => {
                "a user or group ID the job asked for is not allowed; the request was dropped"
            }
            WarningCode::ConflictsWithPolicy => {
                "a job request cannot stand with a value the policy sets; the request was dropped"
            }
            WarningCode::HelperInheritsJobId => {
                "a helper container inherits the job's pod-level user or group; set helper.default"
            }
            WarningCode::DisallowedCapability => {
                "a capability the job adds is not in allowedCapabilities; the request was dropped"
            }
            WarningCode::OverriddenByPolicy => {
                "a policy layer above the job replaced a value the job asked for (a notice)"
            }
        }
    }

    /// Whether the code is a notice (the policy did what it says) rather than a problem.
    pub fn is_notice(self) -> bool {
        self == WarningCode::OverriddenByPolicy
    }
}

/// A warning about one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// Its kind.
    pub code: WarningCode,
    /// The container it is about; `None` for the pod-level security context.
    pub container: Option<Arc<str>>,
    /// What happened, without the subject: field, value and list. Warnings with the same
    /// code and detail about several containers can be told as one.
    pub detail: String,
}

impl Warning {
    /// The subject as text: `container "build"` or `pod`.
    pub fn subject(&self) -> String {
        subject(self.container.as_deref())
    }

    /// The whole text: `container "build": runAsUser 0 is not allowed by …`.
    pub fn message(&self) -> String {
        format!("{}: {}", self.subject(), self.detail)
    }
}

/// `container "NAME"`, or `pod` for the pod-level security context.
pub(crate) fn subject(container: Option<&str>) -> String {
    match container {
        Some(name) => format!("container \"{name}\""),
        None => "pod".to_string(),
    }
}

/// Why a document is rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Requests the policy rejects (`onViolation: deny`).
    pub requests: Vec<String>,
    /// The failed Pod Security Standards evaluation of the rendered pod.
    pub pss: Option<Evaluation>,
}

impl Denial {
    /// One message: the policy's reasons, then the upstream PodSecurity message.
    pub fn message(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if !self.requests.is_empty() {
            parts.push(format!("violates ciguard policy: {}", self.requests.join("; ")));
        }
        if let Some(e) = &self.pss {
            parts.push(e.message());
        }
        parts.join("; ")
    }
}

/// The result of rendering one document.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The resulting object: the input with the policy's writes, key order kept.
    pub object: Value,
    /// The kind, when the object carries a pod (other objects pass through untouched).
    pub kind: Option<WorkloadKind>,
    /// Warnings, in pod order.
    pub warnings: Vec<Warning>,
    /// Every resulting security-context field and who set it; empty unless
    /// [`Options::provenance`].
    pub provenance: Vec<Provenance>,
    /// Every write, field by field; empty unless [`Options::changes`].
    pub changes: Vec<Change>,
    /// The RFC 6902 patch from the input object to [`Rendered::object`]; empty unless
    /// [`Options::patch`].
    pub patch: Vec<PatchOp>,
    /// Set when the document is rejected.
    pub denial: Option<Denial>,
    /// The code of each rejected request in [`Denial::requests`], in the same order
    /// (`onViolation: deny`), so reports can count them as warnings are counted.
    pub denied_codes: Vec<WarningCode>,
}

impl Rendered {
    /// The provenance as text, one line per resulting field:
    /// `spec.containers[build].securityContext.runAsUser = 1000  <- build.enforced`.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        for p in &self.provenance {
            out.push_str(&format!("{} = {}  <- {}\n", p.field, p.value, p.origin));
        }
        out
    }

    fn untouched(object: Value) -> Self {
        Rendered {
            object,
            kind: None,
            warnings: Vec::new(),
            provenance: Vec::new(),
            changes: Vec::new(),
            patch: Vec::new(),
            denial: None,
            denied_codes: Vec::new(),
        }
    }
}

/// Whether [`render_with`] evaluates the rendered pod against the policy's Pod Security
/// Standards target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodSecurity {
    /// Evaluate it; a failing pod is denied ([`Rendered::denial`]). Every field of the
    /// pod spec is read as its type, so a wrongly typed one is a [`RenderError`]
    /// ([`workload::checked_pod`]).
    Evaluate,
    /// [`Evaluate`](Self::Evaluate) an object the API server has already validated (an
    /// admission request's): only the fields Pod Security judges are read
    /// ([`workload::admitted_pod`]), which gives the same verdict for less work.
    EvaluateAdmitted,
    /// Skip it (a mutating webhook leaves the verdict to the validating one).
    Skip,
}

/// How [`render_with`] renders: whether it evaluates the result against the Pod Security
/// Standards, and which of the three records only some callers read it keeps. The object,
/// its warnings and the denial are always there.
///
/// A [`PodSecurity`] converts into options that keep every record, so
/// `render_with(policy, object, PodSecurity::Skip)` gives a complete [`Rendered`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Whether the rendered pod is evaluated.
    pub pod_security: PodSecurity,
    /// Keep [`Rendered::provenance`] (what `render --explain` and `lint` read); when
    /// `false` it is empty.
    pub provenance: bool,
    /// Keep [`Rendered::changes`] (what `/mutate`'s audit line and `ciguard audit`
    /// report, and `/validate` counts); when `false` it is empty.
    pub changes: bool,
    /// Keep [`Rendered::patch`] (what `/mutate` answers with); when `false` it is empty,
    /// whatever was written.
    pub patch: bool,
}

impl Options {
    /// Options that keep no record: the object, its warnings and the denial only. Name
    /// the records a caller reads on top: `Options { changes: true,
    /// ..Options::without_records(PodSecurity::Skip) }`.
    pub const fn without_records(pod_security: PodSecurity) -> Self {
        Options {
            pod_security,
            provenance: false,
            changes: false,
            patch: false,
        }
    }
}

impl From<PodSecurity> for Options {
    fn from(pod_security: PodSecurity) -> Self {
        Options {
            pod_security,
            provenance: true,
            changes: true,
            patch: true,
        }
    }
}

/// Applies a policy to an object. Objects that carry no pod are returned untouched.
///
/// A job asking for root under a policy that allows only some users is not silently
/// changed: it is denied with the reason, as `ciguard render` and the webhook say it.
///
/// ```
/// use ciguard::{merge::render, policy::load};
///
/// let policy = load::from_str(
///     r#"
/// apiVersion: ciguard.io/v1alpha1
/// kind: SecurityPolicy
/// metadata: {name: team}
/// spec:
///   onViolation: deny
///   allowedUsers: ["1000-1999"]
///   pod:
///     default: {runAsUser: 1000}
///     enforced: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
///   containers:
///     enforced: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
/// "#,
///     "team.yaml",
/// )?;
/// let job = ciguard::json!({
///     "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "job"},
///     "spec": {"containers": [{"name": "build", "image": "alpine"}]}
/// });
/// let rendered = render(&policy, &job)?;
/// assert_eq!(rendered.object["spec"]["securityContext"]["runAsUser"], 1000);
/// assert!(rendered.denial.is_none());
///
/// let root = ciguard::json!({
///     "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "root"},
///     "spec": {"containers": [{"name": "build", "image": "alpine", "securityContext": {"runAsUser": 0}}]}
/// });
/// let denied = render(&policy, &root)?.denial.expect("uid 0 is not in 1000-1999");
/// assert!(denied.message().starts_with("violates ciguard policy"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn render(policy: &ValidPolicy, object: &Value) -> Result<Rendered, RenderError> {
    render_with(policy, object, PodSecurity::Evaluate)
}

/// [`render`], choosing whether the result is evaluated against the Pod Security
/// Standards and which records it keeps ([`Options`]; a [`PodSecurity`] alone keeps them
/// all).
pub fn render_with(
    policy: &ValidPolicy,
    object: &Value,
    options: impl Into<Options>,
) -> Result<Rendered, RenderError> {
    let Some(kind) = WorkloadKind::of(object) else {
        return Ok(Rendered::untouched(object.clone()));
    };
    let input = JobInput::read(policy, object, kind)?;
    render_input(policy, &input, object.clone(), kind, options.into())
}

/// [`render`] of an object the caller owns: the result is written into it, so it is not
/// copied (what `ciguard render`, `audit` and the webhook hold).
pub fn render_owned(policy: &ValidPolicy, object: Value) -> Result<Rendered, RenderError> {
    render_owned_with(policy, object, PodSecurity::Evaluate)
}

/// [`render_owned`] with [`Options`] (as [`render_with`]).
pub fn render_owned_with(
    policy: &ValidPolicy,
    object: Value,
    options: impl Into<Options>,
) -> Result<Rendered, RenderError> {
    let Some(kind) = WorkloadKind::of(&object) else {
        return Ok(Rendered::untouched(object));
    };
    let input = JobInput::read(policy, &object, kind)?;
    render_input(policy, &input, object, kind, options.into())
}

/// A [`RenderError`] about `object`.
fn render_error(object: &Value, pointer: String, message: &str) -> RenderError {
    RenderError {
        kind: object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        name: workload::at(object, &["metadata", "name"])
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        pointer,
        message: message.to_string(),
    }
}

/// What the engine reads from the job's object, copied out of it (the security contexts
/// and a few fields: small), so that the object itself can become the output.
struct JobInput {
    /// `spec.hostUsers`.
    host_users: Option<Value>,
    /// Which of `hostNetwork`, `hostPID`, `hostIPC` are `true`.
    host_namespaces: Vec<&'static str>,
    /// The pod-level security context (empty when absent or null).
    pod: Map<String, Value>,
    /// The containers, in order (ciguard's own init containers left out).
    containers: Vec<Container>,
}

/// A container as the job built it (one of [`JobInput::containers`]).
#[derive(Debug)]
struct Container {
    list: List,
    index: usize,
    name: Arc<str>,
    role: Role,
    image: String,
    /// Its security context (empty when absent or null).
    job: Map<String, Value>,
}

impl JobInput {
    fn read(policy: &ValidPolicy, object: &Value, kind: WorkloadKind) -> Result<Self, RenderError> {
        let err = |pointer: String, message: &str| render_error(object, pointer, message);
        let spec_ptr = kind.spec_pointer();
        let spec = workload::at(object, kind.spec_path())
            .and_then(Value::as_object)
            .ok_or_else(|| err(spec_ptr.into(), "expected the pod spec, an object"))?;
        let labels = workload::pod_labels(object, kind);
        let pod_facts = PodFacts::new(&labels, workload::at(object, kind.spec_path()));
        let empty = Map::new();
        let pod = context_of(spec.get("securityContext"), &empty)
            .ok_or_else(|| err(format!("{spec_ptr}/securityContext"), "expected an object"))?;
        let mut containers = Vec::new();
        for list in [List::InitContainers, List::Containers] {
            let items = match spec.get(list.key()) {
                None | Some(Value::Null) => continue,
                Some(Value::Array(items)) => items,
                Some(_) => {
                    return Err(err(
                        format!("{spec_ptr}/{}", list.key()),
                        "expected a list of containers",
                    ));
                }
            };
            containers.reserve(items.len());
            for (index, item) in items.iter().enumerate() {
                let at = || format!("{spec_ptr}/{}/{index}", list.key());
                let c = item
                    .as_object()
                    .ok_or_else(|| err(at(), "expected a container, an object"))?;
                let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
                if list == List::InitContainers && name.starts_with(WORKDIR_INIT_PREFIX) {
                    continue;
                }
                let job = context_of(c.get("securityContext"), &empty)
                    .ok_or_else(|| err(format!("{}/securityContext", at()), "expected an object"))?;
                let ckind = match list {
                    List::Containers => ContainerKind::Container,
                    List::InitContainers
                        if c.get("restartPolicy").and_then(Value::as_str) == Some("Always") =>
                    {
                        ContainerKind::Sidecar
                    }
                    List::InitContainers => ContainerKind::Init,
                };
                let role = policy.role_of(&pod_facts, name, ckind);
                containers.push(Container {
                    list,
                    index,
                    name: name.into(),
                    role,
                    image: c
                        .get("image")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    job: job.clone(),
                });
            }
        }
        Ok(JobInput {
            host_users: spec.get(fields::HOST_USERS).cloned(),
            host_namespaces: ["hostNetwork", "hostPID", "hostIPC"]
                .into_iter()
                .filter(|k| spec.get(k) == Some(&Value::Bool(true)))
                .collect(),
            pod: pod.clone(),
            containers,
        })
    }
}

/// Renders `out` (the job's object, of kind `kind`, read into `input`) in place.
fn render_input(
    policy: &ValidPolicy,
    input: &JobInput,
    mut out: Value,
    kind: WorkloadKind,
    options: Options,
) -> Result<Rendered, RenderError> {
    let pod_security = options.pod_security;
    let empty = Map::new();
    let job_pod = &input.pod;
    let mut engine = Engine {
        policy,
        warnings: Vec::new(),
        denied: Vec::new(),
        user_namespace: false,
        tmp_mounted: false,
        w: Writer::new(&mut out, kind.spec_path(), options),
    };
    engine.host_users(input);
    let pod_allowed = engine.pod(job_pod);
    let pod_effective = engine
        .w
        .spec()
        .and_then(|s| s.get("securityContext"))
        .cloned()
        .unwrap_or_default();
    let pod_effective = pod_effective.as_object().unwrap_or(&empty);
    for c in &input.containers {
        engine.container(c, job_pod, &pod_allowed, pod_effective);
    }
    if engine.tmp_mounted {
        engine.tmp_volume();
    }
    if policy.workdir_init.enabled {
        engine.workdir();
    }
    let Engine {
        warnings, denied, w, ..
    } = engine;
    let (provenance, changes, patch) = w.finish();

    let pss = if policy.pss.level == Level::Privileged || pod_security == PodSecurity::Skip {
        None
    } else {
        let spec_ptr = kind.spec_pointer();
        let err = |message: &str| render_error(&out, spec_ptr.into(), message);
        let not_valid = |e: workload::PodError| {
            render_error(&out, e.pointer, &format!("not a valid pod spec: {}", e.message))
        };
        let not_a_pod = || err("not a pod carrier");
        let read = match pod_security {
            PodSecurity::EvaluateAdmitted => workload::admitted_pod,
            PodSecurity::Evaluate | PodSecurity::Skip => workload::checked_pod,
        };
        let (kind, mut pod) = read(&out).map_err(not_valid)?.ok_or_else(not_a_pod)?;
        if kind == WorkloadKind::Pod {
            // What the API server defaults before PodSecurity sees the pod.
            pod.apply_pod_defaults();
        }
        Some(policy.pod_security_of(&pod.metadata, &pod.view(), policy.pss)).filter(|e| !e.allowed())
    };
    let (denied_codes, denied): (Vec<WarningCode>, Vec<String>) = denied.into_iter().unzip();
    let denial = (!denied.is_empty() || pss.is_some()).then_some(Denial {
        requests: denied,
        pss,
    });
    Ok(Rendered {
        object: out,
        kind: Some(kind),
        warnings,
        provenance,
        changes,
        patch,
        denial,
        denied_codes,
    })
}

/// A security context as a map (`empty` when absent or null); `None` when it is not an object.
fn context_of<'a>(v: Option<&'a Value>, empty: &'a Map<String, Value>) -> Option<&'a Map<String, Value>> {
    match v {
        None | Some(Value::Null) => Some(empty),
        Some(Value::Object(m)) => Some(m),
        Some(_) => None,
    }
}

struct Engine<'p, 'o> {
    policy: &'p ValidPolicy,
    warnings: Vec<Warning>,
    denied: Vec<(WarningCode, String)>,
    /// Whether the rendered pod has `hostUsers: false`.
    user_namespace: bool,
    /// Whether some container got the `forcedUser.writableTmp` mount.
    tmp_mounted: bool,
    w: Writer<'o>,
}

impl Engine<'_, '_> {
    /// Reports a job request the policy does not allow.
    fn disallowed(&mut self, code: WarningCode, container: Option<&Arc<str>>, detail: String) {
        match self.policy.spec().on_violation {
            OnViolation::Warn => self.warnings.push(Warning {
                code,
                container: container.cloned(),
                detail: format!("{detail}; the request was dropped"),
            }),
            OnViolation::Deny => self
                .denied
                .push((code, format!("{}: {detail}", subject(container.map(|c| &**c))))),
        }
    }

    /// Applies the allowlists to the job's request for `field` at `scope`, when it would win.
    fn check_request(
        &mut self,
        c: &mut Candidates<'_>,
        container: Option<&Arc<str>>,
        field: &str,
        scope: Scope,
    ) {
        // Most fields have no candidate at all: nothing to check, no list to find.
        let Some(top) = c.winner() else { return };
        let Some((name, list)) = validity::list_for(self.policy, field) else {
            return;
        };
        // Woodpecker's rule (SPEC §5): uid/gid 0 of a user namespace is not root on the node.
        let root_in_user_namespace = self.user_namespace && self.policy.spec().allow_root_in_user_namespace;
        // A request for a value the policy itself offers at some layer is within what the
        // admin allows (this also keeps a re-render of a rendered pod quiet).
        if top.origin != Origin::new(Layer::Job, scope)
            || c.0.iter().any(|x| !x.is_job() && x.value == top.value)
        {
            return;
        }
        let ids: Vec<Value> = match top.value.as_ref() {
            Value::Array(ids) => ids.clone(),
            single => vec![single.clone()],
        };
        let (ok, bad): (Vec<Value>, Vec<Value>) = ids.into_iter().partition(|id| {
            validity::id_allowed(list, id) || (root_in_user_namespace && id.as_i64() == Some(0))
        });
        if bad.is_empty() {
            return;
        }
        let listed = validity::describe(name, list);
        for id in &bad {
            self.disallowed(
                WarningCode::DisallowedId,
                container,
                format!("{field} {id} is not allowed by {listed}"),
            );
        }
        match c.0.last_mut() {
            Some(top) if top.value.is_array() && !ok.is_empty() => top.value = Cow::Owned(Value::Array(ok)),
            _ => {
                c.drop_winner();
            }
        }
    }

    /// A job's pod-level value for a field that `containers.enforced` sets to another value
    /// never reaches a container, but upstream Pod Security still judges it (a pod-level
    /// `runAsNonRoot: false` fails `restricted` whatever the containers say): the request
    /// cannot stand with the enforced value and is treated as disallowed (SPEC §2 Validity).
    fn check_against_containers_enforced(&mut self, c: &mut Candidates<'_>, field: &str) {
        if !fields::is_shared(field) {
            return;
        }
        let Some(top) = c.winner() else { return };
        if top.origin != Origin::new(Layer::Job, Scope::Pod) {
            return;
        }
        let Some(enforced) = self
            .policy
            .containers
            .enforced
            .get(field)
            .filter(|v| !v.is_null())
        else {
            return;
        };
        if *enforced == *top.value {
            return;
        }
        let detail = format!(
            "{field} {} cannot stand with {field} {enforced} from containers.enforced (every container runs with the enforced value, but Pod Security judges the pod-level one)",
            top.value
        );
        self.disallowed(WarningCode::ConflictsWithPolicy, None, detail);
        c.drop_winner();
    }

    /// Tells that a policy layer above the job replaced what the job asked for: the
    /// job's request at this level (the pod's context for the pod, the container's own for
    /// a container) lost to a policy value that differs from it. A request that was dropped
    /// (disallowed, yielding) has its own warning already. A pod-level request is told
    /// for the pod only: where a role's value replaces it in some containers, the pod keeps
    /// it, and a rendered pod that still carries it must render again without a notice.
    fn notice_override(&mut self, c: &Candidates<'_>, container: Option<&Arc<str>>, field: &str) {
        let Some(winner) = c.winner().filter(|w| !w.is_job()) else {
            return;
        };
        let scope = if container.is_some() {
            Scope::Containers
        } else {
            Scope::Pod
        };
        let Some(asked) = c.0.iter().find(|x| x.origin == Origin::new(Layer::Job, scope)) else {
            return;
        };
        if asked.value == winner.value {
            return;
        }
        self.warnings.push(Warning {
            code: WarningCode::OverriddenByPolicy,
            container: container.cloned(),
            detail: format!(
                "{field}: the job asked for {}, the policy sets {} from {}",
                asked.value, winner.value, winner.origin
            ),
        });
    }

    /// Resolves the pod-level context; returns the job's allowed requests.
    fn pod(&mut self, job_pod: &Map<String, Value>) -> Map<String, Value> {
        let mut allowed = job_pod.clone();
        for &field in &POD_FIELDS {
            let decided = {
                let mut c = fields::pod_candidates(self.policy, &allowed, field);
                c.absorb_echo(Scope::Pod);
                self.check_request(&mut c, None, field, Scope::Pod);
                self.check_against_containers_enforced(&mut c, field);
                self.notice_override(&c, None, field);
                let job =
                    c.0.iter()
                        .find(|c| c.is_job())
                        .map(|c| c.value.clone().into_owned());
                let winner = c.winner().map(|w| (w.value.as_ref(), w.origin));
                // Nothing to write or record when no layer sets the field and the pod
                // does not have it (the output holds the job's context until the field
                // is written: each is written once).
                if winner.is_some() || job_pod.contains_key(field) {
                    let fref = FieldRef {
                        container: None,
                        field: Cow::Borrowed(field),
                    };
                    self.w.put(fref, Target::Pod, &[field], winner);
                }
                job
            };
            match decided {
                Some(v) => {
                    allowed.insert(field.into(), v);
                }
                None => {
                    allowed.remove(field);
                }
            }
        }
        allowed
    }

    /// Resolves one container's context.
    fn container(
        &mut self,
        c: &Container,
        job_pod: &Map<String, Value>,
        pod_allowed: &Map<String, Value>,
        pod_effective: &Map<String, Value>,
    ) {
        let mut cands: [Candidates<'_>; CONTAINER_FIELDS.len()] = Default::default();
        let excepted = crate::policy::exception::applicable(self.policy, c.role, &c.image);
        for (i, &field) in CONTAINER_FIELDS.iter().enumerate() {
            let mut cs = fields::container_candidates(self.policy, c.role, &c.job, pod_allowed, field);
            exception::grant(&excepted, &c.job, job_pod, c.role, field, &mut cs);
            cs.absorb_echo(Scope::Containers);
            self.check_request(&mut cs, Some(&c.name), field, Scope::Containers);
            cands[i] = cs;
        }
        let mut add = fields::add_candidates(self.policy, c.role, &c.job);
        exception::grant(&excepted, &c.job, job_pod, c.role, "capabilities.add", &mut add);
        self.check_capabilities(&mut add, &c.name);
        self.settle_conflicts(&mut cands, &mut add, &c.name);
        for (i, &field) in CONTAINER_FIELDS.iter().enumerate() {
            self.notice_override(&cands[i], Some(&c.name), field);
        }
        self.notice_override(&add, Some(&c.name), "capabilities.add");

        let target = Target::Container(c.list, c.index);
        let fref = |field: &'static str| FieldRef {
            container: Some((c.list, c.name.clone())),
            field: Cow::Borrowed(field),
        };
        for (i, &field) in CONTAINER_FIELDS.iter().enumerate() {
            let current = c.job.get(field);
            let desired = match cands[i].winner() {
                None => {
                    if c.role == Role::Helper
                        && fields::is_job_identity(field)
                        && pod_effective.contains_key(field)
                    {
                        self.warnings.push(Warning {
                            code: WarningCode::HelperInheritsJobId,
                            container: Some(c.name.clone()),
                            detail: format!(
                                "inherits the job's pod-level {field} {}; set helper.default.{field} to give it its own",
                                pod_effective[field]
                            ),
                        });
                    }
                    None
                }
                // Inherited from the pod: no container-level value needed, unless the pod
                // ends up with another value.
                Some(w)
                    if matches!(
                        w.origin,
                        Origin::Layer {
                            scope: Scope::Pod,
                            ..
                        }
                    ) =>
                {
                    if pod_effective.get(field) == Some(w.value.as_ref()) && current != Some(w.value.as_ref())
                    {
                        None
                    } else {
                        Some((w.value.as_ref(), w.origin))
                    }
                }
                Some(w) => Some((w.value.as_ref(), w.origin)),
            };
            // As for the pod: a field nobody sets and the container lacks is no write.
            if desired.is_some() || current.is_some() {
                self.w.put(fref(field), target, &[field], desired);
            }
        }
        let capability = |key: &str| c.job.get("capabilities").and_then(|caps| caps.get(key));
        let drop = fields::drop_union(self.policy, c.role, &c.job).map(|(list, o)| (Value::Array(list), o));
        if drop.is_some() || capability("drop").is_some() {
            self.w.put(
                fref("capabilities.drop"),
                target,
                &["capabilities", "drop"],
                drop.as_ref().map(|(v, o)| (v, *o)),
            );
        }
        let add = add.winner().map(|w| (w.value.as_ref(), w.origin));
        if add.is_some() || capability("add").is_some() {
            self.w
                .put(fref("capabilities.add"), target, &["capabilities", "add"], add);
        }
        let uid_slot = CONTAINER_FIELDS.iter().position(|f| *f == "runAsUser");
        let forced = uid_slot
            .and_then(|i| cands[i].winner())
            .is_some_and(|w| !w.is_job());
        if forced {
            self.forced_user(c);
        }
    }

    /// `spec.hostUsers`, with the five-layer precedence at pod level. `hostUsers: false`
    /// cannot stand with `hostNetwork`, `hostPID` or `hostIPC` (the API server rejects the
    /// pod): a default yields, an enforced value makes the job's host namespace a
    /// disallowed request.
    fn host_users(&mut self, input: &JobInput) {
        let field = fields::HOST_USERS;
        let mut c = Candidates::default();
        c.push(
            Origin::new(Layer::Default, Scope::Pod),
            self.policy.pod.default.get(field),
        );
        c.push(Origin::new(Layer::Job, Scope::Pod), input.host_users.as_ref());
        c.push(
            Origin::new(Layer::Enforced, Scope::Pod),
            self.policy.pod.enforced.get(field),
        );
        c.absorb_echo(Scope::Pod);
        let host_namespaces = &input.host_namespaces;
        if !host_namespaces.is_empty() {
            // A default `false` yields; the job's own pair is the API server's to judge.
            while c
                .winner()
                .is_some_and(|w| *w.value == Value::Bool(false) && w.origin.layer() == Some(Layer::Default))
            {
                c.drop_winner();
            }
            if let Some(w) = c
                .winner()
                .filter(|w| *w.value == Value::Bool(false) && !w.is_job())
            {
                let origin = w.origin;
                for &key in host_namespaces {
                    let detail = format!(
                        "{key} true cannot stand with hostUsers false from {origin} (the API server rejects host namespaces in a user namespace)"
                    );
                    self.disallowed(WarningCode::ConflictsWithPolicy, None, detail);
                    if self.policy.spec().on_violation == OnViolation::Warn {
                        let fref = FieldRef {
                            container: None,
                            field: Cow::Borrowed(key),
                        };
                        self.w.put(fref, Target::Spec, &[key], None);
                    }
                }
            }
        }
        self.notice_override(&c, None, field);
        let winner = c.winner().map(|w| (w.value.as_ref(), w.origin));
        self.user_namespace = winner.is_some_and(|(v, _)| *v == Value::Bool(false));
        let fref = FieldRef {
            container: None,
            field: Cow::Borrowed(field),
        };
        self.w.put(fref, Target::Spec, &[field], winner);
    }

    /// `spec.allowedCapabilities`: the names of the job's `capabilities.add` outside the
    /// list (or added by no policy layer) are a disallowed request; policy layers bypass it.
    fn check_capabilities(&mut self, add: &mut Candidates<'_>, container: &Arc<str>) {
        let Some(allowed) = &self.policy.spec().allowed_capabilities else {
            return;
        };
        let Some(top) = add.winner().filter(|t| t.is_job()) else {
            return;
        };
        let Some(list) = top.value.as_array() else { return };
        let allowed: Vec<String> = allowed.iter().map(|a| capability_name(a)).collect();
        let offered: Vec<String> = add
            .0
            .iter()
            .filter(|c| !c.is_job())
            .filter_map(|c| c.value.as_array())
            .flatten()
            .filter_map(Value::as_str)
            .map(capability_name)
            .collect();
        let (ok, bad): (Vec<Value>, Vec<Value>) = list.iter().cloned().partition(|cap| {
            cap.as_str().is_some_and(|s| {
                let n = capability_name(s);
                allowed.contains(&n) || offered.contains(&n)
            })
        });
        if bad.is_empty() {
            return;
        }
        let listed = format!("allowedCapabilities [{}]", allowed.join(", "));
        for cap in &bad {
            self.disallowed(
                WarningCode::DisallowedCapability,
                Some(container),
                format!("capabilities.add {cap} is not allowed by {listed}"),
            );
        }
        match add.0.last_mut() {
            Some(top) if !ok.is_empty() => top.value = Cow::Owned(Value::Array(ok)),
            _ => {
                add.drop_winner();
            }
        }
    }

    /// `spec.forcedUser` for a container whose uid the policy set: `HOME` unless the
    /// container's `env` has it, the `ciguard-tmp` mount at `/tmp` unless something is
    /// mounted there. What the container has is never replaced.
    fn forced_user(&mut self, c: &Container) {
        let Some(forced) = &self.policy.spec().forced_user else {
            return;
        };
        let target = Target::ContainerSpec(c.list, c.index);
        let fref = |field: String| FieldRef {
            container: Some((c.list, c.name.clone())),
            field: Cow::Owned(field),
        };
        if let Some(home) = &forced.home {
            let item = object([("name", "HOME".into()), ("value", home.as_str().into())]);
            self.w
                .insert_named(fref("env[HOME]".into()), target, "env", item, Origin::ForcedUser);
        }
        if forced.writable_tmp {
            let container = self
                .w
                .spec()
                .and_then(|s| s.get(c.list.key()))
                .and_then(|l| l.get(c.index));
            let taken = container
                .and_then(|x| x.get("volumeMounts"))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|m| {
                    m.get("name").and_then(Value::as_str) != Some(TMP_VOLUME)
                        && m.get("mountPath")
                            .and_then(Value::as_str)
                            .is_some_and(|p| p.trim_end_matches('/') == "/tmp")
                });
            if !taken {
                let item = object([("name", TMP_VOLUME.into()), ("mountPath", "/tmp".into())]);
                self.w.insert_named(
                    fref(format!("volumeMounts[{TMP_VOLUME}]")),
                    target,
                    "volumeMounts",
                    item,
                    Origin::ForcedUser,
                );
                self.tmp_mounted = true;
            }
        }
    }

    /// The pod volume behind the `forcedUser.writableTmp` mounts.
    fn tmp_volume(&mut self) {
        let fref = FieldRef {
            container: None,
            field: Cow::Owned(format!("volumes[{TMP_VOLUME}]")),
        };
        let item = object([("name", TMP_VOLUME.into()), ("emptyDir", object([]))]);
        self.w
            .insert_named(fref, Target::Spec, "volumes", item, Origin::ForcedUser);
    }

    /// Makes a container's values valid together: while a conflict is active, the value of
    /// the strongest loser yields (a job request is reported as disallowed), so no value
    /// yields to one that later yields itself.
    fn settle_conflicts<'a>(
        &mut self,
        cands: &mut [Candidates<'a>; CONTAINER_FIELDS.len()],
        add: &mut Candidates<'a>,
        container: &Arc<str>,
    ) {
        let rules = validity::conflicts();
        let slot = |f: &str| CONTAINER_FIELDS.iter().position(|x| *x == f);
        let pair = |rule: &validity::Conflict| (slot(rule.a), slot(rule.b).unwrap_or(0));
        loop {
            let mut next: Option<(usize, validity::Active)> = None;
            for (ri, rule) in rules.iter().enumerate() {
                let (a_at, b_at) = pair(rule);
                let a = a_at.map_or(&*add, |i| &cands[i]);
                if let Some(act) = validity::active(rule, a, &cands[b_at])
                    && next.is_none_or(|(_, n)| act.loser_rank > n.loser_rank)
                {
                    next = Some((ri, act));
                }
            }
            let Some((ri, act)) = next else { return };
            let rule = &rules[ri];
            let (a_at, b_at) = pair(rule);
            let mut b = std::mem::take(&mut cands[b_at]);
            let mut a = match a_at {
                Some(i) => std::mem::take(&mut cands[i]),
                None => std::mem::take(add),
            };
            let (loser, winner) = if act.loser_is_a {
                (a.winner(), b.winner())
            } else {
                (b.winner(), a.winner())
            };
            if let (Some(l), Some(w)) = (loser, winner)
                && l.is_job()
            {
                let (field, against) = if act.loser_is_a {
                    (rule.a, rule.b)
                } else {
                    (rule.b, rule.a)
                };
                let detail = format!(
                    "{field} {} cannot stand with {against} {} from {} ({})",
                    l.value, w.value, w.origin, rule.why
                );
                self.disallowed(WarningCode::ConflictsWithPolicy, Some(container), detail);
            }
            let against = winner.map(|w| w.origin);
            if let Some(against) = against {
                validity::yield_top(rule, &mut a, &mut b, act.loser_is_a, against);
            }
            match a_at {
                Some(i) => cands[i] = a,
                None => *add = a,
            }
            cands[b_at] = b;
            if against.is_none() {
                return;
            }
        }
    }

    /// Adds (or regenerates) the working-directory init containers.
    fn workdir(&mut self) {
        let Some(spec) = self.w.spec() else { return };
        let plan = workdir::plan(self.policy, spec);
        self.w.replace_generated(WORKDIR_INIT_PREFIX, plan);
    }
}
