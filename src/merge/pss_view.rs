//! The pod spec as Pod Security reads it: a `&Value` deserialized into `k8s-openapi`'s
//! `PodSpec` with only the fields the evaluation and the policy's exemptions read, the
//! rest skipped unread (no strings copied for `env`, `command`, `resources`, …).

use k8s_openapi::api::core::v1::PodSpec;
use serde::{Deserialize, de};
use serde_json::{Map, Value};

/// Reads a pod spec with only the fields Pod Security reads ([`PSS_SPEC_KEYS`], and
/// [`PSS_CONTAINER_KEYS`] of each container). A wrong type in one of them is the error a
/// full read gives; the fields left out are not judged.
pub(crate) fn pss_spec(spec: &Value) -> Result<PodSpec, serde_json::Error> {
    PodSpec::deserialize(PssView {
        value: spec,
        level: PssLevel::Spec,
    })
}

/// The pod spec fields the Pod Security evaluation and the policy's exemptions read
/// (`src/pss/visit.rs`, `src/pss/checks/*`, `policy::exception::exemptions`); the rest
/// (`tolerations`, `affinity`, `nodeSelector`, …) is skipped unread by [`pss_spec`].
const PSS_SPEC_KEYS: &[&str] = &[
    "containers",
    "initContainers",
    "ephemeralContainers",
    "volumes",
    "os",
    "securityContext",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "hostUsers",
];

/// The container fields the Pod Security evaluation and the exemptions read; `env`,
/// `command`, `args`, `resources`, `volumeMounts`, … are skipped unread by [`pss_spec`].
const PSS_CONTAINER_KEYS: &[&str] = &[
    "name",
    "image",
    "restartPolicy",
    "securityContext",
    "ports",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "lifecycle",
];

/// What a [`PssView`] stands for.
#[derive(Clone, Copy)]
enum PssLevel {
    /// The pod spec: only [`PSS_SPEC_KEYS`].
    Spec,
    /// A list of containers.
    Containers,
    /// A container: only [`PSS_CONTAINER_KEYS`].
    Container,
}

/// A `&Value` read as (part of) a pod spec with only the fields Pod Security reads. Where
/// the value is not the object or list expected, it deserializes as the value itself, so
/// a wrong type is the same error as a full read.
struct PssView<'v> {
    value: &'v Value,
    level: PssLevel,
}

type JsonResult<T> = Result<T, serde_json::Error>;

impl<'v> PssView<'v> {
    /// The object this level filters, with the keys it keeps and whether it is the spec.
    fn filtered_map(&self) -> Option<(&'v Map<String, Value>, &'static [&'static str], bool)> {
        let (keys, spec) = match self.level {
            PssLevel::Spec => (PSS_SPEC_KEYS, true),
            PssLevel::Container => (PSS_CONTAINER_KEYS, false),
            PssLevel::Containers => return None,
        };
        Some((self.value.as_object()?, keys, spec))
    }

    /// The list of containers this level reads item by item.
    fn filtered_seq(&self) -> Option<&'v [Value]> {
        match self.level {
            PssLevel::Containers => self.value.as_array().map(Vec::as_slice),
            PssLevel::Spec | PssLevel::Container => None,
        }
    }
}

fn pss_map<'v>(map: &'v Map<String, Value>, keys: &'static [&'static str], spec: bool) -> PssMap<'v> {
    PssMap {
        iter: map.iter(),
        keys,
        spec,
        next: None,
        containers: false,
    }
}

/// The entries of an object that a level keeps.
struct PssMap<'v> {
    iter: serde_json::map::Iter<'v>,
    keys: &'static [&'static str],
    spec: bool,
    next: Option<&'v Value>,
    containers: bool,
}

impl<'v> de::MapAccess<'v> for PssMap<'v> {
    type Error = serde_json::Error;

    fn next_key_seed<K: de::DeserializeSeed<'v>>(&mut self, seed: K) -> JsonResult<Option<K::Value>> {
        for (k, v) in self.iter.by_ref() {
            if !self.keys.contains(&k.as_str()) {
                continue;
            }
            self.containers = self.spec
                && matches!(
                    k.as_str(),
                    "containers" | "initContainers" | "ephemeralContainers"
                );
            self.next = Some(v);
            return seed
                .deserialize(de::value::BorrowedStrDeserializer::new(k))
                .map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: de::DeserializeSeed<'v>>(&mut self, seed: V) -> JsonResult<V::Value> {
        let Some(value) = self.next.take() else {
            return Err(de::Error::custom("a map value asked for before its key"));
        };
        if self.containers {
            seed.deserialize(PssView {
                value,
                level: PssLevel::Containers,
            })
        } else {
            seed.deserialize(value)
        }
    }
}

/// The containers of a list, each read as a [`PssLevel::Container`].
struct PssSeq<'v> {
    iter: std::slice::Iter<'v, Value>,
}

impl<'v> de::SeqAccess<'v> for PssSeq<'v> {
    type Error = serde_json::Error;

    fn next_element_seed<T: de::DeserializeSeed<'v>>(&mut self, seed: T) -> JsonResult<Option<T::Value>> {
        match self.iter.next() {
            Some(value) => seed
                .deserialize(PssView {
                    value,
                    level: PssLevel::Container,
                })
                .map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// Deserializer methods that read the value itself.
macro_rules! pss_view_delegate {
    ($($method:ident),*) => {$(
        fn $method<V: de::Visitor<'v>>(self, visitor: V) -> JsonResult<V::Value> {
            self.value.$method(visitor)
        }
    )*};
}

impl<'v> de::Deserializer<'v> for PssView<'v> {
    type Error = serde_json::Error;

    fn deserialize_any<V: de::Visitor<'v>>(self, visitor: V) -> JsonResult<V::Value> {
        if let Some((map, keys, spec)) = self.filtered_map() {
            visitor.visit_map(pss_map(map, keys, spec))
        } else if let Some(items) = self.filtered_seq() {
            visitor.visit_seq(PssSeq { iter: items.iter() })
        } else {
            self.value.deserialize_any(visitor)
        }
    }

    fn deserialize_option<V: de::Visitor<'v>>(self, visitor: V) -> JsonResult<V::Value> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: de::Visitor<'v>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> JsonResult<V::Value> {
        match self.filtered_map() {
            Some((map, keys, spec)) => visitor.visit_map(pss_map(map, keys, spec)),
            None => self.value.deserialize_struct(name, fields, visitor),
        }
    }

    fn deserialize_map<V: de::Visitor<'v>>(self, visitor: V) -> JsonResult<V::Value> {
        match self.filtered_map() {
            Some((map, keys, spec)) => visitor.visit_map(pss_map(map, keys, spec)),
            None => self.value.deserialize_map(visitor),
        }
    }

    fn deserialize_seq<V: de::Visitor<'v>>(self, visitor: V) -> JsonResult<V::Value> {
        match self.filtered_seq() {
            Some(items) => visitor.visit_seq(PssSeq { iter: items.iter() }),
            None => self.value.deserialize_seq(visitor),
        }
    }

    fn deserialize_unit_struct<V: de::Visitor<'v>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> JsonResult<V::Value> {
        self.value.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: de::Visitor<'v>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> JsonResult<V::Value> {
        self.value.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_tuple<V: de::Visitor<'v>>(self, len: usize, visitor: V) -> JsonResult<V::Value> {
        self.value.deserialize_tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: de::Visitor<'v>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> JsonResult<V::Value> {
        self.value.deserialize_tuple_struct(name, len, visitor)
    }

    fn deserialize_enum<V: de::Visitor<'v>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> JsonResult<V::Value> {
        self.value.deserialize_enum(name, variants, visitor)
    }

    pss_view_delegate!(
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_unit,
        deserialize_identifier,
        deserialize_ignored_any
    );
}
