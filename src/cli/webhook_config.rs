//! `ciguard webhook-config`: the Mutating- and ValidatingWebhookConfiguration for a set of
//! policies, as a YAML stream on stdout.

use std::{io::Write, path::PathBuf};

use anyhow::Context;
use ciguard::{
    policy::set::PolicySet,
    webhook_config::{self, Ca, Client, Options},
};

use super::{Outcome, PolicyArgs};

/// Arguments of `ciguard webhook-config`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    policies: PolicyArgs,
    /// The ciguard Service the API server calls: NAMESPACE/NAME, or NAMESPACE/NAME:PORT (default port 443)
    #[arg(
        long,
        value_name = "NS/NAME",
        required_unless_present = "url_base",
        conflicts_with = "url_base"
    )]
    service: Option<String>,
    /// Call ciguard at this URL instead of a Service: https://HOST[:PORT] (e.g. outside the cluster)
    #[arg(long, value_name = "URL")]
    url_base: Option<String>,
    /// PEM bundle of the CA that signed ciguard's serving certificate (clientConfig.caBundle)
    #[arg(long, value_name = "FILE", conflicts_with = "cert_manager")]
    ca_bundle: Option<PathBuf>,
    /// cert-manager Certificate of ciguard's serving certificate, NAMESPACE/NAME: cert-manager injects its CA
    #[arg(long, value_name = "NS/CERT")]
    cert_manager: Option<String>,
}

/// Runs `ciguard webhook-config`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let client = match (&args.service, &args.url_base) {
        (Some(service), _) => service.parse::<Client>()?,
        (None, Some(url)) => Client::url(url)?,
        (None, None) => anyhow::bail!("--service or --url-base is required"),
    };
    let ca = match (&args.ca_bundle, &args.cert_manager) {
        (Some(file), _) => {
            let pem = std::fs::read(file).with_context(|| format!("failed to read '{}'", file.display()))?;
            Ca::bundle(pem, &file.display().to_string())?
        }
        (None, Some(cert)) => Ca::CertManager(cert.parse()?),
        (None, None) => Ca::System,
    };
    let set = PolicySet::load(&args.policies.source())?;
    let configs = webhook_config::generate(&set, &Options { client, ca })?;
    let yaml = configs.to_yaml()?;
    std::io::stdout().lock().write_all(yaml.as_bytes())?;
    Ok(Outcome::Success)
}
