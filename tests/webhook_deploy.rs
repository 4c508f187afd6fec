//! deploy/: every manifest parses strictly with the k8s-openapi types (no unknown
//! field), the webhook configurations point at routes the server has, and the pieces fit
//! together (Service → Deployment, Certificate → Secret → volume, ConfigMap → policy).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_macros
)]

use std::{collections::BTreeMap, sync::Arc};

use axum::{body::Body, http::Request};
use ciguard::value::Value;
use ciguard::{
    admission::{self, AppState, Audit},
    policy::set::PolicySet,
    pss::{self, LevelVersion},
    workload::{self, Document},
};
use k8s_openapi::{
    api::{
        admissionregistration::v1::{
            MutatingWebhookConfiguration, RuleWithOperations, ValidatingWebhookConfiguration,
            WebhookClientConfig,
        },
        apps::v1::Deployment,
        core::v1::{ConfigMap, Namespace, PodSpec, Service, ServiceAccount},
        policy::v1::PodDisruptionBudget,
    },
    apimachinery::pkg::apis::meta::v1::LabelSelector,
};
use serde::de::DeserializeOwned;
use tower::ServiceExt;

const BASE: &str = "deploy/base";
const NAMESPACE: &str = "ciguard-system";

/// Deserializes strictly: a field the type does not know is an error.
fn strict<T: DeserializeOwned>(doc: &Document) -> T {
    let mut unknown = Vec::new();
    let value: T = serde_ignored::deserialize(&doc.object, |path| unknown.push(path.to_string()))
        .unwrap_or_else(|e| panic!("{}#{}: {e}", doc.source, doc.index));
    assert!(
        unknown.is_empty(),
        "{}#{}: unknown fields {unknown:?}",
        doc.source,
        doc.index
    );
    value
}

struct Manifests {
    docs: Vec<Document>,
}

impl Manifests {
    fn load() -> Self {
        Manifests {
            docs: workload::read_inputs(&[BASE]).unwrap(),
        }
    }

    fn of_kind(&self, kind: &str) -> Vec<&Document> {
        self.docs.iter().filter(|d| d.kind() == kind).collect()
    }

    fn one<T: DeserializeOwned>(&self, kind: &str) -> T {
        let docs = self.of_kind(kind);
        assert_eq!(docs.len(), 1, "one {kind}");
        strict(docs[0])
    }

    fn named(&self, kind: &str, name: &str) -> &Value {
        let doc = self.of_kind(kind).into_iter().find(|d| d.name() == name);
        &doc.unwrap_or_else(|| panic!("no {kind} {name}")).object
    }
}

#[test]
fn every_manifest_is_a_known_type_without_unknown_fields() {
    let m = Manifests::load();
    let mut kinds = BTreeMap::new();
    for doc in &m.docs {
        *kinds.entry(doc.kind().to_string()).or_insert(0) += 1;
        match doc.kind() {
            "Namespace" => drop(strict::<Namespace>(doc)),
            "ServiceAccount" => drop(strict::<ServiceAccount>(doc)),
            "ConfigMap" => drop(strict::<ConfigMap>(doc)),
            "Deployment" => drop(strict::<Deployment>(doc)),
            "PodDisruptionBudget" => drop(strict::<PodDisruptionBudget>(doc)),
            "Service" => drop(strict::<Service>(doc)),
            "MutatingWebhookConfiguration" => drop(strict::<MutatingWebhookConfiguration>(doc)),
            "ValidatingWebhookConfiguration" => drop(strict::<ValidatingWebhookConfiguration>(doc)),
            "Issuer" | "Certificate" => assert_eq!(doc.object["apiVersion"], "cert-manager.io/v1"),
            "Kustomization" => {}
            other => panic!("{}: unexpected kind {other}", doc.source),
        }
        if !doc.kind().ends_with("WebhookConfiguration")
            && !["Namespace", "Kustomization"].contains(&doc.kind())
        {
            assert_eq!(doc.namespace(), Some(NAMESPACE), "{}", doc.source);
        }
    }
    assert_eq!(kinds["Issuer"], 2);
    assert_eq!(kinds["Certificate"], 2);

    // The kustomization lists every file, and only those.
    let kustomization = &m.of_kind("Kustomization")[0].object;
    let mut listed: Vec<&str> = kustomization["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    listed.sort_unstable();
    let mut files: Vec<String> = std::fs::read_dir(BASE)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|f| f != "kustomization.yaml")
        .collect();
    files.sort();
    assert_eq!(listed, files);
}

fn pod_spec(
    deployment: &Deployment,
) -> (
    &PodSpec,
    &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) {
    let template = &deployment.spec.template;
    (
        template.spec.as_ref().unwrap(),
        template.metadata.as_ref().unwrap(),
    )
}

fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    assert!(selector.match_expressions.is_none());
    selector
        .match_labels
        .as_ref()
        .unwrap()
        .iter()
        .all(|(k, v)| labels.get(k) == Some(v))
}

#[test]
fn the_deployment_passes_restricted_and_mounts_what_it_reloads() {
    let m = Manifests::load();
    let deployment: Deployment = m.one("Deployment");
    let spec = &deployment.spec;
    assert_eq!(spec.replicas, Some(2));
    let (pod, meta) = pod_spec(&deployment);
    let restricted: LevelVersion = "restricted:latest".parse().unwrap();
    let evaluation = pss::evaluate(meta, pod, restricted);
    assert!(evaluation.allowed(), "{}", evaluation.message());

    let container = &pod.containers[0];
    let security = container.security_context.as_ref().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    let resources = container.resources.as_ref().unwrap();
    assert!(resources.requests.as_ref().unwrap().contains_key("cpu"));
    assert!(resources.requests.as_ref().unwrap().contains_key("memory"));
    assert!(resources.limits.as_ref().unwrap().contains_key("memory"));

    // Probes hit the server's routes.
    let probe_path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.as_ref()
            .unwrap()
            .http_get
            .as_ref()
            .unwrap()
            .path
            .clone()
            .unwrap()
    };
    assert_eq!(probe_path(&container.readiness_probe), admission::READYZ_PATH);
    assert_eq!(probe_path(&container.liveness_probe), admission::HEALTHZ_PATH);

    // --policy, --tls-cert and --tls-key are in directory mounts (no subPath: the kubelet
    // updates those in place, and the server watches their directories).
    let args = container.args.as_ref().unwrap();
    assert_eq!(args[0], "serve");
    let flag = |name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")))
            .unwrap_or_else(|| panic!("--{name} missing"))
            .to_string()
    };
    // A CPU request and no limit: without the flag, one thread per CPU of the node.
    assert_eq!(flag("worker-threads"), "2");
    let volume_of = |path: &str| {
        let mount = container
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| path.starts_with(&format!("{}/", v.mount_path)))
            .unwrap_or_else(|| panic!("{path} is not in a mount"));
        assert!(
            mount.sub_path.is_none(),
            "{path}: subPath mounts are never updated"
        );
        let volume = pod
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == mount.name)
            .unwrap();
        (volume.clone(), path.rsplit('/').next().unwrap().to_string())
    };
    // --policy-dir is the ConfigMap's mount: every key in it is a policy.
    let (policy_volume, _) = volume_of(&format!("{}/policy.yaml", flag("policy-dir")));
    let (cert_volume, cert_key) = volume_of(&flag("tls-cert"));
    let (key_volume, key_key) = volume_of(&flag("tls-key"));
    assert_eq!(cert_volume, key_volume);
    assert_eq!((cert_key.as_str(), key_key.as_str()), ("tls.crt", "tls.key"));

    // The ConfigMap holds policies that load as one set.
    let configmap_name = policy_volume.config_map.unwrap().name;
    assert_eq!(policies(&m, &configmap_name).len(), 1);

    // The Secret is cert-manager's serving certificate, for the Service's DNS name.
    let secret = cert_volume.secret.unwrap().secret_name.unwrap();
    let certificate = m
        .of_kind("Certificate")
        .into_iter()
        .find(|c| c.object["spec"]["secretName"] == secret.as_str())
        .unwrap_or_else(|| panic!("no Certificate writes {secret}"));
    let service: Service = m.one("Service");
    let dns = format!("{}.{NAMESPACE}.svc", service.metadata.name.as_ref().unwrap());
    let names = certificate.object["spec"]["dnsNames"].as_array().unwrap();
    assert!(names.iter().any(|n| n == dns.as_str()), "{names:?}");
    let issuer = certificate.object["spec"]["issuerRef"]["name"].as_str().unwrap();
    assert_eq!(
        m.named("Issuer", issuer)["spec"]["ca"]["secretName"],
        "ciguard-ca"
    );

    // The Service and the PodDisruptionBudget select the pods.
    let labels = meta.labels.as_ref().unwrap();
    let service_spec = service.spec.as_ref().unwrap();
    assert!(
        service_spec
            .selector
            .as_ref()
            .unwrap()
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    );
    let pdb: PodDisruptionBudget = m.one("PodDisruptionBudget");
    let pdb_spec = pdb.spec.unwrap();
    assert!(selects(pdb_spec.selector.as_ref().unwrap(), labels));
    assert!(pdb_spec.min_available.is_some());
    assert!(selects(&spec.selector, labels));
}

/// The policies of a ConfigMap, as `serve --policy-dir` loads its mount.
fn policies(m: &Manifests, configmap: &str) -> PolicySet {
    let configmap: ConfigMap = ciguard::value::from_value(m.named("ConfigMap", configmap).clone()).unwrap();
    let files: Vec<_> = configmap
        .data
        .unwrap()
        .into_iter()
        .map(|(key, text)| (std::path::PathBuf::from(key), text.into_bytes()))
        .collect();
    PolicySet::parse(&files).unwrap()
}

async fn route_exists(policies: &PolicySet, path: &str) -> bool {
    let state = Arc::new(AppState::with_policies(policies.clone(), Audit::off()));
    let request = Request::post(path).body(Body::empty()).unwrap();
    let response = admission::router(state).oneshot(request).await.unwrap();
    // An empty body at an admission route is a 400; an unknown path a 404.
    response.status() == 400
}

/// What both webhook kinds share.
struct Hook<'a> {
    name: &'a str,
    client: &'a WebhookClientConfig,
    rules: &'a [RuleWithOperations],
    selector: Option<&'a LabelSelector>,
    conditions: Vec<&'a str>,
    side_effects: &'a str,
    versions: &'a [String],
    timeout: Option<i32>,
    failure: Option<&'a str>,
}

/// A [`Hook`] view of a mutating or a validating webhook (same fields, two types).
macro_rules! hook {
    ($w:expr) => {
        Hook {
            name: &$w.name,
            client: &$w.client_config,
            rules: $w.rules.as_deref().unwrap_or_default(),
            selector: $w.namespace_selector.as_ref(),
            conditions: $w
                .match_conditions
                .iter()
                .flatten()
                .map(|c| c.expression.as_str())
                .collect(),
            side_effects: &$w.side_effects,
            versions: &$w.admission_review_versions,
            timeout: $w.timeout_seconds,
            failure: $w.failure_policy.as_deref(),
        }
    };
}

fn check_hook(hook: &Hook<'_>, service: &Service, expected_path: &str) {
    let svc = hook.client.service.as_ref().unwrap();
    assert_eq!(Some(&svc.name), service.metadata.name.as_ref(), "{}", hook.name);
    assert_eq!(svc.namespace, NAMESPACE);
    assert_eq!(svc.path.as_deref(), Some(expected_path));
    let port = service.spec.as_ref().unwrap().ports.as_ref().unwrap()[0].port;
    assert_eq!(svc.port, Some(port));
    assert!(hook.client.url.is_none());
    let selector = hook.selector.unwrap();
    assert_eq!(
        selector.match_labels.as_ref().unwrap()["ciguard.io/enabled"],
        "true"
    );
    assert!(
        hook.conditions
            .iter()
            .any(|c| c.contains(&format!("request.namespace != '{NAMESPACE}'"))),
        "{}: matchConditions must skip {NAMESPACE}",
        hook.name
    );
    assert_eq!(hook.side_effects, "None");
    assert_eq!(hook.versions, ["v1"]);
    assert_eq!(hook.timeout, Some(5));
    assert_eq!(hook.failure, Some("Fail"));
    assert!(!hook.rules.is_empty());
}

#[tokio::test]
async fn webhook_paths_are_server_routes_and_the_settings_hold() {
    let m = Manifests::load();
    let service: Service = m.one("Service");
    let mutating: MutatingWebhookConfiguration = m.one("MutatingWebhookConfiguration");
    let validating: ValidatingWebhookConfiguration = m.one("ValidatingWebhookConfiguration");
    let certificate_ref = format!("{NAMESPACE}/ciguard-tls");
    let policies = policies(&m, "ciguard-policy");
    let name = policies.names().next().unwrap();

    let hooks = mutating.webhooks.as_ref().unwrap();
    assert_eq!(hooks.len(), 1);
    for w in hooks {
        let hook = hook!(w);
        let path = format!("{}/{name}", admission::MUTATE_PATH);
        check_hook(&hook, &service, &path);
        assert!(route_exists(&policies, &path).await);
        assert_eq!(w.reinvocation_policy.as_deref(), Some("IfNeeded"));
        // Only pod CREATE and the UPDATE of pods/ephemeralcontainers are mutated.
        let rules: Vec<(Vec<String>, Vec<String>)> = hook
            .rules
            .iter()
            .map(|r| (r.operations.clone().unwrap(), r.resources.clone().unwrap()))
            .collect();
        let owned = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            rules,
            [
                (owned(&["CREATE"]), owned(&["pods"])),
                (owned(&["UPDATE"]), owned(&["pods/ephemeralcontainers"]))
            ]
        );
    }
    for w in validating.webhooks.as_ref().unwrap() {
        let hook = hook!(w);
        let path = format!("{}/{name}", admission::VALIDATE_PATH);
        check_hook(&hook, &service, &path);
        assert!(route_exists(&policies, &path).await);
        // `kubectl debug` is checked (issue 11).
        assert!(hook.rules.iter().any(|r| {
            r.operations.as_deref() == Some(&["UPDATE".to_string()][..])
                && r.resources.as_deref() == Some(&["pods/ephemeralcontainers".to_string()][..])
        }));
    }
    assert!(!route_exists(&policies, "/nope").await);
    for annotations in [&mutating.metadata.annotations, &validating.metadata.annotations] {
        let annotations = annotations.as_ref().unwrap();
        assert_eq!(annotations["cert-manager.io/inject-ca-from"], certificate_ref);
    }
    assert!(m.named("Certificate", "ciguard-tls").is_object());
}
