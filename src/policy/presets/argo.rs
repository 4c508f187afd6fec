//! `argo`: Argo Workflows pods. See docs/ci-systems/argo.md.
//!
//! A workflow pod holds `main` (the template's container), the executor (`wait`, or
//! `supervisor` in the init-less layout), artifact plugins (`artifact-plugin-*`) and the
//! template's own sidecars; init containers `init` and `init-artifact-*`. Agent and
//! artifact-GC pods (label `workflows.argoproj.io/component`) run the executor as `main`.

use super::{Definition, Label, PodCond, Preset, Role, container, container_in, init};

/// The `argo` table.
pub const DEFINITION: Definition = Definition {
    preset: Preset::Argo,
    recognise: &[PodCond::labels(&[Label::Exists(
        "workflows.argoproj.io/workflow",
    )])],
    rules: &[
        container_in(
            &["main"],
            PodCond::labels(&[Label::Exists("workflows.argoproj.io/component")]),
            Role::Helper,
        ),
        container(&["main"], Role::Build),
        container(&["wait", "supervisor", "artifact-plugin-*"], Role::Helper),
        init(&["init", "init-artifact-*"], Role::Init),
    ],
    remainder: Role::Service,
    remainder_probe: "cache",
    init_remainder: Role::Init,
    init_probe: "init-tools",
    source: "argoproj/argo-workflows workflow/controller/workflowpod.go podBuilder.build, agent.go createAgentPod, artifact_gc.go createArtifactGCPod",
};
