//! The object of an admission request, read once from the request body.
//!
//! The object is read into a [`Value`] (key order kept, every field), except
//! `metadata.managedFields`: the API server's field-ownership records are often a third
//! of a pod, nothing in ciguard reads them, and building them as values was a large share
//! of a request's cost. They are kept as their JSON text, checked to be JSON, and written back in their
//! place when the object is serialized.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_core::{DynamicResourceScope, Resource};
use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{self, DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor},
    ser::SerializeMap,
};
use serde_json::value::RawValue;

use crate::value::{Map, Value};

use crate::workload;

/// The metadata key kept as text.
const MANAGED_FIELDS: &str = "managedFields";

/// An object exactly as the API server sent it (key order kept, no field dropped), with
/// its metadata parsed for kube-core.
#[derive(Debug, Clone)]
pub struct RawObject {
    metadata: ObjectMeta,
    value: Value,
    /// `metadata.managedFields` as sent, and its position among the metadata keys.
    managed_fields: Option<(usize, Box<RawValue>)>,
}

impl RawObject {
    /// The object as JSON, without `metadata.managedFields` ([`RawObject::managed_fields`]).
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// `metadata.managedFields` as sent (JSON text), when the object has them.
    pub fn managed_fields(&self) -> Option<&str> {
        self.managed_fields.as_ref().map(|(_, raw)| raw.get())
    }

    /// The object, to change it in place (`/mutate` renders it so).
    pub(super) fn value_mut(&mut self) -> &mut Value {
        &mut self.value
    }
}

impl PartialEq for RawObject {
    fn eq(&self, other: &Self) -> bool {
        self.metadata == other.metadata
            && self.value == other.value
            && self.managed_fields.as_ref().map(|(i, r)| (i, r.get()))
                == other.managed_fields.as_ref().map(|(i, r)| (i, r.get()))
    }
}

impl<'de> Deserialize<'de> for RawObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (value, managed_fields) = d.deserialize_any(Reader { metadata: false })?;
        // Only the metadata ciguard reads; the rest stays in the raw value, parsed once.
        let metadata = workload::slim_metadata(value.get("metadata"))
            .map_err(|e| D::Error::custom(format!("metadata: {e}")))?;
        Ok(RawObject {
            metadata,
            value,
            managed_fields,
        })
    }
}

type WithManagedFields = (Value, Option<(usize, Box<RawValue>)>);

/// Reads the object (`metadata: false`) or its metadata (`true`) as any JSON value: an
/// object's members as values, except the object's `metadata`, read by a `Reader` of the
/// metadata, and the metadata's `managedFields`, kept as text.
#[derive(Clone, Copy)]
struct Reader {
    metadata: bool,
}

impl<'de> DeserializeSeed<'de> for Reader {
    type Value = WithManagedFields;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Reader {
    type Value = WithManagedFields;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.metadata {
            "object metadata"
        } else {
            "a Kubernetes object"
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Map::new();
        let mut managed = None;
        while let Some(key) = map.next_key::<String>()? {
            if self.metadata && key == MANAGED_FIELDS {
                let raw: Box<RawValue> = map.next_value()?;
                // A repeated key keeps its first place and its last value, as serde_json
                // reads every other key.
                let at = managed.as_ref().map_or(out.len(), |(at, _)| *at);
                managed = Some((at, raw));
                continue;
            }
            let value = if !self.metadata && key == "metadata" {
                let (value, m) = map.next_value_seed(Reader { metadata: true })?;
                managed = m;
                value
            } else {
                map.next_value::<Value>()?
            };
            out.insert(key, value);
        }
        Ok((Value::Object(out), managed))
    }

    // Not an object: read as the value it is (the kind and metadata checks say what it is).
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok((Value::Bool(v), None))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok((Value::from(v), None))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok((Value::from(v), None))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok((Value::from(v), None))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok((Value::from(v), None))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok((Value::Null, None))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok((Value::Null, None))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<Value>()? {
            out.push(v);
        }
        Ok((Value::Array(out), None))
    }
}

impl Serialize for RawObject {
    /// The object as sent: `metadata.managedFields` back in its place.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (Some((at, raw)), Value::Object(object)) = (&self.managed_fields, &self.value) else {
            return self.value.serialize(s);
        };
        let mut map = s.serialize_map(Some(object.len()))?;
        for (k, v) in object {
            match v {
                Value::Object(meta) if k == "metadata" => {
                    map.serialize_entry(k, &WithRaw(meta, *at, raw))?;
                }
                _ => map.serialize_entry(k, v)?,
            }
        }
        map.end()
    }
}

/// Metadata with `managedFields` written at its position.
struct WithRaw<'a>(&'a Map<String, Value>, usize, &'a RawValue);

impl Serialize for WithRaw<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let WithRaw(meta, at, raw) = *self;
        let mut map = s.serialize_map(Some(meta.len() + 1))?;
        for (i, (k, v)) in meta.iter().enumerate() {
            if i == at {
                map.serialize_entry(MANAGED_FIELDS, raw)?;
            }
            map.serialize_entry(k, v)?;
        }
        if at >= meta.len() {
            map.serialize_entry(MANAGED_FIELDS, raw)?;
        }
        map.end()
    }
}

impl Resource for RawObject {
    type DynamicType = ();
    type Scope = DynamicResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use crate::json;

    use super::*;

    fn read(text: &str) -> RawObject {
        serde_json::from_str(text).unwrap()
    }

    /// Every field comes back in its place, managedFields byte for byte as sent.
    #[test]
    fn objects_serialize_as_sent() {
        for text in [
            r#"{"kind":"Pod","metadata":{"name":"p","managedFields":[{"manager":"kubectl","fieldsV1":{"f:spec":{}}}],"labels":{"a":"b"}},"spec":{}}"#,
            r#"{"metadata":{"managedFields":[ 1,  2 ]}}"#,
            r#"{"metadata":{"name":"p","managedFields":null}}"#,
            r#"{"metadata":{"name":"p"},"x-unknown":[1]}"#,
            r#"{"kind":"Pod"}"#,
            r#"{"metadata":null}"#,
            r#"{"managedFields":[1],"metadata":{"metadata":{"managedFields":[2]}}}"#,
        ] {
            let object = read(text);
            assert_eq!(serde_json::to_string(&object).unwrap(), text);
            assert!(object.value()["metadata"].get(MANAGED_FIELDS).is_none());
        }
        assert_eq!(
            read(r#"{"metadata":{"managedFields":[ 1,  2 ]}}"#).managed_fields(),
            Some("[ 1,  2 ]")
        );
    }

    /// A repeated key counts once, in its first place with its last value, as serde_json
    /// reads every other key.
    #[test]
    fn repeated_managed_fields_keep_the_last() {
        let object = read(r#"{"metadata":{"managedFields":[1],"name":"p","managedFields":[2]}}"#);
        assert_eq!(object.managed_fields(), Some("[2]"));
        assert_eq!(
            serde_json::to_string(&object).unwrap(),
            r#"{"metadata":{"managedFields":[2],"name":"p"}}"#
        );
        let plain: Value = serde_json::from_str(r#"{"a":[1],"name":"p","a":[2]}"#).unwrap();
        assert_eq!(plain.to_string(), r#"{"a":[2],"name":"p"}"#);
    }

    /// Not JSON inside managedFields is an error, as anywhere else in the body.
    #[test]
    fn broken_managed_fields_are_an_error() {
        assert!(serde_json::from_str::<RawObject>(r#"{"metadata":{"managedFields":[1,}}"#).is_err());
    }

    /// What is not an object is read as the value it is (the kind check reports it).
    #[test]
    fn other_values_are_kept() {
        for v in [
            json!(1),
            json!("x"),
            json!([1, {"a": 2}]),
            json!(null),
            json!(true),
            json!(-1),
            json!(1.5),
        ] {
            let object: RawObject = crate::value::from_value(v.clone()).unwrap();
            assert_eq!(object.value(), &v);
        }
        let bad = crate::value::from_value::<RawObject>(json!({"metadata": [1]})).unwrap_err();
        assert!(bad.to_string().starts_with("metadata: "), "{bad}");
    }

    /// Read from a `Value` (not text) too, as tests and `from_value` do.
    #[test]
    fn reads_from_values() {
        let v = json!({"metadata": {"name": "p", "managedFields": [{"manager": "m"}]}});
        let object: RawObject = crate::value::from_value(v.clone()).unwrap();
        assert_eq!(crate::value::to_value(&object).unwrap(), v);
        assert_eq!(object.meta().name.as_deref(), Some("p"));
    }
}
