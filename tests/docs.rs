//! Every example in the docs runs.
//!
//! In `README.md`, `docs/*.md` and `docs/ci-systems/*.md`:
//! - a ```` ```console ```` block holds commands (`$ ciguard …`, optionally preceded by
//!   `VAR=value` assignments) run from the repository root with the binary under test;
//!   the lines after a command are its expected stdout followed by its stderr, a line
//!   `...` matches any number of lines, and `[exit N]` closes the output of a command
//!   that exits with N (otherwise 0 is expected);
//! - a ```` ```yaml ```` block preceded by `<!-- file: PATH -->` must equal that file,
//!   so the docs show exactly what the commands read;
//! - every other ```` ```yaml ```` block that is a `SecurityPolicy` must load, and every
//!   ```` ```toml ```` block must import as a GitLab Runner config.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

use std::path::Path;

use ciguard::policy::Preset;

struct Block {
    lang: String,
    file: Option<String>,
    body: String,
    line: usize,
}

fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    let mut pending_file: Option<String> = None;
    while let Some((n, line)) = lines.next() {
        if let Some(rest) = line.trim().strip_prefix("<!-- file: ") {
            pending_file = rest.strip_suffix(" -->").map(|s| s.trim().to_string());
            continue;
        }
        if let Some(lang) = line.strip_prefix("```")
            && !lang.is_empty()
        {
            let mut body = String::new();
            for (_, l) in lines.by_ref() {
                if l.starts_with("```") {
                    break;
                }
                body.push_str(l);
                body.push('\n');
            }
            out.push(Block {
                lang: lang.trim().to_string(),
                file: pending_file.take(),
                body,
                line: n + 1,
            });
        } else if !line.trim().is_empty() {
            pending_file = None;
        }
    }
    out
}

/// Splits a command line: whitespace-separated words, '…' quoting.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            _ => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// Whether `actual` matches `expected`, where an expected line `...` matches any lines.
fn matches(expected: &[&str], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((&"...", rest)) => (0..=actual.len()).any(|i| matches(rest, &actual[i..])),
        Some((e, rest)) => actual
            .split_first()
            .is_some_and(|(a, arest)| a.trim_end() == e.trim_end() && matches(rest, arest)),
    }
}

fn run_console(doc: &str, block: &Block, root: &Path) {
    let mut commands: Vec<(String, Vec<String>)> = Vec::new();
    for line in block.body.lines() {
        if let Some(cmd) = line.strip_prefix("$ ") {
            commands.push((cmd.to_string(), Vec::new()));
        } else if let Some((_, out)) = commands.last_mut() {
            out.push(line.to_string());
        }
    }
    for (cmd, mut expected) in commands {
        let mut code = 0;
        if let Some(last) = expected.last()
            && let Some(n) = last.strip_prefix("[exit ").and_then(|s| s.strip_suffix(']'))
        {
            code = n.parse().unwrap();
            expected.pop();
        }
        let mut args = words(&cmd);
        let mut envs = Vec::new();
        while args
            .first()
            .is_some_and(|a| a.contains('=') && !a.starts_with('-'))
        {
            let a = args.remove(0);
            let (k, v) = a.split_once('=').unwrap();
            envs.push((k.to_string(), v.to_string()));
        }
        assert_eq!(
            args.first().map(String::as_str),
            Some("ciguard"),
            "{doc}:{}: only ciguard commands run: {cmd}",
            block.line
        );
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ciguard"))
            .args(&args[1..])
            .envs(envs)
            .current_dir(root)
            .output()
            .unwrap();
        let actual = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let actual: Vec<&str> = actual.lines().collect();
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        assert!(
            matches(&expected, &actual),
            "{doc}:{}: `{cmd}` printed:\n{}\n--- expected:\n{}",
            block.line,
            actual.join("\n"),
            expected.join("\n")
        );
        assert_eq!(
            out.status.code(),
            Some(code),
            "{doc}:{}: `{cmd}` exit code",
            block.line
        );
    }
}

#[test]
fn every_doc_example_runs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut docs = vec![root.join("README.md")];
    let mut md: Vec<_> = ["docs", "docs/ci-systems"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    md.sort();
    docs.extend(md);
    let mut ran = 0;
    for path in docs {
        let doc = path.strip_prefix(root).unwrap().display().to_string();
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for block in blocks(&text) {
            let at = format!("{doc}:{}", block.line);
            if let Some(file) = &block.file {
                let on_disk =
                    std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{at}: {file}: {e}"));
                assert_eq!(block.body, on_disk, "{at}: the block differs from {file}");
            }
            match block.lang.as_str() {
                "console" => run_console(&doc, &block, root),
                "yaml" if block.body.contains("kind: SecurityPolicy") => {
                    if let Err(e) = ciguard::policy::load::from_str(&block.body, &at) {
                        panic!("{at}: policy does not load:\n{e}");
                    }
                }
                "toml" if block.body.contains("[[runners]]") => {
                    if let Err(e) = ciguard::import::gitlab::import(&block.body, &at, None) {
                        panic!("{at}: config.toml does not import: {e}");
                    }
                }
                _ => continue,
            }
            ran += 1;
        }
    }
    assert!(ran > 10, "only {ran} doc examples found");
}

#[test]
fn wildcard_matching() {
    assert!(matches(&["a", "...", "d"], &["a", "b", "c", "d"]));
    assert!(matches(&["a", "..."], &["a"]));
    assert!(!matches(&["a", "d"], &["a", "b", "d"]));
}

/// Every policy under examples/policies/ is lint-clean, and one named after a CI system
/// renders every example pod of that system (examples/<name>/; `auto.yaml`: of all seven)
/// to a pod that passes its `pss` target, except the pods its doc says cannot pass
/// (docs/ci-systems/*.md): those are denied.
#[test]
fn example_policies_are_lint_clean_and_admit_their_systems_pods() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // (policy, pods denied with the reason in the policy's doc)
    let denied: &[(&str, &[&str])] = &[("buildkite", &["job-pod-run-as-user.yaml"])];
    let mut policies: Vec<_> = std::fs::read_dir(root.join("examples/policies"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    policies.sort();
    assert!(policies.len() >= 8, "{policies:?}");
    for path in policies {
        let at = path.strip_prefix(root).unwrap().display().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let findings = ciguard::lint::lint(&text, &at).unwrap();
        assert!(findings.is_empty(), "{at}: {findings:#?}");
        let policy = ciguard::policy::load::from_str(&text, &at).unwrap();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        let pods = root.join("examples").join(&stem);
        let files: Vec<_> = match std::fs::read_dir(&pods) {
            Ok(dir) => dir.map(|e| e.unwrap().path()).collect(),
            // `auto.yaml`: every CI system's pods (each preset but `generic` and `auto`).
            Err(_) if stem == "auto" => Preset::ALL
                .iter()
                .filter(|p| !matches!(p, Preset::Generic | Preset::Auto))
                .flat_map(|p| std::fs::read_dir(root.join("examples").join(p.as_str())).unwrap())
                .map(|e| e.unwrap().path())
                .collect(),
            // A policy for a feature rather than a CI system: lint only.
            Err(_) => Vec::new(),
        };
        let expect_denied = denied
            .iter()
            .find(|(p, _)| *p == stem)
            .map(|(_, f)| *f)
            .unwrap_or_default();
        for pod in files {
            let name = pod.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&pod).unwrap();
            for object in ciguard::source::documents(&text, &name).unwrap() {
                let r = ciguard::merge::render(&policy, &object).unwrap();
                let want = expect_denied.contains(&name.as_str());
                assert_eq!(
                    r.denial.is_some(),
                    want,
                    "{at} on examples/.../{name}: {:?}",
                    r.denial.map(|d| d.message())
                );
            }
        }
    }
}
