//! Property tests of the admission path (issue 11): under reinvocation, a second
//! `/mutate` of ciguard's own patched pod, as the API server defaults and admits it
//! again, returns no patch; and the working-directory init container runs under every
//! enforced seccomp, AppArmor and SELinux profile (and under the profiles of the
//! containers it serves).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

mod webhook_support;

use ciguard::{
    ValidPolicy,
    admission::{Endpoint, decide, decide_in_place, parse},
    policy::load,
};
use ciguard::{
    json,
    value::{Map, Value},
};
use proptest::prelude::*;
use webhook_support::{as_apiserver_sends, review};

const FIELDS: [&str; 3] = ["seccompProfile", "appArmorProfile", "seLinuxOptions"];

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn profile(field: usize) -> impl Strategy<Value = Option<Value>> {
    let choices: Vec<Value> = match field {
        0 => vec![
            json!({"type": "RuntimeDefault"}),
            json!({"type": "Localhost", "localhostProfile": "profiles/a.json"}),
            json!({"type": "Localhost", "localhostProfile": "profiles/b.json"}),
        ],
        1 => vec![
            json!({"type": "RuntimeDefault"}),
            json!({"type": "Localhost", "localhostProfile": "ci-a"}),
        ],
        _ => vec![json!({"level": "s0:c1,c2"}), json!({"level": "s0:c3,c4"})],
    };
    proptest::option::of(proptest::sample::select(choices))
}

/// Some of the three profile fields.
fn profiles() -> impl Strategy<Value = Map<String, Value>> {
    (profile(0), profile(1), profile(2)).prop_map(|(s, a, l)| {
        FIELDS
            .iter()
            .zip([s, a, l])
            .filter_map(|(f, v)| Some((f.to_string(), v?)))
            .collect()
    })
}

fn policy() -> impl Strategy<Value = (Value, ValidPolicy)> {
    (
        profiles(),
        profiles(),
        profiles(),
        // SPEC §5: hostUsers (default, enforced), forcedUser (home, writableTmp).
        (
            proptest::option::of(any::<bool>()),
            proptest::option::of(any::<bool>()),
        ),
        proptest::option::of((any::<bool>(), any::<bool>())),
        any::<bool>(),
    )
        .prop_map(|(mut pod, containers, init, host_users, forced, allow_root)| {
            let mut default = json!({"runAsUser": 1000, "runAsGroup": 1000});
            if let Some(h) = host_users.0 {
                default["hostUsers"] = json!(h);
            }
            if let Some(h) = host_users.1 {
                pod.insert("hostUsers".into(), json!(h));
            }
            let mut text = json!({
                "apiVersion": "ciguard.io/v1alpha1", "kind": "SecurityPolicy",
                "metadata": {"name": "props"},
                "spec": {
                    "preset": "generic",
                    "pss": {"level": "privileged", "version": "latest"},
                    "pod": {"default": default, "enforced": pod},
                    "containers": {"enforced": containers},
                    "init": {"enforced": init},
                    "allowRootInUserNamespace": allow_root,
                    "allowedCapabilities": ["NET_BIND_SERVICE"],
                }
            });
            if let Some((home, tmp)) = forced {
                text["spec"]["forcedUser"] = json!({"writableTmp": tmp});
                if home {
                    text["spec"]["forcedUser"]["home"] = json!("/tmp");
                }
            }
            let policy = load::from_str(&text.to_string(), "props.json").unwrap();
            (text, policy)
        })
}

fn container(i: usize) -> impl Strategy<Value = Value> {
    (
        proptest::sample::select(
            &[
                "img",
                "img:latest",
                "img:1.0",
                "reg.local:5000/img",
                "img@sha256:abc",
            ][..],
        ),
        proptest::option::of(proptest::sample::select(&[1000i64, 2000, 0][..])),
        any::<bool>(),
        profiles(),
        (any::<bool>(), any::<bool>(), any::<bool>()),
    )
        .prop_map(move |(image, uid, workdir, mut ctx, (home, tmp, add))| {
            let mut c = json!({"name": format!("c{i}"), "image": image,
                "volumeMounts": [{"name": "builds", "mountPath": "/builds"}]});
            if workdir {
                c["workingDir"] = json!(format!("/builds/p{i}"));
            }
            if let Some(uid) = uid {
                ctx.insert("runAsUser".into(), json!(uid));
            }
            if home {
                c["env"] = json!([{"name": "HOME", "value": "/home/ci"}]);
            }
            if tmp {
                c["volumeMounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "builds", "mountPath": "/tmp", "subPath": "tmp"}));
            }
            if add {
                ctx.insert(
                    "capabilities".into(),
                    json!({"add": ["NET_BIND_SERVICE", "NET_ADMIN"]}),
                );
            }
            if !ctx.is_empty() {
                c["securityContext"] = Value::Object(ctx);
            }
            c
        })
}

fn pod() -> impl Strategy<Value = Value> {
    (
        profiles(),
        (1..=3usize).prop_flat_map(|n| (0..n).map(container).collect::<Vec<_>>()),
        proptest::option::of(container(9)),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(ctx, containers, init, host_users)| {
            let mut spec = json!({"securityContext": ctx, "containers": containers,
                "volumes": [{"name": "builds", "emptyDir": {}}]});
            if let Some(h) = host_users {
                spec["hostUsers"] = json!(h);
            }
            if let Some(init) = init {
                spec["initContainers"] = json!([init]);
            }
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "namespace": "ci"}, "spec": spec})
        })
}

/// `/mutate` in process: the pod with ciguard's patch applied, and the patch.
fn mutate(policy: &ValidPolicy, pod: &Value, uid: &str) -> (Value, Value) {
    let mut r = review("CREATE", pod, None);
    r["request"]["uid"] = json!(uid);
    let mut request = parse(&serde_json::to_vec(&r).unwrap()).unwrap();
    let decision = decide(Endpoint::Mutate, policy, &request);
    assert!(decision.allowed(), "{decision:?}");
    // The server renders the request's object in place: the same answer.
    assert_eq!(decide_in_place(Endpoint::Mutate, policy, &mut request), decision);
    let patch = ciguard::value::to_value(&decision.patch).unwrap();
    let mut out = serde_json::Value::from(pod.clone());
    json_patch::patch(
        &mut out,
        &ciguard::value::from_value::<json_patch::Patch>(patch.clone()).unwrap(),
    )
    .unwrap();
    (out.into(), patch)
}

fn effective<'a>(pod: &'a Value, c: &'a Value, field: &str) -> Option<&'a Value> {
    c.pointer(&format!("/securityContext/{field}"))
        .or_else(|| pod.pointer(&format!("/spec/securityContext/{field}")))
        .filter(|v| !v.is_null())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn reinvocation_after_defaulting_returns_no_patch((text, policy) in policy(), submitted in pod()) {
        let first = as_apiserver_sends(&submitted);
        let (patched, _) = mutate(&policy, &first, "uid-1");
        if let Some(h) = text.pointer("/spec/pod/enforced/hostUsers") {
            prop_assert_eq!(patched["spec"].get("hostUsers"), Some(h));
        }
        // forcedUser adds HOME and the /tmp mount at most once per container.
        for c in patched["spec"]["containers"].as_array().unwrap() {
            let homes = c["env"].as_array().into_iter().flatten().filter(|e| e["name"] == "HOME").count();
            let tmps = c["volumeMounts"].as_array().into_iter().flatten().filter(|m| m["mountPath"] == "/tmp").count();
            prop_assert!(homes <= 1 && tmps <= 1, "{}", c);
        }
        let second = as_apiserver_sends(&patched);
        let (_, patch) = mutate(&policy, &second, "uid-2");
        prop_assert_eq!(patch, json!([]), "second call on {}", second);
    }

    #[test]
    fn the_workdir_init_container_honours_every_enforced_profile(
        (text, policy) in policy(),
        submitted in pod(),
    ) {
        let (out, _) = mutate(&policy, &as_apiserver_sends(&submitted), "uid-1");
        let empty = Vec::new();
        let list = |k: &str| out["spec"][k].as_array().unwrap_or(&empty).clone();
        let workdirs: Vec<Value> = list("initContainers")
            .into_iter()
            .filter(|c| c["name"].as_str().unwrap().starts_with("ciguard-workdir"))
            .collect();
        let jobs: Vec<Value> = list("initContainers")
            .into_iter()
            .chain(list("containers"))
            .filter(|c| !c["name"].as_str().unwrap().starts_with("ciguard-workdir"))
            .collect();
        for job in &jobs {
            let Some(dir) = job["workingDir"].as_str() else { continue };
            let uid = effective(&out, job, "runAsUser").and_then(Value::as_i64).unwrap_or(0);
            if uid == 0 {
                continue;
            }
            // The init container that creates this container's directory as its user.
            let w = workdirs.iter().find(|w| {
                w["securityContext"]["runAsUser"] == json!(uid)
                    && w["command"].as_array().unwrap().contains(&json!(dir))
            });
            let w = w.unwrap_or_else(|| panic!("no workdir init container for {job} in {out}"));
            for field in FIELDS {
                let got = effective(&out, w, field);
                let init_enforced = text.pointer(&format!("/spec/init/enforced/{field}"));
                let containers_enforced = text.pointer(&format!("/spec/containers/enforced/{field}"));
                let want = match (init_enforced, containers_enforced, effective(&out, job, field)) {
                    (Some(v), _, _) | (None, Some(v), _) | (None, None, Some(v)) => Some(v.clone()),
                    (None, None, None) if field == "seccompProfile" => Some(json!({"type": "RuntimeDefault"})),
                    (None, None, None) => None,
                };
                prop_assert_eq!(got.cloned(), want, "{} of {} serving {} in {}", field, w, job, out);
            }
        }
    }
}
