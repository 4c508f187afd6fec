//! `ciguard audit`: what the policy would do to pods that already run.
//!
//! Every document that carries a pod is rendered with the policy and counted per
//! namespace and detected preset (the library's [`ciguard::audit`]). Text output is an
//! aligned table with a totals line; `-o json` is one object, `{"groups":[…]}`. Exit 1
//! when any pod would be denied.

use std::{fmt::Write as _, io::Write as _};

use ciguard::{
    audit::{Audit, AuditReport, Group},
    workload::{self, WorkloadError},
};

use super::Outcome;

/// Arguments of `ciguard audit`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Policy file (default: the built-in policy)
    #[arg(long)]
    policy: Option<String>,
    /// Output format
    #[arg(short = 'o', long = "output", value_enum, default_value = "text")]
    output: super::TextOrJson,
    /// Files, directories or - for stdin (`kubectl get pods -A -o json | ciguard audit -`)
    #[command(flatten)]
    inputs: super::InputArgs,
    #[command(flatten)]
    cluster: super::audit_cluster::ClusterArgs,
}

/// How many checks the text table names per row before `+N`.
const TOP_CHECKS: usize = 3;

/// Runs `ciguard audit`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let policy = super::load_policy(args.policy.as_deref())?;
    let (audit, documents, carriers) = if args.cluster.cluster {
        if !args.inputs.is_empty() {
            anyhow::bail!("--cluster reads the pods from the cluster: name no input files besides it");
        }
        let mut audit = Audit::new(&policy);
        let (mut documents, mut carriers) = (0usize, 0usize);
        // One page of pods at a time: each is counted, then dropped.
        super::audit_cluster::list_pods(&args.cluster, |docs| {
            documents += docs.len();
            for mut doc in docs {
                let object = std::mem::take(&mut doc.object);
                let counted = audit
                    .add_owned(object)
                    .map_err(|e| super::in_document(&doc, e, |e| &e.pointer))?;
                carriers += usize::from(counted);
            }
            Ok(())
        })?;
        if documents == 0 {
            // An empty cluster or namespace is an answer, not an input error.
            eprintln!("warning: no pods in {}", args.cluster.scope());
        }
        (audit, documents, carriers)
    } else {
        let units = workload::expand_inputs_sized(&args.inputs.collect()?)?;
        // Each worker counts into its own audit; the documents are dropped once counted.
        let (states, documents) = super::pipeline::run(
            units,
            || (Audit::new(&policy), 0usize),
            |(audit, carriers), mut doc| {
                let object = std::mem::take(&mut doc.object);
                let counted = audit
                    .add_owned(object)
                    .map_err(|e| super::in_document(&doc, e, |e| &e.pointer))?;
                *carriers += usize::from(counted);
                Ok(None::<()>)
            },
            |()| Ok(()),
        )?;
        if documents == 0 {
            return Err(WorkloadError::NoObjects.into());
        }
        let mut audit = Audit::new(&policy);
        let mut carriers = 0;
        for (a, n) in states {
            audit.absorb(a);
            carriers += n;
        }
        (audit, documents, carriers)
    };
    let report = audit.finish();

    let mut out = Vec::new();
    match args.output {
        super::TextOrJson::Text => out.extend_from_slice(table(&report).as_bytes()),
        super::TextOrJson::Json => {
            serde_json::to_writer(&mut out, &report)?;
            writeln!(out)?;
        }
    }
    super::write_stdout(&out)?;
    if carriers == 0 && documents > 0 {
        eprintln!("warning: no pod or workload with a pod template in the inputs");
    }
    Ok(if report.any_denied() {
        Outcome::Denied
    } else {
        Outcome::Success
    })
}

/// The report as an aligned table: a header, one row per group, a totals line.
fn table(report: &AuditReport) -> String {
    let header = [
        "NAMESPACE",
        "PRESET",
        "PODS",
        "CHANGED",
        "DENIED",
        "TOP CHECKS",
        "REQUESTS",
    ]
    .map(String::from);
    let mut rows = vec![header];
    for g in &report.groups {
        let namespace = if g.namespace.is_empty() {
            "<none>".to_string()
        } else {
            g.namespace.clone()
        };
        rows.push(row(namespace, g.preset.to_string(), g));
    }
    rows.push(row("TOTAL".into(), String::new(), &report.totals()));

    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            let w = widths[i];
            // Counts are right-aligned, text left-aligned; three spaces between columns.
            let _ = match i {
                2..=4 => write!(line, "{cell:>w$}   "),
                _ => write!(line, "{cell:<w$}   "),
            };
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn row(namespace: String, preset: String, g: &Group) -> [String; 7] {
    [
        namespace,
        preset,
        g.pods.to_string(),
        g.changed.to_string(),
        g.denied.to_string(),
        top_checks(g),
        counts(g.requests.iter().map(|(k, n)| (*k, *n))),
    ]
}

/// The most frequent checks, most frequent first (ties by ID), then `+N more`.
fn top_checks(g: &Group) -> String {
    let mut checks: Vec<(&str, u64)> = g.checks.iter().map(|(k, n)| (*k, *n)).collect();
    checks.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let rest = checks.len().saturating_sub(TOP_CHECKS);
    checks.truncate(TOP_CHECKS);
    let mut text = counts(checks.into_iter());
    if rest > 0 {
        let _ = write!(text, " +{rest} more");
    }
    text
}

/// `a=1, b=2`, or `-` when empty.
fn counts<'a>(items: impl Iterator<Item = (&'a str, u64)>) -> String {
    let parts: Vec<String> = items.map(|(k, n)| format!("{k}={n}")).collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_checks_name_the_three_most_frequent_then_the_rest() {
        let g = Group {
            checks: [("a", 1), ("b", 5), ("c", 2), ("d", 2), ("e", 9)]
                .into_iter()
                .collect(),
            ..Group::default()
        };
        assert_eq!(top_checks(&g), "e=9, b=5, c=2 +2 more");
        assert_eq!(top_checks(&Group::default()), "-");
    }

    #[test]
    fn table_aligns_columns_and_ends_with_totals() {
        let report = AuditReport {
            groups: vec![Group {
                namespace: String::new(),
                preset: "generic",
                pods: 12,
                changed: 3,
                denied: 1,
                checks: [("runAsNonRoot", 1)].into_iter().collect(),
                requests: [("disallowed-id", 2)].into_iter().collect(),
            }],
        };
        assert_eq!(
            table(&report),
            concat!(
                "NAMESPACE   PRESET    PODS   CHANGED   DENIED   TOP CHECKS       REQUESTS\n",
                "<none>      generic     12         3        1   runAsNonRoot=1   disallowed-id=2\n",
                "TOTAL                   12         3        1   runAsNonRoot=1   disallowed-id=2\n",
            )
        );
    }
}
