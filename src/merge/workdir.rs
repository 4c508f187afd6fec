//! The working-directory init container for non-root jobs.
//!
//! A container that runs with a non-zero uid and whose `workingDir` lies strictly inside
//! a volume mount cannot create that directory itself when the volume's root belongs to
//! another user. ciguard adds an init container that runs as the same uid/gid, mounts the
//! same volume at the same path and runs `mkdir -p` for the directory. Containers sharing
//! a uid/gid and the same effective seccomp, AppArmor and SELinux settings share one init
//! container. It is inserted before the first init container that needs it, or after all
//! init containers.
//!
//! The init container runs under the profiles of the containers it serves: their own
//! container-level `seccompProfile`, `appArmorProfile` and `seLinuxOptions`, or else the
//! pod's (copied), so an enforced `Localhost` profile or an SELinux level the volume is
//! labelled for holds for it too; `RuntimeDefault` seccomp only when neither sets one. The policy's `containers.enforced` and the init role's `enforced`
//! apply on top, as to any init container.
//!
//! The API server defaults the container ciguard added (`terminationMessagePath`,
//! `terminationMessagePolicy`, `imagePullPolicy`) and the ServiceAccount admission
//! plugin mounts the token into it; when it comes back so (reinvocation), it is kept as
//! it is, so the second call returns no patch.

use super::WORKDIR_INIT_PREFIX;
use crate::{
    policy::{Role, ValidPolicy},
    value::{Map, Value, object},
};

/// Fields of the policy's enforced contexts that the init container keeps its own: it
/// must run as the job's user to create a directory the job can write.
const OWN_FIELDS: [&str; 4] = ["runAsUser", "runAsGroup", "runAsNonRoot", "capabilities"];

/// Security-context fields the init container takes from the containers it serves.
pub(crate) const PROFILE_FIELDS: [&str; 3] = ["seccompProfile", "appArmorProfile", "seLinuxOptions"];

/// Container fields the API server defaults (SetDefaults_Container).
const DEFAULTED_FIELDS: [&str; 3] = [
    "terminationMessagePath",
    "terminationMessagePolicy",
    "imagePullPolicy",
];

/// Where the ServiceAccount admission plugin mounts the token.
const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

#[derive(Debug)]
struct Group {
    uid: i64,
    gid: Option<i64>,
    /// The served containers' own container-level profiles (`None`: the pod's).
    profiles: [Option<Value>; 3],
    position: usize,
    mounts: Vec<Value>,
    dirs: Vec<String>,
}

/// Whether `dir` lies strictly inside `mount` (both absolute paths).
fn strictly_inside(dir: &str, mount: &str) -> bool {
    let (dir, mount) = (dir.trim_end_matches('/'), mount.trim_end_matches('/'));
    !dir.is_empty()
        && dir != mount
        && dir.starts_with(mount)
        && dir.as_bytes().get(mount.len()) == Some(&b'/')
}

fn id(ctx: Option<&Value>, key: &str) -> Option<i64> {
    ctx?.get(key)?.as_i64()
}

/// The init containers the pod needs: (position among the other init containers, container).
pub(crate) fn plan(policy: &ValidPolicy, spec: &Value) -> Vec<(usize, Value)> {
    let pod_ctx = spec.get("securityContext");
    let empty = Vec::new();
    let list = |key: &str| spec.get(key).and_then(Value::as_array).unwrap_or(&empty);
    let inits: Vec<&Value> = list("initContainers")
        .iter()
        .filter(|c| {
            !c.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.starts_with(WORKDIR_INIT_PREFIX))
        })
        .collect();
    let containers = inits
        .iter()
        .copied()
        .enumerate()
        .chain(list("containers").iter().map(|c| (inits.len(), c)));
    let mut groups: Vec<Group> = Vec::new();
    for (position, c) in containers {
        let ctx = c.get("securityContext");
        let Some(uid) = id(ctx, "runAsUser").or_else(|| id(pod_ctx, "runAsUser")) else {
            continue;
        };
        let Some(dir) = c.get("workingDir").and_then(Value::as_str) else {
            continue;
        };
        if uid == 0 {
            continue;
        }
        let gid = id(ctx, "runAsGroup").or_else(|| id(pod_ctx, "runAsGroup"));
        let profiles = PROFILE_FIELDS.map(|f| ctx.and_then(|c| c.get(f)).filter(|v| !v.is_null()).cloned());
        let mount = c
            .get("volumeMounts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|m| m.get("readOnly") != Some(&Value::Bool(true)))
            .filter(|m| {
                m.get("mountPath")
                    .and_then(Value::as_str)
                    .is_some_and(|p| strictly_inside(dir, p))
            })
            .max_by_key(|m| m.get("mountPath").and_then(Value::as_str).map_or(0, str::len));
        let Some(mount) = mount else { continue };
        let mut m = Map::new();
        for key in ["name", "mountPath", "subPath", "subPathExpr"] {
            if let Some(v) = mount.get(key) {
                m.insert(key.into(), v.clone());
            }
        }
        let mount = Value::Object(m);
        let same = |g: &Group| g.uid == uid && g.gid == gid && g.profiles == profiles;
        let group = match groups.iter_mut().position(|g| same(g)) {
            Some(i) => &mut groups[i],
            None => {
                groups.push(Group {
                    uid,
                    gid,
                    profiles,
                    position,
                    mounts: Vec::new(),
                    dirs: Vec::new(),
                });
                let last = groups.len() - 1;
                &mut groups[last]
            }
        };
        if !group.mounts.contains(&mount) {
            group.mounts.push(mount);
        }
        if !group.dirs.iter().any(|d| d == dir) {
            group.dirs.push(dir.to_string());
        }
    }
    groups
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            let name = if i == 0 {
                WORKDIR_INIT_PREFIX.to_string()
            } else {
                format!("{WORKDIR_INIT_PREFIX}-{}", i + 1)
            };
            let planned = container(policy, name, &g, pod_ctx);
            let existing = list("initContainers")
                .iter()
                .find(|c| c.get("name") == planned.get("name"));
            match existing {
                Some(existing) if defaulted_from(existing, &planned) => (g.position, existing.clone()),
                _ => (g.position, planned),
            }
        })
        .collect()
}

/// Whether `existing` is `planned` as the API server returns it: defaulted
/// (`terminationMessagePath`, `terminationMessagePolicy`, `imagePullPolicy`) and with the
/// service-account token mounted read-only after its own mounts. Nothing else may differ.
fn defaulted_from(existing: &Value, planned: &Value) -> bool {
    let (Some(existing), Some(planned)) = (existing.as_object(), planned.as_object()) else {
        return false;
    };
    let extra_ok = existing
        .iter()
        .filter(|(k, _)| !planned.contains_key(k))
        .all(|(k, v)| DEFAULTED_FIELDS.contains(&k.as_str()) && v.is_string());
    let same = planned
        .iter()
        .all(|(k, want)| match (k.as_str(), existing.get(k)) {
            ("volumeMounts", Some(Value::Array(have))) => {
                let want = want.as_array().map_or(&[][..], Vec::as_slice);
                have.len() >= want.len()
                    && have[..want.len()] == *want
                    && have[want.len()..].iter().all(is_token_mount)
                    && have.len() - want.len() <= 1
            }
            (_, have) => have == Some(want),
        });
    extra_ok && same
}

/// The ServiceAccount admission plugin's token mount.
fn is_token_mount(m: &Value) -> bool {
    let Some(m) = m.as_object() else { return false };
    m.get("mountPath").and_then(Value::as_str) == Some(TOKEN_MOUNT_PATH)
        && m.get("readOnly") == Some(&Value::Bool(true))
        && m.get("name").is_some_and(Value::is_string)
        && m.keys()
            .all(|k| ["name", "mountPath", "readOnly"].contains(&k.as_str()))
}

fn container(policy: &ValidPolicy, name: String, g: &Group, pod_ctx: Option<&Value>) -> Value {
    let mut ctx = Map::new();
    ctx.insert("runAsUser".into(), Value::from(g.uid));
    if let Some(gid) = g.gid {
        ctx.insert("runAsGroup".into(), Value::from(gid));
    }
    ctx.insert("runAsNonRoot".into(), Value::Bool(true));
    ctx.insert("allowPrivilegeEscalation".into(), Value::Bool(false));
    ctx.insert("readOnlyRootFilesystem".into(), Value::Bool(true));
    ctx.insert(
        "capabilities".into(),
        object([("drop", Value::from(vec!["ALL"]))]),
    );
    for (field, own) in PROFILE_FIELDS.iter().zip(&g.profiles) {
        let pod = pod_ctx.and_then(|p| p.get(field)).filter(|v| !v.is_null());
        // The served containers' own, else the pod's (written out, so the container
        // says what it runs under); with none at all, seccomp RuntimeDefault.
        match own.as_ref().or(pod) {
            Some(v) => {
                ctx.insert((*field).into(), v.clone());
            }
            None if *field == "seccompProfile" => {
                ctx.insert((*field).into(), object([("type", "RuntimeDefault".into())]));
            }
            None => {}
        }
    }
    for enforced in [&policy.containers.enforced, &policy.role(Role::Init).enforced] {
        for (k, v) in enforced {
            if !OWN_FIELDS.contains(&k.as_str()) {
                ctx.insert(k.clone(), v.clone());
            }
        }
    }
    let resources = match &policy.workdir_init.resources {
        Some(r) => crate::value::to_value(r).unwrap_or_default(),
        None => {
            let small = || object([("cpu", "5m".into()), ("memory", "12Mi".into())]);
            object([("requests", small()), ("limits", small())])
        }
    };
    let mut command = vec![Value::from("mkdir"), Value::from("-p")];
    command.extend(g.dirs.iter().map(|d| Value::from(d.as_str())));
    object([
        ("name", name.into()),
        ("image", policy.workdir_init.image.as_str().into()),
        ("command", Value::Array(command)),
        ("resources", resources),
        ("securityContext", Value::Object(ctx)),
        ("volumeMounts", Value::Array(g.mounts.clone())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json;
    use rstest::rstest;

    #[rstest]
    #[case("/builds/group/project", "/builds", true)]
    #[case("/builds", "/builds", false)]
    #[case("/builds/", "/builds", false)]
    #[case("/builds2/x", "/builds", false)]
    #[case("/a/b", "/", true)]
    #[case("/a/b", "/a/", true)]
    fn inside(#[case] dir: &str, #[case] mount: &str, #[case] expected: bool) {
        assert_eq!(strictly_inside(dir, mount), expected);
    }

    fn planned() -> Value {
        json!({"name": "ciguard-workdir", "image": "busybox", "command": ["mkdir", "-p", "/b/x"],
               "securityContext": {"runAsUser": 1000},
               "volumeMounts": [{"name": "builds", "mountPath": "/b"}]})
    }

    fn token() -> Value {
        json!({"name": "kube-api-access-x7k2p", "readOnly": true, "mountPath": TOKEN_MOUNT_PATH})
    }

    #[rstest]
    #[case::same(json!({}), None, true)]
    #[case::defaulted(json!({"terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}), None, true)]
    #[case::token_mount(json!({"imagePullPolicy": "Always"}), Some(token()), true)]
    #[case::another_field(json!({"stdin": true}), None, false)]
    #[case::another_mount(json!({}), Some(json!({"name": "host", "mountPath": TOKEN_MOUNT_PATH})), false)]
    #[case::changed_context(json!({"securityContext": {"runAsUser": 0}}), None, false)]
    #[case::changed_command(json!({"command": ["sh"]}), None, false)]
    fn defaulting_is_recognised(#[case] extra: Value, #[case] mount: Option<Value>, #[case] kept: bool) {
        let mut existing = planned();
        for (k, v) in extra.as_object().unwrap() {
            existing[k] = v.clone();
        }
        if let Some(m) = mount {
            existing["volumeMounts"].as_array_mut().unwrap().push(m);
        }
        assert_eq!(defaulted_from(&existing, &planned()), kept);
    }
}
