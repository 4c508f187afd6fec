//! Compact JSON written straight into a byte buffer: the bytes serde_json's compact
//! serializer writes, without its byte-by-byte escape table walk for the strings that
//! need no escaping, which is nearly all of them (names, paths, images, modes). The
//! webhook writes its answer, its JSON Patch and its audit line through these.

use super::{Number, Value};

/// Appends `s` as a JSON string, exactly as serde_json writes it.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    if needs_escape(s.as_bytes()) {
        // serde_json's own escaping. Serializing a string into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
        return;
    }
    out.reserve(s.len() + 2);
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// Whether serde_json escapes any of `bytes`: a control character, `"` or `\`. Without an
/// early exit, so that the compiler checks many bytes at once.
fn needs_escape(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .fold(false, |seen, &b| seen | (b < 0x20) | (b == b'"') | (b == b'\\'))
}

impl Value {
    /// Appends the value as compact JSON: the bytes of `serde_json::to_writer`.
    pub fn write_compact(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.extend_from_slice(b"null"),
            Value::Bool(true) => out.extend_from_slice(b"true"),
            Value::Bool(false) => out.extend_from_slice(b"false"),
            Value::Number(n) => write_number(out, n),
            Value::String(s) => write_str(out, s),
            Value::Array(a) => {
                out.push(b'[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    v.write_compact(out);
                }
                out.push(b']');
            }
            Value::Object(m) => {
                out.push(b'{');
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_str(out, k);
                    out.push(b':');
                    v.write_compact(out);
                }
                out.push(b'}');
            }
        }
    }
}

/// serde_json's own formatting: numbers are few in what ciguard writes, and its text of
/// a number depends on its features (`arbitrary_precision` keeps the text as read).
fn write_number(out: &mut Vec<u8>, n: &Number) {
    // Writing into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, n);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn strings_that_need_escaping_are_escaped_as_serde_json_does() {
        for s in [
            "",
            "plain",
            "a\"b",
            "back\\slash",
            "tab\there",
            "\u{1}",
            "\u{7f}é✓",
            "end\n",
        ] {
            let mut out = Vec::new();
            write_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    fn values() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
            "[a-z\"\\\\\u{0}-\u{1f}]{0,40}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::vec((any::<String>(), inner), 0..8)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn compact_text_is_serde_json_s(v in values()) {
            let mut out = Vec::new();
            v.write_compact(&mut out);
            prop_assert_eq!(out, serde_json::to_vec(&v).unwrap());
        }
    }
}
