//! `jenkins`: the Jenkins Kubernetes plugin's agent pods. See docs/ci-systems/jenkins.md.
//!
//! `jnlp` runs the agent; the pod template's other containers run the pipeline's `sh`
//! steps. With agent injection the agent is copied in by `set-up-jenkins-agent` and runs
//! inside a user container.

use super::{Definition, Label, PodCond, Preset, Role, container, init};

/// The `jenkins` table.
pub const DEFINITION: Definition = Definition {
    preset: Preset::Jenkins,
    recognise: &[
        PodCond::labels(&[Label::Exists("jenkins/label")]),
        PodCond::labels(&[Label::Exists("kubernetes.jenkins.io/controller")]),
    ],
    rules: &[
        container(&["jnlp"], Role::Helper),
        init(&["set-up-jenkins-agent"], Role::Init),
    ],
    remainder: Role::Build,
    remainder_probe: "maven",
    init_remainder: Role::Init,
    init_probe: "init-tools",
    source: "jenkinsci/kubernetes-plugin src/main/java/org/csanchez/jenkins/plugins/kubernetes/PodTemplateBuilder.java build",
};
