//! `hostPathVolumes` (baseline): hostPath volumes must be forbidden.
//!
//! Restricted field: `spec.volumes[*].hostPath`. Allowed values: unset.
//! At restricted, `restrictedVolumes` replaces it.

use super::prelude::*;

pub(crate) const CHECK: Check = Check {
    id: "hostPathVolumes",
    level: Level::Baseline,
    versions: &[VersionedCheck {
        min: 0,
        eval: v1_0,
        overrides: &[],
    }],
};

fn v1_0(_: &ObjectMeta, spec: &PodSpec) -> CheckResult {
    let volumes = spec.volumes.as_deref().unwrap_or_default();
    if !volumes.iter().any(|v| v.host_path.is_some()) {
        return CheckResult::Allowed;
    }
    let names: Vec<&str> = volumes
        .iter()
        .filter(|v| v.host_path.is_some())
        .map(|v| v.name.as_str())
        .collect();
    CheckResult::forbidden(
        "hostPath volumes",
        format!(
            "{} {}",
            pluralize("volume", "volumes", names.len()),
            join_quote(&names)
        ),
    )
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::pss::{checks::testing::assert_check, registry::CheckFn};

    #[rstest]
    #[case::none(
        v1_0,
        "{spec: {containers: [{name: a}], volumes: [{name: x, emptyDir: {}}, {name: y}, {name: z, nfs: {server: s, path: /}}]}}",
        "",
        ""
    )]
    #[case::one(
        v1_0,
        "{spec: {containers: [{name: a}], volumes: [{name: b, hostPath: {path: /b}}]}}",
        "hostPath volumes",
        r#"volume "b""#
    )]
    #[case::in_order(
        v1_0,
        "{spec: {containers: [{name: a}], volumes: [{name: z, hostPath: {path: /z}}, {name: e, emptyDir: {}}, {name: b, hostPath: {path: /b}}]}}",
        "hostPath volumes",
        r#"volumes "z", "b""#
    )]
    fn table(#[case] check: CheckFn, #[case] pod: &str, #[case] reason: &str, #[case] detail: &str) {
        assert_check(check, pod, reason, detail);
    }
}
