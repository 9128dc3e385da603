//! The Azure Workload Identity webhook stand-in against the real local cluster: registered
//! with upstream's configuration, the apiserver calls it for labelled pods on CREATE and
//! stores the mutated pod; unlabelled pods never reach it; a refusal (invalid token lifetime)
//! refuses the pod, `failurePolicy: Fail`.
//!
//! Needs root and the binaries of `e2e/k8s/build.sh`, like `local_cluster`. The cluster takes
//! the machine's cluster lock itself: never wrap the test in `flock` on it (it would wait for
//! itself). Pods are only created, never run.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::Api;
use kube::api::PostParams;
use podiam_e2e::cluster::{LocalCluster, LocalClusterOptions};
use podiam_e2e::webhooks::azure_mutation::{AzureMutationSettings, volume_name};
use podiam_e2e::webhooks::{AzureWebhookOptions, AzureWorkloadIdentityWebhook};
use serde_json::{Value, json};

const NAMESPACE: &str = "podiam-azure-webhook";
const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
const AUTHORITY: &str = "https://10.213.0.1:4443/";

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

fn env_of(pod: &Pod) -> Vec<(String, String)> {
    pod.spec.as_ref().unwrap().containers[0]
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apiserver_mutates_labelled_pods_through_the_azure_stand_in() {
    let mut options = LocalClusterOptions::new("https://oidc.podiam.test/azure-webhook");
    options.state_dir = podiam_e2e::cluster::cache_dir().join("azure-webhook-test");
    let cluster = match LocalCluster::up(options).await {
        Ok(cluster) => cluster,
        Err(e) => panic!("the local cluster did not come up:\n{e}"),
    };
    let client = cluster.client().await.expect("admin client");

    let webhook = AzureWorkloadIdentityWebhook::start(
        client.clone(),
        AzureWebhookOptions {
            settings: AzureMutationSettings {
                authority_host: AUTHORITY.to_owned(),
                ..AzureMutationSettings::default()
            },
            ..AzureWebhookOptions::default()
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
            "workload",
            json!({ "azure.workload.identity/client-id": CLIENT_ID,
                    "azure.workload.identity/service-account-token-expiration": "7200" }),
        ),
        (
            "too-short",
            json!({ "azure.workload.identity/client-id": CLIENT_ID,
                    "azure.workload.identity/service-account-token-expiration": "600" }),
        ),
    ] {
        accounts
            .create(
                &PostParams::default(),
                &from_json(json!({ "metadata": { "name": name, "annotations": annotations } })),
            )
            .await
            .expect("service account");
    }

    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let create = |p: Pod| {
        let pods = pods.clone();
        async move {
            for _ in 0..100 {
                match pods.create(&PostParams::default(), &p).await {
                    Err(e) if e.to_string().contains("serviceaccount") => {
                        tokio::time::sleep(Duration::from_millis(200)).await
                    }
                    other => return other,
                }
            }
            panic!("the pod was never admitted")
        }
    };
    let labelled = json!({ "azure.workload.identity/use": "true" });

    let mutated = create(pod("azure-pod", "workload", labelled.clone()))
        .await
        .expect("labelled pod admitted");
    assert_eq!(
        env_of(&mutated),
        [
            ("AZURE_CLIENT_ID", CLIENT_ID),
            ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
            (
                "AZURE_FEDERATED_TOKEN_FILE",
                "/var/run/secrets/azure/wi/token/azure-identity-token"
            ),
            ("AZURE_AUTHORITY_HOST", AUTHORITY),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
    );
    let spec = serde_json::to_value(mutated.spec.as_ref().unwrap()).unwrap();
    let volume = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == volume_name("azure-pod"))
        .expect("reserved token volume")
        .clone();
    assert_eq!(
        volume["projected"]["sources"][0]["serviceAccountToken"],
        json!({ "audience": "api://AzureADTokenExchange", "expirationSeconds": 7200,
                "path": "token/azure-identity-token" })
    );
    assert!(
        spec["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == volume_name("azure-pod")
                && m["mountPath"] == "/var/run/secrets/azure/wi"
                && m["readOnly"] == true),
        "{spec}"
    );

    let unlabelled = create(pod("plain", "workload", json!({})))
        .await
        .expect("unlabelled pod admitted");
    assert!(env_of(&unlabelled).is_empty());

    let refused = create(pod("short-token", "too-short", labelled.clone())).await;
    let message = refused
        .expect_err("failurePolicy Fail: refused")
        .to_string();
    assert!(
        message.contains("token expiration 600 not valid"),
        "{message}"
    );

    let log = webhook.requests();
    let seen = |name: &str| {
        log.iter()
            .find(|r| r.namespace == NAMESPACE && r.pod == name)
    };
    assert!(seen("azure-pod").is_some_and(|r| r.denied.is_none() && r.patch_operations > 0));
    assert!(seen("plain").is_none(), "the objectSelector keeps it away");
    assert!(seen("short-token").is_some_and(|r| r.denied.is_some()));

    AzureWorkloadIdentityWebhook::unregister(&client)
        .await
        .expect("unregister");
    drop(webhook);
    cluster.down().expect("down");
}
