//! Pod Security Standards: the upstream PodSecurity admission checks, at every version.
//!
//! [`evaluate`] answers exactly as the API server's PodSecurity admission does for a pod
//! at a [`LevelVersion`]; [`Evaluation::message`] gives its denial message byte for byte.

//!
//! ```
//! use ciguard::pss::{evaluate, Level, LevelVersion, Version};
//! use k8s_openapi::api::core::v1::{Container, PodSpec};
//!
//! let spec = PodSpec {
//!     containers: vec![Container { name: "build".into(), ..Default::default() }],
//!     ..Default::default()
//! };
//! let lv = LevelVersion { level: Level::Baseline, version: Version::Latest };
//! assert!(evaluate(&Default::default(), &spec, lv).allowed());
//!
//! let lv: LevelVersion = "restricted:v1.30".parse().unwrap();
//! let denied = evaluate(&Default::default(), &spec, lv);
//! assert!(denied.message().starts_with(
//!     "violates PodSecurity \"restricted:v1.30\": allowPrivilegeEscalation != false \
//!      (container \"build\" must set securityContext.allowPrivilegeEscalation=false), "
//! ));
//! ```
//!
//! Each upstream check lives in its own file under `checks/`, one function per version at
//! which its behaviour changes; `registry` validates them once and precomputes the list
//! of checks for every level and version, in upstream order.

mod checks;
mod exempt;
mod registry;
pub mod view;
mod visit;

use std::{borrow::Cow, fmt, str::FromStr};

use k8s_openapi::{
    api::core::v1::{ContainerPort, PodSpec},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};

pub use exempt::Exemptions;
use view::PodView;

/// A Pod Security Standards level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Everything allowed.
    Privileged,
    /// Known privilege escalations prevented.
    Baseline,
    /// Hardened: baseline plus the restricted checks.
    Restricted,
}

impl Level {
    /// The lowercase name, as in namespace labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown level or malformed version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not one of privileged, baseline, restricted.
    #[error("unknown level \"{0}\", expected one of privileged, baseline, restricted")]
    Level(String),
    /// Not `latest` or `v1.N`.
    #[error("malformed version \"{0}\", expected \"latest\" or \"v1.N\" (e.g. v1.30)")]
    Version(String),
}

impl FromStr for Level {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            other => Err(ParseError::Level(other.to_string())),
        }
    }
}

/// A Pod Security Standards version: `latest` or `v1.N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// The newest version ciguard knows.
    Latest,
    /// `v1.N`, holding N. May be newer than ciguard knows; it is then evaluated as the newest.
    Minor(u32),
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Version::Latest => f.write_str("latest"),
            Version::Minor(n) => write!(f, "v1.{n}"),
        }
    }
}

impl FromStr for Version {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "latest" {
            return Ok(Version::Latest);
        }
        let bad = || ParseError::Version(s.to_string());
        let minor = s.strip_prefix("v1.").ok_or_else(bad)?;
        if minor.is_empty()
            || !minor.bytes().all(|b| b.is_ascii_digit())
            || (minor.len() > 1 && minor.starts_with('0'))
        {
            return Err(bad());
        }
        minor.parse().map(Version::Minor).map_err(|_| bad())
    }
}

/// A level at a version, e.g. `restricted:v1.30`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LevelVersion {
    /// The level.
    pub level: Level,
    /// The version, as asked.
    pub version: Version,
}

impl fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.level, self.version)
    }
}

impl FromStr for LevelVersion {
    type Err = ParseError;
    /// `level:version` (e.g. `restricted:v1.30`), or a level alone for `latest`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (level, version) = s.split_once(':').unwrap_or((s, "latest"));
        Ok(LevelVersion {
            level: level.parse()?,
            version: version.parse()?,
        })
    }
}

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The upstream check ID, e.g. `runAsNonRoot`.
    pub check: &'static str,
    /// The short, stable reason, e.g. `runAsNonRoot != true`.
    pub reason: Cow<'static, str>,
    /// Who does what wrong; empty when the check gives no detail.
    pub detail: String,
}

/// The verdict for one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// What the pod was evaluated against, named as asked.
    pub level_version: LevelVersion,
    /// Failed checks in upstream order; empty when the pod is allowed.
    pub violations: Vec<Violation>,
}

impl Evaluation {
    /// Whether the pod is allowed.
    pub fn allowed(&self) -> bool {
        self.violations.is_empty()
    }

    /// The upstream denial message, `violates PodSecurity "restricted:v1.30": reason (detail), …`.
    pub fn message(&self) -> String {
        let mut out = format!("violates PodSecurity \"{}\": ", self.level_version);
        for (i, v) in self.violations.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&v.reason);
            if !v.detail.is_empty() {
                out.push_str(" (");
                out.push_str(&v.detail);
                out.push(')');
            }
        }
        out
    }
}

/// What one check says about a pod: upstream's `CheckResult`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckResult {
    /// The pod passes the check.
    Allowed,
    /// The pod fails the check.
    Forbidden {
        /// The short, stable reason, e.g. `runAsNonRoot != true`.
        reason: Cow<'static, str>,
        /// Who does what wrong; may be empty.
        detail: String,
    },
}

impl CheckResult {
    /// A failed check with a static reason.
    pub fn forbidden(reason: &'static str, detail: String) -> Self {
        CheckResult::Forbidden {
            reason: Cow::Borrowed(reason),
            detail,
        }
    }

    /// Whether the pod passes the check.
    pub fn is_allowed(&self) -> bool {
        matches!(self, CheckResult::Allowed)
    }
}

/// Evaluates a pod (its metadata and spec, as the API server sees them) at a level and version.
///
/// `privileged` allows everything. A version newer than [`newest_minor`] is evaluated as
/// the newest, and `latest` is the newest; the [`Evaluation`] keeps the version as asked.
/// A volume with no source counts as the `emptyDir` the API server defaults it to.
/// Nothing is allocated when the pod is allowed.
///
/// The messages are the API server's own:
///
/// ```
/// use ciguard::pss::{LevelVersion, evaluate};
/// use k8s_openapi::api::core::v1::Pod;
///
/// let pod: Pod = ciguard::value::from_value(ciguard::json!({
///     "metadata": {"name": "job"},
///     "spec": {"containers": [{"name": "build", "image": "alpine",
///               "securityContext": {"privileged": true}}]}
/// }))?;
/// let spec = pod.spec.unwrap_or_default();
///
/// let baseline = evaluate(&pod.metadata, &spec, "baseline:v1.30".parse()?);
/// assert!(!baseline.allowed());
/// assert_eq!(
///     baseline.message(),
///     r#"violates PodSecurity "baseline:v1.30": privileged (container "build" must not set securityContext.privileged=true)"#
/// );
/// let privileged: LevelVersion = "privileged".parse()?;
/// assert!(evaluate(&pod.metadata, &spec, privileged).allowed());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn evaluate(metadata: &ObjectMeta, spec: &PodSpec, level_version: LevelVersion) -> Evaluation {
    evaluate_view(metadata, &PodView::of(spec), level_version)
}

/// [`evaluate`] on a [`PodView`]: what the checks read of a pod, however it was read
/// (`PodView::of` a `PodSpec`, or [`AdmittedPod::view`](crate::workload::AdmittedPod::view)).
pub fn evaluate_view(metadata: &ObjectMeta, spec: &PodView<'_>, level_version: LevelVersion) -> Evaluation {
    registry::evaluate(metadata, spec, level_version)
}

/// [`evaluate`], with some containers left out of some checks (a policy's `exceptions`):
/// each exempted check that fails is evaluated again on the pod without its exempted
/// containers; the pod-level fields and the other containers are judged as usual.
pub fn evaluate_exempting(
    metadata: &ObjectMeta,
    spec: &PodSpec,
    level_version: LevelVersion,
    exempt: &Exemptions,
) -> Evaluation {
    exempt::evaluate(metadata, &PodView::of(spec), level_version, exempt)
}

/// [`evaluate_exempting`] on a [`PodView`] (what the checks read of a pod).
pub(crate) fn evaluate_view_exempting(
    metadata: &ObjectMeta,
    spec: &PodView<'_>,
    level_version: LevelVersion,
    exempt: &Exemptions,
) -> Evaluation {
    exempt::evaluate(metadata, spec, level_version, exempt)
}

/// Whether the check `id` runs at a level and version (a baseline check that a restricted
/// one replaces does not run at `restricted`).
pub fn check_runs(level_version: LevelVersion, id: &str) -> bool {
    registry::check_fn(level_version, id).is_some()
}

/// Every upstream check ID ciguard knows, in registration order.
pub fn check_ids() -> impl Iterator<Item = &'static str> {
    checks::ALL.iter().map(|c| c.id)
}

/// The newest Kubernetes minor version whose Pod Security Standards ciguard knows
/// (`latest` is `v1.<newest_minor()>`).
pub fn newest_minor() -> u32 {
    registry::newest_minor()
}

/// Applies the defaulting the API server does to a `Pod` (not to pod templates) that
/// changes what PodSecurity sees: with `hostNetwork: true`, every container and init
/// container port without a `hostPort` gets `hostPort = containerPort`.
///
/// Run it on a Pod read from disk before [`evaluate`] to get the API server's message
/// (`hostPort (container "c" uses hostPort 80)` besides `host namespaces`). Objects an
/// admission webhook receives are already defaulted.
pub fn apply_pod_defaults(spec: &mut PodSpec) {
    let containers = spec.containers.iter_mut();
    let ports = containers
        .chain(spec.init_containers.iter_mut().flatten())
        .flat_map(|c| c.ports.iter_mut().flatten());
    default_host_ports(spec.host_network, ports);
}

/// [`apply_pod_defaults`]'s rule, on the ports of a pod's containers and init containers
/// however they were read: with `hostNetwork: true`, a port without a `hostPort` gets
/// `hostPort = containerPort`.
pub(crate) fn default_host_ports<'a>(
    host_network: Option<bool>,
    ports: impl Iterator<Item = &'a mut ContainerPort>,
) {
    if host_network != Some(true) {
        return;
    }
    for port in ports {
        if port.host_port.unwrap_or(0) == 0 {
            port.host_port = Some(port.container_port);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        assert_eq!("latest".parse(), Ok(Version::Latest));
        assert_eq!("v1.30".parse(), Ok(Version::Minor(30)));
        assert_eq!("v1.0".parse(), Ok(Version::Minor(0)));
        for bad in ["1.30", "v1.", "v2.1", "v1.03", "v1.3a", "", "v1.99999999999"] {
            assert!(bad.parse::<Version>().is_err(), "{bad}");
        }
    }
}
