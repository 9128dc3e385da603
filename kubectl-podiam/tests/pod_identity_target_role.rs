//! EKS Pod Identity with a `targetRoleArn` (cross-account chaining): the built plugin against
//! the EKS and EKS Auth emulators, no cluster. The pod gets the target role's session, and a
//! refusal names the hop that refused (the target's trust not admitting the first role).

use std::process::Output;

use assert_cmd::Command;
use podiam_e2e::emulators::{AwsEmulators, DEFAULT_CLUSTER_NAME, TokenSpec};
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
    - name: target-role
      trustPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {AWS: "arn:aws:iam::123456789012:role/pod-role"}
            Action: sts:AssumeRole
    - name: untrusting-target
      trustPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {AWS: "arn:aws:iam::123456789012:role/someone-else"}
            Action: sts:AssumeRole
    - name: ec2-role
      trustPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {Service: ec2.amazonaws.com}
            Action: [sts:AssumeRole, sts:TagSession]
  podIdentityAssociations:
    - {namespace: default, serviceAccount: chained, roleName: pod-role}
    - {namespace: default, serviceAccount: ec2-first, roleName: ec2-role}
"#;

fn manifest(dir: &tempfile::TempDir, service_account: &str) -> std::path::PathBuf {
    let file = dir.path().join(format!("{service_account}.yaml"));
    std::fs::write(
        &file,
        format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: app-pod, namespace: default, uid: 6f1c2f7e-3f4b-4c55-9d0e-2a1b3c4d5e6f}}
spec:
  serviceAccountName: {service_account}
  containers:
    - name: app
      image: amazonlinux
      env:
        - {{name: AWS_CONTAINER_CREDENTIALS_FULL_URI, value: "http://169.254.170.23/v1/credentials"}}
        - {{name: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, value: /var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token}}
      volumeMounts:
        - {{name: eks-pod-identity-token, mountPath: /var/run/secrets/pods.eks.amazonaws.com/serviceaccount}}
  volumes:
    - name: eks-pod-identity-token
      projected:
        sources:
          - serviceAccountToken: {{audience: pods.eks.amazonaws.com, expirationSeconds: 86400, path: eks-pod-identity-token}}
"#
        ),
    )
    .unwrap();
    file
}

fn verify(
    emulators: &AwsEmulators,
    manifest: &std::path::Path,
    token: &str,
    extra: &[&str],
) -> (Output, Value) {
    let (key, secret) = emulators.admin_credentials();
    let mut cmd = Command::cargo_bin("kubectl-podiam").unwrap();
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("KUBECONFIG", "/dev/null")
        .env("AWS_ENDPOINT_URL", emulators.gate_url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .args(["verify", "-o", "json", "--token-file", "-", "-f"])
        .arg(manifest)
        .args(extra)
        .write_stdin(token.to_string());
    let out = cmd.output().unwrap();
    // The token never comes back out, nor the secret of the operator.
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(
            !text.contains(token.trim()) || token.len() < 20,
            "token leaked"
        );
        assert!(
            !text.contains(&emulators.admin_credentials().1),
            "secret leaked"
        );
    }
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out, report)
}

fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["items"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {report:#}"))
}

fn last_eks_auth_outcome(emulators: &AwsEmulators) -> String {
    emulators
        .request_log()
        .into_iter()
        .rev()
        .find(|e| e.action == "AssumeRoleForPodIdentity")
        .map(|e| e.outcome)
        .expect("the plugin called EKS Auth")
}

async fn set_target(emulators: &AwsEmulators, service_account: &str, target: &str) {
    let (id, secret) = emulators.admin_credentials();
    let credentials = aws_credential_types::Credentials::new(id, secret, None, None, "test");
    let eks = aws_sdk_eks::Client::from_conf(
        aws_sdk_eks::Config::builder()
            .behavior_version(aws_sdk_eks::config::BehaviorVersion::latest())
            .region(aws_sdk_eks::config::Region::new("us-east-1"))
            .endpoint_url(emulators.gate_url())
            .credentials_provider(credentials)
            .build(),
    );
    let association = emulators
        .pod_identity_associations()
        .into_iter()
        .find(|a| a.service_account == service_account)
        .expect("the association");
    eks.update_pod_identity_association()
        .cluster_name(DEFAULT_CLUSTER_NAME)
        .association_id(&association.association_id)
        .target_role_arn(target)
        .send()
        .await
        .expect("UpdatePodIdentityAssociation with targetRoleArn");
}

#[tokio::test(flavor = "multi_thread")]
async fn plugin_follows_the_target_role() {
    let emulators = AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start (needs python3 with venv and PyPI for moto)");
    emulators
        .apply(&CloudSetup::from_yaml(SETUP).unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut spec = TokenSpec::new("default", "chained");
    spec.audiences = vec!["pods.eks.amazonaws.com".to_owned()];
    spec.pod_name = Some("app-pod".to_owned());
    let token = emulators.mint_token(&spec).unwrap();
    let pod = manifest(&dir, "chained");
    let target = emulators.role_arn("target-role");

    // Chained to a target that trusts pod-role: the pod is the target's session.
    set_target(&emulators, "chained", &target).await;
    let (out, report) = verify(
        &emulators,
        &pod,
        &token,
        &[
            "--eks-cluster-name",
            DEFAULT_CLUSTER_NAME,
            "--expect-role",
            &target,
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert!(
        report["items"][0]["identity"]["principal"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:sts::123456789012:assumed-role/target-role/"),
        "{report:#}"
    );
    assert_eq!(check(&report, "aws.sts.expected-role")["status"], "pass");

    // The target does not trust pod-role: EKS Auth refuses, the plugin names the target hop.
    let untrusting = emulators.role_arn("untrusting-target");
    set_target(&emulators, "chained", &untrusting).await;
    let (out, report) = verify(
        &emulators,
        &pod,
        &token,
        &["--eks-cluster-name", DEFAULT_CLUSTER_NAME],
    );
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(last_eks_auth_outcome(&emulators), "AccessDeniedException");
    let exchange = check(&report, "aws.pod-identity.exchange");
    assert_eq!(exchange["status"], "fail", "{exchange:#}");
    let message = exchange["message"].as_str().unwrap();
    assert!(
        message.starts_with("target hop:"),
        "{message}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(message.contains(&untrusting), "{message}");
    assert!(
        message.contains("does not trust arn:aws:iam::123456789012:role/pod-role"),
        "{message}"
    );
    let fix = exchange["remediation"].as_str().unwrap_or_default();
    assert!(fix.contains("untrusting-target"), "{exchange:#}");

    // The association's own role does not trust EKS: the first hop is named.
    set_target(&emulators, "ec2-first", &target).await;
    let mut spec = TokenSpec::new("default", "ec2-first");
    spec.audiences = vec!["pods.eks.amazonaws.com".to_owned()];
    spec.pod_name = Some("app-pod".to_owned());
    let token = emulators.mint_token(&spec).unwrap();
    let (out, report) = verify(
        &emulators,
        &manifest(&dir, "ec2-first"),
        &token,
        &["--eks-cluster-name", DEFAULT_CLUSTER_NAME],
    );
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(last_eks_auth_outcome(&emulators), "AccessDeniedException");
    let exchange = check(&report, "aws.pod-identity.exchange");
    let message = exchange["message"].as_str().unwrap();
    assert!(message.starts_with("first hop:"), "{message}");
    assert!(message.contains("role/ec2-role"), "{message}");
}
