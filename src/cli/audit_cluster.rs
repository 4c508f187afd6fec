//! `ciguard audit --cluster`: the pods, read through the kubeconfig with kube-rs (the
//! field's Kubernetes client, over rustls), page by page, as `kubectl get pods` does.

use anyhow::Context;
use ciguard::value::Value;
use ciguard::workload::Document;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client, Config,
    api::{ApiResource, DynamicObject, ListParams},
    config::{KubeConfigOptions, Kubeconfig},
};

/// Where `audit --cluster` reads pods.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// Read the pods from the cluster of the kubeconfig (KUBECONFIG, ~/.kube/config, or
    /// in-cluster), paginated, instead of files
    #[arg(long)]
    pub cluster: bool,
    /// The kubeconfig file (default: KUBECONFIG, then ~/.kube/config)
    #[arg(long, value_name = "FILE", requires = "cluster")]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The kubeconfig context (default: its current-context)
    #[arg(long, value_name = "CONTEXT", requires = "cluster")]
    pub context: Option<String>,
    /// Only this namespace (default: the context's namespace, as kubectl)
    #[arg(short = 'n', long, value_name = "NAMESPACE", requires = "cluster")]
    pub namespace: Option<String>,
    /// Every namespace
    #[arg(short = 'A', long, requires = "cluster", conflicts_with = "namespace")]
    pub all_namespaces: bool,
    /// Pods per list request, as kubectl's --chunk-size: the pods are read and counted
    /// page by page
    #[arg(long, value_name = "N", default_value_t = 500, requires = "cluster",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub chunk_size: u32,
}

impl ClusterArgs {
    /// What was read, for messages.
    pub fn scope(&self) -> String {
        match (&self.namespace, self.all_namespaces) {
            (_, true) => "any namespace".into(),
            (Some(ns), false) => format!("namespace \"{ns}\""),
            (None, false) => "the context's namespace".into(),
        }
    }
}

/// Lists the pods page by page (`limit` and `continue`, as `kubectl get` does), each
/// page handed to `page` as documents named `cluster:NAMESPACE/NAME`.
pub fn list_pods(
    args: &ClusterArgs,
    mut page: impl FnMut(Vec<Document>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the Kubernetes client's runtime")?;
    runtime.block_on(async {
        let options = KubeConfigOptions {
            context: args.context.clone(),
            ..KubeConfigOptions::default()
        };
        let config = match (&args.kubeconfig, &args.context) {
            (Some(file), _) => {
                let kubeconfig = Kubeconfig::read_from(file)
                    .with_context(|| format!("failed to read kubeconfig '{}'", file.display()))?;
                Config::from_custom_kubeconfig(kubeconfig, &options).await?
            }
            (None, Some(_)) => Config::from_kubeconfig(&options).await?,
            (None, None) => Config::infer().await.context("no Kubernetes configuration")?,
        };
        let namespace = config.default_namespace.clone();
        let client = Client::try_from(config).context("failed to make the Kubernetes client")?;
        let resource = ApiResource::erase::<Pod>(&());
        let api: Api<DynamicObject> = match (&args.namespace, args.all_namespaces) {
            (_, true) => Api::all_with(client, &resource),
            (Some(ns), false) => Api::namespaced_with(client, ns, &resource),
            (None, false) => Api::namespaced_with(client, &namespace, &resource),
        };
        let mut params = ListParams::default().limit(args.chunk_size);
        loop {
            let list = api
                .list(&params)
                .await
                .with_context(|| format!("failed to list pods in {}", args.scope()))?;
            let token = list.metadata.continue_.clone().filter(|t| !t.is_empty());
            let mut docs = Vec::with_capacity(list.items.len());
            for item in list.items {
                docs.push(document(item, docs.len())?);
            }
            page(docs)?;
            match token {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(()),
            }
        }
    })
}

/// A listed pod as a document. List items carry no `apiVersion` and `kind`: they are
/// set, as kubectl does.
fn document(item: DynamicObject, index: usize) -> anyhow::Result<Document> {
    let source = format!(
        "cluster:{}/{}",
        item.metadata.namespace.as_deref().unwrap_or(""),
        item.metadata.name.as_deref().unwrap_or("")
    );
    let mut object = ciguard::value::to_value(&item).context("failed to read a listed pod")?;
    if let Value::Object(map) = &mut object {
        map.insert("apiVersion".into(), "v1".into());
        map.insert("kind".into(), "Pod".into());
    }
    Ok(Document {
        source,
        index,
        place: None,
        object,
    })
}
