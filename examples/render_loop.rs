//! Renders one pod with one policy N times in a loop and prints the time per render:
//! the harness for counting a render's instructions with callgrind, which, unlike wall
//! time, does not move with the machine's load (docs/performance.md).
//!
//! ```sh
//! cargo build --release --example render_loop
//! target/release/examples/render_loop 20000                      # GitLab pod, built-in policy
//! target/release/examples/render_loop 20000 examples/woodpecker/step-pod.yaml examples/policies/woodpecker.yaml
//! valgrind --tool=callgrind --callgrind-out-file=cg.out target/release/examples/render_loop 200
//! callgrind_annotate --inclusive=yes cg.out | grep 'merge::render_with '   # ÷ 200: per render
//! # the owned path (`ciguard render`, the webhook): render_owned_with, plus dropping the result
//! valgrind --tool=callgrind --callgrind-out-file=cg.out target/release/examples/render_loop --owned 200
//! callgrind_annotate --inclusive=yes cg.out | grep -E 'merge::render_owned_with |drop_in_place<ciguard::merge::Rendered>'
//! # as `ciguard render` does it: owned, and neither the patch nor the provenance kept
//! valgrind --tool=callgrind --callgrind-out-file=cg.out target/release/examples/render_loop --cli 200
//! ```

#![allow(clippy::disallowed_macros)]

use anyhow::Context as _;

// The binary's allocator, as in `cargo bench --bench render`.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // `--owned`: render a copy made before each render with `render_owned`, as `ciguard
    // render` and the webhook do (the copy is not the render's work; dropping the
    // result is).
    // `--cli`: as `--owned`, with the options `ciguard render` passes (no patch, no
    // provenance).
    let cli = args.first().is_some_and(|a| a == "--cli");
    let owned = cli || args.first().is_some_and(|a| a == "--owned");
    if owned {
        args.remove(0);
    }
    let evaluate = ciguard::merge::PodSecurity::Evaluate;
    let options = if cli {
        ciguard::merge::Options::without_records(evaluate)
    } else {
        evaluate.into()
    };
    let renders: u32 = match args.first() {
        Some(n) => n.parse().context("the first argument is the number of renders")?,
        None => 1_000,
    };
    let pod_path = args
        .get(1)
        .map_or("examples/gitlab-runner/build-pod.yaml", String::as_str);
    let text = std::fs::read_to_string(pod_path).with_context(|| format!("reading {pod_path}"))?;
    let pod = ciguard::source::documents(&text, pod_path)?
        .into_iter()
        .next()
        .context("no document in the pod file")?;
    let policy = match args.get(2) {
        Some(p) => ciguard::policy::load::from_file(p)?,
        None => ciguard::ValidPolicy::builtin(),
    };
    let start = std::time::Instant::now();
    for _ in 0..renders {
        if owned {
            let copy = std::hint::black_box(pod.clone());
            std::hint::black_box(ciguard::merge::render_owned_with(&policy, copy, options)?);
        } else {
            std::hint::black_box(ciguard::merge::render(&policy, std::hint::black_box(&pod))?);
        }
    }
    println!(
        "{:?} per render ({renders} renders)",
        start.elapsed() / renders.max(1)
    );
    Ok(())
}
