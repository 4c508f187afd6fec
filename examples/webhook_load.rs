//! Load client for `ciguard serve`: starts the server on 127.0.0.1 with a fresh
//! certificate, POSTs a captured AdmissionReview to `/mutate` (or, with `--endpoint`,
//! `/validate`) over HTTPS at a target rate for a bounded time, and prints requests/s,
//! latency percentiles and the server's peak RSS (`VmHWM`). Run it through
//! `bench/webhook-load.sh`.
//!
//! Requests are scheduled open-loop (request *i* is due at `start + i / rate`); latency
//! is reported both from the moment a request is sent and from the moment it was due,
//! so a server that falls behind shows up instead of slowing the client down.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_macros)]

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;

/// Drive ciguard serve's /mutate (or /validate) over HTTPS and report throughput, latency and memory.
#[derive(Debug, Parser)]
struct Args {
    /// Target request rate (requests per second)
    #[arg(long, default_value_t = 5000)]
    rate: u64,
    /// How long to send, in seconds
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Concurrent requests at most (one kept-alive connection each)
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Closed loop: each connection sends its next request as soon as the last is
    /// answered, for --duration seconds (--rate is ignored): saturation throughput
    #[arg(long)]
    closed_loop: bool,
    /// Client runtime threads (the server gets the rest of the machine)
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// The ciguard binary (default: next to this example's directory)
    #[arg(long)]
    server: Option<PathBuf>,
    /// Policy file
    #[arg(long, default_value = "examples/policies/gitlab-runner.yaml")]
    policy: PathBuf,
    /// AdmissionReview body to send
    #[arg(long, default_value = "tests/data/admission/gitlab-runner-build-pod.json")]
    body: PathBuf,
    /// The path to POST to: `/mutate` or `/validate`
    #[arg(long, default_value = "/mutate", value_parser = ["/mutate", "/validate"])]
    endpoint: String,
    /// The server's `--worker-threads` (default: its own default)
    #[arg(long)]
    worker_threads: Option<u16>,
    /// Start the server with `--audit-log off` (by default it appends to a file in a
    /// temporary directory, as a deployment would)
    #[arg(long)]
    no_audit: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (cert, key, client_config) = certificates(&dir)?;
    let server_bin = match &args.server {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .and_then(|p| p.parent())
            .context("no parent directory")?
            .join("ciguard"),
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    // Not in the watched certificate directory: every audit line would be a file event.
    let audit_dir = tempfile::tempdir()?;
    let audit = audit_dir.path().join("audit.jsonl");
    let mut command = Command::new(&server_bin);
    command.arg("serve");
    if let Some(n) = args.worker_threads {
        command.arg(format!("--worker-threads={n}"));
    }
    let child = command
        .arg("--policy")
        .arg(&args.policy)
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .arg("--addr")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--audit-log")
        .arg(if args.no_audit {
            "off".as_ref()
        } else {
            audit.as_os_str()
        })
        .env("CIGUARD_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("failed to start {}", server_bin.display()))?;
    let server = ServerProcess(child);
    let pid = server.0.id();

    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(client_config)
        .pool_max_idle_per_host(args.connections)
        .timeout(Duration::from_secs(10))
        .build()?;
    let base = format!("https://localhost:{port}");
    wait_ready(&client, &base).await?;
    // For a profiler to attach to (perf record -p <pid>).
    eprintln!("server pid {pid} on 127.0.0.1:{port}");

    let body = bytes(&args.body)?;
    let url = format!("{base}{}", args.endpoint);
    // Server CPU from here on: the load phase, not the start-up or the certificate work.
    let server_before = cpu_seconds(&pid.to_string())?;
    let client_before = cpu_seconds("self")?;
    let total = if args.closed_loop {
        u64::MAX
    } else {
        args.rate * args.duration
    };
    let (closed_loop, duration) = (args.closed_loop, Duration::from_secs(args.duration));
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now() + Duration::from_millis(50);
    let mut workers = Vec::new();
    for _ in 0..args.connections {
        let (client, url, body, next) = (client.clone(), url.clone(), body.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut stats = Stats::default();
            if closed_loop {
                // Every connection starts at `start`, which the rate is measured from.
                tokio::time::sleep_until(start.into()).await;
            }
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return stats;
                }
                let due = if closed_loop {
                    if start.elapsed() >= duration {
                        return stats;
                    }
                    // No sleep: tokio's timer rounds a deadline up to its next millisecond
                    // tick, so sleeping until "now" held every request back by up to 1 ms
                    // and capped the closed loop at ~8 connections per 1.7 ms.
                    Instant::now()
                } else {
                    let due = start + interval.mul_f64(i as f64);
                    tokio::time::sleep_until(due.into()).await;
                    due
                };
                let sent = Instant::now();
                let ok = match client.post(&url).body(body.clone()).send().await {
                    Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
                    _ => false,
                };
                let done = Instant::now();
                if ok {
                    stats.service.push(micros(done - sent));
                    stats.scheduled.push(micros(done - due));
                } else {
                    stats.errors += 1;
                }
            }
        }));
    }
    let mut all = Stats::default();
    for w in workers {
        let s = w.await?;
        all.service.extend(s.service);
        all.scheduled.extend(s.scheduled);
        all.errors += s.errors;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let hwm = peak_rss(pid)?;
    let (server_after, client_after) = (cpu_seconds(&pid.to_string())?, cpu_seconds("self")?);
    let server_cpu = (server_after.0 - server_before.0, server_after.1 - server_before.1);
    let client_cpu = (client_after.0 - client_before.0, client_after.1 - client_before.1);
    drop(server);

    all.service.sort_unstable();
    all.scheduled.sort_unstable();
    let ok = all.service.len();
    println!(
        "POST {} over HTTPS/1.1 on 127.0.0.1: {} ({} bytes), policy {}",
        args.endpoint,
        args.body.display(),
        body.len(),
        args.policy.display()
    );
    let rate = if args.closed_loop {
        "closed loop".to_string()
    } else {
        format!("target {} req/s", args.rate)
    };
    println!(
        "{rate} for {} s, {} connections, {} client thread(s)",
        args.duration, args.connections, args.client_threads
    );
    println!("requests: {ok} ok, {} failed", all.errors);
    println!("throughput: {:.0} req/s", ok as f64 / elapsed);
    println!(
        "latency from send: p50 {}, p99 {}, max {}",
        ms(pct(&all.service, 0.50)),
        ms(pct(&all.service, 0.99)),
        ms(all.service.last().copied().unwrap_or(0))
    );
    println!(
        "latency from schedule: p50 {}, p99 {}",
        ms(pct(&all.scheduled, 0.50)),
        ms(pct(&all.scheduled, 0.99))
    );
    println!("server peak RSS (VmHWM): {hwm}");
    let (user, system) = server_cpu;
    println!(
        "server CPU per request: {:.0} µs ({:.2} s = {user:.2} user + {system:.2} system over the load \
         phase)",
        (user + system) * 1e6 / ok.max(1) as f64,
        user + system,
    );
    println!(
        "client CPU: {:.2} s ({:.0} µs/request; it shares the machine), wall {elapsed:.1} s",
        client_cpu.0 + client_cpu.1,
        (client_cpu.0 + client_cpu.1) * 1e6 / ok.max(1) as f64,
    );
    if all.errors > 0 {
        bail!("{} requests failed", all.errors);
    }
    Ok(())
}

#[derive(Default)]
struct Stats {
    service: Vec<u32>,
    scheduled: Vec<u32>,
    errors: u64,
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

fn pct(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(us: u32) -> String {
    format!("{:.2} ms", f64::from(us) / 1000.0)
}

fn bytes(path: &PathBuf) -> anyhow::Result<axum::body::Bytes> {
    let text = std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))?;
    // Compact, as the API server sends it.
    let value: ciguard::value::Value = serde_json::from_slice(&text)?;
    Ok(serde_json::to_vec(&value)?.into())
}

fn peak_rss(pid: u32) -> anyhow::Result<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM in /proc/<pid>/status")?;
    let kib: f64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(format!("{:.1} MiB", kib / 1024.0))
}

/// User and system CPU time of a process (`self` or a pid), from /proc/<pid>/stat.
fn cpu_seconds(pid: &str) -> anyhow::Result<(f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces): state is field 3.
    let rest = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let (user, system): (f64, f64) = (fields[11].parse()?, fields[12].parse()?);
    Ok((user / 100.0, system / 100.0)) // USER_HZ
}

async fn wait_ready(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("the server did not become ready")
}

/// A CA, a serving certificate for localhost signed by it, and a client trusting the CA.
fn certificates(dir: &tempfile::TempDir) -> anyhow::Result<(PathBuf, PathBuf, rustls::ClientConfig)> {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate()?)?;
    let key = rcgen::KeyPair::generate()?;
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])?.signed_by(&key, &ca)?;
    let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_path, leaf.pem())?;
    std::fs::write(&key_path, key.serialize_pem())?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der().clone())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok((cert_path, key_path, config))
}
