//! Woodpecker's Kubernetes backend settings → a `woodpecker` policy.
//!
//! Read from Woodpecker's source (`pipeline/backend/kubernetes/`, and PR #6310 for
//! `DEFAULT_SECCTX`/`ENFORCED_SECCTX`), not its docs:
//!
//! - `WOODPECKER_BACKEND_K8S_SECCTX_NONROOT=true` → `pod.enforced.runAsNonRoot: true`
//! - `WOODPECKER_BACKEND_K8S_DEFAULT_SECCTX` → `pod.default` / `containers.default`;
//!   unset, Woodpecker's built-in default `fsGroup: 1000`
//! - `WOODPECKER_BACKEND_K8S_ENFORCED_SECCTX` → `pod.enforced` / `containers.enforced`
//! - `WOODPECKER_BACKEND_K8S_PERMISSION_INIT_IMAGE` → `workdirInit.image`
//! - always `allowRootInUserNamespace: true`: a step with `hostUsers: false` may ask for
//!   user, group and `fsGroup` 0 (Woodpecker's main branch)
//!
//! The two contexts are YAML or JSON (Woodpecker reads them with `sigs.k8s.io/yaml`).
//! Woodpecker knows ten keys, matched without regard to case as Go's JSON decoder does
//! (`apparmorProfile` is its spelling of `appArmorProfile`); each goes to the level
//! Woodpecker sets it at (see [`super::split_levels`]). Every key Woodpecker ignores, and
//! every other `WOODPECKER_BACKEND_K8S_*` variable that bears on security, is a warning.

use std::collections::BTreeMap;

use crate::{
    json,
    value::{Map, Value},
};

use super::{ImportError, Imported, finish, split_levels};

/// `WOODPECKER_BACKEND_K8S_SECCTX_NONROOT`
pub const NONROOT: &str = "WOODPECKER_BACKEND_K8S_SECCTX_NONROOT";
/// `WOODPECKER_BACKEND_K8S_DEFAULT_SECCTX`
pub const DEFAULT: &str = "WOODPECKER_BACKEND_K8S_DEFAULT_SECCTX";
/// `WOODPECKER_BACKEND_K8S_ENFORCED_SECCTX`
pub const ENFORCED: &str = "WOODPECKER_BACKEND_K8S_ENFORCED_SECCTX";
/// `WOODPECKER_BACKEND_K8S_PERMISSION_INIT_IMAGE`
pub const PERMISSION_INIT_IMAGE: &str = "WOODPECKER_BACKEND_K8S_PERMISSION_INIT_IMAGE";

/// Woodpecker's `SecurityContext` keys and their Kubernetes names.
const KEYS: [(&str, &str); 10] = [
    ("privileged", "privileged"),
    ("runAsNonRoot", "runAsNonRoot"),
    ("runAsUser", "runAsUser"),
    ("runAsGroup", "runAsGroup"),
    ("fsGroup", "fsGroup"),
    ("fsGroupChangePolicy", "fsGroupChangePolicy"),
    ("seccompProfile", "seccompProfile"),
    ("apparmorProfile", "appArmorProfile"),
    ("allowPrivilegeEscalation", "allowPrivilegeEscalation"),
    ("capabilities", "capabilities"),
];

/// Variables of the Kubernetes backend that do not bear on security contexts.
const NOT_SECURITY: [&str; 17] = [
    "WOODPECKER_BACKEND_K8S_NAMESPACE",
    "WOODPECKER_BACKEND_K8S_NAMESPACE_PER_ORGANIZATION",
    "WOODPECKER_BACKEND_K8S_CLUSTER_DOMAIN",
    "WOODPECKER_BACKEND_K8S_VOLUME_SIZE",
    "WOODPECKER_BACKEND_K8S_STORAGE_CLASS",
    "WOODPECKER_BACKEND_K8S_STORAGE_RWX",
    "WOODPECKER_BACKEND_K8S_POD_LABELS",
    "WOODPECKER_BACKEND_K8S_POD_LABELS_ALLOW_FROM_STEP",
    "WOODPECKER_BACKEND_K8S_POD_NODE_SELECTOR",
    "WOODPECKER_BACKEND_K8S_POD_NODE_SELECTOR_ALLOW_FROM_STEP",
    "WOODPECKER_BACKEND_K8S_POD_TOLERATIONS",
    "WOODPECKER_BACKEND_K8S_POD_TOLERATIONS_ALLOW_FROM_STEP",
    "WOODPECKER_BACKEND_K8S_POD_AFFINITY",
    "WOODPECKER_BACKEND_K8S_POD_AFFINITY_ALLOW_FROM_STEP",
    "WOODPECKER_BACKEND_K8S_PULL_SECRET_NAMES",
    "WOODPECKER_BACKEND_K8S_PRIORITY_CLASS",
    "WOODPECKER_BACKEND_K8S_STOP_TIMEOUT",
];

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

/// Parses one security-context variable (YAML or JSON), naming the variable and position
/// on error.
fn context(var: &str, text: &str) -> Result<Map<String, Value>, ImportError> {
    let value: Value = crate::source::from_str(text, var).map_err(|e| ImportError::Syntax {
        location: format!("{var}: line {} column {}", e.location.line, e.location.col),
        message: e.message,
    })?;
    match value {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        _ => Err(ImportError::Syntax {
            location: var.to_string(),
            message: "expected a mapping (a security context)".into(),
        }),
    }
}

/// Woodpecker's context → Kubernetes keys, as Woodpecker reads it: keys matched without
/// regard to case, only the ten it knows, only `capabilities.drop`, and only the values
/// it applies at this layer. Everything else is a warning.
fn woodpecker_keys(
    var: &str,
    layer: &str,
    ctx: Map<String, Value>,
    warnings: &mut Vec<String>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in ctx {
        let Some((_, name)) = KEYS.iter().find(|(k, _)| k.eq_ignore_ascii_case(&key)) else {
            warnings.push(format!(
                "{var}: Woodpecker ignores the key \"{key}\" (it knows {}); not imported",
                KEYS.map(|(k, _)| k).join(", ")
            ));
            continue;
        };
        let value = match (*name, value) {
            ("privileged", _) if layer == "default" => {
                warnings.push(format!(
                    "{var}: Woodpecker ignores a default \"privileged\" (only a privileged step, or the enforced context, makes a container privileged); not imported"
                ));
                continue;
            }
            ("capabilities", Value::Object(caps)) => {
                let mut kept = Map::new();
                for (k, v) in caps {
                    if k.eq_ignore_ascii_case("drop") {
                        kept.insert("drop".into(), v);
                    } else {
                        warnings.push(format!(
                            "{var}: Woodpecker ignores capabilities.{k} (it applies only drop); not imported"
                        ));
                    }
                }
                if kept.is_empty() {
                    continue;
                }
                Value::Object(kept)
            }
            ("seccompProfile" | "appArmorProfile", Value::Object(p)) => Value::Object(
                p.into_iter()
                    .map(|(k, v)| {
                        let k = match k.to_ascii_lowercase().as_str() {
                            "type" => "type".to_string(),
                            "localhostprofile" => "localhostProfile".to_string(),
                            _ => k,
                        };
                        (k, v)
                    })
                    .collect(),
            ),
            (_, v) => v,
        };
        if *name != key {
            warnings.push(format!(
                "{var}: \"{key}\" is Woodpecker's spelling of {name}; imported as {name}"
            ));
        }
        out.insert((*name).into(), value);
    }
    out
}

/// Imports Woodpecker's settings from a map of environment variables.
pub fn import(vars: &BTreeMap<String, String>, source: &str) -> Result<Imported, ImportError> {
    let mut warnings = Vec::new();
    // Woodpecker (main branch) lets a step with `hostUsers: false` run as root.
    let mut spec = json!({"preset": "woodpecker", "allowRootInUserNamespace": true});
    let mut nonroot = Map::new();
    if let Some(v) = vars.get(NONROOT) {
        match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "t" => {
                nonroot.insert("runAsNonRoot".into(), json!(true));
            }
            "false" | "0" | "f" | "" => {}
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
            Some(text) => woodpecker_keys(var, layer, context(var, text)?, &mut warnings),
            // Woodpecker's built-in default, replaced whole by DEFAULT_SECCTX.
            None if layer == "default" => Map::from_iter([("fsGroup".to_string(), json!(1000))]),
            None => Map::new(),
        };
        let (mut pod, containers, _) = split_levels(&ctx);
        for (level, part) in [("pod", &pod), ("containers", &containers)] {
            for (name, value) in part {
                super::check_field(var, level, name, value)?;
            }
        }
        if layer == "enforced" {
            // SECCTX_NONROOT sets the enforced runAsNonRoot after ENFORCED_SECCTX is read.
            for (k, v) in std::mem::take(&mut nonroot) {
                if let Some(existing) = pod.get(&k).filter(|e| **e != v) {
                    warnings.push(format!(
                        "{NONROOT} sets runAsNonRoot true over {ENFORCED}'s {existing}, as Woodpecker does"
                    ));
                }
                pod.insert(k, v);
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
    if let Some(image) = vars.get(PERMISSION_INIT_IMAGE).filter(|i| !i.trim().is_empty()) {
        spec["workdirInit"] = json!({"image": image.trim()});
    }
    for var in vars.keys().filter(|k| k.starts_with("WOODPECKER_BACKEND_K8S_")) {
        if [NONROOT, DEFAULT, ENFORCED, PERMISSION_INIT_IMAGE].contains(&var.as_str()) {
            continue;
        }
        let why = match var.trim_start_matches("WOODPECKER_BACKEND_K8S_") {
            "POD_ANNOTATIONS" | "POD_ANNOTATIONS_ALLOW_FROM_STEP" => {
                "pod annotations can carry seccomp/AppArmor profiles; ciguard sets seccompProfile/appArmorProfile fields and does not import annotations"
            }
            "RUNTIME_CLASS_ALLOW_FROM_STEP" => {
                "a step may choose its runtime class (a sandbox such as gVisor, or none); ciguard has no setting for runtime classes"
            }
            "SERVICE_ACCOUNT_NAME_ALLOW_FROM_STEP" => {
                "a step may choose its service account and so its API permissions; ciguard has no setting for service accounts"
            }
            "ALLOW_NATIVE_SECRETS" => {
                "a step may mount Kubernetes secrets of the namespace; ciguard has no setting for secrets"
            }
            _ if NOT_SECURITY.contains(&var.as_str()) => continue,
            _ => "ciguard does not know this variable",
        };
        warnings.push(format!("{var} is set: {why}; not imported"));
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
    fn unknown_key_is_a_warning_as_woodpecker_ignores_it() {
        let i = import(
            &vars(&[(DEFAULT, "{\"runAsUsr\": 1, \"readOnlyRootFilesystem\": true}")]),
            "env",
        )
        .unwrap();
        assert_eq!(i.warnings.len(), 2, "{:?}", i.warnings);
        for key in ["readOnlyRootFilesystem", "runAsUsr"] {
            let w = format!("Woodpecker ignores the key \"{key}\"");
            assert!(i.warnings.iter().any(|x| x.contains(&w)), "{:?}", i.warnings);
        }
        assert!(i.policy.spec.pod.default.is_none());
    }

    #[test]
    fn yaml_and_woodpecker_spellings() {
        let i = import(
            &vars(&[
                (ENFORCED, "apparmorProfile: {type: RuntimeDefault}\nRunAsNonRoot: true\ncapabilities: {drop: [ALL], add: [NET_ADMIN]}\n"),
                (PERMISSION_INIT_IMAGE, "registry.example/busybox:1"),
                ("WOODPECKER_BACKEND_K8S_RUNTIME_CLASS_ALLOW_FROM_STEP", "true"),
                ("WOODPECKER_BACKEND_K8S_NAMESPACE", "ci"),
            ]),
            "env",
        )
        .unwrap();
        let s = &i.policy.spec;
        let pod = s.pod.enforced.as_ref().unwrap();
        assert_eq!(pod.app_armor_profile.as_ref().unwrap().type_, "RuntimeDefault");
        assert_eq!(pod.run_as_non_root, Some(true));
        assert_eq!(
            s.workdir_init.as_ref().unwrap().image,
            "registry.example/busybox:1"
        );
        assert_eq!(
            s.pod.default.as_ref().unwrap().fs_group,
            Some(1000),
            "Woodpecker's built-in default"
        );
        let caps = s
            .containers
            .enforced
            .as_ref()
            .unwrap()
            .capabilities
            .as_ref()
            .unwrap();
        assert_eq!(caps.add, None);
        assert_eq!(i.warnings.len(), 4, "{:#?}", i.warnings);
        assert!(
            i.warnings
                .iter()
                .any(|w| w.contains("RUNTIME_CLASS_ALLOW_FROM_STEP is set"))
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
