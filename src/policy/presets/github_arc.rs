//! `github-arc`: GitHub Actions Runner Controller runner scale sets, and the job and step
//! pods its Kubernetes-mode container hooks create. See docs/ci-systems/github-arc.md.
//!
//! A runner pod holds `runner` (and in dind mode `init-dind-externals` and `dind`); a hook
//! pod holds `job`, the workflow's services and `fs-init`. The two never share a pod, so
//! `runner` is build (it runs the steps) in every pod ARC builds; the helper row applies
//! only to a pod that someone gave both.

use super::{Definition, Label, PodCond, Preset, Role, container, container_in, init};

const PART_OF: Label = Label::Equals("app.kubernetes.io/part-of", "gha-runner-scale-set");

/// The `github-arc` table.
pub const DEFINITION: Definition = Definition {
    preset: Preset::GithubArc,
    recognise: &[
        // Runner pods, not the scale set's listener pod (component
        // `runner-scale-set-listener`, container `listener`), which carries part-of too.
        PodCond::labels(&[PART_OF, Label::Equals("app.kubernetes.io/component", "runner")]),
        PodCond {
            labels: &[PART_OF],
            with: &["runner"],
            without: &[],
        },
        // Hook pods: `runner-pod: <runner pod name>` is the only label the hooks set.
        PodCond::labels(&[Label::Exists("runner-pod")]),
    ],
    rules: &[
        container(&["job"], Role::Build),
        container_in(
            &["runner"],
            PodCond {
                labels: &[],
                with: &["job"],
                without: &[],
            },
            Role::Helper,
        ),
        container(&["runner"], Role::Build),
        container(&["dind"], Role::Service),
        init(&["init-dind-externals", "fs-init"], Role::Init),
    ],
    remainder: Role::Service,
    remainder_probe: "postgres",
    init_remainder: Role::Init,
    init_probe: "init-tools",
    source: "actions/actions-runner-controller controllers/actions.github.com/resourcebuilder.go newEphemeralRunnerPod; actions/runner-container-hooks packages/k8s/src/k8s/index.ts createJobPod, createContainerStepPod",
};
