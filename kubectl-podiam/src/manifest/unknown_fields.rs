//! Fields a manifest sets that the Kubernetes schema does not have, named as kubectl names
//! them (`spec.containers[0].imagePullPolice`). `kubectl apply` refuses them (strict field
//! validation, its default); podiam verifies and changes nothing, so it warns instead, naming
//! the file, line, object and field: a misspelt `serviceAccountName` would otherwise be judged
//! silently as the `default` ServiceAccount.
//!
//! Found by decoding each object into its typed schema (k8s-openapi, which drops fields it
//! does not know) and comparing the keys with the original.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, ReplicationController, Secret, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::documents::Document;

/// One warning per unknown field of the kinds podiam reads; other kinds (CRDs, Services…)
/// are not podiam's to validate.
pub fn warnings(docs: &[Document]) -> Vec<String> {
    let mut out = Vec::new();
    for doc in docs {
        let name = match (
            doc.value
                .pointer("/metadata/namespace")
                .and_then(Value::as_str),
            doc.value.pointer("/metadata/name").and_then(Value::as_str),
        ) {
            (Some(ns), Some(n)) => format!("{ns}/{n}"),
            (None, Some(n)) => n.to_owned(),
            _ => "(no name)".to_owned(),
        };
        for field in unknown(&doc.value) {
            out.push(format!(
                "{}: line {}: {} {name}: unknown field {field:?} (not in the Kubernetes schema: podiam judges the object without it; kubectl apply would refuse it)",
                doc.file.display(),
                doc.line,
                doc.kind()
            ));
        }
    }
    out
}

/// The unknown fields of one object, sorted; none for a kind podiam does not read
/// or an object its schema cannot decode (that is reported where the object is read).
pub fn unknown(value: &Value) -> Vec<String> {
    let api_version = value.get("apiVersion").and_then(Value::as_str);
    let kind = value.get("kind").and_then(Value::as_str);
    let known = match (api_version.unwrap_or(""), kind.unwrap_or("")) {
        ("v1", "Pod") => typed::<Pod>(value),
        ("v1", "ServiceAccount") => typed::<ServiceAccount>(value),
        ("v1", "Secret") => typed::<Secret>(value),
        ("v1", "ConfigMap") => typed::<ConfigMap>(value),
        ("v1", "ReplicationController") => typed::<ReplicationController>(value),
        ("apps/v1", "Deployment") => typed::<Deployment>(value),
        ("apps/v1", "StatefulSet") => typed::<StatefulSet>(value),
        ("apps/v1", "DaemonSet") => typed::<DaemonSet>(value),
        ("apps/v1", "ReplicaSet") => typed::<ReplicaSet>(value),
        ("batch/v1", "Job") => typed::<Job>(value),
        ("batch/v1", "CronJob") => typed::<CronJob>(value),
        ("rbac.authorization.k8s.io/v1", "Role") => typed::<Role>(value),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => typed::<ClusterRole>(value),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => typed::<RoleBinding>(value),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            typed::<ClusterRoleBinding>(value)
        }
        ("networking.k8s.io/v1", "NetworkPolicy") => typed::<NetworkPolicy>(value),
        _ => None,
    };
    let mut out = Vec::new();
    if let Some(known) = known {
        missing(value, &known, "", &mut out);
    }
    out.sort();
    out
}

/// `value` as the schema keeps it: decoded into `T` and encoded again.
fn typed<T: DeserializeOwned + Serialize>(value: &Value) -> Option<Value> {
    let object: T = serde_json::from_value(value.clone()).ok()?;
    serde_json::to_value(object).ok()
}

/// Paths of `original`'s keys that `known` lacks. A `null` is no field (kubectl drops it too).
fn missing(original: &Value, known: &Value, path: &str, out: &mut Vec<String>) {
    match (original, known) {
        (Value::Object(fields), Value::Object(kept)) => {
            for (key, value) in fields {
                if value.is_null() {
                    continue;
                }
                let here = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match kept.get(key) {
                    Some(k) => missing(value, k, &here, out),
                    None => out.push(here),
                }
            }
        }
        (Value::Array(items), Value::Array(kept)) => {
            for (i, (item, k)) in items.iter().zip(kept).enumerate() {
                missing(item, k, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_misspelt_fields_with_their_path() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"any-label": "kept"}, "creationTimestamp": null},
            "spec": {
                "serviceAcountName": "s3-reader",
                "containers": [
                    {"name": "a", "image": "i"},
                    {"name": "b", "image": "i", "imagePullPolice": "Always", "resources": {}}
                ]
            }
        });
        assert_eq!(
            unknown(&pod),
            vec![
                "spec.containers[1].imagePullPolice",
                "spec.serviceAcountName"
            ]
        );
    }

    #[test]
    fn a_valid_workload_has_none() {
        let deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "annotations": {"x": "y"}},
            "spec": {
                "selector": {"matchLabels": {"app": "d"}},
                "template": {
                    "metadata": {"labels": {"app": "d"}},
                    "spec": {
                        "serviceAccountName": "s",
                        "containers": [{"name": "a", "image": "i", "ports": [{"containerPort": 80}],
                            "env": [{"name": "X", "value": "1"}]}],
                        "volumes": [{"name": "v", "emptyDir": {}}]
                    }
                }
            }
        });
        assert_eq!(unknown(&deployment), Vec::<String>::new());
    }

    #[test]
    fn other_kinds_are_not_validated() {
        let crd =
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"anything": 1}});
        assert!(unknown(&crd).is_empty());
    }
}
