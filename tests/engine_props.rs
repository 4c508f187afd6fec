//! Property tests of the merge engine: enforced values always win, rendering is
//! idempotent, the patch reproduces the output, a record left out changes nothing else,
//! and no input makes it panic.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

mod common;

use ciguard::{
    ValidPolicy,
    merge::{Options, PodSecurity, render, render_owned_with},
    policy::Preset,
};
use ciguard::{
    json,
    value::{Map, Value},
};
use proptest::prelude::*;

/// The number of cases: `PROPTEST_CASES` when set (for long runs), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pick<T: Clone + std::fmt::Debug + 'static>(items: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(items)
}

fn caps() -> impl Strategy<Value = Value> {
    (
        proptest::option::of(proptest::sample::subsequence(
            &["ALL", "NET_RAW", "CHOWN"][..],
            0..=3,
        )),
        proptest::option::of(proptest::sample::subsequence(
            &["NET_BIND_SERVICE", "SYS_ADMIN", "KILL"][..],
            0..=2,
        )),
    )
        .prop_map(|(drop, add)| {
            let mut m = Map::new();
            if let Some(d) = drop {
                m.insert("drop".into(), json!(d));
            }
            if let Some(a) = add {
                m.insert("add".into(), json!(a));
            }
            Value::Object(m)
        })
}

/// A container security context, as a job or an admin might write it.
fn container_ctx(enforced: bool) -> impl Strategy<Value = Value> {
    let ids: &'static [i64] = if enforced {
        &[1000, 2000, 65534]
    } else {
        &[0, 1000, 1001, 2000, 65534]
    };
    let privileged: &'static [bool] = if enforced { &[false] } else { &[false, true] };
    (
        proptest::option::of(pick(ids)),
        proptest::option::of(pick(ids)),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(pick(privileged)),
        proptest::option::of(any::<bool>()),
        proptest::option::of(caps()),
        proptest::option::of(pick(&["RuntimeDefault", "Unconfined"][..])),
    )
        .prop_map(move |(u, g, nonroot, ape, privileged, ro, caps, seccomp)| {
            let mut m = Map::new();
            let mut put = |k: &str, v: Option<Value>| {
                if let Some(v) = v {
                    m.insert(k.into(), v);
                }
            };
            put("runAsUser", u.map(Value::from));
            put("runAsGroup", g.map(Value::from));
            put("runAsNonRoot", nonroot.map(Value::from));
            put("allowPrivilegeEscalation", ape.map(Value::from));
            put("privileged", privileged.map(Value::from));
            put("readOnlyRootFilesystem", ro.map(Value::from));
            let caps = caps.map(|mut c| {
                if enforced && let Some(add) = c.get_mut("add") {
                    add.as_array_mut().unwrap().retain(|a| a != "SYS_ADMIN");
                }
                c
            });
            put("capabilities", caps);
            put("seccompProfile", seccomp.map(|t| json!({"type": t})));
            Value::Object(m)
        })
}

fn pod_ctx(enforced: bool) -> impl Strategy<Value = Value> {
    let ids: &'static [i64] = if enforced {
        &[1000, 2000]
    } else {
        &[0, 5, 1000, 2000]
    };
    (
        proptest::option::of(pick(ids)),
        proptest::option::of(pick(ids)),
        proptest::option::of(any::<bool>()),
        proptest::option::of(pick(ids)),
        proptest::option::of(proptest::sample::subsequence(&[0i64, 5, 1000, 2000][..], 0..=3)),
    )
        .prop_map(|(u, g, nonroot, fs, supp)| {
            let mut m = Map::new();
            if let Some(u) = u {
                m.insert("runAsUser".into(), json!(u));
            }
            if let Some(g) = g {
                m.insert("runAsGroup".into(), json!(g));
            }
            if let Some(n) = nonroot {
                m.insert("runAsNonRoot".into(), json!(n));
            }
            if let Some(f) = fs {
                m.insert("fsGroup".into(), json!(f));
            }
            if let Some(s) = supp {
                m.insert("supplementalGroups".into(), json!(s));
            }
            Value::Object(m)
        })
}

const USER_LISTS: &[&[&str]] = &[&["1000", "2000"], &["*"], &["0", ">=1000", "!1001"], &["<3000"]];
const GROUP_LISTS: &[&[&str]] = &[&["1000-2000"], &["*", "!5"], &["0"]];

/// SPEC §5 keys: `hostUsers` (default, enforced), `allowRootInUserNamespace`,
/// `allowedCapabilities`, `forcedUser` (home, writableTmp), and `onViolation`.
#[allow(clippy::type_complexity)]
fn real_cluster_keys() -> impl Strategy<
    Value = (
        (Option<bool>, Option<bool>),
        bool,
        Option<Vec<&'static str>>,
        Option<(bool, bool)>,
        &'static str,
    ),
> {
    (
        (
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
        ),
        any::<bool>(),
        proptest::option::of(proptest::sample::subsequence(
            &["NET_BIND_SERVICE", "cap_kill", "CAP_NET_RAW"][..],
            0..=2,
        )),
        proptest::option::of((any::<bool>(), any::<bool>())),
        pick(&["warn", "warn", "deny"][..]),
    )
}

fn policy_strategy() -> impl Strategy<Value = ValidPolicy> {
    (
        pick(&Preset::ALL[..]),
        proptest::option::of(pick(USER_LISTS)),
        proptest::option::of(pick(GROUP_LISTS)),
        (pod_ctx(false), pod_ctx(true)),
        (container_ctx(false), container_ctx(true)),
        proptest::collection::vec((container_ctx(false), container_ctx(true)), 4),
        real_cluster_keys(),
    )
        .prop_filter_map(
            "the policy must be valid",
            |(preset, users, groups, mut pod, containers, roles, real)| {
                let (host_users, allow_root, capabilities, forced_user, on_violation) = real;
                for (ctx, h) in [(&mut pod.0, host_users.0), (&mut pod.1, host_users.1)] {
                    if let Some(h) = h {
                        ctx["hostUsers"] = json!(h);
                    }
                }
                let mut spec = json!({
                    "preset": preset.as_str(),
                    "onViolation": on_violation,
                    "pod": {"default": pod.0, "enforced": pod.1},
                    "containers": {"default": containers.0, "enforced": containers.1},
                });
                spec["allowRootInUserNamespace"] = json!(allow_root);
                if let Some(c) = capabilities {
                    spec["allowedCapabilities"] = json!(c);
                }
                if let Some((home, tmp)) = forced_user {
                    spec["forcedUser"] = json!({"writableTmp": tmp});
                    if home {
                        spec["forcedUser"]["home"] = json!("/tmp");
                    }
                }
                for (name, (d, e)) in ["build", "helper", "service", "init"].iter().zip(roles) {
                    spec[*name] = json!({"default": d, "enforced": e});
                }
                if let Some(u) = users {
                    spec["allowedUsers"] = json!(u);
                }
                if let Some(g) = groups {
                    spec["allowedGroups"] = json!(g);
                }
                let doc =
                    json!({"apiVersion": "ciguard.io/v1alpha1", "kind": "SecurityPolicy", "spec": spec});
                ciguard::policy::load::from_str(&doc.to_string(), "prop.json").ok()
            },
        )
}

fn pod_strategy() -> impl Strategy<Value = Value> {
    (
        pod_ctx(false),
        proptest::collection::vec(container_ctx(false), 4),
        any::<bool>(),
        (
            proptest::option::of(any::<bool>()),
            proptest::option::of(pick(&["hostNetwork", "hostPID", "hostIPC"][..])),
            any::<bool>(),
            any::<bool>(),
        ),
    )
        .prop_map(|(pod, ctxs, nested, (host_users, host_ns, home, tmp))| {
            let mut p = common::example("examples/gitlab-runner/build-pod.yaml");
            p["spec"]["securityContext"] = pod;
            if let Some(h) = host_users {
                p["spec"]["hostUsers"] = json!(h);
            }
            if let Some(ns) = host_ns {
                p["spec"][ns] = json!(true);
            }
            // The build container's own HOME and /tmp, which forcedUser never replaces.
            if home {
                p["spec"]["containers"][0]["env"] = json!([{"name": "HOME", "value": "/root"}]);
            }
            if tmp {
                p["spec"]["containers"][1]["volumeMounts"] =
                    json!([{"name": "scratch", "mountPath": "/tmp"}]);
            }
            p["spec"]["initContainers"][0]["securityContext"] = ctxs[0].clone();
            for i in 0..3 {
                p["spec"]["containers"][i]["securityContext"] = ctxs[i + 1].clone();
            }
            if nested {
                p["spec"]["containers"][0]["workingDir"] = json!("/builds/group/project");
            }
            p
        })
}

/// The value a container of the rendered pod runs with.
fn effective<'a>(pod: &'a Value, c: &'a Value, field: &str) -> Option<&'a Value> {
    c["securityContext"].get(field).or_else(|| {
        if matches!(
            field,
            "runAsUser" | "runAsGroup" | "runAsNonRoot" | "seccompProfile"
        ) {
            pod["spec"]["securityContext"].get(field)
        } else {
            None
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn enforced_values_are_always_in_the_output(policy in policy_strategy(), pod in pod_strategy()) {
        let r = render(&policy, &pod).unwrap();
        if let Some(h) = policy.pod.enforced.get("hostUsers") {
            prop_assert_eq!(r.object["spec"].get("hostUsers"), Some(h));
        }
        let labels = Default::default();
        let facts = ciguard::policy::PodFacts::new(&labels, pod.get("spec"));
        for list in ["initContainers", "containers"] {
            for c in r.object["spec"][list].as_array().into_iter().flatten() {
                let name = c["name"].as_str().unwrap();
                if name.starts_with("ciguard-workdir") {
                    continue;
                }
                let kind = if list == "containers" { ciguard::policy::ContainerKind::Container } else { ciguard::policy::ContainerKind::Init };
                let role = policy.role_of(&facts, name, kind);
                // Most specific enforced statement per field.
                let mut expected: Map<String, Value> = Map::new();
                for (k, v) in &policy.pod.enforced {
                    if matches!(k.as_str(), "runAsUser" | "runAsGroup" | "runAsNonRoot" | "seccompProfile") {
                        expected.insert(k.clone(), v.clone());
                    }
                }
                for ctx in [&policy.containers.enforced, &policy.role(role).enforced] {
                    for (k, v) in ctx {
                        expected.insert(k.clone(), v.clone());
                    }
                }
                for (field, want) in &expected {
                    if field == "capabilities" {
                        let got = &c["securityContext"]["capabilities"];
                        for d in want.get("drop").and_then(Value::as_array).into_iter().flatten() {
                            prop_assert!(got["drop"].as_array().is_some_and(|l| l.contains(d)), "{name}: drop {d} missing: {got}");
                        }
                        if let Some(add) = want.get("add") {
                            // The highest enforced add wins.
                            let top = policy.role(role).enforced.get("capabilities").and_then(|c| c.get("add")).unwrap_or(add);
                            prop_assert_eq!(&got["add"], top, "{}", name);
                        }
                        continue;
                    }
                    prop_assert_eq!(effective(&r.object, c, field), Some(want), "{} {}", name, field);
                }
            }
        }
    }

    #[test]
    fn rendering_is_idempotent(policy in policy_strategy(), pod in pod_strategy()) {
        let once = render(&policy, &pod).unwrap();
        let twice = render(&policy, &once.object).unwrap();
        prop_assert!(
            twice.object == once.object,
            "second render changed {}\npolicy: {}\ninput: {}",
            serde_json::to_string(&json_patch::diff(&once.object.clone().into(), &twice.object.clone().into())).unwrap(),
            serde_json::to_string(&policy.policy.spec).unwrap(),
            serde_json::to_string(&pod["spec"]["securityContext"]).unwrap() + " / "
                + &serde_json::to_string(&pod["spec"]["containers"].as_array().unwrap().iter().map(|c| &c["securityContext"]).collect::<Vec<_>>()).unwrap()
                + " / " + &serde_json::to_string(&pod["spec"]["initContainers"][0]["securityContext"]).unwrap()
        );
        prop_assert!(twice.patch.is_empty(), "{:?}", twice.patch);
        // What the policy overrode is told once: the rendered pod asks for nothing the
        // policy replaces.
        let notices: Vec<String> = twice.warnings.iter().filter(|w| w.code.is_notice()).map(|w| w.message()).collect();
        prop_assert!(notices.is_empty(), "notices on a rendered pod: {:?}\npolicy: {}", notices, serde_json::to_string(&policy.policy.spec).unwrap());
    }

    /// Leaving a record out (`merge::Options`) changes nothing else: the object, the
    /// warnings, the denial and every record kept are what a full render gives, and the
    /// records left out are empty.
    #[test]
    fn records_left_out_change_nothing_else(
        policy in policy_strategy(),
        pod in pod_strategy(),
        keep in (any::<bool>(), any::<bool>(), any::<bool>()),
    ) {
        let full = render(&policy, &pod).unwrap();
        let (provenance, changes, patch) = keep;
        let options = Options { pod_security: PodSecurity::Evaluate, provenance, changes, patch };
        let part = render_owned_with(&policy, pod.clone(), options).unwrap();
        prop_assert_eq!(&part.object, &full.object);
        prop_assert_eq!(&part.warnings, &full.warnings);
        prop_assert_eq!(&part.denial, &full.denial);
        prop_assert_eq!(&part.denied_codes, &full.denied_codes);
        let none = |kept: bool| if kept { None } else { Some(0) };
        prop_assert_eq!(none(provenance).unwrap_or(full.provenance.len()), part.provenance.len());
        prop_assert_eq!(none(changes).unwrap_or(full.changes.len()), part.changes.len());
        prop_assert_eq!(none(patch).unwrap_or(full.patch.len()), part.patch.len());
        if provenance { prop_assert_eq!(&part.provenance, &full.provenance); }
        if changes { prop_assert_eq!(&part.changes, &full.changes); }
        if patch { prop_assert_eq!(&part.patch, &full.patch); }
    }

    #[test]
    fn the_patch_reproduces_the_output(policy in policy_strategy(), pod in pod_strategy()) {
        let r = render(&policy, &pod).unwrap();
        let patch: json_patch::Patch = ciguard::value::from_value(ciguard::value::to_value(&r.patch).unwrap()).unwrap();
        let mut doc = serde_json::Value::from(pod.clone());
        json_patch::patch(&mut doc, &patch).unwrap();
        prop_assert_eq!(Value::from(doc), r.object);
    }
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        pick(
            &[
                "",
                "ALL",
                "SYS_ADMIN",
                "build",
                "/builds/x",
                "RuntimeDefault",
                "Always"
            ][..]
        )
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(
                pick(
                    &[
                        "name",
                        "securityContext",
                        "runAsUser",
                        "capabilities",
                        "drop",
                        "add",
                        "workingDir",
                        "volumeMounts",
                        "mountPath",
                        "containers",
                        "initContainers",
                        "restartPolicy",
                        "privileged"
                    ][..]
                ),
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(512), ..ProptestConfig::default() })]

    #[test]
    fn no_panic_on_arbitrary_input(spec in arbitrary_json(), policy in policy_strategy()) {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": spec});
        let _ = render(&policy, &pod);
        let _ = render(&ValidPolicy::builtin(), &pod);
    }
}
