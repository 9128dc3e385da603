//! `verify -A` reads the objects around a pod (ServiceAccount, node, owner, Secret key names)
//! once per object, not once per pod: a scripted API server counts the GETs.

use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Pod;
use podiam::answer_cache::AnswerCache;
use podiam::kube::pods;
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct ScriptedApi {
    gets: Arc<Mutex<Vec<String>>>,
}

impl ScriptedApi {
    fn client(&self) -> kube::Client {
        let me = self.clone();
        let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
            let me = me.clone();
            async move {
                let path = req.uri().path().to_string();
                me.gets.lock().unwrap().push(path.clone());
                // Let concurrent askers pile up on the same object.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                let (code, body) = answer(&path);
                Ok::<_, std::convert::Infallible>(
                    http::Response::builder()
                        .status(code)
                        .header("content-type", "application/json")
                        .body(kube::client::Body::from(serde_json::to_vec(&body).unwrap()))
                        .unwrap(),
                )
            }
        });
        kube::Client::new(service, "default")
    }

    fn count(&self, path: &str) -> usize {
        self.gets
            .lock()
            .unwrap()
            .iter()
            .filter(|p| *p == path)
            .count()
    }
}

fn answer(path: &str) -> (u16, Value) {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let name = parts.last().copied().unwrap_or_default();
    match parts.as_slice() {
        ["api", "v1", "namespaces", ns, "serviceaccounts", _] => (
            200,
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                   "metadata": {"name": name, "namespace": ns,
                                "annotations": {"eks.amazonaws.com/role-arn": format!("arn:aws:iam::123456789012:role/{ns}-{name}")}}}),
        ),
        ["api", "v1", "nodes", _] => (
            200,
            json!({"apiVersion": "v1", "kind": "Node",
                   "metadata": {"name": name, "labels": {"kubernetes.io/os": "linux"}}}),
        ),
        ["apis", "apps", "v1", "namespaces", ns, "replicasets", _] => (
            200,
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                   "metadata": {"name": name, "namespace": ns},
                   "spec": {"selector": {}, "template": {"spec": {
                       "serviceAccountName": name, "containers": [{"name": "app", "image": format!("{name}:v1")}]}}}}),
        ),
        ["api", "v1", "namespaces", ns, "secrets", _] => (
            200,
            json!({"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": name, "namespace": ns},
                   "data": {"AWS_ACCESS_KEY_ID": "QUtJQQ==", "other": "eA=="}}),
        ),
        _ => (
            404,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "message": format!("{path} not found"), "reason": "NotFound", "code": 404}),
        ),
    }
}

/// A running pod of ReplicaSet `owner` (whose ServiceAccount has the owner's name).
fn pod(namespace: &str, name: &str, owner: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"namespace": namespace, "name": name,
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": owner,
                                          "uid": format!("uid-{namespace}-{owner}"), "controller": true}]},
        "spec": {"serviceAccountName": owner, "nodeName": "node-1",
                 "containers": [{"name": "app", "image": format!("{owner}:v1"),
                                 "env": [{"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "keys", "key": "AWS_ACCESS_KEY_ID"}}}]}]},
        "status": {"phase": "Running"}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_around_pods_are_read_once_per_object() {
    let api = ScriptedApi::default();
    let client = api.client();
    let reads = AnswerCache::default();
    let fleet = vec![
        pod("team-a", "web-1", "web"),
        pod("team-a", "web-2", "web"),
        pod("team-a", "web-3", "web"),
        pod("team-a", "batch-1", "batch"),
        // Same names in another namespace: other objects, never merged.
        pod("team-b", "web-1", "web"),
    ];
    let subjects = futures::future::join_all(
        fleet
            .into_iter()
            .map(|p| pods::subject(&client, p, None, &reads)),
    )
    .await;
    let subjects: Vec<_> = subjects.into_iter().map(Result::unwrap).collect();

    assert_eq!(
        api.count("/api/v1/namespaces/team-a/serviceaccounts/web"),
        1
    );
    assert_eq!(
        api.count("/api/v1/namespaces/team-a/serviceaccounts/batch"),
        1
    );
    assert_eq!(
        api.count("/api/v1/namespaces/team-b/serviceaccounts/web"),
        1
    );
    assert_eq!(api.count("/api/v1/nodes/node-1"), 1);
    assert_eq!(
        api.count("/apis/apps/v1/namespaces/team-a/replicasets/web"),
        1
    );
    assert_eq!(
        api.count("/apis/apps/v1/namespaces/team-b/replicasets/web"),
        1
    );
    assert_eq!(api.count("/api/v1/namespaces/team-a/secrets/keys"), 1);
    assert_eq!(api.count("/api/v1/namespaces/team-b/secrets/keys"), 1);
    assert_eq!(
        api.count("/apis/apps/v1/namespaces/team-a/replicasets/batch"),
        1
    );
    // 3 ServiceAccounts, 1 node, 3 ReplicaSets, 2 Secrets: nothing read twice.
    assert_eq!(api.gets.lock().unwrap().len(), 9);

    // Every pod still gets its own objects: the ServiceAccount of its namespace.
    let role = |i: usize| {
        subjects[i]
            .sa_annotation("eks.amazonaws.com/role-arn")
            .map(str::to_string)
    };
    assert_eq!(
        role(0).as_deref(),
        Some("arn:aws:iam::123456789012:role/team-a-web")
    );
    assert_eq!(role(0), role(2));
    assert_eq!(
        role(3).as_deref(),
        Some("arn:aws:iam::123456789012:role/team-a-batch")
    );
    assert_eq!(
        role(4).as_deref(),
        Some("arn:aws:iam::123456789012:role/team-b-web")
    );
    assert_eq!(subjects[3].name, "batch-1");
    assert_eq!(subjects[4].namespace, "team-b");
    assert_eq!(subjects[1].node_os.as_deref(), Some("linux"));
    assert!(subjects[3].owner_template.is_some());
    assert_eq!(
        subjects[0].secret_keys["keys"],
        vec!["AWS_ACCESS_KEY_ID".to_string(), "other".to_string()]
    );
}
