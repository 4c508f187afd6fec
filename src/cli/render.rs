//! `ciguard render`: apply the policy and print the resulting documents.

use super::Outcome;

/// Arguments of `ciguard render`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Policy file (default: the built-in policy)
    #[arg(long)]
    policy: Option<String>,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value = "yaml")]
    output: Format,
    /// Print, per resulting security-context field, the policy layer it came from (to stderr)
    #[arg(long)]
    explain: bool,
    /// Files, directories (recursing into *.yaml, *.yml, *.json) or - for stdin
    #[arg(required = true)]
    inputs: Vec<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Yaml,
    Json,
}

/// Runs `ciguard render`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let _ = args;
    anyhow::bail!("not implemented yet")
}
