//! `runAsNonRoot` (restricted): containers must be required to run as non-root users.
//!
//! Restricted fields: `spec.securityContext.runAsNonRoot`,
//! `spec.{initContainers,containers,ephemeralContainers}[*].securityContext.runAsNonRoot`.
//!
//! Allowed values: `true`; a container may leave it unset when the pod sets `true`.
//! Explicit `false` values are reported before missing ones. From v1.35, pods in a user
//! namespace (`spec.hostUsers: false`) are allowed.

use super::prelude::*;
use crate::pss::visit::relax_for_user_namespace;

pub(crate) const CHECK: Check = Check {
    id: "runAsNonRoot",
    level: Level::Restricted,
    versions: &[
        VersionedCheck {
            min: 0,
            eval: v1_0,
            overrides: &[],
        },
        VersionedCheck {
            min: 35,
            eval: v1_35,
            overrides: &[],
        },
    ],
};

fn v1_0(_: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    let pod_value = spec.security_context.as_ref().and_then(|sc| sc.run_as_non_root);
    let pod_bad = pod_value == Some(false);
    let pod_non_root = pod_value == Some(true);
    let container_bad = |c: ContainerView<'_>| match c.security_context.and_then(|sc| sc.run_as_non_root) {
        Some(value) => !value,
        None => !pod_non_root,
    };
    if !pod_bad && !any_container(spec, container_bad) {
        return CheckResult::Allowed;
    }

    let mut explicitly_bad = Vec::new();
    let mut implicitly_bad = Vec::new();
    visit_containers(spec, |c| {
        match c.security_context.and_then(|sc| sc.run_as_non_root) {
            Some(false) => explicitly_bad.push(c.name),
            Some(true) => {}
            None if !pod_non_root => implicitly_bad.push(c.name),
            None => {}
        }
    });

    if pod_bad || !explicitly_bad.is_empty() {
        return CheckResult::forbidden(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters(pod_bad, &explicitly_bad)
            ),
        );
    }
    if !implicitly_bad.is_empty() {
        return CheckResult::forbidden(
            "runAsNonRoot != true",
            format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                containers_phrase(&implicitly_bad)
            ),
        );
    }
    CheckResult::Allowed
}

/// User namespaces (KEP-127), 1.35: root in the pod is not root on the host.
fn v1_35(meta: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    if relax_for_user_namespace(spec) {
        return CheckResult::Allowed;
    }
    v1_0(meta, spec)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::pss::{checks::testing::assert_check, registry::CheckFn};

    const REASON: &str = "runAsNonRoot != true";

    #[rstest]
    #[case::pod_true(
        v1_0,
        "{spec: {securityContext: {runAsNonRoot: true}, containers: [{name: a}, {name: b, securityContext: {runAsNonRoot: true}}]}}",
        "",
        ""
    )]
    #[case::containers_true(
        v1_0,
        "{spec: {initContainers: [{name: i, securityContext: {runAsNonRoot: true}}], containers: [{name: a, securityContext: {runAsNonRoot: true}}]}}",
        "",
        ""
    )]
    #[case::unset(
        v1_0,
        "{spec: {initContainers: [{name: i}], containers: [{name: a}, {name: b, securityContext: {runAsNonRoot: true}}]}}",
        REASON,
        r#"pod or containers "i", "a" must set securityContext.runAsNonRoot=true"#
    )]
    #[case::pod_false(
        v1_0,
        "{spec: {securityContext: {runAsNonRoot: false}, containers: [{name: a, securityContext: {runAsNonRoot: true}}]}}",
        REASON,
        "pod must not set securityContext.runAsNonRoot=false"
    )]
    #[case::pod_false_hides_unset(
        v1_0,
        "{spec: {securityContext: {runAsNonRoot: false}, containers: [{name: a}]}}",
        REASON,
        "pod must not set securityContext.runAsNonRoot=false"
    )]
    #[case::container_false_overrides_pod(
        v1_0,
        "{spec: {securityContext: {runAsNonRoot: true}, containers: [{name: a, securityContext: {runAsNonRoot: false}}, {name: b}]}}",
        REASON,
        r#"container "a" must not set securityContext.runAsNonRoot=false"#
    )]
    #[case::explicit_first(
        v1_0,
        "{spec: {securityContext: {runAsNonRoot: false}, containers: [{name: a, securityContext: {runAsNonRoot: false}}, {name: b}], ephemeralContainers: [{name: e, securityContext: {runAsNonRoot: false}}]}}",
        REASON,
        r#"pod and containers "a", "e" must not set securityContext.runAsNonRoot=false"#
    )]
    #[case::user_namespace_1_0(
        v1_0,
        "{spec: {hostUsers: false, containers: [{name: a}]}}",
        REASON,
        r#"pod or container "a" must set securityContext.runAsNonRoot=true"#
    )]
    #[case::user_namespace_1_35(
        v1_35,
        "{spec: {hostUsers: false, securityContext: {runAsNonRoot: false}, containers: [{name: a}]}}",
        "",
        ""
    )]
    #[case::host_users_1_35(
        v1_35,
        "{spec: {hostUsers: true, containers: [{name: a}]}}",
        REASON,
        r#"pod or container "a" must set securityContext.runAsNonRoot=true"#
    )]
    fn table(#[case] check: CheckFn, #[case] pod: &str, #[case] reason: &str, #[case] detail: &str) {
        assert_check(check, pod, reason, detail);
    }
}
