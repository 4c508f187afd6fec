//! `restrictedVolumes` (restricted): besides hostPath, non-core volume types are limited to
//! those defined through PersistentVolumes.
//!
//! Restricted fields: `spec.volumes[*]` sources other than the allowed ones.
//!
//! Allowed sources: `configMap`, `csi`, `downwardAPI`, `emptyDir`, `ephemeral`, `image`,
//! `persistentVolumeClaim`, `projected`, `secret` (upstream allows `image` in its only
//! version, so at every version). A volume with no source is an `emptyDir` once the API
//! server defaults it. Replaces `hostPathVolumes` at restricted.

use std::collections::BTreeSet;

use super::prelude::*;
use crate::pss::view::{Source, VolumeView};

pub(crate) const CHECK: Check = Check {
    id: "restrictedVolumes",
    level: Level::Restricted,
    versions: &[VersionedCheck {
        min: 0,
        eval: v1_0,
        overrides: &["hostPathVolumes"],
    }],
};

/// The sources restricted allows.
const ALLOWED: [Source; 9] = [
    Source::ConfigMap,
    Source::Csi,
    Source::DownwardApi,
    Source::EmptyDir,
    Source::Ephemeral,
    Source::Image,
    Source::PersistentVolumeClaim,
    Source::Projected,
    Source::Secret,
];

/// The restricted sources, in upstream's order of precedence.
const RESTRICTED: [Source; 21] = [
    Source::HostPath,
    Source::GcePersistentDisk,
    Source::AwsElasticBlockStore,
    Source::GitRepo,
    Source::Nfs,
    Source::Iscsi,
    Source::Glusterfs,
    Source::Rbd,
    Source::FlexVolume,
    Source::Cinder,
    Source::Cephfs,
    Source::Flocker,
    Source::Fc,
    Source::AzureFile,
    Source::VsphereVolume,
    Source::Quobyte,
    Source::AzureDisk,
    Source::PhotonPersistentDisk,
    Source::PortworxVolume,
    Source::ScaleIo,
    Source::Storageos,
];

fn allowed(v: &VolumeView<'_>) -> bool {
    ALLOWED.iter().any(|&s| v.sources.contains(s))
}

/// The restricted source a volume uses, in upstream's order of precedence; `None` when it
/// has no source at all (the API server defaults it to an `emptyDir`).
fn restricted_type(v: &VolumeView<'_>) -> Option<&'static str> {
    RESTRICTED
        .iter()
        .find(|&&s| v.sources.contains(s))
        .map(|s| s.key())
}

fn v1_0(_: &ObjectMeta, spec: &PodView<'_>) -> CheckResult {
    let volumes = &spec.volumes;
    if volumes.iter().all(allowed) {
        return CheckResult::Allowed;
    }
    let mut bad_volumes = Vec::new();
    let mut bad_types = BTreeSet::new();
    for volume in volumes {
        if allowed(volume) {
            continue;
        }
        if let Some(t) = restricted_type(volume) {
            bad_volumes.push(volume.name);
            bad_types.insert(t);
        }
    }
    if bad_volumes.is_empty() {
        return CheckResult::Allowed;
    }
    CheckResult::forbidden(
        "restricted volume types",
        format!(
            "{} {} {} {} {}",
            pluralize("volume", "volumes", bad_volumes.len()),
            join_quote(&bad_volumes),
            pluralize("uses", "use", bad_volumes.len()),
            pluralize(
                "restricted volume type",
                "restricted volume types",
                bad_types.len()
            ),
            join_quote(&bad_types)
        ),
    )
}

#[cfg(test)]
mod tests {
    use rstest::rstest;

    use super::*;
    use crate::pss::{checks::testing::assert_check, registry::CheckFn};

    const REASON: &str = "restricted volume types";

    #[rstest]
    #[case::allowed(
        v1_0,
        "{spec: {containers: [{name: a}], volumes: [{name: a, configMap: {name: c}}, {name: b, csi: {driver: d}}, {name: c, downwardAPI: {}}, {name: d, emptyDir: {}}, {name: e, ephemeral: {}}, {name: f, image: {reference: r}}, {name: g, persistentVolumeClaim: {claimName: c}}, {name: h, projected: {sources: []}}, {name: i, secret: {secretName: s}}]}}",
        "",
        ""
    )]
    #[case::no_source_is_empty_dir(
        v1_0,
        "{spec: {containers: [{name: a}], volumes: [{name: plain}]}}",
        "",
        ""
    )]
    #[case::host_path(
        v1_0,
        "{spec: {containers: [{name: a}], volumes: [{name: h, hostPath: {path: /}}]}}",
        REASON,
        r#"volume "h" uses restricted volume type "hostPath""#
    )]
    #[case::many(
        v1_0,
        "{spec: {containers: [{name: a}], volumes: [{name: z, nfs: {server: s, path: /}}, {name: ok, emptyDir: {}}, {name: y, hostPath: {path: /}}, {name: x, nfs: {server: t, path: /}}, {name: w, cephfs: {monitors: [m]}}]}}",
        REASON,
        r#"volumes "z", "y", "x", "w" use restricted volume types "cephfs", "hostPath", "nfs""#
    )]
    #[case::each_type_name(v1_0, "{spec: {containers: [{name: a}], volumes: [{name: a, gcePersistentDisk: {pdName: p}}, {name: b, awsElasticBlockStore: {volumeID: v}}, {name: c, gitRepo: {repository: r}}, {name: d, iscsi: {targetPortal: t, iqn: i, lun: 0}}, {name: e, glusterfs: {endpoints: e, path: p}}, {name: f, rbd: {monitors: [m], image: i}}, {name: g, flexVolume: {driver: d}}, {name: h, cinder: {volumeID: v}}, {name: i, flocker: {}}, {name: j, fc: {}}, {name: k, azureFile: {secretName: s, shareName: s}}, {name: l, vsphereVolume: {volumePath: p}}, {name: m, quobyte: {registry: r, volume: v}}, {name: n, azureDisk: {diskName: d, diskURI: u}}, {name: o, photonPersistentDisk: {pdID: p}}, {name: p, portworxVolume: {volumeID: v}}, {name: q, scaleIO: {gateway: g, system: s, secretRef: {}}}, {name: r, storageos: {}}]}}", REASON, r#"volumes "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r" use restricted volume types "awsElasticBlockStore", "azureDisk", "azureFile", "cinder", "fc", "flexVolume", "flocker", "gcePersistentDisk", "gitRepo", "glusterfs", "iscsi", "photonPersistentDisk", "portworxVolume", "quobyte", "rbd", "scaleIO", "storageos", "vsphereVolume""#)]
    #[case::allowed_source_wins(
        v1_0,
        "{spec: {containers: [{name: a}], volumes: [{name: both, emptyDir: {}, hostPath: {path: /}}]}}",
        "",
        ""
    )]
    fn table(#[case] check: CheckFn, #[case] pod: &str, #[case] reason: &str, #[case] detail: &str) {
        assert_check(check, pod, reason, detail);
    }
}
