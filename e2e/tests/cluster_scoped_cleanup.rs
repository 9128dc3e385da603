//! A scenario may apply cluster-scoped objects (the `k8s-rbac-*` scenarios bind ServiceAccounts
//! with ClusterRoleBindings). Deleting the scenario's namespace does not remove them, so the
//! runner deletes them at the scenario's end — whether it passed or failed. Checked on a local
//! cluster run as `--provider existing`, so the objects can be looked for after the run.
//!
//! Needs root and the binaries of `e2e/k8s/build.sh`, like `local_cluster.rs`; it fails naming
//! what is missing, never skips. The scenarios run `kubectl-podiam version` only, so any build
//! of the plugin will do.

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::Api;
use kube::api::PostParams;
use podiam_e2e::cluster::{LocalCluster, LocalClusterOptions};
use serde_json::json;

fn scenario(name: &str, exit_code: i32) -> String {
    format!(
        r#"apiVersion: podiam.dev/v1alpha1
kind: Scenario
metadata: {{name: {name}}}
spec:
  cloud: aws
  steps:
    - apply:
        manifests: |
          apiVersion: rbac.authorization.k8s.io/v1
          kind: ClusterRole
          metadata: {{name: "podiam-${{NAMESPACE}}-reader"}}
          rules: [{{apiGroups: [""], resources: [secrets], verbs: [get]}}]
          ---
          apiVersion: rbac.authorization.k8s.io/v1
          kind: ClusterRoleBinding
          metadata: {{name: "podiam-${{NAMESPACE}}-reader"}}
          roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "podiam-${{NAMESPACE}}-reader"}}
          subjects: [{{kind: ServiceAccount, name: default, namespace: "${{NAMESPACE}}"}}]
    - podiam:
        args: [version]
        exitCode: {exit_code}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_scoped_objects_a_scenario_applied_are_deleted_at_its_end() {
    let state = podiam_e2e::cluster::cache_dir().join("cluster-scoped-cleanup-test");
    let mut options = LocalClusterOptions::new("https://127.0.0.1:6443");
    options.state_dir = state.join("cluster");
    let cluster = match LocalCluster::up(options).await {
        Ok(cluster) => cluster,
        Err(e) => panic!("the local cluster did not come up:\n{e}"),
    };
    let client = cluster.client().await.expect("admin client");
    // As in existing_provider.rs: the emulators must be able to read the issuer.
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

    let dir = tempfile::tempdir().unwrap();
    let passing = dir.path().join("passing.yaml");
    let failing = dir.path().join("failing.yaml");
    std::fs::write(&passing, scenario("cleanup-after-pass", 0)).unwrap();
    // `version` exits 0: expecting 7 makes the step (and the scenario) fail after the apply.
    std::fs::write(&failing, scenario("cleanup-after-fail", 7)).unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_podiam-e2e"))
        .arg("run")
        .args(["--provider", "existing", "--kubeconfig"])
        .arg(cluster.kubeconfig_path())
        .arg("--state-dir")
        .arg(state.join("run"))
        .args([&passing, &failing])
        .output()
        .await
        .expect("run podiam-e2e");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    let mut left = Vec::new();
    for name in ["cleanup-after-pass", "cleanup-after-fail"] {
        let object = format!("podiam-podiam-{name}-reader");
        if Api::<ClusterRoleBinding>::all(client.clone())
            .get_opt(&object)
            .await
            .expect("read clusterrolebindings")
            .is_some()
        {
            left.push(format!("ClusterRoleBinding {object}"));
        }
        if Api::<ClusterRole>::all(client.clone())
            .get_opt(&object)
            .await
            .expect("read clusterroles")
            .is_some()
        {
            left.push(format!("ClusterRole {object}"));
        }
    }
    let down = cluster.down();

    assert!(
        stderr.contains("PASS cleanup-after-pass") && stderr.contains("FAIL cleanup-after-fail"),
        "expected one passing and one failing scenario\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        left.is_empty(),
        "left behind: {left:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    down.expect("cluster down");
}
