//! `seLinuxOptions` (baseline): setting the SELinux type is restricted, and setting a
//! custom SELinux user or role is forbidden.
//!
//! Restricted fields: `spec.securityContext.seLinuxOptions.{type,user,role}` and the same
//! under `spec.{initContainers,containers,ephemeralContainers}[*].securityContext`.
//!
//! Allowed values: `type` unset, `""`, `container_t`, `container_init_t`,
//! `container_kvm_t`, and from v1.31 `container_engine_t`; `user` and `role` unset or empty.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::SELinuxOptions;

use super::prelude::*;

pub(crate) const CHECK: Check = Check {
    id: "seLinuxOptions",
    level: Level::Baseline,
    versions: &[
        VersionedCheck {
            min: 0,
            eval: v1_0,
            overrides: &[],
        },
        VersionedCheck {
            min: 31,
            eval: v1_31,
            overrides: &[],
        },
    ],
};

const ALLOWED_TYPES_1_0: &[&str] = &["", "container_t", "container_init_t", "container_kvm_t"];
const ALLOWED_TYPES_1_31: &[&str] = &["container_engine_t"];

fn v1_0(_: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    check_options(spec, &[ALLOWED_TYPES_1_0])
}

/// `container_engine_t` is allowed from 1.31, for container engines run in pods.
fn v1_31(_: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    check_options(spec, &[ALLOWED_TYPES_1_0, ALLOWED_TYPES_1_31])
}

#[derive(Default)]
struct Findings<'a> {
    types: BTreeSet<&'a str>,
    user: bool,
    role: bool,
}

impl<'a> Findings<'a> {
    /// Records what is wrong with one `seLinuxOptions`; whether it is valid.
    fn check(&mut self, opts: &'a SELinuxOptions, allowed: &[&[&str]]) -> bool {
        let mut valid = true;
        let t = opts.type_.as_deref().unwrap_or("");
        if !allowed.iter().any(|set| set.contains(&t)) {
            valid = false;
            self.types.insert(t);
        }
        if opts.user.as_deref().is_some_and(|u| !u.is_empty()) {
            valid = false;
            self.user = true;
        }
        if opts.role.as_deref().is_some_and(|r| !r.is_empty()) {
            valid = false;
            self.role = true;
        }
        valid
    }
}

fn check_options(spec: &PodView<'_>, allowed: &[&[&str]]) -> CheckResult {
    let invalid = |o: Option<&SELinuxOptions>| o.is_some_and(|o| !Findings::default().check(o, allowed));
    let pod_options = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.se_linux_options.as_ref());
    if !invalid(pod_options)
        && !any_container(spec, |c| {
            invalid(c.security_context.and_then(|sc| sc.se_linux_options.as_ref()))
        })
    {
        return CheckResult::Allowed;
    }
    let mut found = Findings::default();
    let pod_bad = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.se_linux_options.as_ref())
        .is_some_and(|o| !found.check(o, allowed));
    let mut bad_containers = Vec::new();
    visit_containers(spec, |c| {
        if let Some(o) = c.security_context.and_then(|sc| sc.se_linux_options.as_ref())
            && !found.check(o, allowed)
        {
            bad_containers.push(c.name);
        }
    });
    let mut problems = Vec::new();
    if !found.types.is_empty() {
        problems.push(format!(
            "{} {}",
            pluralize("type", "types", found.types.len()),
            join_quote(&found.types)
        ));
    }
    if found.user {
        problems.push("user may not be set".to_string());
    }
    if found.role {
        problems.push("role may not be set".to_string());
    }
    CheckResult::forbidden(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters(pod_bad, &bad_containers),
            problems.join("; ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::pss::{checks::testing::assert_check, registry::CheckFn};

    const REASON: &str = "seLinuxOptions";

    #[rstest]
    #[case::allowed(
        v1_0,
        "{spec: {securityContext: {seLinuxOptions: {level: 's0:c1,c2'}}, containers: [{name: a, securityContext: {seLinuxOptions: {type: container_t}}}, {name: b, securityContext: {seLinuxOptions: {type: container_init_t, user: ''}}}, {name: c, securityContext: {seLinuxOptions: {type: container_kvm_t}}}]}}",
        "",
        ""
    )]
    #[case::engine_1_0(
        v1_0,
        "{spec: {containers: [{name: a, securityContext: {seLinuxOptions: {type: container_engine_t}}}]}}",
        REASON,
        r#"container "a" set forbidden securityContext.seLinuxOptions: type "container_engine_t""#
    )]
    #[case::engine_1_31(
        v1_31,
        "{spec: {containers: [{name: a, securityContext: {seLinuxOptions: {type: container_engine_t}}}]}}",
        "",
        ""
    )]
    #[case::other_1_31(
        v1_31,
        "{spec: {securityContext: {seLinuxOptions: {type: spc_t}}, containers: [{name: a}]}}",
        REASON,
        r#"pod set forbidden securityContext.seLinuxOptions: type "spc_t""#
    )]
    #[case::user_only(
        v1_0,
        "{spec: {containers: [{name: a, securityContext: {seLinuxOptions: {user: sysadm_u}}}]}}",
        REASON,
        r#"container "a" set forbidden securityContext.seLinuxOptions: user may not be set"#
    )]
    #[case::everything(v1_31, "{spec: {securityContext: {seLinuxOptions: {type: spc_t, role: r}}, initContainers: [{name: i, securityContext: {seLinuxOptions: {type: foo_t, user: u}}}], containers: [{name: a, securityContext: {seLinuxOptions: {type: spc_t}}}, {name: b, securityContext: {seLinuxOptions: {type: container_t}}}]}}", REASON, r#"pod and containers "i", "a" set forbidden securityContext.seLinuxOptions: types "foo_t", "spc_t"; user may not be set; role may not be set"#)]
    fn table(#[case] check: CheckFn, #[case] pod: &str, #[case] reason: &str, #[case] detail: &str) {
        assert_check(check, pod, reason, detail);
    }
}
