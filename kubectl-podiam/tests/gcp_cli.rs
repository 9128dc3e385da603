//! The binary on the GCP examples and a failing GKE manifest, as a user runs it offline.

use assert_cmd::Command;

fn podiam() -> Command {
    let mut cmd = Command::cargo_bin("kubectl-podiam").unwrap();
    cmd.env_remove("KUBECONFIG")
        .env_remove("STORAGE_EMULATOR_HOST")
        .env("NO_COLOR", "1");
    cmd
}

fn examples() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/gcp")
}

#[test]
fn gcp_example_verifies_offline_with_the_configured_gsa() {
    let out = podiam()
        .args(["verify", "-o", "json", "-f"])
        .arg(examples())
        .args([
            "--expect-gsa",
            "gke-service-account@my-project.iam.gserviceaccount.com",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let item = &report["items"][0];
    assert_eq!(item["pod"]["name"], "gcs-pod");
    assert_eq!(item["serviceAccount"], "gke-service-account");
    assert_eq!(item["mechanism"], "gcp-workload-identity");
    assert_eq!(item["verdict"], "pass");
    assert_eq!(item["identity"]["provider"], "gcp");
    assert_eq!(
        item["identity"]["principal"],
        "gke-service-account@my-project.iam.gserviceaccount.com"
    );
    assert_eq!(item["identity"]["source"], "configured (not exchanged)");
    let expected = item["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "gcp.expected-gsa")
        .expect("gcp.expected-gsa");
    assert_eq!(expected["status"], "pass");
}

#[test]
fn gcp_example_with_another_expected_gsa_exits_1() {
    podiam()
        .args(["verify", "-f"])
        .arg(examples())
        .args([
            "--expect-gsa",
            "someone-else@my-project.iam.gserviceaccount.com",
        ])
        .assert()
        .code(1);
}

#[test]
fn failing_gke_manifest_text_output() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gke.yaml");
    // The annotation on the pod instead of the KSA, and hostNetwork: two classic mistakes.
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: gke-service-account, namespace: default}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: gcs-pod\n  namespace: default\n  annotations: {iam.gke.io/gcp-service-account: gke-service-account@my-project.iam.gserviceaccount.com}\nspec:\n  serviceAccountName: gke-service-account\n  hostNetwork: true\n  containers: [{name: app, image: google/cloud-sdk, command: [sleep, '3600']}]\n",
    )
    .unwrap();
    let out = podiam().args(["verify", "-f"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!(String::from_utf8(out.stdout).unwrap());
}

#[test]
fn gcs_expectations_parse_and_bad_ones_are_usage_errors() {
    podiam()
        .args(["verify", "--can", "gcs:get=my-bucket", "-f"])
        .arg(examples())
        .assert()
        .code(2);
    // Offline there is no token: the expectation is reported as not evaluated.
    let out = podiam()
        .args(["verify", "-o", "json", "--can", "gcs:list=my-bucket", "-f"])
        .arg(examples())
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let can = report["items"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "gcp.access.can")
        .expect("gcp.access.can");
    assert_eq!(can["status"], "skip");
}
