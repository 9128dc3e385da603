//! The amazon-eks-pod-identity-webhook stand-in against the real local cluster: registered as
//! EKS registers it, the apiserver calls it on pod CREATE and stores the mutated pod; the
//! opt-out label keeps it from being called at all.
//!
//! Needs root and the binaries of `e2e/k8s/build.sh`, like `local_cluster`. Pods are only
//! created, never run, so no image is needed.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use podiam_e2e::cluster::{LocalCluster, LocalClusterOptions};
use podiam_e2e::webhooks::{EksPodIdentityWebhook, WebhookOptions};
use serde_json::{Value, json};

const NAMESPACE: &str = "podiam-webhook";
const ROLE: &str = "arn:aws:iam::123456789012:role/s3-reader";

fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("fixture")
}

fn pod(name: &str, service_account: &str, labels: Value) -> Pod {
    from_json(json!({
        "metadata": { "name": name, "labels": labels },
        "spec": {
            "serviceAccountName": service_account,
            "containers": [{ "name": "app", "image": "podiam.test/none:1" }]
        }
    }))
}

fn env_names(pod: &Pod) -> Vec<(String, String)> {
    pod.spec.as_ref().unwrap().containers[0]
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apiserver_mutates_pods_through_the_stand_in() {
    let mut options = LocalClusterOptions::new("https://oidc.podiam.test/webhook");
    options.state_dir = podiam_e2e::cluster::cache_dir().join("webhook-test");
    let cluster = match LocalCluster::up(options).await {
        Ok(cluster) => cluster,
        Err(e) => panic!("the local cluster did not come up:\n{e}"),
    };
    let client = cluster.client().await.expect("admin client");

    let webhook = EksPodIdentityWebhook::start(
        client.clone(),
        WebhookOptions {
            region: Some("eu-west-1".to_owned()),
            ..WebhookOptions::default()
        },
    )
    .expect("webhook starts");
    webhook.register(&client).await.expect("register");
    webhook
        .wait_until_called(&client, "default", Duration::from_secs(60))
        .await
        .expect("the apiserver calls the webhook");

    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &from_json(json!({ "metadata": { "name": NAMESPACE } })),
        )
        .await
        .expect("namespace");
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), NAMESPACE);
    for (name, annotations) in [
        (
            "irsa",
            json!({ "eks.amazonaws.com/role-arn": ROLE,
                    "eks.amazonaws.com/sts-regional-endpoints": "true",
                    "eks.amazonaws.com/token-expiration": "100" }),
        ),
        ("plain", json!({})),
        ("pod-identity", json!({})),
    ] {
        accounts
            .create(
                &PostParams::default(),
                &from_json(json!({ "metadata": { "name": name, "annotations": annotations } })),
            )
            .await
            .expect("service account");
    }
    webhook.associate_pod_identity(NAMESPACE, "pod-identity");

    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let create = |p: Pod| {
        let pods = pods.clone();
        async move {
            // The ServiceAccount admission plugin rejects pods until the SA is visible to it.
            for _ in 0..100 {
                match pods.create(&PostParams::default(), &p).await {
                    Ok(created) => return created,
                    Err(e) if e.to_string().contains("serviceaccount") => {
                        tokio::time::sleep(Duration::from_millis(200)).await
                    }
                    Err(e) => panic!("creating a pod: {e}"),
                }
            }
            panic!("the pod was never admitted")
        }
    };

    let irsa = create(pod("irsa", "irsa", json!({}))).await;
    assert_eq!(
        env_names(&irsa),
        [
            ("AWS_STS_REGIONAL_ENDPOINTS", "regional"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ROLE_ARN", ROLE),
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    let spec = serde_json::to_value(irsa.spec.as_ref().unwrap()).unwrap();
    let token_volume = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "aws-iam-token")
        .expect("aws-iam-token volume")
        .clone();
    assert_eq!(
        token_volume["projected"]["sources"][0]["serviceAccountToken"],
        json!({ "audience": "sts.amazonaws.com", "expirationSeconds": 600, "path": "token" })
    );
    let mounts = &spec["containers"][0]["volumeMounts"];
    assert!(
        mounts.as_array().unwrap().iter().any(|m| m
            == &json!({ "name": "aws-iam-token", "readOnly": true,
                        "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount" })),
        "{mounts}"
    );

    let plain = create(pod("plain", "plain", json!({}))).await;
    assert!(env_names(&plain).is_empty());

    let skipped = create(pod(
        "skipped",
        "irsa",
        json!({ "eks.amazonaws.com/skip-pod-identity-webhook": "true" }),
    ))
    .await;
    assert!(env_names(&skipped).is_empty());

    let pod_identity = create(pod("pi", "pod-identity", json!({ "app": "x" }))).await;
    assert_eq!(
        pod_identity.metadata.labels.as_ref().unwrap()["eks.amazonaws.com/pod-identity"],
        "enabled"
    );
    assert_eq!(
        env_names(&pod_identity)[2].0,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI"
    );

    let log = webhook.requests();
    let seen = |name: &str| {
        log.iter()
            .find(|r| r.namespace == NAMESPACE && r.pod == name)
    };
    assert!(seen("irsa").unwrap().mutated());
    assert!(!seen("plain").unwrap().mutated());
    assert!(seen("pi").unwrap().mutated());
    assert!(
        seen("skipped").is_none(),
        "the objectSelector keeps it away"
    );

    EksPodIdentityWebhook::unregister(&client)
        .await
        .expect("unregister");
    drop(webhook);
    cluster.down().expect("down");
}
