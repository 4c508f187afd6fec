//! Snapshots of rendered examples and of `--explain`, per example pod and policy.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

mod common;

use rstest::rstest;

#[rstest]
#[case::gitlab_builtin("examples/gitlab-runner/build-pod.yaml", None)]
#[case::gitlab_policy(
    "examples/gitlab-runner/build-pod.yaml",
    Some("examples/policies/gitlab-runner.yaml")
)]
#[case::woodpecker_builtin("examples/woodpecker/step-pod.yaml", None)]
#[case::woodpecker_policy(
    "examples/woodpecker/step-pod.yaml",
    Some("examples/policies/woodpecker.yaml")
)]
#[case::tekton_builtin("examples/tekton/taskrun-pod.yaml", None)]
#[case::tekton_policy("examples/tekton/taskrun-pod.yaml", Some("examples/policies/tekton.yaml"))]
fn rendered_examples(#[case] pod: &str, #[case] policy: Option<&str>) {
    let policy = match policy {
        Some(p) => ciguard::policy::load::from_file(&format!("{}/{p}", env!("CARGO_MANIFEST_DIR"))).unwrap(),
        None => ciguard::ValidPolicy::builtin(),
    };
    let r = common::render(&policy, &common::example(pod));
    assert!(r.denial.is_none(), "{:?}", r.denial.map(|d| d.message()));
    let name = format!(
        "{}__{}",
        pod.rsplit('/').next().unwrap().trim_end_matches(".yaml"),
        policy.name()
    );
    let warnings: String = r
        .warnings
        .iter()
        .map(|w| format!("warning[{}]: {}\n", w.code.as_str(), w.message()))
        .collect();
    insta::assert_snapshot!(
        format!("{name}.yaml"),
        ciguard::source::to_yaml(&r.object).unwrap()
    );
    insta::assert_snapshot!(format!("{name}.explain"), format!("{warnings}{}", r.explain()));
}

#[test]
fn warning_codes() {
    let codes: String = ciguard::merge::WarningCode::ALL
        .iter()
        .map(|c| format!("{}: {}\n", c.as_str(), c.description()))
        .collect();
    insta::assert_snapshot!(codes);
}
