//! Precedence layers and provenance: which policy statement set each field.

use std::{borrow::Cow, fmt, sync::Arc};

use crate::value::Value;
use serde::Serialize;

use crate::policy::Role;

/// The five precedence layers, lowest first; `Ord` is precedence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Layer {
    /// `pod.default` / `containers.default`
    Default,
    /// The role's `default`
    RoleDefault,
    /// What the incoming pod already carries, if allowed
    Job,
    /// `pod.enforced` / `containers.enforced`
    Enforced,
    /// The role's `enforced` (bypasses the allowlists)
    RoleEnforced,
}

/// Where in the policy (or the pod) a value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Scope {
    /// The pod-level security context (`pod.*`, or the pod's own `spec.securityContext`).
    Pod,
    /// Every container (`containers.*`, or the container's own `securityContext`).
    Containers,
    /// A role section (`build.*`, `helper.*`, …).
    Role(Role),
}

/// The origin of a resulting field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Origin {
    /// A precedence layer.
    Layer {
        /// The layer.
        layer: Layer,
        /// Pod, containers or role.
        scope: Scope,
    },
    /// A policy exception (`spec.exceptions`, by name) that let the job's request stand.
    Exception(&'static str),
    /// The working-directory init container ciguard adds.
    WorkdirInit,
    /// `spec.forcedUser`: `HOME` and the writable `/tmp` of a container whose uid the
    /// policy set.
    ForcedUser,
}

impl Origin {
    /// A layer origin.
    pub const fn new(layer: Layer, scope: Scope) -> Self {
        Origin::Layer { layer, scope }
    }

    /// The ordering key: layer, then container before pod at the same layer.
    pub(crate) fn rank(self) -> (u8, u8) {
        match self {
            Origin::Layer { layer, scope } => (layer as u8, u8::from(scope != Scope::Pod)),
            // Above every layer: the request it grants stands over enforced values.
            Origin::Exception(_) => (Layer::RoleEnforced as u8 + 1, 0),
            Origin::WorkdirInit | Origin::ForcedUser => (u8::MAX, 0),
        }
    }

    /// The layer, for layer origins.
    pub fn layer(self) -> Option<Layer> {
        match self {
            Origin::Layer { layer, .. } => Some(layer),
            Origin::Exception(_) | Origin::WorkdirInit | Origin::ForcedUser => None,
        }
    }
}

impl Origin {
    /// The origin's text in two fixed parts (`("build", ".enforced")`, `("job", "")`),
    /// for every origin but an exception's, whose text holds the exception's name. The
    /// audit line writes these without formatting; [`Display`](fmt::Display) joins them.
    pub fn fixed_text(self) -> Option<(&'static str, &'static str)> {
        let (layer, scope) = match self {
            Origin::WorkdirInit => return Some(("workdirInit", "")),
            Origin::ForcedUser => return Some(("forcedUser", "")),
            Origin::Exception(_) => return None,
            Origin::Layer { layer, scope } => (layer, scope),
        };
        let section = match scope {
            Scope::Pod => "pod",
            Scope::Containers => "containers",
            Scope::Role(r) => r.as_str(),
        };
        Some(match layer {
            Layer::Job if scope == Scope::Pod => ("job (pod securityContext)", ""),
            Layer::Job => ("job", ""),
            Layer::Default | Layer::RoleDefault => (section, ".default"),
            Layer::Enforced | Layer::RoleEnforced => (section, ".enforced"),
        })
    }
}

impl fmt::Display for Origin {
    /// The policy key (`pod.default`, `build.enforced`), `job` or `job (pod)`,
    /// `exception "NAME"`, `workdirInit`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Origin::Exception(name) = self {
            return write!(f, "exception \"{name}\"");
        }
        let (a, b) = self.fixed_text().unwrap_or_default();
        f.write_str(a)?;
        f.write_str(b)
    }
}

/// Which list of the pod spec a container is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum List {
    /// `spec.initContainers`
    InitContainers,
    /// `spec.containers`
    Containers,
}

impl List {
    /// The field name in the pod spec.
    pub fn key(self) -> &'static str {
        match self {
            List::InitContainers => "initContainers",
            List::Containers => "containers",
        }
    }
}

/// A security-context field of the pod or of one container.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct FieldRef {
    /// The container (list and name); `None` for the pod-level security context.
    pub container: Option<(List, Arc<str>)>,
    /// The field name inside `securityContext` (`runAsUser`, `capabilities.drop`, …), or
    /// outside it for the pod spec's and container's own fields (`hostUsers`, `env[HOME]`,
    /// `volumeMounts[ciguard-tmp]`, `volumes[ciguard-tmp]`).
    pub field: Cow<'static, str>,
}

impl fmt::Display for FieldRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ctx = if super::fields::in_security_context(&self.field) {
            "securityContext."
        } else {
            ""
        };
        match &self.container {
            None => write!(f, "spec.{ctx}{}", self.field),
            Some((list, name)) => write!(f, "spec.{}[{name}].{ctx}{}", list.key(), self.field),
        }
    }
}

/// One resulting field and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Provenance {
    /// The field.
    pub field: FieldRef,
    /// Its resulting value.
    pub value: Value,
    /// Who set it.
    pub origin: Origin,
}

/// One write the policy made to the document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The field (for an added or removed container, `field` is empty).
    pub field: FieldRef,
    /// The value before (`None`: absent).
    pub old: Option<Value>,
    /// The value after (`None`: removed).
    pub new: Option<Value>,
    /// Who decided; `None` when the job's value was dropped (disallowed or yielding)
    /// and nothing replaces it at this level.
    pub origin: Option<Origin>,
}
