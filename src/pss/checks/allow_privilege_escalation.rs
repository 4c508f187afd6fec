//! `allowPrivilegeEscalation` (restricted): privilege escalation, such as through set-user-ID
//! or set-group-ID file modes, must not be allowed.
//!
//! Restricted fields: `spec.containers[*].securityContext.allowPrivilegeEscalation`,
//! `spec.initContainers[*]…`, `spec.ephemeralContainers[*]…`.
//!
//! Allowed values: `false`. The field exists from Kubernetes 1.8. From v1.25, Windows pods
//! (`spec.os.name: windows`) are allowed: the API rejects the field on them.

use super::prelude::*;

pub(crate) const CHECK: Check = Check {
    id: "allowPrivilegeEscalation",
    level: Level::Restricted,
    versions: &[
        VersionedCheck {
            min: 8,
            eval: v1_8,
            overrides: &[],
        },
        VersionedCheck {
            min: 25,
            eval: v1_25,
            overrides: &[],
        },
    ],
};

fn unrestricted(c: &ContainerView<'_>) -> bool {
    c.security_context.and_then(|sc| sc.allow_privilege_escalation) != Some(false)
}

fn v1_8(_: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    if !any_container(spec, |c| unrestricted(&c)) {
        return CheckResult::Allowed;
    }
    let mut bad = Vec::new();
    visit_containers(spec, |c| {
        if unrestricted(&c) {
            bad.push(c.name);
        }
    });
    if bad.is_empty() {
        return CheckResult::Allowed;
    }
    CheckResult::forbidden(
        "allowPrivilegeEscalation != false",
        format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_phrase(&bad)
        ),
    )
}

/// Pod OS field, 1.25: a Windows pod cannot set the field, so it is not required.
fn v1_25(meta: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    if is_windows(spec) {
        return CheckResult::Allowed;
    }
    v1_8(meta, spec)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::pss::{checks::testing::assert_check, registry::CheckFn};

    const REASON: &str = "allowPrivilegeEscalation != false";

    #[rstest]
    #[case::all_false(
        v1_8,
        "{spec: {initContainers: [{name: i, securityContext: {allowPrivilegeEscalation: false}}], containers: [{name: a, securityContext: {allowPrivilegeEscalation: false}}]}}",
        "",
        ""
    )]
    #[case::unset_and_true(
        v1_8,
        "{spec: {containers: [{name: a}, {name: b, securityContext: {}}, {name: c, securityContext: {allowPrivilegeEscalation: true}}, {name: d, securityContext: {allowPrivilegeEscalation: false}}]}}",
        REASON,
        r#"containers "a", "b", "c" must set securityContext.allowPrivilegeEscalation=false"#
    )]
    #[case::one_each_kind(
        v1_8,
        "{spec: {initContainers: [{name: i}], containers: [{name: a, securityContext: {allowPrivilegeEscalation: false}}], ephemeralContainers: [{name: e}]}}",
        REASON,
        r#"containers "i", "e" must set securityContext.allowPrivilegeEscalation=false"#
    )]
    #[case::single(
        v1_8,
        "{spec: {containers: [{name: a}]}}",
        REASON,
        r#"container "a" must set securityContext.allowPrivilegeEscalation=false"#
    )]
    #[case::windows_before_1_25(
        v1_8,
        "{spec: {os: {name: windows}, containers: [{name: a}]}}",
        REASON,
        r#"container "a" must set securityContext.allowPrivilegeEscalation=false"#
    )]
    #[case::windows_from_1_25(v1_25, "{spec: {os: {name: windows}, containers: [{name: a}]}}", "", "")]
    #[case::linux_from_1_25(
        v1_25,
        "{spec: {os: {name: linux}, containers: [{name: a}]}}",
        REASON,
        r#"container "a" must set securityContext.allowPrivilegeEscalation=false"#
    )]
    fn table(#[case] check: CheckFn, #[case] pod: &str, #[case] reason: &str, #[case] detail: &str) {
        assert_check(check, pod, reason, detail);
    }
}
