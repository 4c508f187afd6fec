//! The `ciguard` command: parse, run, map the result to exit code 0/1/2.

#[allow(clippy::disallowed_macros)] // the CLI is where output is written
mod cli;

use std::process::ExitCode;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // The TLS provider for the whole process (the webhook server and the Kubernetes
    // client of `audit --cluster`); `Err` means one is installed already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = cli::Cli::parse_plugin_aware();
    cli::init_tracing(&cli);
    match cli::run(cli) {
        Ok(outcome) => outcome.into(),
        Err(e) => {
            cli::report_error(&e);
            ExitCode::from(2)
        }
    }
}
