//! `hostPorts` (baseline): host ports must be forbidden (or restricted to a known list,
//! which upstream does not configure: every host port is forbidden).
//!
//! Restricted fields: `spec.{initContainers,containers,ephemeralContainers}[*].ports[*].hostPort`.
//!
//! Allowed values: unset, `0`. Ports are listed de-duplicated, sorted as strings, unquoted.

use std::collections::BTreeSet;

use super::prelude::*;

pub(crate) const CHECK: Check = Check {
    id: "hostPorts",
    level: Level::Baseline,
    versions: &[VersionedCheck {
        min: 0,
        eval: v1_0,
        overrides: &[],
    }],
};

fn v1_0(_: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    if !any_container(spec, |c| c.ports.iter().any(|p| p.host_port.unwrap_or(0) != 0)) {
        return CheckResult::Allowed;
    }
    let mut bad_containers = Vec::new();
    let mut ports = BTreeSet::new();
    visit_containers(spec, |c| {
        let mut valid = true;
        for port in c.ports.iter().filter_map(|p| p.host_port).filter(|&p| p != 0) {
            valid = false;
            ports.insert(port.to_string());
        }
        if !valid {
            bad_containers.push(c.name);
        }
    });
    let ports: Vec<String> = ports.into_iter().collect();
    CheckResult::forbidden(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad_containers),
            pluralize("uses", "use", bad_containers.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
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
        "{spec: {containers: [{name: a, ports: [{containerPort: 80}, {containerPort: 81, hostPort: 0}]}]}}",
        "",
        ""
    )]
    #[case::one(
        v1_0,
        "{spec: {containers: [{name: a, ports: [{containerPort: 80, hostPort: 8080}]}]}}",
        "hostPort",
        r#"container "a" uses hostPort 8080"#
    )]
    #[case::sorted_as_strings(
        v1_0,
        "{spec: {initContainers: [{name: i, ports: [{containerPort: 1, hostPort: 9000}]}], containers: [{name: a, ports: [{containerPort: 80, hostPort: 10000}, {containerPort: 81, hostPort: 9000}]}, {name: b}]}}",
        "hostPort",
        r#"containers "i", "a" use hostPorts 10000, 9000"#
    )]
    #[case::ephemeral(
        v1_0,
        "{spec: {containers: [{name: a}], ephemeralContainers: [{name: e, ports: [{containerPort: 1, hostPort: 12345}]}]}}",
        "hostPort",
        r#"container "e" uses hostPort 12345"#
    )]
    fn table(#[case] check: CheckFn, #[case] pod: &str, #[case] reason: &str, #[case] detail: &str) {
        assert_check(check, pod, reason, detail);
    }
}
