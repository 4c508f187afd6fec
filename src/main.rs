//! The `ciguard` command: parse, run, map the result to exit code 0/1/2.

#[allow(clippy::disallowed_macros)] // the CLI is where output is written
mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("CIGUARD_LOG"))
        .init();
    match cli::run(cli) {
        Ok(outcome) => outcome.into(),
        Err(e) => {
            cli::report_error(&e);
            ExitCode::from(2)
        }
    }
}
