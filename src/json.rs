//! Member look-ups in JSON objects without hashing.
//!
//! `serde_json`'s order-keeping map (`preserve_order`, so that output keeps the input's
//! key order) hashes every key it looks up with SipHash. The objects the engine reads
//! field by field (security contexts, containers, pod specs, policy contexts) have a
//! handful of members, and comparing names in order is several times cheaper than hashing
//! one: a render looks up a few hundred names. Larger objects are looked up by hash as
//! before.

use serde_json::{Map, Value};

/// Objects with at most this many members are searched in order.
const SCAN: usize = 16;

/// Look-ups by member name, for `Map<String, Value>` and `Value`.
pub(crate) trait Members {
    /// The value of member `key`; `None` when absent (or, for a `Value`, not an object).
    fn member(&self, key: &str) -> Option<&Value>;

    /// The value of member `key`, to change it.
    fn member_mut(&mut self, key: &str) -> Option<&mut Value>;

    /// Whether member `key` is present.
    fn has_member(&self, key: &str) -> bool {
        self.member(key).is_some()
    }
}

impl Members for Map<String, Value> {
    #[inline]
    fn member(&self, key: &str) -> Option<&Value> {
        if self.len() <= SCAN {
            self.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
        } else {
            self.get(key)
        }
    }

    #[inline]
    fn member_mut(&mut self, key: &str) -> Option<&mut Value> {
        if self.len() <= SCAN {
            self.iter_mut().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
        } else {
            self.get_mut(key)
        }
    }
}

impl Members for Value {
    #[inline]
    fn member(&self, key: &str) -> Option<&Value> {
        self.as_object()?.member(key)
    }

    #[inline]
    fn member_mut(&mut self, key: &str) -> Option<&mut Value> {
        self.as_object_mut()?.member_mut(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small objects are searched in order, large ones by hash: both find the same members.
    #[test]
    fn small_and_large_objects_agree() {
        for size in [0, 1, 2, SCAN, SCAN + 1, 40] {
            let mut m = Map::new();
            for i in 0..size {
                m.insert(format!("k{i}"), Value::from(i));
            }
            for i in 0..size + 2 {
                let key = format!("k{i}");
                assert_eq!(m.member(&key), m.get(&key), "size {size}, {key}");
                assert_eq!(m.has_member(&key), m.contains_key(&key));
            }
            let mut v = Value::Object(m);
            if size > 0 {
                *v.member_mut("k0").unwrap() = Value::from("x");
                assert_eq!(v["k0"], "x");
            }
            assert_eq!(v.member_mut("absent"), None);
        }
        assert_eq!(Value::from(1).member("k0"), None);
    }
}
