//! `workload::pss_pod` (the pod spec with only what Pod Security reads, used by `render`)
//! judges every pod exactly as `workload::typed_pod` (the full read, used by `check`):
//! over the upstream fixtures (`../shared/pss/fixtures`, from upstream's
//! `pod-security-admission/test/testdata`), the examples and the test data, at every
//! level and at each version a fixture names.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};

use ciguard::{
    pss::{self, LevelVersion},
    workload::{WorkloadKind, parse_text, pss_pod, typed_pod},
};
use serde_json::{Value, json};

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let path = e.unwrap().path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(path);
        }
    }
}

fn levels() -> Vec<LevelVersion> {
    let mut out = Vec::new();
    for level in ["privileged", "baseline", "restricted"] {
        for version in ["latest", "v1.0", "v1.22", "v1.25", "v1.30", "v1.35"] {
            out.push(format!("{level}:{version}").parse().unwrap());
        }
    }
    out
}

/// Both reads of one object: the same error, or the same verdict at every level.
fn same_verdicts(object: &Value, what: &str) -> usize {
    match (typed_pod(object), pss_pod(object)) {
        (Err(full), Err(slim)) => {
            assert_eq!(full, slim, "{what}: errors differ");
            0
        }
        (Ok(None), Ok(None)) => 0,
        (Ok(Some((kind, mut full))), Ok(Some((slim_kind, mut slim)))) => {
            assert_eq!(kind, slim_kind, "{what}");
            if kind == WorkloadKind::Pod {
                pss::apply_pod_defaults(&mut full.spec);
                pss::apply_pod_defaults(&mut slim.spec);
            }
            for lv in levels() {
                assert_eq!(
                    pss::evaluate(&full.metadata, &full.spec, lv),
                    pss::evaluate(&slim.metadata, &slim.spec, lv),
                    "{what} at {lv:?}"
                );
            }
            1
        }
        (full, slim) => panic!("{what}: the full read gives {full:?}, the slim one {slim:?}"),
    }
}

#[test]
fn judges_every_pod_as_the_full_read() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["examples", "tests/data"] {
        yaml_files(&root.join(dir), &mut files);
    }
    let local = files.len();
    if let Some(fixtures) = common::shared("pss/fixtures") {
        yaml_files(&fixtures, &mut files);
        assert!(files.len() > local + 300, "the upstream fixtures are read");
    }
    let mut pods = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        // Some test data is invalid on purpose; only what parses is compared.
        let Ok(docs) = parse_text(&text, &file.display().to_string()) else {
            continue;
        };
        for doc in &docs {
            pods += same_verdicts(&doc.object, &format!("{}#{}", file.display(), doc.index));
        }
    }
    assert!(pods > 20, "{pods} pods compared");
}

/// A wrong type in a field Pod Security reads is the full read's error, with its pointer.
#[test]
fn wrong_types_in_what_is_read_are_the_same_errors() {
    let pod =
        |spec: Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec});
    let cases = [
        json!({"containers": 5}),
        json!({"containers": [{"name": "c", "securityContext": {"runAsUser": "root"}}]}),
        json!({"containers": [{"name": "c", "ports": [{"containerPort": "80"}]}]}),
        json!({"containers": ["c"]}),
        json!({"containers": [{"name": "c"}], "hostNetwork": "yes"}),
        json!({"containers": [{"name": "c"}], "volumes": [{"name": "v", "hostPath": {"path": 5}}]}),
        json!({"containers": [{"name": "c"}], "initContainers": {"name": "i"}}),
        json!({"containers": [{"name": "c"}], "securityContext": []}),
        json!({"containers": [{"name": "c", "livenessProbe": {"periodSeconds": "10"}}]}),
    ];
    for spec in cases {
        let object = pod(spec.clone());
        let full = typed_pod(&object).expect_err("the full read fails");
        assert!(full.starts_with("/spec: "), "{full}");
        assert_eq!(pss_pod(&object).expect_err("the slim read fails"), full, "{spec}");
    }
}

/// Decision (docs/performance.md, "Render path"): fields Pod Security never reads are not
/// judged by `render`'s evaluation; `check` (the full read) still rejects them.
#[test]
fn fields_pod_security_never_reads_are_not_judged() {
    let object = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "env": "HOME=/root", "resources": [], "command": 5}],
        "tolerations": "all",
    }});
    assert!(typed_pod(&object).is_err());
    let (_, pod) = pss_pod(&object).unwrap().unwrap();
    assert_eq!(pod.spec.containers[0].name, "c");
    assert!(pod.spec.containers[0].env.is_none());
    assert!(pod.spec.tolerations.is_none());
}
