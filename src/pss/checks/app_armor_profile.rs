//! `appArmorProfile` (baseline): the default AppArmor profile must not be overridden or
//! disabled, except towards an allowed set of profiles.
//!
//! Restricted fields: `spec.securityContext.appArmorProfile.type`,
//! `spec.{initContainers,containers,ephemeralContainers}[*].securityContext.appArmorProfile.type`;
//! allowed values `RuntimeDefault`, `Localhost`, unset.
//!
//! Restricted annotations: `metadata.annotations['container.apparmor.security.beta.kubernetes.io/*']`;
//! allowed values empty, `runtime/default`, `localhost/*`.
//!
//! Upstream has a single version (v1.0) that reads both the fields and the annotations.

use std::{collections::BTreeSet, ops::Bound};

use super::prelude::*;
use crate::pss::visit::go_quote;

pub(crate) const CHECK: Check = Check {
    id: "appArmorProfile",
    level: Level::Baseline,
    versions: &[VersionedCheck {
        min: 0,
        eval: v1_0,
        overrides: &[],
    }],
};

const ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

fn allowed_type(t: &str) -> bool {
    matches!(t, "RuntimeDefault" | "Localhost")
}

fn allowed_annotation(value: &str) -> bool {
    value.is_empty() || value == "runtime/default" || value.starts_with("localhost/")
}

/// The AppArmor profile type a container sets, when it is not allowed.
fn bad_type<'a>(c: &ContainerView<'a>) -> Option<&'a str> {
    c.security_context
        .and_then(|sc| sc.app_armor_profile.as_ref())
        .map(|p| p.type_.as_str())
        .filter(|t| !allowed_type(t))
}

/// The pod's AppArmor annotations with a forbidden value (a range lookup: CI pods carry
/// many other annotations).
fn bad_annotations(meta: &ObjectMeta) -> impl Iterator<Item = (&String, &String)> {
    let range = (Bound::Included(ANNOTATION_PREFIX), Bound::Unbounded);
    meta.annotations
        .iter()
        .flat_map(move |a| a.range::<str, _>(range))
        .take_while(|(k, _)| k.starts_with(ANNOTATION_PREFIX))
        .filter(|(_, v)| !allowed_annotation(v))
}

fn v1_0(meta: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    let pod_type = spec
        .security_context
        .as_ref()
        .and_then(|sc| sc.app_armor_profile.as_ref())
        .map(|p| p.type_.as_str());
    let pod_bad = pod_type.is_some_and(|t| !allowed_type(t));
    if !pod_bad && !any_container(spec, |c| bad_type(&c).is_some()) && bad_annotations(meta).next().is_none()
    {
        return CheckResult::Allowed;
    }

    let mut bad_values = BTreeSet::new();
    if let Some(t) = pod_type.filter(|_| pod_bad) {
        bad_values.insert(t);
    }

    let mut bad_containers = Vec::new();
    visit_containers(spec, |c| {
        if let Some(t) = bad_type(&c) {
            bad_containers.push(c.name);
            bad_values.insert(t);
        }
    });

    let mut bad_annotations_list = Vec::new();
    for (key, value) in bad_annotations(meta) {
        bad_annotations_list.push(format!("{key}={}", go_quote(value)));
    }

    let mut who = setters(pod_bad, &bad_containers);
    bad_annotations_list.sort();
    if !bad_annotations_list.is_empty() {
        if !who.is_empty() {
            who.push_str(" and ");
        }
        who.push_str(pluralize("annotation", "annotations", bad_annotations_list.len()));
    }
    // Field types sorted first, then the sorted annotations.
    let values: Vec<&str> = bad_values
        .into_iter()
        .chain(bad_annotations_list.iter().map(String::as_str))
        .collect();
    CheckResult::forbidden(
        pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            values.len(),
        ),
        format!(
            "{who} must not set AppArmor profile type to {}",
            join_quote(&values)
        ),
    )
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::pss::{checks::testing::assert_check, registry::CheckFn};

    const ONE: &str = "forbidden AppArmor profile";
    const MANY: &str = "forbidden AppArmor profiles";

    #[rstest]
    #[case::unset(v1_0, "{spec: {containers: [{name: a}]}}", "", "")]
    #[case::allowed_fields(
        v1_0,
        "{spec: {securityContext: {appArmorProfile: {type: RuntimeDefault}}, containers: [{name: a, securityContext: {appArmorProfile: {type: Localhost, localhostProfile: p}}}]}}",
        "",
        ""
    )]
    #[case::allowed_annotations(
        v1_0,
        "{metadata: {annotations: {container.apparmor.security.beta.kubernetes.io/a: runtime/default, container.apparmor.security.beta.kubernetes.io/b: localhost/p, container.apparmor.security.beta.kubernetes.io/c: '', other/key: unconfined}}, spec: {containers: [{name: a}]}}",
        "",
        ""
    )]
    #[case::pod_unconfined(
        v1_0,
        "{spec: {securityContext: {appArmorProfile: {type: Unconfined}}, containers: [{name: a}]}}",
        ONE,
        r#"pod must not set AppArmor profile type to "Unconfined""#
    )]
    #[case::containers(
        v1_0,
        "{spec: {initContainers: [{name: i, securityContext: {appArmorProfile: {type: Unconfined}}}], containers: [{name: a, securityContext: {appArmorProfile: {type: Unconfined}}}, {name: b, securityContext: {appArmorProfile: {type: RuntimeDefault}}}]}}",
        ONE,
        r#"containers "i", "a" must not set AppArmor profile type to "Unconfined""#
    )]
    #[case::annotation(v1_0, "{metadata: {annotations: {container.apparmor.security.beta.kubernetes.io/a: unconfined}}, spec: {containers: [{name: a}]}}", ONE, r#"annotation must not set AppArmor profile type to "container.apparmor.security.beta.kubernetes.io/a="unconfined"""#)]
    #[case::everything(v1_0, "{metadata: {annotations: {container.apparmor.security.beta.kubernetes.io/b: bogus, container.apparmor.security.beta.kubernetes.io/a: unconfined}}, spec: {securityContext: {appArmorProfile: {type: Unconfined}}, containers: [{name: a, securityContext: {appArmorProfile: {type: Other}}}]}}", MANY, r#"pod and container "a" and annotations must not set AppArmor profile type to "Other", "Unconfined", "container.apparmor.security.beta.kubernetes.io/a="unconfined"", "container.apparmor.security.beta.kubernetes.io/b="bogus"""#)]
    #[case::only_prefixed_keys(
        v1_0,
        "{metadata: {annotations: {a/x: unconfined, container.apparmor.security.beta.kubernetes.io: unconfined, container.apparmor.security.beta.kubernetes.io/z: unconfined, zz/y: unconfined}}, spec: {containers: [{name: a}]}}",
        ONE,
        r#"annotation must not set AppArmor profile type to "container.apparmor.security.beta.kubernetes.io/z="unconfined"""#
    )]
    fn table(#[case] check: CheckFn, #[case] pod: &str, #[case] reason: &str, #[case] detail: &str) {
        assert_check(check, pod, reason, detail);
    }
}
