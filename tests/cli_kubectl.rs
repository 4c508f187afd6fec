//! kubectl habits of the CLI, through the real binary: `-f/--filename` (repeatable, `-`,
//! directories with and without `-R`) beside positional inputs, `render -o name`, the
//! `kubectl-ciguard` plugin name, and `ciguard completion`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

mod common;

use std::{path::Path, process::Output};

use common::ciguard;
use rstest::rstest;

fn pod(name: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"}},"spec":{{"containers":[{{"name":"build","image":"alpine"}}]}}}}"#
    )
}

/// A tree: top.yaml, top.json, notes.txt (not read from a directory), sub/deep.yml.
fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("top.yaml"), pod("top-yaml")).unwrap();
    std::fs::write(dir.path().join("top.json"), pod("top-json")).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/deep.yml"), pod("deep")).unwrap();
    dir
}

fn names(out: &Output) -> Vec<String> {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// kubectl's reading of `-f` (k8s.io/cli-runtime resource.FileVisitor): a directory's
/// files with a manifest extension, recursively only with `-R`; positional inputs first.
#[rstest]
#[case::file(&["-f", "{d}/top.yaml"], &["pod/top-yaml"])]
#[case::repeated(&["-f", "{d}/top.yaml", "--filename", "{d}/sub/deep.yml"], &["pod/top-yaml", "pod/deep"])]
#[case::dir_flat(&["-f", "{d}"], &["pod/top-json", "pod/top-yaml"])]
#[case::dir_recursive(&["-R", "-f", "{d}"], &["pod/deep", "pod/top-json", "pod/top-yaml"])]
#[case::positional_then_f(&["-f", "{d}/top.yaml", "{d}/sub"], &["pod/deep", "pod/top-yaml"])]
#[case::positional_dir_recurses(&["{d}"], &["pod/deep", "pod/top-json", "pod/top-yaml"])]
fn filename_flags(#[case] args: &[&str], #[case] want: &[&str]) {
    let dir = tree();
    let args: Vec<String> = args.iter().map(|a| a.replace("{d}", &s(dir.path()))).collect();
    let out = ciguard()
        .args(["render", "-o", "name"])
        .args(&args)
        .output()
        .unwrap();
    assert_eq!(names(&out), want);
}

#[test]
fn filename_dash_is_stdin() {
    let out = ciguard()
        .args(["render", "-o", "name", "-f", "-"])
        .write_stdin(pod("from-stdin"))
        .output()
        .unwrap();
    assert_eq!(names(&out), ["pod/from-stdin"]);
}

#[test]
fn check_and_audit_take_filename() {
    let dir = tree();
    let out = ciguard()
        .args(["check", "-f", &s(&dir.path().join("top.yaml"))])
        .output()
        .unwrap();
    // The built-in policy's target is restricted, which a bare pod fails: exit 1.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("top-yaml"));
    let out = ciguard()
        .args(["audit", "-o", "json", "-R", "-f", &s(dir.path())])
        .output()
        .unwrap();
    let report: ciguard::value::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["groups"][0]["pods"], 3);
}

/// Naming no input is a usage error (exit 2) that says what to give.
#[rstest]
#[case::render("render")]
#[case::check("check")]
#[case::audit("audit")]
fn no_input_is_exit_2(#[case] cmd: &str) {
    let out = ciguard().arg(cmd).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no input"), "{stderr}");
}

#[test]
fn recursive_needs_filename() {
    let out = ciguard().args(["render", "-R", "x.yaml"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `--cluster` options without `--cluster`, and files with it, are usage errors.
#[rstest]
#[case::context_alone(&["audit", "--context", "x", "pods.yaml"])]
#[case::namespace_alone(&["audit", "-n", "ci", "pods.yaml"])]
#[case::both_scopes(&["audit", "--cluster", "-n", "ci", "-A"])]
#[case::files_and_cluster(&["audit", "--cluster", "pods.yaml"])]
fn cluster_flag_misuse_is_exit_2(#[case] args: &[&str]) {
    let out = ciguard().args(args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// No kubeconfig anywhere: `audit --cluster` says so (exit 2) rather than auditing nothing.
#[test]
fn cluster_without_kubeconfig_is_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let out = ciguard()
        .args(["audit", "--cluster", "-A"])
        .env("HOME", home.path())
        .env("KUBECONFIG", home.path().join("absent"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
}

/// Run under kubectl's plugin name, the usage says `kubectl ciguard`.
#[test]
fn kubectl_plugin_name() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("kubectl-ciguard");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ciguard"), &plugin).unwrap();
    let out = std::process::Command::new(&plugin)
        .args(["render", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("Usage: kubectl ciguard render"), "{help}");
    let out = std::process::Command::new(&plugin)
        .args(["render", "-o", "name", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(pod("p").as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(names(&out), ["pod/p"]);
}

/// Each shell's script names the binary and its subcommands.
#[rstest]
#[case::bash("bash", "_ciguard()")]
#[case::zsh("zsh", "#compdef ciguard")]
#[case::fish("fish", "complete -c ciguard")]
fn completion_scripts(#[case] shell: &str, #[case] marker: &str) {
    let out = ciguard().args(["completion", shell]).output().unwrap();
    assert!(out.status.success());
    let script = String::from_utf8(out.stdout).unwrap();
    assert!(script.contains(marker), "{shell}: no {marker:?}");
    for sub in ["render", "check", "audit", "webhook-config"] {
        assert!(script.contains(sub), "{shell}: no {sub}");
    }
}
