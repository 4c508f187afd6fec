//! `procMount` (baseline): the default `/proc` masks reduce the attack surface and must be
//! kept.
//!
//! Restricted fields: `spec.{initContainers,containers,ephemeralContainers}[*].securityContext.procMount`.
//!
//! Allowed values: unset, `Default`. From v1.35, any value is allowed for a pod in a user
//! namespace (`spec.hostUsers: false`); at restricted, `procMount_restricted` takes over
//! from v1.35 and keeps the v1.0 rule.

use std::collections::BTreeSet;

use super::prelude::*;
use crate::pss::visit::relax_for_user_namespace;

pub(crate) const CHECK: Check = Check {
    id: "procMount",
    level: Level::Baseline,
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

/// Blocks every procMount but `Default`, whatever the pod (also `procMount_restricted`).
/// The procMount a container sets, when it is not `Default`.
fn unmasked<'a>(c: &ContainerView<'a>) -> Option<&'a str> {
    c.security_context
        .and_then(|sc| sc.proc_mount.as_deref())
        .filter(|t| *t != "Default")
}

pub(super) fn v1_0(_: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    if !any_container(spec, |c| unmasked(&c).is_some()) {
        return CheckResult::Allowed;
    }
    let mut bad_containers = Vec::new();
    let mut types = BTreeSet::new();
    visit_containers(spec, |c| {
        if let Some(t) = unmasked(&c) {
            bad_containers.push(c.name);
            types.insert(t);
        }
    });
    if bad_containers.is_empty() {
        return CheckResult::Allowed;
    }
    CheckResult::forbidden(
        "procMount",
        format!(
            "{} must not set securityContext.procMount to {}",
            containers_phrase(&bad_containers),
            join_quote(&types)
        ),
    )
}

/// User namespaces (KEP-127), 1.35: the masks matter only for pods sharing the host's
/// user namespace.
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

    #[rstest]
    #[case::unset_default(
        v1_0,
        "{spec: {containers: [{name: a}, {name: b, securityContext: {procMount: Default}}]}}",
        "",
        ""
    )]
    #[case::unmasked(
        v1_0,
        "{spec: {containers: [{name: a, securityContext: {procMount: Unmasked}}]}}",
        "procMount",
        r#"container "a" must not set securityContext.procMount to "Unmasked""#
    )]
    #[case::sorted(
        v1_0,
        "{spec: {initContainers: [{name: i, securityContext: {procMount: other}}], containers: [{name: a, securityContext: {procMount: Unmasked}}, {name: b, securityContext: {procMount: other}}]}}",
        "procMount",
        r#"containers "i", "a", "b" must not set securityContext.procMount to "Unmasked", "other""#
    )]
    #[case::user_namespace_1_0(
        v1_0,
        "{spec: {hostUsers: false, containers: [{name: a, securityContext: {procMount: Unmasked}}]}}",
        "procMount",
        r#"container "a" must not set securityContext.procMount to "Unmasked""#
    )]
    #[case::user_namespace_1_35(
        v1_35,
        "{spec: {hostUsers: false, containers: [{name: a, securityContext: {procMount: Unmasked}}]}}",
        "",
        ""
    )]
    #[case::host_users_1_35(
        v1_35,
        "{spec: {hostUsers: true, containers: [{name: a, securityContext: {procMount: Unmasked}}]}}",
        "procMount",
        r#"container "a" must not set securityContext.procMount to "Unmasked""#
    )]
    fn table(#[case] check: CheckFn, #[case] pod: &str, #[case] reason: &str, #[case] detail: &str) {
        assert_check(check, pod, reason, detail);
    }
}
