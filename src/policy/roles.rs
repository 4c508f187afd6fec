//! Container roles and the presets that map CI systems' container names to them.
//!
//! A preset is a table of [`Rule`]s tried in order; the policy's own `roles` matchers are
//! tried before it. Every preset ends in a remainder rule, so every container has a role.
//! In every preset an init container with `restartPolicy: Always` (a native sidecar) is a
//! service.

use std::{collections::BTreeMap, fmt};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The role of a container in a CI pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs the job's script.
    Build,
    /// Runner infrastructure (clone, artifacts, logs); never inherits the job's user/group.
    Helper,
    /// A service or sidecar the job asked for.
    Service,
    /// An init container.
    Init,
}

impl Role {
    /// Every role, in policy-file order.
    pub const ALL: [Role; 4] = [Role::Build, Role::Helper, Role::Service, Role::Init];

    /// The role's key in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Build => "build",
            Role::Helper => "helper",
            Role::Service => "service",
            Role::Init => "init",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which list of the pod spec a container is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerKind {
    /// `spec.containers`
    Container,
    /// `spec.initContainers` without `restartPolicy: Always`
    Init,
    /// `spec.initContainers` with `restartPolicy: Always` (a native sidecar)
    Sidecar,
}

/// The CI system whose container naming the policy follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Regular containers are build, init containers are init.
    #[default]
    Generic,
    /// GitLab Runner's Kubernetes executor: `build`, `helper`, services, `init-permissions`.
    GitlabRunner,
    /// Woodpecker's Kubernetes backend: one step container per pod; service pods.
    Woodpecker,
    /// Tekton Pipelines: `step-*`, `sidecar-*`, its own init containers.
    Tekton,
}

impl Preset {
    /// The preset's name in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Generic => "generic",
            Preset::GitlabRunner => "gitlab-runner",
            Preset::Woodpecker => "woodpecker",
            Preset::Tekton => "tekton",
        }
    }

    /// The preset's rules, tried in order.
    pub fn rules(self) -> &'static [Rule] {
        match self {
            Preset::Generic => GENERIC,
            Preset::GitlabRunner => GITLAB_RUNNER,
            Preset::Woodpecker => WOODPECKER,
            Preset::Tekton => TEKTON,
        }
    }
}

const ANY: &[&str] = &["*"];

const fn rule(kind: ContainerKind, names: &'static [&'static str], role: Role) -> Rule {
    Rule {
        kind,
        names,
        pod_label: None,
        role,
    }
}

use ContainerKind::{Container as C, Init as I, Sidecar as S};

const GENERIC: &[Rule] = &[
    rule(S, ANY, Role::Service),
    rule(C, ANY, Role::Build),
    rule(I, ANY, Role::Init),
];

const GITLAB_RUNNER: &[Rule] = &[
    rule(S, ANY, Role::Service),
    rule(C, &["build"], Role::Build),
    rule(C, &["helper"], Role::Helper),
    rule(C, ANY, Role::Service),
    // GitLab builds it from the job's image with the build context and the job's user.
    rule(I, &["init-build-uid-gid-collector"], Role::Build),
    rule(I, ANY, Role::Init),
];

const WOODPECKER: &[Rule] = &[
    rule(S, ANY, Role::Service),
    Rule {
        kind: C,
        names: ANY,
        pod_label: Some("service"),
        role: Role::Service,
    },
    rule(C, ANY, Role::Build),
    rule(I, ANY, Role::Init),
];

const TEKTON: &[Rule] = &[
    rule(C, &["step-*"], Role::Build),
    rule(C, &["sidecar-tekton-log-results"], Role::Helper),
    rule(C, &["sidecar-*"], Role::Service),
    rule(S, ANY, Role::Service),
    rule(I, ANY, Role::Helper),
    rule(C, ANY, Role::Build),
];

/// One row of a preset's table.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The list the container is in.
    pub kind: ContainerKind,
    /// Container-name globs; one must match.
    pub names: &'static [&'static str],
    /// A pod label that must be present.
    pub pod_label: Option<&'static str>,
    /// The role given.
    pub role: Role,
}

/// A policy `roles` entry: containers whose name matches a glob (and, optionally, whose
/// pod matches a label selector) get the role. Tried before the preset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RoleMatcher {
    /// The role given.
    pub role: Role,
    /// Container-name globs (`*` any run of characters, `?` one character).
    pub container_names: Vec<String>,
    /// Only pods whose labels match this selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
}

/// Matches a glob with `*` (any run, possibly empty) and `?` (one character).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether pod labels match a Kubernetes label selector (`matchLabels` and
/// `matchExpressions` with In, NotIn, Exists, DoesNotExist).
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = selector.match_expressions.iter().flatten().all(|e| {
        let value = labels.get(&e.key);
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

/// Finds the role of a container: the policy's matchers first, then the preset.
pub fn role_of(
    matchers: &[RoleMatcher],
    preset: Preset,
    labels: &BTreeMap<String, String>,
    name: &str,
    kind: ContainerKind,
) -> Role {
    for m in matchers {
        let name_ok = m.container_names.iter().any(|g| glob_match(g, name));
        if name_ok
            && m.pod_selector
                .as_ref()
                .is_none_or(|s| selector_matches(s, labels))
        {
            return m.role;
        }
    }
    for r in preset.rules() {
        if r.kind == kind
            && r.names.iter().any(|g| glob_match(g, name))
            && r.pod_label.is_none_or(|l| labels.contains_key(l))
        {
            return r.role;
        }
    }
    // Unreachable for the built-in presets, which all end in remainders; a safe answer.
    match kind {
        ContainerKind::Container => Role::Build,
        ContainerKind::Init => Role::Init,
        ContainerKind::Sidecar => Role::Service,
    }
}

/// The preset whose pods look like this pod, by SPEC §5's "pod carries" column:
/// GitLab Runner (label `pod: runner-*`, or regular containers `helper` beside `build`),
/// Woodpecker (label `woodpecker-ci.org/step`), Tekton (label `tekton.dev/taskRun`),
/// else [`Preset::Generic`]. Labels are tried before container names, which are weaker
/// evidence. `containers` are the names of the pod's regular containers.
///
/// ```
/// use std::collections::BTreeMap;
/// use ciguard::policy::{Preset, roles::detect_preset};
///
/// let labels = BTreeMap::from([("tekton.dev/taskRun".to_string(), "build-run".to_string())]);
/// assert_eq!(detect_preset(&labels, &["step-build"]), Preset::Tekton);
/// assert_eq!(detect_preset(&BTreeMap::new(), &["build", "helper"]), Preset::GitlabRunner);
/// assert_eq!(detect_preset(&BTreeMap::new(), &["build"]), Preset::Generic);
/// ```
pub fn detect_preset<S: AsRef<str>>(labels: &BTreeMap<String, String>, containers: &[S]) -> Preset {
    if labels.get("pod").is_some_and(|v| v.starts_with("runner-")) {
        return Preset::GitlabRunner;
    }
    if labels.contains_key("woodpecker-ci.org/step") {
        return Preset::Woodpecker;
    }
    if labels.contains_key("tekton.dev/taskRun") {
        return Preset::Tekton;
    }
    let has = |name: &str| containers.iter().any(|c| c.as_ref() == name);
    if has("helper") && has("build") {
        return Preset::GitlabRunner;
    }
    Preset::Generic
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    #[rstest]
    #[case("*", "", true)]
    #[case("*-helper", "git-helper", true)]
    #[case("*-helper", "helper", false)]
    #[case("step-*", "step-build", true)]
    #[case("step-?", "step-a", true)]
    #[case("step-?", "step-ab", false)]
    #[case("a*b*c", "aXXbYYc", true)]
    #[case("a*b*c", "aXXbYY", false)]
    #[case("build", "build", true)]
    #[case("build", "builds", false)]
    fn globs(#[case] pattern: &str, #[case] name: &str, #[case] expected: bool) {
        assert_eq!(glob_match(pattern, name), expected);
    }

    #[rstest]
    #[case::gl_build(Preset::GitlabRunner, &[], "build", C, Role::Build)]
    #[case::gl_helper(Preset::GitlabRunner, &[], "helper", C, Role::Helper)]
    #[case::gl_svc(Preset::GitlabRunner, &[], "svc-0", C, Role::Service)]
    #[case::gl_alias(Preset::GitlabRunner, &[], "docker", C, Role::Service)]
    #[case::gl_init(Preset::GitlabRunner, &[], "init-permissions", I, Role::Init)]
    #[case::gl_uid_gid_collector(Preset::GitlabRunner, &[], "init-build-uid-gid-collector", I, Role::Build)]
    #[case::gl_steps_bootstrap(Preset::GitlabRunner, &[], "init-steps-bootstrap", I, Role::Init)]
    #[case::gl_sidecar(Preset::GitlabRunner, &[], "proxy", S, Role::Service)]
    #[case::wp_step(Preset::Woodpecker, &[], "wp-01-0", C, Role::Build)]
    #[case::wp_service(Preset::Woodpecker, &[("service", "db")], "wp-01-0", C, Role::Service)]
    #[case::wp_init(Preset::Woodpecker, &[], "init", I, Role::Init)]
    #[case::tk_step(Preset::Tekton, &[], "step-build", C, Role::Build)]
    #[case::tk_log(Preset::Tekton, &[], "sidecar-tekton-log-results", C, Role::Helper)]
    #[case::tk_sidecar(Preset::Tekton, &[], "sidecar-db", C, Role::Service)]
    #[case::tk_prepare(Preset::Tekton, &[], "prepare", I, Role::Helper)]
    #[case::tk_native(Preset::Tekton, &[], "sidecar-x", S, Role::Service)]
    #[case::gen_container(Preset::Generic, &[], "anything", C, Role::Build)]
    #[case::gen_init(Preset::Generic, &[], "anything", I, Role::Init)]
    fn presets(
        #[case] preset: Preset,
        #[case] labels: &[(&str, &str)],
        #[case] name: &str,
        #[case] kind: ContainerKind,
        #[case] expected: Role,
    ) {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(role_of(&[], preset, &labels, name, kind), expected);
    }

    #[test]
    fn matchers_come_first_and_respect_selectors() {
        let sel: LabelSelector = serde_json::from_value(
            serde_json::json!({"matchExpressions":[{"key":"team","operator":"In","values":["a"]}]}),
        )
        .unwrap();
        let m = vec![RoleMatcher {
            role: Role::Helper,
            container_names: vec!["*-helper".into()],
            pod_selector: Some(sel),
        }];
        let team_a = [("team".to_string(), "a".to_string())].into_iter().collect();
        let team_b = [("team".to_string(), "b".to_string())].into_iter().collect();
        assert_eq!(
            role_of(&m, Preset::Generic, &team_a, "git-helper", C),
            Role::Helper
        );
        assert_eq!(
            role_of(&m, Preset::Generic, &team_b, "git-helper", C),
            Role::Build
        );
    }
    #[rstest]
    #[case::gitlab_label(&[("pod", "runner-x8k-project-42-concurrent-0")], &["build"], Preset::GitlabRunner)]
    #[case::gitlab_label_not_runner(&[("pod", "web-0")], &["app"], Preset::Generic)]
    #[case::gitlab_containers(&[], &["build", "helper", "svc-0"], Preset::GitlabRunner)]
    #[case::helper_alone(&[], &["helper"], Preset::Generic)]
    #[case::build_alone(&[], &["build"], Preset::Generic)]
    #[case::woodpecker(&[("woodpecker-ci.org/step", "test")], &["wp-01-0"], Preset::Woodpecker)]
    #[case::woodpecker_clone(&[("woodpecker-ci.org/step", "clone")], &["wp-01-0"], Preset::Woodpecker)]
    #[case::tekton(&[("tekton.dev/taskRun", "build-run")], &["step-build"], Preset::Tekton)]
    #[case::tekton_task_only(&[("tekton.dev/task", "build")], &["step-build"], Preset::Generic)]
    #[case::label_beats_containers(&[("tekton.dev/taskRun", "r")], &["build", "helper"], Preset::Tekton)]
    #[case::arc_runner(&[("app.kubernetes.io/part-of", "gha-runner-scale-set")], &["runner"], Preset::Generic)]
    #[case::arc_hook(&[("runner-pod", "arc-runner-set-runner-m4t7w")], &["job"], Preset::Generic)]
    #[case::nothing(&[], &[], Preset::Generic)]
    fn detects_presets(
        #[case] labels: &[(&str, &str)],
        #[case] containers: &[&str],
        #[case] expected: Preset,
    ) {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(detect_preset(&labels, containers), expected);
    }
}
