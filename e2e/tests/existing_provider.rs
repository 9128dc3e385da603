//! `podiam-e2e run --provider existing` against a cluster the harness did not start for the
//! run: a local cluster whose service-account issuer is its own apiserver (as on clusters that
//! publish their issuer themselves). The run must read that issuer from the cluster's discovery
//! document, have the emulators trust it through the kubeconfig's CA, install no webhook and
//! create nothing but its namespace, which it deletes.
//!
//! Needs root and the binaries of `e2e/k8s/build.sh`, like `local_cluster.rs`; it fails naming
//! what is missing, never skips.

use std::collections::BTreeSet;
use std::path::Path;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::Api;
use kube::api::{ListParams, PostParams};
use podiam_e2e::cluster::{LocalCluster, LocalClusterOptions};
use serde_json::json;

const SCENARIO: &str = "aws-irsa-manual-wiring";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_on_an_existing_cluster_uses_its_issuer_and_installs_nothing() {
    let state = podiam_e2e::cluster::cache_dir().join("existing-provider-test");
    let mut options = LocalClusterOptions::new("https://127.0.0.1:6443");
    options.state_dir = state.join("cluster");
    let cluster = match LocalCluster::up(options).await {
        Ok(cluster) => cluster,
        Err(e) => panic!("the local cluster did not come up:\n{e}"),
    };
    let client = cluster.client().await.expect("admin client");

    // What the cluster's operator does once (EKS and GKE publish their issuer the same way):
    // let anyone read the issuer's discovery document and keys.
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "podiam-test-anonymous-issuer-discovery"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": "system:service-account-issuer-discovery"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                      "name": "system:unauthenticated"}]
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(&PostParams::default(), &binding)
        .await
        .expect("bind anonymous issuer discovery");
    let webhooks_before = webhook_names(&client).await;

    let scenario = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios")
        .join(format!("{SCENARIO}.yaml"));
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_podiam-e2e"))
        .arg("run")
        .args(["--provider", "existing", "--kubeconfig"])
        .arg(cluster.kubeconfig_path())
        .arg("--state-dir")
        .arg(state.join("run"))
        .arg(&scenario)
        .output()
        .await
        .expect("run podiam-e2e");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    let webhooks_after = webhook_names(&client).await;
    let namespace = Api::<Namespace>::all(client.clone())
        .get_opt(&format!("podiam-{SCENARIO}"))
        .await
        .expect("read the scenario's namespace");
    let down = cluster.down();

    assert!(
        output.status.success() && stdout.contains("1 passed, 0 failed"),
        "the scenario failed on the existing provider\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stderr.contains("issuer https://127.0.0.1:6443"),
        "the run did not use the cluster's own issuer:\n{stderr}"
    );
    assert_eq!(
        webhooks_before, webhooks_after,
        "the existing provider must not install or change a webhook"
    );
    assert!(
        namespace.is_none_or(|ns| ns.metadata.deletion_timestamp.is_some()),
        "the scenario's namespace was left behind"
    );
    down.expect("cluster down");
}

async fn webhook_names(client: &kube::Client) -> BTreeSet<String> {
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .list(&ListParams::default())
        .await
        .expect("list mutating webhook configurations")
        .items
        .into_iter()
        .filter_map(|w| w.metadata.name)
        .collect()
}
