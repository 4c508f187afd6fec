//! Benchmarks of the merge engine: one CI pod through a policy, as the webhook does it.
//!
//! `cargo bench --bench render` prints the time per pod; compare with the numbers in
//! docs/performance.md. The benchmark runs with the allocator the `ciguard` binary ships
//! with (mimalloc, feature `mimalloc`, on by default), so it measures what the product
//! runs; `--no-default-features --features cli,server,latest` measures the system
//! allocator instead.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

// The binary's allocator (src/main.rs): parsing and rendering allocate many small values.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn pod(path: &str) -> ciguard::value::Value {
    let text =
        std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).expect("example pod");
    ciguard::source::documents(&text, path)
        .expect("valid YAML")
        .remove(0)
}

fn bench(c: &mut Criterion) {
    let builtin = ciguard::ValidPolicy::builtin();
    let gitlab = ciguard::policy::load::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/policies/gitlab-runner.yaml"
    ))
    .expect("example policy");
    let gitlab_pod = pod("examples/gitlab-runner/build-pod.yaml");
    let woodpecker_pod = pod("examples/woodpecker/step-pod.yaml");
    // A docker-in-docker pod that fails Pod Security: the denial and its message.
    let denied_pod = pod("tests/data/check/pod-denied.yaml");
    assert!(
        ciguard::merge::render(&builtin, &denied_pod)
            .expect("render")
            .denial
            .is_some(),
        "the dind pod is denied"
    );
    let json = serde_json::to_vec(&gitlab_pod).expect("json");

    // The anchor for render ("parse alone"): reading the same pod from its JSON,
    // the webhook's input, and dropping it. Render and parse in one run give a ratio that
    // does not move with the machine's minute.
    c.bench_function("parse/gitlab-pod/json", |b| {
        b.iter(|| {
            let v: ciguard::value::Value = serde_json::from_slice(black_box(&json)).expect("json");
            drop(v)
        })
    });
    c.bench_function("render/gitlab-pod/builtin", |b| {
        b.iter(|| ciguard::merge::render(black_box(&builtin), black_box(&gitlab_pod)))
    });
    // What `ciguard render` and the webhook call: the object is theirs, so it is rendered
    // in place. The copy each iteration hands over is made outside the timing; dropping
    // the result is inside it.
    c.bench_function("render_owned/gitlab-pod/builtin", |b| {
        b.iter_batched(
            || gitlab_pod.clone(),
            |pod| drop(ciguard::merge::render_owned(black_box(&builtin), black_box(pod))),
            criterion::BatchSize::SmallInput,
        )
    });
    // As `ciguard render` calls it: owned, and neither the webhook's patch nor the
    // provenance `--explain` prints is kept.
    let cli = ciguard::merge::Options::without_records(ciguard::merge::PodSecurity::Evaluate);
    c.bench_function("render_cli/gitlab-pod/builtin", |b| {
        b.iter_batched(
            || gitlab_pod.clone(),
            |pod| {
                drop(ciguard::merge::render_owned_with(
                    black_box(&builtin),
                    black_box(pod),
                    cli,
                ))
            },
            criterion::BatchSize::SmallInput,
        )
    });
    c.bench_function("render/gitlab-pod/gitlab-policy", |b| {
        b.iter(|| ciguard::merge::render(black_box(&gitlab), black_box(&gitlab_pod)))
    });
    c.bench_function("render/woodpecker-pod/builtin", |b| {
        b.iter(|| ciguard::merge::render(black_box(&builtin), black_box(&woodpecker_pod)))
    });
    c.bench_function("render/dind-pod/builtin-denied", |b| {
        b.iter(|| ciguard::merge::render(black_box(&builtin), black_box(&denied_pod)))
    });
    c.bench_function("render/gitlab-pod/json-in-patch-out", |b| {
        b.iter(|| {
            let v: ciguard::value::Value = serde_json::from_slice(black_box(&json)).expect("json");
            // As the webhook does it: the parsed object is rendered in place.
            let r = ciguard::merge::render_owned(&gitlab, v).expect("render");
            serde_json::to_vec(&r.patch).expect("patch")
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
