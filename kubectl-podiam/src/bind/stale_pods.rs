//! Pods that use the ServiceAccount but were created before the binding: webhooks mutate pods
//! only at creation, so these keep their old identity until they are recreated. `--restart`
//! rolls their owners the way `kubectl rollout restart` does.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;

use super::plan::StalePod;
use crate::error::{Error, Result};

/// The annotation `kubectl rollout restart` sets on a template.
const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// Pods of `service_account` in `namespace` for which `is_bound` is false.
pub async fn find(
    client: &kube::Client,
    namespace: &str,
    service_account: &str,
    is_bound: impl Fn(&Pod) -> bool,
) -> Result<Vec<Pod>> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pods = api
        .list(&ListParams::default())
        .await
        .map_err(|e| Error::from_kube(format!("list pods in {namespace}"), e))?;
    Ok(pods
        .items
        .into_iter()
        .filter(|p| {
            let sa = p
                .spec
                .as_ref()
                .and_then(|s| s.service_account_name.as_deref())
                .unwrap_or("default");
            sa == service_account && p.metadata.deletion_timestamp.is_none() && !is_bound(p)
        })
        .collect())
}

/// The workload that recreates `pod` when restarted: `Deployment/x`, `StatefulSet/x`,
/// `DaemonSet/x`, or `None` for a bare pod (or one owned by something else).
pub async fn rollable_owner(
    client: &kube::Client,
    namespace: &str,
    pod: &Pod,
) -> Option<(String, String)> {
    let owner = pod
        .metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))?;
    match owner.kind.as_str() {
        "ReplicaSet" => {
            let rs = Api::<ReplicaSet>::namespaced(client.clone(), namespace)
                .get_opt(&owner.name)
                .await
                .ok()??;
            let deployment = rs
                .metadata
                .owner_references?
                .into_iter()
                .find(|o| o.kind == "Deployment")?;
            Some(("Deployment".into(), deployment.name))
        }
        "StatefulSet" | "DaemonSet" => Some((owner.kind.clone(), owner.name.clone())),
        _ => None,
    }
}

/// Sets the restart annotation on the owner's pod template (a rolling restart).
pub async fn restart(
    client: &kube::Client,
    namespace: &str,
    kind: &str,
    name: &str,
    server_dry_run: bool,
) -> Result<()> {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let now = k8s_openapi::jiff::Timestamp::from_second(seconds)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let patch = json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}});
    let params = PatchParams {
        dry_run: server_dry_run,
        ..PatchParams::default()
    };
    let what = format!("restart {kind} {namespace}/{name}");
    let result = match kind {
        "Deployment" => Api::<Deployment>::namespaced(client.clone(), namespace)
            .patch(name, &params, &Patch::Merge(&patch))
            .await
            .map(|_| ()),
        "StatefulSet" => Api::<StatefulSet>::namespaced(client.clone(), namespace)
            .patch(name, &params, &Patch::Merge(&patch))
            .await
            .map(|_| ()),
        "DaemonSet" => Api::<DaemonSet>::namespaced(client.clone(), namespace)
            .patch(name, &params, &Patch::Merge(&patch))
            .await
            .map(|_| ()),
        _ => return Err(Error::Usage(format!("cannot restart a {kind}"))),
    };
    result.map_err(|e| Error::from_kube(what, e))
}

/// Builds the report lines, restarting owners when asked (each owner once).
pub async fn handle(
    client: &kube::Client,
    namespace: &str,
    pods: &[Pod],
    restart_owners: bool,
    server_dry_run: bool,
) -> Result<Vec<StalePod>> {
    let mut restarted: Vec<(String, String)> = Vec::new();
    let mut lines = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let owner = rollable_owner(client, namespace, pod).await;
        let action = match (&owner, restart_owners) {
            (None, _) => "delete and recreate it (no workload owns it)".to_owned(),
            (Some(_), false) => {
                "recreate it: run bind with --restart, or kubectl rollout restart".to_owned()
            }
            (Some((kind, owner_name)), true) => {
                let key = (kind.clone(), owner_name.clone());
                if !restarted.contains(&key) {
                    restart(client, namespace, kind, owner_name, server_dry_run).await?;
                    restarted.push(key);
                }
                if server_dry_run {
                    "restart validated by the server (dry run)".to_owned()
                } else {
                    "restarted".to_owned()
                }
            }
        };
        lines.push(StalePod {
            name,
            owner: owner.map(|(kind, name)| format!("{kind}/{name}")),
            action,
        });
    }
    Ok(lines)
}
