//! Pods that cannot get different cloud answers share one exchange; pods that can never do.
//! The built plugin runs offline against the strict emulators with several subjects in one
//! file; the gate's request log counts the calls that actually reached AWS.

use assert_cmd::Command;
use podiam_e2e::emulators::{AwsEmulators, TokenSpec};
use serde_json::Value;

const MANIFESTS: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: s3-reader, namespace: default, annotations: {eks.amazonaws.com/role-arn: "arn:aws:iam::123456789012:role/my-pod-role"}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: other, namespace: default, annotations: {eks.amazonaws.com/role-arn: "arn:aws:iam::123456789012:role/other-role"}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      serviceAccountName: s3-reader
      containers: [{name: app, image: amazonlinux, command: [sleep, "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: s3-pod, namespace: default}
spec:
  serviceAccountName: s3-reader
  containers: [{name: app, image: amazonlinux, command: [sleep, "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: other-1, namespace: default}
spec:
  serviceAccountName: other
  containers: [{name: app, image: amazonlinux, command: [sleep, "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: other-2, namespace: default}
spec:
  serviceAccountName: other
  containers: [{name: app, image: amazonlinux, command: [sleep, "3600"]}]
"#;

fn item<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["pod"]["name"] == name)
        .unwrap_or_else(|| panic!("no item {name} in {report:#}"))
}

fn status<'a>(item: &'a Value, id: &str) -> &'a Value {
    &item["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {item:#}"))["status"]
}

#[tokio::test(flavor = "multi_thread")]
async fn same_role_and_claims_share_one_exchange_and_others_do_not() {
    let emu = AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start with the seed (needs python3 with venv and PyPI for moto)");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fleet.yaml");
    std::fs::write(&file, MANIFESTS).unwrap();
    // One token (for s3-reader) is exchanged for every subject, as `--token-file` does.
    let token = emu
        .mint_token(&TokenSpec::new("default", "s3-reader"))
        .unwrap();
    let before = emu.request_log().len();
    let (key, secret) = emu.admin_credentials();
    let out = Command::cargo_bin("kubectl-podiam")
        .unwrap()
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", emu.gate_url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .args(["verify", "-o", "json", "--token-file", "-", "-f"])
        .arg(&file)
        .args(["--can", "s3:ListBucket=my-bucket"])
        .write_stdin(token)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(1), "{report:#}");

    // The two s3-reader subjects pass, each with its own session name.
    for (name, session) in [("web", "podiam-web"), ("s3-pod", "podiam-s3-pod")] {
        let i = item(&report, name);
        assert_eq!(i["verdict"], "pass", "{i:#}");
        assert_eq!(
            i["identity"]["principal"],
            format!("arn:aws:sts::123456789012:assumed-role/my-pod-role/{session}")
        );
        assert_eq!(status(i, "aws.access.can"), "pass");
    }
    // The other role is a different question: refused, not merged with my-pod-role's answer;
    // its per-pod claims check still sees the token is not its ServiceAccount's.
    for name in ["other-1", "other-2"] {
        let i = item(&report, name);
        assert_eq!(i["verdict"], "fail", "{i:#}");
        assert_eq!(status(i, "aws.sts.assume-role"), "fail");
        assert_eq!(status(i, "aws.token.claims"), "fail");
        assert!(i["identity"].is_null(), "{i:#}");
    }

    // Attempts the SDK retried (a 5xx or throttling from a loaded moto, or the gate's JWKS fetch
    // timing out under load: IDPCommunicationError is retryable) are not extra questions.
    let retried = |outcome: &str| {
        outcome.starts_with('5')
            || [
                "Internal",
                "Throttl",
                "ServiceUnavailable",
                "RequestTimeout",
            ]
            .iter()
            .any(|code| outcome.contains(code))
    };
    let log: Vec<_> = emu
        .request_log()
        .into_iter()
        .skip(before)
        .filter(|e| !retried(&e.outcome))
        .collect();
    let count = |action: &str| log.iter().filter(|e| e.action == action).count();
    // One exchange per (role, claims): 2 for 4 subjects.
    assert_eq!(count("AssumeRoleWithWebIdentity"), 2, "{log:#?}");
    // Trust policy read once for other-role's two refused subjects.
    assert_eq!(count("GetRole"), 1, "{log:#?}");
    // One ListBucket for my-pod-role's two subjects.
    let list_bucket = log
        .iter()
        .filter(|e| e.method == "GET" && e.path.trim_end_matches('/') == "/my-bucket")
        .count();
    assert_eq!(list_bucket, 1, "{log:#?}");
}
