//! `ciguard completion bash|zsh|fish`: a shell completion script on stdout.

use clap::CommandFactory;

use super::{Cli, Outcome};

/// Arguments of `ciguard completion`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell: bash, zsh or fish
    #[arg(value_enum)]
    shell: Shell,
}

/// The shells with a completion script.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Runs `ciguard completion`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "ciguard", &mut out);
    super::write_stdout(&out)?;
    Ok(Outcome::Success)
}
