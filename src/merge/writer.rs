//! The one door every write goes through: it changes the output object, records the
//! provenance of each resulting field, the change, and the JSON Patch operation.

use std::{borrow::Cow, sync::Arc};

use crate::value::{Map, Value, write_str};
use serde::Serialize;

use super::{
    Options,
    layer::{Change, FieldRef, List, Origin, Provenance},
};
use crate::{source::escape, workload::at_mut};

/// One RFC 6902 operation (`add`, `replace` or `remove`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatchOp {
    /// `add`, `replace` or `remove`.
    pub op: &'static str,
    /// JSON pointer into the input object, `~0`/`~1` escaped.
    pub path: String,
    /// The value, for `add` and `replace`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl PatchOp {
    /// Appends `ops` as a JSON array to `out`: the same text as serializing them with
    /// serde_json, written by hand (the member names are fixed text; the path and the
    /// value are written by [`crate::value`]'s compact writer) for the webhook's answer,
    /// where it is on every request.
    pub fn write_all(ops: &[PatchOp], out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, op) in ops.iter().enumerate() {
            out.extend_from_slice(if i == 0 { br#"{"op":"# } else { br#",{"op":"# });
            write_str(out, op.op);
            out.extend_from_slice(br#","path":"#);
            write_str(out, &op.path);
            if let Some(value) = &op.value {
                out.extend_from_slice(br#","value":"#);
                value.write_compact(out);
            }
            out.push(b'}');
        }
        out.push(b']');
    }
}

/// Where a write goes.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    /// `spec.securityContext`
    Pod,
    /// `spec.<list>[index].securityContext`
    Container(List, usize),
    /// The pod spec itself (`spec.hostUsers`, `spec.volumes`).
    Spec,
    /// A container itself (`spec.<list>[index].env`, `….volumeMounts`).
    ContainerSpec(List, usize),
}

pub(crate) struct Writer<'o> {
    /// The pod spec inside the output object, found once (`None`: the object has none,
    /// and nothing is written).
    spec: Option<&'o mut Value>,
    spec_path: &'static [&'static str],
    /// Which records are kept ([`Options::provenance`], [`Options::changes`],
    /// [`Options::patch`]).
    keep: Options,
    provenance: Vec<Provenance>,
    changes: Vec<Change>,
    patch: Vec<PatchOp>,
}

/// One step of a path under the spec. Keys are ciguard's own names (list keys, field
/// names, `securityContext`, `capabilities`), none of which a JSON pointer escapes
/// (`keys_need_no_escaping`), so a pointer is built without scanning them.
#[derive(Clone, Copy)]
enum Seg {
    Key(&'static str),
    Index(usize),
}

fn get<'v>(mut v: &'v Value, segs: &[Seg]) -> Option<&'v Value> {
    for s in segs {
        v = match (s, v) {
            (Seg::Key(k), Value::Object(m)) => m.get(k)?,
            (Seg::Index(i), Value::Array(a)) => a.get(*i)?,
            _ => return None,
        };
    }
    Some(v)
}

/// The most segments a path has: list, index, `securityContext`, and up to three keys.
const MAX_SEGS: usize = 6;

/// The path of a field under its target.
fn segments(target: Target, path: &[&'static str]) -> ([Seg; MAX_SEGS], usize) {
    let mut segs = [Seg::Index(0); MAX_SEGS];
    let mut n = 0;
    if let Target::Container(list, i) | Target::ContainerSpec(list, i) = target {
        segs[0] = Seg::Key(list.key());
        segs[1] = Seg::Index(i);
        n = 2;
    }
    if let Target::Pod | Target::Container(..) = target {
        segs[n] = Seg::Key("securityContext");
        n += 1;
    }
    for k in path.iter().take(MAX_SEGS - n) {
        segs[n] = Seg::Key(k);
        n += 1;
    }
    (segs, n)
}

impl<'o> Writer<'o> {
    pub fn new(out: &'o mut Value, spec_path: &'static [&'static str], keep: Options) -> Self {
        Writer {
            spec: at_mut(out, spec_path),
            spec_path,
            keep,
            provenance: Vec::with_capacity(if keep.provenance { 64 } else { 0 }),
            changes: Vec::with_capacity(if keep.changes { 32 } else { 0 }),
            patch: Vec::with_capacity(if keep.patch { 32 } else { 0 }),
        }
    }

    /// Records the provenance `provenance` gives, when provenance is kept.
    fn provenance(&mut self, provenance: impl FnOnce() -> Provenance) {
        if self.keep.provenance {
            self.provenance.push(provenance());
        }
    }

    /// Records the change `change` makes, when changes are kept.
    fn change(&mut self, change: impl FnOnce() -> Change) {
        if self.keep.changes {
            self.changes.push(change());
        }
    }

    /// Records the patch operation `op` makes, when the patch is kept: `op` is only
    /// called then, so an unkept patch costs no pointer and no copy.
    fn patch(&mut self, op: impl FnOnce(&Self) -> PatchOp) {
        if self.keep.patch {
            let op = op(self);
            self.patch.push(op);
        }
    }

    /// The pod spec as written so far.
    pub fn spec(&self) -> Option<&Value> {
        self.spec.as_deref()
    }

    fn spec_mut(&mut self) -> Option<&mut Value> {
        self.spec.as_deref_mut()
    }

    /// The JSON pointer of `segs`, allocated once at its length.
    fn pointer(&self, segs: &[Seg]) -> String {
        let mut index = itoa::Buffer::new();
        let mut len = 0;
        for k in self.spec_path {
            len += 1 + k.len();
        }
        for s in segs {
            len += 1 + match s {
                Seg::Key(k) => k.len(),
                // At most a few digits: no list has a million items.
                Seg::Index(_) => 8,
            };
        }
        let mut p = String::with_capacity(len);
        for k in self.spec_path {
            p.push('/');
            p.push_str(k);
        }
        for s in segs {
            p.push('/');
            match s {
                Seg::Key(k) => {
                    debug_assert!(escape(k) == *k, "{k} needs escaping in a JSON pointer");
                    p.push_str(k);
                }
                // Not through `fmt`: a pointer is built for every write.
                Seg::Index(i) => p.push_str(index.format(*i)),
            }
        }
        p
    }

    /// Sets (or, with `None`, removes) a field of a security context, recording
    /// provenance for the resulting value and the change and patch when it differs.
    pub fn put(
        &mut self,
        field: FieldRef,
        target: Target,
        path: &[&'static str],
        desired: Option<(&Value, Origin)>,
    ) {
        let (segs, n) = segments(target, path);
        let segs = &segs[..n];
        let old = self.spec().and_then(|s| get(s, segs));
        if old == desired.map(|(v, _)| v) {
            if let Some((value, origin)) = desired {
                self.provenance(|| Provenance {
                    field,
                    value: value.clone(),
                    origin,
                });
            }
            return;
        }
        let new = desired.map(|(v, _)| v.clone());
        let origin = desired.map(|(_, o)| o);
        if let Some((value, origin)) = desired {
            self.provenance(|| Provenance {
                field: field.clone(),
                value: value.clone(),
                origin,
            });
        }
        let change_new = if self.keep.changes { new.clone() } else { None };
        // The value replaced comes back from the write: no copy of it is made.
        let old = self.set(segs, new);
        self.change(|| Change {
            field,
            old,
            new: change_new,
            origin,
        });
    }

    /// Writes `new` (or, with `None`, removes the field) at `segs` under the spec, creating
    /// missing parents, and records the patch operation. Returns the value it replaced.
    fn set(&mut self, segs: &[Seg], new: Option<Value>) -> Option<Value> {
        let (last, parents) = segs.split_last()?;
        // The patch takes `new` itself and the object a copy; without a patch, the object
        // takes `new`.
        let (stored, new) = match new {
            Some(v) if self.keep.patch => (Some(v.clone()), Some(v)),
            v => (v, None),
        };
        let mut cur = self.spec_mut()?;
        // The first parent that does not exist yet (or is null): the patch adds it whole.
        let mut missing = None;
        for (n, seg) in parents.iter().enumerate() {
            if cur.is_null() {
                *cur = Value::Object(Map::new());
            }
            cur = match (*seg, cur) {
                (Seg::Key(k), Value::Object(m)) => m.get_or_insert_with(k, || Value::Null),
                (Seg::Index(i), Value::Array(a)) => a.get_mut(i)?,
                _ => return None,
            };
            if cur.is_null() {
                missing.get_or_insert(n);
            }
        }
        if cur.is_null() {
            *cur = Value::Object(Map::new());
        }
        let (Seg::Key(key), Value::Object(m)) = (*last, cur) else {
            return None;
        };
        let old = match stored {
            Some(v) => match m.get_mut(key) {
                Some(slot) => Some(std::mem::replace(slot, v)),
                None => m.insert(key.to_string(), v),
            },
            // The order of the other members is kept.
            None => m.shift_remove(key),
        };
        let replaced = old.is_some();
        self.patch(|w| match (missing, new) {
            (Some(n), Some(v)) => {
                // Build the value of the first missing parent.
                let mut value = v;
                for seg in segs[n + 1..].iter().rev() {
                    if let Seg::Key(k) = seg {
                        let mut m = Map::new();
                        m.insert((*k).to_string(), value);
                        value = Value::Object(m);
                    }
                }
                PatchOp {
                    op: "add",
                    path: w.pointer(&segs[..=n]),
                    value: Some(value),
                }
            }
            (_, Some(v)) => PatchOp {
                op: if replaced { "replace" } else { "add" },
                path: w.pointer(segs),
                value: Some(v),
            },
            (_, None) => PatchOp {
                op: "remove",
                path: w.pointer(segs),
                value: None,
            },
        });
        old
    }
}

impl Writer<'_> {
    /// Adds `item` (an object with a `name`) to the list `key` of `target` unless an item
    /// of that name is there already: what the pod has is never replaced. Records the
    /// provenance of the item when it is the policy's (added now or by an earlier render).
    pub fn insert_named(
        &mut self,
        field: FieldRef,
        target: Target,
        key: &'static str,
        item: Value,
        origin: Origin,
    ) {
        let (segs, n) = segments(target, &[key]);
        let segs = &segs[..n];
        let name = item.get("name");
        let current = self.spec().and_then(|s| get(s, segs));
        if let Some(existing) = current
            .and_then(Value::as_array)
            .and_then(|a| a.iter().find(|x| x.get("name") == name))
        {
            if *existing == item {
                self.provenance(|| Provenance {
                    field,
                    value: item,
                    origin,
                });
            }
            return;
        }
        let len = match current {
            Some(Value::Array(a)) => Some(a.len()),
            _ => None,
        };
        self.provenance(|| Provenance {
            field: field.clone(),
            value: item.clone(),
            origin,
        });
        self.change(|| Change {
            field,
            old: None,
            new: Some(item.clone()),
            origin: Some(origin),
        });
        let keep_patch = self.keep.patch;
        match len {
            Some(len) => {
                let Some(list) = self
                    .spec_mut()
                    .and_then(|s| get_mut(s, segs))
                    .and_then(Value::as_array_mut)
                else {
                    return;
                };
                if !keep_patch {
                    list.push(item);
                    return;
                }
                list.push(item.clone());
                self.patch(|w| {
                    let mut path = w.pointer(segs);
                    path.push_str(&format!("/{len}"));
                    PatchOp {
                        op: "add",
                        path,
                        value: Some(item),
                    }
                });
            }
            // No list yet (or a null one): the list is added with the item.
            None => {
                self.set(segs, Some(Value::Array(vec![item])));
            }
        }
    }
}

fn get_mut<'v>(mut v: &'v mut Value, segs: &[Seg]) -> Option<&'v mut Value> {
    for s in segs {
        v = match (s, v) {
            (Seg::Key(k), Value::Object(m)) => m.get_mut(k)?,
            (Seg::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(v)
}

impl Writer<'_> {
    /// Replaces ciguard's own init containers (names starting with `prefix`) by `plan`:
    /// (position among the other init containers, container). Writes nothing when the
    /// pod already has exactly these.
    pub fn replace_generated(&mut self, prefix: &str, plan: Vec<(usize, Value)>) {
        let is_ours = |c: &Value| {
            c.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.starts_with(prefix))
        };
        let empty = Vec::new();
        let current: &Vec<Value> = self
            .spec()
            .and_then(|s| s.get("initContainers"))
            .and_then(Value::as_array)
            .unwrap_or(&empty);
        if plan.is_empty() && !current.iter().any(is_ours) {
            return;
        }
        let current = current.clone();
        let mut desired: Vec<Value> = current.iter().filter(|c| !is_ours(c)).cloned().collect();
        for (inserted, (pos, c)) in plan.into_iter().enumerate() {
            desired.insert(pos + inserted, c);
        }
        for c in desired.iter().filter(|c| is_ours(c)) {
            self.record_generated(c);
        }
        if desired == current {
            return;
        }
        let name_of =
            |c: &Value| -> Arc<str> { c.get("name").and_then(Value::as_str).unwrap_or_default().into() };
        let container_change = |c: &Value, old: Option<Value>, new: Option<Value>| Change {
            field: FieldRef {
                container: Some((List::InitContainers, name_of(c))),
                field: Cow::Borrowed(""),
            },
            old,
            new,
            origin: Some(Origin::WorkdirInit),
        };
        // Remove ours, last first, then insert the plan in order.
        for (i, c) in current.iter().enumerate().rev().filter(|(_, c)| is_ours(c)) {
            if let Some(a) = self.init_containers() {
                a.remove(i);
            }
            self.patch(|w| PatchOp {
                op: "remove",
                path: w.pointer(&[Seg::Key("initContainers"), Seg::Index(i)]),
                value: None,
            });
            self.change(|| container_change(c, Some(c.clone()), None));
        }
        for (i, c) in desired.iter().enumerate().filter(|(_, c)| is_ours(c)) {
            match self.init_containers() {
                Some(a) => {
                    a.insert(i, c.clone());
                    self.patch(|w| PatchOp {
                        op: "add",
                        path: w.pointer(&[Seg::Key("initContainers"), Seg::Index(i)]),
                        value: Some(c.clone()),
                    });
                }
                None => {
                    if let Some(Value::Object(spec)) = self.spec_mut() {
                        spec.insert("initContainers".into(), Value::Array(vec![c.clone()]));
                    }
                    self.patch(|w| PatchOp {
                        op: "add",
                        path: w.pointer(&[Seg::Key("initContainers")]),
                        value: Some(Value::Array(vec![c.clone()])),
                    });
                }
            }
            self.change(|| container_change(c, None, Some(c.clone())));
        }
    }

    fn init_containers(&mut self) -> Option<&mut Vec<Value>> {
        self.spec_mut()?.get_mut("initContainers")?.as_array_mut()
    }

    fn record_generated(&mut self, c: &Value) {
        if !self.keep.provenance {
            // Not even the name is needed.
            return;
        }
        let name: Arc<str> = c.get("name").and_then(Value::as_str).unwrap_or_default().into();
        let Some(ctx) = c.get("securityContext").and_then(Value::as_object) else {
            return;
        };
        for (k, v) in ctx {
            self.provenance(|| Provenance {
                field: FieldRef {
                    container: Some((List::InitContainers, name.clone())),
                    field: Cow::Owned(k.clone()),
                },
                value: v.clone(),
                origin: Origin::WorkdirInit,
            });
        }
    }

    /// The records: provenance, changes, patch.
    pub fn finish(self) -> (Vec<Provenance>, Vec<Change>, Vec<PatchOp>) {
        (self.provenance, self.changes, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use crate::json;

    use super::*;

    /// `write_all` writes what serde_json writes: no op, one, several; `remove` without a
    /// value; a path and values that need escaping.
    #[test]
    fn patch_written_by_hand_is_serde_json_text() {
        let op = |op, path: &str, value| PatchOp {
            op,
            path: path.to_string(),
            value,
        };
        let cases = [
            vec![],
            vec![op("add", "/spec/securityContext/runAsUser", Some(json!(1000)))],
            vec![
                op(
                    "replace",
                    "/spec/containers/0/securityContext",
                    Some(json!({"a": [true, null, 1.5, "q\"\n"]})),
                ),
                op("remove", "/spec/hostNetwork", None),
                op("add", "/metadata/annotations/a~1b\"c", Some(json!("x"))),
            ],
        ];
        for ops in cases {
            let mut ours = Vec::new();
            PatchOp::write_all(&ops, &mut ours);
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string(&ops).unwrap()
            );
        }
    }

    /// The writer puts keys into pointers as they are: none of ciguard's field names or list
    /// keys holds a `~` or `/` (the debug assertion in `pointer` checks every key a test
    /// writes; this checks the tables).
    #[test]
    fn keys_need_no_escaping() {
        let keys = super::super::fields::FIELDS
            .iter()
            .map(|f| f.name)
            .chain([List::InitContainers, List::Containers].map(List::key))
            .chain([
                "securityContext",
                "capabilities",
                "drop",
                "add",
                "env",
                "volumeMounts",
                "volumes",
            ]);
        for key in keys {
            assert_eq!(escape(key), key);
        }
    }

    /// A removed field leaves the others in their order (`Map::remove` would have moved
    /// the last one into its place).
    #[test]
    fn removing_keeps_the_order_of_the_rest() {
        let mut pod = json!({"spec": {"containers": [{"name": "build", "securityContext":
            {"runAsUser": 0, "readOnlyRootFilesystem": false, "privileged": false, "procMount": "Default"}}]}});
        let mut w = Writer::new(&mut pod, &["spec"], super::super::PodSecurity::Skip.into());
        let field = FieldRef {
            container: Some((List::Containers, "build".into())),
            field: Cow::Borrowed("runAsUser"),
        };
        w.put(
            field,
            Target::Container(List::Containers, 0),
            &["runAsUser"],
            None,
        );
        let (_, changes, patch) = w.finish();
        assert_eq!(changes.len(), 1);
        assert_eq!(patch[0].path, "/spec/containers/0/securityContext/runAsUser");
        let keys: Vec<&String> = pod["spec"]["containers"][0]["securityContext"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(keys, ["readOnlyRootFilesystem", "privileged", "procMount"]);
    }
}
