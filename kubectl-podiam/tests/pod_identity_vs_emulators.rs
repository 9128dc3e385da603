//! The built plugin against the EKS Auth emulator, no cluster: `verify -f POD --token-file -
//! --eks-cluster-name …` with the operator's credentials, so the exchange is EKS Auth
//! `AssumeRoleForPodIdentity` from this machine. The emulator's verdict (its request log) is
//! compared with the cause the plugin names.

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
      policies:
        - name: s3-read
          document:
            Version: "2012-10-17"
            Statement:
              - Effect: Allow
                Action: [s3:GetObject, s3:ListBucket]
                Resource: [arn:aws:s3:::my-bucket, arn:aws:s3:::my-bucket/*]
    - name: ec2-role
      trustPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {Service: ec2.amazonaws.com}
            Action: [sts:AssumeRole, sts:TagSession]
  podIdentityAssociations:
    - {namespace: default, serviceAccount: reader, roleName: pod-role}
    - {namespace: default, serviceAccount: ec2-trusted, roleName: ec2-role}
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

#[tokio::test(flavor = "multi_thread")]
async fn plugin_explains_eks_auth_answers() {
    let emulators = AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start (needs python3 with venv and PyPI for moto)");
    emulators
        .apply(&CloudSetup::from_yaml(SETUP).unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token = |sa: &str, adjust: &dyn Fn(&mut TokenSpec)| {
        let mut spec = TokenSpec::new("default", sa);
        spec.audiences = vec!["pods.eks.amazonaws.com".to_owned()];
        spec.pod_name = Some("app-pod".to_owned());
        adjust(&mut spec);
        emulators.mint_token(&spec).unwrap()
    };
    let cluster = ["--eks-cluster-name", DEFAULT_CLUSTER_NAME];

    // Granted: the identity is the role session, --expect-role and --can hold.
    let (out, report) = verify(
        &emulators,
        &manifest(&dir, "reader"),
        &token("reader", &|_| {}),
        &[
            cluster[0],
            cluster[1],
            "--expect-role",
            "arn:aws:iam::123456789012:role/pod-role",
            "--can",
            "s3:ListBucket=my-bucket",
            "--cannot",
            "s3:PutObject=my-bucket/x",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["items"][0]["mechanism"], "aws-pod-identity");
    assert!(
        report["items"][0]["identity"]["principal"]
            .as_str()
            .unwrap()
            .starts_with("arn:aws:sts::123456789012:assumed-role/pod-role/eks-podiam-e2e-app-pod-"),
        "{report:#}"
    );
    assert_eq!(last_eks_auth_outcome(&emulators), "200");
    assert_eq!(check(&report, "aws.access.can")["status"], "pass");

    // Refusals: the plugin names the same exception the emulator answered, with its cause.
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "nobody",
            token("nobody", &|_| {}),
            "ResourceNotFoundException",
            "has no Pod Identity association for default/nobody",
        ),
        (
            "ec2-trusted",
            token("ec2-trusted", &|_| {}),
            "AccessDeniedException",
            "its trust policy must allow principal",
        ),
        (
            "reader",
            token("reader", &|s| s.expired = true),
            "ExpiredTokenException",
            "the token has expired",
        ),
        (
            "reader",
            token("reader", &|s| s.wrong_key = true),
            "InvalidTokenException",
            "EKS Auth rejected the token",
        ),
    ];
    for (sa, token, code, cause) in &cases {
        let (out, report) = verify(&emulators, &manifest(&dir, sa), token, &cluster);
        assert_eq!(out.status.code(), Some(1), "{sa}: {report:#}");
        assert_eq!(&last_eks_auth_outcome(&emulators), code);
        let exchange = check(&report, "aws.pod-identity.exchange");
        assert_eq!(exchange["status"], "fail", "{exchange:#}");
        let message = exchange["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("EKS Auth said {code}")),
            "{message}"
        );
        assert!(message.contains(cause), "{message}");
    }

    // Without a cluster name nothing is sent; the skip says how to give one.
    let calls_before = emulators.request_log().len();
    let (out, report) = verify(
        &emulators,
        &manifest(&dir, "reader"),
        &token("reader", &|_| {}),
        &[],
    );
    // Issue 11: only skips, no identity: incomplete (exit 4), never 0.
    assert_eq!(out.status.code(), Some(4), "{report:#}");
    assert!(report["items"][0]["identity"].is_null(), "{report:#}");
    assert_eq!(report["items"][0]["verdict"], "incomplete");
    let exchange = check(&report, "aws.pod-identity.exchange");
    assert_eq!(exchange["status"], "skip");
    assert!(
        exchange["message"]
            .as_str()
            .unwrap()
            .contains("--eks-cluster-name")
    );
    assert_eq!(emulators.request_log().len(), calls_before);
}
