//! `sysctls` (baseline): sysctls can disable security mechanisms or affect every container
//! on a host, and are disallowed except for a "safe" subset: namespaced in the container or
//! the pod, and isolated from other pods and processes on the same node.
//!
//! Restricted field: `spec.securityContext.sysctls[*].name`.
//!
//! Allowed values (the safe list grows with the version):
//! v1.0 `kernel.shm_rmid_forced`, `net.ipv4.ip_local_port_range`,
//! `net.ipv4.ip_unprivileged_port_start`, `net.ipv4.tcp_syncookies`,
//! `net.ipv4.ping_group_range`; v1.27 + `net.ipv4.ip_local_reserved_ports`;
//! v1.29 + `net.ipv4.tcp_keepalive_time`, `net.ipv4.tcp_fin_timeout`,
//! `net.ipv4.tcp_keepalive_intvl`, `net.ipv4.tcp_keepalive_probes`;
//! v1.32 + `net.ipv4.tcp_rmem`, `net.ipv4.tcp_wmem`;
//! v1.37 + `net.ipv4.tcp_slow_start_after_idle`, `net.ipv4.tcp_notsent_lowat`.
//!
//! The forbidden names are listed in spec order, unquoted, not de-duplicated.

use super::prelude::*;

pub(crate) const CHECK: Check = Check {
    id: "sysctls",
    level: Level::Baseline,
    versions: &[
        VersionedCheck {
            min: 0,
            eval: v1_0,
            overrides: &[],
        },
        VersionedCheck {
            min: 27,
            eval: v1_27,
            overrides: &[],
        },
        VersionedCheck {
            min: 29,
            eval: v1_29,
            overrides: &[],
        },
        VersionedCheck {
            min: 32,
            eval: v1_32,
            overrides: &[],
        },
        VersionedCheck {
            min: 37,
            eval: v1_37,
            overrides: &[],
        },
    ],
};

const SAFE_1_0: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
];
const SAFE_1_27: &[&str] = &["net.ipv4.ip_local_reserved_ports"];
const SAFE_1_29: &[&str] = &[
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];
const SAFE_1_32: &[&str] = &["net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"];
const SAFE_1_37: &[&str] = &["net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"];

fn v1_0(_: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    forbidden_sysctls(spec, &[SAFE_1_0])
}

/// `net.ipv4.ip_local_reserved_ports` is namespaced from kernel 3.16 (safe in 1.27).
fn v1_27(_: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    forbidden_sysctls(spec, &[SAFE_1_0, SAFE_1_27])
}

/// TCP keepalive and fin timeout sysctls, safe in 1.29.
fn v1_29(_: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    forbidden_sysctls(spec, &[SAFE_1_0, SAFE_1_27, SAFE_1_29])
}

/// TCP buffer sizes, safe in 1.32.
fn v1_32(_: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    forbidden_sysctls(spec, &[SAFE_1_0, SAFE_1_27, SAFE_1_29, SAFE_1_32])
}

/// `tcp_slow_start_after_idle` and `tcp_notsent_lowat`, safe in 1.37.
fn v1_37(_: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    forbidden_sysctls(spec, &[SAFE_1_0, SAFE_1_27, SAFE_1_29, SAFE_1_32, SAFE_1_37])
}

fn forbidden_sysctls(spec: &PodView<'_>, safe: &[&[&str]]) -> CheckResult {
    let sysctls = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.sysctls.as_deref())
        .unwrap_or_default();
    let is_safe = |name: &str| safe.iter().any(|set| set.contains(&name));
    let forbidden: Vec<&str> = sysctls
        .iter()
        .map(|s| s.name.as_str())
        .filter(|name| !is_safe(name))
        .collect();
    if forbidden.is_empty() {
        return CheckResult::Allowed;
    }
    CheckResult::forbidden("forbidden sysctls", forbidden.join(", "))
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::pss::{checks::testing::assert_check, registry::CheckFn};

    const REASON: &str = "forbidden sysctls";
    const SET_1_27: &str = "{spec: {securityContext: {sysctls: [{name: net.ipv4.ip_local_reserved_ports, value: '1'}]}, containers: [{name: a}]}}";
    const SET_1_29: &str = "{spec: {securityContext: {sysctls: [{name: net.ipv4.tcp_keepalive_time, value: '1'}, {name: net.ipv4.tcp_fin_timeout, value: '1'}, {name: net.ipv4.tcp_keepalive_intvl, value: '1'}, {name: net.ipv4.tcp_keepalive_probes, value: '1'}]}, containers: [{name: a}]}}";
    const SET_1_32: &str = "{spec: {securityContext: {sysctls: [{name: net.ipv4.tcp_rmem, value: '1'}, {name: net.ipv4.tcp_wmem, value: '1'}]}, containers: [{name: a}]}}";
    const SET_1_37: &str = "{spec: {securityContext: {sysctls: [{name: net.ipv4.tcp_slow_start_after_idle, value: '0'}, {name: net.ipv4.tcp_notsent_lowat, value: '1'}]}, containers: [{name: a}]}}";

    #[rstest]
    #[case::none(v1_0, "{spec: {containers: [{name: a}]}}", "", "")]
    #[case::safe_1_0(
        v1_0,
        "{spec: {securityContext: {sysctls: [{name: kernel.shm_rmid_forced, value: '0'}, {name: net.ipv4.ip_local_port_range, value: '1024 65535'}, {name: net.ipv4.tcp_syncookies, value: '0'}, {name: net.ipv4.ping_group_range, value: '1 0'}, {name: net.ipv4.ip_unprivileged_port_start, value: '0'}]}, containers: [{name: a}]}}",
        "",
        ""
    )]
    #[case::spec_order_with_duplicates(
        v1_0,
        "{spec: {securityContext: {sysctls: [{name: kernel.msgmax, value: '1'}, {name: kernel.shm_rmid_forced, value: '0'}, {name: a.b, value: '1'}, {name: kernel.msgmax, value: '2'}]}, containers: [{name: a}]}}",
        REASON,
        "kernel.msgmax, a.b, kernel.msgmax"
    )]
    #[case::reserved_ports_1_0(v1_0, SET_1_27, REASON, "net.ipv4.ip_local_reserved_ports")]
    #[case::reserved_ports_1_27(v1_27, SET_1_27, "", "")]
    #[case::keepalive_1_27(
        v1_27,
        SET_1_29,
        REASON,
        "net.ipv4.tcp_keepalive_time, net.ipv4.tcp_fin_timeout, net.ipv4.tcp_keepalive_intvl, net.ipv4.tcp_keepalive_probes"
    )]
    #[case::keepalive_1_29(v1_29, SET_1_29, "", "")]
    #[case::rmem_1_29(v1_29, SET_1_32, REASON, "net.ipv4.tcp_rmem, net.ipv4.tcp_wmem")]
    #[case::rmem_1_32(v1_32, SET_1_32, "", "")]
    #[case::slow_start_1_32(
        v1_32,
        SET_1_37,
        REASON,
        "net.ipv4.tcp_slow_start_after_idle, net.ipv4.tcp_notsent_lowat"
    )]
    #[case::slow_start_1_37(v1_37, SET_1_37, "", "")]
    #[case::older_sets_1_37(v1_37, SET_1_27, "", "")]
    #[case::unsafe_1_37(
        v1_37,
        "{spec: {securityContext: {sysctls: [{name: kernel.sem, value: '1'}]}, containers: [{name: a}]}}",
        REASON,
        "kernel.sem"
    )]
    fn table(#[case] check: CheckFn, #[case] pod: &str, #[case] reason: &str, #[case] detail: &str) {
        assert_check(check, pod, reason, detail);
    }
}
