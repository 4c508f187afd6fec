//! Pod Security Standards evaluation of a typical CI pod (a GitLab Runner job pod with
//! build, helper and service containers, an init container and emptyDir volumes) at
//! restricted/latest, passing and failing. Prints ns per pod after criterion's report.

#![allow(clippy::disallowed_macros)] // a benchmark reports on stdout
#![allow(clippy::expect_used)] // fixed inputs; a benchmark may stop on bad ones

use std::{hint::black_box, time::Instant};

use ciguard::{
    pss::{Evaluation, LevelVersion, evaluate},
    workload::{TypedPod, parse_text, typed_pod},
};
use criterion::Criterion;

const CI_POD: &str = include_str!("../tests/data/check/gitlab-ci-pod.yaml");
const DENIED_POD: &str = include_str!("../tests/data/check/pod-denied.yaml");

fn typed(text: &str) -> TypedPod {
    let docs = parse_text(text, "bench").expect("bench pod parses");
    typed_pod(&docs[0].object).expect("a pod").expect("a pod").1
}

fn run(pod: &TypedPod, lv: LevelVersion) -> Evaluation {
    evaluate(black_box(&pod.metadata), black_box(&pod.spec), black_box(lv))
}

fn main() {
    let restricted: LevelVersion = "restricted:latest".parse().expect("valid");
    let baseline: LevelVersion = "baseline:latest".parse().expect("valid");
    let ci = typed(CI_POD);
    let denied = typed(DENIED_POD);
    assert!(run(&ci, restricted).allowed());
    assert!(!run(&denied, restricted).allowed());

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("pss");
    group.bench_function("ci_pod_restricted_latest_allowed", |b| {
        b.iter(|| run(&ci, restricted))
    });
    group.bench_function("ci_pod_baseline_latest_allowed", |b| {
        b.iter(|| run(&ci, baseline))
    });
    group.bench_function("dind_pod_restricted_latest_denied", |b| {
        b.iter(|| run(&denied, restricted))
    });
    group.bench_function("dind_pod_restricted_latest_denied_message", |b| {
        b.iter(|| run(&denied, restricted).message())
    });
    group.finish();
    c.final_summary();

    // Under `cargo bench` only (not the quick run of `cargo test --benches`).
    if std::env::args().any(|a| a == "--bench") {
        for (name, pod) in [("allowed CI pod", &ci), ("denied dind pod", &denied)] {
            let n = 1_000_000u32;
            let start = Instant::now();
            for _ in 0..n {
                black_box(run(pod, restricted));
            }
            let ns = start.elapsed().as_nanos() as f64 / f64::from(n);
            println!("pss restricted:latest, {name}: {ns:.0} ns/pod");
        }
    }
}
