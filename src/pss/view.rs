//! The pod as the checks see it: what they read of it, borrowed from wherever it was
//! read (a k8s-openapi `PodSpec`, or the slimmer read of an admission request's pod), so
//! that no check depends on the full typed spec and leaving containers out of some checks
//! (a policy's exceptions) is a filter, not a copy of the spec.

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EphemeralContainer, Lifecycle, PodSecurityContext, PodSpec, Probe,
    SecurityContext, Volume,
};
use smallvec::SmallVec;

/// The list a container is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerList {
    /// `initContainers` (a native sidecar too).
    Init,
    /// `containers`.
    Regular,
    /// `ephemeralContainers`.
    Ephemeral,
}

/// The fields of a container, init container or ephemeral container that the checks and
/// the policy's exceptions read.
#[derive(Debug, Clone, Copy)]
pub struct ContainerView<'a> {
    /// The list it is in.
    pub list: ContainerList,
    /// `name`
    pub name: &'a str,
    /// `image`
    pub image: Option<&'a str>,
    /// `restartPolicy`
    pub restart_policy: Option<&'a str>,
    /// `securityContext`
    pub security_context: Option<&'a SecurityContext>,
    /// `ports` (empty when unset)
    pub ports: &'a [ContainerPort],
    /// `livenessProbe`
    pub liveness_probe: Option<&'a Probe>,
    /// `readinessProbe`
    pub readiness_probe: Option<&'a Probe>,
    /// `startupProbe`
    pub startup_probe: Option<&'a Probe>,
    /// `lifecycle`
    pub lifecycle: Option<&'a Lifecycle>,
}

/// `Container` and `EphemeralContainer` have the same fields the checks read.
macro_rules! container_view_of {
    ($($of:ident $ty:ty),*) => {$(
        impl<'a> ContainerView<'a> {
            #[doc = concat!("The view of a `", stringify!($ty), "` in `list`.")]
            #[inline]
            pub fn $of(c: &'a $ty, list: ContainerList) -> Self {
                ContainerView {
                    list,
                    name: &c.name,
                    image: c.image.as_deref(),
                    restart_policy: c.restart_policy.as_deref(),
                    security_context: c.security_context.as_ref(),
                    ports: c.ports.as_deref().unwrap_or_default(),
                    liveness_probe: c.liveness_probe.as_ref(),
                    readiness_probe: c.readiness_probe.as_ref(),
                    startup_probe: c.startup_probe.as_ref(),
                    lifecycle: c.lifecycle.as_ref(),
                }
            }
        }
    )*};
}

/// One definition of the volume sources: the [`Source`] kinds, their keys, and how each is
/// found on a k8s-openapi `Volume` and read from an object's volume.
macro_rules! volume_sources {
    ($($variant:ident $key:literal $field:ident $ty:ident,)*) => {
        /// A volume source: one per source field of a `Volume`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(missing_docs)]
        pub enum Source {
            $($variant,)*
        }

        impl Source {
            /// Every source, in the order of `Volume`'s fields.
            pub const ALL: &[Source] = &[$(Source::$variant,)*];

            /// The source's key in a volume (`hostPath`).
            pub fn key(self) -> &'static str {
                match self {
                    $(Source::$variant => $key,)*
                }
            }
        }

        impl Sources {
            /// The sources a `Volume` sets.
            pub fn of(v: &Volume) -> Self {
                let mut s = Sources::default();
                $(if v.$field.is_some() {
                    s.insert(Source::$variant);
                })*
                s
            }

            /// Reads the member `key` of a volume when it is a source, as its k8s-openapi
            /// type (so a wrongly typed source is the same error as in a `Volume`), and
            /// notes it when it is set (not `null`). `Ok(false)`: `key` is no source and
            /// its value is not read.
            pub(crate) fn read_member<'de, A: serde::de::MapAccess<'de>>(
                &mut self,
                key: &str,
                map: &mut A,
            ) -> Result<bool, A::Error> {
                use k8s_openapi::api::core::v1 as core;
                let (source, set) = match key {
                    $($key => (Source::$variant, map.next_value::<Option<core::$ty>>()?.is_some()),)*
                    _ => return Ok(false),
                };
                if set {
                    self.insert(source);
                }
                Ok(true)
            }
        }
    };
}

volume_sources! {
    AwsElasticBlockStore "awsElasticBlockStore" aws_elastic_block_store AWSElasticBlockStoreVolumeSource,
    AzureDisk "azureDisk" azure_disk AzureDiskVolumeSource,
    AzureFile "azureFile" azure_file AzureFileVolumeSource,
    Cephfs "cephfs" cephfs CephFSVolumeSource,
    Cinder "cinder" cinder CinderVolumeSource,
    ConfigMap "configMap" config_map ConfigMapVolumeSource,
    Csi "csi" csi CSIVolumeSource,
    DownwardApi "downwardAPI" downward_api DownwardAPIVolumeSource,
    EmptyDir "emptyDir" empty_dir EmptyDirVolumeSource,
    Ephemeral "ephemeral" ephemeral EphemeralVolumeSource,
    Fc "fc" fc FCVolumeSource,
    FlexVolume "flexVolume" flex_volume FlexVolumeSource,
    Flocker "flocker" flocker FlockerVolumeSource,
    GcePersistentDisk "gcePersistentDisk" gce_persistent_disk GCEPersistentDiskVolumeSource,
    GitRepo "gitRepo" git_repo GitRepoVolumeSource,
    Glusterfs "glusterfs" glusterfs GlusterfsVolumeSource,
    HostPath "hostPath" host_path HostPathVolumeSource,
    Image "image" image ImageVolumeSource,
    Iscsi "iscsi" iscsi ISCSIVolumeSource,
    Nfs "nfs" nfs NFSVolumeSource,
    PersistentVolumeClaim "persistentVolumeClaim" persistent_volume_claim PersistentVolumeClaimVolumeSource,
    PhotonPersistentDisk "photonPersistentDisk" photon_persistent_disk PhotonPersistentDiskVolumeSource,
    PortworxVolume "portworxVolume" portworx_volume PortworxVolumeSource,
    Projected "projected" projected ProjectedVolumeSource,
    Quobyte "quobyte" quobyte QuobyteVolumeSource,
    Rbd "rbd" rbd RBDVolumeSource,
    ScaleIo "scaleIO" scale_io ScaleIOVolumeSource,
    Secret "secret" secret SecretVolumeSource,
    Storageos "storageos" storageos StorageOSVolumeSource,
    VsphereVolume "vsphereVolume" vsphere_volume VsphereVirtualDiskVolumeSource,
}

/// The set of sources a volume sets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sources(u32);

impl Sources {
    /// Notes `s` as set.
    pub fn insert(&mut self, s: Source) {
        self.0 |= 1 << s as u32;
    }

    /// Whether `s` is set.
    pub fn contains(self, s: Source) -> bool {
        self.0 & (1 << s as u32) != 0
    }
}

/// What the checks read of a volume: its name and which sources it sets.
#[derive(Debug, Clone, Copy)]
pub struct VolumeView<'a> {
    /// `name`
    pub name: &'a str,
    /// The sources it sets.
    pub sources: Sources,
}

/// What the checks read of a pod spec.
#[derive(Debug, Clone, Default)]
pub struct PodView<'a> {
    /// `hostNetwork`
    pub host_network: Option<bool>,
    /// `hostPID`
    pub host_pid: Option<bool>,
    /// `hostIPC`
    pub host_ipc: Option<bool>,
    /// `hostUsers`
    pub host_users: Option<bool>,
    /// `os.name`
    pub os_name: Option<&'a str>,
    /// `securityContext`
    pub security_context: Option<&'a PodSecurityContext>,
    /// `volumes`, in order.
    pub(crate) volumes: Volumes<'a>,
    /// Every container in upstream's visiting order: `initContainers`, `containers`, then
    /// `ephemeralContainers` (upstream `visitContainers`).
    pub(crate) containers: Containers<'a>,
}

/// A pod's containers, held inline up to 4 (a CI pod's usual count: build, helper, a
/// service, an init container), so that making a view allocates nothing.
pub(crate) type Containers<'a> = SmallVec<[ContainerView<'a>; 4]>;

/// A pod's volumes, held inline up to 8.
pub(crate) type Volumes<'a> = SmallVec<[VolumeView<'a>; 8]>;

container_view_of!(of Container, of_ephemeral EphemeralContainer);

impl<'a> PodView<'a> {
    /// Every container in upstream's visiting order: `initContainers`, `containers`, then
    /// `ephemeralContainers`.
    pub fn containers(&self) -> &[ContainerView<'a>] {
        &self.containers
    }

    /// The volumes, in order.
    pub fn volumes(&self) -> &[VolumeView<'a>] {
        &self.volumes
    }

    /// A pod's containers in upstream's visiting order (`visitContainers`): its
    /// `initContainers`, `containers`, then `ephemeralContainers`.
    pub(crate) fn visiting_order(
        init: impl Iterator<Item = ContainerView<'a>>,
        regular: impl Iterator<Item = ContainerView<'a>>,
        ephemeral: impl Iterator<Item = ContainerView<'a>>,
    ) -> Containers<'a> {
        let mut containers = Containers::new();
        containers.extend(init);
        containers.extend(regular);
        containers.extend(ephemeral);
        containers
    }

    /// The view of a k8s-openapi `PodSpec`.
    pub fn of(spec: &'a PodSpec) -> Self {
        let containers = Self::visiting_order(
            spec.init_containers
                .iter()
                .flatten()
                .map(|c| ContainerView::of(c, ContainerList::Init)),
            spec.containers
                .iter()
                .map(|c| ContainerView::of(c, ContainerList::Regular)),
            spec.ephemeral_containers
                .iter()
                .flatten()
                .map(|c| ContainerView::of_ephemeral(c, ContainerList::Ephemeral)),
        );
        PodView {
            host_network: spec.host_network,
            host_pid: spec.host_pid,
            host_ipc: spec.host_ipc,
            host_users: spec.host_users,
            os_name: spec.os.as_ref().map(|os| os.name.as_str()),
            security_context: spec.security_context.as_ref(),
            volumes: spec
                .volumes
                .iter()
                .flatten()
                .map(|v| VolumeView {
                    name: &v.name,
                    sources: Sources::of(v),
                })
                .collect(),
            containers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field of k8s-openapi's `Volume` but `name` is a [`Source`]: a source added by
    /// a k8s-openapi upgrade fails here rather than going unseen by `restrictedVolumes`.
    #[test]
    fn sources_are_every_volume_field() {
        let fields = crate::value::testing::struct_fields::<Volume>();
        let mut fields: Vec<&str> = fields.iter().copied().filter(|f| *f != "name").collect();
        fields.sort_unstable();
        let mut keys: Vec<&str> = Source::ALL.iter().map(|s| s.key()).collect();
        keys.sort_unstable();
        assert!(!fields.is_empty());
        assert_eq!(fields, keys);
    }

    /// Each source is found alike on a k8s-openapi `Volume` and by the admitted read, and a
    /// `null` source is no source.
    #[test]
    fn each_source_is_found_by_both_reads() {
        for &source in Source::ALL {
            for (value, set) in [(crate::json!({}), true), (crate::json!(null), false)] {
                let volume = crate::json!({"name": "v", (source.key()): value});
                let typed: Volume = crate::value::from_value(volume.clone()).unwrap();
                let pod = crate::json!({"apiVersion": "v1", "kind": "Pod",
                    "spec": {"containers": [{"name": "a"}], "volumes": [volume]}});
                let (_, admitted) = crate::workload::admitted_pod(&pod).unwrap().unwrap();
                let mut expected = Sources::default();
                if set {
                    expected.insert(source);
                }
                assert_eq!(Sources::of(&typed), expected, "{}", source.key());
                let view = admitted.view();
                assert_eq!(view.volumes[0].sources, expected, "{}", source.key());
                assert_eq!(view.volumes[0].name, "v");
            }
        }
    }

    /// A wrongly typed source is the error k8s-openapi's `Volume` gives.
    #[test]
    fn a_wrongly_typed_source_is_refused_alike() {
        let volume = crate::json!({"name": "v", "hostPath": "/x"});
        let typed = crate::value::from_value::<Volume>(volume.clone()).unwrap_err();
        let pod = crate::json!({"apiVersion": "v1", "kind": "Pod",
            "spec": {"containers": [{"name": "a"}], "volumes": [volume]}});
        let admitted = crate::workload::admitted_pod(&pod).unwrap_err();
        assert_eq!(admitted.pointer, "/spec/volumes/0/hostPath");
        assert_eq!(admitted.message, typed.to_string());
    }
}
