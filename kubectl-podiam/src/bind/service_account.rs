//! The Kubernetes side of a binding: the ServiceAccount exists and carries the annotations the
//! webhook (or GKE's metadata server) reads. A different existing value is replaced only with
//! `--overwrite`, as `kubectl annotate` does.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use super::plan::{Change, ChangeStatus, Operation, System};
use crate::error::{Error, Result};

/// One ServiceAccount call of a binding.
#[derive(Debug, Clone, PartialEq)]
pub enum ServiceAccountOperation {
    Create {
        namespace: String,
        name: String,
        annotations: BTreeMap<String, String>,
    },
    Annotate {
        namespace: String,
        name: String,
        annotations: BTreeMap<String, String>,
    },
}

impl ServiceAccountOperation {
    pub fn undo_hint(&self) -> String {
        match self {
            ServiceAccountOperation::Create {
                namespace, name, ..
            } => format!("kubectl delete serviceaccount -n {namespace} {name}"),
            ServiceAccountOperation::Annotate {
                namespace,
                name,
                annotations,
            } => format!(
                "kubectl annotate serviceaccount -n {namespace} {name} {}",
                annotations
                    .keys()
                    .map(|k| format!("{k}-"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        }
    }
}

pub async fn plan(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    wanted: &BTreeMap<String, String>,
    overwrite: bool,
) -> Result<Vec<Change>> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let resource = format!("ServiceAccount {namespace}/{name}");
    let existing = api
        .get_opt(name)
        .await
        .map_err(|e| Error::from_kube(format!("get {resource}"), e))?;
    let Some(existing) = existing else {
        return Ok(vec![Change {
            system: System::Kubernetes,
            action: "create",
            resource,
            detail: if wanted.is_empty() {
                "new ServiceAccount".to_owned()
            } else {
                format!("new ServiceAccount annotated {}", describe(wanted))
            },
            before: None,
            after: Some(json!({"annotations": wanted})),
            status: ChangeStatus::Planned,
            operation: Operation::ServiceAccount(ServiceAccountOperation::Create {
                namespace: namespace.to_owned(),
                name: name.to_owned(),
                annotations: wanted.clone(),
            }),
        }]);
    };
    let current = existing.metadata.annotations.unwrap_or_default();
    let mut missing = BTreeMap::new();
    let mut conflicts = Vec::new();
    for (key, value) in wanted {
        match current.get(key) {
            Some(v) if v == value => {}
            Some(v) => {
                conflicts.push(format!("{key}={v} (wanted {value})"));
                missing.insert(key.clone(), value.clone());
            }
            None => {
                missing.insert(key.clone(), value.clone());
            }
        }
    }
    if !conflicts.is_empty() && !overwrite {
        return Err(Error::Refused(format!(
            "{resource} is already annotated {}: pass --overwrite to replace it",
            conflicts.join(", ")
        )));
    }
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let before: BTreeMap<&String, &String> = missing
        .keys()
        .filter_map(|k| current.get_key_value(k))
        .collect();
    Ok(vec![Change {
        system: System::Kubernetes,
        action: "annotate",
        resource,
        detail: describe(&missing),
        before: (!before.is_empty()).then(|| json!({"annotations": before})),
        after: Some(json!({"annotations": missing})),
        status: ChangeStatus::Planned,
        operation: Operation::ServiceAccount(ServiceAccountOperation::Annotate {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            annotations: missing,
        }),
    }])
}

fn describe(annotations: &BTreeMap<String, String>) -> String {
    annotations
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Carries out one Kubernetes change; `server_dry_run` asks the API server to validate only.
pub async fn apply(
    client: &kube::Client,
    operation: &ServiceAccountOperation,
    server_dry_run: bool,
) -> Result<()> {
    match operation {
        ServiceAccountOperation::Create {
            namespace,
            name,
            annotations,
        } => {
            let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
            let sa: ServiceAccount = serde_json::from_value(json!({
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": namespace, "annotations": annotations}
            }))
            .map_err(|e| Error::Usage(e.to_string()))?;
            let params = PostParams {
                dry_run: server_dry_run,
                ..PostParams::default()
            };
            api.create(&params, &sa).await.map(|_| ()).map_err(|e| {
                Error::from_kube(format!("create ServiceAccount {namespace}/{name}"), e)
            })
        }
        ServiceAccountOperation::Annotate {
            namespace,
            name,
            annotations,
        } => {
            let api: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
            let params = PatchParams {
                dry_run: server_dry_run,
                ..PatchParams::default()
            };
            let patch = json!({"metadata": {"annotations": annotations}});
            api.patch(name, &params, &Patch::Merge(&patch))
                .await
                .map(|_| ())
                .map_err(|e| {
                    Error::from_kube(format!("annotate ServiceAccount {namespace}/{name}"), e)
                })
        }
    }
}
