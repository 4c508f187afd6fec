//! `ciguard lint`: validates a policy and proves it.
//!
//! Beyond the loader's errors (every one with file:line:column), lint looks for
//! contradictions and unreachable settings, and renders a probe pod per role through the
//! policy to show what its Pod Security Standards target would still reject, with the
//! policy key that would fix it.

use std::{collections::BTreeMap, fmt};

use crate::{json, value::Value};
use serde::Serialize;

use crate::{
    error::Location,
    merge,
    policy::{
        self, ContainerKind, PodFacts, PolicyError, PolicyErrors, Role, ValidPolicy,
        presets::{self, Probe},
        roles::Preset,
    },
    pss::{self, Evaluation, Level},
    source::LocationIndex,
    workload,
};

/// The kinds of finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// A value the loader rejects.
    Invalid,
    /// Enforced `runAsNonRoot: true` meets an enforced `runAsUser: 0`.
    RootConflict,
    /// An allowlist that admits no ID.
    EmptyAllowlist,
    /// A `roles` matcher no container can match.
    UnreachableMatcher,
    /// A default that an enforced value always hides.
    HiddenDefault,
    /// A probe pod rendered through the policy still fails its `pss` target.
    PssProbe,
    /// An exception that no container can match.
    UnreachableException,
    /// An exception's `exemptChecks` names a check ID Pod Security does not have.
    UnknownCheck,
    /// An exception, or one of its `exemptChecks`, that changes nothing.
    IneffectiveException,
}

impl Code {
    /// Every code.
    pub const ALL: [Code; 9] = [
        Code::Invalid,
        Code::RootConflict,
        Code::EmptyAllowlist,
        Code::UnreachableMatcher,
        Code::HiddenDefault,
        Code::PssProbe,
        Code::UnreachableException,
        Code::UnknownCheck,
        Code::IneffectiveException,
    ];

    /// The code as text.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Invalid => "invalid",
            Code::RootConflict => "root-conflict",
            Code::EmptyAllowlist => "empty-allowlist",
            Code::UnreachableMatcher => "unreachable-matcher",
            Code::HiddenDefault => "hidden-default",
            Code::PssProbe => "pss-probe",
            Code::UnreachableException => "unreachable-exception",
            Code::UnknownCheck => "unknown-check",
            Code::IneffectiveException => "ineffective-exception",
        }
    }

    /// What the code means.
    pub fn description(self) -> &'static str {
        match self {
            Code::Invalid => "a value the policy loader rejects",
            Code::RootConflict => {
                "enforced runAsNonRoot: true together with an enforced runAsUser: 0; the kubelet does not start such a container"
            }
            Code::EmptyAllowlist => "an allowlist that admits no ID: every job request is dropped or denied",
            Code::UnreachableMatcher => {
                "a roles matcher that no container name can match, or that an earlier matcher always wins over"
            }
            Code::HiddenDefault => "a default that an enforced value always hides",
            Code::PssProbe => {
                "a plain job pod rendered through the policy still fails the policy's pss target"
            }
            Code::UnreachableException => {
                "an exception that no container can match: no images, no roles, or only roles the preset never gives"
            }
            Code::UnknownCheck => {
                "an exception exempts from a Pod Security check ID that does not exist; nothing is exempted"
            }
            Code::IneffectiveException => {
                "an exception that changes nothing: no allow and no exemptChecks, or a check that judges only the pod"
            }
        }
    }
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The policy does something the author cannot have meant.
    Error,
    /// Dead or surprising configuration.
    Warning,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Its kind.
    pub code: Code,
    /// How bad.
    pub severity: Severity,
    /// What is wrong.
    pub message: String,
    /// Where, when it has a place in the file.
    pub location: Option<Location>,
    /// How to fix it.
    pub help: Option<String>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}[{}]: {}", self.code.as_str(), self.message)?;
        if let Some(l) = &self.location {
            write!(f, "\n  --> {l}")?;
        }
        if let Some(h) = &self.help {
            write!(f, "\n  = help: {h}")?;
        }
        Ok(())
    }
}

/// Lints policy text. `Err` when the text cannot be read as YAML at all; every other
/// problem is a finding.
pub fn lint(text: &str, file: &str) -> Result<Vec<Finding>, PolicyErrors> {
    let policy = match policy::load::from_str(text, file) {
        Ok(p) => p,
        Err(errors) => {
            if crate::source::from_str::<Value>(text, file).is_err() {
                return Err(errors);
            }
            return Ok(errors.0.into_iter().map(invalid).collect());
        }
    };
    let index = LocationIndex::build(text);
    let at = |path: &str| {
        let (line, col) = index.key_or_ancestor(path);
        Some(Location {
            file: file.to_string(),
            line,
            col,
        })
    };
    let mut findings = Vec::new();
    root_conflicts(&policy, &at, &mut findings);
    empty_allowlists(&policy, &at, &mut findings);
    unreachable_matchers(&policy, &at, &mut findings);
    hidden_defaults(&policy, &at, &mut findings);
    pss_probes(&policy, &mut findings);
    exceptions(&policy, &at, &mut findings);
    Ok(findings)
}

fn invalid(e: PolicyError) -> Finding {
    let (location, message, help) = match e {
        PolicyError::Syntax(s) => {
            let help = type_help(&s.message);
            (Some(s.location), s.message, help)
        }
        PolicyError::Invalid { location, message } => (Some(location), message, None),
        PolicyError::Explained {
            location,
            message,
            help,
        } => (Some(location), message, Some(help)),
        other => (None, other.to_string(), None),
    };
    Finding {
        code: Code::Invalid,
        severity: Severity::Error,
        message,
        location,
        help,
    }
}

/// Help for a value of the wrong type (YAML: `invalid i64`; JSON: `invalid type: string
/// "7", expected i64`): what the reader expects, and that it never converts text.
fn type_help(message: &str) -> Option<String> {
    let expected_type = match message.strip_prefix("invalid type: ") {
        Some(rest) => rest.rsplit(", expected ").next()?,
        None => message.strip_prefix("invalid ")?,
    };
    let first = expected_type.split_whitespace().next()?;
    let expected = if matches!(first, "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32" | "u64") {
        "a whole number, e.g. 1000"
    } else if matches!(first, "bool" | "boolean") || expected_type.starts_with("a boolean") {
        "true or false"
    } else {
        return None;
    };
    Some(format!(
        "expected {expected}, written plainly: quoted text, `!!str` tags, floats and other spellings are not converted"
    ))
}

type At<'a> = &'a dyn Fn(&str) -> Option<Location>;
type Ctx = crate::value::Map<String, Value>;

/// The enforced sections, highest first, with their policy keys.
fn enforced_for(policy: &ValidPolicy, role: Role) -> [(String, &crate::value::Map<String, Value>); 3] {
    [
        (format!("{role}.enforced"), &policy.role(role).enforced),
        ("containers.enforced".into(), &policy.containers.enforced),
        ("pod.enforced".into(), &policy.pod.enforced),
    ]
}

fn root_conflicts(policy: &ValidPolicy, at: At<'_>, out: &mut Vec<Finding>) {
    for role in Role::ALL {
        let sections = enforced_for(policy, role);
        let first = |field: &str| sections.iter().find(|(_, ctx)| ctx.contains_key(field));
        let (Some((user_key, user)), Some((nonroot_key, nonroot))) =
            (first("runAsUser"), first("runAsNonRoot"))
        else {
            continue;
        };
        if user["runAsUser"] == json!(0) && nonroot["runAsNonRoot"] == json!(true) {
            out.push(Finding {
                code: Code::RootConflict,
                severity: Severity::Error,
                message: format!(
                    "{user_key}.runAsUser 0 and {nonroot_key}.runAsNonRoot true: {role} containers cannot start as both"
                ),
                location: at(&format!("/spec/{}/runAsUser", user_key.replace('.', "/"))),
                help: Some("enforce a non-zero runAsUser, or do not enforce runAsNonRoot for this role".into()),
            });
        }
    }
}

fn empty_allowlists(policy: &ValidPolicy, at: At<'_>, out: &mut Vec<Finding>) {
    for (key, list) in [
        ("allowedUsers", &policy.allowed_users),
        ("allowedGroups", &policy.allowed_groups),
    ] {
        if let Some(set) = list
            && set.admits_nothing()
        {
            out.push(Finding {
                code: Code::EmptyAllowlist,
                severity: Severity::Error,
                message: format!("{key} {set} admits no ID: every job request for it is dropped or denied"),
                location: at(&format!("/spec/{key}")),
                help: Some(format!(
                    "remove {key} to allow any non-root ID, or add an inclusion"
                )),
            });
        }
    }
}

/// Whether some valid container name (a DNS-1123 label) can match a glob.
fn glob_can_match(glob: &str) -> bool {
    let literal = glob.chars().filter(|c| *c != '*').count();
    literal <= 63
        && glob
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '*' | '?'))
}

fn unreachable_matchers(policy: &ValidPolicy, at: At<'_>, out: &mut Vec<Finding>) {
    let matchers = &policy.spec().roles;
    for (i, m) in matchers.iter().enumerate() {
        let path = format!("/spec/roles/{i}");
        let shadow = matchers[..i].iter().position(|e| {
            e.pod_selector.is_none() && e.container_names.iter().any(|g| g.chars().all(|c| c == '*'))
        });
        let message = if let Some(j) = shadow {
            format!("roles[{i}] is never used: roles[{j}] matches every container first")
        } else if !m.container_names.iter().any(|g| glob_can_match(g)) {
            format!(
                "roles[{i}] containerNames {:?} cannot match any container name (lowercase letters, digits and '-', at most 63)",
                m.container_names
            )
        } else {
            continue;
        };
        out.push(Finding {
            code: Code::UnreachableMatcher,
            severity: Severity::Warning,
            message,
            location: at(&path),
            help: None,
        });
    }
}

fn hidden_defaults(policy: &ValidPolicy, at: At<'_>, out: &mut Vec<Finding>) {
    let mut pairs: Vec<(String, &Ctx, String, &Ctx)> = vec![
        (
            "pod.default".into(),
            &policy.pod.default,
            "pod.enforced".into(),
            &policy.pod.enforced,
        ),
        (
            "containers.default".into(),
            &policy.containers.default,
            "containers.enforced".into(),
            &policy.containers.enforced,
        ),
    ];
    for role in Role::ALL {
        let r = policy.role(role);
        pairs.push((
            format!("{role}.default"),
            &r.default,
            format!("{role}.enforced"),
            &r.enforced,
        ));
        pairs.push((
            format!("{role}.default"),
            &r.default,
            "containers.enforced".into(),
            &policy.containers.enforced,
        ));
    }
    for (dkey, default, ekey, enforced) in pairs {
        for (field, value) in default {
            let merge = merge::fields::lookup(field).map(|f| f.merge);
            let capabilities = merge == Some(merge::fields::Merge::Capabilities);
            let hidden = match merge {
                // Dropping is a union: an enforced drop list hides nothing.
                Some(merge::fields::Merge::Capabilities) => {
                    value.get("add").is_some()
                        && enforced.get("capabilities").and_then(|c| c.get("add")).is_some()
                }
                _ => enforced.contains_key(field),
            };
            if hidden {
                let f = if capabilities {
                    "capabilities.add"
                } else {
                    field.as_str()
                };
                out.push(Finding {
                    code: Code::HiddenDefault,
                    severity: Severity::Warning,
                    message: format!("{dkey}.{f} never applies: {ekey}.{f} always wins over it"),
                    location: at(&format!("/spec/{}/{field}", dkey.replace('.', "/"))),
                    help: Some(format!("remove {dkey}.{f}")),
                });
            }
        }
    }
}

/// Probe containers: one per policy `roles` matcher glob (as a container and as an init
/// container), then one per row and remainder of the preset's table
/// ([`presets::probes`]; under `auto`, of every preset's table).
fn probe_candidates(policy: &ValidPolicy) -> Vec<Probe> {
    let mut c: Vec<Probe> = Vec::new();
    for m in &policy.spec().roles {
        for g in &m.container_names {
            let name = g.replace(['*', '?'], "x");
            let labels: BTreeMap<String, String> = m
                .pod_selector
                .as_ref()
                .and_then(|s| s.match_labels.clone())
                .unwrap_or_default();
            for kind in [ContainerKind::Container, ContainerKind::Init] {
                c.push(Probe {
                    name: name.clone(),
                    kind,
                    labels: labels.clone(),
                    companions: Vec::new(),
                    role: m.role,
                });
            }
        }
    }
    let preset = policy.spec().preset;
    for def in presets::DEFINITIONS {
        if def.preset == preset || (preset == Preset::Auto && def.preset != Preset::Generic) {
            c.extend(presets::probes(def));
        }
    }
    if preset == Preset::Auto
        && let Some(def) = presets::definition(Preset::Generic)
    {
        c.extend(presets::probes(def));
    }
    c
}

/// What fixes a failed check: the security-context field behind it, whether that field is
/// looked up in the probe container's provenance (to name the policy layer that set it),
/// and the suggestion.
fn fix(check: &str) -> (&'static str, bool, &'static str) {
    match check {
        "allowPrivilegeEscalation" => (
            "allowPrivilegeEscalation",
            true,
            "set containers.default.allowPrivilegeEscalation: false",
        ),
        "capabilities_restricted" => (
            "capabilities.drop",
            true,
            "set containers.default.capabilities: {drop: [ALL]}",
        ),
        "capabilities_baseline" => (
            "capabilities.add",
            true,
            "add no capability beyond the baseline set",
        ),
        "runAsNonRoot" => ("runAsNonRoot", true, "set pod.default.runAsNonRoot: true"),
        "runAsUser" => (
            "runAsUser",
            true,
            "set a non-zero runAsUser (pod.default.runAsUser: 1000)",
        ),
        "seccompProfile_restricted" | "seccompProfile_baseline" => (
            "seccompProfile",
            false,
            "set pod.default.seccompProfile: {type: RuntimeDefault}",
        ),
        "privileged" => ("privileged", true, "do not set privileged: true"),
        "procMount" | "procMount_restricted" => ("procMount", true, "do not set procMount: Unmasked"),
        "seLinuxOptions" => (
            "seLinuxOptions",
            false,
            "use an allowed SELinux type (container_t) and no user or role",
        ),
        "appArmorProfile" => (
            "appArmorProfile",
            false,
            "use appArmorProfile type RuntimeDefault or Localhost",
        ),
        "windowsHostProcess" => (
            "windowsOptions",
            false,
            "do not set windowsOptions.hostProcess: true",
        ),
        _ => (
            "",
            false,
            "this is not a security-context setting; the runner's pod must change",
        ),
    }
}

/// The Pod Security evaluation of a rendered probe pod without its companions; `None`
/// when it passes.
fn probe_verdict(policy: &ValidPolicy, mut pod: Value, companions: &[String]) -> Option<Evaluation> {
    if let Some(cs) = pod["spec"]["containers"].as_array_mut() {
        cs.retain(|c| {
            c["name"]
                .as_str()
                .is_none_or(|n| !companions.iter().any(|x| x == n))
        });
    }
    let (_, mut typed) = workload::typed_pod(&pod).ok()??;
    pss::apply_pod_defaults(&mut typed.spec);
    Some(pss::evaluate(&typed.metadata, &typed.spec, policy.pss)).filter(|e| !e.allowed())
}

fn pss_probes(policy: &ValidPolicy, out: &mut Vec<Finding>) {
    if policy.pss.level == Level::Privileged {
        return;
    }
    let mut seen_roles = Vec::new();
    for Probe {
        name,
        kind,
        labels,
        companions,
        ..
    } in probe_candidates(policy)
    {
        let mut containers: Vec<&str> = companions.iter().map(String::as_str).collect();
        if kind == ContainerKind::Container {
            containers.push(&name);
        }
        let facts = PodFacts {
            labels: &labels,
            containers,
        };
        let role = policy.role_of(&facts, &name, kind);
        if seen_roles.contains(&role) {
            continue;
        }
        seen_roles.push(role);
        let image = "registry.example/ci-job:latest";
        let probe = json!({"name": name, "image": image});
        let mut pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("ciguard-probe-{role}"), "labels": labels},
            "spec": {"containers": companions.iter().map(|c| json!({"name": c, "image": image})).collect::<Vec<_>>()},
        });
        match kind {
            ContainerKind::Container => {
                if let Some(cs) = pod["spec"]["containers"].as_array_mut() {
                    cs.push(probe);
                }
            }
            ContainerKind::Init | ContainerKind::Sidecar => {
                let mut init = probe;
                if kind == ContainerKind::Sidecar {
                    init["restartPolicy"] = json!("Always");
                }
                pod["spec"]["initContainers"] = json!([init]);
            }
        }
        let Ok(rendered) = merge::render_with(
            policy,
            &pod,
            merge::Options {
                provenance: true,
                ..merge::Options::without_records(merge::PodSecurity::Skip)
            },
        ) else {
            continue;
        };
        // Only the probe's own verdict is reported: companions (which the table row needs
        // beside it) are judged by their own probes.
        let Some(evaluation) = probe_verdict(policy, rendered.object.clone(), &companions) else {
            continue;
        };
        let message = evaluation.message();
        let help: Vec<String> = evaluation
            .violations
            .iter()
            .map(|v| {
                let (field, traced, suggestion) = fix(v.check);
                let origin = rendered
                    .provenance
                    .iter()
                    .filter(|_| traced)
                    .find(|p| {
                        p.field.field == field
                            && p.field.container.as_ref().is_some_and(|(_, n)| **n == *name)
                    })
                    .map(|p| p.origin);
                match origin {
                    Some(o) => format!(
                        "{}: {field} comes from {o}: change it there ({suggestion})",
                        v.check
                    ),
                    None => format!("{}: {suggestion}", v.check),
                }
            })
            .collect();
        out.push(Finding {
            code: Code::PssProbe,
            severity: Severity::Error,
            message: format!("a plain {role} container (\"{name}\") would be rejected: {message}"),
            location: None,
            help: Some(help.join("; ")),
        });
    }
}

/// The roles a container can get under the policy: the preset's and the `roles` matchers'.
fn reachable_roles(policy: &ValidPolicy) -> Vec<Role> {
    let preset = policy.spec().preset;
    // Under `auto` a container may get any role of any table.
    let mut roles: Vec<Role> = presets::DEFINITIONS
        .iter()
        .filter(|d| preset == Preset::Auto || d.preset == preset)
        .flat_map(|d| presets::probes(d))
        .map(|p| p.role)
        .collect();
    roles.extend(policy.spec().roles.iter().map(|m| m.role));
    roles.sort();
    roles.dedup();
    roles
}

/// Exceptions that can never match a container, exempt from checks that do not exist,
/// or change nothing.
fn exceptions(policy: &ValidPolicy, at: At<'_>, out: &mut Vec<Finding>) {
    let reachable = reachable_roles(policy);
    let known: Vec<&str> = crate::pss::check_ids().collect();
    for (i, x) in policy.spec().exceptions.iter().enumerate() {
        let base = format!("/spec/exceptions/{i}");
        let who = format!("exceptions[{i}] \"{}\"", x.name);
        let mut unreachable = |message: String, path: String, help: String| {
            out.push(Finding {
                code: Code::UnreachableException,
                severity: Severity::Warning,
                message,
                location: at(&path),
                help: Some(help),
            })
        };
        if x.images.is_empty() {
            unreachable(
                format!("{who} has no images: it matches no container"),
                format!("{base}/images"),
                "list the images it is for, e.g. images: [\"docker:*-dind\"]".into(),
            );
        }
        match &x.roles {
            Some(roles) if roles.is_empty() => unreachable(
                format!("{who} has an empty roles list: it matches no container"),
                format!("{base}/roles"),
                "remove roles to match every role, or name the roles it is for".into(),
            ),
            Some(roles) => {
                for (j, role) in roles.iter().enumerate().filter(|(_, r)| !reachable.contains(r)) {
                    let preset = policy.spec().preset.as_str();
                    let have: Vec<&str> = reachable.iter().map(|r| r.as_str()).collect();
                    unreachable(
                        format!(
                            "{who}: no container has the role {role} under preset {preset} (roles: {})",
                            have.join(", ")
                        ),
                        format!("{base}/roles/{j}"),
                        format!(
                            "use one of {}, or add a spec.roles matcher that gives {role}",
                            have.join(", ")
                        ),
                    );
                }
            }
            None => {}
        }
        for (j, check) in x.exempt_checks.iter().enumerate() {
            let path = format!("{base}/exemptChecks/{j}");
            if !known.contains(&check.as_str()) {
                let close = known
                    .iter()
                    .find(|k| k.eq_ignore_ascii_case(check))
                    .map(|k| format!("did you mean {k}? "))
                    .unwrap_or_default();
                out.push(Finding {
                    code: Code::UnknownCheck,
                    severity: Severity::Error,
                    message: format!(
                        "{who}: exemptChecks[{j}] \"{check}\" is not a Pod Security check ID; it exempts nothing"
                    ),
                    location: at(&path),
                    help: Some(format!("{close}check IDs: {}", known.join(", "))),
                });
            } else if policy.pss.level != Level::Privileged && !crate::pss::check_runs(policy.pss, check) {
                out.push(Finding {
                    code: Code::IneffectiveException,
                    severity: Severity::Warning,
                    message: format!(
                        "{who}: exemptChecks[{j}] {check} does not run at {} (a restricted check replaces it, or it is not defined at that version); exempting from it changes nothing",
                        policy.pss
                    ),
                    location: at(&path),
                    help: Some(format!(
                        "exempt from the check that {} reports instead (e.g. capabilities_restricted, seccompProfile_restricted, procMount_restricted)",
                        policy.pss
                    )),
                });
            } else if policy::exception::POD_LEVEL_CHECKS.contains(&check.as_str()) {
                out.push(Finding {
                    code: Code::IneffectiveException,
                    severity: Severity::Warning,
                    message: format!(
                        "{who}: exemptChecks[{j}] {check} judges pod-level fields only; exempting a container from it changes nothing"
                    ),
                    location: at(&path),
                    help: Some("remove it: exceptions never relax what the pod as a whole asks for".into()),
                });
            }
        }
        let allows_nothing = x.allow.as_ref().is_none_or(|a| {
            serde_json::to_value(a).is_ok_and(|v| v.as_object().is_some_and(|m| m.is_empty()))
        });
        if allows_nothing && x.exempt_checks.is_empty() {
            out.push(Finding {
                code: Code::IneffectiveException,
                severity: Severity::Warning,
                message: format!("{who} has neither allow nor exemptChecks: it changes nothing"),
                location: at(&base),
                help: Some("add the values these containers may request (allow) or the checks they are exempt from (exemptChecks)".into()),
            });
        }
    }
}
