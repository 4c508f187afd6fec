//! Field tables and candidate resolution: which layer's value wins, field by field.
//!
//! Every security-context key is merged as a unit (leaf values, and `seccompProfile`,
//! `appArmorProfile`, `seLinuxOptions`, `windowsOptions`, `sysctls`, `supplementalGroups`
//! replaced whole), except `capabilities`: its `drop` is the union of every layer, its
//! `add` comes from the highest layer that sets it.

use std::borrow::Cow;

use crate::value::{Map, Value};

use super::layer::{Layer, Origin, Scope};
use crate::policy::{Contexts, Role, ValidPolicy};

/// Where a field lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// Only the pod-level security context has it.
    Pod,
    /// Only a container's security context has it.
    Container,
    /// Both have it; a container value overrides the pod value.
    Both,
    /// The pod spec itself (`hostUsers`), set in `pod.default`/`pod.enforced`.
    Spec,
}

/// How a field's values from several layers combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Merge {
    /// A scalar: the highest layer's value.
    Leaf,
    /// An object or list replaced whole by a higher layer (`seccompProfile`, `sysctls`, …).
    Whole,
    /// `capabilities`: `drop` is the union of every layer, `add` the highest layer's.
    Capabilities,
}

/// Which allowlist checks a job's request for a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdList {
    /// `allowedUsers`
    Users,
    /// `allowedGroups`
    Groups,
}

impl IdList {
    /// The policy key.
    pub const fn key(self) -> &'static str {
        match self {
            IdList::Users => "allowedUsers",
            IdList::Groups => "allowedGroups",
        }
    }
}

/// One field ciguard merges: the single definition the loader, the engine, validity,
/// lint and import read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    /// The Kubernetes API name.
    pub name: &'static str,
    /// Pod, container or both.
    pub level: Level,
    /// How layers combine.
    pub merge: Merge,
    /// The job's user or group: the helper role never inherits it from the pod.
    pub identity: bool,
    /// The allowlist a job's request is checked against (IDs in 0…2147483647).
    pub ids: Option<IdList>,
    /// Allowed string values, as (path inside the field, values); `""` is the field itself.
    pub values: &'static [(&'static str, &'static [&'static str])],
}

const PROFILE_TYPES: &[&str] = &["RuntimeDefault", "Localhost", "Unconfined"];

const fn field(name: &'static str, level: Level, merge: Merge) -> Field {
    Field {
        name,
        level,
        merge,
        identity: false,
        ids: None,
        values: &[],
    }
}

const fn ids(name: &'static str, level: Level, list: IdList, identity: bool) -> Field {
    Field {
        name,
        level,
        merge: if identity { Merge::Leaf } else { Merge::Whole },
        identity,
        ids: Some(list),
        values: &[],
    }
}

const fn one_of(
    name: &'static str,
    level: Level,
    merge: Merge,
    values: &'static [(&'static str, &'static [&'static str])],
) -> Field {
    Field {
        name,
        level,
        merge,
        identity: false,
        ids: None,
        values,
    }
}

/// Every field, in Kubernetes' order (the pod's and the containers' orders are both
/// subsequences of it, and the engine writes in that order).
pub(crate) const FIELDS: &[Field] = &[
    ids("runAsUser", Level::Both, IdList::Users, true),
    ids("runAsGroup", Level::Both, IdList::Groups, true),
    field("runAsNonRoot", Level::Both, Merge::Leaf),
    Field {
        merge: Merge::Leaf,
        ..ids("fsGroup", Level::Pod, IdList::Groups, false)
    },
    one_of(
        "fsGroupChangePolicy",
        Level::Pod,
        Merge::Leaf,
        &[("", &["OnRootMismatch", "Always"])],
    ),
    ids("supplementalGroups", Level::Pod, IdList::Groups, false),
    one_of(
        "supplementalGroupsPolicy",
        Level::Pod,
        Merge::Leaf,
        &[("", &["Merge", "Strict"])],
    ),
    field("allowPrivilegeEscalation", Level::Container, Merge::Leaf),
    field("privileged", Level::Container, Merge::Leaf),
    field("readOnlyRootFilesystem", Level::Container, Merge::Leaf),
    one_of(
        "procMount",
        Level::Container,
        Merge::Leaf,
        &[("", &["Default", "Unmasked"])],
    ),
    field("seLinuxOptions", Level::Both, Merge::Whole),
    one_of(
        "seLinuxChangePolicy",
        Level::Pod,
        Merge::Leaf,
        &[("", &["MountOption", "Recursive"])],
    ),
    one_of(
        "seccompProfile",
        Level::Both,
        Merge::Whole,
        &[("type", PROFILE_TYPES)],
    ),
    one_of(
        "appArmorProfile",
        Level::Both,
        Merge::Whole,
        &[("type", PROFILE_TYPES)],
    ),
    field("sysctls", Level::Pod, Merge::Whole),
    field("windowsOptions", Level::Both, Merge::Whole),
    field("capabilities", Level::Container, Merge::Capabilities),
    field("hostUsers", Level::Spec, Merge::Leaf),
];

/// Which fields a name list holds.
#[derive(Clone, Copy)]
enum Pick {
    Pod,
    Container,
}

const fn picked(f: &Field, pick: Pick) -> bool {
    match pick {
        Pick::Pod => matches!(f.level, Level::Pod | Level::Both),
        // Capabilities are merged on their own (drop union, add candidates).
        Pick::Container => {
            matches!(f.level, Level::Container | Level::Both) && !matches!(f.merge, Merge::Capabilities)
        }
    }
}

const fn count(pick: Pick) -> usize {
    let (mut i, mut n) = (0, 0);
    while i < FIELDS.len() {
        if picked(&FIELDS[i], pick) {
            n += 1;
        }
        i += 1;
    }
    n
}

const fn names<const N: usize>(pick: Pick) -> [&'static str; N] {
    let mut out = [""; N];
    let (mut i, mut n) = (0, 0);
    while i < FIELDS.len() {
        if picked(&FIELDS[i], pick) {
            out[n] = FIELDS[i].name;
            n += 1;
        }
        i += 1;
    }
    out
}

/// The pod-level fields ciguard merges, in Kubernetes' order.
pub(crate) const POD_FIELDS: [&str; count(Pick::Pod)] = names(Pick::Pod);

/// The container-level fields ciguard merges (capabilities apart), in Kubernetes' order.
pub(crate) const CONTAINER_FIELDS: [&str; count(Pick::Container)] = names(Pick::Container);

/// The pod spec field `pod.default`/`pod.enforced` accept beside the security context.
pub(crate) const HOST_USERS: &str = crate::policy::pod_context::HOST_USERS;

/// The definition of a field.
pub(crate) fn lookup(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name == name)
}

/// Whether a path the engine writes is inside a security context: the [`Level::Spec`]
/// fields and the named list items ciguard adds (`env[HOME]`, `volumeMounts[ciguard-tmp]`,
/// `volumes[ciguard-tmp]`) are not, nor the host namespaces `hostUsers: false` removes.
pub(crate) fn in_security_context(path: &str) -> bool {
    let head = path.split(['[', '.']).next().unwrap_or(path);
    !(matches!(
        head,
        "env" | "volumeMounts" | "volumes" | "hostNetwork" | "hostPID" | "hostIPC"
    ) || lookup(head).is_some_and(|f| f.level == Level::Spec))
}

/// Whether a pod-level security-context field exists.
pub(crate) fn is_pod_field(field: &str) -> bool {
    lookup(field).is_some_and(|f| matches!(f.level, Level::Pod | Level::Both))
}

/// Whether a container-level security-context field exists.
pub(crate) fn is_container_field(field: &str) -> bool {
    lookup(field).is_some_and(|f| matches!(f.level, Level::Container | Level::Both))
}

/// The fields both levels have: a container value overrides the pod value.
pub(crate) fn is_shared(field: &str) -> bool {
    lookup(field).is_some_and(|f| f.level == Level::Both)
}

/// The job's user and group, which the helper role never inherits.
pub(crate) fn is_job_identity(field: &str) -> bool {
    lookup(field).is_some_and(|f| f.identity)
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
    let policy_layers = container_layers(policy, role);
    let [a, b, c, d] = policy_layers;
    let mut layers = [a, b, c, d, (job_origin, job_container)];
    layers.sort_by_key(|(o, _)| o.rank());
    let mut top: Option<Origin> = None;
    let mut union: Vec<Value> = drops(job_container).cloned().unwrap_or_default();
    // A policy that drops capabilities writes the list: the job's junk entries (empty or
    // non-string names, which no runtime knows) do not survive into it.
    let policy_drops = policy_layers
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The lists the engine walked before the table existed: the order decides the order of
    /// the patch, which must not change.
    #[test]
    fn merge_order_is_kubernetes_order() {
        assert_eq!(
            POD_FIELDS,
            [
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
            ]
        );
        assert_eq!(
            CONTAINER_FIELDS,
            [
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
            ]
        );
    }

    #[test]
    fn names_are_unique_and_k8s_fields() {
        use k8s_openapi::api::core::v1 as core;
        let pod = crate::policy::load::fields_of::<core::PodSecurityContext>();
        let container = crate::policy::load::fields_of::<core::SecurityContext>();
        for (i, f) in FIELDS.iter().enumerate() {
            assert!(FIELDS[..i].iter().all(|g| g.name != f.name), "{} twice", f.name);
            let (p, c) = (pod.contains(&f.name), container.contains(&f.name));
            let want = match f.level {
                Level::Pod => (true, false),
                Level::Container => (false, true),
                Level::Both => (true, true),
                Level::Spec => (false, false),
            };
            assert_eq!((p, c), want, "{}", f.name);
        }
    }
}
