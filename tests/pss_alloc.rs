//! Evaluating a pod that passes allocates nothing: the registry's tables are built once,
//! and a check builds its detail strings only when it fails; the checks' view of the pod
//! holds up to 4 containers and 8 volumes inline. The global allocator here counts
//! allocations (this test binary only).

use ciguard::{
    pss::{LevelVersion, evaluate},
    workload::{parse_text, typed_pod},
};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

#[test]
fn allowed_pod_evaluates_without_allocating() {
    let text = include_str!("data/check/gitlab-ci-pod.yaml");
    let docs = parse_text(text, "ci").unwrap();
    let (_, pod) = typed_pod(&docs[0].object).unwrap().unwrap();
    let targets: Vec<LevelVersion> = [
        "restricted:latest",
        "restricted:v1.0",
        "restricted:v1.25",
        "baseline:latest",
    ]
    .iter()
    .map(|t| t.parse().unwrap())
    .collect();
    // The first evaluation builds the registry once.
    assert!(evaluate(&pod.metadata, &pod.spec, targets[0]).allowed());

    for lv in targets {
        let region = Region::new(GLOBAL);
        let eval = evaluate(&pod.metadata, &pod.spec, lv);
        let stats = region.change();
        assert!(eval.allowed(), "{}", eval.message());
        assert_eq!(stats.allocations + stats.reallocations, 0, "{lv}: {stats:?}");
    }

    // A denied pod allocates its violations (and only then).
    let denied = parse_text(include_str!("data/check/pod-denied.yaml"), "d").unwrap();
    let (_, pod) = typed_pod(&denied[0].object).unwrap().unwrap();
    let region = Region::new(GLOBAL);
    let eval = evaluate(&pod.metadata, &pod.spec, "restricted:latest".parse().unwrap());
    assert!(!eval.allowed());
    assert!(region.change().allocations > 0);
}
