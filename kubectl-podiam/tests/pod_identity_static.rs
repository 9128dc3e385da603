//! Static EKS Pod Identity checks and detection order, judged offline as `verify -f` does.

use std::path::Path;

use podiam::evidence::Probe;
use podiam::judge::judge;
use podiam::manifest::{documents, subjects};
use podiam::model::{MechanismId, ReportItem, Status, Verdict};
use podiam::options::VerifyOptions;

const IRSA_SA: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata:
  name: s3-reader
  namespace: default
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/irsa-role
---
"#;

/// A live-pod dump as the webhook leaves it for a ServiceAccount with an association.
fn pod(env: &str, volume_audience: &str, mount: bool) -> String {
    let mount = if mount {
        "      volumeMounts:\n        - name: eks-pod-identity-token\n          mountPath: /var/run/secrets/pods.eks.amazonaws.com/serviceaccount\n          readOnly: true\n"
    } else {
        ""
    };
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: s3-pod
  namespace: default
  uid: 0b0e6ad7-2f7e-4a8e-9a57-0c7d1b8f2a11
spec:
  serviceAccountName: s3-reader
  containers:
    - name: app
      image: amazonlinux
      env:
{env}
{mount}  volumes:
    - name: eks-pod-identity-token
      projected:
        sources:
          - serviceAccountToken:
              audience: {volume_audience}
              expirationSeconds: 86400
              path: eks-pod-identity-token
"#
    )
}

const PI_ENV: &str = "        - name: AWS_CONTAINER_CREDENTIALS_FULL_URI\n          value: http://169.254.170.23/v1/credentials\n        - name: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE\n          value: /var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token";
const IRSA_ENV: &str = "        - name: AWS_ROLE_ARN\n          value: arn:aws:iam::123456789012:role/irsa-role\n        - name: AWS_WEB_IDENTITY_TOKEN_FILE\n          value: /var/run/secrets/eks.amazonaws.com/serviceaccount/token";

fn one(yaml: &str) -> ReportItem {
    let docs = documents::parse(Path::new("test.yaml"), yaml).expect("fixture parses");
    let subjects = subjects::subjects(&docs, "default", None).expect("fixture has pods");
    assert_eq!(subjects.len(), 1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(judge(
        &subjects[0],
        &Probe::Offline { token: None },
        &VerifyOptions::default(),
    ))
}

fn check(item: &ReportItem, id: &str) -> (Status, String) {
    item.checks
        .iter()
        .find(|c| c.id == id)
        .map(|c| (c.status, c.message.clone()))
        .unwrap_or_else(|| panic!("no check {id} in {:#?}", item.checks))
}

#[test]
fn wired_pod_passes_static_checks() {
    let item = one(&pod(PI_ENV, "pods.eks.amazonaws.com", true));
    assert_eq!(item.mechanism, MechanismId::AwsPodIdentity);
    assert_eq!(check(&item, "aws.pod-identity.env").0, Status::Pass);
    assert_eq!(
        check(&item, "aws.pod-identity.token-volume").0,
        Status::Pass
    );
    // Offline without a token: no exchange, nothing failed, but the role lives in the
    // association: the identity is not established (incomplete, never a pass).
    assert_eq!(check(&item, "aws.pod-identity.exchange").0, Status::Skip);
    assert!(item.identity.is_none());
    assert_eq!(item.verdict, Verdict::Incomplete);
}

#[test]
fn wrong_audience_and_missing_mount_fail() {
    let item = one(&pod(PI_ENV, "sts.amazonaws.com", true));
    let (status, message) = check(&item, "aws.pod-identity.token-volume");
    assert_eq!(status, Status::Fail);
    assert!(message.contains("\"sts.amazonaws.com\""), "{message}");
    let item = one(&pod(PI_ENV, "pods.eks.amazonaws.com", false));
    let (status, message) = check(&item, "aws.pod-identity.token-volume");
    assert_eq!(status, Status::Fail);
    assert!(message.contains("does not mount"), "{message}");
}

#[test]
fn skipped_container_lacks_the_env() {
    let item = one(&pod(
        "        - name: OTHER\n          value: x",
        "pods.eks.amazonaws.com",
        true,
    ));
    assert_eq!(item.mechanism, MechanismId::AwsPodIdentity);
    let (status, message) = check(&item, "aws.pod-identity.env");
    assert_eq!(status, Status::Fail);
    assert!(
        message.contains(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"
        ),
        "{message}"
    );
}

#[test]
fn full_uri_problems() {
    let off_port = PI_ENV.replace("169.254.170.23/", "169.254.170.23:8080/");
    let item = one(&pod(&off_port, "pods.eks.amazonaws.com", true));
    assert_eq!(check(&item, "aws.pod-identity.env").0, Status::Warn);
    let relative = format!(
        "{PI_ENV}\n        - name: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI\n          value: /v2/credentials/x"
    );
    let item = one(&pod(&relative, "pods.eks.amazonaws.com", true));
    let (status, message) = check(&item, "aws.pod-identity.env");
    assert_eq!(status, Status::Fail);
    assert!(message.contains("RELATIVE_URI"), "{message}");
}

#[test]
fn association_won_over_the_irsa_annotation() {
    // The webhook injected Pod Identity only: the SDK uses it, the IRSA annotation is idle.
    let item = one(&format!(
        "{IRSA_SA}{}",
        pod(PI_ENV, "pods.eks.amazonaws.com", true)
    ));
    assert_eq!(item.mechanism, MechanismId::AwsPodIdentity);
    let (status, message) = check(&item, "aws.precedence");
    assert_eq!(status, Status::Pass);
    assert!(message.contains("the SDK uses Pod Identity"), "{message}");
}

#[test]
fn both_wired_is_judged_as_irsa_with_a_precedence_warning() {
    let env = format!("{PI_ENV}\n{IRSA_ENV}");
    let item = one(&format!(
        "{IRSA_SA}{}",
        pod(&env, "pods.eks.amazonaws.com", true)
    ));
    assert_eq!(item.mechanism, MechanismId::AwsIrsa);
    let (status, message) = check(&item, "aws.precedence");
    assert_eq!(status, Status::Warn);
    assert!(
        message.contains("tries web identity before container credentials"),
        "{message}"
    );
}
