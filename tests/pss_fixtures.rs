//! The upstream-derived fixtures in `shared/pss/fixtures/<level>/<version>/{pass,fail}/`
//! give the expected verdict at their directory's level and version; a `fail/` fixture is
//! denied by the check it is named after (or, at restricted, by the restricted check that
//! replaces it at that version). Every reason matches `shared/pss/checks.csv`.

#![allow(clippy::unwrap_used, clippy::panic)] // test helpers: a failed unwrap is a failed test

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use ciguard::{
    pss::{Level, LevelVersion, Version, evaluate, evaluate_view},
    pss::{apply_pod_defaults, newest_minor},
    workload::{admitted_pod, checked_pod, parse_text, typed_pod},
};

mod common;

/// `../shared/pss`, or `None` (the skip said on stderr; a failure with `CI` set) when its
/// fixtures are absent.
fn shared() -> Option<PathBuf> {
    common::shared("pss/fixtures").and_then(|d| d.parent().map(Path::to_path_buf))
}

/// One row of checks.csv.
struct Row {
    id: String,
    level: String,
    min: u32,
    reason: String,
    overrides: String,
}

fn read_csv(dir: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("checks.csv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(|line| {
            let f = split_csv(line);
            Row {
                id: f[0].clone(),
                level: f[1].clone(),
                min: f[2].trim_start_matches("v1.").parse().unwrap(),
                reason: f[3].clone(),
                overrides: f[4].clone(),
            }
        })
        .collect()
}

fn split_csv(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

/// The row of a check in force at a minor version.
fn row_at<'a>(rows: &'a [Row], id: &str, minor: u32) -> Option<&'a Row> {
    rows.iter()
        .filter(|r| r.id == id && r.min <= minor)
        .max_by_key(|r| r.min)
}

/// The check a `fail/` fixture must be denied by: the one it is named after, or at
/// restricted the restricted check that overrides it at that version.
fn expected_check(rows: &[Row], named: &str, level: Level, minor: u32) -> String {
    if level == Level::Restricted {
        for row in rows.iter().filter(|r| r.level == "restricted") {
            if row_at(rows, &row.id, minor).is_some_and(|r| r.min == row.min && r.overrides == named) {
                return row.id.clone();
            }
        }
    }
    named.to_string()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    files.sort();
    files
}

#[test]
fn fixtures_give_upstream_verdicts() {
    let Some(dir) = shared() else { return };
    let rows = read_csv(&dir);
    let by_lowercase: BTreeMap<String, String> =
        rows.iter().map(|r| (r.id.to_lowercase(), r.id.clone())).collect();

    let mut evaluated = 0;
    let mut failures = Vec::new();
    for level_dir in yaml_dirs(&dir.join("fixtures")) {
        let level: Level = level_dir.file_name().unwrap().to_str().unwrap().parse().unwrap();
        for version_dir in yaml_dirs(&level_dir) {
            let version: Version = version_dir
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let Version::Minor(minor) = version else {
                unreachable!()
            };
            let lv = LevelVersion { level, version };
            for (verdict, should_pass) in [("pass", true), ("fail", false)] {
                for file in yaml_files(&version_dir.join(verdict)) {
                    evaluated += 1;
                    let text = std::fs::read_to_string(&file).unwrap();
                    let docs = parse_text(&text, &file.display().to_string()).unwrap();
                    let (_, pod) = typed_pod(&docs[0].object).unwrap().unwrap();
                    let eval = evaluate(&pod.metadata, &pod.spec, lv);
                    let name = file.file_stem().unwrap().to_str().unwrap();
                    let here = format!("{lv} {verdict}/{name}");

                    for v in &eval.violations {
                        let row = row_at(&rows, v.check, minor).unwrap();
                        if !v.reason.starts_with(row.reason.as_str()) {
                            failures.push(format!("{here}: reason {:?} not {:?}", v.reason, row.reason));
                        }
                    }
                    if should_pass {
                        if !eval.allowed() {
                            failures.push(format!("{here}: denied: {}", eval.message()));
                        }
                        continue;
                    }
                    let named = name.trim_end_matches(|c: char| c.is_ascii_digit());
                    let Some(id) = by_lowercase.get(named) else {
                        failures.push(format!("{here}: no check is named {named}"));
                        continue;
                    };
                    let want = expected_check(&rows, id, level, minor);
                    if !eval.violations.iter().any(|v| v.check == want) {
                        failures.push(format!("{here}: not denied by {want}: {}", eval.message()));
                    }
                    // Privileged allows everything.
                    let privileged = LevelVersion {
                        level: Level::Privileged,
                        version,
                    };
                    assert!(evaluate(&pod.metadata, &pod.spec, privileged).allowed());
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {evaluated} fixtures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(evaluated > 300, "only {evaluated} fixtures found");
}

fn yaml_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// `latest` and versions past the newest known one evaluate as v1.37, and a version past
/// the newest is named as asked.
#[test]
fn latest_and_future_versions_match_newest() {
    let Some(dir) = shared() else { return };
    for level in [Level::Baseline, Level::Restricted] {
        let fixtures = dir.join("fixtures").join(level.as_str()).join("v1.37");
        for verdict in ["pass", "fail"] {
            for file in yaml_files(&fixtures.join(verdict)) {
                let text = std::fs::read_to_string(&file).unwrap();
                let docs = parse_text(&text, "f").unwrap();
                let (_, pod) = typed_pod(&docs[0].object).unwrap().unwrap();
                let at = |version| evaluate(&pod.metadata, &pod.spec, LevelVersion { level, version });
                let newest = at(Version::Minor(37));
                for other in [
                    at(Version::Latest),
                    at(Version::Minor(38)),
                    at(Version::Minor(99)),
                ] {
                    assert_eq!(other.violations, newest.violations, "{}", file.display());
                }
                let future = at(Version::Minor(99));
                assert!(
                    future.allowed() || future.message().contains(&format!("\"{level}:v1.99\"")),
                    "{}",
                    future.message()
                );
            }
        }
    }
}

/// Every `*.yaml` and `*.json` file under `dir`, recursively, in sorted order.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in yaml_dirs(dir) {
        out.extend(files_under(&path));
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "json"))
        .collect();
    files.sort();
    out.extend(files);
    out
}

/// `admitted_pod` (the webhook's read: only the fields Pod Security and the exceptions
/// read) and `checked_pod` (`render`'s and `check`'s: those fields kept, every other one
/// read for its type and dropped) give the verdict `typed_pod` (every field) gives, for every upstream fixture of
/// every level and version, the real Woodpecker pods and the examples, at every level and
/// at every version from v1.0 to past the newest, with and without the Pod defaults. A
/// field a check reads that the admitted read leaves out changes some fixture's verdict
/// (the fixtures cover each check's fields).
#[test]
fn slim_reads_give_the_typed_verdict() {
    let Some(dir) = shared() else { return };
    let mut files = files_under(&dir.join("fixtures"));
    files.extend(files_under(&dir.join("../realpods")));
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    files.extend(
        files_under(&examples)
            .into_iter()
            .filter(|f| !f.starts_with(examples.join("policies"))),
    );
    let mut versions: Vec<Version> = (0..=newest_minor() + 1).map(Version::Minor).collect();
    versions.push(Version::Latest);
    let mut pods = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let Ok(docs) = parse_text(&text, &file.display().to_string()) else {
            continue;
        };
        for doc in docs {
            let Ok(Some((kind, mut full))) = typed_pod(&doc.object) else {
                continue;
            };
            let (admitted_kind, mut admitted) = admitted_pod(&doc.object).unwrap().unwrap();
            let (checked_kind, mut checked) = checked_pod(&doc.object).unwrap().unwrap();
            assert_eq!(kind, admitted_kind);
            assert_eq!(kind, checked_kind);
            assert_eq!(full.metadata, admitted.metadata);
            assert_eq!(full.metadata, checked.metadata);
            pods += 1;
            for defaults in [false, true] {
                if defaults {
                    apply_pod_defaults(&mut full.spec);
                    admitted.apply_pod_defaults();
                    checked.apply_pod_defaults();
                }
                for level in [Level::Privileged, Level::Baseline, Level::Restricted] {
                    for &version in &versions {
                        let lv = LevelVersion { level, version };
                        let expected = evaluate(&full.metadata, &full.spec, lv);
                        for (read, pod) in [("admitted", &admitted), ("checked", &checked)] {
                            assert_eq!(
                                evaluate_view(&pod.metadata, &pod.view(), lv),
                                expected,
                                "{read}: {} at {lv} (defaults applied: {defaults})",
                                file.display()
                            );
                        }
                    }
                }
            }
        }
    }
    assert!(pods > 400, "only {pods} pods found");
}
