//! `spec.exceptions` (SPEC §5): security-context values and Pod Security checks that a
//! policy grants only to containers of some roles running some images — Docker-in-Docker
//! privileged as a service, and nothing else privileged.
//!
//! An image pattern is a glob (`*` any run of characters, `/` included; `?` one character)
//! over the *normalised* image reference, which is how Docker reads a reference:
//!
//! - a first path segment that contains `.` or `:` or is `localhost` is the registry;
//!   otherwise the registry is `docker.io` (`index.docker.io` is `docker.io` too);
//! - on `docker.io`, a one-segment name is an official image under `library/`;
//! - the tag follows the last `:` after the last `/`; the digest follows `@`; an image
//!   with neither has the tag `latest`.
//!
//! Both the container's image and the pattern are normalised the same way, so
//! `docker:*-dind` matches `docker:27-dind` and `docker.io/library/docker:27-dind`. A
//! pattern that starts with a wildcard is used as written (`*/docker:*-dind` matches the
//! `docker` image of every registry). A pattern without a tag matches every tag and
//! digest of its name; a pattern with a tag needs the image to carry a matching tag; a
//! pattern with a digest needs a matching digest.
//!
//! ```
//! use ciguard::policy::exception::ImagePattern;
//!
//! let dind: ImagePattern = "docker:*-dind".parse().unwrap();
//! assert!(dind.matches("docker:27-dind"));
//! assert!(dind.matches("docker.io/library/docker:27-dind@sha256:0123"));
//! assert!(!dind.matches("docker:27-cli"));
//! assert!(!dind.matches("registry.example/docker:27-dind"));
//! ```

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    str::FromStr,
    sync::{Mutex, PoisonError},
};

use crate::value::{Map, Value};
use k8s_openapi::{
    api::core::v1::{PodSpec, SecurityContext},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ContainerKind, PodFacts, Role, ValidPolicy, roles::glob_match};
use crate::pss::{
    self, Evaluation, Exemptions, LevelVersion,
    view::{ContainerList, PodView},
};

/// One entry of `spec.exceptions`, as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Exception {
    /// The exception's name, unique in the policy; `render --explain` names it.
    pub name: String,
    /// The roles whose containers it applies to. Absent: every role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<Role>>,
    /// Globs over the image reference (`docker:*-dind`, `docker.io/library/docker:*-dind`,
    /// `registry.example/ci/*@sha256:*`); the container's image must match one.
    pub images: Vec<String>,
    /// Security-context values these containers may request: a job's request equal to
    /// one of them stands above enforced values and allowlists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<SecurityContext>,
    /// Upstream Pod Security check IDs that do not judge these containers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exempt_checks: Vec<String>,
}

/// An exception whose every value has been checked.
#[derive(Debug, Clone)]
pub struct ValidException {
    /// The name (interned: merge provenance carries it).
    pub name: &'static str,
    /// The roles it applies to; `None`: every role.
    pub roles: Option<Vec<Role>>,
    /// The parsed image patterns.
    pub images: Vec<ImagePattern>,
    /// `allow` as a JSON object with the Kubernetes field names.
    pub allow: Map<String, Value>,
    /// `exemptChecks`, as written.
    pub exempt_checks: Vec<String>,
}

impl ValidException {
    /// Whether the exception applies to a container of `role` running `image`.
    pub fn applies(&self, role: Role, image: &str) -> bool {
        self.roles.as_ref().is_none_or(|r| r.contains(&role)) && self.images.iter().any(|p| p.matches(image))
    }

    /// Whether the job's request for `field` (a container security-context field, or
    /// `capabilities.add`) is one this exception allows. For `capabilities.add`, every
    /// requested name must be in `allow.capabilities.add` (with or without `CAP_`,
    /// case-insensitive); for every other field the request must equal the allowed value.
    pub fn allows(&self, field: &str, requested: &Value) -> bool {
        if field == "capabilities.add" {
            let Some(allowed) = self
                .allow
                .get("capabilities")
                .and_then(|c| c.get("add"))
                .and_then(Value::as_array)
            else {
                return false;
            };
            let allowed: BTreeSet<String> = allowed.iter().filter_map(capability).collect();
            return requested.as_array().is_some_and(|req| {
                req.iter()
                    .all(|c| capability(c).is_some_and(|c| allowed.contains(&c)))
            });
        }
        field != "capabilities"
            && self
                .allow
                .get(field)
                .is_some_and(|v| !v.is_null() && v == requested)
    }

    /// Whether it exempts containers from `check`.
    pub fn exempts(&self, check: &str) -> bool {
        self.exempt_checks.iter().any(|c| c == check)
    }
}

/// A capability name as the runtime reads it: upper case, without `CAP_`.
fn capability(v: &Value) -> Option<String> {
    let s = v.as_str()?.trim().to_ascii_uppercase();
    let s = s.strip_prefix("CAP_").map(str::to_string).unwrap_or(s);
    (!s.is_empty()).then_some(s)
}

/// The exceptions that apply to a container, in policy order. Ephemeral containers
/// (`kubectl debug`) have no role and never get one.
pub fn applicable<'p>(policy: &'p ValidPolicy, role: Role, image: &str) -> Vec<&'p ValidException> {
    policy
        .exceptions
        .iter()
        .filter(|x| x.applies(role, image))
        .collect()
}

/// Which containers of a pod each exempted check does not judge, from the policy's
/// exceptions (init containers, native sidecars and containers; ciguard's own
/// working-directory init containers and ephemeral containers are never exempt).
pub fn exemptions(policy: &ValidPolicy, metadata: &ObjectMeta, spec: &PodSpec) -> Exemptions {
    exemptions_of(policy, metadata, &PodView::of(spec))
}

/// [`exemptions`] of a [`PodView`].
pub(crate) fn exemptions_of(policy: &ValidPolicy, metadata: &ObjectMeta, spec: &PodView<'_>) -> Exemptions {
    let mut out = Exemptions::default();
    if policy.exceptions.iter().all(|x| x.exempt_checks.is_empty()) {
        return out;
    }
    let empty = BTreeMap::new();
    let labels = metadata.labels.as_ref().unwrap_or(&empty);
    let facts = PodFacts {
        labels,
        containers: spec
            .containers
            .iter()
            .filter(|c| c.list == ContainerList::Regular)
            .map(|c| c.name)
            .collect(),
    };
    for c in &spec.containers {
        let kind = match c.list {
            ContainerList::Init if c.restart_policy == Some("Always") => ContainerKind::Sidecar,
            ContainerList::Init => ContainerKind::Init,
            ContainerList::Regular => ContainerKind::Container,
            ContainerList::Ephemeral => continue,
        };
        if c.name.starts_with(crate::merge::WORKDIR_INIT_PREFIX) {
            continue;
        }
        let role = policy.role_of(&facts, c.name, kind);
        let image = c.image.unwrap_or_default();
        for x in applicable(policy, role, image) {
            for check in &x.exempt_checks {
                out.exempt(check, c.name);
            }
        }
    }
    out
}

impl ValidPolicy {
    /// Evaluates a pod against Pod Security at `level_version`, with the policy's
    /// `exceptions` exempting their containers from their `exemptChecks`.
    pub fn pod_security(
        &self,
        metadata: &ObjectMeta,
        spec: &PodSpec,
        level_version: LevelVersion,
    ) -> Evaluation {
        self.pod_security_of(metadata, &PodView::of(spec), level_version)
    }

    /// [`pod_security`](Self::pod_security) of a [`PodView`].
    pub fn pod_security_of(
        &self,
        metadata: &ObjectMeta,
        spec: &PodView<'_>,
        level_version: LevelVersion,
    ) -> Evaluation {
        let exempt = exemptions_of(self, metadata, spec);
        pss::evaluate_view_exempting(metadata, spec, level_version, &exempt)
    }
}

/// A parsed image pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePattern {
    /// As written.
    pub text: String,
    /// The glob over the normalised name (`docker.io/library/docker`).
    name: String,
    /// The tag glob; `None`: any tag.
    tag: Option<String>,
    /// The digest glob; `None`: any digest.
    digest: Option<String>,
}

/// Why an image pattern cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Empty.
    #[error("is empty, expected an image reference glob such as \"docker:*-dind\"")]
    Empty,
    /// Contains whitespace.
    #[error("contains whitespace, expected an image reference glob such as \"docker:*-dind\"")]
    Whitespace,
    /// A separator with nothing after or before it.
    #[error("has an empty {0}, expected an image reference glob such as \"docker:*-dind\"")]
    EmptyPart(&'static str),
    /// Two `@`.
    #[error("has more than one '@', expected at most one digest")]
    TwoDigests,
}

impl FromStr for ImagePattern {
    type Err = PatternError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err(PatternError::Empty);
        }
        if text.chars().any(char::is_whitespace) {
            return Err(PatternError::Whitespace);
        }
        if text.matches('@').count() > 1 {
            return Err(PatternError::TwoDigests);
        }
        let r = Reference::split(text);
        if r.name.is_empty() {
            return Err(PatternError::EmptyPart("name"));
        }
        if r.tag == Some("") {
            return Err(PatternError::EmptyPart("tag"));
        }
        if r.digest == Some("") {
            return Err(PatternError::EmptyPart("digest"));
        }
        let name = if r.name.starts_with(['*', '?']) {
            r.name.to_string()
        } else {
            normalise_name(r.name)
        };
        Ok(ImagePattern {
            text: text.to_string(),
            name,
            tag: r.tag.map(str::to_string),
            digest: r.digest.map(str::to_string),
        })
    }
}

impl fmt::Display for ImagePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl ImagePattern {
    /// Whether a container's image (as the pod spec carries it) matches.
    pub fn matches(&self, image: &str) -> bool {
        let image = image.trim();
        if image.is_empty() {
            return false;
        }
        let r = Reference::split(image);
        let name = normalise_name(r.name);
        if !glob_match(&self.name, &name) {
            return false;
        }
        // Docker's default tag applies to a reference with neither tag nor digest.
        let tag = r.tag.or(r.digest.is_none().then_some("latest"));
        let tag_ok = self
            .tag
            .as_deref()
            .is_none_or(|want| tag.is_some_and(|t| glob_match(want, t)));
        let digest_ok = self
            .digest
            .as_deref()
            .is_none_or(|want| r.digest.is_some_and(|d| glob_match(want, d)));
        tag_ok && digest_ok
    }
}

/// An image reference split into name, tag and digest (not normalised).
struct Reference<'a> {
    name: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

impl<'a> Reference<'a> {
    fn split(text: &'a str) -> Self {
        let (rest, digest) = match text.split_once('@') {
            Some((rest, d)) => (rest, Some(d)),
            None => (text, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        Reference { name, tag, digest }
    }
}

/// Docker's normalisation of a repository name: `docker` → `docker.io/library/docker`,
/// `index.docker.io/x/y` → `docker.io/x/y`, `registry.example/x` unchanged.
pub fn normalise_name(name: &str) -> String {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest),
        _ => ("docker.io", name),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io"
    } else {
        domain
    };
    if domain == "docker.io" && !path.contains('/') {
        format!("docker.io/library/{path}")
    } else {
        format!("{domain}/{path}")
    }
}

/// Interns an exception name, so that merge provenance (which is `Copy`) can carry it.
/// Each distinct name is stored once for the life of the process; reloading a policy
/// reuses the names it already has.
pub(crate) fn intern(name: &str) -> &'static str {
    static NAMES: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut names = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(known) = names.get(name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(leaked);
    leaked
}

/// The security-context fields an exception may allow: every container field but
/// `capabilities.drop` (dropping never grants anything).
pub(crate) fn allow_problems(allow: &Map<String, Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if allow.get("capabilities").and_then(|c| c.get("drop")).is_some() {
        out.push((
            "/capabilities/drop".to_string(),
            "capabilities.drop cannot be allowed: dropping a capability never needs an exception; allow capabilities.add instead".to_string(),
        ));
    }
    out
}

/// Pod Security checks that judge only pod-level fields: exempting a container from them
/// changes nothing.
pub const POD_LEVEL_CHECKS: &[&str] = &[
    "hostNamespaces",
    "hostPathVolumes",
    "restrictedVolumes",
    "sysctls",
];

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;

    // Normalisation as distribution/reference's ParseNormalizedNamed does it
    // (normalize_test.go, TestParseNormalizedNamed).
    #[rstest]
    #[case::official("docker", "docker.io/library/docker")]
    #[case::hub_user("user/repo", "docker.io/user/repo")]
    #[case::hub_explicit("docker.io/docker", "docker.io/library/docker")]
    #[case::index_alias("index.docker.io/user/repo", "docker.io/user/repo")]
    #[case::registry("registry.example/ci/docker", "registry.example/ci/docker")]
    #[case::registry_port("registry:5000/docker", "registry:5000/docker")]
    #[case::localhost("localhost/docker", "localhost/docker")]
    #[case::nested_hub("user/group/repo", "docker.io/user/group/repo")]
    fn normalises(#[case] name: &str, #[case] expected: &str) {
        assert_eq!(normalise_name(name), expected);
    }

    #[rstest]
    #[case::short_tag("docker:*-dind", "docker:27-dind", true)]
    #[case::full_image("docker:*-dind", "docker.io/library/docker:27-dind", true)]
    #[case::full_pattern("docker.io/library/docker:*-dind", "docker:27-dind", true)]
    #[case::index_alias("docker:*-dind", "index.docker.io/library/docker:27-dind", true)]
    #[case::tag_and_digest("docker:*-dind", "docker:27-dind@sha256:abc", true)]
    #[case::digest_only_no_tag("docker:*-dind", "docker@sha256:abc", false)]
    #[case::other_tag("docker:*-dind", "docker:27-cli", false)]
    #[case::no_tag_is_latest("docker:*-dind", "docker", false)]
    #[case::latest("docker:latest", "docker", true)]
    #[case::other_registry("docker:*-dind", "registry.example/docker:27-dind", false)]
    #[case::other_namespace("docker:*-dind", "evil/docker:27-dind", false)]
    #[case::prefix_only("docker:*-dind", "docker-evil:27-dind", false)]
    #[case::pattern_without_tag("docker", "docker:27-dind", true)]
    #[case::pattern_without_tag_digest("docker", "docker@sha256:abc", true)]
    #[case::digest_pattern("docker@sha256:abc", "docker:27-dind@sha256:abc", true)]
    #[case::digest_pattern_other("docker@sha256:abc", "docker@sha256:def", false)]
    #[case::digest_pattern_none("docker@sha256:abc", "docker:27-dind", false)]
    #[case::digest_glob("registry.example/ci/*@sha256:*", "registry.example/ci/dind@sha256:1", true)]
    #[case::registry_port("registry:5000/dind:*", "registry:5000/dind:1", true)]
    #[case::registry_port_no_tag("registry:5000/dind", "registry:5000/dind:1", true)]
    #[case::leading_wildcard("*/docker:*-dind", "registry.example/docker:27-dind", true)]
    #[case::leading_wildcard_hub("*/docker:*-dind", "docker:27-dind", true)]
    #[case::star_everything("*", "ghcr.io/x/y:1", true)]
    #[case::hub_star_is_official("docker.io/*", "docker:27-dind", true)]
    #[case::empty_image("docker", "", false)]
    fn matches(#[case] pattern: &str, #[case] image: &str, #[case] expected: bool) {
        let p: ImagePattern = pattern.parse().unwrap();
        assert_eq!(p.matches(image), expected, "{pattern} vs {image}");
    }

    #[rstest]
    #[case::empty("", PatternError::Empty)]
    #[case::space("docker dind", PatternError::Whitespace)]
    #[case::empty_tag("docker:", PatternError::EmptyPart("tag"))]
    #[case::empty_digest("docker@", PatternError::EmptyPart("digest"))]
    #[case::empty_name(":1", PatternError::EmptyPart("name"))]
    #[case::two_digests("a@b@c", PatternError::TwoDigests)]
    fn bad_patterns(#[case] pattern: &str, #[case] expected: PatternError) {
        assert_eq!(pattern.parse::<ImagePattern>(), Err(expected));
    }

    #[test]
    fn capabilities_add_is_a_subset_check() {
        let x = ValidException {
            name: intern("t"),
            roles: None,
            images: vec![],
            allow: serde_json::from_str(r#"{"capabilities":{"add":["NET_ADMIN","CAP_SYS_PTRACE"]}}"#)
                .unwrap(),
            exempt_checks: vec![],
        };
        assert!(x.allows("capabilities.add", &crate::json!(["net_admin"])));
        assert!(x.allows("capabilities.add", &crate::json!(["SYS_PTRACE", "CAP_NET_ADMIN"])));
        assert!(!x.allows("capabilities.add", &crate::json!(["NET_ADMIN", "SYS_ADMIN"])));
        assert!(!x.allows("privileged", &crate::json!(true)));
    }

    #[test]
    fn interned_names_are_shared() {
        let a = intern("dind");
        let b = intern(&String::from("dind"));
        assert!(std::ptr::eq(a, b));
    }
}
