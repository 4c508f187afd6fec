//! `seccompProfile_baseline` (baseline): if a seccomp profile is set, only the runtime's
//! default and localhost profiles are allowed.
//!
//! v1.0 – v1.18, restricted annotations: `metadata.annotations['seccomp.security.alpha.kubernetes.io/pod']`
//! and `metadata.annotations['container.seccomp.security.alpha.kubernetes.io/<container name>']`;
//! allowed values `runtime/default`, `docker/default`, `localhost/*`.
//!
//! From v1.19, restricted fields instead: `spec.securityContext.seccompProfile.type`,
//! `spec.{initContainers,containers,ephemeralContainers}[*].securityContext.seccompProfile.type`;
//! allowed values `RuntimeDefault`, `Localhost`, unset.
//! At restricted, `seccompProfile_restricted` replaces it from v1.19.

use std::collections::BTreeSet;

use super::prelude::*;
use crate::pss::visit::go_quote;

pub(crate) const CHECK: Check = Check {
    id: "seccompProfile_baseline",
    level: Level::Baseline,
    versions: &[
        VersionedCheck {
            min: 0,
            eval: v1_0,
            overrides: &[],
        },
        VersionedCheck {
            min: 19,
            eval: v1_19,
            overrides: &[],
        },
    ],
};

const ANNOTATION_KEY_POD: &str = "seccomp.security.alpha.kubernetes.io/pod";
const ANNOTATION_KEY_CONTAINER_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// Whether a `seccompProfile.type` is allowed (also for `seccompProfile_restricted`).
pub(super) fn valid_type(t: &str) -> bool {
    matches!(t, "RuntimeDefault" | "Localhost")
}

fn valid_annotation(v: &str) -> bool {
    v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/")
}

fn v1_0(meta: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    let Some(annotations) = meta.annotations.as_ref().filter(|a| !a.is_empty()) else {
        return CheckResult::Allowed;
    };
    let mut forbidden = BTreeSet::new();
    if let Some(v) = annotations
        .get(ANNOTATION_KEY_POD)
        .filter(|v| !valid_annotation(v))
    {
        forbidden.insert(format!("{ANNOTATION_KEY_POD}={}", go_quote(v)));
    }
    visit_containers(spec, |c| {
        // Look the key up without building it: the annotation is usually absent.
        let value = annotations.iter().find_map(|(k, v)| {
            (k.strip_prefix(ANNOTATION_KEY_CONTAINER_PREFIX) == Some(c.name)).then_some(v)
        });
        if let Some(v) = value.filter(|v| !valid_annotation(v)) {
            forbidden.insert(format!(
                "{ANNOTATION_KEY_CONTAINER_PREFIX}{}={}",
                c.name,
                go_quote(v)
            ));
        }
    });
    if forbidden.is_empty() {
        return CheckResult::Allowed;
    }
    let list: Vec<String> = forbidden.into_iter().collect();
    CheckResult::forbidden(
        "seccompProfile",
        format!(
            "forbidden {} {}",
            pluralize("annotation", "annotations", list.len()),
            list.join(", ")
        ),
    )
}

/// The seccomp profile type a container sets, when it is not allowed.
fn bad_type<'a>(c: &ContainerView<'a>) -> Option<&'a str> {
    c.security_context
        .and_then(|sc| sc.seccomp_profile.as_ref())
        .map(|p| p.type_.as_str())
        .filter(|t| !valid_type(t))
}

/// The `seccompProfile` fields, 1.19, replace the alpha annotations.
fn v1_19(_: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    let pod_type = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.seccomp_profile.as_ref())
        .map(|p| p.type_.as_str())
        .filter(|t| !valid_type(t));
    if pod_type.is_none() && !any_container(spec, |c| bad_type(&c).is_some()) {
        return CheckResult::Allowed;
    }
    let mut bad_values: BTreeSet<&str> = pod_type.into_iter().collect();
    let mut bad_containers = Vec::new();
    visit_containers(spec, |c| {
        if let Some(t) = bad_type(&c) {
            bad_containers.push(c.name);
            bad_values.insert(t);
        }
    });
    CheckResult::forbidden(
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            setters(pod_type.is_some(), &bad_containers),
            join_quote(&bad_values)
        ),
    )
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::pss::{checks::testing::assert_check, registry::CheckFn};

    const REASON: &str = "seccompProfile";

    #[rstest]
    #[case::annotations_allowed(
        v1_0,
        "{metadata: {annotations: {seccomp.security.alpha.kubernetes.io/pod: runtime/default, container.seccomp.security.alpha.kubernetes.io/a: docker/default, container.seccomp.security.alpha.kubernetes.io/b: localhost/p}}, spec: {containers: [{name: a}, {name: b}]}}",
        "",
        ""
    )]
    #[case::fields_ignored_before_1_19(
        v1_0,
        "{spec: {securityContext: {seccompProfile: {type: Unconfined}}, containers: [{name: a}]}}",
        "",
        ""
    )]
    #[case::pod_annotation(
        v1_0,
        "{metadata: {annotations: {seccomp.security.alpha.kubernetes.io/pod: unconfined}}, spec: {containers: [{name: a}]}}",
        REASON,
        r#"forbidden annotation seccomp.security.alpha.kubernetes.io/pod="unconfined""#
    )]
    #[case::annotations_sorted(v1_0, "{metadata: {annotations: {seccomp.security.alpha.kubernetes.io/pod: '', container.seccomp.security.alpha.kubernetes.io/b: unconfined, container.seccomp.security.alpha.kubernetes.io/a: unconfined, container.seccomp.security.alpha.kubernetes.io/gone: unconfined}}, spec: {initContainers: [{name: b}], containers: [{name: a}]}}", REASON, r#"forbidden annotations container.seccomp.security.alpha.kubernetes.io/a="unconfined", container.seccomp.security.alpha.kubernetes.io/b="unconfined", seccomp.security.alpha.kubernetes.io/pod="""#)]
    #[case::annotations_ignored_from_1_19(
        v1_19,
        "{metadata: {annotations: {seccomp.security.alpha.kubernetes.io/pod: unconfined}}, spec: {containers: [{name: a}]}}",
        "",
        ""
    )]
    #[case::fields_allowed(
        v1_19,
        "{spec: {securityContext: {seccompProfile: {type: RuntimeDefault}}, containers: [{name: a, securityContext: {seccompProfile: {type: Localhost, localhostProfile: p}}}, {name: b}]}}",
        "",
        ""
    )]
    #[case::pod_field(
        v1_19,
        "{spec: {securityContext: {seccompProfile: {type: Unconfined}}, containers: [{name: a}]}}",
        REASON,
        r#"pod must not set securityContext.seccompProfile.type to "Unconfined""#
    )]
    #[case::fields(v1_19, "{spec: {securityContext: {seccompProfile: {type: Unconfined}}, containers: [{name: a, securityContext: {seccompProfile: {type: Unconfined}}}, {name: b, securityContext: {seccompProfile: {type: Other}}}]}}", REASON, r#"pod and containers "a", "b" must not set securityContext.seccompProfile.type to "Other", "Unconfined""#)]
    fn table(#[case] check: CheckFn, #[case] pod: &str, #[case] reason: &str, #[case] detail: &str) {
        assert_check(check, pod, reason, detail);
    }
}
