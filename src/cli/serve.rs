//! `ciguard serve`: the admission webhook.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context;
use ciguard::admission::{AuditSink, Config, Server, Tls};

use super::{Outcome, PolicyArgs};

/// Arguments of `ciguard serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    // Policies, each served at /mutate/<name> and /validate/<name> (and /mutate, /validate
    // when there is one); watched, changes apply without a restart as one set (a bad file
    // or a duplicate name keeps the last good set).
    #[command(flatten)]
    policies: PolicyArgs,
    /// PEM certificate chain; watched with the key, rotation applies without a restart
    #[arg(long, required_unless_present = "insecure_plaintext_dev_only")]
    tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1)
    #[arg(long, required_unless_present = "insecure_plaintext_dev_only")]
    tls_key: Option<PathBuf>,
    /// Address to listen on
    #[arg(long, default_value = "0.0.0.0:8443")]
    addr: SocketAddr,
    /// Audit log (one JSON line per decision): a file to append to, `-` for stdout, or `off`
    #[arg(long, default_value = "-")]
    audit_log: String,
    /// Log format on stderr (the level comes from CIGUARD_LOG, default info)
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) log_format: LogFormat,
    /// Longest time for one request, reading its body included (e.g. 4s, 500ms)
    #[arg(long, default_value = "4s", value_parser = parse_duration)]
    request_timeout: Duration,
    /// After SIGTERM, keep serving this long with /readyz failing, before draining
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    shutdown_delay: Duration,
    /// Then, how long in-flight requests may take to finish
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    shutdown_grace: Duration,
    /// Most connections open at once; at the limit the oldest idle one is closed to make room
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Threads serving requests [default: the CPUs this process may use, after its
    /// affinity and cgroup CPU limit]
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    worker_threads: Option<u16>,
    /// DEVELOPMENT ONLY: serve plain HTTP without TLS (the API server refuses it)
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    insecure_plaintext_dev_only: bool,
}

/// The log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines
    Text,
    /// One JSON object per line
    Json,
}

/// `500ms`, `4s`, `2m`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit (ms, s, m)"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m)")),
    }
}

/// Runs `ciguard serve` until SIGTERM or SIGINT.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(Tls { cert, key }),
        _ => None,
    };
    let mut config = Config::new(args.policies.source(), tls, args.addr);
    config.audit = match args.audit_log.as_str() {
        "-" => AuditSink::Stdout,
        "off" => AuditSink::Off,
        path => AuditSink::File(path.into()),
    };
    config.request_timeout = args.request_timeout;
    config.shutdown_delay = args.shutdown_delay;
    config.shutdown_grace = args.shutdown_grace;
    config.max_connections = usize::try_from(args.max_connections).unwrap_or(usize::MAX);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.worker_threads {
        runtime.worker_threads(n.into());
    }
    let runtime = runtime
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async {
        let server = Server::new(config)?;
        server.run().await
    })?;
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("4s"), Ok(Duration::from_secs(4)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("4").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("4h").is_err());
    }
}
