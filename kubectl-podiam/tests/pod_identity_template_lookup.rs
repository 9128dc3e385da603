//! `verify -f TEMPLATE --eks-cluster-name …` with the operator's credentials against the EKS
//! control-plane emulator: the template's Pod Identity association is looked up
//! (ListPodIdentityAssociations, DescribePodIdentityAssociation) and the template judged as the
//! webhook will mutate it (FACTS.md: associations live in EKS, not in manifests).

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use podiam_e2e::emulators::{AwsEmulators, DEFAULT_CLUSTER_NAME};
use podiam_e2e::setup::CloudSetup;
use serde_json::Value;

const SETUP: &str = r#"
aws:
  roles:
    - name: pod-role
      trustPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {Service: pods.eks.amazonaws.com}
            Action: [sts:AssumeRole, sts:TagSession]
  podIdentityAssociations:
    - {namespace: default, serviceAccount: app, roleName: pod-role}
"#;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/webhook_models")
            .join(name),
    )
    .unwrap()
}

fn write(dir: &tempfile::TempDir, name: &str, yaml: &str) -> PathBuf {
    let file = dir.path().join(name);
    std::fs::write(&file, yaml).unwrap();
    file
}

fn verify(emulators: &AwsEmulators, manifest: &Path) -> (Option<i32>, Value) {
    let (key, secret) = emulators.admin_credentials();
    let out = Command::cargo_bin("kubectl-podiam")
        .unwrap()
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("KUBECONFIG", "/dev/null")
        .env("AWS_ENDPOINT_URL", emulators.gate_url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .args([
            "verify",
            "-o",
            "json",
            "--eks-cluster-name",
            DEFAULT_CLUSTER_NAME,
            "-f",
        ])
        .arg(manifest)
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(&emulators.admin_credentials().1),
        "secret leaked"
    );
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), report)
}

fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["items"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {report:#}"))
}

fn calls(emulators: &AwsEmulators, action: &str) -> usize {
    emulators
        .request_log()
        .iter()
        .filter(|e| e.action == action && e.outcome == "200")
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn template_association_is_looked_up_and_judged_as_pod_identity() {
    let emulators = AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start (needs python3 with venv and PyPI for moto)");
    emulators
        .apply(&CloudSetup::from_yaml(SETUP).unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    // An association, no IRSA annotation: judged as the Pod Identity pod, not "no identity".
    let plain = fixture("pod_identity_association_no_annotation.yaml");
    let (_, report) = verify(&emulators, &write(&dir, "plain.yaml", &plain));
    assert_eq!(
        report["items"][0]["mechanism"], "aws-pod-identity",
        "{report:#}"
    );
    let association = check(&report, "aws.pod-identity.association");
    assert_eq!(association["status"], "pass", "{report:#}");
    assert!(
        association["message"]
            .as_str()
            .unwrap()
            .contains("arn:aws:iam::123456789012:role/pod-role"),
        "{report:#}"
    );
    assert_eq!(check(&report, "aws.pod-identity.env")["status"], "pass");
    assert!(calls(&emulators, "ListPodIdentityAssociations") >= 1);
    assert!(calls(&emulators, "DescribePodIdentityAssociation") >= 1);

    // An association and an IRSA annotation: the association wins, as in the webhook.
    let both = fixture("pod_identity_association_and_irsa_annotation.yaml");
    let (_, report) = verify(&emulators, &write(&dir, "both.yaml", &both));
    assert_eq!(
        report["items"][0]["mechanism"], "aws-pod-identity",
        "{report:#}"
    );
    assert_eq!(
        check(&report, "aws.pod-identity.association")["status"],
        "warn"
    );

    // EKS has none for this ServiceAccount: now known to be wired to nothing.
    let none = plain.replace("app", "nobody");
    let (code, report) = verify(&emulators, &write(&dir, "none.yaml", &none));
    assert_eq!(report["items"][0]["mechanism"], "none", "{report:#}");
    assert_eq!(check(&report, "identity.mechanism")["status"], "fail");
    assert_eq!(code, Some(1));
}
