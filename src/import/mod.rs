//! Runner settings → ciguard policy: GitLab Runner's `config.toml` and Woodpecker's
//! agent environment. Both produce the same [`Policy`] type the loader produces, plus
//! warnings for every setting ciguard cannot express (never dropped silently).

pub mod gitlab;
pub mod woodpecker;

use crate::value::{Map, Value};

use crate::{
    merge::fields,
    policy::{self, Policy},
};

/// An imported policy and what could not be carried over.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The policy.
    pub policy: Policy,
    /// Settings ciguard cannot express or that behave differently, one sentence each.
    pub warnings: Vec<String>,
    /// Where the settings came from, for the header comment.
    pub source: String,
}

impl Imported {
    /// The policy as YAML, with a header naming its source and the schema.
    pub fn to_yaml(&self) -> Result<String, ImportError> {
        let body = crate::source::to_yaml(&self.policy).map_err(|e| ImportError::Output(e.to_string()))?;
        let mut out = format!(
            "# Imported by `ciguard import` from {}.\n# Editor completion: `ciguard schema > ciguard.schema.json`, then keep the next line.\n# yaml-language-server: $schema=ciguard.schema.json\n",
            self.source
        );
        for w in &self.warnings {
            out.push_str(&format!("# warning: {w}\n"));
        }
        out.push_str(&body);
        Ok(out)
    }
}

/// Why an import failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file could not be read.
    #[error("failed to read '{path}'")]
    Read {
        /// The path as given.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The settings are malformed where they are found.
    #[error("{location}: {message}")]
    Syntax {
        /// `file:line:col`, or the variable name and position.
        location: String,
        /// What was expected.
        message: String,
    },
    /// The settings do not select one runner.
    #[error("{0}")]
    Selection(String),
    /// The settings are readable but make no valid policy.
    #[error("the imported policy is invalid")]
    Invalid(#[source] policy::PolicyErrors),
    /// The policy could not be written.
    #[error("failed to write the policy: {0}")]
    Output(String),
}

/// Splits a security context that mixes pod and container fields (as Woodpecker's do)
/// into its pod-level and container-level parts, as Kubernetes defines them: fields only
/// the pod has go to the pod, fields only containers have go to containers, and fields
/// both have go to the pod, where they reach every container.
pub fn split_levels(ctx: &Map<String, Value>) -> (Map<String, Value>, Map<String, Value>, Vec<String>) {
    let (mut pod, mut container, mut unknown) = (Map::new(), Map::new(), Vec::new());
    for (k, v) in ctx {
        if fields::is_pod_field(k) {
            pod.insert(k.clone(), v.clone());
        } else if fields::is_container_field(k) {
            container.insert(k.clone(), v.clone());
        } else {
            unknown.push(k.clone());
        }
    }
    (pod, container, unknown)
}

/// Checks one imported value on its own, so that a bad value is reported where the runner
/// setting is (`location`, e.g. `config.toml:7:5: runners.kubernetes.….fs_group` or the
/// variable name), not in the generated policy. `level` is `pod` or `containers`.
pub(crate) fn check_field(location: &str, level: &str, name: &str, value: &Value) -> Result<(), ImportError> {
    let doc = crate::json!({
        "apiVersion": policy::API_VERSION,
        "kind": policy::KIND,
        "metadata": {"name": "check"},
        "spec": {level: {"enforced": {name: value}}},
    });
    let Err(errors) = policy::load::from_str(&doc.to_string(), "imported value") else {
        return Ok(());
    };
    let prefix = format!("spec.{level}.enforced.{name} ");
    let message = errors
        .0
        .iter()
        .map(|e| {
            let m = match e {
                policy::load::PolicyError::Syntax(s) => s.message.clone(),
                policy::load::PolicyError::Invalid { message, .. } => message.clone(),
                other => other.to_string(),
            };
            let m = m.strip_prefix(&prefix).unwrap_or(&m);
            m.strip_prefix(&format!("{value}: ")).unwrap_or(m).to_string()
        })
        .collect::<Vec<_>>()
        .join("; ");
    Err(ImportError::Syntax {
        location: location.to_string(),
        message: format!("{name} {value}: {message}"),
    })
}

/// Builds a [`Policy`] from a JSON `spec` and checks it.
pub(crate) fn finish(
    name: &str,
    spec: Value,
    warnings: Vec<String>,
    source: String,
) -> Result<Imported, ImportError> {
    let doc = crate::json!({
        "apiVersion": policy::API_VERSION,
        "kind": policy::KIND,
        "metadata": {"name": name},
        "spec": spec,
    });
    let text = doc.to_string();
    let valid = policy::load::from_str(&text, "imported policy").map_err(ImportError::Invalid)?;
    Ok(Imported {
        policy: valid.policy,
        warnings,
        source,
    })
}
