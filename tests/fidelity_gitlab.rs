//! GitLab Runner's own Kubernetes tests, translated: each row names the upstream test and
//! subtest (gitlab-runner `executors/kubernetes/kubernetes_test.go`,
//! `common/config_test.go`), puts the runner settings of that case through
//! `ciguard import gitlab` (the library's importer), renders the pod the runner would
//! create with no security settings of its own (the job's image user on the container),
//! and asserts the runner's result, or a deliberate difference listed in
//! docs/migrate-gitlab-runner.md.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

mod common;

use std::collections::BTreeSet;

use ciguard::{
    ValidPolicy,
    merge::{Rendered, WarningCode},
};
use ciguard::{json, value::Value};
use common::{container, effective, render};

/// `[runners.kubernetes]` settings → a policy, through the importer.
fn import(kube: &str) -> (ValidPolicy, Vec<String>) {
    let text = format!(
        "[[runners]]\n  name = \"upstream\"\n  executor = \"kubernetes\"\n  [runners.kubernetes]\n{kube}\n"
    );
    let imported = ciguard::import::gitlab::import(&text, "config.toml", None)
        .unwrap_or_else(|e| panic!("import failed: {e}\n{text}"));
    let yaml = imported.to_yaml().unwrap();
    let policy = ciguard::policy::load::from_str(&yaml, "imported.yaml")
        .unwrap_or_else(|e| panic!("imported policy does not load: {e}\n{yaml}"));
    (policy, imported.warnings)
}

/// GitLab's pod (build, helper, svc-0, init-permissions) as a runner with no security
/// settings creates it: the job's image user `uid:gid` on `name`, which is added as an init
/// container when it is `init-build-uid-gid-collector`, and renamed from `svc-0` when it
/// is another service.
fn gitlab_pod(name: &str, job_user: &str) -> Value {
    let mut pod = common::example("examples/gitlab-runner/build-pod.yaml");
    if name == "init-build-uid-gid-collector" {
        pod["spec"]["initContainers"].as_array_mut().unwrap().insert(
            0,
            json!({"name": name, "image": "ruby:3.3", "command": ["sh", "-c", "> /builds/.uid-gid"]}),
        );
    } else if !["build", "helper", "init-permissions"].contains(&name) {
        let svc = pod["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|c| c["name"] == "svc-0")
            .unwrap();
        svc["name"] = json!(name);
    }
    let mut ctx = ciguard::value::Map::new();
    let (uid, gid) = job_user.split_once(':').unwrap_or((job_user, ""));
    for (field, id) in [("runAsUser", uid), ("runAsGroup", gid)] {
        if !id.is_empty() {
            // The runner parses the ID as a number; a name stays a name.
            let v = id.parse::<i64>().map_or_else(|_| json!(id), |n| json!(n));
            ctx.insert(field.into(), v);
        }
    }
    for list in ["containers", "initContainers"] {
        for c in pod["spec"][list].as_array_mut().unwrap() {
            let c = c.as_object_mut().unwrap();
            if c["name"] == name && !ctx.is_empty() {
                c.insert("securityContext".into(), Value::Object(ctx.clone()));
            } else {
                c.remove("securityContext");
            }
        }
    }
    pod
}

fn id(r: &Rendered, name: &str, field: &str) -> Option<i64> {
    effective(r, name, field).and_then(Value::as_i64)
}

fn notices(r: &Rendered) -> Vec<String> {
    r.warnings
        .iter()
        .filter(|w| w.code == WarningCode::OverriddenByPolicy)
        .map(|w| w.message())
        .collect()
}

fn problems(r: &Rendered) -> Vec<String> {
    r.warnings
        .iter()
        .filter(|w| !w.code.is_notice())
        .map(|w| w.message())
        .collect()
}

/// A deliberate difference must be listed, with its reason, in the migration guide.
fn documented(difference: &str) {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/migrate-gitlab-runner.md"
    ))
    .unwrap();
    assert!(
        doc.contains(&format!("| `{difference}` |")),
        "difference `{difference}` is not in the table of docs/migrate-gitlab-runner.md"
    );
}

/// The section of config.toml GitLab applies to a container.
fn section(name: &str) -> &'static str {
    match name {
        "build" | "init-build-uid-gid-collector" => "build_container_security_context",
        "helper" => "helper_container_security_context",
        "init-permissions" => "init_permissions_container_security_context",
        _ => "service_container_security_context",
    }
}

/// Runs every row and reports all failing ones at once.
fn run_rows<R>(rows: &[R], name: impl Fn(&R) -> &str, check: impl Fn(&R) -> Result<(), String>) {
    let failed: Vec<String> = rows
        .iter()
        .filter_map(|r| check(r).err().map(|e| format!("{}: {e}", name(r))))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} rows differ:\n{}",
        failed.len(),
        rows.len(),
        failed.join("\n")
    );
}

// ---------------------------------------------------------------------------------------
// getContainerUIDGID: the container's context, then pod_security_context, then the job.

struct UidGid {
    upstream: &'static str,
    container: &'static str,
    job: &'static str,
    /// The container's own section (`run_as_user = …`), inline.
    section: &'static str,
    pod: &'static str,
    allowed_users: &'static str,
    allowed_groups: &'static str,
    uid: Option<i64>,
    gid: Option<i64>,
    /// Expected problem warning (text it contains), as GitLab's `expectWarning`.
    warning: Option<&'static str>,
    /// Expected "Overriding …" notices: (field, job value, result, layer).
    notices: &'static [(&'static str, i64, i64, &'static str)],
}

const fn row(upstream: &'static str, container: &'static str, job: &'static str) -> UidGid {
    UidGid {
        upstream,
        container,
        job,
        section: "",
        pod: "",
        allowed_users: "",
        allowed_groups: "",
        uid: None,
        gid: None,
        warning: None,
        notices: &[],
    }
}

const T1: &str = "TestGetContainerUIDGIDWithPodSecurityContext";
const T2: &str = "TestGetContainerUIDGIDLogging";

const UID_GID: &[UidGid] = &[
    UidGid {
        pod: "run_as_user = 2000, run_as_group = 2001",
        uid: Some(2000),
        gid: Some(2001),
        ..row(
            "TestGetContainerUIDGIDWithPodSecurityContext/pod security context provides defaults when job and container have no values",
            "build",
            "",
        )
    },
    UidGid {
        section: "run_as_user = 3000, run_as_group = 3001",
        pod: "run_as_user = 2000, run_as_group = 2001",
        uid: Some(3000),
        gid: Some(3001),
        ..row(
            "TestGetContainerUIDGIDWithPodSecurityContext/container security context overrides pod security context",
            "build",
            "",
        )
    },
    UidGid {
        pod: "run_as_user = 2000, run_as_group = 2001",
        uid: Some(2000),
        gid: Some(2001),
        notices: &[
            ("runAsUser", 1000, 2000, "pod.enforced"),
            ("runAsGroup", 1001, 2001, "pod.enforced"),
        ],
        ..row(
            "TestGetContainerUIDGIDWithPodSecurityContext/pod security context overrides job configuration",
            "build",
            "1000:1001",
        )
    },
    UidGid {
        section: "run_as_user = 3000, run_as_group = 3001",
        pod: "run_as_user = 2000, run_as_group = 2001",
        uid: Some(3000),
        gid: Some(3001),
        notices: &[
            ("runAsUser", 1000, 3000, "build.enforced"),
            ("runAsGroup", 1001, 3001, "build.enforced"),
        ],
        ..row(
            "TestGetContainerUIDGIDWithPodSecurityContext/container security context overrides both pod and job",
            "build",
            "1000:1001",
        )
    },
    UidGid {
        section: "run_as_user = 3000",
        pod: "run_as_user = 2000, run_as_group = 2001",
        uid: Some(3000),
        gid: Some(2001),
        notices: &[
            ("runAsUser", 1000, 3000, "build.enforced"),
            ("runAsGroup", 1001, 2001, "pod.enforced"),
        ],
        ..row(
            "TestGetContainerUIDGIDWithPodSecurityContext/partial container override - user only, pod provides group",
            "build",
            "1000:1001",
        )
    },
    UidGid {
        pod: "run_as_group = 2001",
        uid: Some(1000),
        gid: Some(2001),
        notices: &[("runAsGroup", 1001, 2001, "pod.enforced")],
        ..row(
            "TestGetContainerUIDGIDWithPodSecurityContext/partial pod override - group only, job provides user",
            "build",
            "1000:1001",
        )
    },
    UidGid {
        pod: "run_as_user = 9999, run_as_group = 9998",
        allowed_users: r#""1000", "2000""#,
        allowed_groups: r#""1001", "2001""#,
        uid: Some(9999),
        gid: Some(9998),
        notices: &[
            ("runAsUser", 1000, 9999, "pod.enforced"),
            ("runAsGroup", 1001, 9998, "pod.enforced"),
        ],
        ..row(
            "TestGetContainerUIDGIDWithPodSecurityContext/pod security context bypasses job user allowlist validation",
            "build",
            "1000:1001",
        )
    },
    UidGid {
        section: "run_as_user = 0",
        pod: "run_as_user = 2000, run_as_group = 2001",
        allowed_users: r#""1000", "65534""#,
        uid: Some(0),
        gid: Some(2001),
        ..row(
            "TestGetContainerUIDGIDWithPodSecurityContext/container security context bypasses validation while pod provides fallback",
            "build",
            "",
        )
    },
    UidGid {
        allowed_users: r#""1000", "2000""#,
        uid: None,
        gid: Some(9998),
        warning: Some("runAsUser 9999 is not allowed by allowedUsers"),
        ..row(
            "TestGetContainerUIDGIDWithPodSecurityContext/job validation still applies when no pod/container values provided",
            "build",
            "9999:9998",
        )
    },
    UidGid {
        pod: "run_as_user = 0, run_as_group = 0",
        uid: Some(0),
        gid: Some(0),
        ..row(
            "TestGetContainerUIDGIDWithPodSecurityContext/pod allows root despite default blocking (admin override)",
            "build",
            "",
        )
    },
    UidGid {
        section: "run_as_group = 3001",
        pod: "run_as_user = 2000, run_as_group = 2001",
        uid: Some(2000),
        gid: Some(3001),
        notices: &[
            ("runAsUser", 1000, 2000, "pod.enforced"),
            ("runAsGroup", 1001, 3001, "build.enforced"),
        ],
        ..row(
            "TestGetContainerUIDGIDWithPodSecurityContext/precedence test: all three sources provided",
            "build",
            "1000:1001",
        )
    },
    // The log lines: "Overriding user for container %q to %q is not allowed: user is set to
    // %d in %s" become overridden-by-policy notices naming the same four things.
    UidGid {
        section: "run_as_user = 2000, run_as_group = 2001",
        uid: Some(2000),
        gid: Some(2001),
        notices: &[
            ("runAsUser", 1000, 2000, "build.enforced"),
            ("runAsGroup", 1001, 2001, "build.enforced"),
        ],
        ..row(
            "TestGetContainerUIDGIDLogging/container security context overrides job user",
            "build",
            "1000:1001",
        )
    },
    UidGid {
        pod: "run_as_user = 3000, run_as_group = 3001",
        uid: Some(3000),
        gid: Some(3001),
        notices: &[
            ("runAsUser", 1000, 3000, "pod.enforced"),
            ("runAsGroup", 1001, 3001, "pod.enforced"),
        ],
        ..row(
            "TestGetContainerUIDGIDLogging/pod security context overrides job user",
            "helper",
            "1000:1001",
        )
    },
    UidGid {
        section: "run_as_user = 2000",
        uid: Some(2000),
        gid: Some(1001),
        notices: &[("runAsUser", 1000, 2000, "service.enforced")],
        ..row(
            "TestGetContainerUIDGIDLogging/only user is overridden by container context",
            "service-0",
            "1000:1001",
        )
    },
    UidGid {
        pod: "run_as_group = 3001",
        uid: Some(1000),
        gid: Some(3001),
        notices: &[("runAsGroup", 1001, 3001, "pod.enforced")],
        ..row(
            "TestGetContainerUIDGIDLogging/only group is overridden by pod context",
            "service-1",
            "1000:1001",
        )
    },
    UidGid {
        section: "run_as_user = 2000, run_as_group = 2001",
        uid: Some(2000),
        gid: Some(2001),
        ..row(
            "TestGetContainerUIDGIDLogging/no logging when job user is empty",
            "build",
            "",
        )
    },
    UidGid {
        uid: Some(1000),
        gid: Some(1001),
        ..row(
            "TestGetContainerUIDGIDLogging/no logging when values come from job",
            "build",
            "1000:1001",
        )
    },
    UidGid {
        section: "run_as_user = 4000, run_as_group = 4001",
        pod: "run_as_user = 3000, run_as_group = 3001",
        uid: Some(4000),
        gid: Some(4001),
        notices: &[
            ("runAsUser", 1000, 4000, "build.enforced"),
            ("runAsGroup", 1001, 4001, "build.enforced"),
        ],
        ..row(
            "TestGetContainerUIDGIDLogging/container context takes precedence over pod context",
            "build",
            "1000:1001",
        )
    },
];

fn uid_gid_config(r: &UidGid) -> String {
    let mut kube = String::new();
    if !r.allowed_users.is_empty() {
        kube.push_str(&format!("    allowed_users = [{}]\n", r.allowed_users));
    }
    if !r.allowed_groups.is_empty() {
        kube.push_str(&format!("    allowed_groups = [{}]\n", r.allowed_groups));
    }
    if !r.pod.is_empty() {
        kube.push_str(&format!("    pod_security_context = {{{}}}\n", r.pod));
    }
    if !r.section.is_empty() {
        kube.push_str(&format!("    {} = {{{}}}\n", section(r.container), r.section));
    }
    kube
}

#[test]
fn get_container_uid_gid() {
    assert!(
        UID_GID
            .iter()
            .all(|r| r.upstream.starts_with(T1) || r.upstream.starts_with(T2))
    );
    run_rows(
        UID_GID,
        |r| r.upstream,
        |r| {
            let (policy, _) = import(&uid_gid_config(r));
            let out = render(&policy, &gitlab_pod(r.container, r.job));
            let got = (
                id(&out, r.container, "runAsUser"),
                id(&out, r.container, "runAsGroup"),
            );
            if got != (r.uid, r.gid) {
                return Err(format!("uid/gid {got:?}, GitLab {:?}", (r.uid, r.gid)));
            }
            let problems = problems(&out);
            match r.warning {
                Some(w) if !problems.iter().any(|p| p.contains(w)) => {
                    return Err(format!("no warning containing {w:?}: {problems:?}"));
                }
                None if !problems.is_empty() => return Err(format!("unexpected warnings {problems:?}")),
                _ => {}
            }
            let want: BTreeSet<String> = r
                .notices
                .iter()
                .map(|(field, asked, set, from)| {
                    format!(
                        "container \"{}\": {field}: the job asked for {asked}, the policy sets {set} from {from}",
                        r.container
                    )
                })
                .collect();
            let got: BTreeSet<String> = notices(&out).into_iter().collect();
            if got != want {
                return Err(format!("notices {got:#?}, GitLab logs {want:#?}"));
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------
// Whole security contexts of the init containers and capabilities (TestSetupBuildPod).

struct Context {
    upstream: &'static str,
    container: &'static str,
    job: &'static str,
    kube: &'static str,
    /// GitLab's resulting `securityContext` of the container.
    expected: &'static str,
    /// A deliberate difference (a row of the table in docs/migrate-gitlab-runner.md).
    difference: Option<&'static str>,
    warning: Option<&'static str>,
}

const FULL_SECTION: &str = "{run_as_user = 1000, run_as_group = 1000, run_as_non_root = true, read_only_root_filesystem = true, privileged = false, allow_privilege_escalation = false, capabilities = {drop = [\"ALL\"]}}";
const FULL_EXPECTED: &str = r#"{"runAsNonRoot": true, "readOnlyRootFilesystem": true, "privileged": false, "allowPrivilegeEscalation": false, "runAsUser": 1000, "runAsGroup": 1000, "capabilities": {"drop": ["ALL"]}}"#;

const fn ctx(
    upstream: &'static str,
    container: &'static str,
    kube: &'static str,
    expected: &'static str,
) -> Context {
    Context {
        upstream,
        container,
        job: "",
        kube,
        expected,
        difference: None,
        warning: None,
    }
}

fn contexts() -> Vec<Context> {
    let full_init = format!("    init_permissions_container_security_context = {FULL_SECTION}\n");
    let full_build = format!("    build_container_security_context = {FULL_SECTION}\n");
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    vec![
        Context {
            difference: Some("drop-union"),
            ..ctx(
                "TestInitPermissionContainerSecurityContext/init permission security context",
                "init-permissions",
                leak(full_init),
                FULL_EXPECTED,
            )
        },
        ctx(
            "TestInitPermissionContainerSecurityContext/no security context",
            "init-permissions",
            "",
            r#"{"capabilities": {"drop": ["NET_RAW"]}}"#,
        ),
        Context {
            job: "1500:1600",
            ..ctx(
                "TestInitBuildUidGidCollectorSecurityContext/init uid/gid collector inherits job user when no security context",
                "init-build-uid-gid-collector",
                "",
                r#"{"capabilities": {"drop": ["NET_RAW"]}, "runAsUser": 1500, "runAsGroup": 1600}"#,
            )
        },
        Context {
            job: "1500:1600",
            difference: Some("drop-union"),
            ..ctx(
                "TestInitBuildUidGidCollectorSecurityContext/init uid/gid collector security context overrides job user",
                "init-build-uid-gid-collector",
                leak(full_build),
                FULL_EXPECTED,
            )
        },
        Context {
            job: "1500:1600",
            ..ctx(
                "TestInitBuildUidGidCollectorSecurityContext/init uid/gid collector bypasses allowlist with security context",
                "init-build-uid-gid-collector",
                "    allowed_users = [\"2000\"]\n    allowed_groups = [\"2100\"]\n    build_container_security_context = {run_as_user = 1000, run_as_group = 1000}\n",
                r#"{"capabilities": {"drop": ["NET_RAW"]}, "runAsUser": 1000, "runAsGroup": 1000}"#,
            )
        },
        Context {
            job: "1500:1600",
            warning: Some("runAsUser 1500 is not allowed by allowedUsers"),
            ..ctx(
                "TestInitBuildUidGidCollectorSecurityContext/init uid/gid collector job user blocked by allowlist",
                "init-build-uid-gid-collector",
                "    allowed_users = [\"2000\"]\n    allowed_groups = [\"2100\"]\n",
                r#"{"capabilities": {"drop": ["NET_RAW"]}}"#,
            )
        },
        ctx(
            "TestInitBuildUidGidCollectorSecurityContext/init uid/gid collector can run as root via security context despite allowlist",
            "init-build-uid-gid-collector",
            "    allowed_users = [\"1000\"]\n    allowed_groups = [\"1000\"]\n    build_container_security_context = {run_as_user = 0, run_as_group = 0}\n",
            r#"{"capabilities": {"drop": ["NET_RAW"]}, "runAsUser": 0, "runAsGroup": 0}"#,
        ),
        Context {
            job: "1500:1600",
            ..ctx(
                "TestInitBuildUidGidCollectorSecurityContext/init uid/gid collector with only user in security context",
                "init-build-uid-gid-collector",
                "    build_container_security_context = {run_as_user = 1000}\n",
                r#"{"capabilities": {"drop": ["NET_RAW"]}, "runAsUser": 1000, "runAsGroup": 1600}"#,
            )
        },
        Context {
            job: "1500:1600",
            ..ctx(
                "TestInitBuildUidGidCollectorSecurityContext/init uid/gid collector with only group in security context",
                "init-build-uid-gid-collector",
                "    build_container_security_context = {run_as_group = 1000}\n",
                r#"{"capabilities": {"drop": ["NET_RAW"]}, "runAsUser": 1500, "runAsGroup": 1000}"#,
            )
        },
        ctx(
            "TestSetupBuildPod/support setting linux capabilities",
            "build",
            "    cap_add = [\"CAP_1\", \"CAP_2\"]\n    cap_drop = [\"CAP_3\", \"CAP_4\"]\n",
            r#"{"capabilities": {"add": ["CAP_1", "CAP_2"], "drop": ["NET_RAW", "CAP_3", "CAP_4"]}}"#,
        ),
        ctx(
            "TestSetupBuildPod/setting linux capabilities overriding defaults",
            "build",
            "    cap_add = [\"NET_RAW\", \"CAP_2\"]\n",
            r#"{"capabilities": {"add": ["NET_RAW", "CAP_2"]}}"#,
        ),
        ctx(
            "TestSetupBuildPod/setting same linux capabilities, drop wins",
            "build",
            "    cap_add = [\"CAP_1\"]\n    cap_drop = [\"CAP_1\"]\n",
            r#"{"capabilities": {"drop": ["NET_RAW", "CAP_1"]}}"#,
        ),
    ]
    .into_iter()
    .chain(["build", "helper", "svc-0", "svc-1"].map(|c| {
        ctx(
            "TestSetupBuildPod/support setting linux capabilities on all containers",
            c,
            "    cap_add = [\"CAP_1\"]\n    cap_drop = [\"CAP_2\"]\n",
            r#"{"capabilities": {"add": ["CAP_1"], "drop": ["CAP_2", "NET_RAW"]}}"#,
        )
    }))
    .collect()
}

/// The fields GitLab's tests compare, with `capabilities` lists as sets.
fn normalized(ctx: &Value) -> Value {
    let mut out = ciguard::value::Map::new();
    for (k, v) in ctx.as_object().into_iter().flatten() {
        if k == "capabilities" {
            for (list, names) in v.as_object().into_iter().flatten() {
                let set: BTreeSet<String> = names
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|n| n.as_str().map(str::to_string))
                    .collect();
                if !set.is_empty() {
                    out.insert(format!("capabilities.{list}"), json!(set));
                }
            }
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

#[test]
fn container_security_contexts() {
    run_rows(
        &contexts(),
        |r| r.upstream,
        |r| {
            let (policy, _) = import(r.kube);
            let mut pod = gitlab_pod(r.container, r.job);
            if r.container == "svc-1" {
                let svc = json!({"name": "svc-1", "image": "redis:7"});
                pod["spec"]["containers"].as_array_mut().unwrap().push(svc);
            }
            let out = render(&policy, &pod);
            let got = normalized(&container(&out, r.container)["securityContext"]);
            let want = normalized(&serde_json::from_str(r.expected).unwrap());
            match r.difference {
                None if got != want => return Err(format!("{got}, GitLab {want}")),
                None => {}
                Some(d) => {
                    documented(d);
                    assert_eq!(d, "drop-union");
                    // Everything as GitLab, and the drop list a superset of GitLab's.
                    let (mut g, mut w) = (got.clone(), want.clone());
                    let gd = g.as_object_mut().unwrap().remove("capabilities.drop");
                    let wd = w.as_object_mut().unwrap().remove("capabilities.drop");
                    let superset = |a: &Option<Value>, b: &Option<Value>| {
                        let set = |v: &Option<Value>| -> BTreeSet<String> {
                            v.iter()
                                .flat_map(|v| {
                                    v.as_array()
                                        .unwrap()
                                        .iter()
                                        .map(|s| s.as_str().unwrap().to_string())
                                })
                                .collect()
                        };
                        set(a).is_superset(&set(b))
                    };
                    if g != w || !superset(&gd, &wd) {
                        return Err(format!("{got}, GitLab {want} (beyond `{d}`)"));
                    }
                }
            }
            let problems = problems(&out);
            match r.warning {
                Some(w) if !problems.iter().any(|p| p.contains(w)) => {
                    Err(format!("no warning containing {w:?}: {problems:?}"))
                }
                None if !problems.is_empty() => Err(format!("unexpected warnings {problems:?}")),
                _ => Ok(()),
            }
        },
    );
}

// ---------------------------------------------------------------------------------------
// The allowlists (common/config_test.go).

struct Allowed {
    upstream: &'static str,
    id: &'static str,
    list: &'static [&'static str],
    /// GitLab's verdict: `true` when IsUserAllowed/IsGroupAllowed returns an error.
    gitlab_error: bool,
    difference: Option<&'static str>,
}

const fn allowed(
    upstream: &'static str,
    id: &'static str,
    list: &'static [&'static str],
    gitlab_error: bool,
) -> Allowed {
    Allowed {
        upstream,
        id,
        list,
        gitlab_error,
        difference: None,
    }
}

const USER_IS_ALLOWED: &[Allowed] = &[
    allowed("Test_Kubernetes_UserIsAllowed/empty user", "", &[], false),
    allowed(
        "Test_Kubernetes_UserIsAllowed/no allowed users specified",
        "1000",
        &[],
        false,
    ),
    allowed(
        "Test_Kubernetes_UserIsAllowed/user in allowed list",
        "1000",
        &["1000", "1001"],
        false,
    ),
    allowed(
        "Test_Kubernetes_UserIsAllowed/user not in allowed list",
        "1002",
        &["1000", "1001"],
        true,
    ),
    allowed(
        "Test_Kubernetes_UserIsAllowed/single user allowed list",
        "1000",
        &["1000"],
        false,
    ),
    allowed(
        "Test_Kubernetes_UserIsAllowed/single user not in list",
        "1001",
        &["1000"],
        true,
    ),
    allowed(
        "Test_Kubernetes_UserIsAllowed/non-numeric user rejected",
        "nobody",
        &[],
        true,
    ),
    allowed(
        "Test_Kubernetes_UserIsAllowed/root user blocked by default",
        "0",
        &[],
        true,
    ),
    allowed(
        "Test_Kubernetes_UserIsAllowed/root user explicitly allowed",
        "0",
        &["0", "1000"],
        false,
    ),
    allowed(
        "Test_Kubernetes_UserIsAllowed/root user explicitly blocked",
        "0",
        &["1000", "1001"],
        true,
    ),
    allowed(
        "Test_Kubernetes_UserIsAllowed/root user bypass via 00",
        "00",
        &[],
        true,
    ),
    allowed(
        "Test_Kubernetes_UserIsAllowed/root user bypass via 000",
        "000",
        &[],
        true,
    ),
    allowed(
        "Test_Kubernetes_UserIsAllowed/root user bypass via -0",
        "-0",
        &[],
        true,
    ),
    allowed(
        "Test_Kubernetes_UserIsAllowed/root user via 00 explicitly allowed",
        "00",
        &["0"],
        false,
    ),
    allowed(
        "Test_Kubernetes_UserIsAllowed/root user via 000 explicitly allowed",
        "000",
        &["0"],
        false,
    ),
    Allowed {
        difference: Some("zero-spelling"),
        ..allowed(
            "Test_Kubernetes_UserIsAllowed/root user via 0 with 00 in allowlist",
            "0",
            &["00"],
            false,
        )
    },
    allowed(
        "Test_Kubernetes_UserIsAllowed/numeric user with mixed allowlist match",
        "1000",
        &["wheel", "1000"],
        false,
    ),
    allowed(
        "Test_Kubernetes_UserIsAllowed/numeric user with mixed allowlist no match",
        "1000",
        &["wheel", "1001"],
        true,
    ),
];

const GROUP_IS_ALLOWED: &[Allowed] = &[
    allowed(
        "Test_Kubernetes_GroupIsAllowed/no allowed groups",
        "1000",
        &[],
        false,
    ),
    allowed(
        "Test_Kubernetes_GroupIsAllowed/exact match",
        "1000",
        &["1000"],
        false,
    ),
    allowed(
        "Test_Kubernetes_GroupIsAllowed/exact match fails",
        "1000",
        &["1001"],
        true,
    ),
    allowed(
        "Test_Kubernetes_GroupIsAllowed/multiple groups",
        "1000",
        &["1000", "1001"],
        false,
    ),
    allowed(
        "Test_Kubernetes_GroupIsAllowed/empty group allowed",
        "",
        &["1000"],
        false,
    ),
    allowed(
        "Test_Kubernetes_GroupIsAllowed/non-numeric group rejected",
        "wheel",
        &[],
        true,
    ),
    allowed(
        "Test_Kubernetes_GroupIsAllowed/root group blocked by default",
        "0",
        &[],
        true,
    ),
    allowed(
        "Test_Kubernetes_GroupIsAllowed/root group explicitly allowed",
        "0",
        &["0", "1000"],
        false,
    ),
    allowed(
        "Test_Kubernetes_GroupIsAllowed/root group explicitly blocked",
        "0",
        &["1000", "1001"],
        true,
    ),
    allowed(
        "Test_Kubernetes_GroupIsAllowed/root group bypass via 00",
        "00",
        &[],
        true,
    ),
    allowed(
        "Test_Kubernetes_GroupIsAllowed/root group bypass via 000",
        "000",
        &[],
        true,
    ),
    allowed(
        "Test_Kubernetes_GroupIsAllowed/root group bypass via -0",
        "-0",
        &[],
        true,
    ),
    allowed(
        "Test_Kubernetes_GroupIsAllowed/root group via 00 explicitly allowed",
        "00",
        &["0"],
        false,
    ),
    allowed(
        "Test_Kubernetes_GroupIsAllowed/root group via 000 explicitly allowed",
        "000",
        &["0"],
        false,
    ),
    Allowed {
        difference: Some("zero-spelling"),
        ..allowed(
            "Test_Kubernetes_GroupIsAllowed/root group via 0 with 00 in allowlist",
            "0",
            &["00"],
            false,
        )
    },
    allowed(
        "Test_Kubernetes_GroupIsAllowed/numeric group with mixed allowlist match",
        "1000",
        &["wheel", "1000"],
        false,
    ),
    allowed(
        "Test_Kubernetes_GroupIsAllowed/numeric group with mixed allowlist no match",
        "1000",
        &["wheel", "1001"],
        true,
    ),
];

fn check_allowed(r: &Allowed, key: &str, field: &str) -> Result<(), String> {
    let list = r
        .list
        .iter()
        .map(|e| format!("\"{e}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let kube = if r.list.is_empty() {
        String::new()
    } else {
        format!("    {key} = [{list}]\n")
    };
    let (policy, import_warnings) = import(&kube);
    // The job's ID as the runner writes it into the pod (strconv.ParseInt; a name stays).
    let job = match field {
        "runAsUser" => r.id.to_string(),
        _ => format!("1000:{}", r.id),
    };
    let job = job.replace(":-0", ":0");
    let job = if job == "-0" { "0".to_string() } else { job };
    let out = render(&policy, &gitlab_pod("build", &job));
    let refused = problems(&out).iter().any(|p| p.contains(field));
    let kept = effective(&out, "build", field).is_some();
    let error = refused && !kept;
    if !r.id.is_empty() && error == kept {
        return Err(format!("neither kept nor refused: {:?}", out.warnings));
    }
    let ciguard_error = !r.id.is_empty() && error;
    match r.difference {
        None if ciguard_error != r.gitlab_error => Err(format!(
            "ciguard {}, GitLab {} (import warnings {import_warnings:?})",
            verdict(ciguard_error),
            verdict(r.gitlab_error)
        )),
        None => Ok(()),
        Some(d) => {
            documented(d);
            // "00" never means root in ciguard: the entry is skipped with a warning.
            if ciguard_error == r.gitlab_error
                || !import_warnings.iter().any(|w| w.contains("\"00\" means root"))
            {
                return Err(format!(
                    "expected the documented `{d}` difference: {import_warnings:?}"
                ));
            }
            Ok(())
        }
    }
}

fn verdict(error: bool) -> &'static str {
    if error { "refuses" } else { "allows" }
}

#[test]
fn user_is_allowed() {
    run_rows(
        USER_IS_ALLOWED,
        |r| r.upstream,
        |r| check_allowed(r, "allowed_users", "runAsUser"),
    );
}

#[test]
fn group_is_allowed() {
    run_rows(
        GROUP_IS_ALLOWED,
        |r| r.upstream,
        |r| check_allowed(r, "allowed_groups", "runAsGroup"),
    );
}

/// Malformed entries in a GitLab config are skipped with a warning naming the entry and
/// its position, as GitLab skips them; "00" is never root; a list left with no usable
/// entry allows nothing, as GitLab's.
#[test]
fn malformed_allowlist_entries_are_skipped_with_their_position() {
    let (policy, warnings) = import("    allowed_users = [\"wheel\", \">1\", \"00\", \"01000\"]\n");
    assert_eq!(
        policy.spec().allowed_users.as_deref(),
        Some(&["1000".to_string()][..])
    );
    assert_eq!(warnings.len(), 4, "{warnings:#?}");
    for (w, entry) in warnings.iter().zip(["wheel", ">1", "00", "01000"]) {
        assert!(w.starts_with("config.toml:5:"), "{w}");
        assert!(w.contains(&format!("\"{entry}\"")), "{w}");
    }
    let (policy, warnings) = import("    allowed_groups = [\"wheel\"]\n");
    assert!(
        warnings.iter().any(|w| w.contains("no usable entry")),
        "{warnings:?}"
    );
    let out = render(&policy, &gitlab_pod("build", "1000:1000"));
    assert_eq!(
        id(&out, "build", "runAsGroup"),
        None,
        "GitLab allows no group then"
    );
}
