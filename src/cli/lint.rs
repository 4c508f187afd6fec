//! `ciguard lint POLICY`: every error with its position, contradictions, unreachable
//! settings, and what the policy's PSS target would still reject.

use std::io::Write;

use anyhow::Context;

use super::Outcome;

/// Arguments of `ciguard lint`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy file
    policy: String,
}

/// Runs `ciguard lint`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let text =
        std::fs::read_to_string(&args.policy).with_context(|| format!("failed to read '{}'", args.policy))?;
    let findings = ciguard::lint::lint(&text, &args.policy)?;
    let mut stdout = Vec::new();
    for f in &findings {
        writeln!(stdout, "{f}")?;
    }
    if findings.is_empty() {
        writeln!(stdout, "{}: no findings", args.policy)?;
    } else {
        writeln!(stdout, "{}: {} finding(s)", args.policy, findings.len())?;
    }
    super::write_stdout(&stdout)?;
    Ok(if findings.is_empty() {
        Outcome::Success
    } else {
        Outcome::Denied
    })
}
