//! The built plugin against the strict emulators (OIDC issuer + STS gate + moto), no cluster:
//! `verify -f examples/aws --token-file -` exactly as a user would run it offline. The gate's
//! enforcement is separate code from the plugin's diagnosis, so these compare the two.

use std::process::Output;

use assert_cmd::Command;
use podiam_e2e::emulators::{AwsEmulators, TokenSpec};
use podiam_e2e::setup::CloudSetup;
use serde_json::Value;

const SEED_ROLE: &str = "arn:aws:iam::123456789012:role/my-pod-role";

async fn emulators() -> AwsEmulators {
    AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start with the seed (needs python3 with venv and PyPI for moto)")
}

fn examples() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/aws")
}

/// Runs the plugin offline with the token on stdin. `operator` adds the operator's AWS
/// credentials (for trust-policy diagnosis).
fn verify(
    emulators: &AwsEmulators,
    manifests: &std::path::Path,
    token: &str,
    operator: bool,
    extra: &[&str],
) -> (Output, Value) {
    let mut cmd = Command::cargo_bin("kubectl-podiam").unwrap();
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", emulators.gate_url())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["verify", "-o", "json", "--token-file", "-", "-f"])
        .arg(manifests)
        .args(extra)
        .write_stdin(token.to_string());
    if operator {
        let (key, secret) = emulators.admin_credentials();
        cmd.env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret);
    }
    let out = cmd.output().unwrap();
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

fn manifests_with(dir: &tempfile::TempDir, annotations: &str) -> std::path::PathBuf {
    let file = dir.path().join("app.yaml");
    std::fs::write(
        &file,
        format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: s3-reader\n  namespace: default\n  annotations:\n{annotations}\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: s3-pod, namespace: default}}\nspec:\n  serviceAccountName: s3-reader\n  containers: [{{name: app, image: amazonlinux, command: [sleep, '3600']}}]\n"
        ),
    )
    .unwrap();
    file
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_flow_verifies_with_real_exchange_and_s3_access() {
    let emu = emulators().await;
    let token = emu
        .mint_token(&TokenSpec::new("default", "s3-reader"))
        .unwrap();
    let (out, report) = verify(
        &emu,
        &examples(),
        &token,
        false,
        &[
            "--expect-role",
            SEED_ROLE,
            "--can",
            "s3:ListBucket=my-bucket",
            "--can",
            "s3:GetObject=my-bucket/hello.txt",
            "--cannot",
            "s3:PutObject=my-bucket/x",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["items"][0]["mechanism"], "aws-irsa");
    assert_eq!(report["verdict"], "pass");
    let principal = report["items"][0]["identity"]["principal"]
        .as_str()
        .unwrap();
    assert!(
        principal.starts_with("arn:aws:sts::123456789012:assumed-role/my-pod-role/"),
        "{principal}"
    );
    assert_eq!(check(&report, "aws.access.cannot")["status"], "pass");
    assert!(
        check(&report, "aws.access.cannot")["message"]
            .as_str()
            .unwrap()
            .contains("AccessDenied")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn trust_policy_naming_another_namespace_is_pinpointed() {
    let emu = emulators().await;
    emu.apply(
        &CloudSetup::from_yaml(
            r#"
aws:
  roles:
    - name: other-ns-role
      trustPolicy:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: {Federated: "arn:aws:iam::${ACCOUNT_ID}:oidc-provider/${ISSUER_HOSTPATH}"}
            Action: sts:AssumeRoleWithWebIdentity
            Condition:
              StringEquals:
                "${ISSUER_HOSTPATH}:sub": system:serviceaccount:other:s3-reader
                "${ISSUER_HOSTPATH}:aud": sts.amazonaws.com
"#,
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifests = manifests_with(
        &dir,
        "    eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/other-ns-role",
    );
    let token = emu
        .mint_token(&TokenSpec::new("default", "s3-reader"))
        .unwrap();
    let (out, report) = verify(&emu, &manifests, &token, true, &[]);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    let sts = check(&report, "aws.sts.assume-role");
    assert_eq!(sts["status"], "fail");
    assert!(
        sts["message"].as_str().unwrap().contains("AccessDenied"),
        "{sts}"
    );
    let trust = check(&report, "aws.iam.trust-policy");
    assert_eq!(trust["status"], "fail");
    let message = trust["message"].as_str().unwrap();
    assert!(
        message.contains("system:serviceaccount:other:s3-reader")
            && message.contains("system:serviceaccount:default:s3-reader"),
        "{message}"
    );
}

/// Issue 11, item 4: the role is in account 111111111111, the operator's credentials are for
/// the emulators' account 123456789012, which holds a role of the same name trusting this token.
/// The diagnosis read that one (pass: "role my-pod-role trusts …"); now it reads nothing in the
/// wrong account and says which account and how to give credentials for it.
#[tokio::test(flavor = "multi_thread")]
async fn a_role_in_another_account_is_not_diagnosed_in_the_operators() {
    let emu = emulators().await;
    let dir = tempfile::tempdir().unwrap();
    let manifests = manifests_with(
        &dir,
        "    eks.amazonaws.com/role-arn: arn:aws:iam::111111111111:role/my-pod-role",
    );
    let token = emu
        .mint_token(&TokenSpec::new("default", "s3-reader"))
        .unwrap();
    let (out, report) = verify(&emu, &manifests, &token, true, &[]);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert!(
        check(&report, "aws.sts.assume-role")["message"]
            .as_str()
            .unwrap()
            .contains("AccessDenied")
    );
    let trust = check(&report, "aws.iam.trust-policy");
    assert_eq!(trust["status"], "skip", "{trust}");
    let message = trust["message"].as_str().unwrap();
    assert!(
        message.contains("account 111111111111") && message.contains("account 123456789012"),
        "{message}"
    );
    assert!(
        message.contains("role_arn = arn:aws:iam::111111111111:role/"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn audience_not_in_client_ids() {
    let emu = emulators().await;
    let dir = tempfile::tempdir().unwrap();
    let manifests = manifests_with(
        &dir,
        "    eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/my-pod-role\n    eks.amazonaws.com/audience: my-audience",
    );
    let mut spec = TokenSpec::new("default", "s3-reader");
    spec.audiences = vec!["my-audience".into()];
    let token = emu.mint_token(&spec).unwrap();
    let (out, report) = verify(&emu, &manifests, &token, true, &[]);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    let sts = check(&report, "aws.sts.assume-role")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(sts.contains("Incorrect token audience"), "{sts}");
    assert!(sts.contains("not a client id"), "{sts}");
    assert_eq!(check(&report, "aws.iam.oidc-provider")["status"], "fail");
}

#[tokio::test(flavor = "multi_thread")]
async fn unregistered_issuer() {
    let emu = emulators().await;
    let mut spec = TokenSpec::new("default", "s3-reader");
    spec.issuer = Some("https://oidc.unregistered.example/id/NOPE".into());
    let token = emu.mint_token(&spec).unwrap();
    let (out, report) = verify(&emu, &examples(), &token, true, &[]);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    let sts = check(&report, "aws.sts.assume-role")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        sts.contains("No OpenIDConnect provider found in your account for https://oidc.unregistered.example/id/NOPE"),
        "{sts}"
    );
    assert!(
        sts.contains("is not registered as an IAM OIDC provider"),
        "{sts}"
    );
    assert_eq!(check(&report, "aws.iam.oidc-provider")["status"], "fail");
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_and_tampered_tokens() {
    let emu = emulators().await;
    let mut expired = TokenSpec::new("default", "s3-reader");
    expired.expired = true;
    let token = emu.mint_token(&expired).unwrap();
    let (out, report) = verify(&emu, &examples(), &token, false, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(check(&report, "aws.token.claims")["status"], "fail");
    assert!(
        check(&report, "aws.sts.assume-role")["message"]
            .as_str()
            .unwrap()
            .contains("ExpiredTokenException")
    );

    let mut tampered = TokenSpec::new("default", "s3-reader");
    tampered.wrong_key = true;
    let token = emu.mint_token(&tampered).unwrap();
    let (out, report) = verify(&emu, &examples(), &token, false, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(check(&report, "aws.token.claims")["status"], "pass");
    assert!(
        check(&report, "aws.sts.assume-role")["message"]
            .as_str()
            .unwrap()
            .contains("InvalidIdentityToken")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_expectations_fail() {
    let emu = emulators().await;
    let token = emu
        .mint_token(&TokenSpec::new("default", "s3-reader"))
        .unwrap();
    let (out, report) = verify(
        &emu,
        &examples(),
        &token,
        false,
        &[
            "--expect-role",
            "arn:aws:iam::123456789012:role/admin",
            "--cannot",
            "s3:ListBucket=my-bucket",
            "--can",
            "s3:PutObject=my-bucket/x",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(check(&report, "aws.sts.expected-role")["status"], "fail");
    assert_eq!(check(&report, "aws.access.cannot")["status"], "fail");
    assert_eq!(check(&report, "aws.access.can")["status"], "fail");
}

#[test]
fn unreachable_sts_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    // A well-formed but unsigned token: the plugin must get as far as calling STS.
    std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6ZGVmYXVsdDpzMy1yZWFkZXIiLCJhdWQiOlsic3RzLmFtYXpvbmF3cy5jb20iXSwiZXhwIjo0MTAyNDQ0ODAwfQ.c2ln").unwrap();
    let out = Command::cargo_bin("kubectl-podiam")
        .unwrap()
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["verify", "-o", "json", "--request-timeout", "3s"])
        .args(["--aws-endpoint-url", "http://127.0.0.1:1", "--token-file"])
        .arg(&token)
        .arg("-f")
        .arg(examples())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(check(&report, "aws.sts.assume-role")["status"], "warn");
}
