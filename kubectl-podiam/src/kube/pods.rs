//! Reads a live pod and the objects around it into a [`PodSubject`]. The objects around it
//! (ServiceAccount, node, owner, Secrets' key names) are the same for every pod naming them,
//! so they are read once per run through the [`AnswerCache`]: `verify -A` over 200 pods of
//! 20 ServiceAccounts reads 20 ServiceAccounts, not 200.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, Pod, PodSpec, Secret, ServiceAccount};
use kube::api::{Api, ListParams};

use crate::answer_cache::AnswerCache;
use crate::error::{Error, Result};
use crate::subject::{Origin, PodSubject, default_container};

pub async fn get_pod(client: &kube::Client, namespace: &str, name: &str) -> Result<Pod> {
    Api::<Pod>::namespaced(client.clone(), namespace)
        .get(name)
        .await
        .map_err(|e| Error::from_kube(format!("pod {namespace}/{name}"), e))
}

/// Pods matching a label selector in one namespace, or in all when `namespace` is None.
pub async fn list_pods(
    client: &kube::Client,
    namespace: Option<&str>,
    selector: Option<&str>,
) -> Result<Vec<Pod>> {
    let api: Api<Pod> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut params = ListParams::default();
    if let Some(s) = selector {
        params = params.labels(s);
    }
    api.list(&params)
        .await
        .map(|l| l.items)
        .map_err(|e| Error::from_kube("list pods", e))
}

/// Answer-cache kinds of the reads shared between pods.
pub const SERVICE_ACCOUNT_READ: &str = "k8s-serviceaccount";
pub const NODE_READ: &str = "k8s-node-labels";
pub const OWNER_READ: &str = "k8s-owner-template";
pub const SECRET_KEYS_READ: &str = "k8s-secret-keys";

pub async fn subject(
    client: &kube::Client,
    pod: Pod,
    container: Option<&str>,
    reads: &AnswerCache,
) -> Result<PodSubject> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let container = match container {
        Some(c) => {
            let known = spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .any(|k| k.name == c);
            if !known {
                return Err(Error::Usage(format!(
                    "container {c:?} is not in pod {namespace}/{name}"
                )));
            }
            c.to_string()
        }
        None => default_container(&pod.metadata, &spec).unwrap_or_default(),
    };
    let sa_name = spec
        .service_account_name
        .clone()
        .unwrap_or_else(|| "default".into());
    // Optional reads: a narrower RBAC role still gets a report, with less evidence.
    let service_account: Option<ServiceAccount> = reads
        .get_or_compute(SERVICE_ACCOUNT_READ, &[&namespace, &sa_name], || async {
            Api::<ServiceAccount>::namespaced(client.clone(), &namespace)
                .get_opt(&sa_name)
                .await
                .ok()
                .flatten()
        })
        .await;
    let node_labels = match spec.node_name.as_deref() {
        Some(node) => {
            reads
                .get_or_compute(NODE_READ, &[node], || node_labels(client, node))
                .await
        }
        None => None,
    };
    let node_os = node_labels
        .as_ref()
        .and_then(|l| l.get(OS_LABEL).cloned())
        .or_else(|| spec.node_selector.as_ref()?.get(OS_LABEL).cloned());
    let owner_template = owner_template(client, &namespace, &pod, reads).await;
    let secret_keys = secret_keys(client, &namespace, &spec, reads).await;
    Ok(PodSubject {
        kind: "Pod".into(),
        namespace,
        name,
        meta: pod.metadata,
        spec,
        origin: Origin::Live,
        container,
        service_account,
        owner_template,
        node_os,
        secret_keys,
        node_labels,
        config_maps: BTreeMap::new(),
        eks_association: Default::default(),
    })
}

const OS_LABEL: &str = "kubernetes.io/os";

/// The labels of the pod's node (OS, GKE metadata server); None when unreadable.
async fn node_labels(client: &kube::Client, node: &str) -> Option<BTreeMap<String, String>> {
    let node = Api::<Node>::all(client.clone()).get(node).await.ok()?;
    Some(node.metadata.labels.unwrap_or_default())
}

async fn owner_template(
    client: &kube::Client,
    namespace: &str,
    pod: &Pod,
    reads: &AnswerCache,
) -> Option<PodSpec> {
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))?;
    // Keyed by the owner's uid too: a recreated owner of the same name is another template.
    let uid = owner.uid.as_str();
    reads
        .get_or_compute(
            OWNER_READ,
            &[namespace, &owner.kind, &owner.name, uid],
            || read_owner_template(client, namespace, &owner.kind, &owner.name),
        )
        .await
}

async fn read_owner_template(
    client: &kube::Client,
    namespace: &str,
    kind: &str,
    name: &str,
) -> Option<PodSpec> {
    let c = client.clone();
    let template = match kind {
        "ReplicaSet" => {
            Api::<ReplicaSet>::namespaced(c, namespace)
                .get(name)
                .await
                .ok()?
                .spec?
                .template
        }
        "StatefulSet" => Some(
            Api::<StatefulSet>::namespaced(c, namespace)
                .get(name)
                .await
                .ok()?
                .spec?
                .template,
        ),
        "DaemonSet" => Some(
            Api::<DaemonSet>::namespaced(c, namespace)
                .get(name)
                .await
                .ok()?
                .spec?
                .template,
        ),
        "Job" => Some(
            Api::<Job>::namespaced(c, namespace)
                .get(name)
                .await
                .ok()?
                .spec?
                .template,
        ),
        _ => None,
    };
    template?.spec
}

/// Key names of Secrets referenced by env; values are read by the API but dropped at once.
async fn secret_keys(
    client: &kube::Client,
    namespace: &str,
    spec: &PodSpec,
    reads: &AnswerCache,
) -> BTreeMap<String, Vec<String>> {
    let mut keys = BTreeMap::new();
    for name in crate::subject::referenced_secrets(spec) {
        let names: Option<Vec<String>> = reads
            .get_or_compute(SECRET_KEYS_READ, &[namespace, &name], || async {
                Api::<Secret>::namespaced(client.clone(), namespace)
                    .get(&name)
                    .await
                    .ok()
                    .map(|secret| secret_key_names(&secret))
            })
            .await;
        if let Some(names) = names {
            keys.insert(name, names);
        }
    }
    keys
}

pub fn secret_key_names(secret: &Secret) -> Vec<String> {
    let mut names: Vec<String> = secret
        .data
        .iter()
        .flat_map(|d| d.keys().cloned())
        .chain(secret.string_data.iter().flat_map(|d| d.keys().cloned()))
        .collect();
    names.sort();
    names.dedup();
    names
}
