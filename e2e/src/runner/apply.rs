//! `apply` and `delete` steps: server-side apply of YAML into the scenario's namespace.
//! Cluster-scoped objects (e.g. a ClusterRoleBinding) are applied as they are and returned, so
//! the runner deletes them when the scenario ends: deleting the namespace does not.

use std::path::Path;

use anyhow::{Context, Result, bail};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Scope, pinned_kind};

use super::images::map_images;
use crate::scenario::schema::{ApplyStep, DeleteStep};

const FIELD_MANAGER: &str = "podiam-e2e";

fn read_documents(base: &Path, step: &ApplyStep) -> Result<Vec<(String, String)>> {
    if let Some(inline) = &step.manifests {
        return Ok(vec![("inline manifests".into(), inline.clone())]);
    }
    let path = base.join(step.file.as_ref().expect("validated: file or manifests"));
    let mut files = Vec::new();
    if path.is_dir() {
        for entry in
            std::fs::read_dir(&path).with_context(|| format!("reading {}", path.display()))?
        {
            let f = entry?.path();
            if matches!(f.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                files.push(f);
            }
        }
        files.sort();
    } else {
        files.push(path);
    }
    files
        .into_iter()
        .map(|f| {
            let text =
                std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
            Ok((f.display().to_string(), text))
        })
        .collect()
}

/// Objects others depend on go first (a pod needs its ServiceAccount at admission).
fn kind_rank(doc: &serde_json::Value) -> u8 {
    match doc.get("kind").and_then(|k| k.as_str()) {
        Some("Namespace") => 0,
        Some("ServiceAccount" | "Secret" | "ConfigMap") => 1,
        _ => 2,
    }
}

/// A cluster-scoped object a scenario applied, to delete at its end.
#[derive(Debug, Clone)]
pub struct ClusterScoped {
    pub resource: ApiResource,
    pub name: String,
}

impl ClusterScoped {
    pub async fn delete(&self, client: &kube::Client) -> Result<()> {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &self.resource);
        match api.delete(&self.name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => {
                Err(e).with_context(|| format!("deleting {} {}", self.resource.kind, self.name))
            }
        }
    }
}

/// Applies the step's objects; returns the cluster-scoped ones among them.
pub async fn apply(
    client: &kube::Client,
    namespace: &str,
    base: &Path,
    step: &ApplyStep,
) -> Result<Vec<ClusterScoped>> {
    let mut cluster_scoped = Vec::new();
    let mut all = Vec::new();
    for (origin, text) in read_documents(base, step)? {
        let text = text.replace("${NAMESPACE}", namespace);
        let docs: Vec<serde_json::Value> =
            serde_saphyr::from_multiple(&text).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
        all.extend(
            docs.into_iter()
                .filter(|d| !d.is_null())
                .map(|d| (origin.clone(), d)),
        );
    }
    all.sort_by_key(|(_, d)| kind_rank(d));
    {
        for (origin, mut doc) in all {
            map_images(&mut doc);
            let mut object: DynamicObject = serde_json::from_value(doc)
                .with_context(|| format!("{origin}: not a Kubernetes object"))?;
            let types = object
                .types
                .clone()
                .with_context(|| format!("{origin}: apiVersion/kind missing"))?;
            let gvk = GroupVersionKind::try_from(&types)?;
            let (resource, caps) = pinned_kind(client, &gvk)
                .await
                .with_context(|| format!("{origin}: unknown kind {}", types.kind))?;
            let name = object
                .metadata
                .name
                .clone()
                .context("metadata.name missing")?;
            let api: Api<DynamicObject> = if caps.scope == Scope::Namespaced {
                object.metadata.namespace = Some(namespace.to_string());
                Api::namespaced_with(client.clone(), namespace, &resource)
            } else {
                cluster_scoped.push(ClusterScoped {
                    resource: resource.clone(),
                    name: name.clone(),
                });
                Api::all_with(client.clone(), &resource)
            };
            api.patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&object),
            )
            .await
            .with_context(|| format!("applying {} {name} from {origin}", types.kind))?;
        }
    }
    Ok(cluster_scoped)
}

/// The namespaced kinds scenarios name by `kind` alone (delete and state steps).
pub fn namespaced_kind(kind: &str) -> Result<GroupVersionKind> {
    Ok(match kind {
        "Pod" | "ServiceAccount" | "Secret" | "ConfigMap" => GroupVersionKind::gvk("", "v1", kind),
        "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet" => {
            GroupVersionKind::gvk("apps", "v1", kind)
        }
        "Role" | "RoleBinding" => GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", kind),
        other => bail!("unsupported kind {other}"),
    })
}

pub async fn delete(client: &kube::Client, namespace: &str, step: &DeleteStep) -> Result<()> {
    let gvk = namespaced_kind(&step.kind).context("delete")?;
    let (resource, _) = pinned_kind(client, &gvk).await?;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
    api.delete(
        &step.name,
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .with_context(|| format!("deleting {} {}", step.kind, step.name))?;
    // Wait until it is gone, so a later apply creates a new object (and the webhook sees CREATE).
    for _ in 0..300 {
        if api.get_opt(&step.name).await?.is_none() {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    bail!("{} {} was not deleted within 60s", step.kind, step.name)
}
