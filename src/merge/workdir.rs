//! The working-directory init container for non-root jobs.
//!
//! A container that runs with a non-zero uid and whose `workingDir` lies strictly inside
//! a volume mount cannot create that directory itself when the volume's root belongs to
//! another user. ciguard adds an init container that runs as the same uid/gid, mounts the
//! same volume at the same path and runs `mkdir -p` for the directory. Containers sharing
//! a uid/gid share one init container. It is inserted before the first init container
//! that needs it, or after all init containers.

use serde_json::{Map, Value, json};

use super::WORKDIR_INIT_PREFIX;
use crate::policy::{Role, ValidPolicy};

/// Fields of the policy's enforced contexts that the init container keeps its own: it
/// must run as the job's user to create a directory the job can write.
const OWN_FIELDS: [&str; 4] = ["runAsUser", "runAsGroup", "runAsNonRoot", "capabilities"];

#[derive(Debug)]
struct Group {
    uid: i64,
    gid: Option<i64>,
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
        let group = match groups.iter_mut().position(|g| g.uid == uid && g.gid == gid) {
            Some(i) => &mut groups[i],
            None => {
                groups.push(Group {
                    uid,
                    gid,
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
            (g.position, container(policy, name, &g))
        })
        .collect()
}

fn container(policy: &ValidPolicy, name: String, g: &Group) -> Value {
    let mut ctx = Map::new();
    ctx.insert("runAsUser".into(), json!(g.uid));
    if let Some(gid) = g.gid {
        ctx.insert("runAsGroup".into(), json!(gid));
    }
    ctx.insert("runAsNonRoot".into(), json!(true));
    ctx.insert("allowPrivilegeEscalation".into(), json!(false));
    ctx.insert("readOnlyRootFilesystem".into(), json!(true));
    ctx.insert("capabilities".into(), json!({"drop": ["ALL"]}));
    ctx.insert("seccompProfile".into(), json!({"type": "RuntimeDefault"}));
    for enforced in [&policy.containers.enforced, &policy.role(Role::Init).enforced] {
        for (k, v) in enforced {
            if !OWN_FIELDS.contains(&k.as_str()) {
                ctx.insert(k.clone(), v.clone());
            }
        }
    }
    let mut command = vec![json!("mkdir"), json!("-p")];
    command.extend(g.dirs.iter().map(|d| json!(d)));
    json!({
        "name": name,
        "image": policy.workdir_init.image,
        "command": command,
        "resources": {
            "requests": {"cpu": "5m", "memory": "12Mi"},
            "limits": {"cpu": "5m", "memory": "12Mi"}
        },
        "securityContext": ctx,
        "volumeMounts": g.mounts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
