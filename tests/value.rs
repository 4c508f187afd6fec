//! `ciguard::value` against serde_json's `Value`, the model it replaced: the same text reads
//! to the same value and writes back as the same text, map operations keep the same order,
//! and typed reads from it accept and refuse the same things with the same messages.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ciguard::{
    json,
    value::{Map, SCAN, Value},
};
use k8s_openapi::api::core::v1::{PodSpec, SecurityContext};
use proptest::prelude::*;
use serde::Deserialize;

/// Member names: a few that repeat often, enough others to pass [`SCAN`], and some that
/// k8s-openapi's security context knows.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-c]",
        "k[0-9]{1,2}",
        prop::sample::select(vec![
            "runAsUser",
            "runAsGroup",
            "runAsNonRoot",
            "privileged",
            "capabilities",
            "add",
            "drop",
            "seccompProfile",
            "type",
            "localhostProfile",
        ])
        .prop_map(str::to_string),
    ]
}

/// JSON text whose objects may repeat member names (which no `Value` can hold, so it is
/// written out as text).
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        (-1e9f64..1e9).prop_map(|f| format!("{f:e}")),
        "[a-zA-Z0-9 é\"\\\\/\n]{0,6}".prop_map(|s| serde_json::to_string(&s).unwrap()),
    ];
    leaf.prop_recursive(4, 400, 40, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((name(), inner), 0..(3 * SCAN)).prop_map(|members| {
                let members: Vec<String> = members.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Reading: equal to serde_json's value, member for member and in the same order, with
    /// a repeated name in its first place holding its last value.
    #[test]
    fn reads_and_writes_as_serde_json(text in json_text()) {
        let ours: Value = serde_json::from_str(&text).unwrap();
        let theirs: serde_json::Value = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(serde_json::to_string(&ours).unwrap(), serde_json::to_string(&theirs).unwrap());
        prop_assert_eq!(ours.to_string(), theirs.to_string());
        prop_assert_eq!(format!("{ours:#}"), format!("{theirs:#}"));
        prop_assert_eq!(&ours, &Value::from(theirs.clone()));
        prop_assert_eq!(serde_json::Value::from(ours), theirs);
    }

    /// Typed reads through `&Value` accept what serde_json's accepts and refuse with its
    /// message.
    #[test]
    fn typed_reads_as_serde_json(text in json_text()) {
        let ours: Value = serde_json::from_str(&text).unwrap();
        let theirs: serde_json::Value = serde_json::from_str(&text).unwrap();
        let a = SecurityContext::deserialize(&ours).map_err(|e| e.to_string());
        let b = SecurityContext::deserialize(&theirs).map_err(|e| e.to_string());
        prop_assert_eq!(a, b);
        let a = PodSpec::deserialize(&ours).map_err(|e| e.to_string());
        let b = PodSpec::deserialize(&theirs).map_err(|e| e.to_string());
        prop_assert_eq!(a, b);
    }

    /// Changing a map: the same members in the same order as serde_json's order-keeping
    /// map after every step, on both sides of the index threshold.
    #[test]
    fn map_changes_as_serde_json(steps in prop::collection::vec((0u8..5, name(), any::<u16>()), 0..120)) {
        let mut ours = Map::new();
        let mut theirs = serde_json::Map::new();
        for (op, key, n) in steps {
            match op {
                0 | 1 => prop_assert_eq!(
                    ours.insert(key.clone(), Value::from(n)),
                    theirs.insert(key.clone(), serde_json::Value::from(n)).map(Value::from)
                ),
                2 => prop_assert_eq!(ours.shift_remove(&key), theirs.shift_remove(&key).map(Value::from)),
                3 => prop_assert_eq!(
                    ours.get_or_insert_with(&key, || Value::from(n)).clone(),
                    Value::from(theirs.entry(key.clone()).or_insert_with(|| serde_json::Value::from(n)).clone())
                ),
                _ => {
                    let keep = |k: &String| !k.ends_with(char::from(b'0' + (n % 10) as u8));
                    ours.retain(|k, _| keep(k));
                    theirs.retain(|k, _| keep(k));
                }
            }
            let ours_members: Vec<_> = ours.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            let theirs_members: Vec<_> = theirs.iter().map(|(k, v)| (k.clone(), Value::from(v.clone()))).collect();
            prop_assert_eq!(ours_members, theirs_members);
            prop_assert_eq!(ours.get(&key).cloned(), theirs.get(&key).cloned().map(Value::from));
            prop_assert_eq!(ours.contains_key(&key), theirs.contains_key(&key));
        }
    }
}

/// Typed reads of pod specs that are wrong in different ways: the same messages as
/// serde_json's value gives (`ciguard render` and `check` print them).
#[test]
fn typed_read_messages() {
    for text in [
        r#"{"containers": [{"name": "c"}]}"#,
        r#"{"containers": [{"name": 5}]}"#,
        r#"{"containers": "c"}"#,
        r#"{"containers": [{"name": "c", "securityContext": {"runAsUser": "0"}}]}"#,
        r#"{"containers": [{"name": "c", "securityContext": {"runAsUser": -1.5}}]}"#,
        r#"{"containers": [{"name": "c", "securityContext": {"capabilities": {"add": [1]}}}]}"#,
        r#"{"containers": [{"name": "c", "securityContext": {"privileged": "true"}}]}"#,
        r#"{"containers": [{"name": "c", "ports": [{"containerPort": 1.5}]}]}"#,
        r#"{"containers": [{"name": "c", "livenessProbe": {"httpGet": {"port": "http"}}}]}"#,
        r#"{"containers": [{"name": "c", "livenessProbe": {"httpGet": {"port": 8080}}}]}"#,
        r#"{"containers": [{"name": "c", "livenessProbe": {"httpGet": {"port": true}}}]}"#,
        r#"{"containers": [{"name": "c", "resources": {"limits": {"cpu": 1}}}]}"#,
        r#"{"containers": [{"name": "c", "resources": {"limits": {"cpu": "1"}}}]}"#,
        r#"{"containers": null, "volumes": [{"name": "v", "emptyDir": {"sizeLimit": "1Gi"}}]}"#,
        r#"{"containers": [], "unknown": {"deep": [1, 2]}}"#,
        r#"{"containers": [], "hostUsers": null, "hostPID": 1}"#,
        r#"[1, 2]"#,
        r#""spec""#,
        r#"null"#,
    ] {
        let ours: Value = serde_json::from_str(text).unwrap();
        let theirs: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            PodSpec::deserialize(&ours).map_err(|e| e.to_string()),
            PodSpec::deserialize(&theirs).map_err(|e| e.to_string()),
            "{text}"
        );
    }
}

/// A member name repeated in an object read from text: first place, last value, in small
/// objects and in indexed ones.
#[test]
fn repeated_names_keep_first_place_and_last_value() {
    let small: Value = serde_json::from_str(r#"{"a": 1, "b": 2, "a": 3}"#).unwrap();
    assert_eq!(small.to_string(), r#"{"a":3,"b":2}"#);
    let members: Vec<String> = (0..SCAN + 5).map(|i| format!("\"k{i}\": {i}")).collect();
    let text = format!("{{{}, \"k3\": \"last\", \"k0\": null}}", members.join(", "));
    let large: Value = serde_json::from_str(&text).unwrap();
    let large = large.as_object().unwrap();
    assert_eq!(large.len(), SCAN + 5);
    assert_eq!(large.keys().next().unwrap(), "k0");
    assert_eq!(large["k3"], "last");
    assert_eq!(large["k0"], Value::Null);
    assert_eq!(large.keys().nth(3).unwrap(), "k3");
}

/// Large objects stay indexed through every change: each member is found where it is.
#[test]
fn large_objects_find_every_member() {
    let mut m: Map<String, Value> = (0..5_000).map(|i| (format!("m{i}"), Value::from(i))).collect();
    for i in (0..5_000).step_by(7) {
        m.shift_remove(&format!("m{i}"));
    }
    m.insert("last".into(), json!(true));
    m.retain(|k, _| !k.ends_with('9'));
    for (k, v) in &m {
        assert_eq!(m.get(k), Some(v), "{k}");
    }
    assert_eq!(m.keys().last().unwrap(), "last");
    assert!(m.get("m7").is_none() && m.get("m19").is_none() && m.get("m20").is_some());
    // An object of many members, every name repeated, read from text.
    let members: Vec<String> = (0..50_000).map(|i| format!("\"n{}\": {i}", i % 25_000)).collect();
    let v: Value = serde_json::from_str(&format!("{{{}}}", members.join(","))).unwrap();
    let v = v.as_object().unwrap();
    assert_eq!(v.len(), 25_000);
    assert_eq!(v["n0"], 25_000);
    assert_eq!(v.keys().last().unwrap(), "n24999");
}

/// Pointers, indexing and assignment, as serde_json's.
#[test]
fn pointers_and_indexing_as_serde_json() {
    let text = r#"{"a": {"b/c": [10, {"~d": 1}]}, "": 2, "e": null}"#;
    let ours: Value = serde_json::from_str(text).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(text).unwrap();
    for p in [
        "",
        "/a",
        "/a/b~1c",
        "/a/b~1c/0",
        "/a/b~1c/1/~0d",
        "/a/b~1c/01",
        "/a/b~1c/+1",
        "/a/b~1c/2",
        "/",
        "/e/x",
        "a",
        "/a/x/y",
    ] {
        assert_eq!(
            ours.pointer(p),
            theirs.pointer(p).cloned().map(Value::from).as_ref(),
            "{p}"
        );
    }
    assert_eq!(ours["a"]["b/c"][0], 10);
    assert_eq!(ours["missing"][3]["x"], Value::Null);
    let mut ours = ours;
    ours["e"]["new"] = json!([1]);
    ours["a"]["b/c"][1]["~d"] = json!("x");
    assert_eq!(
        ours.to_string(),
        r#"{"a":{"b/c":[10,{"~d":"x"}]},"":2,"e":{"new":[1]}}"#
    );
}

/// `serde_json`'s `RawValue` reads from a `Value` as it does from serde_json's own.
#[test]
fn raw_values_read_from_values() {
    let v = json!({"a": [1, {"b": "c"}], "d": null});
    let raw: Box<serde_json::value::RawValue> = ciguard::value::from_value(v.clone()).unwrap();
    assert_eq!(raw.get(), v.to_string());
}

/// A `Map` read on its own (as policy contexts are): `null` is an empty object, anything
/// but an object is refused with serde_json's message and position.
#[test]
fn maps_read_as_serde_json() {
    for text in [
        "null",
        "{}",
        r#"{"a": 1, "a": 2}"#,
        "5",
        r#""x""#,
        "[1]",
        "true",
        "{\"a\": }",
    ] {
        let ours = serde_json::from_str::<Map<String, Value>>(text).map_err(|e| e.to_string());
        let theirs = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
            .map(|m| Value::Object(m.into_iter().map(|(k, v)| (k, Value::from(v))).collect()))
            .map_err(|e| e.to_string());
        assert_eq!(ours.map(Value::Object), theirs, "{text}");
    }
}

/// YAML read by serde-saphyr (what `source` falls back to outside its fast path) gives the
/// value, or the error, serde_json's value gets from the same reader.
#[test]
fn yaml_reads_as_serde_json() {
    for text in [
        "a: 1\nb: [x, 2.5, -3, true, null, ~]\n",
        "big: 18446744073709551616\n",
        "neg: -9223372036854775809\n",
        "max: 18446744073709551615\nmin: -9223372036854775808\n",
        "f: [.inf, -.inf, .nan, 1e400, 0x1F, 0o17, 1_000]\n",
        "t: 2026-11-28T19:00:00Z\nq: '007'\n",
        "bin: !!binary aGVsbG8=\n",
        "s: !!str 5\ni: !!int '5'\n",
        "dup: 1\ndup: 2\n",
        "base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n",
        "- 1\n- [2, {k: v}]\n",
        "k: {a: 1, a: 2}\n",
    ] {
        let ours = serde_saphyr::from_str::<Value>(text).map_err(|e| e.to_string());
        let theirs = serde_saphyr::from_str::<serde_json::Value>(text)
            .map(Value::from)
            .map_err(|e| e.to_string());
        assert_eq!(ours, theirs, "{text}");
    }
}

/// Integers wider than 64 bits, from a reader that hands them over as such: a number when
/// they fit, serde_json's error when they do not.
#[test]
fn wide_integers_read_as_serde_json() {
    use serde::de::value::{Error, I128Deserializer, U128Deserializer};
    for n in [
        0u128,
        7,
        u128::from(u64::MAX),
        u128::from(u64::MAX) + 1,
        u128::MAX,
    ] {
        let ours = Value::deserialize(U128Deserializer::<Error>::new(n)).map_err(|e| e.to_string());
        let theirs = serde_json::Value::deserialize(U128Deserializer::<Error>::new(n))
            .map(Value::from)
            .map_err(|e| e.to_string());
        assert_eq!(ours, theirs, "{n}");
    }
    for n in [
        0i128,
        -7,
        i128::from(i64::MIN),
        i128::from(i64::MIN) - 1,
        i128::MIN,
    ] {
        let ours = Value::deserialize(I128Deserializer::<Error>::new(n)).map_err(|e| e.to_string());
        let theirs = serde_json::Value::deserialize(I128Deserializer::<Error>::new(n))
            .map(Value::from)
            .map_err(|e| e.to_string());
        assert_eq!(ours, theirs, "{n}");
    }
}

/// A value is four words and a member seven (serde_json's value is nine words): what the
/// boxed name index is for.
#[test]
#[cfg(target_pointer_width = "64")]
fn a_value_is_four_words() {
    assert_eq!(std::mem::size_of::<Value>(), 32);
    assert_eq!(std::mem::size_of::<(String, Value)>(), 56);
}
