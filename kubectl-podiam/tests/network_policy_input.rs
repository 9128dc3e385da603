//! `verify -f` keeps NetworkPolicy and Namespace documents for the egress evaluator without
//! changing how the pods are judged; an invalid NetworkPolicy is an input error like any other.

use assert_cmd::Command;

fn podiam() -> Command {
    let mut cmd = Command::cargo_bin("kubectl-podiam").unwrap();
    cmd.env_remove("KUBECONFIG").env("NO_COLOR", "1");
    cmd
}

fn aws_example_with(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/aws");
    for entry in std::fs::read_dir(examples).unwrap().flatten() {
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    std::fs::write(dir.path().join("network.yaml"), extra).unwrap();
    dir
}

fn report(dir: &std::path::Path) -> (Option<i32>, serde_json::Value) {
    let out = podiam()
        .args(["verify", "-o", "json", "-f"])
        .arg(dir)
        .output()
        .unwrap();
    let value = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), value)
}

fn without_network_checks(mut report: serde_json::Value) -> serde_json::Value {
    for item in report["items"].as_array_mut().unwrap() {
        item["checks"]
            .as_array_mut()
            .unwrap()
            .retain(|c| !c["id"].as_str().unwrap().starts_with("k8s.network-policy."));
        // The verdict is theirs too (asserted above).
        item.as_object_mut().unwrap().remove("verdict");
    }
    report["items"].take()
}

#[test]
fn network_policies_in_the_input_do_not_change_the_pod_judgement() {
    let plain = aws_example_with("");
    let with_policies = aws_example_with(
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-egress}
spec: {podSelector: {}, policyTypes: [Egress]}
---
apiVersion: v1
kind: Namespace
metadata: {name: kube-system, labels: {team: platform}}
",
    );
    let (code, before) = report(plain.path());
    assert_eq!(code, Some(0), "{before}");
    let (code, after) = report(with_policies.path());
    // The default-deny egress policy blocks STS for the pod: the verdict fails on it alone.
    assert_eq!(code, Some(1), "{after}");
    let failing: Vec<&str> = after["items"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        failing,
        ["k8s.network-policy.egress", "k8s.network-policy.dns"],
        "{after}"
    );
    let egress = &after["items"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "k8s.network-policy.egress")
        .unwrap()["message"];
    assert!(
        egress
            .as_str()
            .unwrap()
            .contains("default/default-deny-egress")
            && egress.as_str().unwrap().contains("sts.amazonaws.com"),
        "{egress}"
    );
    // Everything but the NetworkPolicy checks themselves stays the same.
    assert_eq!(
        without_network_checks(before),
        without_network_checks(after)
    );
}

#[test]
fn an_invalid_network_policy_is_an_input_error() {
    let dir = aws_example_with(
        "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: bad}
spec: {egress: [{ports: [{endPort: many}]}]}
",
    );
    let out = podiam()
        .args(["verify", "-f"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("network.yaml: line 1: invalid NetworkPolicy"),
        "{stderr}"
    );
}
