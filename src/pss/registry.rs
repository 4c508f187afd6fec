//! The check registry (upstream `registry.go`): validates the checks once, then
//! precomputes the list of checks for every (level, version), so that an evaluation is a
//! table lookup and a loop.
//!
//! Order: baseline check IDs sorted (byte order), then restricted check IDs sorted. At
//! `restricted`, a restricted check that overrides a baseline one at that version takes its
//! place: the baseline check is left out. Versions are Kubernetes minors `v1.N`; a version
//! past the newest any check knows is evaluated as the newest, and `latest` is the newest.

use std::{borrow::Cow, collections::BTreeSet, sync::LazyLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{CheckResult, Evaluation, Level, LevelVersion, Version, Violation, checks, view::PodView};

/// One check function: a pod's metadata and spec in, a verdict out.
pub(crate) type CheckFn = fn(&ObjectMeta, &PodView<'_>) -> CheckResult;

/// One upstream check: its ID, level, and its behaviour per version.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Check {
    /// The upstream check ID, byte-exact (`runAsNonRoot`).
    pub id: &'static str,
    /// `Baseline` or `Restricted`.
    pub level: Level,
    /// The behaviour from each version on, strictly increasing by `min`.
    pub versions: &'static [VersionedCheck],
}

/// The behaviour of a check from Kubernetes `v1.<min>` until the next entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VersionedCheck {
    /// The minor version from which this behaviour applies.
    pub min: u32,
    /// The check function.
    pub eval: CheckFn,
    /// Baseline check IDs this (restricted) check replaces at `restricted`.
    pub overrides: &'static [&'static str],
}

/// Why a list of checks cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RegistryError {
    /// Two checks share an ID.
    #[error("multiple checks registered for ID {0}")]
    DuplicateId(&'static str),
    /// A check is neither baseline nor restricted.
    #[error("check {0}: invalid level privileged")]
    InvalidLevel(&'static str),
    /// A check has no versions.
    #[error("check {0}: empty")]
    Empty(&'static str),
    /// A check's versions are not strictly increasing.
    #[error("check {id}: versions must be strictly increasing (v1.{min} after v1.{previous})")]
    NotIncreasing {
        /// The check.
        id: &'static str,
        /// The offending version.
        min: u32,
        /// The version before it.
        previous: u32,
    },
    /// A baseline check declares overrides.
    #[error("check {0}: only restricted checks may override other checks")]
    BaselineOverrides(&'static str),
    /// A restricted check overrides something that is not a registered baseline check.
    #[error("check {id}: overrides {target}, which is not a registered baseline check")]
    BadOverride {
        /// The check.
        id: &'static str,
        /// The ID it names.
        target: &'static str,
    },
}

/// One check as it runs at one (level, version).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    /// The check ID.
    pub id: &'static str,
    /// Its function at that version.
    pub eval: CheckFn,
}

/// The validated checks, expanded per level and version.
#[derive(Debug)]
pub(crate) struct Registry {
    /// The newest minor version any check knows.
    newest: u32,
    /// `baseline[minor]`: the checks of `baseline:v1.<minor>`, in message order.
    baseline: Vec<Vec<Entry>>,
    /// `restricted[minor]`: the checks of `restricted:v1.<minor>`, in message order.
    restricted: Vec<Vec<Entry>>,
}

impl Registry {
    /// Validates `checks` and builds the per-version tables.
    pub fn new(checks: &[Check]) -> Result<Self, RegistryError> {
        validate(checks)?;
        let newest = checks
            .iter()
            .filter_map(|c| c.versions.last())
            .map(|v| v.min)
            .max()
            .unwrap_or(0);

        let mut sorted: Vec<&Check> = checks.iter().collect();
        // Baseline first, then restricted; each sorted by ID in byte order.
        sorted.sort_by(|a, b| (a.level, a.id).cmp(&(b.level, b.id)));

        let mut baseline = Vec::with_capacity(newest as usize + 1);
        let mut restricted = Vec::with_capacity(newest as usize + 1);
        for minor in 0..=newest {
            let active: Vec<(&Check, &VersionedCheck)> = sorted
                .iter()
                .filter_map(|c| at_version(c, minor).map(|v| (*c, v)))
                .collect();
            let overridden: BTreeSet<&str> = active
                .iter()
                .filter(|(c, _)| c.level == Level::Restricted)
                .flat_map(|(_, v)| v.overrides.iter().copied())
                .collect();
            let entry = |(c, v): &(&Check, &VersionedCheck)| Entry {
                id: c.id,
                eval: v.eval,
            };
            baseline.push(
                active
                    .iter()
                    .filter(|(c, _)| c.level == Level::Baseline)
                    .map(entry)
                    .collect(),
            );
            restricted.push(
                active
                    .iter()
                    .filter(|(c, _)| c.level == Level::Restricted || !overridden.contains(c.id))
                    .map(entry)
                    .collect(),
            );
        }
        Ok(Registry {
            newest,
            baseline,
            restricted,
        })
    }

    /// The newest minor version any check knows.
    pub fn newest(&self) -> u32 {
        self.newest
    }

    /// The checks run for a level and version, in message order (none for `privileged`).
    pub fn checks(&self, level: Level, version: Version) -> &[Entry] {
        let minor = match version {
            Version::Latest => self.newest,
            Version::Minor(n) => n.min(self.newest),
        } as usize;
        let table = match level {
            Level::Privileged => return &[],
            Level::Baseline => &self.baseline,
            Level::Restricted => &self.restricted,
        };
        table.get(minor).map_or(&[], Vec::as_slice)
    }

    /// Runs the checks of `level_version` on a pod.
    pub fn evaluate(
        &self,
        metadata: &ObjectMeta,
        spec: &PodView<'_>,
        level_version: LevelVersion,
    ) -> Evaluation {
        let mut violations = Vec::new();
        for entry in self.checks(level_version.level, level_version.version) {
            if let CheckResult::Forbidden { reason, detail } = (entry.eval)(metadata, spec) {
                violations.push(Violation {
                    check: entry.id,
                    reason,
                    detail,
                });
            }
        }
        Evaluation {
            level_version,
            violations,
        }
    }
}

/// The behaviour of a check at a minor version, if it exists then.
fn at_version(check: &Check, minor: u32) -> Option<&VersionedCheck> {
    check.versions.iter().rev().find(|v| v.min <= minor)
}

fn validate(checks: &[Check]) -> Result<(), RegistryError> {
    let mut ids = BTreeSet::new();
    for check in checks {
        if !ids.insert(check.id) {
            return Err(RegistryError::DuplicateId(check.id));
        }
        if check.level == Level::Privileged {
            return Err(RegistryError::InvalidLevel(check.id));
        }
        if check.versions.is_empty() {
            return Err(RegistryError::Empty(check.id));
        }
        for pair in check.versions.windows(2) {
            if pair[1].min <= pair[0].min {
                return Err(RegistryError::NotIncreasing {
                    id: check.id,
                    min: pair[1].min,
                    previous: pair[0].min,
                });
            }
        }
    }
    for check in checks {
        for v in check.versions {
            if v.overrides.is_empty() {
                continue;
            }
            if check.level != Level::Restricted {
                return Err(RegistryError::BaselineOverrides(check.id));
            }
            for &target in v.overrides {
                let is_baseline = checks
                    .iter()
                    .any(|c| c.id == target && c.level == Level::Baseline);
                if !is_baseline {
                    return Err(RegistryError::BadOverride { id: check.id, target });
                }
            }
        }
    }
    Ok(())
}

/// The registry of the built-in checks, built on first use.
static REGISTRY: LazyLock<Result<Registry, RegistryError>> = LazyLock::new(|| Registry::new(checks::ALL));

/// Evaluates with the built-in registry. Should `checks::ALL` ever be invalid (the tests
/// prove it is not), every pod is denied rather than let through.
pub(crate) fn evaluate(metadata: &ObjectMeta, spec: &PodView<'_>, level_version: LevelVersion) -> Evaluation {
    match &*REGISTRY {
        Ok(registry) => registry.evaluate(metadata, spec, level_version),
        Err(e) if level_version.level != Level::Privileged => Evaluation {
            level_version,
            violations: vec![Violation {
                check: "registry",
                reason: Cow::Borrowed("invalid check registry"),
                detail: e.to_string(),
            }],
        },
        Err(_) => Evaluation {
            level_version,
            violations: Vec::new(),
        },
    }
}

/// The function of the check `id` at a level and version, when it runs there.
pub(crate) fn check_fn(level_version: LevelVersion, id: &str) -> Option<CheckFn> {
    let registry = REGISTRY.as_ref().ok()?;
    registry
        .checks(level_version.level, level_version.version)
        .iter()
        .find(|e| e.id == id)
        .map(|e| e.eval)
}

/// The newest minor version the built-in checks know.
pub(crate) fn newest_minor() -> u32 {
    REGISTRY.as_ref().map_or(0, Registry::newest)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made-up checks, apart from the real ones (upstream registry_test.go): each returns
    // a reason naming itself and the version of its behaviour.
    macro_rules! made_up {
        ($($name:ident => $text:literal),* $(,)?) => {
            $(fn $name(_: &ObjectMeta, _: &PodView<'_>) -> CheckResult {
                CheckResult::forbidden($text, String::new())
            })*
        };
    }
    made_up! {
        a1_0 => "a:1.0", a1_7 => "a:1.7",
        b1_0 => "b:1.0",
        c1_2 => "c:1.2", c1_5 => "c:1.5", c1_10 => "c:1.10",
        d1_11 => "d:1.11",
        e1_0 => "e:1.0", e1_10 => "e:1.10",
        f1_4 => "f:1.4",
        g1_0 => "g:1.0", g1_9 => "g:1.9",
    }

    const fn v(min: u32, eval: CheckFn) -> VersionedCheck {
        VersionedCheck {
            min,
            eval,
            overrides: &[],
        }
    }

    const MADE_UP: &[Check] = &[
        Check {
            id: "e",
            level: Level::Restricted,
            versions: &[v(0, e1_0), v(10, e1_10)],
        },
        Check {
            id: "a",
            level: Level::Baseline,
            versions: &[v(0, a1_0), v(7, a1_7)],
        },
        Check {
            id: "c",
            level: Level::Baseline,
            versions: &[v(2, c1_2), v(5, c1_5), v(10, c1_10)],
        },
        Check {
            id: "b",
            level: Level::Baseline,
            versions: &[v(0, b1_0)],
        },
        Check {
            id: "d",
            level: Level::Restricted,
            versions: &[v(11, d1_11)],
        },
        // f replaces b at restricted from v1.4 on.
        Check {
            id: "f",
            level: Level::Restricted,
            versions: &[VersionedCheck {
                min: 4,
                eval: f1_4,
                overrides: &["b"],
            }],
        },
        // g replaces c only from v1.9 on.
        Check {
            id: "g",
            level: Level::Restricted,
            versions: &[
                v(0, g1_0),
                VersionedCheck {
                    min: 9,
                    eval: g1_9,
                    overrides: &["c"],
                },
            ],
        },
    ];

    fn reasons(registry: &Registry, level: Level, version: Version) -> Vec<String> {
        let lv = LevelVersion { level, version };
        registry
            .evaluate(&ObjectMeta::default(), &PodView::default(), lv)
            .violations
            .into_iter()
            .map(|v| v.reason.into_owned())
            .collect()
    }

    #[test]
    fn made_up_checks_expand_per_version() {
        let r = Registry::new(MADE_UP).unwrap();
        assert_eq!(r.newest(), 11);
        let cases: &[(Level, Version, &[&str])] = &[
            (Level::Privileged, Version::Latest, &[]),
            (Level::Baseline, Version::Minor(0), &["a:1.0", "b:1.0"]),
            (Level::Baseline, Version::Minor(1), &["a:1.0", "b:1.0"]),
            (Level::Baseline, Version::Minor(2), &["a:1.0", "b:1.0", "c:1.2"]),
            (Level::Baseline, Version::Minor(7), &["a:1.7", "b:1.0", "c:1.5"]),
            (Level::Baseline, Version::Minor(10), &["a:1.7", "b:1.0", "c:1.10"]),
            (Level::Baseline, Version::Latest, &["a:1.7", "b:1.0", "c:1.10"]),
            (
                Level::Restricted,
                Version::Minor(0),
                &["a:1.0", "b:1.0", "e:1.0", "g:1.0"],
            ),
            (
                Level::Restricted,
                Version::Minor(3),
                &["a:1.0", "b:1.0", "c:1.2", "e:1.0", "g:1.0"],
            ),
            // f overrides b from 1.4; restricted IDs stay in their own sorted block.
            (
                Level::Restricted,
                Version::Minor(4),
                &["a:1.0", "c:1.2", "e:1.0", "f:1.4", "g:1.0"],
            ),
            (
                Level::Restricted,
                Version::Minor(8),
                &["a:1.7", "c:1.5", "e:1.0", "f:1.4", "g:1.0"],
            ),
            // g overrides c from 1.9.
            (
                Level::Restricted,
                Version::Minor(9),
                &["a:1.7", "e:1.0", "f:1.4", "g:1.9"],
            ),
            (
                Level::Restricted,
                Version::Minor(11),
                &["a:1.7", "d:1.11", "e:1.10", "f:1.4", "g:1.9"],
            ),
            // Newer than known: evaluated as the newest.
            (
                Level::Restricted,
                Version::Minor(99),
                &["a:1.7", "d:1.11", "e:1.10", "f:1.4", "g:1.9"],
            ),
            (
                Level::Restricted,
                Version::Latest,
                &["a:1.7", "d:1.11", "e:1.10", "f:1.4", "g:1.9"],
            ),
        ];
        for (level, version, want) in cases {
            assert_eq!(reasons(&r, *level, *version), *want, "{level}:{version}");
        }
    }

    #[test]
    fn newer_version_is_named_as_asked() {
        let r = Registry::new(MADE_UP).unwrap();
        let lv = LevelVersion {
            level: Level::Baseline,
            version: Version::Minor(99),
        };
        let e = r.evaluate(&ObjectMeta::default(), &PodView::default(), lv);
        assert!(
            e.message()
                .starts_with(r#"violates PodSecurity "baseline:v1.99": a:1.7, b:1.0"#)
        );
    }

    #[test]
    fn invalid_registries_are_rejected() {
        const DUP: &[Check] = &[
            Check {
                id: "a",
                level: Level::Baseline,
                versions: &[v(0, a1_0)],
            },
            Check {
                id: "a",
                level: Level::Restricted,
                versions: &[v(0, a1_0)],
            },
        ];
        assert_eq!(Registry::new(DUP).unwrap_err(), RegistryError::DuplicateId("a"));

        const PRIVILEGED: &[Check] = &[Check {
            id: "a",
            level: Level::Privileged,
            versions: &[v(0, a1_0)],
        }];
        assert_eq!(
            Registry::new(PRIVILEGED).unwrap_err(),
            RegistryError::InvalidLevel("a")
        );

        const EMPTY: &[Check] = &[Check {
            id: "a",
            level: Level::Baseline,
            versions: &[],
        }];
        assert_eq!(Registry::new(EMPTY).unwrap_err(), RegistryError::Empty("a"));

        const SAME: &[Check] = &[Check {
            id: "a",
            level: Level::Baseline,
            versions: &[v(3, a1_0), v(3, a1_7)],
        }];
        assert!(matches!(
            Registry::new(SAME),
            Err(RegistryError::NotIncreasing { .. })
        ));
        const DOWN: &[Check] = &[Check {
            id: "a",
            level: Level::Baseline,
            versions: &[v(7, a1_7), v(0, a1_0)],
        }];
        assert!(matches!(
            Registry::new(DOWN),
            Err(RegistryError::NotIncreasing { .. })
        ));

        const BASELINE_OVERRIDES: &[Check] = &[
            Check {
                id: "a",
                level: Level::Baseline,
                versions: &[v(0, a1_0)],
            },
            Check {
                id: "b",
                level: Level::Baseline,
                versions: &[VersionedCheck {
                    min: 0,
                    eval: b1_0,
                    overrides: &["a"],
                }],
            },
        ];
        assert_eq!(
            Registry::new(BASELINE_OVERRIDES).unwrap_err(),
            RegistryError::BaselineOverrides("b")
        );

        const OVERRIDES_RESTRICTED: &[Check] = &[
            Check {
                id: "a",
                level: Level::Restricted,
                versions: &[v(0, a1_0)],
            },
            Check {
                id: "b",
                level: Level::Restricted,
                versions: &[VersionedCheck {
                    min: 0,
                    eval: b1_0,
                    overrides: &["a"],
                }],
            },
        ];
        assert_eq!(
            Registry::new(OVERRIDES_RESTRICTED).unwrap_err(),
            RegistryError::BadOverride { id: "b", target: "a" }
        );
        const OVERRIDES_MISSING: &[Check] = &[Check {
            id: "b",
            level: Level::Restricted,
            versions: &[VersionedCheck {
                min: 0,
                eval: b1_0,
                overrides: &["zz"],
            }],
        }];
        assert!(matches!(
            Registry::new(OVERRIDES_MISSING),
            Err(RegistryError::BadOverride { .. })
        ));
    }

    #[test]
    fn builtin_registry_is_valid() {
        let r = Registry::new(checks::ALL).unwrap();
        assert_eq!(r.newest(), 37);
        assert_eq!(newest_minor(), 37);
        let ids = |level, version| -> Vec<&str> { r.checks(level, version).iter().map(|e| e.id).collect() };
        assert_eq!(
            ids(Level::Restricted, Version::Latest),
            [
                "appArmorProfile",
                "hostNamespaces",
                "hostPorts",
                "hostProbesAndHostLifecycle",
                "privileged",
                "seLinuxOptions",
                "sysctls",
                "windowsHostProcess",
                "allowPrivilegeEscalation",
                "capabilities_restricted",
                "procMount_restricted",
                "restrictedVolumes",
                "runAsNonRoot",
                "runAsUser",
                "seccompProfile_restricted",
            ]
        );
        assert_eq!(
            ids(Level::Restricted, Version::Minor(0)),
            [
                "appArmorProfile",
                "capabilities_baseline",
                "hostNamespaces",
                "hostPorts",
                "privileged",
                "procMount",
                "seLinuxOptions",
                "seccompProfile_baseline",
                "sysctls",
                "windowsHostProcess",
                "restrictedVolumes",
                "runAsNonRoot",
            ]
        );
        assert_eq!(ids(Level::Baseline, Version::Minor(33)).len(), 11);
        assert_eq!(ids(Level::Baseline, Version::Minor(34)).len(), 12);
    }

    /// `checks::ALL` matches `shared/pss/checks.csv` row for row: ID, level, minimum
    /// version, overrides.
    #[test]
    #[allow(clippy::disallowed_macros)] // a skipped test says why in the test output
    fn checks_match_shared_csv() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/pss/checks.csv");
        let Ok(text) = std::fs::read_to_string(path) else {
            assert!(std::env::var_os("CI").is_none(), "{path} is missing in CI");
            // Straight to stderr: `cargo test` hides a test's captured `eprintln!`.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("skipped: {path} not found (the shared/ folder is not beside the repo)\n").as_bytes(),
            );
            return;
        };
        let mut want = Vec::new();
        for line in text.lines().skip(1).filter(|l| !l.is_empty()) {
            let fields = split_csv(line);
            let overrides = fields[4].clone();
            want.push((fields[0].clone(), fields[1].clone(), fields[2].clone(), overrides));
        }
        let mut got = Vec::new();
        for check in checks::ALL {
            for v in check.versions {
                got.push((
                    check.id.to_string(),
                    check.level.to_string(),
                    format!("v1.{}", v.min),
                    v.overrides.join(" "),
                ));
            }
        }
        assert_eq!(got, want);
    }

    /// Splits one CSV line with double-quoted fields.
    fn split_csv(line: &str) -> Vec<String> {
        let mut fields = vec![String::new()];
        let mut quoted = false;
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' if quoted && chars.peek() == Some(&'"') => {
                    chars.next();
                    fields.last_mut().unwrap().push('"');
                }
                '"' => quoted = !quoted,
                ',' if !quoted => fields.push(String::new()),
                c => fields.last_mut().unwrap().push(c),
            }
        }
        fields
    }
}
