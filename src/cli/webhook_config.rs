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
    /// The ciguard Service the API server calls: NAMESPACE/NAME, or NAMESPACE/NAME:PORT (default
    /// port 443); its namespace, ciguard's own, is never sent to ciguard
    #[arg(long, value_name = "NS/NAME", required_unless_present = "url_base")]
    service: Option<String>,
    /// Call ciguard at this URL instead of the Service: https://HOST[:PORT] (e.g. outside the cluster)
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
    let service = args.service.as_deref().map(str::parse::<Client>).transpose()?;
    let namespace = service.as_ref().and_then(Client::namespace).map(String::from);
    let client = match (service, &args.url_base) {
        (_, Some(url)) => Client::url(url)?,
        (Some(service), None) => service,
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
    for warning in webhook_config::warnings(&set) {
        eprintln!("warning: {warning}");
    }
    let configs = webhook_config::generate(
        &set,
        &Options {
            client,
            namespace,
            ca,
        },
    )?;
    let yaml = configs.to_yaml()?;
    std::io::stdout().lock().write_all(yaml.as_bytes())?;
    Ok(Outcome::Success)
}
