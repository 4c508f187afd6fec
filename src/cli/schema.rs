//! `ciguard schema`: the JSON Schema of the policy file.

use std::io::Write;

use super::Outcome;

/// Arguments of `ciguard schema`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `ciguard schema`.
pub fn run(_: Args) -> anyhow::Result<Outcome> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &ciguard::policy::schema())?;
    writeln!(out)?;
    Ok(Outcome::Success)
}
