//! Who is calling the metadata server, from the connection's source address — as GKE's
//! gke-metadata-server does: the pod with that IP, its ServiceAccount and the SA's
//! `iam.gke.io/gcp-service-account` annotation. Callers in the node's network namespace
//! (hostNetwork pods, the node itself) are the node, and so are pods on a node without
//! `iam.gke.io/gke-metadata-server-enabled: "true"` (a node pool without GKE_METADATA: its
//! pods reach the Compute Engine metadata server, which knows only the node).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::SystemTime;

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::{Node, Pod, ServiceAccount};
use kube::api::{Api, ListParams};

use super::GKE_METADATA_NODE_LABEL;

/// The KSA annotation naming the Google service account.
pub const GSA_ANNOTATION: &str = "iam.gke.io/gcp-service-account";

/// A pod as the metadata server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallingPod {
    pub namespace: String,
    pub name: String,
    pub service_account: String,
    /// The KSA's `iam.gke.io/gcp-service-account`, if set.
    pub gsa_annotation: Option<String>,
    /// `status.startTime`: the start-up delay counts from here.
    pub started_at: Option<SystemTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Pod(CallingPod),
    /// The node's network namespace: gets the node's service account.
    Node,
    /// No pod or node has this address.
    Unknown,
}

/// Where caller identities come from.
pub enum PodResolver {
    /// The cluster's API: pods by `status.podIP`, their ServiceAccounts, the nodes' addresses.
    Kubernetes(kube::Client),
    /// A fixed map, for tests without a cluster; addresses not in it are [`Caller::Unknown`].
    Static(HashMap<IpAddr, Caller>),
}

impl PodResolver {
    /// `local` is the address the caller connected to: a connection from that same address
    /// (or loopback) came from the node's own network namespace.
    pub async fn resolve(&self, source: IpAddr, local: Option<IpAddr>) -> Result<Caller> {
        match self {
            Self::Static(map) => Ok(map.get(&source).cloned().unwrap_or(Caller::Unknown)),
            Self::Kubernetes(client) => {
                if source.is_loopback() || Some(source) == local {
                    return Ok(Caller::Node);
                }
                resolve_in_cluster(client, source).await
            }
        }
    }
}

/// Where a connection comes from, whatever metadata server the node runs: the node metadata
/// emulators (EC2 IMDS, Azure IMDS) route by the calling pod's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A pod in its own network namespace.
    Pod { namespace: String, name: String },
    /// The node's network namespace (the node itself, hostNetwork pods).
    Node,
    /// No pod or node has this address.
    Unknown,
}

impl PodResolver {
    /// The caller's pod and namespace, without the GKE node-label logic of [`Self::resolve`].
    pub async fn locate(&self, source: IpAddr, local: Option<IpAddr>) -> Result<Location> {
        match self {
            Self::Static(map) => Ok(match map.get(&source) {
                Some(Caller::Pod(pod)) => Location::Pod {
                    namespace: pod.namespace.clone(),
                    name: pod.name.clone(),
                },
                Some(Caller::Node) => Location::Node,
                Some(Caller::Unknown) | None => Location::Unknown,
            }),
            Self::Kubernetes(client) => {
                if source.is_loopback() || Some(source) == local {
                    return Ok(Location::Node);
                }
                if let Some(pod) = running_pod_with_ip(client, source).await? {
                    let host_network = pod.spec.as_ref().and_then(|s| s.host_network);
                    if host_network.unwrap_or(false) {
                        return Ok(Location::Node);
                    }
                    return Ok(Location::Pod {
                        namespace: pod.metadata.namespace.unwrap_or_default(),
                        name: pod.metadata.name.unwrap_or_default(),
                    });
                }
                Ok(if is_node_address(client, source).await? {
                    Location::Node
                } else {
                    Location::Unknown
                })
            }
        }
    }
}

/// The pod (not finished) whose `status.podIP` is `source`.
async fn running_pod_with_ip(client: &kube::Client, source: IpAddr) -> Result<Option<Pod>> {
    let pods: Api<Pod> = Api::all(client.clone());
    let listed = pods
        .list(&ListParams::default().fields(&format!("status.podIP={source}")))
        .await
        .context("listing pods by IP")?;
    Ok(listed.items.into_iter().find(|pod| {
        !matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        )
    }))
}

async fn is_node_address(client: &kube::Client, source: IpAddr) -> Result<bool> {
    let nodes: Api<Node> = Api::all(client.clone());
    Ok(nodes
        .list(&ListParams::default())
        .await
        .context("listing nodes")?
        .items
        .iter()
        .filter_map(|node| node.status.as_ref()?.addresses.as_ref())
        .flatten()
        .any(|address| address.address == source.to_string()))
}

async fn resolve_in_cluster(client: &kube::Client, source: IpAddr) -> Result<Caller> {
    if let Some(pod) = running_pod_with_ip(client, source).await? {
        let host_network = pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false);
        if host_network || !node_runs_gke_metadata(client, &pod).await? {
            return Ok(Caller::Node);
        }
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let service_account = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".to_owned());
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
        let gsa_annotation = accounts
            .get_opt(&service_account)
            .await
            .with_context(|| format!("reading ServiceAccount {namespace}/{service_account}"))?
            .and_then(|sa| sa.metadata.annotations)
            .and_then(|annotations| annotations.get(GSA_ANNOTATION).cloned())
            .filter(|value| !value.is_empty());
        let started_at = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| SystemTime::from(t.0));
        return Ok(Caller::Pod(CallingPod {
            namespace,
            name: pod.metadata.name.unwrap_or_default(),
            service_account,
            gsa_annotation,
            started_at,
        }));
    }
    Ok(if is_node_address(client, source).await? {
        Caller::Node
    } else {
        Caller::Unknown
    })
}

/// Whether the pod's node carries GKE's `iam.gke.io/gke-metadata-server-enabled: "true"`.
async fn node_runs_gke_metadata(client: &kube::Client, pod: &Pod) -> Result<bool> {
    let Some(node_name) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) else {
        return Ok(false);
    };
    let nodes: Api<Node> = Api::all(client.clone());
    let node = nodes
        .get_opt(node_name)
        .await
        .with_context(|| format!("reading node {node_name}"))?;
    Ok(node
        .and_then(|n| n.metadata.labels)
        .and_then(|labels| labels.get(GKE_METADATA_NODE_LABEL).cloned())
        .is_some_and(|value| value == "true"))
}
