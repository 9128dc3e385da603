//! Turns loaded objects into pods to judge: Pods as they are, workloads by their pod template.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodTemplateSpec, Secret, ServiceAccount};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::documents::Document;
use crate::error::{Error, Result};
use crate::kube::pods::secret_key_names;
use crate::subject::{Origin, PodSubject, default_container};

const WORKLOADS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "ReplicationController",
];

fn typed<T: DeserializeOwned>(doc: &Document, value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::Input {
        path: doc.file.clone(),
        message: format!("line {}: invalid {}: {e}", doc.line, doc.kind()),
    })
}

fn template_of(doc: &Document) -> Option<Value> {
    let spec = doc.value.get("spec")?;
    let template = if doc.kind() == "CronJob" {
        spec.get("jobTemplate")?.get("spec")?.get("template")?
    } else {
        spec.get("template")?
    };
    Some(template.clone())
}

/// Builds subjects; `namespace` is `-n`, used for objects that name none.
pub fn subjects(
    docs: &[Document],
    namespace: &str,
    container: Option<&str>,
) -> Result<Vec<PodSubject>> {
    let ns_of = |v: &Value| {
        v.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or(namespace)
            .to_string()
    };
    let mut service_accounts: BTreeMap<(String, String), ServiceAccount> = BTreeMap::new();
    let mut secret_keys: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut config_maps: BTreeMap<(String, String), BTreeMap<String, String>> = BTreeMap::new();
    for doc in docs {
        match doc.kind() {
            "ServiceAccount" => {
                let sa: ServiceAccount = typed(doc, doc.value.clone())?;
                let name = sa.metadata.name.clone().unwrap_or_default();
                service_accounts.insert((ns_of(&doc.value), name), sa);
            }
            "Secret" => {
                let secret: Secret = typed(doc, doc.value.clone())?;
                let name = secret.metadata.name.clone().unwrap_or_default();
                secret_keys.insert((ns_of(&doc.value), name), secret_key_names(&secret));
            }
            "ConfigMap" => {
                let map: ConfigMap = typed(doc, doc.value.clone())?;
                let name = map.metadata.name.clone().unwrap_or_default();
                config_maps.insert((ns_of(&doc.value), name), map.data.unwrap_or_default());
            }
            _ => {}
        }
    }
    let mut subjects = Vec::new();
    for doc in docs {
        let kind = doc.kind();
        let ns = ns_of(&doc.value);
        let name = doc
            .value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let (meta, spec, origin) = if kind == "Pod" {
            let pod: Pod = typed(doc, doc.value.clone())?;
            let live = pod.metadata.uid.is_some() || pod.status.is_some();
            let origin = if live { Origin::Dump } else { Origin::Template };
            (pod.metadata, pod.spec.unwrap_or_default(), origin)
        } else if WORKLOADS.contains(&kind) {
            let Some(template) = template_of(doc) else {
                return Err(Error::Input {
                    path: doc.file.clone(),
                    message: format!("line {}: {kind} {name} has no pod template", doc.line),
                });
            };
            let template: PodTemplateSpec = typed(doc, template)?;
            (
                template.metadata.unwrap_or_default(),
                template.spec.unwrap_or_default(),
                Origin::Template,
            )
        } else {
            continue;
        };
        if spec.containers.is_empty() {
            return Err(Error::Input {
                path: doc.file.clone(),
                message: format!("line {}: {kind} {name} has no containers", doc.line),
            });
        }
        let chosen = match container {
            Some(c)
                if spec
                    .containers
                    .iter()
                    .chain(spec.init_containers.iter().flatten())
                    .any(|k| k.name == c) =>
            {
                c.to_string()
            }
            Some(_) => continue,
            None => default_container(&meta, &spec).unwrap_or_default(),
        };
        let sa_name = spec
            .service_account_name
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".into());
        let keys = secret_keys
            .iter()
            .filter(|((sns, _), _)| *sns == ns)
            .map(|((_, n), k)| (n.clone(), k.clone()))
            .collect();
        let maps = config_maps
            .iter()
            .filter(|((mns, _), _)| *mns == ns)
            .map(|((_, n), d)| (n.clone(), d.clone()))
            .collect();
        let node_os = spec
            .node_selector
            .as_ref()
            .and_then(|s| s.get("kubernetes.io/os").cloned());
        subjects.push(PodSubject {
            kind: kind.to_string(),
            service_account: service_accounts.get(&(ns.clone(), sa_name)).cloned(),
            namespace: ns,
            name,
            meta,
            spec,
            origin,
            container: chosen,
            owner_template: None,
            node_os,
            secret_keys: keys,
            node_labels: None,
            config_maps: maps,
            eks_association: Default::default(),
        });
    }
    Ok(subjects)
}
