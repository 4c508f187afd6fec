//! `seccompProfile_restricted` (restricted, from v1.19): a seccomp profile must be set, and
//! only the runtime's default and localhost profiles are allowed.
//!
//! Restricted fields: `spec.securityContext.seccompProfile.type`,
//! `spec.{initContainers,containers,ephemeralContainers}[*].securityContext.seccompProfile.type`.
//!
//! Allowed values: `RuntimeDefault`, `Localhost`; a container may leave it unset when the
//! pod sets an allowed one. Explicit bad values are reported before missing ones. Replaces
//! `seccompProfile_baseline` at restricted. From v1.25, Windows pods are allowed.

use std::collections::BTreeSet;

use super::{prelude::*, seccomp_profile_baseline::valid_type};

pub(crate) const CHECK: Check = Check {
    id: "seccompProfile_restricted",
    level: Level::Restricted,
    versions: &[
        VersionedCheck {
            min: 19,
            eval: v1_19,
            overrides: &["seccompProfile_baseline"],
        },
        VersionedCheck {
            min: 25,
            eval: v1_25,
            overrides: &["seccompProfile_baseline"],
        },
    ],
};

fn v1_19(_: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    let mut bad_values = BTreeSet::new();
    let pod_type = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.seccomp_profile.as_ref())
        .map(|p| p.type_.as_str());
    let pod_bad = pod_type.is_some_and(|t| !valid_type(t));
    let pod_set = pod_type.is_some_and(valid_type);
    let container_bad =
        |c: ContainerView<'_>| match c.security_context.and_then(|sc| sc.seccomp_profile.as_ref()) {
            Some(p) => !valid_type(&p.type_),
            None => !pod_set,
        };
    if !pod_bad && !any_container(spec, container_bad) {
        return CheckResult::Allowed;
    }
    if let Some(t) = pod_type.filter(|_| pod_bad) {
        bad_values.insert(t);
    }

    let mut explicitly_bad = Vec::new();
    let mut implicitly_bad = Vec::new();
    visit_containers(spec, |c| {
        match c.security_context.and_then(|sc| sc.seccomp_profile.as_ref()) {
            Some(p) if !valid_type(&p.type_) => {
                explicitly_bad.push(c.name);
                bad_values.insert(p.type_.as_str());
            }
            Some(_) => {}
            None if !pod_set => implicitly_bad.push(c.name),
            None => {}
        }
    });

    if pod_bad || !explicitly_bad.is_empty() {
        return CheckResult::forbidden(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                setters(pod_bad, &explicitly_bad),
                join_quote(&bad_values)
            ),
        );
    }
    if !implicitly_bad.is_empty() {
        return CheckResult::forbidden(
            "seccompProfile",
            format!(
                r#"pod or {} must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#,
                containers_phrase(&implicitly_bad)
            ),
        );
    }
    CheckResult::Allowed
}

/// Pod OS field, 1.25: a Windows pod cannot set seccomp, so none is required.
fn v1_25(meta: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    if is_windows(spec) {
        return CheckResult::Allowed;
    }
    v1_19(meta, spec)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::pss::{checks::testing::assert_check, registry::CheckFn};

    const REASON: &str = "seccompProfile";

    #[rstest]
    #[case::pod_set(
        v1_19,
        "{spec: {securityContext: {seccompProfile: {type: RuntimeDefault}}, containers: [{name: a}, {name: b, securityContext: {seccompProfile: {type: Localhost, localhostProfile: p}}}]}}",
        "",
        ""
    )]
    #[case::containers_set(
        v1_19,
        "{spec: {initContainers: [{name: i, securityContext: {seccompProfile: {type: RuntimeDefault}}}], containers: [{name: a, securityContext: {seccompProfile: {type: Localhost}}}]}}",
        "",
        ""
    )]
    #[case::unset(v1_19, "{spec: {initContainers: [{name: i}], containers: [{name: a}, {name: b, securityContext: {seccompProfile: {type: RuntimeDefault}}}]}}", REASON, r#"pod or containers "i", "a" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#)]
    #[case::pod_bad_hides_unset(
        v1_19,
        "{spec: {securityContext: {seccompProfile: {type: Unconfined}}, containers: [{name: a}]}}",
        REASON,
        r#"pod must not set securityContext.seccompProfile.type to "Unconfined""#
    )]
    #[case::explicit(v1_19, "{spec: {securityContext: {seccompProfile: {type: Unconfined}}, containers: [{name: a, securityContext: {seccompProfile: {type: Unconfined}}}, {name: b, securityContext: {seccompProfile: {type: Bogus}}}, {name: c}]}}", REASON, r#"pod and containers "a", "b" must not set securityContext.seccompProfile.type to "Bogus", "Unconfined""#)]
    #[case::container_bad_pod_good(
        v1_19,
        "{spec: {securityContext: {seccompProfile: {type: RuntimeDefault}}, containers: [{name: a, securityContext: {seccompProfile: {type: Unconfined}}}]}}",
        REASON,
        r#"container "a" must not set securityContext.seccompProfile.type to "Unconfined""#
    )]
    #[case::windows_1_19(v1_19, "{spec: {os: {name: windows}, containers: [{name: a}]}}", REASON, r#"pod or container "a" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#)]
    #[case::windows_1_25(v1_25, "{spec: {os: {name: windows}, containers: [{name: a}]}}", "", "")]
    #[case::linux_1_25(v1_25, "{spec: {containers: [{name: a}]}}", REASON, r#"pod or container "a" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost""#)]
    fn table(#[case] check: CheckFn, #[case] pod: &str, #[case] reason: &str, #[case] detail: &str) {
        assert_check(check, pod, reason, detail);
    }
}
