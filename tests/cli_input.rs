//! What `render` and `check` read, as a user meets it: the real binary, exit codes 0/1/2
//! and stderr. Nothing is passed through unjudged (nested Lists are expanded, non-objects
//! are errors, an input with no objects is an error); real `kubectl get -o yaml` output is
//! read whatever its size, hostile YAML is still refused; BOMs, flow style, JSON streams,
//! symlink loops and a closed stdout are handled.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

mod common;

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use ciguard::value::Value;
use common::ciguard;
use rstest::rstest;

/// Runs the binary with these arguments (from the repository root).
fn run(args: &[&str]) -> Output {
    ciguard().args(args).output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes `text` to `name` in a fresh temporary directory; returns the directory and path.
fn temp_file(name: &str, text: impl AsRef<[u8]>) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A pod that restricted denies: privileged, uid 0.
const EVIL: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"evil"},"spec":{"containers":[{"name":"c","image":"x","securityContext":{"privileged":true,"runAsUser":0}}]}}"#;

/// A pod the built-in policy renders and allows.
fn pod(name: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}"}},"spec":{{"containers":[{{"name":"build","image":"alpine"}}]}}}}"#
    )
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

// ---- item 6: no fail-open input ------------------------------------------------------

/// A `v1/List` inside a `v1/List` was passed through `render` unchanged (a privileged,
/// uid-0 pod printed as is, exit 0), and `check` said nothing and exited 0. Its pods are
/// judged like any other now: the List is expanded, as kubectl expands it.
#[rstest]
#[case::json(format!(r#"{{"apiVersion":"v1","kind":"List","items":[{{"apiVersion":"v1","kind":"List","items":[{EVIL}]}}]}}"#))]
#[case::yaml_three_deep(format!(
    "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: List\n  items:\n  - apiVersion: v1\n    kind: PodList\n    items:\n    - {EVIL}\n"
))]
fn nested_list_is_judged(#[case] text: String) {
    let (_d, path) = temp_file("nested.yaml", text);
    let out = run(&["render", s(&path)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("denied: "), "{}", stderr(&out));
    assert!(stderr(&out).contains("Pod/evil"), "{}", stderr(&out));
    assert!(!stdout(&out).contains("privileged: true"), "{}", stdout(&out));

    let out = run(&["check", s(&path)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Pod/evil: violates PodSecurity"),
        "{}",
        stdout(&out)
    );
}

/// Nested Lists are expanded in kubectl's order: a List's own items, then the items of
/// the Lists among them (breadth first, as kubectl's FlattenListVisitor).
#[test]
fn nested_list_order_is_kubectls() {
    let text = format!(
        r#"{{"apiVersion":"v1","kind":"List","items":[{},{{"apiVersion":"v1","kind":"List","items":[{}]}},{}]}}"#,
        pod("a"),
        pod("b"),
        pod("c")
    );
    let (_d, path) = temp_file("l.json", text);
    let out = run(&["render", "-o", "json", s(&path)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(names(&list), ["a", "c", "b"]);
}

/// A List item that is not an object, or an object with no kind, was printed back as is
/// (exit 0). It is an error now, naming the item.
#[rstest]
#[case::number(
    "1",
    "/items/0: List item: expected a Kubernetes object (a mapping with apiVersion and kind), found a number"
)]
#[case::string(r#""x""#, "found a string")]
#[case::null("null", "found null")]
#[case::array("[]", "found an array")]
#[case::no_kind(r#"{"apiVersion":"v1"}"#, "/items/0: List item: kind is missing")]
#[case::nested(
    r#"{"apiVersion":"v1","kind":"List","items":[true]}"#,
    "/items/0/items/0: List item: expected a Kubernetes object (a mapping with apiVersion and kind), found a boolean"
)]
#[case::nested_without_items(
    r#"{"apiVersion":"v1","kind":"List"}"#,
    "/items/0: a List needs an `items` array"
)]
fn list_item_that_is_not_an_object_is_an_error(#[case] item: &str, #[case] message: &str) {
    let text = format!(r#"{{"apiVersion":"v1","kind":"List","items":[{item}]}}"#);
    let (_d, path) = temp_file("l.json", text);
    for cmd in ["render", "check"] {
        let out = run(&[cmd, s(&path)]);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", stderr(&out));
        assert!(stderr(&out).starts_with("error: "), "{cmd}: {}", stderr(&out));
        assert!(stderr(&out).contains(message), "{cmd}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{cmd}: {}", stdout(&out));
    }
}

/// A document that is not a Kubernetes object is an error too.
#[rstest]
#[case::no_api_version("kind: Pod\nmetadata: {name: x}\n", "document 0: apiVersion is missing")]
#[case::kind_not_a_string("apiVersion: v1\nkind: 7\n", "document 0: kind is a number")]
#[case::empty_kind("apiVersion: v1\nkind: ''\n", "document 0: kind is empty")]
fn document_that_is_not_an_object_is_an_error(#[case] text: &str, #[case] message: &str) {
    let (_d, path) = temp_file("x.yaml", text);
    let out = run(&["render", s(&path)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(message), "{}", stderr(&out));
}

/// An input with no documents at all rendered nothing and exited 0 (`check` warned and
/// exited 0). kubectl says "no objects passed"; so does ciguard, with exit 2.
#[rstest]
#[case::empty_file("empty.yaml", "")]
#[case::separators_only("seps.yaml", "---\n---\n")]
#[case::comments_only("c.yaml", "# nothing here\n")]
#[case::null_document("n.yaml", "null\n")]
#[case::empty_list("l.json", r#"{"apiVersion":"v1","kind":"List","items":[]}"#)]
#[case::empty_json_stream("e.json", "  \n")]
fn no_documents_is_exit_2(#[case] name: &str, #[case] text: &str) {
    let (dir, path) = temp_file(name, text);
    for cmd in ["render", "check"] {
        for input in [s(&path), s(dir.path())] {
            let out = run(&[cmd, input]);
            assert_eq!(out.status.code(), Some(2), "{cmd} {input}: {}", stderr(&out));
            assert_eq!(
                stderr(&out),
                "error: no objects passed: the inputs hold no Kubernetes objects\n",
                "{cmd} {input}"
            );
        }
    }
}

#[test]
fn empty_directory_and_empty_stdin_are_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in ["render", "check"] {
        run_code(&[cmd, s(dir.path())], 2);
        ciguard()
            .args([cmd, "-"])
            .write_stdin("")
            .assert()
            .code(2)
            .stderr(predicates::str::contains("no objects passed"));
    }
}

fn run_code(args: &[&str], code: i32) -> Output {
    let out = run(args);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
    out
}

/// A Service alone is an object: `check` finds no pod in it and says so, exit 0.
#[test]
fn objects_without_pods_are_not_an_empty_input() {
    let (_d, path) = temp_file("svc.yaml", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n");
    let out = run_code(&["check", s(&path)], 0);
    assert!(stderr(&out).contains("no pod or workload"), "{}", stderr(&out));
    run_code(&["render", s(&path)], 0);
}

// ---- item 9: real inputs are not refused ---------------------------------------------

/// One pod as `kubectl get pod -o yaml` writes it (managed fields, status and all):
/// about 250 YAML nodes. `indent` prefixes every line after the first.
fn kubectl_pod(i: usize, indent: &str) -> String {
    let text = format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubectl.kubernetes.io/default-container: build
    job.runner.gitlab.com/url: https://gitlab.example.com/group/project/-/jobs/{i}
  creationTimestamp: "2026-01-01T00:00:00Z"
  generateName: runner-abc-project-1-concurrent-
  labels:
    pod: runner-abc-project-1-concurrent-{i}
    project.runner.gitlab.com/id: "1"
    manager: gitlab-runner
  managedFields:
  - apiVersion: v1
    fieldsType: FieldsV1
    fieldsV1:
      f:metadata:
        f:annotations:
          .: {{}}
          f:job.runner.gitlab.com/url: {{}}
        f:generateName: {{}}
        f:labels:
          .: {{}}
          f:pod: {{}}
      f:spec:
        f:containers:
          k:{{"name":"build"}}:
            .: {{}}
            f:command: {{}}
            f:env:
              .: {{}}
              k:{{"name":"CI_JOB_ID"}}:
                .: {{}}
                f:name: {{}}
                f:value: {{}}
            f:image: {{}}
            f:imagePullPolicy: {{}}
            f:name: {{}}
            f:resources: {{}}
        f:dnsPolicy: {{}}
        f:restartPolicy: {{}}
    manager: gitlab-runner
    operation: Update
    time: "2026-01-01T00:00:00Z"
  name: runner-abc-project-1-concurrent-{i}
  namespace: ci
  resourceVersion: "{i}"
  uid: 00000000-0000-0000-0000-{i:012}
spec:
  containers:
  - command:
    - sh
    - -c
    - echo hello
    env:
    - name: CI_JOB_ID
      value: "{i}"
    - name: CI_PROJECT_DIR
      value: /builds/group/project
    - name: GIT_DEPTH
      value: "20"
    image: alpine:3.20
    imagePullPolicy: IfNotPresent
    name: build
    resources:
      limits:
        cpu: "1"
        memory: 1Gi
      requests:
        cpu: 100m
        memory: 128Mi
    terminationMessagePath: /dev/termination-log
    terminationMessagePolicy: File
    volumeMounts:
    - mountPath: /builds
      name: repo
    - mountPath: /var/run/secrets/kubernetes.io/serviceaccount
      name: kube-api-access-{i}
      readOnly: true
  dnsPolicy: ClusterFirst
  enableServiceLinks: true
  nodeName: node-1
  preemptionPolicy: PreemptLowerPriority
  priority: 0
  restartPolicy: Never
  schedulerName: default-scheduler
  securityContext: {{}}
  serviceAccount: default
  serviceAccountName: default
  terminationGracePeriodSeconds: 30
  tolerations:
  - effect: NoExecute
    key: node.kubernetes.io/not-ready
    operator: Exists
    tolerationSeconds: 300
  - effect: NoExecute
    key: node.kubernetes.io/unreachable
    operator: Exists
    tolerationSeconds: 300
  volumes:
  - emptyDir: {{}}
    name: repo
  - name: kube-api-access-{i}
    projected:
      defaultMode: 420
      sources:
      - serviceAccountToken:
          expirationSeconds: 3607
          path: token
      - configMap:
          items:
          - key: ca.crt
            path: ca.crt
          name: kube-root-ca.crt
      - downwardAPI:
          items:
          - fieldRef:
              apiVersion: v1
              fieldPath: metadata.namespace
            path: namespace
status:
  conditions:
  - lastProbeTime: null
    lastTransitionTime: "2026-01-01T00:00:00Z"
    status: "True"
    type: Initialized
  - lastProbeTime: null
    lastTransitionTime: "2026-01-01T00:00:00Z"
    status: "True"
    type: Ready
  containerStatuses:
  - containerID: containerd://{i:064}
    image: docker.io/library/alpine:3.20
    imageID: docker.io/library/alpine@sha256:{i:064}
    lastState: {{}}
    name: build
    ready: true
    restartCount: 0
    started: true
    state:
      running:
        startedAt: "2026-01-01T00:00:00Z"
  hostIP: 10.0.0.1
  phase: Running
  podIP: 10.1.0.{}
  qosClass: Burstable
  startTime: "2026-01-01T00:00:00Z"
"#,
        i % 250
    );
    let mut out = String::new();
    for (n, line) in text.lines().enumerate() {
        if n > 0 {
            out.push_str(indent);
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A 1,100-document stream was refused by the parser's document budget (1,024).
#[test]
fn stream_of_1100_documents_is_read() {
    let text: Vec<String> = (0..1100).map(|i| kubectl_pod(i, "")).collect();
    let (_d, path) = temp_file("stream.yaml", text.join("---\n"));
    // `check` reads through the same reader (the 1,500-pod test runs it).
    let out = run_code(&["render", "-o", "json", s(&path)], 0);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1100);
}

/// A 1,500-pod YAML List (`kubectl get pods -A -o yaml`) was refused by the node budget,
/// while the same List as JSON passed.
#[test]
fn yaml_list_of_1500_pods_is_read() {
    let mut text = String::from("apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: \"\"\nitems:\n");
    for i in 0..1500 {
        text.push_str("- ");
        text.push_str(&kubectl_pod(i, "  "));
    }
    let (_d, path) = temp_file("pods.yaml", &text);
    let out = run_code(&["check", "--level", "baseline", "-o", "json", s(&path)], 0);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["results"].as_array().unwrap().len(), 1500);
    assert_eq!(report["results"][1499]["index"], 1499);
}

/// Hostile YAML is still refused, quickly, with an error and exit 2 (no panic, no
/// exhaustion).
#[rstest]
#[case::billion_laughs(
    billion_laughs(),
    "refused: aliases expand to far more nodes than the text holds"
)]
#[case::deep_flow(format!("apiVersion: v1\nkind: ConfigMap\nx: {}{}\n", "[".repeat(10_000), "]".repeat(10_000)), "")]
#[case::deep_block(format!("apiVersion: v1\nkind: ConfigMap\n{}", (0..10_000).map(|i| format!("{}a:\n", " ".repeat(i))).collect::<String>()), "refused: nesting deeper than 64 levels")]
#[case::deep_json(format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","x":{}{}}}"#, "[".repeat(10_000), "]".repeat(10_000)), "")]
fn hostile_yaml_is_refused(#[case] text: String, #[case] message: &str) {
    let (_d, path) = temp_file("hostile.yaml", text);
    let started = Instant::now();
    let out = run(&["render", s(&path)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.starts_with("error: ") && err.contains(message), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

fn billion_laughs() -> String {
    let mut text = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\ndata:\n");
    text.push_str("  a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    let mut prev = 'a';
    for c in 'b'..='i' {
        let refs = vec![format!("*{prev}"); 9].join(",");
        text.push_str(&format!("  {c}: &{c} [{refs}]\n"));
        prev = c;
    }
    text
}

// ---- item 9: encodings and spellings kubectl reads ------------------------------------

/// JSON with a byte-order mark was "expected value" at 1:1; flow-style YAML on one line was
/// "key must be a string"; JSON documents separated by `---` in a `.yaml` file were
/// "trailing characters" (issue 10, item 7). kubectl reads each; so does ciguard.
#[rstest]
#[case::json_with_bom("bom.json", format!("\u{feff}{}", pod("a")), &["a"])]
#[case::yaml_with_bom("bom.yaml", "\u{feff}apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c, image: x}]}\n".to_string(), &["a"])]
#[case::flow_yaml_one_line("flow.yaml", "{apiVersion: v1, kind: Pod, metadata: {name: a}, spec: {containers: [{name: c, image: x}]}}\n".to_string(), &["a"])]
#[case::json_documents_separated_by_dashes("multi.yaml", format!("{}\n---\n{}\n---\n{}\n", pod("a"), pod("b"), pod("c")), &["a", "b", "c"])]
#[case::json_documents_leading_dashes("multi.yaml", format!("---\n{}\n---\n{}\n", pod("a"), pod("b")), &["a", "b"])]
#[case::json_then_yaml("mixed.yaml", format!("{}\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: b}}\nspec: {{containers: [{{name: c, image: x}}]}}\n", pod("a")), &["a", "b"])]
#[case::json_values_one_after_another("concat.json", format!("{}\n{}\n", pod("a"), pod("b")), &["a", "b"])]
fn kubectl_spellings_are_read(#[case] name: &str, #[case] text: String, #[case] want: &[&str]) {
    let (_d, path) = temp_file(name, text);
    let out = run_code(&["render", "-o", "json", s(&path)], 0);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let got = if want.len() == 1 {
        vec![v["metadata"]["name"].as_str().unwrap().to_string()]
    } else {
        names(&v)
    };
    assert_eq!(got, want);
    run_code(&["check", "--level", "baseline", s(&path)], 0);
}

/// UTF-16 with a byte-order mark, as Windows tools write it (kubectl reads it).
#[test]
fn utf16_with_bom_is_read() {
    let text = pod("a");
    let mut bytes = vec![0xff, 0xfe];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let (_d, path) = temp_file("utf16.json", bytes);
    let out = run_code(&["render", "-o", "json", s(&path)], 0);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["metadata"]["name"], "a");
}

/// Broken text that opens like JSON gets the error of the parser that read further.
#[rstest]
#[case::json(r#"{"apiVersion": "v1", "kind": }"#, "x.json:1:")]
#[case::flow_yaml("{apiVersion: v1, kind: [}\n", "x.json:1:24: ")]
fn broken_json_or_flow_yaml_is_located(#[case] text: &str, #[case] at: &str) {
    let (_d, path) = temp_file("x.json", text);
    let out = run_code(&["render", s(&path)], 2);
    assert!(stderr(&out).contains(at), "{}", stderr(&out));
}

/// A symlink loop in an input directory emitted the same pod 41 times (until the path
/// was too long). Each real file is read once, each real directory walked once.
#[test]
fn symlink_loop_in_a_directory_reads_each_file_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pod.yaml"), pod("only")).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::os::unix::fs::symlink("..", dir.path().join("sub/up")).unwrap();
    std::os::unix::fs::symlink(".", dir.path().join("loop")).unwrap();
    std::os::unix::fs::symlink("pod.yaml", dir.path().join("same.yaml")).unwrap();
    for cmd in [
        &["render", "-o", "json"][..],
        &["check", "--level", "baseline", "-o", "json"][..],
    ] {
        let mut args = cmd.to_vec();
        args.push(s(dir.path()));
        let out = run_code(&args, 0);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let count = if cmd[0] == "render" {
            usize::from(v["kind"] == "Pod")
        } else {
            v["results"].as_array().unwrap().len()
        };
        assert_eq!(count, 1, "{cmd:?}: {}", stdout(&out));
    }
}

/// `ciguard render … | head -1` printed "error: Broken pipe (os error 32)" and exited 2.
/// A reader that goes away ends the output quietly, with the command's own exit code.
#[rstest]
#[case::render_allowed(&["render"], false, 0)]
#[case::render_json(&["render", "-o", "json"], false, 0)]
#[case::check(&["check", "--level", "baseline"], false, 0)]
#[case::render_denied_still_exit_1(&["render"], true, 1)]
fn closed_stdout_ends_quietly(#[case] cmd: &[&str], #[case] evil: bool, #[case] code: i32) {
    // Far more output than a pipe buffers, so a write must meet the closed pipe.
    let count = if cmd[0] == "check" { 1000 } else { 100 };
    let mut text: Vec<String> = (0..count).map(|i| kubectl_pod(i, "")).collect();
    if evil {
        text.push(EVIL.to_string());
    }
    let (_d, path) = temp_file("many.yaml", text.join("---\n"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_ciguard"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(cmd)
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one line, as `head -1` does, then close the pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(!err.contains("error") && !err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(code), "{err}");
}

// ---- item 10: tests that skip say so --------------------------------------------------

/// Not a check of its own: `shared_skip_says_so_on_stderr` runs it in a child process.
#[test]
fn shared_probe() {
    if std::env::var_os("CIGUARD_SHARED_PROBE").is_none() {
        return;
    }
    assert!(common::shared("no-such-folder-for-the-probe").is_none());
}

/// A test that needs `../shared` and skips says so where `cargo test` shows it (stderr,
/// not captured), and fails when `CI` is set. It printed with `println!`, which the test
/// harness captures and hides for a passing test.
#[test]
fn shared_skip_says_so_on_stderr() {
    let exe = std::env::current_exe().unwrap();
    let probe = |ci: bool| {
        let mut c = Command::new(&exe);
        c.args(["--exact", "shared_probe", "--test-threads=1"])
            .env("CIGUARD_SHARED_PROBE", "1");
        if ci {
            c.env("CI", "true");
        } else {
            c.env_remove("CI");
        }
        c.output().unwrap()
    };
    let out = probe(false);
    assert!(out.status.success(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("skipped: shared_probe: ") && err.contains("no-such-folder-for-the-probe is absent"),
        "{err}"
    );
    let out = probe(true);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("CI is set"), "{}", stdout(&out));
}
