//! Evaluation with exempted containers: a policy's `exceptions` can take some containers
//! out of some checks (SPEC §5). An exempted check is evaluated on a view of the pod
//! without those containers; the pod-level fields and every other container are judged as
//! usual, and every other check sees the whole pod. What remains is reported with
//! upstream's own reason and detail.
//!
//! The full pod is evaluated first; only a check that fails and has exemptions is run
//! again, on the view, so a pod that passes costs nothing extra.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{CheckResult, Evaluation, LevelVersion, Violation, registry, view::PodView};

/// Per check ID, the names of the containers it does not judge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exemptions {
    by_check: BTreeMap<String, BTreeSet<String>>,
}

/// Annotations that speak for one container by name (alpha seccomp, beta AppArmor): an
/// exempted container's annotations leave the view with it.
const CONTAINER_ANNOTATION_PREFIXES: &[&str] = &[
    "container.seccomp.security.alpha.kubernetes.io/",
    "container.apparmor.security.beta.kubernetes.io/",
];

impl Exemptions {
    /// Exempts the container named `container` from the check `check`.
    pub fn exempt(&mut self, check: &str, container: &str) {
        self.by_check
            .entry(check.to_string())
            .or_default()
            .insert(container.to_string());
    }

    /// Whether nothing is exempt.
    pub fn is_empty(&self) -> bool {
        self.by_check.is_empty()
    }

    /// The containers a check does not judge.
    pub fn containers(&self, check: &str) -> Option<&BTreeSet<String>> {
        self.by_check.get(check).filter(|s| !s.is_empty())
    }
}

/// The pod as an exempted check sees it: without the exempted containers (init, regular
/// and ephemeral) and their per-container annotations.
fn view<'a>(
    metadata: &ObjectMeta,
    spec: &PodView<'a>,
    exempt: &BTreeSet<String>,
) -> (ObjectMeta, PodView<'a>) {
    let mut spec = spec.clone();
    spec.containers.retain(|c| !exempt.contains(c.name));
    let mut metadata = metadata.clone();
    if let Some(annotations) = &mut metadata.annotations {
        annotations.retain(|k, _| {
            !CONTAINER_ANNOTATION_PREFIXES
                .iter()
                .any(|p| k.strip_prefix(p).is_some_and(|name| exempt.contains(name)))
        });
    }
    (metadata, spec)
}

/// [`super::evaluate`], with `exempt` containers left out of their checks.
pub(super) fn evaluate(
    metadata: &ObjectMeta,
    spec: &PodView<'_>,
    level_version: LevelVersion,
    exempt: &Exemptions,
) -> Evaluation {
    let mut evaluation = registry::evaluate(metadata, spec, level_version);
    if exempt.is_empty() || evaluation.allowed() {
        return evaluation;
    }
    let mut kept = Vec::with_capacity(evaluation.violations.len());
    for v in evaluation.violations {
        let (Some(containers), Some(check)) = (
            exempt.containers(v.check),
            registry::check_fn(level_version, v.check),
        ) else {
            kept.push(v);
            continue;
        };
        let (m, s) = view(metadata, spec, containers);
        if let CheckResult::Forbidden { reason, detail } = check(&m, &s) {
            kept.push(Violation {
                check: v.check,
                reason,
                detail,
            });
        }
    }
    evaluation.violations = kept;
    evaluation
}
