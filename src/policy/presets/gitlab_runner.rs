//! `gitlab-runner`: GitLab Runner's Kubernetes executor.
//!
//! One pod per job: `build` (the job's image and script), `helper` (clone, artifacts,
//! cache), one container per service (`svc-N`, or named after its alias), init containers
//! `init-permissions`, `init-build-uid-gid-collector` and `init-steps-bootstrap`. See
//! examples/gitlab-runner/ and docs/migrate-gitlab-runner.md.

use super::{Definition, Label, PodCond, Preset, Role, container, init};

/// The `gitlab-runner` table.
pub const DEFINITION: Definition = Definition {
    preset: Preset::GitlabRunner,
    recognise: &[
        // executors/kubernetes/kubernetes.go: every pod is labelled `pod: <build name>`,
        // `runner-<short token>-project-<id>-concurrent-<n>`.
        PodCond::labels(&[Label::Prefix("pod", "runner-")]),
        PodCond {
            labels: &[],
            with: &["helper", "build"],
            without: &[],
        },
    ],
    rules: &[
        container(&["build"], Role::Build),
        container(&["helper"], Role::Helper),
        // GitLab builds it from the job's image with the build context and the job's user.
        init(&["init-build-uid-gid-collector"], Role::Build),
    ],
    remainder: Role::Service,
    remainder_probe: "svc-0",
    init_remainder: Role::Init,
    init_probe: "init-permissions",
    source: "gitlab-org/gitlab-runner executors/kubernetes/kubernetes.go",
};
