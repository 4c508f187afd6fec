//! The one door every write goes through: it changes the output object, records the
//! provenance of each resulting field, the change, and the JSON Patch operation.

use serde::Serialize;
use serde_json::{Map, Value};

use super::layer::{Change, FieldRef, List, Origin, Provenance};
use crate::source::escape;

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

/// Whose security context a write goes to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target {
    /// `spec.securityContext`
    Pod,
    /// `spec.<list>[index].securityContext`
    Container(List, usize),
}

pub(crate) struct Writer<'o> {
    out: &'o mut Value,
    spec_ptr: &'static str,
    provenance: Vec<Provenance>,
    changes: Vec<Change>,
    patch: Vec<PatchOp>,
}

enum Seg {
    Key(String),
    Index(usize),
}

impl Seg {
    fn pointer(&self) -> String {
        match self {
            Seg::Key(k) => escape(k),
            Seg::Index(i) => i.to_string(),
        }
    }
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

impl<'o> Writer<'o> {
    pub fn new(out: &'o mut Value, spec_ptr: &'static str) -> Self {
        Writer {
            out,
            spec_ptr,
            provenance: Vec::new(),
            changes: Vec::new(),
            patch: Vec::new(),
        }
    }

    /// The pod spec as written so far.
    pub fn spec(&self) -> Option<&Value> {
        self.out.pointer(self.spec_ptr)
    }

    fn pointer(&self, segs: &[Seg]) -> String {
        let mut p = self.spec_ptr.to_string();
        for s in segs {
            p.push('/');
            p.push_str(&s.pointer());
        }
        p
    }

    /// Sets (or, with `None`, removes) a field of a security context, recording
    /// provenance for the resulting value and the change and patch when it differs.
    pub fn put(&mut self, field: FieldRef, target: Target, path: &[&str], desired: Option<(Value, Origin)>) {
        let mut segs = match target {
            Target::Pod => vec![],
            Target::Container(list, i) => vec![Seg::Key(list.key().into()), Seg::Index(i)],
        };
        segs.push(Seg::Key("securityContext".into()));
        segs.extend(path.iter().map(|k| Seg::Key((*k).into())));
        let old = self.spec().and_then(|s| get(s, &segs)).cloned();
        let new = desired.as_ref().map(|(v, _)| v.clone());
        let origin = desired.as_ref().map(|(_, o)| *o);
        if let Some((value, origin)) = desired {
            self.provenance.push(Provenance {
                field: field.clone(),
                value,
                origin,
            });
        }
        if old == new {
            return;
        }
        self.changes.push(Change {
            field,
            old: old.clone(),
            new: new.clone(),
            origin,
        });
        self.set(&segs, new, old.is_some());
    }

    fn set(&mut self, segs: &[Seg], new: Option<Value>, existed: bool) {
        let Some((last, parents)) = segs.split_last() else {
            return;
        };
        // The first parent that does not exist yet (or is null): the patch adds it whole.
        let spec_now = self.out.pointer(self.spec_ptr);
        let missing = (0..parents.len()).find(|&n| {
            spec_now
                .and_then(|s| get(s, &parents[..=n]))
                .is_none_or(Value::is_null)
        });
        let Some(mut cur) = self.out.pointer_mut(self.spec_ptr) else {
            return;
        };
        for seg in parents {
            if cur.is_null() {
                *cur = Value::Object(Map::new());
            }
            cur = match (seg, cur) {
                (Seg::Key(k), Value::Object(m)) => m.entry(k.clone()).or_insert(Value::Null),
                (Seg::Index(i), Value::Array(a)) => match a.get_mut(*i) {
                    Some(v) => v,
                    None => return,
                },
                _ => return,
            };
        }
        if cur.is_null() {
            *cur = Value::Object(Map::new());
        }
        let (Seg::Key(key), Value::Object(m)) = (last, cur) else {
            return;
        };
        match &new {
            Some(v) => {
                m.insert(key.clone(), v.clone());
            }
            None => {
                m.remove(key);
            }
        }
        let op = match (missing, &new) {
            (Some(n), Some(v)) => {
                // Build the value of the first missing parent.
                let mut value = v.clone();
                for seg in segs[n + 1..].iter().rev() {
                    if let Seg::Key(k) = seg {
                        let mut m = Map::new();
                        m.insert(k.clone(), value);
                        value = Value::Object(m);
                    }
                }
                PatchOp {
                    op: "add",
                    path: self.pointer(&segs[..=n]),
                    value: Some(value),
                }
            }
            (_, Some(v)) => PatchOp {
                op: if existed { "replace" } else { "add" },
                path: self.pointer(segs),
                value: Some(v.clone()),
            },
            (_, None) => PatchOp {
                op: "remove",
                path: self.pointer(segs),
                value: None,
            },
        };
        self.patch.push(op);
    }
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
        let current: Vec<Value> = self
            .spec()
            .and_then(|s| s.get("initContainers"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut desired: Vec<Value> = current.iter().filter(|c| !is_ours(c)).cloned().collect();
        for (inserted, (pos, c)) in plan.iter().enumerate() {
            desired.insert(pos + inserted, c.clone());
        }
        for c in desired.iter().filter(|c| is_ours(c)) {
            self.record_generated(c);
        }
        if desired == current {
            return;
        }
        let name_of = |c: &Value| {
            c.get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let list = Seg::Key("initContainers".into());
        // Remove ours, last first, then insert the plan in order.
        for (i, c) in current.iter().enumerate().rev().filter(|(_, c)| is_ours(c)) {
            self.array_mut().map(|a| a.remove(i));
            self.patch.push(PatchOp {
                op: "remove",
                path: self.pointer(&[Seg::Key("initContainers".into()), Seg::Index(i)]),
                value: None,
            });
            self.changes.push(Change {
                field: FieldRef {
                    container: Some((List::InitContainers, name_of(c))),
                    field: String::new(),
                },
                old: Some(c.clone()),
                new: None,
                origin: Some(Origin::WorkdirInit),
            });
        }
        for (i, c) in desired.iter().enumerate().filter(|(_, c)| is_ours(c)) {
            let op = match self.array_mut() {
                Some(a) => {
                    a.insert(i, c.clone());
                    PatchOp {
                        op: "add",
                        path: self.pointer(&[Seg::Key("initContainers".into()), Seg::Index(i)]),
                        value: Some(c.clone()),
                    }
                }
                None => {
                    if let Some(Value::Object(spec)) = self.out.pointer_mut(self.spec_ptr) {
                        spec.insert("initContainers".into(), Value::Array(vec![c.clone()]));
                    }
                    PatchOp {
                        op: "add",
                        path: self.pointer(std::slice::from_ref(&list)),
                        value: Some(Value::Array(vec![c.clone()])),
                    }
                }
            };
            self.patch.push(op);
            self.changes.push(Change {
                field: FieldRef {
                    container: Some((List::InitContainers, name_of(c))),
                    field: String::new(),
                },
                old: None,
                new: Some(c.clone()),
                origin: Some(Origin::WorkdirInit),
            });
        }
    }

    fn array_mut(&mut self) -> Option<&mut Vec<Value>> {
        self.out
            .pointer_mut(self.spec_ptr)?
            .get_mut("initContainers")?
            .as_array_mut()
    }

    fn record_generated(&mut self, c: &Value) {
        let name = c
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let Some(ctx) = c.get("securityContext").and_then(Value::as_object) else {
            return;
        };
        for (k, v) in ctx {
            self.provenance.push(Provenance {
                field: FieldRef {
                    container: Some((List::InitContainers, name.clone())),
                    field: k.clone(),
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
