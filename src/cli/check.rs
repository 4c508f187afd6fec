//! `ciguard check`: Pod Security Standards evaluation only.

use super::Outcome;

/// Arguments of `ciguard check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Policy file whose `spec.pss` is the target (default: the built-in policy, restricted/latest)
    #[arg(long)]
    policy: Option<String>,
    /// Level: privileged, baseline or restricted (overrides the policy's)
    #[arg(long)]
    level: Option<String>,
    /// Version: latest or v1.N (overrides the policy's)
    #[arg(long)]
    version: Option<String>,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: Format,
    /// Files, directories (recursing into *.yaml, *.yml, *.json) or - for stdin
    #[arg(required = true)]
    inputs: Vec<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Runs `ciguard check`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let _ = args;
    anyhow::bail!("not implemented yet")
}
