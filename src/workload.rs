//! Input documents: files, directories, stdin; multi-document YAML, JSON, `v1/List`;
//! and the pod template inside each kind that carries one.

use std::{
    io::Read,
    path::{Path, PathBuf},
};

use k8s_openapi::{api::core::v1::PodSpec, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use serde::Deserialize;
use serde_json::Value;

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
        v = v.as_object()?.get(*k)?;
    }
    Some(v)
}

/// The value at a path of object keys, mutably.
pub fn at_mut<'v>(mut v: &'v mut Value, keys: &[&str]) -> Option<&'v mut Value> {
    for k in keys {
        v = v.as_object_mut()?.get_mut(*k)?;
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

/// Reads an object's `metadata` with only the fields ciguard uses (see [`SlimMeta`]);
/// absent or null metadata is empty.
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
pub fn typed_pod(object: &Value) -> Result<Option<(WorkloadKind, TypedPod)>, String> {
    let Some(kind) = WorkloadKind::of(object) else {
        return Ok(None);
    };
    let metadata = slim_metadata(at(object, kind.metadata_path()))
        .map_err(|e| format!("{}: {e}", kind.metadata_pointer()))?;
    let spec = match at(object, kind.spec_path()) {
        None | Some(Value::Null) => return Err(format!("{}: missing pod spec", kind.spec_pointer())),
        Some(s) => PodSpec::deserialize(s).map_err(|e| format!("{}: {e}", kind.spec_pointer()))?,
    };
    Ok(Some((kind, TypedPod { metadata, spec })))
}

/// Reads every document of every input: files, directories (recursing into `*.yaml`,
/// `*.yml`, `*.json`, in sorted order) or `-` for stdin.
pub fn read_inputs<S: AsRef<str>>(inputs: &[S]) -> Result<Vec<Document>, WorkloadError> {
    let mut docs = Vec::new();
    for input in inputs {
        let input = input.as_ref();
        if input == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| WorkloadError::Read {
                    path: "-".into(),
                    source,
                })?;
            docs.extend(parse_text(&text, "-")?);
            continue;
        }
        let path = Path::new(input);
        let meta = std::fs::metadata(path).map_err(|source| WorkloadError::Read {
            path: input.into(),
            source,
        })?;
        if meta.is_dir() {
            let mut files = Vec::new();
            collect_dir(path, &mut files)?;
            for file in files {
                docs.extend(read_file(&file)?);
            }
        } else {
            docs.extend(read_file(path)?);
        }
    }
    Ok(docs)
}

fn read_file(path: &Path) -> Result<Vec<Document>, WorkloadError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| WorkloadError::Read {
        path: name.clone(),
        source,
    })?;
    parse_text(&text, &name)
}

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), WorkloadError> {
    let err = |source| WorkloadError::Read {
        path: dir.display().to_string(),
        source,
    };
    let mut entries = std::fs::read_dir(dir)
        .map_err(err)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect_dir(&entry, out)?;
        } else if matches!(
            entry.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(entry);
        }
    }
    Ok(())
}

/// Parses the text of one input into documents; `v1/List` items become documents of
/// their own.
pub fn parse_text(text: &str, source_name: &str) -> Result<Vec<Document>, WorkloadError> {
    let mut out = Vec::new();
    for object in source::documents(text, source_name)? {
        let index = out.len();
        if !object.is_object() {
            return Err(WorkloadError::Invalid {
                input: source_name.into(),
                index,
                message: "expected a Kubernetes object (a mapping with apiVersion and kind)".into(),
            });
        }
        let is_list = object
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k == "List")
            || object
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k.ends_with("List"))
                && object.get("items").is_some_and(Value::is_array);
        if is_list {
            let Some(Value::Array(items)) = object.get("items") else {
                return Err(WorkloadError::Invalid {
                    input: source_name.into(),
                    index,
                    message: "a List needs an `items` array".into(),
                });
            };
            for item in items {
                out.push(Document {
                    source: source_name.into(),
                    index: out.len(),
                    object: item.clone(),
                });
            }
        } else {
            out.push(Document {
                source: source_name.into(),
                index,
                object,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_pointers() {
        let cron = serde_json::json!({"apiVersion": "batch/v1", "kind": "CronJob"});
        assert_eq!(WorkloadKind::of(&cron), Some(WorkloadKind::CronJob));
        assert_eq!(
            WorkloadKind::CronJob.spec_pointer(),
            "/spec/jobTemplate/spec/template/spec"
        );
        let svc = serde_json::json!({"apiVersion": "v1", "kind": "Service"});
        assert_eq!(WorkloadKind::of(&svc), None);
        let wrong_group = serde_json::json!({"apiVersion": "v1", "kind": "Deployment"});
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
    fn scalar_document_is_an_error() {
        let e = parse_text("just text\n", "x.yaml").unwrap_err();
        assert!(e.to_string().contains("x.yaml: document 0"), "{e}");
    }

    #[test]
    fn typed_pod_of_deployment() {
        let d = serde_json::json!({"apiVersion":"apps/v1","kind":"Deployment","spec":{"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c"}]}}}});
        let (kind, pod) = typed_pod(&d).unwrap().unwrap();
        assert_eq!(kind, WorkloadKind::Deployment);
        assert_eq!(pod.spec.containers[0].name, "c");
        assert_eq!(pod.metadata.labels.unwrap()["a"], "b");
    }
}
