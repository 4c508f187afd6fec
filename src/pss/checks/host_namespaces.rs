//! `hostNamespaces` (baseline): sharing the host's namespaces must be disallowed.
//!
//! Restricted fields: `spec.hostNetwork`, `spec.hostPID`, `spec.hostIPC`.
//!
//! Allowed values: unset, `false`.

use super::prelude::*;

pub(crate) const CHECK: Check = Check {
    id: "hostNamespaces",
    level: Level::Baseline,
    versions: &[VersionedCheck {
        min: 0,
        eval: v1_0,
        overrides: &[],
    }],
};

fn v1_0(_: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    let set = [
        (spec.host_network, "hostNetwork=true"),
        (spec.host_pid, "hostPID=true"),
        (spec.host_ipc, "hostIPC=true"),
    ];
    if !set.iter().any(|(v, _)| *v == Some(true)) {
        return CheckResult::Allowed;
    }
    let used: Vec<&str> = set
        .iter()
        .filter(|(v, _)| *v == Some(true))
        .map(|(_, s)| *s)
        .collect();
    CheckResult::forbidden("host namespaces", used.join(", "))
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::pss::{checks::testing::assert_check, registry::CheckFn};

    #[rstest]
    #[case::unset(v1_0, "{spec: {containers: [{name: a}]}}", "", "")]
    #[case::all_false(
        v1_0,
        "{spec: {hostNetwork: false, hostPID: false, hostIPC: false, containers: [{name: a}]}}",
        "",
        ""
    )]
    #[case::network(
        v1_0,
        "{spec: {hostNetwork: true, containers: [{name: a}]}}",
        "host namespaces",
        "hostNetwork=true"
    )]
    #[case::all(
        v1_0,
        "{spec: {hostIPC: true, hostPID: true, hostNetwork: true, containers: [{name: a}]}}",
        "host namespaces",
        "hostNetwork=true, hostPID=true, hostIPC=true"
    )]
    #[case::pid_ipc(
        v1_0,
        "{spec: {hostIPC: true, hostPID: true, containers: [{name: a}]}}",
        "host namespaces",
        "hostPID=true, hostIPC=true"
    )]
    fn table(#[case] check: CheckFn, #[case] pod: &str, #[case] reason: &str, #[case] detail: &str) {
        assert_check(check, pod, reason, detail);
    }
}
