//! `hostPathVolumes` (baseline): hostPath volumes must be forbidden.
//!
//! Restricted field: `spec.volumes[*].hostPath`. Allowed values: unset.
//! At restricted, `restrictedVolumes` replaces it.

use super::prelude::*;
use crate::pss::view::{Source, VolumeView};

pub(crate) const CHECK: Check = Check {
    id: "hostPathVolumes",
    level: Level::Baseline,
    versions: &[VersionedCheck {
        min: 0,
        eval: v1_0,
        overrides: &[],
    }],
};

fn v1_0(_: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    let host_path = |v: &&VolumeView<'_>| v.sources.contains(Source::HostPath);
    if !spec.volumes.iter().any(|v| host_path(&v)) {
        return CheckResult::Allowed;
    }
    let names: Vec<&str> = spec.volumes.iter().filter(host_path).map(|v| v.name).collect();
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
