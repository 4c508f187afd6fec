//! The presets as data (SPEC §2 "Roles", §5 "More presets"): one [`Definition`] per CI
//! system, in a file of its own.
//!
//! A definition says how to recognise the system's pods (for `preset: auto` and `audit`),
//! which role each container gets ([`Rule`]s: container-name globs, the list the container
//! is in, conditions on the whole pod), and the *remainder* roles of the containers no rule
//! names. The engine ([`role_in`]), `preset: auto` ([`detect`]) and `lint`'s probe pods
//! ([`probes`]) all read these tables, so adding a CI system is one new table and its tests.
//!
//! In every preset an init container with `restartPolicy: Always` (a native sidecar) is a
//! service, unless a rule names it with a glob other than `*` (Tekton's
//! `sidecar-tekton-log-results` stays a helper when it runs as a native sidecar). That rule
//! is the engine's, not a table's, so no table can forget it.

mod argo;
mod buildkite;
mod generic;
mod github_arc;
mod gitlab_runner;
mod jenkins;
mod tekton;
mod woodpecker;

use std::collections::BTreeMap;

use crate::value::Value;

use super::roles::{ContainerKind, Preset, Role, glob_match};

/// A test on one pod label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    /// The label is present, with any value.
    Exists(&'static str),
    /// The label has exactly this value.
    Equals(&'static str, &'static str),
    /// The label's value starts with this prefix.
    Prefix(&'static str, &'static str),
}

impl Label {
    /// The label key.
    pub fn key(self) -> &'static str {
        match self {
            Label::Exists(k) | Label::Equals(k, _) | Label::Prefix(k, _) => k,
        }
    }

    /// Whether the pod's labels pass the test.
    pub fn matches(self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Label::Exists(k) => labels.contains_key(k),
            Label::Equals(k, v) => labels.get(k).is_some_and(|x| x == v),
            Label::Prefix(k, p) => labels.get(k).is_some_and(|x| x.starts_with(p)),
        }
    }

    /// A label that passes the test (for probe pods).
    pub fn sample(self) -> (String, String) {
        match self {
            Label::Exists(k) => (k.into(), "ciguard-probe".into()),
            Label::Equals(k, v) => (k.into(), v.into()),
            Label::Prefix(k, p) => (k.into(), format!("{p}ciguard-probe")),
        }
    }

    /// The test as written in docs: `label tekton.dev/taskRun`, `label pod=runner-*`.
    pub fn describe(self) -> String {
        match self {
            Label::Exists(k) => format!("label {k}"),
            Label::Equals(k, v) => format!("label {k}={v}"),
            Label::Prefix(k, p) => format!("label {k}={p}*"),
        }
    }
}

/// Conditions on the whole pod; all must hold. [`PodCond::ANY`] holds for every pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodCond {
    /// Label tests.
    pub labels: &'static [Label],
    /// Regular containers (`spec.containers`) the pod has, by exact name.
    pub with: &'static [&'static str],
    /// Regular containers the pod does not have, by exact name.
    pub without: &'static [&'static str],
}

impl PodCond {
    /// No condition.
    pub const ANY: PodCond = PodCond {
        labels: &[],
        with: &[],
        without: &[],
    };

    /// Only label tests.
    pub const fn labels(labels: &'static [Label]) -> PodCond {
        PodCond {
            labels,
            with: &[],
            without: &[],
        }
    }

    /// Whether the pod meets every condition.
    pub fn holds(&self, pod: &PodFacts<'_>) -> bool {
        self.labels.iter().all(|l| l.matches(pod.labels))
            && self.with.iter().all(|c| pod.has(c))
            && !self.without.iter().any(|c| pod.has(c))
    }

    /// Whether there is no condition.
    pub fn is_any(&self) -> bool {
        *self == PodCond::ANY
    }

    /// The conditions as text: `label tekton.dev/taskRun=build-run and containers "helper", "build"`,
    /// with the pod's actual label values.
    pub fn describe(&self, pod: &PodFacts<'_>) -> String {
        let mut parts: Vec<String> = self
            .labels
            .iter()
            .map(|l| match pod.labels.get(l.key()) {
                Some(v) => format!("label {}={v}", l.key()),
                None => l.describe(),
            })
            .collect();
        if !self.with.is_empty() {
            parts.push(format!("containers {}", quoted(self.with)));
        }
        if !self.without.is_empty() {
            parts.push(format!("no container {}", quoted(self.without)));
        }
        parts.join(" and ")
    }
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which list of the pod spec a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lists {
    /// `spec.containers`, and the native sidecars the rule names with a glob other than `*`.
    Containers,
    /// `spec.initContainers` without `restartPolicy: Always`.
    Init,
}

/// One row of a preset's table: containers in `lists` whose name matches one of `names`,
/// in a pod that meets `pod`, get `role`. Rules are tried in order; the first match wins.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The list the container is in.
    pub lists: Lists,
    /// Container-name globs (`*` any run, `?` one character); one must match.
    pub names: &'static [&'static str],
    /// Conditions on the whole pod.
    pub pod: PodCond,
    /// The role given.
    pub role: Role,
}

/// A rule for regular containers (and native sidecars it names), in any pod.
pub const fn container(names: &'static [&'static str], role: Role) -> Rule {
    Rule {
        lists: Lists::Containers,
        names,
        pod: PodCond::ANY,
        role,
    }
}

/// A rule for regular containers in pods that meet `pod`.
pub const fn container_in(names: &'static [&'static str], pod: PodCond, role: Role) -> Rule {
    Rule {
        lists: Lists::Containers,
        names,
        pod,
        role,
    }
}

/// A rule for init containers (not native sidecars), in any pod.
pub const fn init(names: &'static [&'static str], role: Role) -> Rule {
    Rule {
        lists: Lists::Init,
        names,
        pod: PodCond::ANY,
        role,
    }
}

/// Every name.
pub const ANY: &[&str] = &["*"];

/// A CI system's preset.
#[derive(Debug)]
pub struct Definition {
    /// The preset.
    pub preset: Preset,
    /// How `preset: auto` recognises the system's pods: any one condition suffices.
    /// Conditions with a label test are tried (across all presets) before conditions on
    /// container names alone, which are weaker evidence.
    pub recognise: &'static [PodCond],
    /// The rules, tried in order.
    pub rules: &'static [Rule],
    /// The role of a regular container no rule names (the user-named containers).
    pub remainder: Role,
    /// A container name that falls to the remainder (lint's probe).
    pub remainder_probe: &'static str,
    /// The role of an init container no rule names.
    pub init_remainder: Role,
    /// An init container name that falls to the init remainder (lint's probe).
    pub init_probe: &'static str,
    /// Where the pods were read from: repository@commit, file and function, or the doc.
    pub source: &'static str,
}

/// Every preset's table, in the order `preset: auto` tries them.
pub const DEFINITIONS: [&Definition; 8] = [
    &gitlab_runner::DEFINITION,
    &woodpecker::DEFINITION,
    &tekton::DEFINITION,
    &github_arc::DEFINITION,
    &argo::DEFINITION,
    &jenkins::DEFINITION,
    &buildkite::DEFINITION,
    &generic::DEFINITION,
];

/// The table of a preset; `auto` has none of its own (see [`detect`]).
pub fn definition(preset: Preset) -> Option<&'static Definition> {
    DEFINITIONS.iter().copied().find(|d| d.preset == preset)
}

/// What the rules look at in a pod: its labels and the names of its regular containers.
#[derive(Debug, Clone)]
pub struct PodFacts<'a> {
    /// The pod's labels (of the pod template, for workloads).
    pub labels: &'a BTreeMap<String, String>,
    /// The names of the pod's regular containers (`spec.containers`).
    pub containers: Vec<&'a str>,
}

impl<'a> PodFacts<'a> {
    /// The facts of a pod spec (a JSON object; anything else has no containers).
    pub fn new(labels: &'a BTreeMap<String, String>, spec: Option<&'a Value>) -> Self {
        let containers = spec
            .and_then(|s| s.get("containers"))
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c.get("name").and_then(Value::as_str))
                    .collect()
            })
            .unwrap_or_default();
        PodFacts { labels, containers }
    }

    /// Whether the pod has a regular container of this name.
    pub fn has(&self, name: &str) -> bool {
        self.containers.contains(&name)
    }
}

/// Which preset applies to a pod, and why (`render --explain` prints it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    /// The preset (never `auto`).
    pub preset: Preset,
    /// Why: the recognising condition with the pod's values, or why none matched.
    pub reason: String,
}

/// `preset: auto`: the first preset one of whose [`Definition::recognise`] conditions the
/// pod meets, label conditions before container-name ones; else `generic`.
pub fn detect(pod: &PodFacts<'_>) -> Choice {
    match recognise(pod) {
        Some((d, c)) => Choice {
            preset: d.preset,
            reason: c.describe(pod),
        },
        None => Choice {
            preset: Preset::Generic,
            reason: "no CI system's labels or containers".into(),
        },
    }
}

/// The preset [`detect`] chooses, without saying why (what rendering needs, per container).
pub fn detected(pod: &PodFacts<'_>) -> Preset {
    recognise(pod).map_or(Preset::Generic, |(d, _)| d.preset)
}

/// The definition and the condition [`detect`] recognises the pod by.
fn recognise(pod: &PodFacts<'_>) -> Option<(&'static Definition, &'static PodCond)> {
    [true, false].into_iter().find_map(|by_label| {
        DEFINITIONS.iter().find_map(|d| {
            d.recognise
                .iter()
                .filter(|c| c.labels.is_empty() != by_label)
                .find(|c| c.holds(pod))
                .map(|c| (*d, c))
        })
    })
}

/// The role of a container under one preset's table.
pub fn role_in(def: &Definition, pod: &PodFacts<'_>, name: &str, kind: ContainerKind) -> Role {
    let lists = match kind {
        ContainerKind::Container | ContainerKind::Sidecar => Lists::Containers,
        ContainerKind::Init => Lists::Init,
    };
    let found = def.rules.iter().find(|r| {
        r.lists == lists
            && r.names
                .iter()
                .any(|g| (kind != ContainerKind::Sidecar || *g != "*") && glob_match(g, name))
            && r.pod.holds(pod)
    });
    match (found, kind) {
        (Some(r), _) => r.role,
        (None, ContainerKind::Container) => def.remainder,
        (None, ContainerKind::Init) => def.init_remainder,
        (None, ContainerKind::Sidecar) => Role::Service,
    }
}

/// A probe container for `lint`: a pod built to reach one row of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The probed container's name.
    pub name: String,
    /// Its list.
    pub kind: ContainerKind,
    /// The pod's labels.
    pub labels: BTreeMap<String, String>,
    /// Other regular containers the pod needs for the row to apply (not judged).
    pub companions: Vec<String>,
    /// The role the table gives the probed container.
    pub role: Role,
}

/// A name a glob matches: `*` becomes `probe`, `?` becomes `x`.
fn sample_name(glob: &str) -> String {
    glob.replace('*', "probe").replace('?', "x")
}

/// One probe per row of the preset's table, then one per remainder (regular, init,
/// native sidecar), in table order. `recognise` labels are added so that the pod is also
/// recognised as this preset's under `auto`.
pub fn probes(def: &Definition) -> Vec<Probe> {
    let base: BTreeMap<String, String> = def
        .recognise
        .iter()
        .find(|c| !c.labels.is_empty())
        .map(|c| c.labels.iter().map(|l| l.sample()).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for r in def.rules {
        let name = r
            .names
            .iter()
            .find(|g| **g != "*")
            .map(|g| sample_name(g))
            .unwrap_or_else(|| match r.lists {
                Lists::Containers => def.remainder_probe.to_string(),
                Lists::Init => def.init_probe.to_string(),
            });
        let mut labels = base.clone();
        labels.extend(r.pod.labels.iter().map(|l| l.sample()));
        out.push(Probe {
            name,
            kind: match r.lists {
                Lists::Containers => ContainerKind::Container,
                Lists::Init => ContainerKind::Init,
            },
            labels,
            companions: r.pod.with.iter().map(|c| c.to_string()).collect(),
            role: r.role,
        });
    }
    for (name, kind, role) in [
        (def.remainder_probe, ContainerKind::Container, def.remainder),
        (def.init_probe, ContainerKind::Init, def.init_remainder),
        ("native-sidecar", ContainerKind::Sidecar, Role::Service),
    ] {
        out.push(Probe {
            name: name.into(),
            kind,
            labels: base.clone(),
            companions: Vec::new(),
            role,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(labels: &'a BTreeMap<String, String>, containers: &[&'a str]) -> PodFacts<'a> {
        PodFacts {
            labels,
            containers: containers.to_vec(),
        }
    }

    /// Every probe, alone with its companions and labels, gets the role of the row it was
    /// built from under its preset and under `auto`, and every role a table can give has a
    /// probe: a new row that an earlier one shadows, or a role no probe reaches, fails here.
    #[test]
    fn probes_reach_every_row_and_cover_every_role() {
        for def in DEFINITIONS {
            let probes = probes(def);
            for p in &probes {
                let mut containers: Vec<&str> = p.companions.iter().map(String::as_str).collect();
                if p.kind == ContainerKind::Container {
                    containers.push(&p.name);
                }
                let pod = facts(&p.labels, &containers);
                assert_eq!(
                    role_in(def, &pod, &p.name, p.kind),
                    p.role,
                    "{}: probe {p:?}",
                    def.preset
                );
                if def.preset != Preset::Generic {
                    assert_eq!(
                        detect(&pod).preset,
                        def.preset,
                        "{}: auto, probe {p:?}",
                        def.preset
                    );
                }
            }
            let mut given: Vec<Role> = def.rules.iter().map(|r| r.role).collect();
            given.extend([def.remainder, def.init_remainder, Role::Service]);
            for role in given {
                assert!(
                    probes.iter().any(|p| p.role == role),
                    "{}: no probe for role {role}",
                    def.preset
                );
            }
        }
    }

    #[test]
    fn every_preset_but_auto_has_one_table() {
        for preset in Preset::ALL {
            let n = DEFINITIONS.iter().filter(|d| d.preset == preset).count();
            assert_eq!(n, usize::from(preset != Preset::Auto), "{preset}");
        }
    }

    #[test]
    fn native_sidecars_are_services_unless_named() {
        let labels = BTreeMap::new();
        let pod = facts(&labels, &[]);
        for def in DEFINITIONS {
            assert_eq!(
                role_in(def, &pod, "native-sidecar", ContainerKind::Sidecar),
                Role::Service,
                "{}",
                def.preset
            );
        }
        assert_eq!(
            role_in(
                &tekton::DEFINITION,
                &pod,
                "sidecar-tekton-log-results",
                ContainerKind::Sidecar
            ),
            Role::Helper
        );
    }
}
