//! `procMount_restricted` (restricted, from v1.35): the `/proc` masks must be kept, also for
//! pods in a user namespace.
//!
//! Restricted fields: `spec.{initContainers,containers,ephemeralContainers}[*].securityContext.procMount`.
//!
//! Allowed values: unset, `Default`. It replaces the baseline `procMount` check at
//! restricted from v1.35, so that the baseline relaxation for `hostUsers: false` does not
//! reach restricted: its logic is `procMount`'s v1.0 rule.

use super::{prelude::*, proc_mount};

pub(crate) const CHECK: Check = Check {
    id: "procMount_restricted",
    level: Level::Restricted,
    versions: &[VersionedCheck {
        min: 35,
        eval: v1_35,
        overrides: &["procMount"],
    }],
};

fn v1_35(meta: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    proc_mount::v1_0(meta, spec)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::pss::{checks::testing::assert_check, registry::CheckFn};

    #[rstest]
    #[case::unset(
        v1_35,
        "{spec: {hostUsers: false, containers: [{name: a, securityContext: {procMount: Default}}]}}",
        "",
        ""
    )]
    #[case::user_namespace_still_denied(
        v1_35,
        "{spec: {hostUsers: false, containers: [{name: a, securityContext: {procMount: Unmasked}}]}}",
        "procMount",
        r#"container "a" must not set securityContext.procMount to "Unmasked""#
    )]
    fn table(#[case] check: CheckFn, #[case] pod: &str, #[case] reason: &str, #[case] detail: &str) {
        assert_check(check, pod, reason, detail);
    }
}
