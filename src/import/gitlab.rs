//! GitLab Runner's `config.toml` (`[runners.kubernetes]`) → a `gitlab-runner` policy.
//!
//! Read from GitLab Runner's source (`executors/kubernetes/kubernetes.go`,
//! `common/config.go`), not its docs. For each container's user and group the runner takes
//! the container's own admin context first, then `pod_security_context`, and only then the
//! job's image user (checked against the allowlists); every other admin value is simply set.
//!
//! | config.toml | policy |
//! |---|---|
//! | `allowed_users`, `allowed_groups` | `allowedUsers`, `allowedGroups` (`onViolation: warn`, as GitLab); exact numeric IDs only, like GitLab: other entries are skipped with a warning |
//! | `pod_security_context` | `pod.enforced` (above the job's user, below the container sections) |
//! | `build_container_security_context` | `build.enforced` (also `init-build-uid-gid-collector`) |
//! | `helper_container_security_context` | `helper.enforced` |
//! | `service_container_security_context` | `service.enforced` |
//! | `init_permissions_container_security_context` | `init.enforced` |
//! | `privileged`, `allow_privilege_escalation`, `cap_add`, `cap_drop` | `containers.enforced` (GitLab drops `NET_RAW` unless `cap_add` has it; a capability in both `cap_add` and `cap_drop` is dropped) |

use std::{collections::BTreeMap, ops::Range};

use crate::{
    json,
    value::{Map, Value},
};

use super::{ImportError, Imported, finish};
use crate::policy::allowlist::MAX_ID;

/// The container sections and the role each becomes.
const ROLE_SECTIONS: [(&str, &str); 4] = [
    ("build_container_security_context", "build"),
    ("helper_container_security_context", "helper"),
    ("service_container_security_context", "service"),
    ("init_permissions_container_security_context", "init"),
];

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    /// Where each key of the chosen runner is (`runners.kubernetes.allowed_users[1]`).
    spans: BTreeMap<String, Range<usize>>,
    warnings: Vec<String>,
}

impl Ctx<'_> {
    /// `file:line:col` of a key path, or the file when it is not found.
    fn at(&self, path: &str) -> String {
        match self.spans.get(path) {
            Some(span) => {
                let (line, col) = line_col(self.text, span.start);
                format!("{}:{line}:{col}", self.file)
            }
            None => self.file.to_string(),
        }
    }

    fn bad(&self, path: &str, expected: &str) -> ImportError {
        ImportError::Syntax {
            location: self.at(path),
            message: format!("{path}: expected {expected}"),
        }
    }

    fn int(&self, v: &toml::Value, path: &str) -> Result<Value, ImportError> {
        v.as_integer()
            .map(Value::from)
            .ok_or_else(|| self.bad(path, "an integer"))
    }

    fn boolean(&self, v: &toml::Value, path: &str) -> Result<Value, ImportError> {
        v.as_bool()
            .map(Value::from)
            .ok_or_else(|| self.bad(path, "true or false"))
    }

    fn string(&self, v: &toml::Value, path: &str) -> Result<String, ImportError> {
        v.as_str()
            .map(str::to_string)
            .ok_or_else(|| self.bad(path, "a string"))
    }

    /// A list of strings, as GitLab Runner reads it (a bare integer fails its config load).
    fn strings(&self, v: &toml::Value, path: &str) -> Result<Vec<String>, ImportError> {
        let items = v.as_array().ok_or_else(|| self.bad(path, "a list of strings"))?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| match item {
                toml::Value::String(s) => Ok(s.clone()),
                _ => Err(self.bad(
                    &format!("{path}[{i}]"),
                    "a string (GitLab Runner reads a list of strings)",
                )),
            })
            .collect()
    }

    /// `allowed_users` / `allowed_groups` as GitLab Runner matches them: an entry is an exact
    /// numeric ID (Go's `strconv.ParseInt`); GitLab logs and skips any other entry. ciguard
    /// skips them too, with a warning naming the entry, and never lets a spelling other
    /// than `"0"` mean root. `None` for an empty list (GitLab: any non-root ID).
    fn allowlist(
        &mut self,
        v: &toml::Value,
        path: &str,
        kind: &str,
    ) -> Result<Option<Vec<String>>, ImportError> {
        let entries = self.strings(v, path)?;
        if entries.is_empty() {
            return Ok(None);
        }
        let mut kept: Vec<String> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let at = format!("{}: {path}[{i}] \"{entry}\"", self.at(&format!("{path}[{i}]")));
            match go_parse_int(entry) {
                None => self.warnings.push(format!(
                    "{at} is not a numeric {kind} ID; GitLab Runner ignores it, so ciguard skips it (IDs are exact numbers, GitLab has no ranges)"
                )),
                Some(0) if entry != "0" => self.warnings.push(format!(
                    "{at} means root to GitLab Runner; ciguard admits root only by the literal \"0\" and skips this entry"
                )),
                Some(n) if !(0..=MAX_ID).contains(&n) => self.warnings.push(format!(
                    "{at} can never match a {kind} ID (IDs are 0…{MAX_ID}); skipped"
                )),
                Some(n) => {
                    let canonical = n.to_string();
                    if &canonical != entry {
                        self.warnings.push(format!(
                            "{at} is not written canonically; imported as \"{canonical}\", the ID GitLab Runner reads"
                        ));
                    }
                    if !kept.contains(&canonical) {
                        kept.push(canonical);
                    }
                }
            }
        }
        if kept.is_empty() {
            // GitLab: a non-empty list that matches nothing allows no job ID at all.
            self.warnings.push(format!(
                "{path} has no usable entry: GitLab Runner then allows no job {kind} ID, and so does the imported list"
            ));
            kept.push(format!("!1-{MAX_ID}"));
        }
        Ok(Some(kept))
    }

    fn table<'t>(&self, v: &'t toml::Value, path: &str) -> Result<&'t toml::Table, ImportError> {
        v.as_table().ok_or_else(|| self.bad(path, "a table"))
    }

    /// `seccomp_profile_type` and friends → a profile object.
    fn profile(&self, t: &toml::Table, path: &str, prefix: &str) -> Result<Option<Value>, ImportError> {
        let Some(kind) = t.get(&format!("{prefix}_type")) else {
            return Ok(None);
        };
        let kind = self.string(kind, &format!("{path}.{prefix}_type"))?;
        let canonical = match kind.to_ascii_lowercase().replace(['_', '-', '/'], "").as_str() {
            "runtimedefault" => "RuntimeDefault",
            "localhost" => "Localhost",
            "unconfined" => "Unconfined",
            _ => {
                return Err(self.bad(
                    &format!("{path}.{prefix}_type"),
                    "RuntimeDefault, Localhost or Unconfined",
                ));
            }
        };
        let mut p = json!({"type": canonical});
        for key in [
            format!("{prefix}_localhost_profile"),
            format!("{prefix}_localhost"),
        ] {
            if let Some(l) = t.get(&key) {
                p["localhostProfile"] = json!(self.string(l, &format!("{path}.{key}"))?);
            }
        }
        Ok(Some(p))
    }

    /// A GitLab security-context table → a Kubernetes one (camelCase).
    fn context(&mut self, t: &toml::Table, path: &str, pod: bool) -> Result<Map<String, Value>, ImportError> {
        let mut out = Map::new();
        for (key, v) in t {
            let at = format!("{path}.{key}");
            let (name, value) = match key.as_str() {
                "run_as_user" => ("runAsUser", self.int(v, &at)?),
                "run_as_group" => ("runAsGroup", self.int(v, &at)?),
                "run_as_non_root" => ("runAsNonRoot", self.boolean(v, &at)?),
                "fs_group" if pod => ("fsGroup", self.int(v, &at)?),
                "fs_group_change_policy" if pod => ("fsGroupChangePolicy", json!(self.string(v, &at)?)),
                "supplemental_groups" if pod => {
                    let ids = v.as_array().ok_or_else(|| self.bad(&at, "a list of integers"))?;
                    (
                        "supplementalGroups",
                        Value::Array(ids.iter().map(|i| self.int(i, &at)).collect::<Result<_, _>>()?),
                    )
                }
                "privileged" if !pod => ("privileged", self.boolean(v, &at)?),
                "allow_privilege_escalation" if !pod => ("allowPrivilegeEscalation", self.boolean(v, &at)?),
                "read_only_root_filesystem" if !pod => ("readOnlyRootFilesystem", self.boolean(v, &at)?),
                "proc_mount" if !pod => {
                    let s = self.string(v, &at)?;
                    let pm = match s.trim().to_ascii_lowercase().as_str() {
                        "default" => "Default",
                        "unmasked" => "Unmasked",
                        _ => return Err(self.bad(&at, "default or unmasked")),
                    };
                    ("procMount", json!(pm))
                }
                "capabilities" if !pod => {
                    let c = self.table(v, &at)?;
                    let mut caps = Map::new();
                    for (k, list) in c {
                        match k.as_str() {
                            "add" | "drop" => {
                                caps.insert(k.clone(), json!(self.strings(list, &format!("{at}.{k}"))?));
                            }
                            other => self.warnings.push(format!(
                                "{at}.{other} is not a capabilities key; it was not imported"
                            )),
                        }
                    }
                    ("capabilities", Value::Object(caps))
                }
                "selinux_type" => ("seLinuxOptions", json!({"type": self.string(v, &at)?})),
                "se_linux_options" => {
                    let o = self.table(v, &at)?;
                    let mut m = Map::new();
                    for (k, s) in o {
                        match k.as_str() {
                            "level" | "role" | "type" | "user" => {
                                m.insert(k.clone(), json!(self.string(s, &format!("{at}.{k}"))?));
                            }
                            other => self.warnings.push(format!(
                                "{at}.{other} is not an SELinux option; it was not imported"
                            )),
                        }
                    }
                    ("seLinuxOptions", Value::Object(m))
                }
                k if k.starts_with("seccomp_profile") || k.starts_with("app_armor_profile") => continue,
                other => {
                    self.warnings.push(format!(
                        "{path}.{other} has no ciguard equivalent; it was not imported"
                    ));
                    continue;
                }
            };
            let level = if pod { "pod" } else { "containers" };
            super::check_field(&format!("{}: {at}", self.at(&at)), level, name, &value)?;
            out.insert(name.into(), value);
        }
        if let Some(p) = self.profile(t, path, "seccomp_profile")? {
            out.insert("seccompProfile".into(), p);
        }
        if let Some(p) = self.profile(t, path, "app_armor_profile")? {
            out.insert("appArmorProfile".into(), p);
        }
        Ok(out)
    }
}

/// Imports one runner of a `config.toml`. With several `[[runners]]`, `runner` must name one.
pub fn import(text: &str, file: &str, runner: Option<&str>) -> Result<Imported, ImportError> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let (line, col) = e.span().map_or((1, 1), |s| line_col(text, s.start));
        ImportError::Syntax {
            location: format!("{file}:{line}:{col}"),
            message: e.message().to_string(),
        }
    })?;
    let runners: Vec<&toml::Table> = table
        .get("runners")
        .and_then(toml::Value::as_array)
        .map(|a| a.iter().filter_map(toml::Value::as_table).collect())
        .unwrap_or_default();
    let name_of = |i: usize, r: &toml::Table| {
        r.get("name")
            .and_then(toml::Value::as_str)
            .map_or(format!("#{}", i + 1), str::to_string)
    };
    let names: Vec<String> = runners.iter().enumerate().map(|(i, r)| name_of(i, r)).collect();
    let listing = || {
        names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (name, chosen) = match (runner, runners.len()) {
        (_, 0) => return Err(ImportError::Selection(format!("{file}: no [[runners]] found"))),
        (None, 1) => (names[0].clone(), runners[0]),
        (None, _) => {
            return Err(ImportError::Selection(format!(
                "{file} has {} runners, choose one with --runner: {}",
                runners.len(),
                listing()
            )));
        }
        (Some(want), _) => match names.iter().position(|n| n == want) {
            Some(i) => (names[i].clone(), runners[i]),
            None => {
                return Err(ImportError::Selection(format!(
                    "{file}: no runner named \"{want}\"; runners: {}",
                    listing()
                )));
            }
        },
    };
    let kube = chosen
        .get("kubernetes")
        .and_then(toml::Value::as_table)
        .ok_or_else(|| {
            ImportError::Selection(format!(
                "{file}: runner \"{name}\" has no [runners.kubernetes] section"
            ))
        })?;

    let index = names.iter().position(|n| *n == name).unwrap_or(0);
    let mut cx = Ctx {
        file,
        text,
        spans: key_spans(text, index),
        warnings: Vec::new(),
    };
    let mut spec = json!({"preset": "gitlab-runner", "onViolation": "warn"});
    let base = "runners.kubernetes";
    for (key, out, kind) in [
        ("allowed_users", "allowedUsers", "user"),
        ("allowed_groups", "allowedGroups", "group"),
    ] {
        if let Some(v) = kube.get(key)
            && let Some(list) = cx.allowlist(v, &format!("{base}.{key}"), kind)?
        {
            spec[out] = json!(list);
        }
    }
    // GitLab Runner sets pod_security_context on the pod whatever the job asks, and takes
    // its user and group before the job's image user for every container: enforced.
    if let Some(v) = kube.get("pod_security_context") {
        let at = format!("{base}.pod_security_context");
        let t = cx.table(v, &at)?;
        let ctx = cx.context(t, &at, true)?;
        if !ctx.is_empty() {
            spec["pod"]["enforced"] = Value::Object(ctx);
        }
    }

    // Instance-wide container settings, as GitLab applies them to every container.
    let mut containers = Map::new();
    for (key, name) in [
        ("privileged", "privileged"),
        ("allow_privilege_escalation", "allowPrivilegeEscalation"),
    ] {
        if let Some(v) = kube.get(key) {
            containers.insert(name.into(), cx.boolean(v, &format!("{base}.{key}"))?);
        }
    }
    let cap_add = kube
        .get("cap_add")
        .map(|v| cx.strings(v, &format!("{base}.cap_add")))
        .transpose()?
        .unwrap_or_default();
    let cap_drop = kube
        .get("cap_drop")
        .map(|v| cx.strings(v, &format!("{base}.cap_drop")))
        .transpose()?
        .unwrap_or_default();
    // As GitLab's getCapabilities: NET_RAW dropped by default, cap_add turns a name on,
    // cap_drop turns it off last (so the drop wins over an add of the same name).
    let mut drop: Vec<String> = Vec::new();
    if !cap_add.iter().any(|c| c == "NET_RAW") || cap_drop.iter().any(|c| c == "NET_RAW") {
        drop.push("NET_RAW".into());
    }
    for c in &cap_drop {
        if !drop.contains(c) {
            drop.push(c.clone());
        }
    }
    let mut add: Vec<String> = Vec::new();
    for c in cap_add {
        if cap_drop.contains(&c) {
            cx.warnings.push(format!(
                "{base}.cap_add and {base}.cap_drop both name {c}: the drop wins, as in GitLab Runner"
            ));
        } else if !add.contains(&c) {
            add.push(c);
        }
    }
    let mut caps = Map::new();
    if !drop.is_empty() {
        caps.insert("drop".into(), json!(drop));
    }
    if !add.is_empty() {
        caps.insert("add".into(), json!(add));
    }
    if !caps.is_empty() {
        containers.insert("capabilities".into(), Value::Object(caps));
    }
    if !containers.is_empty() {
        spec["containers"]["enforced"] = Value::Object(containers);
    }

    for (key, role) in ROLE_SECTIONS {
        let Some(v) = kube.get(key) else { continue };
        let at = format!("{base}.{key}");
        let t = cx.table(v, &at)?;
        let ctx = cx.context(t, &at, false)?;
        // GitLab replaces the instance-wide drop list with the section's; ciguard drops
        // the union. That only differs when the section neither drops ALL nor the rest.
        if let Some(own) = ctx
            .get("capabilities")
            .and_then(|c| c.get("drop"))
            .and_then(Value::as_array)
        {
            let drops_all = own.iter().any(|c| c == "ALL");
            let missing: Vec<&String> = drop
                .iter()
                .filter(|d| !own.iter().any(|c| c == d.as_str()))
                .collect();
            if !drops_all && !missing.is_empty() {
                cx.warnings.push(format!(
                    "{at}.capabilities.drop replaces the instance-wide drop list in GitLab Runner; ciguard drops the union, so {} stay dropped for {role} containers",
                    missing.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")
                ));
            }
        }
        if !ctx.is_empty() {
            spec[role]["enforced"] = Value::Object(ctx);
        }
    }
    if kube.get("pod_spec").is_some() {
        cx.warnings.push(format!(
            "{base}.pod_spec patches are not imported: review them, and express any securityContext they set in the policy"
        ));
    }
    if let Some(annotations) = kube.get("pod_annotations").and_then(toml::Value::as_table) {
        for key in annotations
            .keys()
            .filter(|k| k.contains("seccomp") || k.contains("apparmor"))
        {
            cx.warnings.push(format!(
                "{base}.pod_annotations.\"{key}\" is a security annotation; ciguard sets seccompProfile/appArmorProfile fields instead and does not import it"
            ));
        }
    }
    finish(&name, spec, cx.warnings, format!("{file} (runner \"{name}\")"))
}

/// Go's `strconv.ParseInt(s, 10, 64)`: an optional sign and decimal digits.
fn go_parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok()
}

/// Where every key and list item of runner number `index` is, by dotted path
/// (`runners.kubernetes.cap_add[0]`); empty when the text does not parse.
fn key_spans(text: &str, index: usize) -> BTreeMap<String, Range<usize>> {
    use toml::de::{DeTable, DeValue};
    fn walk(v: &DeValue<'_>, span: Range<usize>, path: String, out: &mut BTreeMap<String, Range<usize>>) {
        match v {
            DeValue::Table(t) => {
                for (k, v) in t.iter() {
                    walk(v.get_ref(), v.span(), format!("{path}.{}", k.get_ref()), out);
                }
            }
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item.get_ref(), item.span(), format!("{path}[{i}]"), out);
                }
            }
            _ => {}
        }
        out.insert(path, span);
    }
    let mut out = BTreeMap::new();
    let Ok(table) = DeTable::parse(text) else {
        return out;
    };
    let runner = table
        .get_ref()
        .iter()
        .find(|(k, _)| k.get_ref() == "runners")
        .and_then(|(_, v)| match v.get_ref() {
            DeValue::Array(items) => items.get(index),
            _ => None,
        });
    if let Some(r) = runner {
        walk(r.get_ref(), r.span(), "runners".into(), &mut out);
    }
    out
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_runners_need_a_choice() {
        let text = "[[runners]]\nname = \"a\"\n[[runners]]\nname = \"b\"\n";
        let e = import(text, "c.toml", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml has 2 runners, choose one with --runner: \"a\", \"b\""
        );
        let e = import(text, "c.toml", Some("z")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml: no runner named \"z\"; runners: \"a\", \"b\""
        );
        let e = import(text, "c.toml", Some("b")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml: runner \"b\" has no [runners.kubernetes] section"
        );
    }

    #[test]
    fn syntax_error_has_position() {
        let e = import("[[runners]]\nname = \n", "c.toml", None).unwrap_err();
        assert!(e.to_string().starts_with("c.toml:2:"), "{e}");
    }

    #[test]
    fn maps_every_section() {
        let text = r#"
[[runners]]
  name = "k8s"
  executor = "kubernetes"
  [runners.kubernetes]
    privileged = false
    cap_add = ["NET_BIND_SERVICE"]
    cap_drop = ["SYS_ADMIN"]
    allowed_users = ["1000-2000", "65534", "01000", "00", "wheel"]
    allowed_groups = ["1000"]
    [runners.kubernetes.pod_security_context]
      run_as_non_root = true
      fs_group = 1000
      supplemental_groups = [2000]
      fs_group_change_policy = "OnRootMismatch"
      seccomp_profile_type = "RuntimeDefault"
    [runners.kubernetes.build_container_security_context]
      run_as_user = 65534
      proc_mount = "unmasked"
      selinux_type = "container_t"
      [runners.kubernetes.build_container_security_context.capabilities]
        add = ["CHOWN"]
    [runners.kubernetes.helper_container_security_context]
      run_as_user = 1000
      bogus = 1
"#;
        let i = import(text, "c.toml", None).unwrap();
        let y = crate::source::to_yaml(&i.policy).unwrap();
        assert!(y.contains("preset: gitlab-runner"), "{y}");
        let s = &i.policy.spec;
        assert_eq!(
            s.allowed_users.as_deref(),
            Some(&["65534".to_string(), "1000".to_string()][..])
        );
        let pod = s.pod.enforced.as_ref().unwrap();
        assert_eq!(pod.fs_group, Some(1000));
        assert_eq!(pod.seccomp_profile.as_ref().unwrap().type_, "RuntimeDefault");
        let c = s.containers.enforced.as_ref().unwrap();
        assert_eq!(
            c.capabilities.as_ref().unwrap().drop,
            Some(vec!["NET_RAW".into(), "SYS_ADMIN".into()])
        );
        assert_eq!(
            c.capabilities.as_ref().unwrap().add,
            Some(vec!["NET_BIND_SERVICE".into()])
        );
        let b = s.build.enforced.as_ref().unwrap();
        assert_eq!(b.proc_mount.as_deref(), Some("Unmasked"));
        assert_eq!(
            b.se_linux_options.as_ref().unwrap().type_.as_deref(),
            Some("container_t")
        );
        assert_eq!(s.helper.enforced.as_ref().unwrap().run_as_user, Some(1000));
        assert_eq!(
            i.warnings,
            vec![
                "c.toml:9:22: runners.kubernetes.allowed_users[0] \"1000-2000\" is not a numeric user ID; GitLab Runner ignores it, so ciguard skips it (IDs are exact numbers, GitLab has no ranges)",
                "c.toml:9:44: runners.kubernetes.allowed_users[2] \"01000\" is not written canonically; imported as \"1000\", the ID GitLab Runner reads",
                "c.toml:9:53: runners.kubernetes.allowed_users[3] \"00\" means root to GitLab Runner; ciguard admits root only by the literal \"0\" and skips this entry",
                "c.toml:9:59: runners.kubernetes.allowed_users[4] \"wheel\" is not a numeric user ID; GitLab Runner ignores it, so ciguard skips it (IDs are exact numbers, GitLab has no ranges)",
                "runners.kubernetes.helper_container_security_context.bogus has no ciguard equivalent; it was not imported"
            ]
        );
    }

    #[test]
    fn type_errors_name_the_key() {
        let text =
            "[[runners]]\n[runners.kubernetes.build_container_security_context]\nrun_as_user = \"x\"\n";
        let e = import(text, "c.toml", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "c.toml:3:15: runners.kubernetes.build_container_security_context.run_as_user: expected an integer"
        );
    }
}
