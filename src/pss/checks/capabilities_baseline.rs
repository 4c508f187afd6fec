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

fn added<'a>(c: &ContainerView<'a>) -> &'a [String] {
    c.security_context
        .and_then(|sc| sc.capabilities.as_ref())
        .and_then(|caps| caps.add.as_deref())
        .unwrap_or_default()
}

fn allowed(cap: &str) -> bool {
    ALLOWED_1_0.contains(&cap)
}

fn v1_0(_: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    if !any_container(spec, |c| added(&c).iter().any(|cap| !allowed(cap))) {
        return CheckResult::Allowed;
    }
    let mut bad_containers = Vec::new();
    let mut bad_caps = BTreeSet::new();
    visit_containers(spec, |c| {
        let mut valid = true;
        for cap in added(&c).iter().filter(|cap| !allowed(cap)) {
            valid = false;
            bad_caps.insert(cap.as_str());
        }
        if !valid {
            bad_containers.push(c.name);
        }
    });
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
