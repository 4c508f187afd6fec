//! Field tables and candidate resolution: which layer's value wins, field by field.
//!
//! Every security-context key is merged as a unit (leaf values, and `seccompProfile`,
//! `appArmorProfile`, `seLinuxOptions`, `windowsOptions`, `sysctls`, `supplementalGroups`
//! replaced whole), except `capabilities`: its `drop` is the union of every layer, its
//! `add` comes from the highest layer that sets it.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::layer::{Layer, Origin, Scope};
use crate::policy::{Contexts, Role, ValidPolicy};

/// The pod-level fields ciguard merges, in Kubernetes' order.
pub(crate) const POD_FIELDS: &[&str] = &[
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "fsGroup",
    "fsGroupChangePolicy",
    "supplementalGroups",
    "supplementalGroupsPolicy",
    "seLinuxOptions",
    "seLinuxChangePolicy",
    "seccompProfile",
    "appArmorProfile",
    "sysctls",
    "windowsOptions",
];

/// The container-level fields ciguard merges (capabilities apart), in Kubernetes' order.
pub(crate) const CONTAINER_FIELDS: &[&str] = &[
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "allowPrivilegeEscalation",
    "privileged",
    "readOnlyRootFilesystem",
    "procMount",
    "seLinuxOptions",
    "seccompProfile",
    "appArmorProfile",
    "windowsOptions",
];

/// Whether a pod-level security-context field exists.
pub(crate) fn is_pod_field(field: &str) -> bool {
    POD_FIELDS.contains(&field)
}

/// Whether a container-level security-context field exists.
pub(crate) fn is_container_field(field: &str) -> bool {
    CONTAINER_FIELDS.contains(&field) || field == "capabilities"
}

/// The fields both levels have: a container value overrides the pod value.
pub(crate) fn is_shared(field: &str) -> bool {
    matches!(
        field,
        "runAsUser"
            | "runAsGroup"
            | "runAsNonRoot"
            | "seLinuxOptions"
            | "seccompProfile"
            | "appArmorProfile"
            | "windowsOptions"
    )
}

/// The job's user and group, which the helper role never inherits.
pub(crate) fn is_job_identity(field: &str) -> bool {
    matches!(field, "runAsUser" | "runAsGroup")
}

/// A value some layer offers for a field, borrowed from the policy or the pod.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Candidate<'a> {
    pub origin: Origin,
    pub value: Cow<'a, Value>,
}

impl Candidate<'_> {
    pub fn is_job(&self) -> bool {
        self.origin.layer() == Some(Layer::Job)
    }
}

/// The candidates for one field, kept sorted by rank (lowest first).
#[derive(Debug, Clone, Default)]
pub(crate) struct Candidates<'a>(pub Vec<Candidate<'a>>);

impl<'a> Candidates<'a> {
    pub fn push(&mut self, origin: Origin, value: Option<&'a Value>) {
        if let Some(v) = value
            && !v.is_null()
        {
            self.insert(Candidate {
                origin,
                value: Cow::Borrowed(v),
            });
        }
    }

    /// Inserts in rank order.
    pub fn insert(&mut self, c: Candidate<'a>) {
        let at = self.0.partition_point(|x| x.origin.rank() <= c.origin.rank());
        self.0.insert(at, c);
    }

    /// The highest-ranked candidate.
    pub fn winner(&self) -> Option<&Candidate<'a>> {
        self.0.last()
    }

    /// What the policy alone would give: the highest candidate that is not the job's.
    pub fn policy_value(&self) -> Option<&Candidate<'a>> {
        self.0.iter().rev().find(|c| !c.is_job())
    }

    /// Drops the job's candidate at `scope` when it asks for exactly what the policy
    /// alone gives: such a value is an echo of an earlier render (or asks for nothing), and
    /// reading it as a request would let it outrank policy layers it merely repeats —
    /// rendering a rendered pod must change nothing.
    pub fn absorb_echo(&mut self, scope: super::layer::Scope) {
        let job = Origin::new(Layer::Job, scope);
        let Some(at) = self.0.iter().position(|c| c.origin == job) else {
            return;
        };
        let echo = self.policy_value().is_some_and(|p| p.value == self.0[at].value);
        if echo {
            self.0.remove(at);
        }
    }

    /// Removes the top candidate.
    pub fn drop_winner(&mut self) -> Option<Candidate<'a>> {
        self.0.pop()
    }
}

/// The policy contexts that apply to a container of a role, as (origin, context) pairs
/// lowest first: `containers.default`, role default, `containers.enforced`, role enforced.
pub(crate) fn container_layers(policy: &ValidPolicy, role: Role) -> [(Origin, &Map<String, Value>); 4] {
    let r = policy.role(role);
    [
        (
            Origin::new(Layer::Default, Scope::Containers),
            &policy.containers.default,
        ),
        (Origin::new(Layer::RoleDefault, Scope::Role(role)), &r.default),
        (
            Origin::new(Layer::Enforced, Scope::Containers),
            &policy.containers.enforced,
        ),
        (Origin::new(Layer::RoleEnforced, Scope::Role(role)), &r.enforced),
    ]
}

/// Candidates for a pod-level field.
pub(crate) fn pod_candidates<'a>(
    policy: &'a ValidPolicy,
    job_pod: &'a Map<String, Value>,
    field: &str,
) -> Candidates<'a> {
    let mut c = Candidates::default();
    c.push(
        Origin::new(Layer::Default, Scope::Pod),
        policy.pod.default.get(field),
    );
    c.push(Origin::new(Layer::Job, Scope::Pod), job_pod.get(field));
    c.push(
        Origin::new(Layer::Enforced, Scope::Pod),
        policy.pod.enforced.get(field),
    );
    c
}

/// Candidates for a container-level field, including the pod-level ones it would inherit.
pub(crate) fn container_candidates<'a>(
    policy: &'a ValidPolicy,
    role: Role,
    job_container: &'a Map<String, Value>,
    job_pod: &'a Map<String, Value>,
    field: &str,
) -> Candidates<'a> {
    let mut c = Candidates::default();
    for (origin, ctx) in container_layers(policy, role) {
        c.push(origin, ctx.get(field));
    }
    c.push(
        Origin::new(Layer::Job, Scope::Containers),
        job_container.get(field),
    );
    if is_shared(field) {
        c.push(
            Origin::new(Layer::Default, Scope::Pod),
            policy.pod.default.get(field),
        );
        // The helper never inherits the job's user/group; a service does unless its role sets one.
        let role_sets = |ctx: &Contexts| ctx.default.contains_key(field) || ctx.enforced.contains_key(field);
        let inherits = !is_job_identity(field)
            || match role {
                Role::Helper => false,
                Role::Service => !role_sets(policy.role(role)),
                _ => true,
            };
        if inherits {
            c.push(Origin::new(Layer::Job, Scope::Pod), job_pod.get(field));
        }
        c.push(
            Origin::new(Layer::Enforced, Scope::Pod),
            policy.pod.enforced.get(field),
        );
    }
    c
}

/// `capabilities.drop` of one context.
fn drops(ctx: &Map<String, Value>) -> Option<&Vec<Value>> {
    ctx.get("capabilities")?.get("drop")?.as_array()
}

/// The union of `capabilities.drop` over every layer, and the origin of the highest
/// layer that drops something. The job's own list comes first, unchanged, so a pod that
/// already drops everything needed is not rewritten.
pub(crate) fn drop_union(
    policy: &ValidPolicy,
    role: Role,
    job_container: &Map<String, Value>,
) -> Option<(Vec<Value>, Origin)> {
    let job_origin = Origin::new(Layer::Job, Scope::Containers);
    let mut layers: Vec<(Origin, &Map<String, Value>)> = container_layers(policy, role).to_vec();
    layers.push((job_origin, job_container));
    layers.sort_by_key(|(o, _)| o.rank());
    let mut top: Option<Origin> = None;
    let mut union: Vec<Value> = drops(job_container).cloned().unwrap_or_default();
    // A policy that drops capabilities writes the list: the job's junk entries (empty or
    // non-string names, which no runtime knows) do not survive into it.
    let policy_drops = container_layers(policy, role)
        .iter()
        .any(|(_, ctx)| drops(ctx).is_some_and(|l| !l.is_empty()));
    if policy_drops {
        union.retain(|c| c.as_str().is_some_and(|s| !s.trim().is_empty()));
    }
    let mut any = drops(job_container).is_some();
    for (origin, ctx) in &layers {
        let Some(list) = drops(ctx) else { continue };
        any = true;
        // The job's list is in the union already (first, and without its junk).
        for cap in list.iter().filter(|_| *origin != job_origin) {
            if !union.contains(cap) {
                union.push(cap.clone());
            }
        }
        if !list.is_empty() {
            top = Some(*origin);
        }
    }
    any.then(|| (union, top.unwrap_or(job_origin)))
}

/// Candidates for `capabilities.add`.
pub(crate) fn add_candidates<'a>(
    policy: &'a ValidPolicy,
    role: Role,
    job_container: &'a Map<String, Value>,
) -> Candidates<'a> {
    fn add(ctx: &Map<String, Value>) -> Option<&Value> {
        ctx.get("capabilities")?.get("add")
    }
    let mut c = Candidates::default();
    for (origin, ctx) in container_layers(policy, role) {
        match (add(ctx).and_then(Value::as_array), drops(ctx)) {
            // One layer that adds and drops the same capability: the drop wins (GitLab
            // Runner's `cap_add` + `cap_drop`).
            (Some(list), Some(dropped)) if list.iter().any(|a| dropped.contains(a)) => {
                let kept: Vec<Value> = list.iter().filter(|a| !dropped.contains(a)).cloned().collect();
                c.insert(Candidate {
                    origin,
                    value: Cow::Owned(Value::Array(kept)),
                });
            }
            _ => c.push(origin, add(ctx)),
        }
    }
    c.push(Origin::new(Layer::Job, Scope::Containers), add(job_container));
    c
}
