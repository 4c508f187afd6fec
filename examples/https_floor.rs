//! The transport floor of the admission webhook on this machine: a server on the stack
//! `ciguard serve` uses (tokio, tokio-rustls with ciguard's own TLS configuration, hyper's
//! HTTP/1.1 and HTTP/2 connection builder) that does no work. It reads each request's
//! body whole and answers `200` with a fixed AdmissionReview the size of ciguard's
//! `/mutate` answer for the GitLab Runner pod. No policy, no parse, no audit line, no
//! router, no metrics.
//!
//! What it costs per request is what any webhook on this stack costs on this machine
//! before it does anything: the floor under `ciguard serve`'s CPU per request. It takes
//! the arguments `webhook_load` passes to its server and ignores the ones about the
//! work, so the same load runs against both:
//!
//! ```text
//! cargo build --release --bin ciguard --example webhook_load --example https_floor
//! target/release/examples/webhook_load --server target/release/examples/https_floor \
//!     --worker-threads 1 --rate 2000 --duration 5 --connections 8
//! bench/webhook-load.sh --floor --worker-threads 1 --rate 2000 --duration 5 --connections 8
//! ```

use std::{convert::Infallible, net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use tokio::net::TcpListener;

// The binary's allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve (the arguments of `ciguard serve` that `webhook_load` passes).
    Serve(Serve),
}

#[derive(clap::Args)]
struct Serve {
    #[arg(long)]
    tls_cert: PathBuf,
    #[arg(long)]
    tls_key: PathBuf,
    #[arg(long)]
    addr: SocketAddr,
    #[arg(long)]
    worker_threads: Option<usize>,
    /// Ignored: the floor judges nothing.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Ignored: the floor writes no audit line.
    #[arg(long)]
    audit_log: Option<PathBuf>,
}

/// The shape and the size (2,045 bytes) of ciguard's `/mutate` answer for the load
/// client's GitLab Runner pod under `examples/policies/gitlab-runner.yaml`: a uid,
/// `allowed`, and a 1,864-byte base64 JSON Patch.
fn answer() -> Vec<u8> {
    let patch = "A".repeat(1_864);
    format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{{"uid":"00000000-0000-0000-0000-000000000000","allowed":true,"status":{{}},"patchType":"JSONPatch","patch":"{patch}"}}}}"#
    )
    .into_bytes()
}

fn main() -> anyhow::Result<()> {
    let Command::Serve(args) = Cli::parse().command;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.worker_threads {
        runtime.worker_threads(n);
    }
    runtime.enable_all().build()?.block_on(serve(args))
}

async fn serve(args: Serve) -> anyhow::Result<()> {
    let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("failed to read {}", p.display()));
    let config = ciguard::admission::server_config(&read(&args.tls_cert)?, &read(&args.tls_key)?)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = TcpListener::bind(args.addr).await?;
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    let answer = hyper::body::Bytes::from(answer());
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let (acceptor, builder, answer) = (acceptor.clone(), builder.clone(), answer.clone());
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let service = service_fn(move |request: Request<Incoming>| {
                let answer = answer.clone();
                async move {
                    // Read whole, as any handler must before it can parse the review.
                    let _body = request.into_body().collect().await.map(|b| b.to_bytes());
                    Ok::<_, Infallible>(Response::new(Full::new(answer)))
                }
            });
            let _ = builder.serve_connection(TokioIo::new(tls), service).await;
        });
    }
}
