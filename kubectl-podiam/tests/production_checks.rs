//! Production failures judged offline from the spec, through `verify -f` as a user runs it:
//! EKS Pod Identity where it cannot work (Fargate, Windows, hostNetwork) and a token mounted
//! with subPath (never rotated).

use assert_cmd::Command;

fn verify(manifest: &str) -> (Option<i32>, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pod.yaml");
    std::fs::write(&path, manifest).unwrap();
    let out = Command::cargo_bin("kubectl-podiam")
        .unwrap()
        .env_remove("KUBECONFIG")
        .args(["verify", "-o", "json", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    (out.status.code(), report)
}

fn check(report: &serde_json::Value, id: &str) -> serde_json::Value {
    report["items"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

/// A Pod Identity pod as the webhook left it (a dump: it has a uid), with `extra` spec lines.
fn pod_identity_pod(extra: &str) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: pi-pod
  namespace: default
  uid: 0b6f0f6e-1111-2222-3333-444455556666
spec:
  serviceAccountName: app
{extra}
  containers:
    - name: app
      image: amazonlinux
      env:
        - {{name: AWS_CONTAINER_CREDENTIALS_FULL_URI, value: 'http://169.254.170.23/v1/credentials'}}
        - {{name: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, value: /var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token}}
      volumeMounts:
        - {{name: eks-pod-identity-token, mountPath: /var/run/secrets/pods.eks.amazonaws.com/serviceaccount, readOnly: true}}
  volumes:
    - name: eks-pod-identity-token
      projected:
        sources:
          - serviceAccountToken: {{audience: pods.eks.amazonaws.com, expirationSeconds: 86400, path: eks-pod-identity-token}}
"
    )
}

#[test]
fn pod_identity_on_fargate_or_windows_fails_with_a_fix() {
    let (code, report) = verify(&pod_identity_pod(
        "  nodeSelector: {eks.amazonaws.com/compute-type: fargate}",
    ));
    assert_eq!(report["items"][0]["mechanism"], "aws-pod-identity");
    let c = check(&report, "aws.pod-identity.compute");
    assert_eq!(c["status"], "fail", "{report}");
    assert!(c["message"].as_str().unwrap().contains("Fargate"), "{c}");
    assert!(c["remediation"].as_str().unwrap().contains("IRSA"), "{c}");
    assert_eq!(code, Some(1));

    let (_, report) = verify(&pod_identity_pod(
        "  nodeSelector: {kubernetes.io/os: windows}",
    ));
    let c = check(&report, "aws.pod-identity.compute");
    assert_eq!(c["status"], "fail", "{report}");
    assert!(c["message"].as_str().unwrap().contains("Windows"), "{c}");
}

#[test]
fn pod_identity_with_host_network_warns() {
    let (_, report) = verify(&pod_identity_pod("  hostNetwork: true"));
    assert_eq!(
        check(&report, "aws.pod-identity.host-network")["status"],
        "warn",
        "{report}"
    );
    // An ordinary pod has neither finding.
    let (_, report) = verify(&pod_identity_pod(""));
    assert!(check(&report, "aws.pod-identity.compute").is_null());
    assert!(check(&report, "aws.pod-identity.host-network").is_null());
}

#[test]
fn a_token_mounted_with_sub_path_fails() {
    let manifest = pod_identity_pod("").replace(
        "{name: eks-pod-identity-token, mountPath: /var/run/secrets/pods.eks.amazonaws.com/serviceaccount, readOnly: true}",
        "{name: eks-pod-identity-token, mountPath: /var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token, subPath: eks-pod-identity-token}",
    );
    let (code, report) = verify(&manifest);
    let c = check(&report, "k8s.token.sub-path");
    assert_eq!(c["status"], "fail", "{report}");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
        "{c}"
    );
    assert_eq!(code, Some(1));
    let (_, report) = verify(&pod_identity_pod(""));
    assert!(check(&report, "k8s.token.sub-path").is_null(), "{report}");
}
