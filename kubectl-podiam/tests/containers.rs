//! Every container of a pod is judged (sidecars included), `-c` narrows to one, and a
//! container the pod opts out of its webhook is named, not failed. Offline, through the binary.

use assert_cmd::Command;

const SA: &str = "apiVersion: v1
kind: ServiceAccount
metadata:
  name: s3-reader
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/my-pod-role
";

fn pod(annotations: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: web}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata:
      labels: {{app: web}}
      annotations: {{{annotations}}}
    spec:
      serviceAccountName: s3-reader
      initContainers:
        - {{name: migrate, image: busybox}}
        - {{name: proxy, image: envoy, restartPolicy: Always}}
      containers:
        - {{name: app, image: amazonlinux}}
        - {{name: logger, image: fluent-bit}}
"
    )
}

fn verify(manifest: &str, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pod.yaml");
    std::fs::write(&path, format!("{SA}---\n{manifest}")).unwrap();
    let out = Command::cargo_bin("kubectl-podiam")
        .unwrap()
        .env_remove("KUBECONFIG")
        .args(["verify", "-o", "json", "-f"])
        .arg(&path)
        .args(extra)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), report)
}

fn containers(report: &serde_json::Value) -> Vec<String> {
    report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["pod"]["container"].as_str().unwrap().to_string())
        .collect()
}

fn check<'a>(item: &'a serde_json::Value, id: &str) -> Option<&'a serde_json::Value> {
    item["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
}

#[test]
fn every_app_container_and_sidecar_is_judged_default_first() {
    let (code, report) = verify(&pod(""), &[]);
    assert_eq!(containers(&report), ["app", "logger", "proxy"]);
    for item in report["items"].as_array().unwrap() {
        assert_eq!(item["mechanism"], "aws-irsa", "{item}");
    }
    assert_eq!(code, Some(0), "{report}");
}

#[test]
fn c_narrows_to_one_container() {
    let (_, report) = verify(&pod(""), &["-c", "logger"]);
    assert_eq!(containers(&report), ["logger"]);
}

#[test]
fn an_opted_out_sidecar_is_named_not_failed() {
    let (code, report) = verify(&pod("eks.amazonaws.com/skip-containers: proxy"), &[]);
    assert_eq!(containers(&report), ["app", "logger"]);
    let first = &report["items"][0];
    let note = check(first, "k8s.container.not-judged").expect("a not-judged line");
    assert_ne!(note["status"], "fail");
    assert!(
        note["message"].as_str().unwrap().contains("proxy"),
        "{note}"
    );
    assert!(check(&report["items"][1], "k8s.container.not-judged").is_none());
    assert_eq!(code, Some(0), "{report}");
    // Named with -c it is judged, and its checks say why it gets no identity.
    let (code, report) = verify(
        &pod("eks.amazonaws.com/skip-containers: proxy"),
        &["-c", "proxy"],
    );
    assert_eq!(containers(&report), ["proxy"]);
    assert_eq!(
        check(&report["items"][0], "aws.irsa.container-skipped").unwrap()["status"],
        "fail"
    );
    assert_eq!(code, Some(1));
}
