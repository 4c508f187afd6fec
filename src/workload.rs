//! Input documents: files, directories, stdin; multi-document YAML, JSON, `v1/List`;
//! and the pod template inside each kind that carries one.

use std::{
    collections::{BTreeMap, HashSet},
    io::Read,
    path::{Path, PathBuf},
};

use crate::value::Value;
use k8s_openapi::{
    api::core::v1::{
        self as core, ContainerPort, Lifecycle, PodOS, PodSecurityContext, PodSpec, Probe, SecurityContext,
    },
    apimachinery::pkg::api::resource::Quantity,
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use serde::Deserialize;

use crate::{
    error::Location,
    pss::view::{ContainerList, ContainerView, PodView, Sources, VolumeView},
    source::{self, SyntaxError},
};

/// Errors reading input documents.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// A file or directory could not be read.
    #[error("failed to read '{path}'")]
    Read {
        /// The path as given.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid YAML or JSON.
    #[error(transparent)]
    Syntax(#[from] SyntaxError),
    /// A document is not a Kubernetes object.
    #[error("{input}: document {index}: {message}")]
    Invalid {
        /// The input the document came from.
        input: String,
        /// The document's position in its input.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// The inputs hold no document at all.
    #[error("no objects passed: the inputs hold no Kubernetes objects")]
    NoObjects,
}

/// One document of an input, in input order.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The file it came from, as given on the command line (`-` for stdin).
    pub source: String,
    /// Its position in the source (items of a `v1/List` count one by one).
    pub index: usize,
    /// Where the object is in the source's text (`None`: it has no text, as the pods
    /// `audit --cluster` lists).
    pub place: Option<Place>,
    /// The object, with key order kept.
    pub object: Value,
}

/// Where an object is in its input's text: which of its documents (counted as
/// [`source::documents`] counts them, empty and `null` ones left out) and, for an item
/// of a `v1/List`, its JSON pointer in that document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    /// The document.
    pub document: usize,
    /// The object's pointer in the document: `""`, or `/items/3` for a List's item.
    pub pointer: String,
}

impl Document {
    /// Where the value at `pointer` in the object is in its input file (a JSON pointer, as
    /// [`PodError`] and [`crate::merge::RenderError`] name the value they refuse), or its
    /// nearest ancestor that the text has. The file is read again, so this is for error
    /// messages only. `None` for stdin and for objects with no text.
    pub fn locate(&self, pointer: &str) -> Option<Location> {
        let place = self.place.as_ref()?;
        if self.source == "-" {
            return None;
        }
        let text = decode(std::fs::read(&self.source).ok()?).ok()?;
        let (line, col) = source::position(&text, place.document, &format!("{}{pointer}", place.pointer))?;
        Some(Location {
            file: self.source.clone(),
            line,
            col,
        })
    }

    /// The object's `kind`, or `""`.
    pub fn kind(&self) -> &str {
        self.object.get("kind").and_then(Value::as_str).unwrap_or("")
    }

    /// The object's `metadata.name`, or `""`.
    pub fn name(&self) -> &str {
        self.object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The object's `metadata.namespace`, if set.
    pub fn namespace(&self) -> Option<&str> {
        self.object.pointer("/metadata/namespace").and_then(Value::as_str)
    }
}

/// The kinds that carry a pod, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    /// `v1/Pod`
    Pod,
    /// `v1/PodTemplate`
    PodTemplate,
    /// `v1/ReplicationController`
    ReplicationController,
    /// `apps/v1/Deployment`
    Deployment,
    /// `apps/v1/ReplicaSet`
    ReplicaSet,
    /// `apps/v1/StatefulSet`
    StatefulSet,
    /// `apps/v1/DaemonSet`
    DaemonSet,
    /// `batch/v1/Job`
    Job,
    /// `batch/v1/CronJob`
    CronJob,
}

impl WorkloadKind {
    /// The kind of an object, when it carries a pod.
    pub fn of(object: &Value) -> Option<Self> {
        let kind = object.get("kind")?.as_str()?;
        let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        Self::from_type(api_version.rsplit_once('/').map_or("", |(g, _)| g), kind)
    }

    /// The kind for an API group (`""` for core) and kind name, when it carries a pod.
    pub fn from_type(group: &str, kind: &str) -> Option<Self> {
        Some(match (group, kind) {
            ("", "Pod") => Self::Pod,
            ("", "PodTemplate") => Self::PodTemplate,
            ("", "ReplicationController") => Self::ReplicationController,
            ("apps", "Deployment") => Self::Deployment,
            ("apps", "ReplicaSet") => Self::ReplicaSet,
            ("apps", "StatefulSet") => Self::StatefulSet,
            ("apps", "DaemonSet") => Self::DaemonSet,
            ("batch", "Job") => Self::Job,
            ("batch", "CronJob") => Self::CronJob,
            _ => return None,
        })
    }

    /// JSON pointer of the object that holds the pod's `metadata` and `spec`
    /// (`""` for a Pod itself).
    pub fn template_pointer(self) -> &'static str {
        match self {
            Self::Pod => "",
            Self::PodTemplate => "/template",
            Self::CronJob => "/spec/jobTemplate/spec/template",
            _ => "/spec/template",
        }
    }

    /// JSON pointer of the pod's `metadata`.
    pub fn metadata_pointer(self) -> &'static str {
        match self {
            Self::Pod => "/metadata",
            Self::PodTemplate => "/template/metadata",
            Self::CronJob => "/spec/jobTemplate/spec/template/metadata",
            _ => "/spec/template/metadata",
        }
    }

    /// The keys from the object to the pod's `spec`.
    pub fn spec_path(self) -> &'static [&'static str] {
        match self {
            Self::Pod => &["spec"],
            Self::PodTemplate => &["template", "spec"],
            Self::CronJob => &["spec", "jobTemplate", "spec", "template", "spec"],
            _ => &["spec", "template", "spec"],
        }
    }

    /// The keys from the object to the pod's `metadata`.
    pub fn metadata_path(self) -> &'static [&'static str] {
        match self {
            Self::Pod => &["metadata"],
            Self::PodTemplate => &["template", "metadata"],
            Self::CronJob => &["spec", "jobTemplate", "spec", "template", "metadata"],
            _ => &["spec", "template", "metadata"],
        }
    }

    /// JSON pointer of the pod's `spec`.
    pub fn spec_pointer(self) -> &'static str {
        match self {
            Self::Pod => "/spec",
            Self::PodTemplate => "/template/spec",
            Self::CronJob => "/spec/jobTemplate/spec/template/spec",
            _ => "/spec/template/spec",
        }
    }
}

/// The typed pod of an object: its metadata and spec as the API server would read them.
#[derive(Debug, Clone, Default)]
pub struct TypedPod {
    /// The pod's (or template's) metadata.
    pub metadata: ObjectMeta,
    /// The pod's (or template's) spec.
    pub spec: PodSpec,
}

/// The value at a path of object keys (no JSON-pointer unescaping, no allocation).
pub fn at<'v>(mut v: &'v Value, keys: &[&str]) -> Option<&'v Value> {
    for k in keys {
        v = v.get(k)?;
    }
    Some(v)
}

/// The labels of the pod an object carries (a Pod's own, a workload's template's); values
/// that are not strings are left out.
pub fn pod_labels(object: &Value, kind: WorkloadKind) -> BTreeMap<String, String> {
    at(object, kind.metadata_path())
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The value at a path of object keys, mutably.
pub fn at_mut<'v>(mut v: &'v mut Value, keys: &[&str]) -> Option<&'v mut Value> {
    for k in keys {
        v = v.get_mut(k)?;
    }
    Some(v)
}

/// The metadata fields ciguard reads: name, generateName, namespace, uid, labels,
/// annotations. The rest (managedFields, ownerReferences, …) is skipped rather than parsed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SlimMeta {
    name: Option<String>,
    generate_name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    labels: Option<std::collections::BTreeMap<String, String>>,
    annotations: Option<std::collections::BTreeMap<String, String>>,
}

/// Reads an object's `metadata` with only the fields ciguard uses (name, generateName,
/// namespace, uid, labels, annotations); absent or null metadata is empty.
pub fn slim_metadata(metadata: Option<&Value>) -> Result<ObjectMeta, serde_json::Error> {
    let Some(m) = metadata.filter(|m| !m.is_null()) else {
        return Ok(ObjectMeta::default());
    };
    let m = SlimMeta::deserialize(m)?;
    Ok(ObjectMeta {
        name: m.name,
        generate_name: m.generate_name,
        namespace: m.namespace,
        uid: m.uid,
        labels: m.labels,
        annotations: m.annotations,
        ..ObjectMeta::default()
    })
}

/// Reads the pod of an object that carries one. `Ok(None)` for objects that carry none.
/// The metadata holds only what [`slim_metadata`] reads.
///
/// Every field of the spec is read into k8s-openapi's `PodSpec`, so a wrongly typed field
/// anywhere is an error. [`checked_pod`] refuses the same without building the `PodSpec`
/// (what `render` and `check` use); for objects the API server has already validated,
/// [`admitted_pod`] reads only what Pod Security judges.
pub fn typed_pod(object: &Value) -> Result<Option<(WorkloadKind, TypedPod)>, PodError> {
    let pod = pod_with::<PodSpec, _>(object, PodSpec::deserialize)?;
    Ok(pod.map(|(kind, metadata, spec)| (kind, TypedPod { metadata, spec })))
}

/// [`typed_pod`] of an object the API server has already validated (an admission
/// request's object): only the fields Pod Security and the policy's exceptions read are
/// read (`hostNetwork`, `hostPID`, `hostIPC`, `hostUsers`, `os`, the pod's
/// `securityContext`, `volumes`, and each container's `name`, `image`, `restartPolicy`,
/// `securityContext`, `ports`, probes and `lifecycle`), each as its k8s-openapi type, into
/// [`AdmittedPod`], which the checks read through its [`view`](AdmittedPod::view) without
/// the full typed spec being built. A wrongly typed field among those is still an error;
/// one elsewhere is not seen (the API server refuses it before admission).
///
/// Every check judges it as it judges [`typed_pod`]'s: tests/pss_fixtures.rs
/// (`slim_reads_give_the_typed_verdict`) compares the two over every upstream
/// fixture, at every level and version.
pub fn admitted_pod(object: &Value) -> Result<Option<(WorkloadKind, AdmittedPod)>, PodError> {
    let pod = pod_with::<AdmittedSpec, _>(object, AdmittedSpec::deserialize)?;
    Ok(pod.map(|(kind, metadata, spec)| (kind, AdmittedPod { metadata, spec })))
}

/// The kind, metadata and spec (as `read_spec` reads it) of an object's pod. A spec that
/// `read_spec` refuses is read again as a `Judge` (a type that refuses what it refuses)
/// to say where: the message names the field (`/spec/containers/0/ports/0/hostPort:
/// invalid type: …`), not only the spec.
fn pod_with<'v, Judge: Deserialize<'v>, S>(
    object: &'v Value,
    read_spec: impl FnOnce(&'v Value) -> Result<S, serde_json::Error>,
) -> Result<Option<(WorkloadKind, ObjectMeta, S)>, PodError> {
    let Some(kind) = WorkloadKind::of(object) else {
        return Ok(None);
    };
    let metadata = slim_metadata(at(object, kind.metadata_path())).map_err(|e| PodError {
        pointer: kind.metadata_pointer().to_string(),
        message: e.to_string(),
    })?;
    let spec = match at(object, kind.spec_path()) {
        None | Some(Value::Null) => {
            return Err(PodError {
                pointer: kind.spec_pointer().to_string(),
                message: "missing pod spec".to_string(),
            });
        }
        Some(s) => read_spec(s).map_err(|e| where_refused::<Judge>(s, kind.spec_pointer(), &e))?,
    };
    Ok(Some((kind, metadata, spec)))
}

/// Why the pod of an object cannot be read: where, and what was expected there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pointer}: {message}")]
pub struct PodError {
    /// The JSON pointer of what was refused: the field (`/spec/tolerations`), or the
    /// metadata or spec as a whole.
    pub pointer: String,
    /// What was refused and what was expected (`invalid type: string "x", expected a
    /// sequence`), or `missing pod spec`.
    pub message: String,
}

/// The [`PodError`] of a spec (at `pointer`) that a read refused with `error`: the pointer
/// goes down to the field `Judge` refuses, and the message is its.
fn where_refused<'v, Judge: Deserialize<'v>>(
    spec: &'v Value,
    pointer: &str,
    error: &serde_json::Error,
) -> PodError {
    let Err(e) = serde_path_to_error::deserialize::<_, Judge>(spec) else {
        // Not expected: `Judge` refuses what the read refused.
        return PodError {
            pointer: pointer.to_string(),
            message: error.to_string(),
        };
    };
    let mut at = pointer.to_string();
    for segment in e.path().iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => {
                at.push('/');
                at.push_str(itoa::Buffer::new().format(*index));
            }
            serde_path_to_error::Segment::Map { key } => {
                at.push('/');
                at.push_str(&source::escape(key));
            }
            serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => {}
        }
    }
    PodError {
        pointer: at,
        message: e.inner().to_string(),
    }
}

/// The pod of an admitted object as [`admitted_pod`] reads it: its metadata, and of its
/// spec what Pod Security and the policy's exceptions read.
#[derive(Debug)]
pub struct AdmittedPod {
    /// The pod's (or template's) metadata, as [`slim_metadata`] reads it.
    pub metadata: ObjectMeta,
    spec: AdmittedSpec,
}

impl AdmittedPod {
    /// What the checks read of the pod.
    pub fn view(&self) -> PodView<'_> {
        let s = &self.spec;
        let containers = PodView::visiting_order(
            s.init_containers
                .iter()
                .flatten()
                .map(|c| c.view(ContainerList::Init)),
            s.containers
                .iter()
                .flatten()
                .map(|c| c.view(ContainerList::Regular)),
            s.ephemeral_containers
                .iter()
                .flatten()
                .map(|c| c.view(ContainerList::Ephemeral)),
        );
        PodView {
            host_network: s.host_network,
            host_pid: s.host_pid,
            host_ipc: s.host_ipc,
            host_users: s.host_users,
            os_name: s.os.as_ref().map(|os| os.name.as_str()),
            security_context: s.security_context.as_deref(),
            volumes: s
                .volumes
                .iter()
                .flatten()
                .map(|v| VolumeView {
                    name: v.name.as_deref().unwrap_or_default(),
                    sources: v.sources,
                })
                .collect(),
            containers,
        }
    }

    /// [`pss::apply_pod_defaults`](crate::pss::apply_pod_defaults) on what was read: with
    /// `hostNetwork: true`, every container and init container port without a `hostPort`
    /// gets `hostPort = containerPort`.
    pub fn apply_pod_defaults(&mut self) {
        let s = &mut self.spec;
        let containers = s.containers.iter_mut().chain(s.init_containers.iter_mut());
        let ports = containers.flatten().flat_map(|c| c.ports.iter_mut().flatten());
        crate::pss::default_host_ports(s.host_network, ports);
    }
}

/// The fields of a pod spec that Pod Security's checks (`pss::checks`, `pss::visit`) and
/// the policy's exceptions (`policy::exception::exemptions`) read, each read as its
/// k8s-openapi type; every other field is skipped unread. Absent and `null` are alike, as
/// in k8s-openapi's own reads. The large members are boxed, and a volume keeps only which
/// sources it sets: moving kilobyte-sized k8s-openapi structs (a `Container` is over 2 kB,
/// a `Volume` over 3 kB) was half the cost of the read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", expecting = "PodSpec")]
struct AdmittedSpec {
    host_network: Option<bool>,
    #[serde(rename = "hostPID")]
    host_pid: Option<bool>,
    #[serde(rename = "hostIPC")]
    host_ipc: Option<bool>,
    host_users: Option<bool>,
    os: Option<PodOS>,
    security_context: Option<Box<PodSecurityContext>>,
    volumes: Option<Vec<AdmittedVolume>>,
    init_containers: Option<Vec<AdmittedContainer>>,
    containers: Option<Vec<AdmittedContainer>>,
    ephemeral_containers: Option<Vec<AdmittedEphemeralContainer>>,
}

/// The fields of a container (`$name`, read as a `$expecting`) that [`AdmittedSpec`]
/// reads: the checks' (`pss::view::ContainerView`) and the exceptions' (`image`,
/// `restartPolicy`).
macro_rules! admitted_container {
    ($name:ident, $expecting:literal) => {
        #[doc = concat!("The fields of a `", $expecting, "` that [`AdmittedSpec`] reads.")]
        #[derive(Debug, Deserialize)]
        #[serde(rename_all = "camelCase", expecting = $expecting)]
        struct $name {
            name: Option<String>,
            image: Option<String>,
            restart_policy: Option<String>,
            security_context: Option<Box<SecurityContext>>,
            ports: Option<Vec<ContainerPort>>,
            liveness_probe: Option<Box<Probe>>,
            readiness_probe: Option<Box<Probe>>,
            startup_probe: Option<Box<Probe>>,
            lifecycle: Option<Box<Lifecycle>>,
        }

        impl $name {
            fn view(&self, list: ContainerList) -> ContainerView<'_> {
                ContainerView {
                    list,
                    name: self.name.as_deref().unwrap_or_default(),
                    image: self.image.as_deref(),
                    restart_policy: self.restart_policy.as_deref(),
                    security_context: self.security_context.as_deref(),
                    ports: self.ports.as_deref().unwrap_or_default(),
                    liveness_probe: self.liveness_probe.as_deref(),
                    readiness_probe: self.readiness_probe.as_deref(),
                    startup_probe: self.startup_probe.as_deref(),
                    lifecycle: self.lifecycle.as_deref(),
                }
            }
        }
    };
}

admitted_container!(AdmittedContainer, "Container");
admitted_container!(AdmittedEphemeralContainer, "EphemeralContainer");

/// A volume as [`AdmittedSpec`] reads it: its name, and which sources it sets, each source
/// read as its k8s-openapi type (`pss::view::Sources::read_member`).
#[derive(Debug)]
struct AdmittedVolume {
    name: Option<String>,
    sources: Sources,
}

impl<'de> Deserialize<'de> for AdmittedVolume {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = AdmittedVolume;

            // k8s-openapi's own wording, so that a wrongly typed volume reads the same.
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("Volume")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<AdmittedVolume, A::Error> {
                let mut volume = AdmittedVolume {
                    name: None,
                    sources: Sources::default(),
                };
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    if key == "name" {
                        volume.name = map.next_value()?;
                    } else if !volume.sources.read_member(&key, &mut map)? {
                        map.next_value::<serde::de::IgnoredAny>()?;
                    }
                }
                Ok(volume)
            }
        }
        d.deserialize_struct("Volume", &[], Visitor)
    }
}

/// [`admitted_pod`] of a manifest from disk, which nothing has validated yet: the fields
/// Pod Security and the exceptions read are read as [`admitted_pod`] reads them, and every
/// other field of the spec and of each container is read as its k8s-openapi type and
/// dropped, so that a wrongly typed field anywhere is an error, as in [`typed_pod`]. What
/// `render` and `check` use: the verdict is [`typed_pod`]'s without the full typed spec
/// being built.
///
/// tests/pss_fixtures.rs compares its verdicts with [`typed_pod`]'s over every upstream
/// fixture; the unit test `checked_pod_refuses_what_typed_pod_refuses` puts a value of every JSON
/// type in every field of the spec, a container, an ephemeral container and a volume, and
/// compares what the two reads say.
pub fn checked_pod(object: &Value) -> Result<Option<(WorkloadKind, AdmittedPod)>, PodError> {
    let pod = pod_with::<PodSpec, _>(object, |spec| {
        let judged = AdmittedSpec::deserialize(spec)?;
        RestSpec::deserialize(spec)?;
        Ok(judged)
    })?;
    Ok(pod.map(|(kind, metadata, spec)| (kind, AdmittedPod { metadata, spec })))
}

/// A field read as its k8s-openapi type only to refuse a wrongly typed one: nothing is kept.
struct Checked<T>(std::marker::PhantomData<T>);

impl<T> Default for Checked<T> {
    fn default() -> Self {
        Checked(std::marker::PhantomData)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Checked<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(|_| Checked::default())
    }
}

/// The fields of a pod spec that [`AdmittedSpec`] does not read, each as its k8s-openapi
/// type, and the containers' own such fields ([`RestContainer`]); `volumes`, which
/// [`AdmittedVolume`] reads whole, is not among them. Only read to be refused when wrongly
/// typed (`tests::rest_is_every_field_admitted_spec_leaves`).
#[derive(Default, Deserialize)]
#[serde(default, rename_all = "camelCase", expecting = "PodSpec")]
#[allow(dead_code)] // read for its errors only
struct RestSpec {
    active_deadline_seconds: Checked<Option<i64>>,
    affinity: Checked<Option<core::Affinity>>,
    automount_service_account_token: Checked<Option<bool>>,
    containers: Checked<Option<Vec<RestContainer>>>,
    dns_config: Checked<Option<core::PodDNSConfig>>,
    dns_policy: Checked<Option<String>>,
    enable_service_links: Checked<Option<bool>>,
    ephemeral_containers: Checked<Option<Vec<RestEphemeralContainer>>>,
    eviction_responders: Checked<Option<Vec<core::EvictionResponder>>>,
    host_aliases: Checked<Option<Vec<core::HostAlias>>>,
    hostname: Checked<Option<String>>,
    hostname_override: Checked<Option<String>>,
    image_pull_secrets: Checked<Option<Vec<core::LocalObjectReference>>>,
    init_containers: Checked<Option<Vec<RestContainer>>>,
    node_name: Checked<Option<String>>,
    node_selector: Checked<Option<BTreeMap<String, String>>>,
    overhead: Checked<Option<BTreeMap<String, Quantity>>>,
    preemption_policy: Checked<Option<String>>,
    priority: Checked<Option<i32>>,
    priority_class_name: Checked<Option<String>>,
    readiness_gates: Checked<Option<Vec<core::PodReadinessGate>>>,
    resource_claims: Checked<Option<Vec<core::PodResourceClaim>>>,
    resources: Checked<Option<core::ResourceRequirements>>,
    restart_policy: Checked<Option<String>>,
    runtime_class_name: Checked<Option<String>>,
    scheduler_name: Checked<Option<String>>,
    scheduling_gates: Checked<Option<Vec<core::PodSchedulingGate>>>,
    scheduling_group: Checked<Option<core::PodSchedulingGroup>>,
    service_account: Checked<Option<String>>,
    service_account_name: Checked<Option<String>>,
    #[serde(rename = "setHostnameAsFQDN")]
    set_hostname_as_fqdn: Checked<Option<bool>>,
    share_process_namespace: Checked<Option<bool>>,
    subdomain: Checked<Option<String>>,
    termination_grace_period_seconds: Checked<Option<i64>>,
    tolerations: Checked<Option<Vec<core::Toleration>>>,
    topology_spread_constraints: Checked<Option<Vec<core::TopologySpreadConstraint>>>,
}

/// The fields of a `Container` (`$name`, `$expecting`) or an `EphemeralContainer` that
/// [`AdmittedContainer`] does not read, each as its k8s-openapi type, plus `$extra`.
macro_rules! rest_container {
    ($name:ident, $expecting:literal, $($extra:ident: $ty:ty),*) => {
        #[doc = concat!("The fields of a `", $expecting, "` that [`AdmittedContainer`] does not read, each as its k8s-openapi type.")]
        #[derive(Default, Deserialize)]
        #[serde(default, rename_all = "camelCase", expecting = $expecting)]
        #[allow(dead_code)] // read for its errors only
        struct $name {
            args: Checked<Option<Vec<String>>>,
            command: Checked<Option<Vec<String>>>,
            env: Checked<Option<Vec<core::EnvVar>>>,
            env_from: Checked<Option<Vec<core::EnvFromSource>>>,
            image_pull_policy: Checked<Option<String>>,
            resize_policy: Checked<Option<Vec<core::ContainerResizePolicy>>>,
            resources: Checked<Option<core::ResourceRequirements>>,
            restart_policy_rules: Checked<Option<Vec<core::ContainerRestartRule>>>,
            stdin: Checked<Option<bool>>,
            stdin_once: Checked<Option<bool>>,
            termination_message_path: Checked<Option<String>>,
            termination_message_policy: Checked<Option<String>>,
            tty: Checked<Option<bool>>,
            volume_devices: Checked<Option<Vec<core::VolumeDevice>>>,
            volume_mounts: Checked<Option<Vec<core::VolumeMount>>>,
            working_dir: Checked<Option<String>>,
            $($extra: Checked<$ty>,)*
        }
    };
}

rest_container!(RestContainer, "Container",);
rest_container!(RestEphemeralContainer, "EphemeralContainer", target_container_name: Option<String>);

/// One input to read: stdin, or a file (named on the command line or found in a directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// `-`: standard input.
    Stdin,
    /// A file.
    File(PathBuf),
}

/// Expands the inputs as given into what to read, in order: `-` is stdin, a directory
/// becomes its `*.yaml`, `*.yml` and `*.json` files (recursively, in sorted order), a file
/// is read whatever its name. Inside a directory each real file is read once and each real
/// directory walked once: symlinks are followed, a symlink loop ends the walk of that
/// branch, and a second name of a file already found (a symlink or a hard link to it) is
/// skipped.
pub fn expand_inputs<S: AsRef<str>>(inputs: &[S]) -> Result<Vec<Input>, WorkloadError> {
    Ok(expand_inputs_sized(inputs)?
        .into_iter()
        .map(|(input, _)| input)
        .collect())
}

/// [`expand_inputs`], with the size of each file from the walk's own look at it (`None`
/// for stdin and for an entry that could not be looked at: reading it reports why), so
/// that a reader need not look again.
pub fn expand_inputs_sized<S: AsRef<str>>(inputs: &[S]) -> Result<Vec<(Input, Option<u64>)>, WorkloadError> {
    let mut out = Vec::new();
    let mut seen = Seen::default();
    for input in inputs {
        let input = input.as_ref();
        if input == "-" {
            out.push((Input::Stdin, None));
            continue;
        }
        let path = Path::new(input);
        let meta = std::fs::metadata(path).map_err(|source| WorkloadError::Read {
            path: input.into(),
            source,
        })?;
        if meta.is_dir() {
            collect_dir(path, &meta, &mut seen, &mut out)?;
        } else {
            out.push((Input::File(path.to_path_buf()), Some(meta.len())));
        }
    }
    Ok(out)
}

/// The real directories walked and real files found so far.
#[derive(Default)]
struct Seen {
    dirs: HashSet<FileId>,
    files: HashSet<FileId>,
}

/// What identifies a real file or directory: its device and inode number, from the
/// metadata already at hand (no path resolution: `canonicalize` cost a `readlink` per
/// path component of every file). Two names of one file (a symlink, a hard link) are one.
#[cfg(unix)]
type FileId = (u64, u64);

#[cfg(unix)]
fn file_id(_path: &Path, meta: &std::fs::Metadata) -> std::io::Result<FileId> {
    use std::os::unix::fs::MetadataExt;
    Ok((meta.dev(), meta.ino()))
}

/// Elsewhere (the product targets Linux), the canonical path.
#[cfg(not(unix))]
type FileId = PathBuf;

#[cfg(not(unix))]
fn file_id(path: &Path, _meta: &std::fs::Metadata) -> std::io::Result<FileId> {
    std::fs::canonicalize(path)
}

/// Walks a directory (`meta`: its metadata, symlinks followed) into `out`.
fn collect_dir(
    dir: &Path,
    meta: &std::fs::Metadata,
    seen: &mut Seen,
    out: &mut Vec<(Input, Option<u64>)>,
) -> Result<(), WorkloadError> {
    let err = |source| WorkloadError::Read {
        path: dir.display().to_string(),
        source,
    };
    if !seen.dirs.insert(file_id(dir, meta).map_err(err)?) {
        return Ok(());
    }
    let mut entries = std::fs::read_dir(dir)
        .map_err(err)?
        .map(|e| e.map(|e| (e.path(), e.file_type())))
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(err)?;
    // Every entry is `dir` joined with one name (no separator in it): comparing the
    // paths as bytes gives `Path`'s component order without splitting them into
    // components on every comparison.
    entries.sort_by(|a, b| a.0.as_os_str().cmp(b.0.as_os_str()));
    for (path, file_type) in entries {
        let wanted = || {
            matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            )
        };
        // The entry's type needs no stat; a file that is not wanted is not looked at.
        let plain_file = matches!(&file_type, Ok(t) if !t.is_symlink() && !t.is_dir());
        if plain_file && !wanted() {
            continue;
        }
        // A symlink is followed, as `Path::is_dir` does. A dangling symlink (or an entry
        // gone meanwhile) has no identity: keep it, reading it reports the error.
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => collect_dir(&path, &meta, seen, out)?,
            Ok(meta) if wanted() => {
                let first = match file_id(&path, &meta) {
                    Ok(id) => seen.files.insert(id),
                    Err(_) => true,
                };
                if first {
                    out.push((Input::File(path), Some(meta.len())));
                }
            }
            Ok(_) => {}
            Err(_) if wanted() => out.push((Input::File(path), None)),
            Err(_) => {}
        }
    }
    Ok(())
}

/// Reads and parses every document of one input.
pub fn read_input(input: &Input) -> Result<Vec<Document>, WorkloadError> {
    let (name, text) = read_text(input)?;
    parse_text(&text, &name)
}

/// The name (`-` for stdin) and decoded text of one input.
pub(crate) fn read_text(input: &Input) -> Result<(String, String), WorkloadError> {
    let (name, bytes) = match input {
        Input::Stdin => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|source| WorkloadError::Read {
                    path: "-".into(),
                    source,
                })?;
            ("-".to_string(), bytes)
        }
        Input::File(path) => {
            let name = path.display().to_string();
            let bytes = std::fs::read(path).map_err(|source| WorkloadError::Read {
                path: name.clone(),
                source,
            })?;
            (name, bytes)
        }
    };
    let text = decode(bytes).map_err(|source| WorkloadError::Read {
        path: name.clone(),
        source,
    })?;
    Ok((name, text))
}

/// Bytes as text: UTF-8 (a byte-order mark is dropped later, by the parser), or UTF-16
/// with its byte-order mark, as kubectl reads files written by Windows tools.
pub fn decode(bytes: Vec<u8>) -> std::io::Result<String> {
    let utf16 = |bytes: &[u8], unit: fn([u8; 2]) -> u16| {
        let units: Vec<u16> = bytes
            .chunks(2)
            .map(|c| unit([c[0], c.get(1).copied().unwrap_or(0)]))
            .collect();
        String::from_utf16(&units).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    };
    match bytes.as_slice() {
        [0xff, 0xfe, rest @ ..] => utf16(rest, u16::from_le_bytes),
        [0xfe, 0xff, rest @ ..] => utf16(rest, u16::from_be_bytes),
        _ => String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
    }
}

/// Reads every document of every input (see [`expand_inputs`]). Inputs that hold no
/// document at all are an error ([`WorkloadError::NoObjects`]), as in kubectl.
pub fn read_inputs<S: AsRef<str>>(inputs: &[S]) -> Result<Vec<Document>, WorkloadError> {
    let mut docs = Vec::new();
    for input in expand_inputs(inputs)? {
        docs.extend(read_input(&input)?);
    }
    if docs.is_empty() {
        return Err(WorkloadError::NoObjects);
    }
    Ok(docs)
}

/// Whether an object is a list of objects (`v1/List`, `PodList`, …) rather than an object.
pub(crate) fn is_list(object: &Value) -> bool {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    kind == "List" || kind.ends_with("List") && object.get("items").is_some()
}

/// Parses the text of one input into documents. The items of a `v1/List` become
/// documents of their own; a List inside a List is expanded too, in kubectl's order (the
/// items of a List first, then those of the Lists among them, breadth first).
pub fn parse_text(text: &str, source_name: &str) -> Result<Vec<Document>, WorkloadError> {
    let mut out = Vec::new();
    for (document, object) in source::documents(text, source_name)?.into_iter().enumerate() {
        let index = out.len();
        let invalid = |message: String| WorkloadError::Invalid {
            input: source_name.into(),
            index,
            message,
        };
        if let Some(problem) = not_an_object(&object) {
            return Err(invalid(problem));
        }
        if !is_list(&object) {
            out.push(Document {
                source: source_name.into(),
                index,
                place: Some(Place {
                    document,
                    pointer: String::new(),
                }),
                object,
            });
            continue;
        }
        let top = std::collections::VecDeque::from([(String::new(), object)]);
        flatten_lists(top, |pointer, item| {
            out.push(Document {
                source: source_name.into(),
                index: out.len(),
                place: Some(Place { document, pointer }),
                object: item,
            });
            true
        })
        .map_err(invalid)?;
    }
    Ok(out)
}

/// Expands Lists breadth first, as kubectl's FlattenListVisitor: each queued (path of
/// the list, the list) hands its items that are not Lists to `emit` (with their path:
/// `/items/0`, `/items/2/items/0`), in order, and queues
/// the Lists among them. `emit` returns `false` to stop. The error is the message for a
/// List without an `items` array or an item that is not an object. One definition for
/// the whole reader ([`parse_text`]) and the streamed one (`crate::stream`).
pub(crate) fn flatten_lists(
    mut lists: std::collections::VecDeque<(String, Value)>,
    mut emit: impl FnMut(String, Value) -> bool,
) -> Result<(), String> {
    while let Some((path, mut list)) = lists.pop_front() {
        let kind = list
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("List")
            .to_string();
        let Some(Value::Array(items)) = list.get_mut("items").map(Value::take) else {
            return Err(format!("{path}: a {kind} needs an `items` array"));
        };
        for (i, item) in items.into_iter().enumerate() {
            let item_path = format!("{path}/items/{i}");
            if let Some(problem) = not_an_object(&item) {
                return Err(format!("{item_path}: {kind} item: {problem}"));
            }
            if is_list(&item) {
                lists.push_back((item_path, item));
            } else if !emit(item_path, item) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Why a value is not a Kubernetes object, if it is not: it must be a mapping with a
/// non-empty `apiVersion` and `kind` (kubectl refuses the others too: "Object 'Kind' is
/// missing"). An object ciguard cannot name is never passed through unjudged.
pub(crate) fn not_an_object(v: &Value) -> Option<String> {
    const EXPECTED: &str = "expected a Kubernetes object (a mapping with apiVersion and kind)";
    let Value::Object(map) = v else {
        return Some(format!("{EXPECTED}, found {}", value_type(v)));
    };
    for key in ["apiVersion", "kind"] {
        match map.get(key) {
            Some(Value::String(s)) if !s.is_empty() => {}
            None | Some(Value::Null) => return Some(format!("{key} is missing, {EXPECTED}")),
            Some(Value::String(_)) => return Some(format!("{key} is empty, {EXPECTED}")),
            Some(other) => {
                return Some(format!("{key} is {}, {EXPECTED}", value_type(other)));
            }
        }
    }
    None
}

/// What kind of JSON value, for messages.
fn value_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{json, value::testing::struct_fields};

    /// The sorted union of some field lists.
    fn union(lists: &[&[&'static str]]) -> Vec<&'static str> {
        let mut all: Vec<&str> = lists.iter().flat_map(|l| l.iter().copied()).collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The admitted and the rest reads together read every field k8s-openapi reads, so a
    /// field a k8s-openapi upgrade adds fails here rather than going unchecked; the only
    /// fields both read are the container lists (each reads its own fields of them).
    #[test]
    fn rest_is_every_field_admitted_spec_leaves() {
        let spec = (struct_fields::<AdmittedSpec>(), struct_fields::<RestSpec>());
        assert_eq!(union(&[spec.0, spec.1]), union(&[struct_fields::<PodSpec>()]));
        let both: Vec<&str> = spec.0.iter().copied().filter(|f| spec.1.contains(f)).collect();
        assert_eq!(
            union(&[&both]),
            ["containers", "ephemeralContainers", "initContainers"]
        );
        let pairs = [
            (
                struct_fields::<AdmittedContainer>(),
                struct_fields::<RestContainer>(),
                struct_fields::<core::Container>(),
            ),
            (
                struct_fields::<AdmittedEphemeralContainer>(),
                struct_fields::<RestEphemeralContainer>(),
                struct_fields::<core::EphemeralContainer>(),
            ),
        ];
        for (admitted, rest, k8s) in pairs {
            assert_eq!(union(&[admitted, rest]), union(&[k8s]));
            assert!(admitted.iter().all(|f| !rest.contains(f)));
        }
    }

    /// A refused spec is reported at the field refused, by every read, with the message of
    /// the field's type; map keys are escaped as JSON pointer segments.
    #[rstest::rstest]
    #[case::scalar_for_list(
        json!({"kind": "Pod", "spec": {"tolerations": "foo", "containers": [{"name": "a"}]}}),
        "/spec/tolerations",
        r#"invalid type: string "foo", expected a sequence"#,
        false
    )]
    #[case::deep(
        json!({"kind": "Pod", "spec": {"containers": [{"name": "a", "ports": [{"containerPort": 3_000_000_000_u64}]}]}}),
        "/spec/containers/0/ports/0/containerPort",
        "invalid value: integer `3000000000`, expected i32",
        true
    )]
    #[case::template(
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {"containers": [{"name": "a", "securityContext": {"capabilities": {"add": [1]}}}]}}}}),
        "/spec/template/spec/containers/0/securityContext/capabilities/add/0",
        "invalid type: integer `1`, expected a string",
        true
    )]
    #[case::escaped_key(
        json!({"kind": "Pod", "spec": {"nodeSelector": {"a/b~c": 1}, "containers": [{"name": "a"}]}}),
        "/spec/nodeSelector/a~1b~0c",
        "invalid type: integer `1`, expected a string",
        false
    )]
    #[case::missing_spec(json!({"kind": "Pod"}), "/spec", "missing pod spec", true)]
    fn a_refused_field_is_named(
        #[case] object: Value,
        #[case] pointer: &str,
        #[case] message: &str,
        #[case] judged: bool,
    ) {
        let expected = PodError {
            pointer: pointer.to_string(),
            message: message.to_string(),
        };
        assert_eq!(typed_pod(&object).unwrap_err(), expected);
        assert_eq!(checked_pod(&object).unwrap_err(), expected);
        if judged {
            assert_eq!(admitted_pod(&object).unwrap_err(), expected);
        } else {
            // Not a field Pod Security judges: the admitted read leaves it unread.
            assert!(admitted_pod(&object).is_ok());
        }
    }

    /// A value of every JSON type (and integers only some number types take).
    fn samples() -> Vec<Value> {
        vec![
            json!(null),
            json!(true),
            json!(0),
            json!(-1),
            json!(3_000_000_000_u64),
            json!(1.5),
            json!("s"),
            json!("1"),
            json!([]),
            json!([null]),
            json!(["s"]),
            json!([1]),
            json!([{}]),
            json!({}),
            json!({"name": "n"}),
            json!({"x": 1}),
        ]
    }

    /// [`checked_pod`] refuses what [`typed_pod`] refuses, with the same message, and
    /// takes what it takes: a value of every JSON type in every field k8s-openapi reads of
    /// the spec, of a container, an init container, an ephemeral container and a volume,
    /// and in the place of each of those objects.
    #[test]
    fn checked_pod_refuses_what_typed_pod_refuses() {
        let base = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a"}], "initContainers": [{"name": "i"}],
                     "ephemeralContainers": [{"name": "e"}], "volumes": [{"name": "v"}]}});
        let same = |pod: &Value| {
            let typed = typed_pod(pod).map(|p| p.map(|(kind, _)| kind));
            let checked = checked_pod(pod).map(|p| p.map(|(kind, _)| kind));
            assert_eq!(checked, typed, "{pod}");
        };
        same(&base);
        let spec_fields = struct_fields::<PodSpec>();
        let lists: [(&str, &[&str]); 4] = [
            ("containers", struct_fields::<core::Container>()),
            ("initContainers", struct_fields::<core::Container>()),
            ("ephemeralContainers", struct_fields::<core::EphemeralContainer>()),
            ("volumes", struct_fields::<core::Volume>()),
        ];
        let mut cases = 0;
        for value in samples() {
            let mut pod = base.clone();
            pod["spec"] = value.clone();
            same(&pod);
            for field in spec_fields {
                let mut pod = base.clone();
                pod["spec"][*field] = value.clone();
                same(&pod);
                cases += 1;
            }
            for (list, fields) in lists {
                let mut pod = base.clone();
                pod["spec"][list] = json!([value.clone()]);
                same(&pod);
                for field in fields {
                    let mut pod = base.clone();
                    pod["spec"][list][0][*field] = value.clone();
                    same(&pod);
                    cases += 1;
                }
            }
        }
        assert!(cases > 1_500, "{cases}");
    }

    #[test]
    fn kinds_and_pointers() {
        let cron = crate::json!({"apiVersion": "batch/v1", "kind": "CronJob"});
        assert_eq!(WorkloadKind::of(&cron), Some(WorkloadKind::CronJob));
        assert_eq!(
            WorkloadKind::CronJob.spec_pointer(),
            "/spec/jobTemplate/spec/template/spec"
        );
        let svc = crate::json!({"apiVersion": "v1", "kind": "Service"});
        assert_eq!(WorkloadKind::of(&svc), None);
        let wrong_group = crate::json!({"apiVersion": "v1", "kind": "Deployment"});
        assert_eq!(WorkloadKind::of(&wrong_group), None);
    }

    #[test]
    fn lists_are_flattened() {
        let text = r#"{"apiVersion":"v1","kind":"List","items":[{"kind":"Pod","apiVersion":"v1"},{"kind":"Pod","apiVersion":"v1"}]}"#;
        let docs = parse_text(text, "l.json").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].index, 1);
    }

    #[test]
    fn nested_lists_are_expanded_breadth_first() {
        let pod = |n: &str| format!(r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{n}"}}}}"#);
        let text = format!(
            r#"{{"apiVersion":"v1","kind":"List","items":[{},{{"apiVersion":"v1","kind":"List","items":[{},{{"apiVersion":"v1","kind":"PodList","items":[{}]}}]}},{}]}}"#,
            pod("a"),
            pod("b"),
            pod("c"),
            pod("d")
        );
        let docs = parse_text(&text, "l.json").unwrap();
        let names: Vec<_> = docs.iter().map(Document::name).collect();
        assert_eq!(names, ["a", "d", "b", "c"]);
        assert_eq!(docs.iter().map(|d| d.index).collect::<Vec<_>>(), [0, 1, 2, 3]);
    }

    #[test]
    fn list_items_must_be_objects() {
        let e = parse_text(
            r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"List","items":[7]}]}"#,
            "l.json",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("/items/0/items/0: List item: expected a Kubernetes object"),
            "{e}"
        );
        let e = parse_text(r#"{"apiVersion":"v1","kind":"PodList","items":{}}"#, "l.json").unwrap_err();
        assert!(e.to_string().contains("a PodList needs an `items` array"), "{e}");
    }

    #[test]
    fn utf16_is_decoded() {
        let mut bytes = vec![0xfe, 0xff];
        bytes.extend("kind: x".encode_utf16().flat_map(u16::to_be_bytes));
        assert_eq!(decode(bytes).unwrap(), "kind: x");
        assert!(decode(vec![0xff, 0xfe, 0x00, 0xd8]).is_err());
    }

    #[test]
    fn scalar_document_is_an_error() {
        let e = parse_text("just text\n", "x.yaml").unwrap_err();
        assert!(e.to_string().contains("x.yaml: document 0"), "{e}");
    }

    #[test]
    fn typed_pod_of_deployment() {
        let d = crate::json!({"apiVersion":"apps/v1","kind":"Deployment","spec":{"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c"}]}}}});
        let (kind, pod) = typed_pod(&d).unwrap().unwrap();
        assert_eq!(kind, WorkloadKind::Deployment);
        assert_eq!(pod.spec.containers[0].name, "c");
        assert_eq!(pod.metadata.labels.unwrap()["a"], "b");
    }
}
