//! `ciguard check`: Pod Security Standards evaluation only.
//!
//! Every document that carries a pod (a Pod, or a workload's pod template) is evaluated
//! at the policy's `spec.pss`, or at `--level`/`--version`. Text output is one line per
//! evaluated document; `-o json` is one object, `{"results":[…]}`. Documents that carry no
//! pod are skipped. Exit 1 when any document is denied. The policy's `exceptions` take
//! their containers out of their `exemptChecks`.

use std::io::Write;

use anyhow::{Context, anyhow};
use ciguard::{
    ValidPolicy,
    pss::{self, Evaluation, Level, LevelVersion, Version},
    workload::{self, Document, Input, WorkloadError, WorkloadKind},
};
use serde::Serialize;

use super::{Outcome, render::label};

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
    output: super::TextOrJson,
    #[command(flatten)]
    inputs: super::InputArgs,
}

/// `check -o json`: `{"results":[…]}`.
#[derive(Serialize)]
struct Report<'a> {
    results: Vec<DocResult<'a>>,
}

/// The verdict for one document.
#[derive(Serialize)]
struct DocResult<'a> {
    source: &'a str,
    index: usize,
    kind: &'a str,
    name: &'a str,
    allowed: bool,
    violations: Vec<ViolationOut<'a>>,
}

#[derive(Serialize)]
struct ViolationOut<'a> {
    check: &'a str,
    reason: &'a str,
    detail: &'a str,
}

/// Runs `ciguard check`.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let policy = super::load_policy(args.policy.as_deref())?;
    let target = target(&args, &policy)?;
    let checked = check_inputs(&args.inputs.collect()?, &policy, target)?;
    let evaluated: Vec<(&Document, &Evaluation)> = checked
        .iter()
        .filter_map(|(doc, eval)| Some((doc, eval.as_ref()?)))
        .collect();

    let mut stdout = Vec::new();
    match args.output {
        super::TextOrJson::Text => {
            for (doc, eval) in &evaluated {
                let verdict = if eval.allowed() {
                    "allowed".to_string()
                } else {
                    eval.message()
                };
                writeln!(stdout, "{}: {verdict}", label(doc))?;
            }
        }
        super::TextOrJson::Json => {
            let results = evaluated
                .iter()
                .map(|(doc, eval)| json_result(doc, eval))
                .collect();
            serde_json::to_writer(&mut stdout, &Report { results })?;
            writeln!(stdout)?;
        }
    }
    super::write_stdout(&stdout)?;
    if evaluated.is_empty() {
        eprintln!("warning: no pod or workload with a pod template in the inputs");
    }
    let denied = evaluated.iter().any(|(_, eval)| !eval.allowed());
    Ok(if denied { Outcome::Denied } else { Outcome::Success })
}

/// The policy's `spec.pss`, with `--level` and `--version` applied over it.
fn target(args: &Args, policy: &ValidPolicy) -> anyhow::Result<LevelVersion> {
    let mut target = policy.pss;
    if let Some(level) = &args.level {
        target.level = level.parse::<Level>().map_err(|e| anyhow!("--level: {e}"))?;
    }
    if let Some(version) = &args.version {
        target.version = version
            .parse::<Version>()
            .map_err(|e| anyhow!("--version: {e}"))?;
    }
    Ok(target)
}

/// A document, and its verdict when it carries a pod.
type Checked = (Document, Option<Evaluation>);

/// Reads and evaluates every input document, in input order (the order
/// `workload::read_inputs` reads them). Files are read, parsed and evaluated on every
/// core; the first error in input order wins. Inputs with no document at all are an
/// error, as in `render`.
fn check_inputs(
    inputs: &[String],
    policy: &ValidPolicy,
    target: LevelVersion,
) -> anyhow::Result<Vec<Checked>> {
    let units = workload::expand_inputs(inputs)?;
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = units.len().div_ceil(threads).max(64);
    let out = if units.len() <= chunk {
        check_units(&units, policy, target)?
    } else {
        let results: Vec<anyhow::Result<Vec<Checked>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = units
                .chunks(chunk)
                .map(|part| scope.spawn(move || check_units(part, policy, target)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("a worker thread failed")))
                })
                .collect()
        });
        let mut out = Vec::with_capacity(units.len());
        for part in results {
            out.extend(part?);
        }
        out
    };
    if out.is_empty() {
        return Err(WorkloadError::NoObjects.into());
    }
    Ok(out)
}

/// One unit after another: read, parse, evaluate.
fn check_units(units: &[Input], policy: &ValidPolicy, target: LevelVersion) -> anyhow::Result<Vec<Checked>> {
    let mut out = Vec::new();
    for unit in units {
        for doc in workload::read_input(unit)? {
            let eval = evaluate(&doc, policy, target)?;
            out.push((doc, eval));
        }
    }
    Ok(out)
}

/// Evaluates a document that carries a pod; `None` for the others.
fn evaluate(
    doc: &Document,
    policy: &ValidPolicy,
    target: LevelVersion,
) -> anyhow::Result<Option<Evaluation>> {
    let typed = workload::typed_pod(&doc.object)
        .map_err(|message| anyhow!(message))
        .with_context(|| format!("{}#{}", doc.source, doc.index))?;
    let Some((kind, mut pod)) = typed else {
        return Ok(None);
    };
    if kind == WorkloadKind::Pod {
        // What the API server defaults on a Pod (not on templates) before PodSecurity.
        pss::apply_pod_defaults(&mut pod.spec);
    }
    // The policy's exceptions exempt their containers from their checks.
    Ok(Some(policy.pod_security(&pod.metadata, &pod.spec, target)))
}

fn json_result<'a>(doc: &'a Document, eval: &'a Evaluation) -> DocResult<'a> {
    DocResult {
        source: &doc.source,
        index: doc.index,
        kind: doc.kind(),
        name: doc.name(),
        allowed: eval.allowed(),
        violations: eval
            .violations
            .iter()
            .map(|v| ViolationOut {
                check: v.check,
                reason: &v.reason,
                detail: &v.detail,
            })
            .collect(),
    }
}
