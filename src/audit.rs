//! Audit before enforcing: what a policy would do to pods that already run.
//!
//! An [`Audit`] renders each pod carrier (a Pod, or a workload's pod template) with the
//! policy and counts, per namespace and detected preset ([`presets::detect`]): pods seen,
//! pods the policy would change, pods it would deny, pods per failed Pod Security check
//! (upstream check ID), and warnings and rejected requests per warning code. It keeps
//! only the counts, never the rendered pods, so memory does not grow with the input.
//!
//! ```
//! use ciguard::{ValidPolicy, audit::Audit};
//! use ciguard::json;
//!
//! let policy = ValidPolicy::builtin();
//! let mut audit = Audit::new(&policy);
//! let pod = json!({
//!     "apiVersion": "v1", "kind": "Pod",
//!     "metadata": {"name": "job", "namespace": "ci"},
//!     "spec": {"containers": [{"name": "build", "image": "alpine"}]},
//! });
//! audit.add(&pod)?;
//! let report = audit.finish();
//! assert_eq!(report.groups[0].namespace, "ci");
//! assert_eq!(report.groups[0].preset, "generic");
//! assert_eq!(report.groups[0].pods, 1);
//! # Ok::<(), ciguard::merge::RenderError>(())
//! ```

use std::collections::BTreeMap;

use crate::value::Value;
use serde::Serialize;

use crate::{
    ValidPolicy,
    merge::{self, RenderError},
    policy::{PodFacts, presets},
    workload::{self, WorkloadKind},
};

/// The counts for one namespace and preset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Group {
    /// The namespace of the pod or workload; `""` when the document names none.
    pub namespace: String,
    /// The preset detected for the pods (`generic`, `gitlab-runner`, …).
    pub preset: &'static str,
    /// Pods (and workloads' pod templates) seen.
    pub pods: u64,
    /// Pods the policy would change.
    pub changed: u64,
    /// Pods the policy would deny.
    pub denied: u64,
    /// Denied pods per failed Pod Security check (upstream ID, e.g. `runAsNonRoot`).
    pub checks: BTreeMap<&'static str, u64>,
    /// Warnings and rejected requests per warning code (e.g. `disallowed-id`).
    pub requests: BTreeMap<&'static str, u64>,
}

impl Group {
    fn merge(&mut self, other: &Group) {
        self.pods += other.pods;
        self.changed += other.changed;
        self.denied += other.denied;
        for (k, n) in &other.checks {
            *self.checks.entry(k).or_default() += n;
        }
        for (k, n) in &other.requests {
            *self.requests.entry(k).or_default() += n;
        }
    }
}

/// The result of an audit: `{"groups":[…]}`, sorted by namespace, then preset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// One entry per (namespace, preset) that has pods.
    pub groups: Vec<Group>,
}

impl AuditReport {
    /// All groups added up (`namespace` and `preset` empty).
    pub fn totals(&self) -> Group {
        let mut total = Group::default();
        for g in &self.groups {
            total.merge(g);
        }
        total
    }

    /// Whether the policy would deny any pod.
    pub fn any_denied(&self) -> bool {
        self.groups.iter().any(|g| g.denied > 0)
    }
}

/// An audit in progress: add documents one by one, then [`Audit::finish`].
#[derive(Debug)]
pub struct Audit<'p> {
    policy: &'p ValidPolicy,
    groups: BTreeMap<(String, &'static str), Group>,
}

impl<'p> Audit<'p> {
    /// An empty audit of `policy`.
    pub fn new(policy: &'p ValidPolicy) -> Self {
        Audit {
            policy,
            groups: BTreeMap::new(),
        }
    }

    /// Renders one document and counts it. Returns whether it carries a pod (other
    /// documents are not counted). A malformed pod carrier is an error.
    pub fn add(&mut self, object: &Value) -> Result<bool, RenderError> {
        if WorkloadKind::of(object).is_none() {
            return Ok(false);
        }
        self.add_owned(object.clone())
    }

    /// [`Audit::add`] of a document the caller owns: it is rendered in place, not copied.
    pub fn add_owned(&mut self, object: Value) -> Result<bool, RenderError> {
        let Some(kind) = WorkloadKind::of(&object) else {
            return Ok(false);
        };
        // Read before rendering: the rendered pod may have ciguard's init container.
        let preset = preset_of(&object, kind).as_str();
        // A report reads the changes and the denial: neither provenance nor a patch.
        let options = merge::Options {
            changes: true,
            ..merge::Options::without_records(merge::PodSecurity::Evaluate)
        };
        let rendered = merge::render_owned_with(self.policy, object, options)?;
        let namespace = rendered
            .object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let group = match self.groups.get_mut(&(namespace.to_string(), preset)) {
            Some(g) => g,
            None => self
                .groups
                .entry((namespace.to_string(), preset))
                .or_insert_with(|| Group {
                    namespace: namespace.to_string(),
                    preset,
                    ..Group::default()
                }),
        };
        group.pods += 1;
        if !rendered.changes.is_empty() {
            group.changed += 1;
        }
        if let Some(denial) = &rendered.denial {
            group.denied += 1;
            let violations = denial.pss.iter().flat_map(|e| &e.violations);
            let mut seen: Vec<&'static str> = Vec::new();
            for v in violations {
                if !seen.contains(&v.check) {
                    seen.push(v.check);
                    *group.checks.entry(v.check).or_default() += 1;
                }
            }
        }
        let codes = rendered
            .warnings
            .iter()
            .map(|w| w.code)
            .chain(rendered.denied_codes);
        for code in codes {
            *group.requests.entry(code.as_str()).or_default() += 1;
        }
        Ok(true)
    }

    /// Adds up another audit of the same policy (e.g. one run on another thread).
    pub fn absorb(&mut self, other: Audit<'_>) {
        for (key, g) in other.groups {
            match self.groups.get_mut(&key) {
                Some(mine) => mine.merge(&g),
                None => {
                    self.groups.insert(key, g);
                }
            }
        }
    }

    /// The report, groups sorted by namespace, then preset name.
    pub fn finish(self) -> AuditReport {
        AuditReport {
            groups: self.groups.into_values().collect(),
        }
    }
}

/// The preset a pod carrier's pod looks like: its pod labels and regular containers.
fn preset_of(object: &Value, kind: WorkloadKind) -> crate::policy::Preset {
    let labels = workload::pod_labels(object, kind);
    let pod = PodFacts::new(&labels, workload::at(object, kind.spec_path()));
    presets::detected(&pod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;

    fn pod(ns: &str, labels: Value, containers: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": ns, "labels": labels},
            "spec": {"containers": containers},
        })
    }

    #[test]
    fn groups_by_namespace_and_preset_and_counts() {
        let policy = ValidPolicy::builtin();
        let mut audit = Audit::new(&policy);
        let gitlab = pod(
            "ci",
            json!({"pod": "runner-abc"}),
            json!([{"name": "build", "image": "a"}, {"name": "helper", "image": "b"}]),
        );
        let root = pod(
            "ci",
            json!({}),
            json!([{"name": "build", "image": "a", "securityContext": {"runAsUser": 0}}]),
        );
        assert!(audit.add(&gitlab).unwrap());
        assert!(audit.add(&gitlab).unwrap());
        assert!(audit.add(&root).unwrap());
        assert!(
            !audit
                .add(&json!({"apiVersion": "v1", "kind": "ConfigMap"}))
                .unwrap()
        );
        let report = audit.finish();
        let keys: Vec<_> = report
            .groups
            .iter()
            .map(|g| (g.namespace.as_str(), g.preset, g.pods))
            .collect();
        assert_eq!(keys, [("ci", "generic", 1), ("ci", "gitlab-runner", 2)]);
        assert_eq!(report.totals().pods, 3);
        assert_eq!(report.totals().changed, 3);
    }

    #[test]
    fn absorb_adds_up() {
        let policy = ValidPolicy::builtin();
        let p = pod("a", json!({}), json!([{"name": "x", "image": "i"}]));
        let (mut one, mut two) = (Audit::new(&policy), Audit::new(&policy));
        one.add(&p).unwrap();
        two.add(&p).unwrap();
        two.add(&pod("b", json!({}), json!([{"name": "x", "image": "i"}])))
            .unwrap();
        one.absorb(two);
        let report = one.finish();
        assert_eq!(report.groups.len(), 2);
        assert_eq!(report.groups[0].pods, 2);
    }
}
