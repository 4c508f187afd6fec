//! `runAsUser` (restricted, from v1.23): containers must not run as user 0 (root).
//!
//! Restricted fields: `spec.securityContext.runAsUser`,
//! `spec.{initContainers,containers,ephemeralContainers}[*].securityContext.runAsUser`.
//!
//! Allowed values: unset, any non-zero value. From v1.35, pods in a user namespace
//! (`spec.hostUsers: false`) are allowed.

use super::prelude::*;
use crate::pss::visit::relax_for_user_namespace;

pub(crate) const CHECK: Check = Check {
    id: "runAsUser",
    level: Level::Restricted,
    versions: &[
        VersionedCheck {
            min: 23,
            eval: v1_23,
            overrides: &[],
        },
        VersionedCheck {
            min: 35,
            eval: v1_35,
            overrides: &[],
        },
    ],
};

fn root(c: &ContainerView<'_>) -> bool {
    c.security_context.and_then(|sc| sc.run_as_user) == Some(0)
}

fn v1_23(_: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    let pod_bad = spec.security_context.as_ref().and_then(|sc| sc.run_as_user) == Some(0);
    if !pod_bad && !any_container(spec, |c| root(&c)) {
        return CheckResult::Allowed;
    }
    let mut bad = Vec::new();
    visit_containers(spec, |c| {
        if root(&c) {
            bad.push(c.name);
        }
    });
    CheckResult::forbidden(
        "runAsUser=0",
        format!("{} must not set runAsUser=0", setters(pod_bad, &bad)),
    )
}

/// User namespaces (KEP-127), 1.35: uid 0 in the pod maps to an unprivileged host uid.
fn v1_35(meta: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    if relax_for_user_namespace(spec) {
        return CheckResult::Allowed;
    }
    v1_23(meta, spec)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::pss::{checks::testing::assert_check, registry::CheckFn};

    #[rstest]
    #[case::unset_nonzero(
        v1_23,
        "{spec: {securityContext: {runAsUser: 1000}, containers: [{name: a}, {name: b, securityContext: {runAsUser: 1}}]}}",
        "",
        ""
    )]
    #[case::pod_zero(
        v1_23,
        "{spec: {securityContext: {runAsUser: 0}, containers: [{name: a}]}}",
        "runAsUser=0",
        "pod must not set runAsUser=0"
    )]
    #[case::containers_zero(
        v1_23,
        "{spec: {securityContext: {runAsUser: 1000}, initContainers: [{name: i, securityContext: {runAsUser: 0}}], containers: [{name: a, securityContext: {runAsUser: 0}}]}}",
        "runAsUser=0",
        r#"containers "i", "a" must not set runAsUser=0"#
    )]
    #[case::both(
        v1_23,
        "{spec: {securityContext: {runAsUser: 0}, containers: [{name: a, securityContext: {runAsUser: 0}}]}}",
        "runAsUser=0",
        r#"pod and container "a" must not set runAsUser=0"#
    )]
    #[case::user_namespace_1_23(
        v1_23,
        "{spec: {hostUsers: false, securityContext: {runAsUser: 0}, containers: [{name: a}]}}",
        "runAsUser=0",
        "pod must not set runAsUser=0"
    )]
    #[case::user_namespace_1_35(
        v1_35,
        "{spec: {hostUsers: false, securityContext: {runAsUser: 0}, containers: [{name: a}]}}",
        "",
        ""
    )]
    #[case::host_users_1_35(
        v1_35,
        "{spec: {securityContext: {runAsUser: 0}, containers: [{name: a}]}}",
        "runAsUser=0",
        "pod must not set runAsUser=0"
    )]
    fn table(#[case] check: CheckFn, #[case] pod: &str, #[case] reason: &str, #[case] detail: &str) {
        assert_check(check, pod, reason, detail);
    }
}
