//! `tekton`: Tekton Pipelines TaskRun pods.
//!
//! `step-*` run the Task's steps; `sidecar-*` its sidecars, among them Tekton's own
//! `sidecar-tekton-log-results`; the init containers (`prepare`, `place-scripts`,
//! `working-dir-initializer`) are Tekton's. With native sidecars enabled, sidecars are init
//! containers with `restartPolicy: Always` and keep their names.

use super::{Definition, Label, PodCond, Preset, Role, container};

/// The `tekton` table.
pub const DEFINITION: Definition = Definition {
    preset: Preset::Tekton,
    recognise: &[PodCond::labels(&[Label::Exists("tekton.dev/taskRun")])],
    rules: &[
        container(&["step-*"], Role::Build),
        // Named, so it stays a helper as a native sidecar too.
        container(&["sidecar-tekton-log-results"], Role::Helper),
        container(&["sidecar-*"], Role::Service),
    ],
    remainder: Role::Build,
    remainder_probe: "build",
    init_remainder: Role::Helper,
    init_probe: "prepare",
    source: "tektoncd/pipeline pkg/pod/pod.go Builder.Build",
};
