//! `pod.default` / `pod.enforced`: a `PodSecurityContext` and, beside it, the pod spec's
//! `hostUsers` (SPEC §5, user namespaces).

use std::ops::{Deref, DerefMut};

use k8s_openapi::api::core::v1::PodSecurityContext;
use schemars::JsonSchema;
use serde::{
    Deserialize, Deserializer, Serialize,
    de::{self, DeserializeSeed, MapAccess, Visitor},
};

/// The key of the pod spec field a pod section accepts beside the security context.
pub const HOST_USERS: &str = "hostUsers";

/// A pod section's context: the Kubernetes `PodSecurityContext` fields, and `hostUsers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodContext {
    /// `spec.securityContext`.
    #[serde(flatten)]
    pub security: PodSecurityContext,
    /// `spec.hostUsers`: `false` runs the pod in its own user namespace (uid 0 in the pod
    /// is an unprivileged uid on the node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_users: Option<bool>,
}

impl Deref for PodContext {
    type Target = PodSecurityContext;

    fn deref(&self) -> &PodSecurityContext {
        &self.security
    }
}

impl DerefMut for PodContext {
    fn deref_mut(&mut self) -> &mut PodSecurityContext {
        &mut self.security
    }
}

impl From<PodSecurityContext> for PodContext {
    fn from(security: PodSecurityContext) -> Self {
        PodContext {
            security,
            host_users: None,
        }
    }
}

// Not `#[serde(flatten)]` on the way in: flatten buffers the map, and the unknown keys of
// the security context would no longer reach the reader that reports them at their line.
// The map is handed to `PodSecurityContext` as it is read, with `hostUsers` taken out.
impl<'de> Deserialize<'de> for PodContext {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct PodContextVisitor;
        impl<'de> Visitor<'de> for PodContextVisitor {
            type Value = PodContext;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a pod security context (and hostUsers)")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PodContext, A::Error> {
                let mut host_users = None;
                let security = PodSecurityContext::deserialize(de::value::MapAccessDeserializer::new(
                    WithoutHostUsers {
                        map,
                        host_users: &mut host_users,
                    },
                ))?;
                Ok(PodContext { security, host_users })
            }
        }
        d.deserialize_map(PodContextVisitor)
    }
}

/// A map with its `hostUsers` entry read aside.
struct WithoutHostUsers<'h, A> {
    map: A,
    host_users: &'h mut Option<bool>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for WithoutHostUsers<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        loop {
            let Some(key) = self.map.next_key::<String>()? else {
                return Ok(None);
            };
            if key == HOST_USERS {
                *self.host_users = self.map.next_value::<Option<bool>>()?;
                continue;
            }
            return seed
                .deserialize(de::value::StringDeserializer::<A::Error>::new(key))
                .map(Some);
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}
