//! Container roles and the presets that map CI systems' container names to them.
//!
//! A preset is a table (one per CI system, in [`crate::policy::presets`]); the policy's own
//! `roles` matchers are tried before it. Every table ends in remainder roles, so every
//! container has a role. In every preset an init container with `restartPolicy: Always` (a
//! native sidecar) is a service unless the table names it.

use std::{collections::BTreeMap, fmt};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::presets::{self, Choice, PodFacts};

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

/// The CI system whose container naming the policy follows. Each but `auto` is a table in
/// [`crate::policy::presets`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Regular containers are build, init containers are init.
    #[default]
    Generic,
    /// GitLab Runner's Kubernetes executor: `build`, `helper`, services, `init-permissions`.
    GitlabRunner,
    /// Woodpecker's Kubernetes backend: one step container per pod; service pods; the clone step.
    Woodpecker,
    /// Tekton Pipelines: `step-*`, `sidecar-*`, its own init containers.
    Tekton,
    /// GitHub Actions Runner Controller: `runner`, `dind`; the hooks' `job` pods and services.
    GithubArc,
    /// Argo Workflows: `main`, `wait`/`supervisor`, artifact plugins, user sidecars.
    Argo,
    /// The Jenkins Kubernetes plugin: `jnlp` and the pod template's containers.
    Jenkins,
    /// Buildkite agent-stack-k8s: `agent`, `checkout`, `container-N`, native sidecars.
    Buildkite,
    /// Per pod, the preset whose labels (or containers) the pod carries, else `generic`.
    Auto,
}

impl Preset {
    /// Every preset, in policy-file order.
    pub const ALL: [Preset; 9] = [
        Preset::Generic,
        Preset::GitlabRunner,
        Preset::Woodpecker,
        Preset::Tekton,
        Preset::GithubArc,
        Preset::Argo,
        Preset::Jenkins,
        Preset::Buildkite,
        Preset::Auto,
    ];

    /// The preset's name in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            Preset::Generic => "generic",
            Preset::GitlabRunner => "gitlab-runner",
            Preset::Woodpecker => "woodpecker",
            Preset::Tekton => "tekton",
            Preset::GithubArc => "github-arc",
            Preset::Argo => "argo",
            Preset::Jenkins => "jenkins",
            Preset::Buildkite => "buildkite",
            Preset::Auto => "auto",
        }
    }

    /// The preset that applies to a pod, and why: the preset itself, or for `auto` the one
    /// the pod is recognised as ([`presets::detect`]).
    pub fn choose(self, pod: &PodFacts<'_>) -> Choice {
        match self {
            Preset::Auto => presets::detect(pod),
            preset => Choice {
                preset,
                reason: "the policy's preset".into(),
            },
        }
    }

    /// The preset of [`Preset::choose`], without the reason.
    pub fn resolve(self, pod: &PodFacts<'_>) -> Preset {
        match self {
            Preset::Auto => presets::detected(pod),
            preset => preset,
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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
///
/// Greedy with one backtrack point (the last `*`), over the characters of both strings
/// in place: a render matches every container's name against the role globs, so nothing
/// is allocated.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let char_len = |s: &str, at: usize| s[at..].chars().next().map_or(1, char::len_utf8);
    // Byte offsets into `pattern` and `name`; after a `*`: where in the pattern to resume
    // and where in the name the run it matches ends.
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while let Some(nc) = name[ni..].chars().next() {
        match pattern[pi..].chars().next() {
            Some('*') => {
                star = Some(pi + 1);
                mark = ni;
                pi += 1;
            }
            Some(pc) if pc == '?' || pc == nc => {
                pi += pc.len_utf8();
                ni += nc.len_utf8();
            }
            _ => match star {
                Some(resume) => {
                    pi = resume;
                    mark += char_len(name, mark);
                    ni = mark;
                }
                None => return false,
            },
        }
    }
    pattern[pi..].chars().all(|c| c == '*')
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

/// Finds the role of a container: the policy's matchers first, then the preset's table
/// (for `auto`, the table of the preset the pod is recognised as).
pub fn role_of(
    matchers: &[RoleMatcher],
    preset: Preset,
    pod: &PodFacts<'_>,
    name: &str,
    kind: ContainerKind,
) -> Role {
    for m in matchers {
        let name_ok = m.container_names.iter().any(|g| glob_match(g, name));
        if name_ok
            && m.pod_selector
                .as_ref()
                .is_none_or(|s| selector_matches(s, pod.labels))
        {
            return m.role;
        }
    }
    match presets::definition(preset.resolve(pod)) {
        Some(def) => presets::role_in(def, pod, name, kind),
        // Only `auto` has no table, and `resolve` never returns it; the generic answer all the same.
        None => match kind {
            ContainerKind::Container => Role::Build,
            ContainerKind::Init => Role::Init,
            ContainerKind::Sidecar => Role::Service,
        },
    }
}

/// The preset whose pods look like this pod, by SPEC §5's "pod carries" column (the
/// `recognise` conditions of each table in [`crate::policy::presets`]): labels before
/// container names, which are weaker evidence; else [`Preset::Generic`]. `containers` are
/// the names of the pod's regular containers.
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
    let pod = PodFacts {
        labels,
        containers: containers.iter().map(AsRef::as_ref).collect(),
    };
    presets::detected(&pod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ContainerKind::{Container as C, Init as I, Sidecar as S};
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
    #[case("*", "bäu", true)]
    #[case("b?u", "bäu", true)]
    #[case("b?", "bäu", false)]
    #[case("*ü*", "grün-helper", true)]
    #[case("ä*", "a", false)]
    #[case("**a", "ba", true)]
    #[case("a*", "*", false)]
    #[case("*", "*", true)]
    fn globs(#[case] pattern: &str, #[case] name: &str, #[case] expected: bool) {
        assert_eq!(glob_match(pattern, name), expected);
    }

    /// What a glob means, by recursion on the pattern: the oracle for `glob_match`.
    fn glob_by_definition(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| glob_by_definition(rest, &n[i..])),
            Some((c, rest)) => n
                .split_first()
                .is_some_and(|(d, n)| (*c == '?' || c == d) && glob_by_definition(rest, n)),
        }
    }

    proptest::proptest! {
        /// Names and patterns over a small alphabet (with a two-byte character, and `*`
        /// and `?` in names too), so that runs, backtracking and repeats are common.
        #[test]
        fn globs_mean_their_definition(pattern in "[ab*?ä]{0,7}", name in "[ab*?ä]{0,7}") {
            let chars = |s: &str| s.chars().collect::<Vec<_>>();
            proptest::prop_assert_eq!(
                glob_match(&pattern, &name),
                glob_by_definition(&chars(&pattern), &chars(&name))
            );
        }
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
    #[case::gen_native(Preset::Generic, &[], "anything", S, Role::Service)]
    #[case::wp_clone(Preset::Woodpecker, &[("woodpecker-ci.org/step", "clone")], "wp-01-0", C, Role::Helper)]
    #[case::wp_not_clone(Preset::Woodpecker, &[("woodpecker-ci.org/step", "cloned")], "wp-01-0", C, Role::Build)]
    #[case::tk_native_log(Preset::Tekton, &[], "sidecar-tekton-log-results", S, Role::Helper)]
    #[case::tk_working_dir(Preset::Tekton, &[], "working-dir-initializer", I, Role::Helper)]
    #[case::arc_runner(Preset::GithubArc, &[], "runner", C, Role::Build)]
    #[case::arc_dind_native(Preset::GithubArc, &[], "dind", S, Role::Service)]
    #[case::arc_user_init(Preset::GithubArc, &[], "my-init", I, Role::Init)]
    #[case::argo_main(Preset::Argo, &[], "main", C, Role::Build)]
    #[case::argo_agent_main(Preset::Argo, &[("workflows.argoproj.io/component", "agent")], "main", C, Role::Helper)]
    #[case::argo_user_init(Preset::Argo, &[], "fetch-data", I, Role::Init)]
    #[case::jenkins_user_native(Preset::Jenkins, &[], "db", S, Role::Service)]
    #[case::jenkins_user_init(Preset::Jenkins, &[], "prepare", I, Role::Init)]
    #[case::bk_named_command(Preset::Buildkite, &[], "golang", C, Role::Build)]
    #[case::auto_tekton(Preset::Auto, &[("tekton.dev/taskRun", "r")], "prepare", I, Role::Helper)]
    #[case::auto_generic(Preset::Auto, &[], "prepare", I, Role::Init)]
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
        let pod = PodFacts {
            labels: &labels,
            containers: vec![name],
        };
        assert_eq!(role_of(&[], preset, &pod, name, kind), expected);
    }

    #[test]
    fn matchers_come_first_and_respect_selectors() {
        let sel: LabelSelector = crate::value::from_value(
            crate::json!({"matchExpressions":[{"key":"team","operator":"In","values":["a"]}]}),
        )
        .unwrap();
        let m = vec![RoleMatcher {
            role: Role::Helper,
            container_names: vec!["*-helper".into()],
            pod_selector: Some(sel),
        }];
        let team_a = [("team".to_string(), "a".to_string())].into_iter().collect();
        let team_b = [("team".to_string(), "b".to_string())].into_iter().collect();
        let pod = |labels| PodFacts {
            labels,
            containers: vec!["git-helper"],
        };
        assert_eq!(
            role_of(&m, Preset::Generic, &pod(&team_a), "git-helper", C),
            Role::Helper
        );
        assert_eq!(
            role_of(&m, Preset::Generic, &pod(&team_b), "git-helper", C),
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
    #[case::arc_runner(&[("app.kubernetes.io/part-of", "gha-runner-scale-set")], &["runner"], Preset::GithubArc)]
    #[case::arc_runner_component(&[("app.kubernetes.io/part-of", "gha-runner-scale-set"), ("app.kubernetes.io/component", "runner")], &["x"], Preset::GithubArc)]
    #[case::arc_listener(&[("app.kubernetes.io/part-of", "gha-runner-scale-set"), ("app.kubernetes.io/component", "runner-scale-set-listener")], &["listener"], Preset::Generic)]
    #[case::arc_hook(&[("runner-pod", "arc-runner-set-runner-m4t7w")], &["job"], Preset::GithubArc)]
    #[case::argo(&[("workflows.argoproj.io/workflow", "etl")], &["main", "wait"], Preset::Argo)]
    #[case::jenkins_label(&[("jenkins/label", "my-app_12")], &["jnlp"], Preset::Jenkins)]
    #[case::jenkins_controller(&[("kubernetes.jenkins.io/controller", "http___jenkins")], &["jnlp"], Preset::Jenkins)]
    #[case::buildkite(&[("buildkite.com/job-uuid", "0190")], &["agent"], Preset::Buildkite)]
    #[case::jenkins_label_beats_gitlab_containers(&[("jenkins/label", "x")], &["build", "helper"], Preset::Jenkins)]
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
