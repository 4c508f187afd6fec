//! `privileged` (baseline): privileged pods disable most security mechanisms and must be
//! disallowed.
//!
//! Restricted fields: `spec.{initContainers,containers,ephemeralContainers}[*].securityContext.privileged`.
//!
//! Allowed values: unset, `false`.

use super::prelude::*;

pub(crate) const CHECK: Check = Check {
    id: "privileged",
    level: Level::Baseline,
    versions: &[VersionedCheck {
        min: 0,
        eval: v1_0,
        overrides: &[],
    }],
};

fn privileged(c: &ContainerView<'_>) -> bool {
    c.security_context.and_then(|sc| sc.privileged) == Some(true)
}

fn v1_0(_: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    if !any_container(spec, |c| privileged(&c)) {
        return CheckResult::Allowed;
    }
    let mut bad = Vec::new();
    visit_containers(spec, |c| {
        if privileged(&c) {
            bad.push(c.name);
        }
    });
    if bad.is_empty() {
        return CheckResult::Allowed;
    }
    CheckResult::forbidden(
        "privileged",
        format!(
            "{} must not set securityContext.privileged=true",
            containers_phrase(&bad)
        ),
    )
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::pss::{checks::testing::assert_check, registry::CheckFn};

    #[rstest]
    #[case::unset_false(
        v1_0,
        "{spec: {containers: [{name: a}, {name: b, securityContext: {privileged: false}}]}}",
        "",
        ""
    )]
    #[case::one(
        v1_0,
        "{spec: {containers: [{name: a, securityContext: {privileged: true}}]}}",
        "privileged",
        r#"container "a" must not set securityContext.privileged=true"#
    )]
    #[case::all_kinds(
        v1_0,
        "{spec: {initContainers: [{name: i, securityContext: {privileged: true}}], containers: [{name: a, securityContext: {privileged: true}}], ephemeralContainers: [{name: e, securityContext: {privileged: true}}]}}",
        "privileged",
        r#"containers "i", "a", "e" must not set securityContext.privileged=true"#
    )]
    fn table(#[case] check: CheckFn, #[case] pod: &str, #[case] reason: &str, #[case] detail: &str) {
        assert_check(check, pod, reason, detail);
    }
}
