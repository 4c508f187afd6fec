//! `ciguard render`: apply the policy and print the resulting documents.

use std::io::Write;

use ciguard::json;
use ciguard::{
    merge::{self, Rendered},
    policy::{Choice, Preset},
    workload::{self, Document},
};

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
    #[command(flatten)]
    inputs: super::InputArgs,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Yaml,
    Json,
    // `kind.group/name` of each document that is not denied, one a line, as `kubectl -o name`.
    Name,
}

/// How a document is named in messages: `source#index Kind/name`.
pub(crate) fn label(doc: &Document) -> String {
    format!("{}#{} {}/{}", doc.source, doc.index, doc.kind(), doc.name())
}

/// Runs `ciguard render`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let policy = super::load_policy(args.policy.as_deref())?;
    let docs = workload::read_inputs(&args.inputs.collect()?)?;
    let count = docs.len();
    let auto = args.explain && policy.spec().preset == Preset::Auto;
    // Render everything first: an input error prints nothing to stdout. Each object is
    // rendered in place (not copied); its label and preset are read before.
    let rendered = docs
        .into_iter()
        .map(|mut d| {
            let label = label(&d);
            let choice = if auto {
                policy.preset_for_object(&d.object)
            } else {
                None
            };
            // Neither the changes nor the patch is printed; the provenance only with
            // --explain.
            let options = merge::Options {
                provenance: args.explain,
                ..merge::Options::without_records(merge::PodSecurity::Evaluate)
            };
            let r = merge::render_owned_with(&policy, std::mem::take(&mut d.object), options)
                .map_err(|e| super::in_document(&d, e, |e| &e.pointer))?;
            Ok((label, choice, r))
        })
        .collect::<anyhow::Result<Vec<(String, Option<Choice>, Rendered)>>>()?;

    let mut stderr = std::io::stderr().lock();
    let mut outcome = Outcome::Success;
    let mut printed = Vec::new();
    for (label, choice, r) in &rendered {
        for w in &r.warnings {
            // A notice tells what the policy did to a job's request; a warning, a problem.
            let kind = if w.code.is_notice() { "notice" } else { "warning" };
            writeln!(stderr, "{kind}: {label}: {}", w.message())?;
        }
        if args.explain && r.kind.is_some() {
            writeln!(stderr, "explain: {label}")?;
            if let Some(choice) = choice {
                writeln!(stderr, "  preset: {} (auto: {})", choice.preset, choice.reason)?;
            }
            for line in r.explain().lines() {
                writeln!(stderr, "  {line}")?;
            }
        }
        match &r.denial {
            Some(d) => {
                writeln!(stderr, "denied: {label}: {}", d.message())?;
                outcome = Outcome::Denied;
            }
            None => printed.push(&r.object),
        }
    }

    let mut out = Vec::new();
    match args.output {
        Format::Yaml => {
            for (i, object) in printed.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b"---\n");
                }
                out.extend_from_slice(ciguard::source::to_yaml(object)?.as_bytes());
            }
        }
        Format::Json => {
            let one = if count == 1 {
                printed.first().map(|o| (*o).clone())
            } else {
                Some(json!({"apiVersion": "v1", "kind": "List", "items": printed}))
            };
            if let Some(one) = one {
                serde_json::to_writer_pretty(&mut out, &one)?;
                out.push(b'\n');
            }
        }
        Format::Name => {
            for object in &printed {
                out.extend_from_slice(kubectl_name(object).as_bytes());
                out.push(b'\n');
            }
        }
    }
    super::write_stdout(&out)?;
    Ok(outcome)
}

/// `kubectl -o name`'s spelling: `pod/build`, `deployment.apps/web`, `job.batch/x`.
fn kubectl_name(object: &ciguard::value::Value) -> String {
    let field = |key: &str| {
        object
            .get(key)
            .and_then(ciguard::value::Value::as_str)
            .unwrap_or("")
    };
    let kind = field("kind").to_ascii_lowercase();
    let group = field("apiVersion")
        .rsplit_once('/')
        .map(|(group, _)| group)
        .unwrap_or("");
    let name = object
        .pointer("/metadata/name")
        .and_then(ciguard::value::Value::as_str)
        .unwrap_or("");
    if group.is_empty() {
        format!("{kind}/{name}")
    } else {
        format!("{kind}.{group}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use ciguard::json;

    use super::kubectl_name;

    /// kubectl's `-o name` (k8s.io/cli-runtime printers/name.go): `kind.group/name`, the
    /// group left out for the core group.
    #[test]
    fn names_are_kubectls() {
        let cases = [
            (
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "build"}}),
                "pod/build",
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}),
                "deployment.apps/web",
            ),
            (
                json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "n"}}),
                "cronjob.batch/n",
            ),
        ];
        for (object, want) in cases {
            assert_eq!(kubectl_name(&object), want);
        }
    }
}
