//! The policy file (SPEC §2): its serde model, the built-in default, and the validated
//! form the engine works with.
//!
//! Parsing is two-phase, as in cargo-deny: text → [`Policy`] (syntax, types, unknown keys)
//! → [`ValidPolicy`] (values: allowlists, versions, globs, security-context values), with
//! every error located at file:line:column. See [`load`].

pub mod allowlist;
pub mod exception;
pub mod load;
pub mod pod_context;
pub mod presets;
pub mod roles;
pub mod selector;
pub mod set;

use std::fmt;

use crate::value::{Map, Value};
use k8s_openapi::{
    api::core::v1::{ResourceRequirements, SecurityContext},
    apimachinery::pkg::apis::meta::v1::LabelSelector,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use allowlist::IdSet;
pub use load::{PolicyError, PolicyErrors};
pub use pod_context::PodContext;
pub use presets::{Choice, PodFacts};
pub use roles::{ContainerKind, Preset, Role, RoleMatcher};

use crate::pss::LevelVersion;

/// The `apiVersion` of a policy file.
pub const API_VERSION: &str = "ciguard.io/v1alpha1";
/// The `kind` of a policy file.
pub const KIND: &str = "SecurityPolicy";
/// The image of the working-directory init container unless the policy names another.
pub const DEFAULT_WORKDIR_IMAGE: &str = "busybox:stable-musl";

/// The built-in policy, used when no policy file is given.
pub const BUILTIN_POLICY: &str = include_str!("builtin.yaml");

/// A policy file, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Policy {
    /// Must be `ciguard.io/v1alpha1`.
    pub api_version: String,
    /// Must be `SecurityPolicy`.
    pub kind: String,
    /// Name and labels, as in Kubernetes objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    /// What the policy does.
    #[serde(default)]
    pub spec: PolicySpec,
}

/// The policy's metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    /// The policy's name, used in messages and metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<std::collections::BTreeMap<String, String>>,
    /// Free-form annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<std::collections::BTreeMap<String, String>>,
}

/// The policy's `spec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicySpec {
    /// How container names map to roles: generic, gitlab-runner, woodpecker, tekton,
    /// github-arc, argo, jenkins, buildkite, or auto (per pod, by its labels).
    #[serde(default)]
    pub preset: Preset,
    /// Extra role matchers, tried before the preset's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<RoleMatcher>,
    /// The Pod Security Standards target every rendered pod must meet. Absent: none
    /// (`privileged`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pss: Option<PssSpec>,
    /// What a disallowed job request does: `warn` drops it, `deny` rejects the pod.
    #[serde(default)]
    pub on_violation: OnViolation,
    /// User IDs a job may ask for (`runAsUser`). Absent: any non-root ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_users: Option<Vec<String>>,
    /// Group IDs a job may ask for (`runAsGroup`, `fsGroup`, `supplementalGroups`).
    /// Absent: any non-root ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_groups: Option<Vec<String>>,
    /// Admit a job's uid or gid 0 when the rendered pod has `hostUsers: false` (uid 0 of a
    /// user namespace is an unprivileged uid on the node; Woodpecker's rule). Default false:
    /// root follows the allowlists.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_root_in_user_namespace: bool,
    /// Capabilities a job may add (`capabilities.add`), with or without the `CAP_` prefix,
    /// in any case. Absent: no restriction beyond `pss`. The policy's own layers bypass it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_capabilities: Option<Vec<String>>,
    /// For containers whose `runAsUser` the policy set (not the job): a home and a
    /// writable `/tmp`, so that tools run under a forced uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced_user: Option<ForcedUser>,
    /// The pod-level security context: `spec.securityContext`, and `hostUsers`.
    #[serde(default, skip_serializing_if = "Section::is_empty")]
    pub pod: Section<PodContext>,
    /// Every container and init container.
    #[serde(default, skip_serializing_if = "Section::is_empty")]
    pub containers: Section<SecurityContext>,
    /// The build role.
    #[serde(default, skip_serializing_if = "Section::is_empty")]
    pub build: Section<SecurityContext>,
    /// The helper role.
    #[serde(default, skip_serializing_if = "Section::is_empty")]
    pub helper: Section<SecurityContext>,
    /// The service role.
    #[serde(default, skip_serializing_if = "Section::is_empty")]
    pub service: Section<SecurityContext>,
    /// The init role.
    #[serde(default, skip_serializing_if = "Section::is_empty")]
    pub init: Section<SecurityContext>,
    /// The working-directory init container for non-root jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workdir_init: Option<WorkdirInit>,
    /// Where the policy applies: the selectors of its webhooks (`ciguard webhook-config`).
    /// Absent: every namespace and every pod.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub match_: Option<Match>,
    /// What the API server does when the webhook cannot answer: `Fail` (default) or `Ignore`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_policy: Option<FailurePolicy>,
    /// Values and Pod Security checks granted only to the containers of some roles that
    /// run some images (e.g. a Docker-in-Docker service may run privileged).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<exception::Exception>,
}

impl PolicySpec {
    /// The section of a role.
    pub fn role(&self, role: Role) -> &Section<SecurityContext> {
        match role {
            Role::Build => &self.build,
            Role::Helper => &self.helper,
            Role::Service => &self.service,
            Role::Init => &self.init,
        }
    }

    /// The section of a role, mutably.
    pub fn role_mut(&mut self, role: Role) -> &mut Section<SecurityContext> {
        match role {
            Role::Build => &mut self.build,
            Role::Helper => &mut self.helper,
            Role::Service => &mut self.service,
            Role::Init => &mut self.init,
        }
    }
}

/// A `default` and an `enforced` security context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Section<T> {
    /// Applies unless the job asks otherwise.
    #[serde(default = "Option::default", skip_serializing_if = "Option::<T>::is_none")]
    pub default: Option<T>,
    /// Applies whatever the job asks.
    #[serde(default = "Option::default", skip_serializing_if = "Option::<T>::is_none")]
    pub enforced: Option<T>,
}

impl<T> Default for Section<T> {
    fn default() -> Self {
        Self {
            default: None,
            enforced: None,
        }
    }
}

impl<T> Section<T> {
    /// Whether neither context is set.
    pub fn is_empty(&self) -> bool {
        self.default.is_none() && self.enforced.is_none()
    }
}

/// `spec.pss`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PssSpec {
    /// privileged, baseline or restricted.
    pub level: String,
    /// `latest` or `v1.N`.
    #[serde(default = "latest")]
    pub version: String,
}

fn latest() -> String {
    "latest".into()
}

/// What a disallowed job request does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnViolation {
    /// Drop the request (lower layers apply) and warn.
    #[default]
    Warn,
    /// Reject the pod.
    Deny,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `spec.forcedUser`: what a container whose uid the policy forced gets, unless it has it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ForcedUser {
    /// `HOME` for the container (an absolute path), unless its `env` sets `HOME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    /// Mount an emptyDir volume `ciguard-tmp` at `/tmp`, unless something is mounted there.
    #[serde(default)]
    pub writable_tmp: bool,
}

/// `spec.workdirInit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorkdirInit {
    /// Whether to add the init container. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Its image. Default `busybox:stable-musl`.
    #[serde(default = "default_image")]
    pub image: String,
    /// Its resources. Default requests and limits `cpu: 5m`, `memory: 12Mi` (a
    /// `mkdir -p` needs no more, and namespaces with a ResourceQuota need them set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

impl Default for WorkdirInit {
    fn default() -> Self {
        Self {
            enabled: true,
            image: default_image(),
            resources: None,
        }
    }
}

fn yes() -> bool {
    true
}

fn default_image() -> String {
    DEFAULT_WORKDIR_IMAGE.into()
}

/// `spec.match`: the namespaces and pods a policy's webhooks select, as in the
/// `namespaceSelector` and `objectSelector` of a webhook configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Match {
    /// The namespace labels. Absent: every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// The pod labels. Absent: every pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_selector: Option<LabelSelector>,
}

/// `spec.failurePolicy`: what the API server does when the webhook cannot answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum FailurePolicy {
    /// The request fails: no pod starts without the policy.
    #[default]
    Fail,
    /// The request goes on as if the webhook had allowed it.
    Ignore,
}

impl FailurePolicy {
    /// The Kubernetes value.
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Fail => "Fail",
            FailurePolicy::Ignore => "Ignore",
        }
    }
}

/// The JSON Schema of the policy file (what `ciguard schema` prints).
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Policy)).unwrap_or_default()
}

/// A `default` and an `enforced` security context as JSON objects (the field names of
/// the Kubernetes API), ready for the merge engine.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Contexts {
    /// The `default` context.
    pub default: Map<String, Value>,
    /// The `enforced` context.
    pub enforced: Map<String, Value>,
}

/// A policy whose every value has been checked: the only form the engine accepts.
#[derive(Debug, Clone)]
pub struct ValidPolicy {
    /// The policy as written.
    pub policy: Policy,
    /// Where it came from (`builtin` for the built-in policy).
    pub source: String,
    /// The PSS target (`privileged:latest` when none is set).
    pub pss: LevelVersion,
    /// Parsed `allowedUsers`.
    pub allowed_users: Option<IdSet>,
    /// Parsed `allowedGroups`.
    pub allowed_groups: Option<IdSet>,
    /// `pod`.
    pub pod: Contexts,
    /// `containers`.
    pub containers: Contexts,
    /// The role sections, indexed by [`Role`] in [`Role::ALL`] order.
    pub roles: [Contexts; 4],
    /// `workdirInit` with its defaults.
    pub workdir_init: WorkdirInit,
    /// `exceptions`, checked, in policy order.
    pub exceptions: Vec<exception::ValidException>,
}

impl ValidPolicy {
    /// The built-in policy (SPEC §2).
    pub fn builtin() -> Self {
        match load::from_str(BUILTIN_POLICY, "builtin") {
            Ok(p) => p,
            // The built-in policy is tested to load; fall back to an empty one all the same.
            Err(_) => load::empty(),
        }
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        self.policy
            .metadata
            .as_ref()
            .and_then(|m| m.name.as_deref())
            .unwrap_or("unnamed")
    }

    /// The spec as written.
    pub fn spec(&self) -> &PolicySpec {
        &self.policy.spec
    }

    /// The contexts of a role.
    pub fn role(&self, role: Role) -> &Contexts {
        &self.roles[role as usize]
    }

    /// The role of a container in a pod.
    pub fn role_of(&self, pod: &PodFacts<'_>, name: &str, kind: ContainerKind) -> Role {
        roles::role_of(&self.policy.spec.roles, self.policy.spec.preset, pod, name, kind)
    }

    /// The preset that applies to a pod, and why (for `auto`, the one it is recognised as).
    pub fn preset_for(&self, pod: &PodFacts<'_>) -> Choice {
        self.policy.spec.preset.choose(pod)
    }

    /// The preset that applies to the pod an object carries, and why; `None` for objects
    /// that carry no pod.
    pub fn preset_for_object(&self, object: &Value) -> Option<Choice> {
        let kind = crate::workload::WorkloadKind::of(object)?;
        let labels = crate::workload::pod_labels(object, kind);
        let pod = PodFacts::new(&labels, crate::workload::at(object, kind.spec_path()));
        Some(self.preset_for(&pod))
    }
}

impl fmt::Display for OnViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnViolation::Warn => "warn",
            OnViolation::Deny => "deny",
        })
    }
}
