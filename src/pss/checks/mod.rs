//! The upstream PodSecurity checks, one file per check ID (named by the ID in snake_case),
//! each with its level and one function per version at which its behaviour changes.
//!
//! [`ALL`] is the only registration point; it lists the checks in the order of
//! `shared/pss/checks.csv`.

mod allow_privilege_escalation;
mod app_armor_profile;
mod capabilities_baseline;
mod capabilities_restricted;
mod host_namespaces;
mod host_path_volumes;
mod host_ports;
mod host_probes_and_host_lifecycle;
mod privileged;
mod proc_mount;
mod proc_mount_restricted;
mod restricted_volumes;
mod run_as_non_root;
mod run_as_user;
mod se_linux_options;
mod seccomp_profile_baseline;
mod seccomp_profile_restricted;
mod sysctls;
mod windows_host_process;

use super::registry::Check;

/// Every check, registered once.
pub(crate) const ALL: &[Check] = &[
    allow_privilege_escalation::CHECK,
    app_armor_profile::CHECK,
    capabilities_baseline::CHECK,
    capabilities_restricted::CHECK,
    host_namespaces::CHECK,
    host_path_volumes::CHECK,
    host_ports::CHECK,
    host_probes_and_host_lifecycle::CHECK,
    privileged::CHECK,
    proc_mount::CHECK,
    proc_mount_restricted::CHECK,
    restricted_volumes::CHECK,
    run_as_non_root::CHECK,
    run_as_user::CHECK,
    se_linux_options::CHECK,
    seccomp_profile_baseline::CHECK,
    seccomp_profile_restricted::CHECK,
    sysctls::CHECK,
    windows_host_process::CHECK,
];

/// What every check file uses.
mod prelude {
    pub(super) use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    pub(super) use crate::pss::{
        CheckResult, Level,
        registry::{Check, VersionedCheck},
        visit::{
            ContainerView, PodView, any_container, containers_phrase, is_windows, join_quote, pluralize,
            setters, visit_containers,
        },
    };
}

/// Helpers for the per-check test tables.
#[cfg(test)]
pub(crate) mod testing {
    use k8s_openapi::{api::core::v1::PodSpec, apimachinery::pkg::apis::meta::v1::ObjectMeta};
    use serde::Deserialize;

    use crate::pss::{CheckResult, registry::CheckFn};

    #[derive(Deserialize)]
    struct Pod {
        #[serde(default)]
        metadata: ObjectMeta,
        spec: PodSpec,
    }

    /// A pod from YAML (flow style is handy: `{spec: {containers: [{name: a}]}}`).
    pub(crate) fn pod(yaml: &str) -> (ObjectMeta, PodSpec) {
        let value: crate::value::Value =
            serde_saphyr::from_str_with_options(yaml, crate::source::yaml_options()).unwrap();
        let pod: Pod = crate::value::from_value(value).unwrap();
        (pod.metadata, pod.spec)
    }

    /// Runs `check` on the pod; `reason` empty means the pod must be allowed.
    pub(crate) fn assert_check(check: CheckFn, yaml: &str, reason: &str, detail: &str) {
        let (meta, spec) = pod(yaml);
        let got = check(&meta, &crate::pss::view::PodView::of(&spec));
        if reason.is_empty() {
            assert_eq!(got, CheckResult::Allowed, "{yaml}");
        } else {
            assert_eq!(
                got,
                CheckResult::Forbidden {
                    reason: reason.to_string().into(),
                    detail: detail.to_string()
                },
                "{yaml}"
            );
        }
    }
}
