//! Reads the pod of the webhook benchmark's AdmissionReview (its `request.object`,
//! without `managedFields`, as ciguard keeps those as text) into each candidate
//! in-memory model, N times each, and prints the time per read (the result dropped
//! inside the timing). Run it under callgrind for instruction counts, which unlike wall
//! time do not move with the machine's load.
//!
//! - `serde_json::Value`: what ciguard read until it had a value type of its own
//!   (order-keeping maps that hash every key, every string copied), through serde_json
//!   and through sonic-rs's front end;
//! - `k8s_openapi` `Pod`: the typed model, read straight from the text;
//! - owned list trees: objects as lists of members, strings owned: with `String` the
//!   shape of `ciguard::value::Value`, with `CompactString` the same with short strings
//!   inline;
//! - a borrowed tree: objects as lists of members, strings borrowed from the text where
//!   they hold no escape (the model of a "read once, copy on write" engine);
//! - `sonic_rs::Value`: an arena-backed value with order-keeping objects.

use std::{borrow::Cow, hint::black_box, time::Instant};

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[inline(never)]
fn read_serde_json_value(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("JSON")
}

#[inline(never)]
fn read_k8s_openapi_pod(text: &str) -> k8s_openapi::api::core::v1::Pod {
    serde_json::from_str(text).expect("a pod")
}

#[inline(never)]
fn read_borrowed_tree(text: &str) -> Tree<'_> {
    serde_json::from_str(text).expect("JSON")
}

/// `serde_json::Value` again, read through sonic-rs's serde front end (SIMD scanning):
/// what a faster tokenizer alone would give.
#[inline(never)]
fn read_serde_json_value_via_sonic_rs(text: &str) -> serde_json::Value {
    sonic_rs::from_str(text).expect("JSON")
}

#[inline(never)]
fn read_sonic_rs_value(text: &str) -> sonic_rs::Value {
    sonic_rs::from_str(text).expect("JSON")
}

/// A JSON value that borrows its strings from the text where it can.
#[derive(Debug)]
#[allow(dead_code)] // read for its cost only
enum Tree<'a> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(Cow<'a, str>),
    Array(Vec<Tree<'a>>),
    Object(Vec<(Cow<'a, str>, Tree<'a>)>),
}

struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TreeVisitor).and_then(|t| match t {
            Tree::String(s) => Ok(Key(s)),
            _ => Err(serde::de::Error::custom("a key is a string")),
        })
    }
}

impl<'de> Deserialize<'de> for Tree<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TreeVisitor)
    }
}

struct TreeVisitor;

impl<'de> Visitor<'de> for TreeVisitor {
    type Value = Tree<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Tree<'de>, E> {
        Ok(Tree::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Tree<'de>, E> {
        Ok(Tree::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Tree<'de>, E> {
        Ok(Tree::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Tree<'de>, E> {
        Ok(Tree::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Tree<'de>, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Tree::Null, Tree::Number))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Tree<'de>, E> {
        Ok(Tree::String(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Tree<'de>, E> {
        Ok(Tree::String(Cow::Owned(v.to_owned())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tree<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Tree::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tree<'de>, A::Error> {
        let mut members = Vec::new();
        while let Some(Key(key)) = map.next_key()? {
            members.push((key, map.next_value()?));
        }
        Ok(Tree::Object(members))
    }
}

/// A JSON value that owns its strings, objects as lists of members: `String` is the
/// shape of `ciguard::value::Value`; `CompactString` the same with short strings inline.
#[derive(Debug)]
#[allow(dead_code)] // read for its cost only
enum Owned<S> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(S),
    Array(Vec<Owned<S>>),
    Object(Vec<(S, Owned<S>)>),
}

trait Text: Sized + for<'de> Deserialize<'de> {
    fn of(s: &str) -> Self;
}
impl Text for String {
    fn of(s: &str) -> Self {
        s.to_owned()
    }
}
impl Text for compact_str::CompactString {
    fn of(s: &str) -> Self {
        compact_str::CompactString::new(s)
    }
}

impl<'de, S: Text> Deserialize<'de> for Owned<S> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OwnedVisitor(std::marker::PhantomData))
    }
}

struct OwnedVisitor<S>(std::marker::PhantomData<S>);

impl<'de, S: Text> Visitor<'de> for OwnedVisitor<S> {
    type Value = Owned<S>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Owned<S>, E> {
        Ok(Owned::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Owned<S>, E> {
        Ok(Owned::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Owned<S>, E> {
        Ok(Owned::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Owned<S>, E> {
        Ok(Owned::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Owned<S>, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Owned::Null, Owned::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Owned<S>, E> {
        Ok(Owned::String(S::of(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Owned<S>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Owned::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Owned<S>, A::Error> {
        let mut members = Vec::new();
        while let Some(key) = map.next_key::<S>()? {
            members.push((key, map.next_value()?));
        }
        Ok(Owned::Object(members))
    }
}

#[inline(never)]
fn read_owned_list_tree(text: &str) -> Owned<String> {
    serde_json::from_str(text).expect("JSON")
}

#[inline(never)]
fn read_compact_list_tree(text: &str) -> Owned<compact_str::CompactString> {
    serde_json::from_str(text).expect("JSON")
}

fn time(name: &str, n: u32, text: &str, read: impl Fn(&str)) {
    let start = Instant::now();
    for _ in 0..n {
        read(black_box(text));
    }
    println!(
        "{name:<22} {:>8.2} µs per read",
        start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    );
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .map_or(20_000, |a| a.parse().expect("the number of reads"));
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/admission/gitlab-runner-build-pod.json"
    );
    let review: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("the AdmissionReview")).expect("JSON");
    let mut pod = review["request"]["object"].clone();
    if let Some(meta) = pod.get_mut("metadata").and_then(serde_json::Value::as_object_mut) {
        meta.shift_remove("managedFields");
    }
    let text = serde_json::to_string(&pod).expect("JSON");
    println!(
        "the GitLab Runner build pod, {} bytes of JSON, {n} reads each",
        text.len()
    );
    // Every model reads the same value.
    assert_eq!(
        read_serde_json_value_via_sonic_rs(&text),
        read_serde_json_value(&text)
    );
    assert_eq!(
        read_sonic_rs_value(&text).to_string(),
        read_serde_json_value(&text).to_string()
    );
    time("serde_json::Value", n, &text, |t| {
        drop(black_box(read_serde_json_value(t)))
    });
    time("serde_json via sonic", n, &text, |t| {
        drop(black_box(read_serde_json_value_via_sonic_rs(t)))
    });
    time("k8s-openapi Pod", n, &text, |t| {
        drop(black_box(read_k8s_openapi_pod(t)))
    });
    time("owned list tree", n, &text, |t| {
        drop(black_box(read_owned_list_tree(t)))
    });
    time("compact list tree", n, &text, |t| {
        drop(black_box(read_compact_list_tree(t)))
    });
    time("borrowed tree", n, &text, |t| {
        drop(black_box(read_borrowed_tree(t)))
    });
    time("sonic_rs::Value", n, &text, |t| {
        drop(black_box(read_sonic_rs_value(t)))
    });
}
