//! Woodpecker's Kubernetes backend settings → a `woodpecker` policy.
//!
//! - `WOODPECKER_BACKEND_K8S_SECCTX_NONROOT=true` → `pod.enforced.runAsNonRoot: true`
//! - `WOODPECKER_BACKEND_K8S_DEFAULT_SECCTX` (JSON) → `pod.default` / `containers.default`
//! - `WOODPECKER_BACKEND_K8S_ENFORCED_SECCTX` (JSON) → `pod.enforced` / `containers.enforced`
//!
//! Each JSON field goes to the level Kubernetes defines it at (see
//! [`super::split_levels`]).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{ImportError, Imported, finish, split_levels};

/// `WOODPECKER_BACKEND_K8S_SECCTX_NONROOT`
pub const NONROOT: &str = "WOODPECKER_BACKEND_K8S_SECCTX_NONROOT";
/// `WOODPECKER_BACKEND_K8S_DEFAULT_SECCTX`
pub const DEFAULT: &str = "WOODPECKER_BACKEND_K8S_DEFAULT_SECCTX";
/// `WOODPECKER_BACKEND_K8S_ENFORCED_SECCTX`
pub const ENFORCED: &str = "WOODPECKER_BACKEND_K8S_ENFORCED_SECCTX";

/// Reads `KEY=VALUE` lines (`#` comments, optional `export `, values optionally in
/// single or double quotes).
pub fn parse_env_file(text: &str, path: &str) -> Result<BTreeMap<String, String>, ImportError> {
    let mut vars = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            return Err(ImportError::Syntax {
                location: format!("{path}:{}:1", i + 1),
                message: "expected KEY=VALUE".into(),
            });
        };
        let value = value.trim();
        let unquoted = ['\'', '"']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(value);
        vars.insert(key.trim().to_string(), unquoted.to_string());
    }
    Ok(vars)
}

/// Parses one JSON security-context variable, naming the variable and position on error.
fn context(var: &str, text: &str) -> Result<Map<String, Value>, ImportError> {
    let value: Value = serde_json::from_str(text).map_err(|e| ImportError::Syntax {
        location: format!("{var}: line {} column {}", e.line(), e.column()),
        message: crate::source::json_error(&e, var).message,
    })?;
    match value {
        Value::Object(m) => Ok(m),
        _ => Err(ImportError::Syntax {
            location: var.to_string(),
            message: "expected a JSON object (a security context)".into(),
        }),
    }
}

/// Imports Woodpecker's settings from a map of environment variables.
pub fn import(vars: &BTreeMap<String, String>, source: &str) -> Result<Imported, ImportError> {
    let mut warnings = Vec::new();
    let mut spec = json!({"preset": "woodpecker"});
    let mut nonroot = Map::new();
    if let Some(v) = vars.get(NONROOT) {
        match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => {
                nonroot.insert("runAsNonRoot".into(), json!(true));
            }
            "false" | "0" | "" => {}
            other => {
                return Err(ImportError::Syntax {
                    location: NONROOT.into(),
                    message: format!("\"{other}\" is not a boolean, expected true or false"),
                });
            }
        }
    }
    for (var, layer) in [(DEFAULT, "default"), (ENFORCED, "enforced")] {
        let ctx = match vars.get(var).filter(|t| !t.trim().is_empty()) {
            Some(text) => context(var, text)?,
            None => Map::new(),
        };
        let (mut pod, containers, unknown) = split_levels(&ctx);
        if let Some(key) = unknown.first() {
            return Err(ImportError::Syntax {
                location: var.into(),
                message: format!("unknown security-context field \"{key}\""),
            });
        }
        if layer == "enforced" {
            for (k, v) in std::mem::take(&mut nonroot) {
                match pod.get(&k) {
                    Some(existing) if existing != &v => warnings.push(format!(
                        "{NONROOT} sets runAsNonRoot true but {ENFORCED} sets it to {existing}: the JSON is kept"
                    )),
                    _ => {
                        pod.insert(k, v);
                    }
                }
            }
        }
        let mut section = |key: &str, ctx: Map<String, Value>| {
            if !ctx.is_empty() {
                spec[key][layer] = Value::Object(ctx);
            }
        };
        section("pod", pod);
        section("containers", containers);
    }
    if [NONROOT, DEFAULT, ENFORCED]
        .iter()
        .all(|v| !vars.contains_key(*v))
    {
        warnings.push(format!(
            "none of {NONROOT}, {DEFAULT}, {ENFORCED} is set: the policy sets nothing"
        ));
    }
    finish("woodpecker", spec, warnings, source.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn documented_example_splits_levels() {
        let i = import(
            &vars(&[
                (DEFAULT, r#"{"runAsUser":1000,"runAsGroup":1000,"fsGroup":1000,"fsGroupChangePolicy":"OnRootMismatch"}"#),
                (
                    ENFORCED,
                    r#"{"privileged":false,"runAsNonRoot":true,"allowPrivilegeEscalation":false,"seccompProfile":{"type":"RuntimeDefault"},"capabilities":{"drop":["ALL"]}}"#,
                ),
            ]),
            "env",
        )
        .unwrap();
        let s = &i.policy.spec;
        assert_eq!(s.pod.default.as_ref().unwrap().run_as_user, Some(1000));
        assert_eq!(s.pod.enforced.as_ref().unwrap().run_as_non_root, Some(true));
        assert_eq!(s.containers.enforced.as_ref().unwrap().privileged, Some(false));
        assert!(i.warnings.is_empty());
    }

    #[test]
    fn nonroot_alone() {
        let i = import(&vars(&[(NONROOT, "true")]), "env").unwrap();
        assert_eq!(
            i.policy.spec.pod.enforced.as_ref().unwrap().run_as_non_root,
            Some(true)
        );
    }

    #[test]
    fn invalid_json_names_variable_and_position() {
        let e = import(&vars(&[(ENFORCED, "{\"privileged\": fals}")]), "env").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("{ENFORCED}: line 1 column 20: expected ident")
        );
    }

    #[test]
    fn unknown_field_is_an_error() {
        let e = import(&vars(&[(DEFAULT, "{\"runAsUsr\": 1}")]), "env").unwrap_err();
        assert!(
            e.to_string()
                .contains("unknown security-context field \"runAsUsr\""),
            "{e}"
        );
    }

    #[test]
    fn env_file() {
        let v = parse_env_file("# c\nexport A='{\"x\": 1}'\nB=\"2\"\nC=3\n", "f").unwrap();
        assert_eq!(v["A"], "{\"x\": 1}");
        assert_eq!(v["B"], "2");
        assert!(parse_env_file("nonsense\n", "f").is_err());
    }
}
