//! What Go's `encoding/json` drops when a webhook re-encodes a container it decoded: the zero
//! values of `k8s.io/api/core/v1` fields tagged `omitempty` that are plain values in Go
//! (`bool`, `string`, `int32`, slices), where k8s-openapi keeps `Some(false)`, `Some("")`,
//! `Some(0)` or `Some([])` as given.
//!
//! The EKS webhook sends back whole container lists, so a container's `readOnly: false`
//! mount reaches the API server without `readOnly` (measured against v0.6.17). Pointer fields
//! (`securityContext.privileged`, `restartPolicy`, …) and structs (`resources`) are not
//! listed: Go keeps those.

use serde_json::Value;

/// `Container` fields that are plain Go values with `omitempty`.
const CONTAINER: &[&str] = &[
    "image",
    "command",
    "args",
    "workingDir",
    "ports",
    "envFrom",
    "env",
    "resizePolicy",
    "volumeMounts",
    "volumeDevices",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "imagePullPolicy",
    "stdin",
    "stdinOnce",
    "tty",
];
/// `VolumeMount` (`name` and `mountPath` have no `omitempty`).
const VOLUME_MOUNT: &[&str] = &["readOnly", "subPath", "subPathExpr"];
/// `EnvVar`.
const ENV_VAR: &[&str] = &["value"];
/// `ContainerPort` (`containerPort` has no `omitempty`).
const CONTAINER_PORT: &[&str] = &["name", "hostPort", "protocol", "hostIP"];

fn is_go_zero(value: &Value) -> bool {
    match value {
        Value::Bool(b) => !b,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Array(a) => a.is_empty(),
        Value::Null => true,
        Value::Object(_) => false,
    }
}

fn drop_zero(object: &mut Value, fields: &[&str]) {
    if let Value::Object(map) = object {
        map.retain(|key, value| !(fields.contains(&key.as_str()) && is_go_zero(value)));
    }
}

fn each(list: Option<&mut Value>, fields: &[&str]) {
    if let Some(Value::Array(items)) = list {
        for item in items {
            drop_zero(item, fields);
        }
    }
}

/// Rewrites a JSON list of containers as Go would encode it after decoding.
pub fn containers_as_go_encodes(containers: &mut Value) {
    let Value::Array(list) = containers else {
        return;
    };
    for container in list {
        each(container.get_mut("volumeMounts"), VOLUME_MOUNT);
        each(container.get_mut("env"), ENV_VAR);
        each(container.get_mut("ports"), CONTAINER_PORT);
        drop_zero(container, CONTAINER);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn drops_go_zero_values_of_omitempty_fields_only() {
        let mut containers = json!([{
            "name": "app",
            "image": "",
            "stdin": false,
            "tty": true,
            "resources": {},
            "env": [{ "name": "EMPTY", "value": "" }, { "name": "SET", "value": "x" }],
            "ports": [{ "containerPort": 0, "hostPort": 0, "protocol": "TCP" }],
            "volumeMounts": [
                { "name": "a", "mountPath": "/a", "readOnly": false, "subPath": "" },
                { "name": "b", "mountPath": "/b", "readOnly": true }
            ],
            "securityContext": { "privileged": false },
            "command": []
        }]);
        containers_as_go_encodes(&mut containers);
        assert_eq!(
            containers,
            json!([{
                "name": "app",
                "tty": true,
                "resources": {},
                "env": [{ "name": "EMPTY" }, { "name": "SET", "value": "x" }],
                "ports": [{ "containerPort": 0, "protocol": "TCP" }],
                "volumeMounts": [
                    { "name": "a", "mountPath": "/a" },
                    { "name": "b", "mountPath": "/b", "readOnly": true }
                ],
                "securityContext": { "privileged": false }
            }])
        );
    }
}
