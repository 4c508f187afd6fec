//! `capabilities_restricted` (restricted, from v1.22): containers must drop `ALL`
//! capabilities and may add back only `NET_BIND_SERVICE`.
//!
//! Restricted fields: `spec.{initContainers,containers,ephemeralContainers}[*].securityContext.capabilities.drop`
//! (must include `ALL`) and `….capabilities.add` (unset, empty, or `NET_BIND_SERVICE`).
//!
//! Replaces `capabilities_baseline` at restricted. From v1.25, Windows pods
//! (`spec.os.name: windows`) are allowed: the API rejects capabilities on them.

use std::collections::BTreeSet;

use super::prelude::*;

pub(crate) const CHECK: Check = Check {
    id: "capabilities_restricted",
    level: Level::Restricted,
    versions: &[
        VersionedCheck {
            min: 22,
            eval: v1_22,
            overrides: &["capabilities_baseline"],
        },
        VersionedCheck {
            min: 25,
            eval: v1_25,
            overrides: &["capabilities_baseline"],
        },
    ],
};

const CAPABILITY_ALL: &str = "ALL";
const CAPABILITY_NET_BIND_SERVICE: &str = "NET_BIND_SERVICE";

fn unrestricted(c: &ContainerView<'_>) -> bool {
    let Some(caps) = c.security_context.and_then(|sc| sc.capabilities.as_ref()) else {
        return true;
    };
    !caps.drop.iter().flatten().any(|d| d == CAPABILITY_ALL)
        || caps
            .add
            .iter()
            .flatten()
            .any(|a| a != CAPABILITY_NET_BIND_SERVICE)
}

fn v1_22(_: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    if !any_container(spec, |c| unrestricted(&c)) {
        return CheckResult::Allowed;
    }
    let mut missing_drop_all = Vec::new();
    let mut adding_forbidden = Vec::new();
    let mut forbidden_caps = BTreeSet::new();
    visit_containers(spec, |c| {
        let Some(caps) = c.security_context.and_then(|sc| sc.capabilities.as_ref()) else {
            missing_drop_all.push(c.name);
            return;
        };
        if !caps.drop.iter().flatten().any(|d| d == CAPABILITY_ALL) {
            missing_drop_all.push(c.name);
        }
        let mut added_forbidden = false;
        for cap in caps
            .add
            .iter()
            .flatten()
            .filter(|a| *a != CAPABILITY_NET_BIND_SERVICE)
        {
            added_forbidden = true;
            forbidden_caps.insert(cap.as_str());
        }
        if added_forbidden {
            adding_forbidden.push(c.name);
        }
    });
    if missing_drop_all.is_empty() && adding_forbidden.is_empty() {
        return CheckResult::Allowed;
    }
    let mut detail = String::new();
    if !missing_drop_all.is_empty() {
        detail = format!(
            r#"{} must set securityContext.capabilities.drop=["ALL"]"#,
            containers_phrase(&missing_drop_all)
        );
    }
    if !adding_forbidden.is_empty() {
        if !detail.is_empty() {
            detail.push_str("; ");
        }
        detail.push_str(&format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding_forbidden),
            join_quote(&forbidden_caps)
        ));
    }
    CheckResult::forbidden("unrestricted capabilities", detail)
}

/// Pod OS field, 1.25: a Windows pod cannot set capabilities, so none are required.
fn v1_25(meta: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    if is_windows(spec) {
        return CheckResult::Allowed;
    }
    v1_22(meta, spec)
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::pss::{checks::testing::assert_check, registry::CheckFn};

    const REASON: &str = "unrestricted capabilities";

    #[rstest]
    #[case::drop_all(
        v1_22,
        "{spec: {containers: [{name: a, securityContext: {capabilities: {drop: [ALL]}}}, {name: b, securityContext: {capabilities: {drop: [NET_RAW, ALL], add: [NET_BIND_SERVICE]}}}]}}",
        "",
        ""
    )]
    #[case::missing(
        v1_22,
        "{spec: {initContainers: [{name: i}], containers: [{name: a, securityContext: {}}, {name: b, securityContext: {capabilities: {}}}, {name: c, securityContext: {capabilities: {drop: [all]}}}]}}",
        REASON,
        r#"containers "i", "a", "b", "c" must set securityContext.capabilities.drop=["ALL"]"#
    )]
    #[case::adds(
        v1_22,
        "{spec: {containers: [{name: a, securityContext: {capabilities: {drop: [ALL], add: [SYS_ADMIN, CHOWN, NET_BIND_SERVICE]}}}, {name: b, securityContext: {capabilities: {drop: [ALL], add: [CHOWN]}}}]}}",
        REASON,
        r#"containers "a", "b" must not include "CHOWN", "SYS_ADMIN" in securityContext.capabilities.add"#
    )]
    #[case::both(v1_22, "{spec: {containers: [{name: a, securityContext: {capabilities: {add: [NET_RAW]}}}, {name: b}]}}", REASON, r#"containers "a", "b" must set securityContext.capabilities.drop=["ALL"]; container "a" must not include "NET_RAW" in securityContext.capabilities.add"#)]
    #[case::windows_1_22(
        v1_22,
        "{spec: {os: {name: windows}, containers: [{name: a}]}}",
        REASON,
        r#"container "a" must set securityContext.capabilities.drop=["ALL"]"#
    )]
    #[case::windows_1_25(v1_25, "{spec: {os: {name: windows}, containers: [{name: a}]}}", "", "")]
    #[case::linux_1_25(
        v1_25,
        "{spec: {containers: [{name: a}]}}",
        REASON,
        r#"container "a" must set securityContext.capabilities.drop=["ALL"]"#
    )]
    fn table(#[case] check: CheckFn, #[case] pod: &str, #[case] reason: &str, #[case] detail: &str) {
        assert_check(check, pod, reason, detail);
    }
}
