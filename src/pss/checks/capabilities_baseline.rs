//! `capabilities_baseline` (baseline): adding `NET_RAW` or capabilities beyond the
//! container runtime's default set must be disallowed.
//!
//! Restricted fields: `spec.{initContainers,containers,ephemeralContainers}[*].securityContext.capabilities.add`.
//!
//! Allowed values: unset, empty, or names from the default set `AUDIT_WRITE`, `CHOWN`,
//! `DAC_OVERRIDE`, `FOWNER`, `FSETID`, `KILL`, `MKNOD`, `NET_BIND_SERVICE`, `SETFCAP`,
//! `SETGID`, `SETPCAP`, `SETUID`, `SYS_CHROOT` (case-sensitive, no `CAP_` prefix).
//! At restricted, `capabilities_restricted` replaces it from v1.22.

use std::collections::BTreeSet;

use super::prelude::*;

pub(crate) const CHECK: Check = Check {
    id: "capabilities_baseline",
    level: Level::Baseline,
    versions: &[VersionedCheck {
        min: 0,
        eval: v1_0,
        overrides: &[],
    }],
};

const ALLOWED_1_0: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn v1_0(_: &ObjectMeta, spec: &PodSpec) -> CheckResult {
    let mut bad_containers = Vec::new();
    let mut bad_caps = BTreeSet::new();
    for c in containers(spec) {
        let added = c
            .security_context
            .and_then(|sc| sc.capabilities.as_ref())
            .and_then(|caps| caps.add.as_deref())
            .unwrap_or_default();
        let mut valid = true;
        for cap in added.iter().filter(|cap| !ALLOWED_1_0.contains(&cap.as_str())) {
            valid = false;
            bad_caps.insert(cap.as_str());
        }
        if !valid {
            bad_containers.push(c.name);
        }
    }
    if bad_containers.is_empty() {
        return CheckResult::Allowed;
    }
    CheckResult::forbidden(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&bad_containers),
            join_quote(&bad_caps)
        ),
    )
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::pss::{checks::testing::assert_check, registry::CheckFn};

    const REASON: &str = "non-default capabilities";

    #[rstest]
    #[case::none(
        v1_0,
        "{spec: {containers: [{name: a}, {name: b, securityContext: {capabilities: {}}}]}}",
        "",
        ""
    )]
    #[case::defaults(
        v1_0,
        "{spec: {containers: [{name: a, securityContext: {capabilities: {add: [AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT], drop: [ALL]}}}]}}",
        "",
        ""
    )]
    #[case::net_raw(
        v1_0,
        "{spec: {containers: [{name: a, securityContext: {capabilities: {add: [NET_RAW]}}}]}}",
        REASON,
        r#"container "a" must not include "NET_RAW" in securityContext.capabilities.add"#
    )]
    #[case::sorted_dedup(
        v1_0,
        "{spec: {initContainers: [{name: i, securityContext: {capabilities: {add: [SYS_ADMIN, CHOWN]}}}], containers: [{name: a, securityContext: {capabilities: {add: [NET_RAW, SYS_ADMIN]}}}, {name: b, securityContext: {capabilities: {add: [KILL]}}}]}}",
        REASON,
        r#"containers "i", "a" must not include "NET_RAW", "SYS_ADMIN" in securityContext.capabilities.add"#
    )]
    #[case::case_sensitive(
        v1_0,
        "{spec: {containers: [{name: a, securityContext: {capabilities: {add: [chown, CAP_CHOWN]}}}]}}",
        REASON,
        r#"container "a" must not include "CAP_CHOWN", "chown" in securityContext.capabilities.add"#
    )]
    fn table(#[case] check: CheckFn, #[case] pod: &str, #[case] reason: &str, #[case] detail: &str) {
        assert_check(check, pod, reason, detail);
    }
}
