//! `windowsHostProcess` (baseline): Windows pods must not run as host processes
//! (HostProcess containers have privileged access to the Windows node).
//!
//! Restricted fields: `spec.securityContext.windowsOptions.hostProcess`,
//! `spec.{initContainers,containers,ephemeralContainers}[*].securityContext.windowsOptions.hostProcess`.
//!
//! Allowed values: unset, `false`.

use super::prelude::*;

pub(crate) const CHECK: Check = Check {
    id: "windowsHostProcess",
    level: Level::Baseline,
    versions: &[VersionedCheck {
        min: 0,
        eval: v1_0,
        overrides: &[],
    }],
};

fn host_process(c: &ContainerView<'_>) -> bool {
    c.security_context
        .and_then(|sc| sc.windows_options.as_ref())
        .and_then(|w| w.host_process)
        == Some(true)
}

fn v1_0(_: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    let pod_bad = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.windows_options.as_ref())
        .and_then(|w| w.host_process)
        == Some(true);
    if !pod_bad && !any_container(spec, |c| host_process(&c)) {
        return CheckResult::Allowed;
    }
    let mut bad = Vec::new();
    visit_containers(spec, |c| {
        if host_process(&c) {
            bad.push(c.name);
        }
    });
    CheckResult::forbidden(
        "hostProcess",
        format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters(pod_bad, &bad)
        ),
    )
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::pss::{checks::testing::assert_check, registry::CheckFn};

    const REASON: &str = "hostProcess";

    #[rstest]
    #[case::unset_false(
        v1_0,
        "{spec: {securityContext: {windowsOptions: {hostProcess: false}}, containers: [{name: a}, {name: b, securityContext: {windowsOptions: {runAsUserName: x}}}]}}",
        "",
        ""
    )]
    #[case::pod(
        v1_0,
        "{spec: {securityContext: {windowsOptions: {hostProcess: true}}, containers: [{name: a}]}}",
        REASON,
        "pod must not set securityContext.windowsOptions.hostProcess=true"
    )]
    #[case::containers(
        v1_0,
        "{spec: {initContainers: [{name: i, securityContext: {windowsOptions: {hostProcess: true}}}], containers: [{name: a, securityContext: {windowsOptions: {hostProcess: true}}}]}}",
        REASON,
        r#"containers "i", "a" must not set securityContext.windowsOptions.hostProcess=true"#
    )]
    #[case::both(
        v1_0,
        "{spec: {securityContext: {windowsOptions: {hostProcess: true}}, containers: [{name: a, securityContext: {windowsOptions: {hostProcess: true}}}]}}",
        REASON,
        r#"pod and container "a" must not set securityContext.windowsOptions.hostProcess=true"#
    )]
    fn table(#[case] check: CheckFn, #[case] pod: &str, #[case] reason: &str, #[case] detail: &str) {
        assert_check(check, pod, reason, detail);
    }
}
