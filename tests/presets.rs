//! Every container of every example pod gets its expected role, under its system's preset
//! and under `preset: auto`; `auto` recognises each pod's system.
//!
//! The expectations are in tests/data/presets/<preset>-roles.yaml: per example pod under
//! examples/<preset>/, the upstream source (repository@commit, file, function) it was
//! built from and the role of each of its containers, read from SPEC §2 and §5.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

mod common;

use std::collections::BTreeMap;

use ciguard::value::Value;
use ciguard::{
    ValidPolicy,
    policy::{ContainerKind, PodFacts, Preset, Role},
    workload,
};
use rstest::rstest;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    file: String,
    source: String,
    containers: BTreeMap<String, Role>,
}

fn policy(preset: &str) -> ValidPolicy {
    common::policy(&format!("  preset: {preset}\n"))
}

/// (name, role) of every container of the pod, init containers first, as the engine sees them.
fn roles(policy: &ValidPolicy, pod: &Value) -> Vec<(String, Role)> {
    let kind = workload::WorkloadKind::of(pod).unwrap();
    let labels = workload::pod_labels(pod, kind);
    let spec = workload::at(pod, kind.spec_path());
    let facts = PodFacts::new(&labels, spec);
    let mut out = Vec::new();
    for list in ["initContainers", "containers"] {
        for c in spec.and_then(|s| s[list].as_array()).into_iter().flatten() {
            let name = c["name"].as_str().unwrap();
            let kind = match (list, c["restartPolicy"].as_str()) {
                ("containers", _) => ContainerKind::Container,
                (_, Some("Always")) => ContainerKind::Sidecar,
                _ => ContainerKind::Init,
            };
            out.push((name.to_string(), policy.role_of(&facts, name, kind)));
        }
    }
    out
}

#[rstest]
#[case::gitlab_runner("gitlab-runner", Preset::GitlabRunner)]
#[case::woodpecker("woodpecker", Preset::Woodpecker)]
#[case::tekton("tekton", Preset::Tekton)]
#[case::github_arc("github-arc", Preset::GithubArc)]
#[case::argo("argo", Preset::Argo)]
#[case::jenkins("jenkins", Preset::Jenkins)]
#[case::buildkite("buildkite", Preset::Buildkite)]
fn every_container_of_every_example_in_its_role(#[case] system: &str, #[case] preset: Preset) {
    let data = common::example(&format!("tests/data/presets/{system}-roles.yaml"));
    let cases: Vec<Expected> = ciguard::value::from_value(data).unwrap();
    let on_disk: Vec<String> = std::fs::read_dir(format!("{}/examples/{system}", env!("CARGO_MANIFEST_DIR")))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for f in &on_disk {
        assert!(
            cases.iter().any(|c| &c.file == f),
            "examples/{system}/{f} has no expected roles in tests/data/presets/{system}-roles.yaml"
        );
    }
    let (fixed, auto) = (policy(system), policy("auto"));
    for case in cases {
        let at = format!("examples/{system}/{} (from {})", case.file, case.source);
        let pod = common::example(&format!("examples/{system}/{}", case.file));
        for (under, p) in [(system, &fixed), ("auto", &auto)] {
            let got = roles(p, &pod);
            let names: Vec<&String> = got.iter().map(|(n, _)| n).collect();
            let expected: Vec<&String> = case.containers.keys().collect();
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(sorted, expected, "{at}: containers listed");
            for (name, role) in &got {
                assert_eq!(
                    role, &case.containers[name],
                    "{at}: container \"{name}\" under preset {under}"
                );
            }
        }
        let kind = workload::WorkloadKind::of(&pod).unwrap();
        let labels = workload::pod_labels(&pod, kind);
        let facts = PodFacts::new(&labels, workload::at(&pod, kind.spec_path()));
        assert_eq!(auto.preset_for(&facts).preset, preset, "{at}: auto");
    }
}

/// What `preset: auto` says about each kind of pod (`render --explain` prints it).
#[rstest]
#[case::gitlab(
    "examples/gitlab-runner/build-pod.yaml",
    "gitlab-runner",
    "label pod=runner-x8ktyhzz-project-42-concurrent-0"
)]
#[case::woodpecker(
    "examples/woodpecker/clone-pod.yaml",
    "woodpecker",
    "label woodpecker-ci.org/step=clone"
)]
#[case::tekton(
    "examples/tekton/taskrun-pod.yaml",
    "tekton",
    "label tekton.dev/taskRun=build-run"
)]
#[case::arc_runner(
    "examples/github-arc/runner-pod-dind.yaml",
    "github-arc",
    "label app.kubernetes.io/part-of=gha-runner-scale-set and label app.kubernetes.io/component=runner"
)]
#[case::arc_hook(
    "examples/github-arc/hook-job-pod.yaml",
    "github-arc",
    "label runner-pod=arc-runner-set-runner-m4t7w"
)]
#[case::argo(
    "examples/argo/artifact-gc-pod.yaml",
    "argo",
    "label workflows.argoproj.io/workflow=etl-7x2kq"
)]
#[case::jenkins(
    "examples/jenkins/agent-pod-jnlp.yaml",
    "jenkins",
    "label jenkins/label=my-app_12-x7k2p"
)]
#[case::buildkite(
    "examples/buildkite/job-pod.yaml",
    "buildkite",
    "label buildkite.com/job-uuid=0190d4a5-6b7c-4d8e-9f01-23456789abcd"
)]
#[case::plain(
    "tests/data/render/root-job.yaml",
    "generic",
    "no CI system's labels or containers"
)]
fn auto_says_why(#[case] file: &str, #[case] preset: &str, #[case] reason: &str) {
    let pod = common::example(file);
    let kind = workload::WorkloadKind::of(&pod).unwrap();
    let labels = workload::pod_labels(&pod, kind);
    let facts = PodFacts::new(&labels, workload::at(&pod, kind.spec_path()));
    let choice = policy("auto").preset_for(&facts);
    assert_eq!((choice.preset.as_str(), choice.reason.as_str()), (preset, reason));
}

/// `lint` renders a probe pod per role the preset's table can give, from the table itself:
/// a policy that fixes nothing gets one `pss-probe` finding per role, naming it.
#[rstest]
#[case::generic(Preset::Generic)]
#[case::gitlab_runner(Preset::GitlabRunner)]
#[case::woodpecker(Preset::Woodpecker)]
#[case::tekton(Preset::Tekton)]
#[case::github_arc(Preset::GithubArc)]
#[case::argo(Preset::Argo)]
#[case::jenkins(Preset::Jenkins)]
#[case::buildkite(Preset::Buildkite)]
fn lint_probes_every_role_of_the_table(#[case] preset: Preset) {
    let def = ciguard::policy::presets::definition(preset).unwrap();
    let mut roles: Vec<Role> = def.rules.iter().map(|r| r.role).collect();
    roles.extend([def.remainder, def.init_remainder, Role::Service]);
    roles.sort();
    roles.dedup();
    let text = format!(
        "apiVersion: ciguard.io/v1alpha1\nkind: SecurityPolicy\nspec:\n  preset: {preset}\n  pss: {{level: restricted, version: latest}}\n"
    );
    let findings = ciguard::lint::lint(&text, "p.yaml").unwrap();
    let mut probed: Vec<Role> = findings
        .iter()
        .filter(|f| f.code == ciguard::lint::Code::PssProbe)
        .map(|f| {
            let role = f
                .message
                .strip_prefix("a plain ")
                .unwrap()
                .split(' ')
                .next()
                .unwrap();
            ciguard::value::from_value(ciguard::json!(role)).unwrap()
        })
        .collect();
    probed.sort();
    assert_eq!(probed, roles, "{preset}: {findings:#?}");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    const KEYS: &[(&str, &str)] = &[
        ("pod", "runner-abc"),
        ("woodpecker-ci.org/step", "clone"),
        ("service", "db"),
        ("tekton.dev/taskRun", "r"),
        ("app.kubernetes.io/part-of", "gha-runner-scale-set"),
        ("app.kubernetes.io/component", "runner"),
        ("runner-pod", "r"),
        ("workflows.argoproj.io/workflow", "w"),
        ("workflows.argoproj.io/component", "agent"),
        ("jenkins/label", "j"),
        ("buildkite.com/job-uuid", "u"),
    ];
    const NAMES: &[&str] = &[
        "build",
        "helper",
        "svc-0",
        "step-a",
        "sidecar-tekton-log-results",
        "sidecar-x",
        "runner",
        "job",
        "dind",
        "main",
        "wait",
        "artifact-plugin-s3",
        "jnlp",
        "agent",
        "checkout",
        "container-0",
        "init",
        "fs-init",
        "copy-agent",
        "other",
    ];

    /// One loaded policy per preset, in [`Preset::ALL`] order.
    static POLICIES: std::sync::LazyLock<Vec<ValidPolicy>> =
        std::sync::LazyLock::new(|| Preset::ALL.iter().map(|p| policy(p.as_str())).collect());

    fn of(preset: Preset) -> &'static ValidPolicy {
        &POLICIES[Preset::ALL.iter().position(|p| *p == preset).unwrap()]
    }

    proptest! {
        /// Under `auto`, every container gets the role the detected preset's table gives
        /// it; a native sidecar that no table names is a service in every preset.
        #[test]
        fn auto_is_the_detected_presets_table(
            labels in proptest::sample::subsequence(KEYS, 0..5),
            containers in proptest::sample::subsequence(NAMES, 0..6),
            name in proptest::sample::select(NAMES),
            kind in proptest::sample::select(&[ContainerKind::Container, ContainerKind::Init, ContainerKind::Sidecar][..]),
        ) {
            let labels: BTreeMap<String, String> =
                labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let facts = PodFacts { labels: &labels, containers: containers.clone() };
            let detected = of(Preset::Auto).preset_for(&facts).preset;
            prop_assert_ne!(detected, Preset::Auto);
            prop_assert_eq!(
                of(Preset::Auto).role_of(&facts, name, kind),
                of(detected).role_of(&facts, name, kind)
            );
            let unnamed = "native-sidecar";
            for preset in Preset::ALL {
                prop_assert_eq!(
                    of(preset).role_of(&facts, unnamed, ContainerKind::Sidecar),
                    Role::Service
                );
            }
        }
    }
}
