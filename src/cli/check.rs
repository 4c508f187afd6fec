//! `ciguard check`: Pod Security Standards evaluation only.
//!
//! Every document that carries a pod (a Pod, or a workload's pod template) is evaluated
//! at the policy's `spec.pss`, or at `--level`/`--version`. Text output is one line per
//! evaluated document; `-o json` is one object, `{"results":[…]}`. Documents that carry no
//! pod are skipped. Exit 1 when any document is denied. The policy's `exceptions` take
//! their containers out of their `exemptChecks`.

use std::io::Write;

use anyhow::anyhow;
use ciguard::{
    ValidPolicy,
    pss::{Evaluation, Level, LevelVersion, Version},
    workload::{self, Document, WorkloadError, WorkloadKind},
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

/// The verdict for one document (one element of `check -o json`'s `results`).
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

/// One evaluated document's output (a text line, or a JSON element), and its verdict.
struct Verdict {
    out: Vec<u8>,
    allowed: bool,
}

/// Runs `ciguard check`. Documents are read, parsed and evaluated on every core and
/// their results written in input order as soon as they and those before them are
/// known, so memory holds only what is in flight however many inputs there are. An
/// input error stops the run (exit 2) after the results of the documents before it;
/// with `-o json` the object printed is still whole, with those results.
pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let policy = super::load_policy(args.policy.as_deref())?;
    let target = target(&args, &policy)?;
    let units = workload::expand_inputs_sized(&args.inputs.collect()?)?;
    let json = matches!(args.output, super::TextOrJson::Json);
    let mut stdout = super::Stdout::default();
    if json {
        stdout.write(b"{\"results\":[");
    }
    let (mut evaluated, mut denied) = (0usize, false);
    let run = super::pipeline::run(
        units,
        || (),
        |(), doc| evaluate(&doc, &policy, target, json),
        |v: Verdict| {
            if json && evaluated > 0 {
                stdout.write(b",");
            }
            stdout.write(&v.out);
            evaluated += 1;
            denied |= !v.allowed;
            Ok(())
        },
    );
    if json {
        stdout.write(b"]}\n");
    }
    stdout.finish()?;
    let (_, documents) = run?;
    if documents == 0 {
        return Err(WorkloadError::NoObjects.into());
    }
    if evaluated == 0 {
        eprintln!("warning: no pod or workload with a pod template in the inputs");
    }
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

/// Evaluates a document that carries a pod into its output; `None` for the others.
fn evaluate(
    doc: &Document,
    policy: &ValidPolicy,
    target: LevelVersion,
    json: bool,
) -> anyhow::Result<Option<Verdict>> {
    let checked =
        workload::checked_pod(&doc.object).map_err(|e| super::in_document(doc, e, |e| &e.pointer))?;
    let Some((kind, mut pod)) = checked else {
        return Ok(None);
    };
    if kind == WorkloadKind::Pod {
        // What the API server defaults on a Pod (not on templates) before PodSecurity.
        pod.apply_pod_defaults();
    }
    // The policy's exceptions exempt their containers from their checks.
    let eval = policy.pod_security_of(&pod.metadata, &pod.view(), target);
    let mut out = Vec::new();
    if json {
        serde_json::to_writer(&mut out, &json_result(doc, &eval))?;
    } else {
        let verdict = if eval.allowed() {
            "allowed".to_string()
        } else {
            eval.message()
        };
        writeln!(out, "{}: {verdict}", label(doc))?;
    }
    Ok(Some(Verdict {
        out,
        allowed: eval.allowed(),
    }))
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
