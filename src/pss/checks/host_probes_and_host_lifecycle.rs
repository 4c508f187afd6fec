//! `hostProbesAndHostLifecycle` (baseline, from v1.34): probes and lifecycle handlers must
//! not target another host.
//!
//! Restricted fields, for every container, init container and ephemeral container:
//! `livenessProbe`, `readinessProbe`, `startupProbe` × `httpGet.host`, `tcpSocket.host`;
//! `lifecycle.postStart`, `lifecycle.preStop` × `httpGet.host`, `tcpSocket.host`.
//!
//! Allowed values: unset, `""`. Unlike the other checks, container names and hosts are
//! both listed de-duplicated and sorted.

use std::collections::BTreeSet;

use super::prelude::*;

pub(crate) const CHECK: Check = Check {
    id: "hostProbesAndHostLifecycle",
    level: Level::Baseline,
    versions: &[VersionedCheck {
        min: 34,
        eval: v1_34,
        overrides: &[],
    }],
};

/// Calls `f` with each non-empty host a container's probes and lifecycle handlers target.
#[inline]
fn each_host<'a>(c: &ContainerView<'a>, mut f: impl FnMut(&'a str)) {
    let mut host = |h: &'a Option<String>| {
        if let Some(h) = h.as_deref().filter(|h| !h.is_empty()) {
            f(h);
        }
    };
    for probe in [c.liveness_probe, c.readiness_probe, c.startup_probe]
        .into_iter()
        .flatten()
    {
        if let Some(a) = &probe.http_get {
            host(&a.host);
        }
        if let Some(a) = &probe.tcp_socket {
            host(&a.host);
        }
    }
    if let Some(lifecycle) = c.lifecycle {
        for handler in [&lifecycle.post_start, &lifecycle.pre_stop].into_iter().flatten() {
            if let Some(a) = &handler.http_get {
                host(&a.host);
            }
            if let Some(a) = &handler.tcp_socket {
                host(&a.host);
            }
        }
    }
}

fn v1_34(_: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    let uses_host = |c: ContainerView<'_>| {
        let mut found = false;
        each_host(&c, |_| found = true);
        found
    };
    if !any_container(spec, uses_host) {
        return CheckResult::Allowed;
    }
    let mut bad_containers = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    visit_containers(spec, |c| {
        each_host(&c, |host| {
            bad_containers.insert(c.name);
            hosts.insert(host);
        });
    });
    CheckResult::forbidden(
        "probe or lifecycle host",
        format!(
            "{} {} {} {} {}",
            pluralize("container", "containers", bad_containers.len()),
            join_quote(&bad_containers),
            pluralize("uses", "use", bad_containers.len()),
            pluralize("probe or lifecycle host", "probe or lifecycle hosts", hosts.len()),
            join_quote(&hosts)
        ),
    )
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::pss::{checks::testing::assert_check, registry::CheckFn};

    const REASON: &str = "probe or lifecycle host";

    #[rstest]
    #[case::no_hosts(
        v1_34,
        "{spec: {containers: [{name: a, livenessProbe: {httpGet: {port: 80}}, readinessProbe: {tcpSocket: {port: 80, host: ''}}, lifecycle: {preStop: {httpGet: {port: 80, host: ''}}}}]}}",
        "",
        ""
    )]
    #[case::liveness_http(
        v1_34,
        "{spec: {containers: [{name: a, livenessProbe: {httpGet: {port: 80, host: example.com}}}]}}",
        REASON,
        r#"container "a" uses probe or lifecycle host "example.com""#
    )]
    #[case::sorted_everywhere(
        v1_34,
        "{spec: {initContainers: [{name: z, startupProbe: {tcpSocket: {port: 1, host: 10.0.0.1}}}], containers: [{name: b, readinessProbe: {tcpSocket: {port: 1, host: b.example}}, lifecycle: {postStart: {httpGet: {port: 1, host: a.example}}, preStop: {tcpSocket: {port: 1, host: b.example}}}}], ephemeralContainers: [{name: a, livenessProbe: {httpGet: {port: 1, host: a.example}}}]}}",
        REASON,
        r#"containers "a", "b", "z" use probe or lifecycle hosts "10.0.0.1", "a.example", "b.example""#
    )]
    fn table(#[case] check: CheckFn, #[case] pod: &str, #[case] reason: &str, #[case] detail: &str) {
        assert_check(check, pod, reason, detail);
    }
}
