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

use k8s_openapi::api::core::v1::{LifecycleHandler, Probe};

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

fn non_empty(host: Option<&String>) -> Option<&str> {
    host.map(String::as_str).filter(|h| !h.is_empty())
}

fn probe_hosts(probe: Option<&Probe>) -> [Option<&str>; 2] {
    let http = probe
        .and_then(|p| p.http_get.as_ref())
        .and_then(|h| non_empty(h.host.as_ref()));
    let tcp = probe
        .and_then(|p| p.tcp_socket.as_ref())
        .and_then(|t| non_empty(t.host.as_ref()));
    [http, tcp]
}

fn handler_hosts(handler: Option<&LifecycleHandler>) -> [Option<&str>; 2] {
    let http = handler
        .and_then(|h| h.http_get.as_ref())
        .and_then(|h| non_empty(h.host.as_ref()));
    let tcp = handler
        .and_then(|h| h.tcp_socket.as_ref())
        .and_then(|t| non_empty(t.host.as_ref()));
    [http, tcp]
}

fn v1_34(_: &ObjectMeta, spec: &PodSpec) -> CheckResult {
    let mut bad_containers = BTreeSet::new();
    let mut hosts = BTreeSet::new();
    for c in containers(spec) {
        let lifecycle = c.lifecycle;
        let all = [
            probe_hosts(c.liveness_probe),
            probe_hosts(c.readiness_probe),
            probe_hosts(c.startup_probe),
            handler_hosts(lifecycle.and_then(|l| l.post_start.as_ref())),
            handler_hosts(lifecycle.and_then(|l| l.pre_stop.as_ref())),
        ];
        for host in all.into_iter().flatten().flatten() {
            bad_containers.insert(c.name);
            hosts.insert(host);
        }
    }
    if bad_containers.is_empty() {
        return CheckResult::Allowed;
    }
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
