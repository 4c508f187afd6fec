//! `buildkite`: agent-stack-k8s job pods. See docs/ci-systems/buildkite.md.
//!
//! `agent` runs the Buildkite agent and `checkout` clones the repository; the command
//! containers are `container-N` (or the names the pipeline's podSpec gives them); init
//! containers `copy-agent` and `imagecheck-N`; the pipeline's sidecars are native sidecars.

use super::{Definition, Label, PodCond, Preset, Role, container, init};

/// The `buildkite` table.
pub const DEFINITION: Definition = Definition {
    preset: Preset::Buildkite,
    recognise: &[PodCond::labels(&[Label::Exists("buildkite.com/job-uuid")])],
    rules: &[
        container(&["agent", "checkout"], Role::Helper),
        init(&["copy-agent", "imagecheck-*"], Role::Init),
    ],
    remainder: Role::Build,
    remainder_probe: "container-0",
    init_remainder: Role::Init,
    init_probe: "init-tools",
    source: "buildkite/agent-stack-k8s internal/controller/scheduler/scheduler.go worker.Build",
};
