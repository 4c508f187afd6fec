//! `woodpecker`: Woodpecker's Kubernetes backend.
//!
//! One pod per step, with one container; services get pods of their own, labelled
//! `service`. The clone step (label `woodpecker-ci.org/step: clone`) is the runner's own
//! plugin: a helper.

use super::{ANY, Definition, Label, PodCond, Preset, Role, container_in};

/// The `woodpecker` table.
pub const DEFINITION: Definition = Definition {
    preset: Preset::Woodpecker,
    recognise: &[PodCond::labels(&[Label::Exists("woodpecker-ci.org/step")])],
    rules: &[
        container_in(ANY, PodCond::labels(&[Label::Exists("service")]), Role::Service),
        container_in(
            ANY,
            PodCond::labels(&[Label::Equals("woodpecker-ci.org/step", "clone")]),
            Role::Helper,
        ),
    ],
    remainder: Role::Build,
    remainder_probe: "step",
    init_remainder: Role::Init,
    init_probe: "init",
    source: "woodpecker-ci/woodpecker pipeline/backend/kubernetes/pod.go",
};
