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
        Container, ContainerPort, EphemeralContainer, Lifecycle, PodOS, PodSecurityContext, PodSpec, Probe,
        SecurityContext, Volume,
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use serde::Deserialize;

use crate::source::{self, SyntaxError};

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
    /// The object, with key order kept.
    pub object: Value,
}

impl Document {
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
/// Every field of the spec is read, so a wrongly typed field anywhere is an error: what
/// `render` and `check` need for manifests from disk. For objects the API server has
/// already validated, [`admitted_pod`] reads only what Pod Security judges.
pub fn typed_pod(object: &Value) -> Result<Option<(WorkloadKind, TypedPod)>, String> {
    pod_with(object, |spec| PodSpec::deserialize(spec))
}

/// [`typed_pod`] of an object the API server has already validated (an admission
/// request's object): only the fields Pod Security and the policy's exceptions read are
/// read (`hostNetwork`, `hostPID`, `hostIPC`, `hostUsers`, `os`, the pod's
/// `securityContext`, `volumes`, and each container's `name`, `image`, `restartPolicy`,
/// `securityContext`, `ports`, probes and `lifecycle`), the rest of the spec is left at
/// its default. A wrongly typed field among those is still an error; one elsewhere is not
/// seen (the API server refuses it before admission).
///
/// Every check judges it as it judges [`typed_pod`]'s: tests/pss_fixtures.rs
/// (`admitted_pod_reads_what_pod_security_judges`) compares the two over every upstream
/// fixture, at every level and version.
pub fn admitted_pod(object: &Value) -> Result<Option<(WorkloadKind, TypedPod)>, String> {
    pod_with(object, |spec| AdmittedSpec::deserialize(spec).map(PodSpec::from))
}

fn pod_with(
    object: &Value,
    read_spec: impl FnOnce(&Value) -> Result<PodSpec, serde_json::Error>,
) -> Result<Option<(WorkloadKind, TypedPod)>, String> {
    let Some(kind) = WorkloadKind::of(object) else {
        return Ok(None);
    };
    let metadata = slim_metadata(at(object, kind.metadata_path()))
        .map_err(|e| format!("{}: {e}", kind.metadata_pointer()))?;
    let spec = match at(object, kind.spec_path()) {
        None | Some(Value::Null) => return Err(format!("{}: missing pod spec", kind.spec_pointer())),
        Some(s) => read_spec(s).map_err(|e| format!("{}: {e}", kind.spec_pointer()))?,
    };
    Ok(Some((kind, TypedPod { metadata, spec })))
}

/// The fields of a pod spec that Pod Security's checks (`pss::checks`, `pss::visit`) and
/// the policy's exceptions (`policy::exception::exemptions`) read, each read as its
/// k8s-openapi type; every other field is skipped unread. Absent and `null` are alike, as
/// in k8s-openapi's own reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AdmittedSpec {
    host_network: Option<bool>,
    #[serde(rename = "hostPID")]
    host_pid: Option<bool>,
    #[serde(rename = "hostIPC")]
    host_ipc: Option<bool>,
    host_users: Option<bool>,
    os: Option<PodOS>,
    security_context: Option<PodSecurityContext>,
    volumes: Option<Vec<Volume>>,
    init_containers: Option<Vec<AdmittedContainer>>,
    containers: Option<Vec<AdmittedContainer>>,
    ephemeral_containers: Option<Vec<AdmittedContainer>>,
}

/// The fields of a container, init container or ephemeral container that [`AdmittedSpec`]
/// reads: the checks' (`pss::visit::ContainerView`) and the exceptions' (`image`,
/// `restartPolicy`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AdmittedContainer {
    name: Option<String>,
    image: Option<String>,
    restart_policy: Option<String>,
    security_context: Option<SecurityContext>,
    ports: Option<Vec<ContainerPort>>,
    liveness_probe: Option<Probe>,
    readiness_probe: Option<Probe>,
    startup_probe: Option<Probe>,
    lifecycle: Option<Lifecycle>,
}

/// `Container` and `EphemeralContainer` from the fields [`AdmittedContainer`] holds.
macro_rules! container_from_admitted {
    ($($ty:ident),*) => {$(
        impl From<AdmittedContainer> for $ty {
            fn from(c: AdmittedContainer) -> Self {
                $ty {
                    name: c.name.unwrap_or_default(),
                    image: c.image,
                    restart_policy: c.restart_policy,
                    security_context: c.security_context,
                    ports: c.ports,
                    liveness_probe: c.liveness_probe,
                    readiness_probe: c.readiness_probe,
                    startup_probe: c.startup_probe,
                    lifecycle: c.lifecycle,
                    ..$ty::default()
                }
            }
        }
    )*};
}

container_from_admitted!(Container, EphemeralContainer);

impl From<AdmittedSpec> for PodSpec {
    fn from(s: AdmittedSpec) -> Self {
        fn all<T: From<AdmittedContainer>>(list: Vec<AdmittedContainer>) -> Vec<T> {
            list.into_iter().map(T::from).collect()
        }
        PodSpec {
            host_network: s.host_network,
            host_pid: s.host_pid,
            host_ipc: s.host_ipc,
            host_users: s.host_users,
            os: s.os,
            security_context: s.security_context,
            volumes: s.volumes,
            init_containers: s.init_containers.map(all),
            containers: s.containers.map(all).unwrap_or_default(),
            ephemeral_containers: s.ephemeral_containers.map(all),
            ..PodSpec::default()
        }
    }
}

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
    for object in source::documents(text, source_name)? {
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
                object,
            });
            continue;
        }
        let top = std::collections::VecDeque::from([(String::new(), object)]);
        flatten_lists(top, |item| {
            out.push(Document {
                source: source_name.into(),
                index: out.len(),
                object: item,
            });
            true
        })
        .map_err(invalid)?;
    }
    Ok(out)
}

/// Expands Lists breadth first, as kubectl's FlattenListVisitor: each queued (path of
/// the list, the list) hands its items that are not Lists to `emit`, in order, and queues
/// the Lists among them. `emit` returns `false` to stop. The error is the message for a
/// List without an `items` array or an item that is not an object. One definition for
/// the whole reader ([`parse_text`]) and the streamed one (`crate::stream`).
pub(crate) fn flatten_lists(
    mut lists: std::collections::VecDeque<(String, Value)>,
    mut emit: impl FnMut(Value) -> bool,
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
            } else if !emit(item) {
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
