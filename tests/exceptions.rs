//! `spec.exceptions` (issue 13 item 4, SPEC §5): a Docker-in-Docker service runs
//! privileged only with a matching image and role; the rest of the pod is still judged
//! by `restricted`, with upstream's messages for what remains; `--explain` names the
//! exception; enforced values outside an exception's `allow` always hold.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

mod common;

use ciguard::{
    ValidPolicy,
    merge::{Origin, render},
    policy::ContainerKind,
};
use ciguard::{
    json,
    value::{Map, Value},
};
use common::ciguard;
use proptest::prelude::*;
use rstest::rstest;

const DIND_POLICY: &str = "examples/policies/gitlab-runner-dind.yaml";
const DIND_POD: &str = "docs/examples/gitlab-dind-pod.yaml";

fn dind_policy() -> ValidPolicy {
    ciguard::policy::load::from_file(&format!("{}/{DIND_POLICY}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// A GitLab pod whose one container, `name`, runs `image` and asks for privileged root.
fn pod_with(name: &str, image: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "runner-x", "labels": {"pod": "runner-x"}},
        "spec": {"containers": [
            {"name": name, "image": image,
             "securityContext": {"privileged": true, "runAsUser": 0, "runAsNonRoot": false}},
        ]},
    })
}

fn container<'a>(object: &'a Value, name: &str) -> &'a Value {
    object["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
}

// The dind service is privileged only when its role and its image match. Container names
// follow GitLab Runner's (services are named after their alias, the job's container is
// `build`); image spellings follow distribution/reference's normalisation.
#[rstest]
#[case::matching("docker", "docker:27-dind", true)]
#[case::with_registry("docker", "docker.io/library/docker:27-dind", true)]
#[case::index_docker_io("docker", "index.docker.io/library/docker:27-dind", true)]
#[case::tag_and_digest("docker", "docker:27-dind@sha256:5e7d0a4b0b1c", true)]
#[case::second_pattern("docker", "docker:27-dind-rootless", true)]
#[case::wrong_role_build("build", "docker:27-dind", false)]
#[case::any_service_name("cache", "docker:27-dind", true)]
#[case::wrong_role_helper("helper", "docker:27-dind", false)]
#[case::wrong_image("docker", "docker:27-cli", false)]
#[case::other_registry("docker", "registry.example/docker:27-dind", false)]
#[case::other_namespace("docker", "someone/docker:27-dind", false)]
#[case::no_tag("docker", "docker", false)]
#[case::digest_without_tag("docker", "docker@sha256:5e7d0a4b0b1c", false)]
#[case::lookalike("docker", "docker-dind:27", false)]
fn dind_privileged_only_with_matching_image_and_role(
    #[case] name: &str,
    #[case] image: &str,
    #[case] privileged: bool,
) {
    let policy = dind_policy();
    let r = render(&policy, &pod_with(name, image)).unwrap();
    let sc = &container(&r.object, name)["securityContext"];
    assert_eq!(sc["privileged"], json!(privileged), "{name} {image}: {sc}");
    let field = |f: &str| {
        r.provenance
            .iter()
            .find(|p| p.field.field == f && p.field.container.as_ref().is_some_and(|(_, n)| &**n == name))
            .map(|p| p.origin)
    };
    if privileged {
        assert_eq!(sc["runAsUser"], json!(0));
        assert_eq!(sc["runAsNonRoot"], json!(false));
        assert_eq!(field("privileged"), Some(Origin::Exception("dind")));
        // No notice: the exception let the request stand.
        assert!(
            !r.warnings.iter().any(|w| w.container.as_deref() == Some(name)),
            "{:?}",
            r.warnings
        );
        // Pod Security: the exempted checks ignore it, the pod is allowed.
        assert!(r.denial.is_none(), "{:?}", r.denial);
    } else {
        assert_ne!(sc["runAsUser"], json!(0));
        assert_ne!(field("privileged"), Some(Origin::Exception("dind")));
        // The request was overridden (a notice) or dropped (a warning), never silent.
        assert!(
            r.warnings.iter().any(|w| w.container.as_deref() == Some(name)),
            "{:?}",
            r.warnings
        );
    }
}

// `helper-2` is a service under gitlab-runner (every other container); a roles
// matcher that makes it a helper takes the exception away.
#[test]
fn role_from_a_matcher_counts() {
    let mut text = std::fs::read_to_string(format!("{}/{DIND_POLICY}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    text = text.replace(
        "  preset: gitlab-runner\n",
        "  preset: gitlab-runner\n  roles:\n    - {role: helper, containerNames: [\"helper-*\"]}\n",
    );
    let policy = ciguard::policy::load::from_str(&text, "p.yaml").unwrap();
    let r = render(&policy, &pod_with("helper-2", "docker:27-dind")).unwrap();
    assert_eq!(
        container(&r.object, "helper-2")["securityContext"]["privileged"],
        json!(false)
    );
}

// Only a request EQUAL to the allowed value stands: the exception allows runAsUser 0, not
// any user outside the allowlist.
#[test]
fn only_requests_equal_to_allow_stand() {
    let mut pod = pod_with("docker", "docker:27-dind");
    pod["spec"]["containers"][0]["securityContext"]["runAsUser"] = json!(5);
    let r = render(&dind_policy(), &pod).unwrap();
    let sc = &container(&r.object, "docker")["securityContext"];
    assert_eq!(sc["privileged"], json!(true));
    assert_ne!(sc["runAsUser"], json!(5), "{sc}");
    assert!(
        r.warnings
            .iter()
            .any(|w| w.message() == "container \"docker\": runAsUser 5 is not allowed by allowedUsers [\"1000-65534\"]; the request was dropped"),
        "{:?}",
        r.warnings
    );
}

// A job that does not ask gets nothing: an exception grants what is requested, it sets
// nothing by itself.
#[test]
fn an_exception_sets_nothing_by_itself() {
    let mut pod = pod_with("docker", "docker:27-dind");
    pod["spec"]["containers"][0]
        .as_object_mut()
        .unwrap()
        .remove("securityContext");
    let r = render(&dind_policy(), &pod).unwrap();
    let sc = &container(&r.object, "docker")["securityContext"];
    assert_eq!(sc["privileged"], json!(false), "{sc}");
    assert!(
        r.provenance
            .iter()
            .all(|p| !matches!(p.origin, Origin::Exception(_)))
    );
}

// Rendering a rendered dind pod changes nothing (the webhook's reinvocation).
#[test]
fn idempotent() {
    let policy = dind_policy();
    let once = render(&policy, &common::example(DIND_POD)).unwrap();
    let twice = render(&policy, &once.object).unwrap();
    assert!(twice.patch.is_empty(), "{:?}", twice.patch);
    assert_eq!(twice.object, once.object);
}

/// `ciguard check` on a dind pod as GitLab creates it, before any mutation: the dind
/// container leaves the exempted checks; the other checks, and every other container,
/// keep upstream's messages.
const RAW_DIND_POD: &str = "tests/data/exceptions/dind-raw-pod.yaml";

#[test]
fn the_rest_of_the_dind_pod_is_still_judged_by_restricted() {
    let with = ciguard()
        .args(["check", "--policy", DIND_POLICY, RAW_DIND_POD])
        .output()
        .unwrap();
    assert_eq!(with.status.code(), Some(1));
    let with = String::from_utf8(with.stdout).unwrap();
    insta::assert_snapshot!("check_dind_with_exception", with);
    // The dind container is named only by the checks it is not exempt from.
    assert!(!with.contains("privileged (container"), "{with}");
    assert!(with.contains("\"docker\""), "{with}");

    let without = ciguard()
        .args(["check", "--level", "restricted", RAW_DIND_POD])
        .output()
        .unwrap();
    let without = String::from_utf8(without.stdout).unwrap();
    insta::assert_snapshot!("check_dind_without_exception", without);
    assert!(
        without.contains("privileged (container \"docker\" must not set securityContext.privileged=true)")
    );
}

#[test]
fn explain_names_the_exception() {
    let out = ciguard()
        .args(["render", "--explain", "--policy", DIND_POLICY, DIND_POD])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("spec.containers[docker].securityContext.privileged = true  <- exception \"dind\""),
        "{stderr}"
    );
    insta::assert_snapshot!("render_dind_explain", stderr);
}

// Pod Security at the evaluator: exempted containers leave only their checks.
mod pod_security {
    use ciguard::json;
    use ciguard::pss::{Exemptions, LevelVersion, evaluate, evaluate_exempting};
    use k8s_openapi::api::core::v1::Pod;
    use rstest::rstest;

    fn pod(v: ciguard::value::Value) -> Pod {
        ciguard::value::from_value(v).unwrap()
    }

    fn exempt(pairs: &[(&str, &str)]) -> Exemptions {
        let mut e = Exemptions::default();
        for (check, c) in pairs {
            e.exempt(check, c);
        }
        e
    }

    const GOOD: &str = r#"{"runAsNonRoot": true, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}"#;

    #[rstest]
    // Exempt: allowed.
    #[case::exempt_container(
        json!({"metadata": {}, "spec": {"containers": [
            {"name": "a", "securityContext": serde_json::from_str::<ciguard::value::Value>(GOOD).unwrap()},
            {"name": "d", "securityContext": {"privileged": true, "runAsNonRoot": true, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}}]}}),
        &[("privileged", "d"), ("allowPrivilegeEscalation", "d")][..],
        ""
    )]
    // The same check still judges the other container, with upstream's message for it alone.
    #[case::other_container_still_judged(
        json!({"metadata": {}, "spec": {"containers": [
            {"name": "a", "securityContext": {"privileged": true}},
            {"name": "d", "securityContext": {"privileged": true}}]}}),
        &[("privileged", "d")][..],
        "privileged (container \"a\" must not set securityContext.privileged=true)"
    )]
    // Pod-level values are the pod's: all containers exempt, the pod-level false still fails.
    #[case::pod_level_value_still_judged(
        json!({"metadata": {}, "spec": {"securityContext": {"runAsNonRoot": false}, "containers": [
            {"name": "d"}]}}),
        &[("runAsNonRoot", "d")][..],
        "runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)"
    )]
    // Every container exempt and no pod-level value: nothing left to fail.
    #[case::all_containers_exempt(
        json!({"metadata": {}, "spec": {"containers": [{"name": "d"}]}}),
        &[("runAsNonRoot", "d")][..],
        ""
    )]
    // A container-scoped annotation leaves with its container.
    #[case::apparmor_annotation(
        json!({"metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/d": "unconfined"}},
               "spec": {"containers": [{"name": "d"}]}}),
        &[("appArmorProfile", "d")][..],
        ""
    )]
    #[case::apparmor_annotation_of_another(
        json!({"metadata": {"annotations": {
                 "container.apparmor.security.beta.kubernetes.io/a": "unconfined",
                 "container.apparmor.security.beta.kubernetes.io/d": "unconfined"}},
               "spec": {"containers": [{"name": "a"}, {"name": "d"}]}}),
        &[("appArmorProfile", "d")][..],
        "forbidden AppArmor profile (annotation must not set AppArmor profile type to \"container.apparmor.security.beta.kubernetes.io/a=\"unconfined\"\")"
    )]
    fn baseline_with_exemptions(
        #[case] p: ciguard::value::Value,
        #[case] exemptions: &[(&str, &str)],
        #[case] expected: &str,
    ) {
        let p = pod(p);
        let spec = p.spec.unwrap();
        let lv: LevelVersion = "restricted:latest".parse().unwrap();
        let e = evaluate_exempting(&p.metadata, &spec, lv, &exempt(exemptions));
        // Only the checks that were exempted can differ from the plain evaluation.
        let plain = evaluate(&p.metadata, &spec, lv);
        for v in &e.violations {
            if !exemptions.iter().any(|(c, _)| *c == v.check) {
                assert!(plain.violations.contains(v));
            }
        }
        let exempted: Vec<String> = e
            .violations
            .iter()
            .filter(|v| exemptions.iter().any(|(c, _)| *c == v.check))
            .map(|v| format!("{} ({})", v.reason, v.detail))
            .collect();
        assert_eq!(exempted.join(", "), expected, "{}", e.message());
    }
}

// Property: enforced values outside an exception's `allow` (and outside what an allowed
// value makes invalid beside it: `allowPrivilegeEscalation` under `privileged`, and
// `runAsNonRoot` under `runAsUser: 0`) are always in the output, whatever the job asks.

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Fields that an allowed value makes yield (SPEC §2 Validity).
fn yields_to(allowed: &str) -> &'static [&'static str] {
    match allowed {
        "privileged" => &["allowPrivilegeEscalation"],
        "runAsUser" => &["runAsNonRoot"],
        _ => &[],
    }
}

fn exception_strategy() -> impl Strategy<Value = Value> {
    (
        proptest::option::of(proptest::sample::subsequence(
            &["build", "service", "init"][..],
            1..=2,
        )),
        proptest::sample::subsequence(&["docker:*-dind", "redis", "registry.example/*"][..], 1..=2),
        (
            proptest::option::of(Just(true)),
            proptest::option::of(proptest::sample::select(&[0i64, 5][..])),
            proptest::option::of(Just(false)),
            proptest::option::of(Just(json!(["NET_ADMIN"]))),
        ),
    )
        .prop_map(|(roles, images, (privileged, user, nonroot, add))| {
            let mut allow = Map::new();
            if let Some(p) = privileged {
                allow.insert("privileged".into(), json!(p));
            }
            if let Some(u) = user {
                allow.insert("runAsUser".into(), json!(u));
            }
            if let Some(n) = nonroot {
                allow.insert("runAsNonRoot".into(), json!(n));
            }
            if let Some(a) = add {
                allow.insert("capabilities".into(), json!({"add": a}));
            }
            let mut x = json!({"name": "x", "images": images, "allow": allow});
            if let Some(r) = roles {
                x["roles"] = json!(r);
            }
            x
        })
}

fn job_ctx() -> impl Strategy<Value = Value> {
    (
        proptest::option::of(any::<bool>()),
        proptest::option::of(proptest::sample::select(&[0i64, 5, 1000][..])),
        proptest::option::of(any::<bool>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(proptest::sample::subsequence(
            &["NET_ADMIN", "SYS_ADMIN"][..],
            0..=2,
        )),
    )
        .prop_map(|(privileged, user, nonroot, ape, add)| {
            let mut m = Map::new();
            if let Some(p) = privileged {
                m.insert("privileged".into(), json!(p));
            }
            if let Some(u) = user {
                m.insert("runAsUser".into(), json!(u));
            }
            if let Some(n) = nonroot {
                m.insert("runAsNonRoot".into(), json!(n));
            }
            if let Some(a) = ape {
                m.insert("allowPrivilegeEscalation".into(), json!(a));
            }
            if let Some(a) = add {
                m.insert("capabilities".into(), json!({"add": a}));
            }
            Value::Object(m)
        })
}

const IMAGES: &[&str] = &[
    "docker:27-dind",
    "docker.io/library/docker:27-dind",
    "docker:27-cli",
    "redis:7",
    "registry.example/ci/tool:1",
];

fn pod_strategy() -> impl Strategy<Value = Value> {
    proptest::collection::vec((proptest::sample::select(IMAGES), job_ctx()), 4).prop_map(|cs| {
        let names = ["build", "helper", "svc-0", "init-permissions"];
        let mk = |i: usize| json!({"name": names[i], "image": cs[i].0, "securityContext": cs[i].1});
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"initContainers": [mk(3)], "containers": [mk(0), mk(1), mk(2)]}})
    })
}

fn policy_strategy() -> impl Strategy<Value = ValidPolicy> {
    (
        proptest::collection::vec(exception_strategy(), 1..=2),
        proptest::option::of(Just(json!({"add": []}))),
    )
        .prop_map(|(mut exceptions, add)| {
            for (i, x) in exceptions.iter_mut().enumerate() {
                x["name"] = json!(format!("x{i}"));
            }
            let mut enforced = json!({"privileged": false, "allowPrivilegeEscalation": false,
                "runAsNonRoot": true, "runAsUser": 1000,
                "capabilities": {"drop": ["ALL"]}});
            if let Some(a) = add {
                enforced["capabilities"]["add"] = a["add"].clone();
            }
            let doc = json!({"apiVersion": "ciguard.io/v1alpha1", "kind": "SecurityPolicy", "spec": {
                "preset": "gitlab-runner",
                "allowedUsers": ["1000-2000"],
                "containers": {"enforced": enforced},
                "service": {"enforced": {"readOnlyRootFilesystem": true}},
                "exceptions": exceptions,
            }});
            ciguard::policy::load::from_str(&doc.to_string(), "prop.json").unwrap()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn enforced_values_outside_an_exceptions_allow_are_always_present(
        policy in policy_strategy(),
        pod in pod_strategy(),
    ) {
        let r = render(&policy, &pod).unwrap();
        let labels = std::collections::BTreeMap::new();
        let facts = ciguard::policy::PodFacts::new(&labels, r.object.get("spec"));
        for (list, kind) in [("initContainers", ContainerKind::Init), ("containers", ContainerKind::Container)] {
            for c in r.object["spec"][list].as_array().into_iter().flatten() {
                let name = c["name"].as_str().unwrap();
                if name.starts_with("ciguard-workdir") {
                    continue;
                }
                let role = policy.role_of(&facts, name, kind);
                let image = c["image"].as_str().unwrap();
                let applicable = ciguard::policy::exception::applicable(&policy, role, image);
                // Fields some applicable exception granted (the job asked for the allowed value).
                let granted: Vec<String> = r.provenance.iter()
                    .filter(|p| p.field.container.as_ref().is_some_and(|(_, n)| &**n == name))
                    .filter(|p| matches!(p.origin, Origin::Exception(_)))
                    .map(|p| p.field.field.to_string())
                    .collect();
                // Only an applicable exception grants, and only a value it allows.
                for g in &granted {
                    let value = match g.as_str() {
                        "capabilities.add" => &c["securityContext"]["capabilities"]["add"],
                        f => &c["securityContext"][f],
                    };
                    // A value that yields to a granted one takes the grant's origin.
                    let yielded = granted.iter().any(|o| yields_to(o).contains(&g.as_str()));
                    prop_assert!(
                        yielded || applicable.iter().any(|x| x.allows(g, value)),
                        "{} ({:?}, {}): {} granted without an exception allowing it", name, role, image, g
                    );
                }
                let granted_or_yielding = |f: &str| {
                    granted.iter().any(|g| g == f || yields_to(g).contains(&f))
                };
                let mut expected: Map<String, Value> = Map::new();
                for ctx in [&policy.containers.enforced, &policy.role(role).enforced] {
                    for (k, v) in ctx {
                        expected.insert(k.clone(), v.clone());
                    }
                }
                let sc = &c["securityContext"];
                for (field, want) in &expected {
                    if field == "capabilities" {
                        for d in want["drop"].as_array().into_iter().flatten() {
                            prop_assert!(sc["capabilities"]["drop"].as_array().is_some_and(|l| l.contains(d)), "{name}: drop {d} missing");
                        }
                        if want.get("add").is_some() && !granted_or_yielding("capabilities.add") {
                            prop_assert_eq!(&sc["capabilities"]["add"], &want["add"], "{}", name);
                        }
                        continue;
                    }
                    if granted_or_yielding(field) {
                        continue;
                    }
                    prop_assert_eq!(sc.get(field.as_str()), Some(want), "{} ({:?}, {}): {} granted {:?}", name, role, image, field, granted);
                }
            }
        }
    }

    #[test]
    fn rendering_with_exceptions_is_idempotent(policy in policy_strategy(), pod in pod_strategy()) {
        let once = render(&policy, &pod).unwrap();
        let twice = render(&policy, &once.object).unwrap();
        prop_assert!(twice.patch.is_empty(), "{:?}", twice.patch);
    }
}

// Woodpecker puts a step's user on the pod: a privileged plugin's root is granted on its
// container (the exception's doing), the pod-level request meets the pod-level layers.
#[test]
fn woodpecker_privileged_plugin_gets_root_on_its_container() {
    let policy = ciguard::policy::load::from_file(&format!(
        "{}/examples/policies/woodpecker-plugins.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let pod = common::example("docs/examples/woodpecker-buildx-step.yaml");
    let r = render(&policy, &pod).unwrap();
    assert!(r.denial.is_none(), "{:?}", r.denial);
    let sc = &r.object["spec"]["containers"][0]["securityContext"];
    assert_eq!(sc["privileged"], json!(true));
    assert_eq!(sc["runAsUser"], json!(0));
    assert_eq!(r.object["spec"]["securityContext"]["runAsUser"], json!(1000));
    let again = render(&policy, &r.object).unwrap();
    assert!(again.patch.is_empty(), "{:?}", again.patch);
    // Another image under the same step: nothing granted.
    let mut other = pod.clone();
    other["spec"]["containers"][0]["image"] = json!("alpine:3.20");
    let r = render(&policy, &other).unwrap();
    let sc = &r.object["spec"]["containers"][0]["securityContext"];
    assert_eq!(sc["privileged"], json!(false));
    assert!(sc.get("runAsUser").is_none(), "{sc}");
}

// SPEC §5's example, as written there.
#[test]
fn the_spec_example_loads_and_matches_both_spellings() {
    let policy = common::policy(
        "  preset: gitlab-runner\n  exceptions:\n    - name: dind\n      roles: [service]\n      images: [\"docker:*-dind\", \"docker.io/library/docker:*-dind\"]\n      allow: {privileged: true}\n      exemptChecks: [privileged, allowPrivilegeEscalation]\n",
    );
    let x = &policy.exceptions[0];
    for image in ["docker:27-dind", "docker.io/library/docker:27-dind"] {
        assert!(x.applies(ciguard::policy::Role::Service, image), "{image}");
    }
    assert!(!x.applies(ciguard::policy::Role::Build, "docker:27-dind"));
}
