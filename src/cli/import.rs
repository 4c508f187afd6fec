//! `ciguard import gitlab|woodpecker`: runner settings → policy YAML on stdout, warnings
//! on stderr.

use std::{collections::BTreeMap, io::Write};

use anyhow::Context;
use ciguard::import::{self, Imported};

use super::Outcome;

/// Arguments of `ciguard import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    from: From,
}

#[derive(Debug, clap::Subcommand)]
enum From {
    /// GitLab Runner's config.toml ([runners.kubernetes]) → a gitlab-runner policy
    Gitlab {
        /// The runner's config.toml
        config: String,
        /// Which [[runners]] entry, by name (required when there are several)
        #[arg(long)]
        runner: Option<String>,
    },
    /// Woodpecker's WOODPECKER_BACKEND_K8S_* settings → a woodpecker policy
    Woodpecker {
        /// Read the variables from this env file (KEY=VALUE lines) instead of the environment
        #[arg(long)]
        env_file: Option<String>,
    },
}

/// Runs `ciguard import`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let imported: Imported = match args.from {
        From::Gitlab { config, runner } => {
            let text =
                std::fs::read_to_string(&config).with_context(|| format!("failed to read '{config}'"))?;
            import::gitlab::import(&text, &config, runner.as_deref())?
        }
        From::Woodpecker { env_file } => {
            let (vars, source) = match env_file {
                Some(path) => {
                    let text =
                        std::fs::read_to_string(&path).with_context(|| format!("failed to read '{path}'"))?;
                    (import::woodpecker::parse_env_file(&text, &path)?, path)
                }
                None => {
                    let vars: BTreeMap<String, String> = std::env::vars()
                        .filter(|(k, _)| k.starts_with("WOODPECKER_BACKEND_K8S_"))
                        .collect();
                    (vars, "the environment".to_string())
                }
            };
            import::woodpecker::import(&vars, &source)?
        }
    };
    let mut stderr = std::io::stderr().lock();
    for w in &imported.warnings {
        writeln!(stderr, "warning: {w}")?;
    }
    write!(std::io::stdout().lock(), "{}", imported.to_yaml()?)?;
    Ok(Outcome::Success)
}
