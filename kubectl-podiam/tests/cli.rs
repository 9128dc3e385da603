//! The binary as a user runs it: exit codes, bad input, help, and human output snapshots.

use assert_cmd::Command;
use predicates::prelude::*;

fn podiam() -> Command {
    let mut cmd = Command::cargo_bin("kubectl-podiam").unwrap();
    cmd.env_remove("KUBECONFIG").env("NO_COLOR", "1");
    cmd
}

fn examples() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/aws")
}

#[test]
fn seed_example_verifies_offline_as_json() {
    let out = podiam()
        .args(["verify", "-o", "json", "-f"])
        .arg(examples())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["apiVersion"], "podiam.dev/v1alpha1");
    assert_eq!(report["kind"], "VerifyReport");
    assert_eq!(report["items"][0]["mechanism"], "aws-irsa");
    assert_eq!(report["items"][0]["verdict"], "pass");
    assert_eq!(report["items"][0]["pod"]["name"], "s3-pod");
}

#[test]
fn seed_example_text_output() {
    let out = podiam()
        .args(["verify", "-f"])
        .arg(examples())
        .output()
        .unwrap();
    insta::assert_snapshot!(String::from_utf8(out.stdout).unwrap());
}

/// The seed example with its ServiceAccount bound to cluster-admin and to a cluster-wide
/// secrets reader: RBAC warnings in the text report, the verdict and exit code unchanged.
#[test]
fn rbac_warnings_text_output() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["pod.yaml", "serviceaccount.yaml"] {
        std::fs::copy(examples().join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(
        dir.path().join("rbac.yaml"),
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: s3-reader-admin}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: ServiceAccount, name: s3-reader, namespace: default}]\n",
    )
    .unwrap();
    let out = podiam()
        .args(["verify", "-f"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "warnings keep exit code 0");
    insta::assert_snapshot!(String::from_utf8(out.stdout).unwrap());
}

#[test]
fn failing_manifest_exits_1_with_cause_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("unmutated.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: s3-reader, namespace: default, annotations: {eks.amazonaws.com/role-arn: 'arn:aws:iam::123456789012:role/my-pod-role'}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: s3-pod, namespace: default, uid: u1}\nspec:\n  serviceAccountName: s3-reader\n  containers: [{name: app, image: amazonlinux}]\nstatus: {phase: Running}\n",
    )
    .unwrap();
    let out = podiam().args(["verify", "-f"]).arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    insta::assert_snapshot!(text);
    let junit = podiam()
        .args(["verify", "-o", "junit", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    let xml = String::from_utf8(junit.stdout).unwrap();
    assert!(
        xml.contains("<testsuite name=\"podiam verify\" tests=\"1\""),
        "{xml}"
    );
    assert!(xml.contains("aws.irsa.pod-mutated"), "{xml}");
}

#[test]
fn yaml_output_is_the_same_document() {
    let out = podiam()
        .args(["verify", "-o", "yaml", "-f"])
        .arg(examples())
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("apiVersion: podiam.dev/v1alpha1"), "{text}");
    assert!(text.contains("mechanism: aws-irsa"), "{text}");
}

#[test]
fn malformed_yaml_exits_2_with_file_and_line_and_no_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n",
    )
    .unwrap();
    podiam()
        .args(["verify", "-f"])
        .arg(&file)
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("broken.yaml").and(predicate::str::contains("line")));
}

#[test]
fn garbage_from_stdin_exits_2() {
    podiam()
        .args(["verify", "-f", "-"])
        .write_stdin("\u{0}\u{1}not yaml: [")
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty());
}

#[test]
fn manifest_without_pods_exits_2() {
    podiam()
        .args(["verify", "-f", "-"])
        .write_stdin("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no Pod or workload"));
}

#[test]
fn missing_file_exits_2() {
    podiam()
        .args(["verify", "-f", "/nonexistent/podiam.yaml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/podiam.yaml"));
}

#[test]
fn garbage_token_file_fails_the_claims_check() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "this-is-not-a-jwt").unwrap();
    let out = podiam()
        .args(["verify", "-o", "json", "--token-file"])
        .arg(&token)
        .arg("-f")
        .arg(examples())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = report["items"][0]["checks"].as_array().unwrap();
    let claims = checks
        .iter()
        .find(|c| c["id"] == "aws.token.claims")
        .unwrap();
    assert_eq!(claims["status"], "fail");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("this-is-not-a-jwt"));
}

#[test]
fn bad_expectation_is_a_usage_error() {
    podiam()
        .args(["verify", "--can", "s3:ListBucket", "-f"])
        .arg(examples())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("ACTION=RESOURCE"));
}

#[test]
fn verify_target_flags_are_exclusive() {
    // POD names one pod; -A/-l select many; -f is offline: they do not mix.
    for args in [
        &["verify", "s3-pod", "-A"][..],
        &["verify", "s3-pod", "-l", "app=web"],
        &["verify", "-A", "-f", "x.yaml"],
        &["verify", "-l", "app=web", "-f", "x.yaml"],
        &["verify", "-A", "--concurrency", "0"],
    ] {
        podiam().args(args).assert().code(2);
    }
}

#[test]
fn verify_without_a_pod_lists_the_namespace() {
    // No POD and no -f: every pod of the namespace, so the cluster is needed (exit 3 here).
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\nusers: [{name: u, user: {token: placeholder}}]\ncontexts: [{name: x, context: {cluster: c, user: u, namespace: default}}]\ncurrent-context: x\n",
    )
    .unwrap();
    podiam()
        .args(["verify", "--request-timeout", "5s", "--kubeconfig"])
        .arg(&kubeconfig)
        .assert()
        .code(3)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("list pods"));
}

#[test]
fn unreachable_cluster_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\nusers: [{name: u, user: {token: placeholder}}]\ncontexts: [{name: x, context: {cluster: c, user: u, namespace: default}}]\ncurrent-context: x\n",
    )
    .unwrap();
    podiam()
        .args([
            "verify",
            "s3-pod",
            "--request-timeout",
            "5s",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .assert()
        .code(3)
        .stdout(predicate::str::is_empty())
        // Issue 13: names the server, the context and the cause, as kubectl does — not only
        // "ServiceError: client error (Connect)".
        .stderr(predicate::str::contains("https://127.0.0.1:1"))
        .stderr(predicate::str::contains("context x"))
        .stderr(predicate::str::contains("onnection refused"));
}

#[test]
fn help_reads_as_a_kubectl_plugin() {
    let out = podiam().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!(String::from_utf8(out.stdout).unwrap());
}

#[test]
fn completion_and_version() {
    podiam()
        .args(["completion", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("kubectl-podiam"));
    podiam()
        .arg("version")
        .assert()
        .success()
        .stdout(predicate::str::starts_with("kubectl-podiam "));
}

#[test]
fn bind_help_snapshot() {
    let out = podiam().args(["bind", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    insta::assert_snapshot!(String::from_utf8(out.stdout).unwrap());
}

#[test]
fn bind_usage_errors_exit_2_before_touching_anything() {
    // No identity flag.
    podiam().args(["bind", "s3-reader"]).assert().code(2);
    // Flags that belong to --aws-role.
    podiam()
        .args(["bind", "s3-reader", "--create-role"])
        .assert()
        .code(2);
    // An unknown --dry-run value.
    podiam()
        .args(["bind", "s3-reader", "--aws-role", "r", "--dry-run=maybe"])
        .assert()
        .code(2);
    // Flags that belong to --gcp-sa, and one identity at a time.
    podiam()
        .args(["bind", "ksa", "--gcp-project", "my-project"])
        .assert()
        .code(2);
    podiam()
        .args(["bind", "ksa", "--aws-role", "r", "--gcp-sa"])
        .arg("gsa@my-project.iam.gserviceaccount.com")
        .assert()
        .code(2);
    // Not a GSA email; a default (node) account is refused (exit 1), both before any cluster call.
    podiam()
        .args(["bind", "ksa", "--gcp-sa", "someone@example.com"])
        .args(["--kubeconfig", "/nonexistent/kubeconfig"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("iam.gserviceaccount.com"));
    podiam()
        .args(["bind", "ksa", "--gcp-sa"])
        .arg("1234567890-compute@developer.gserviceaccount.com")
        .args(["--kubeconfig", "/nonexistent/kubeconfig"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "gcloud iam service-accounts create",
        ));
    // JUnit is verify's format.
    podiam()
        .args(["bind", "s3-reader", "--aws-role", "r", "-o", "junit"])
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty());
    // One identity at a time; Azure-only flags need --azure-client-id.
    podiam()
        .args([
            "bind",
            "sa",
            "--aws-role",
            "r",
            "--azure-client-id",
            AZ_CLIENT,
        ])
        .assert()
        .code(2);
    podiam()
        .args(["bind", "sa", "--aws-role", "r", "--label-workloads"])
        .assert()
        .code(2);
    podiam()
        .args([
            "bind",
            "sa",
            "--azure-client-id",
            AZ_CLIENT,
            "--create-role",
        ])
        .assert()
        .code(2);
    // The seed's placeholder client id is no GUID: refused before any cluster or cloud call
    // (no kubeconfig is reachable here, which would be exit 3).
    podiam()
        .args([
            "bind",
            "sa",
            "--azure-client-id",
            "aks-pod-identity-client-id",
        ])
        .args(["--kubeconfig", "/nonexistent/kubeconfig"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a GUID"));
    // --pod-identity is a kind of --aws-role binding, and has no audience.
    podiam()
        .args(["bind", "s3-reader", "--pod-identity"])
        .assert()
        .code(2);
    podiam()
        .args(["bind", "s3-reader", "--pod-identity", "--aws-role", "r"])
        .args(["--audience", "sts.amazonaws.com"])
        .assert()
        .code(2);
}

#[test]
fn bind_pod_identity_without_a_cluster_name_is_a_usage_error() {
    // A kubeconfig whose context names no EKS cluster, and no flag or env naming one.
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\nusers: [{name: u, user: {token: placeholder}}]\ncontexts: [{name: kind-kind, context: {cluster: c, user: u, namespace: default}}]\ncurrent-context: kind-kind\n",
    )
    .unwrap();
    podiam()
        .env_remove("PODIAM_EKS_CLUSTER_NAME")
        .args(["bind", "s3-reader", "--pod-identity", "--aws-role", "r"])
        .args(["--dry-run=client", "--kubeconfig"])
        .arg(&kubeconfig)
        .assert()
        .code(2)
        .stdout(predicate::str::is_empty())
        .stderr(predicate::str::contains("--eks-cluster-name"));
}

const AZ_CLIENT: &str = "11111111-2222-3333-4444-555555555555";

#[test]
fn bind_against_an_unreachable_cluster_exits_3_and_prints_no_plan() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\nusers: [{name: u, user: {token: placeholder}}]\ncontexts: [{name: x, context: {cluster: c, user: u, namespace: default}}]\ncurrent-context: x\n",
    )
    .unwrap();
    podiam()
        .args([
            "bind",
            "s3-reader",
            "--aws-role",
            "my-pod-role",
            "--dry-run=client",
        ])
        .args(["--request-timeout", "5s", "--kubeconfig"])
        .arg(&kubeconfig)
        .assert()
        .code(3)
        .stdout(predicate::str::is_empty());
}

fn azure_examples() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/azure")
}

#[test]
fn azure_example_verifies_offline() {
    let out = podiam()
        .args(["verify", "-o", "json", "-f"])
        .arg(azure_examples())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["items"][0]["mechanism"], "azure-workload-identity");
    assert_eq!(report["items"][0]["pod"]["name"], "azure-pod");
    assert_eq!(report["items"][0]["serviceAccount"], "aks-service-account");
    assert_eq!(report["items"][0]["verdict"], "pass");
}

/// The examples with the seed's original values put back: no pod label, a non-GUID client id.
fn azure_seed_as_written(dir: &tempfile::TempDir) -> std::path::PathBuf {
    for name in ["serviceaccount.yaml", "pod.yaml"] {
        let text = std::fs::read_to_string(azure_examples().join(name)).unwrap();
        let seeded = text
            .replace(
                "\"11111111-2222-3333-4444-555555555555\"",
                "\"aks-pod-identity-client-id\"",
            )
            .replace("  labels:\n    azure.workload.identity/use: \"true\"\n", "");
        assert_ne!(
            text, seeded,
            "{name} no longer carries the corrected values"
        );
        std::fs::write(dir.path().join(name), seeded).unwrap();
    }
    dir.path().to_path_buf()
}

#[test]
fn azure_seed_as_written_fails_with_cause_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = azure_seed_as_written(&dir);
    let out = podiam()
        .args(["verify", "-o", "json", "-f"])
        .arg(&manifests)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut failed: Vec<&str> = report["items"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    failed.sort();
    assert_eq!(
        failed,
        vec![
            "azure.wi.client-id",
            "azure.wi.pod-label",
            "azure.wi.pod-mutated"
        ]
    );
    let text = podiam()
        .args(["verify", "-f"])
        .arg(&manifests)
        .output()
        .unwrap();
    insta::assert_snapshot!(String::from_utf8(text.stdout).unwrap());
}

fn code_and_report(args: &[&str], path: &std::path::Path) -> (Option<i32>, serde_json::Value) {
    let out = podiam()
        .args(["verify", "-o", "json"])
        .args(args)
        .arg("-f")
        .arg(path)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), report)
}

fn checks_with_id<'a>(report: &'a serde_json::Value, id: &str) -> Vec<&'a serde_json::Value> {
    report["items"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == id)
        .collect()
}

/// Issue 11: `--expect-role` offline used to vanish (exit 0, no check); it is judged against
/// the configuration.
#[test]
fn expect_role_offline_is_judged_from_the_configuration() {
    let (code, report) = code_and_report(
        &["--expect-role", "arn:aws:iam::111111111111:role/wrong"],
        &examples(),
    );
    assert_eq!(code, Some(1), "{report:#}");
    let role = checks_with_id(&report, "aws.sts.expected-role");
    assert_eq!(role.len(), 1, "{report:#}");
    assert_eq!(role[0]["status"], "fail");
    assert!(
        role[0]["message"]
            .as_str()
            .unwrap()
            .contains("my-pod-role (from the configuration, not exchanged)"),
        "{}",
        role[0]["message"]
    );
    let (code, report) = code_and_report(
        &[
            "--expect-role",
            "arn:aws:iam::123456789012:role/my-pod-role",
        ],
        &examples(),
    );
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(
        checks_with_id(&report, "aws.sts.expected-role")[0]["status"],
        "pass"
    );
}

/// `--can/--cannot` offline are skips that say why; a skipped expectation is exit 4 unless
/// `--allow-skip`.
#[test]
fn skipped_expectations_are_incomplete_unless_allowed() {
    let args = ["--can", "s3:ListBucket=b", "--cannot", "s3:PutObject=b/k"];
    let (code, report) = code_and_report(&args, &examples());
    assert_eq!(code, Some(4), "{report:#}");
    assert_eq!(report["verdict"], "incomplete");
    assert_eq!(report["items"][0]["verdict"], "incomplete");
    for id in ["aws.access.can", "aws.access.cannot"] {
        let c = checks_with_id(&report, id);
        assert_eq!(c.len(), 1, "{id}: {report:#}");
        assert_eq!(c[0]["status"], "skip");
        assert!(c[0]["message"].as_str().unwrap().contains("offline"));
    }
    let mut allowed = args.to_vec();
    allowed.push("--allow-skip");
    let (code, report) = code_and_report(&allowed, &examples());
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["items"][0]["verdict"], "pass");
}

/// EKS Pod Identity offline: the association (and so the identity) is unknown: incomplete,
/// never exit 0, even with --allow-skip.
#[test]
fn pod_identity_offline_is_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pi.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: s3-reader, namespace: default}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: s3-pod, namespace: default, uid: u1}\nspec:\n  serviceAccountName: s3-reader\n  containers:\n    - name: app\n      image: amazonlinux\n      env:\n        - {name: AWS_CONTAINER_CREDENTIALS_FULL_URI, value: 'http://169.254.170.23/v1/credentials'}\n        - {name: AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, value: /var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token}\n      volumeMounts: [{name: eks-pod-identity-token, mountPath: /var/run/secrets/pods.eks.amazonaws.com/serviceaccount, readOnly: true}]\n  volumes:\n    - name: eks-pod-identity-token\n      projected: {sources: [{serviceAccountToken: {audience: pods.eks.amazonaws.com, expirationSeconds: 86400, path: eks-pod-identity-token}}]}\nstatus: {phase: Running}\n",
    )
    .unwrap();
    let (code, report) = code_and_report(
        &[
            "--allow-skip",
            "--expect-role",
            "arn:aws:iam::123456789012:role/r",
        ],
        &file,
    );
    assert_eq!(code, Some(4), "{report:#}");
    let item = &report["items"][0];
    assert_eq!(item["mechanism"], "aws-pod-identity", "{report:#}");
    assert!(item["identity"].is_null());
    assert_eq!(item["verdict"], "incomplete");
    let role = checks_with_id(&report, "aws.sts.expected-role");
    assert_eq!(role[0]["status"], "skip", "{report:#}");
    assert!(
        role[0]["message"].as_str().unwrap().contains("association"),
        "{}",
        role[0]["message"]
    );
}

/// `info` checks are in JSON always, in text only with -v.
#[test]
fn info_checks_show_in_text_only_with_verbose() {
    let quiet = podiam()
        .args(["verify", "-f"])
        .arg(examples())
        .output()
        .unwrap();
    let quiet = String::from_utf8(quiet.stdout).unwrap();
    assert!(!quiet.contains("k8s.token.automount"), "{quiet}");
    let verbose = podiam()
        .args(["verify", "-v", "-f"])
        .arg(examples())
        .output()
        .unwrap();
    let verbose = String::from_utf8(verbose.stdout).unwrap();
    assert!(verbose.contains("INFO  k8s.token.automount"), "{verbose}");
    let (code, report) = code_and_report(&[], &examples());
    assert_eq!(code, Some(0));
    assert_eq!(
        checks_with_id(&report, "k8s.token.automount")[0]["status"],
        "info"
    );
}

/// Review of issue 11: `--expect-role` that is not a role ARN used to "match" any unparsable
/// role; it is a usage error now (exit 2), and nothing is judged.
#[test]
fn expect_role_that_is_not_a_role_arn_is_a_usage_error() {
    let out = podiam()
        .args(["verify", "-o", "json", "--expect-role", "my-pod-role", "-f"])
        .arg(examples())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("expected an IAM role ARN"), "{stderr}");
}

/// Review of issue 11: `--can` on a cloud the pod has no identity on fails from the
/// configuration (it cannot be allowed), `--cannot` holds; neither is a skip `--allow-skip`
/// would accept.
#[test]
fn access_on_another_cloud_is_decided_by_the_configuration() {
    let (code, report) = code_and_report(
        &[
            "--can",
            "gcs:list=my-bucket",
            "--cannot",
            "blob:list=acct/cont",
            "--allow-skip",
        ],
        &examples(),
    );
    assert_eq!(code, Some(1), "{report:#}");
    let can = checks_with_id(&report, "gcp.access.can");
    assert!(!can.is_empty(), "{report:#}");
    assert!(can.iter().all(|c| c["status"] == "fail"), "{report:#}");
    let cannot = checks_with_id(&report, "azure.access.cannot");
    assert!(!cannot.is_empty(), "{report:#}");
    assert!(cannot.iter().all(|c| c["status"] == "pass"), "{report:#}");
}

// Bad input (docs/bad-input.md): each class is refused with exit 2 (3 for the cluster), a
// message naming what failed and where, and nothing on stdout.

fn assert_refused(out: &std::process::Output, code: i32, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "a report was printed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "no {needle:?} in: {stderr}");
    }
    stderr
}

fn verify_file(name: &str, bytes: &[u8], needles: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, bytes).unwrap();
    let out = podiam().args(["verify", "-f"]).arg(&file).output().unwrap();
    assert_refused(&out, 2, needles)
}

/// A file cut short: inside a JSON object, inside a quoted YAML scalar, and at a clean YAML
/// boundary (valid YAML, but the Pod lost its containers). Each names the file and the line.
#[test]
fn truncated_manifests_exit_2_with_file_and_line() {
    verify_file(
        "cut.json",
        br#"{"apiVersion": "v1", "kind": "Pod",
 "metadata": {"name": "p"},
 "spec": {"containers": [{"name": "a", "#,
        &["cut.json: line 3 column", "EOF"],
    );
    verify_file(
        "cut-quoted.yaml",
        b"apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: s3-reader}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: app\n    image: \"amazonli",
        &["cut-quoted.yaml: invalid YAML", "line 11"],
    );
    verify_file(
        "cut-clean.yaml",
        b"apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: s3-reader}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n",
        &["cut-clean.yaml: line 5: Pod p has no containers"],
    );
}

/// Not Kubernetes objects at all (a Helm values file), and an object of the right kind whose
/// fields have the wrong type: the file, the line and what was expected.
#[test]
fn wrong_kind_or_shape_exits_2_with_file_and_line() {
    verify_file(
        "values.yaml",
        b"replicaCount: 2\nimage: {repository: nginx}\n",
        &["values.yaml: line 1: not a Kubernetes object"],
    );
    verify_file(
        "shape.yaml",
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: app}\n",
        &["shape.yaml: line 5: invalid Pod", "invalid type"],
    );
}

/// Latin-1 bytes are not UTF-8: the file, line and column of the first such byte, no panic.
/// Random bytes on stdin likewise. UTF-16 with a byte-order mark (PowerShell's `>`) is read,
/// as kubectl reads it.
#[test]
fn non_utf8_manifests_are_an_input_error_naming_line_and_column() {
    verify_file(
        "latin1.yaml",
        b"apiVersion: v1\nkind: Pod\nmetadata:\n  name: caf\xe9\nspec: {containers: [{name: a, image: i}]}\n",
        &["latin1.yaml: line 4 column 12: not UTF-8 text (byte 0xE9)"],
    );
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let out = podiam()
        .args(["verify", "-f", "-"])
        .write_stdin(bytes)
        .output()
        .unwrap();
    assert_refused(&out, 2, &["-: line"]);

    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(examples().join("serviceaccount.yaml")).unwrap()
        + "---\n"
        + &std::fs::read_to_string(examples().join("pod.yaml")).unwrap();
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let file = dir.path().join("powershell.yaml");
    std::fs::write(&file, utf16).unwrap();
    let (code, report) = code_and_report(&[], &file);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["items"][0]["pod"]["name"], "s3-pod");
    assert_eq!(report["items"][0]["verdict"], "pass");
}

/// A manifest larger than the limit is refused from its size, before a byte is read: an
/// 8 GiB sparse file takes no disk and no time, and would take 8 GiB of memory if read.
#[test]
fn huge_manifest_file_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("huge.yaml");
    std::fs::File::create(&file)
        .unwrap()
        .set_len(8 << 30)
        .unwrap();
    let out = podiam().args(["verify", "-f"]).arg(&file).output().unwrap();
    assert_refused(&out, 2, &["huge.yaml: the input is larger than the 64 MiB"]);
    // In a directory too, where the limit is for all files together.
    let out = podiam()
        .args(["verify", "-f"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_refused(&out, 2, &["huge.yaml: the input is larger than the 64 MiB"]);
}

/// An endless stream on stdin (`-f -`, `--token-file -`) is read only to the limit: the plugin
/// stops, and the writer's next write fails. Counted here: what the plugin took before that.
fn bytes_taken_from_endless_stdin(args: &[&str]) -> (u64, std::process::Output) {
    use std::io::Write;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("kubectl-podiam"))
        .args(args)
        .env_remove("KUBECONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let chunk = [b"# an endless manifest\n".as_slice(); 2978].concat();
        let mut written = 0u64;
        // 16 GiB at most, so a plugin that read without bound fails this test, not the host.
        while written < 16 << 30 {
            match stdin.write(&chunk) {
                Ok(n) => written += n as u64,
                Err(_) => break,
            }
        }
        written
    });
    let out = child.wait_with_output().unwrap();
    (writer.join().unwrap(), out)
}

#[test]
fn endless_stdin_is_refused_at_the_limit() {
    let (written, out) = bytes_taken_from_endless_stdin(&["verify", "-f", "-"]);
    assert_refused(&out, 2, &["-: the input is larger than the 64 MiB"]);
    let limit = podiam::manifest::documents::MAX_INPUT_BYTES;
    // Past the limit by at most what a pipe and one write hold.
    assert!(
        written > limit && written < limit + (4 << 20),
        "{written} bytes written"
    );
}

#[test]
fn endless_token_on_stdin_is_bounded() {
    let examples = examples();
    let (written, out) = bytes_taken_from_endless_stdin(&[
        "verify",
        "-o",
        "json",
        "--token-file",
        "-",
        "-f",
        examples.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let claims = checks_with_id(&report, "aws.token.claims");
    assert_eq!(claims[0]["status"], "fail", "{report:#}");
    assert!(written < 8 << 20, "{written} bytes written");
}

/// A misspelt field is warned about with the file, line, object and kubectl's path of the
/// field; the object is judged without it (podiam changes nothing, so it does not refuse).
#[test]
fn unknown_fields_are_warned_with_file_line_and_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        examples().join("serviceaccount.yaml"),
        dir.path().join("serviceaccount.yaml"),
    )
    .unwrap();
    let pod = std::fs::read_to_string(examples().join("pod.yaml"))
        .unwrap()
        .replace(
            "      image: amazonlinux\n",
            "      image: amazonlinux\n      imagePullPolice: Always\n",
        );
    std::fs::write(dir.path().join("pod.yaml"), pod).unwrap();
    let out = podiam()
        .args(["verify", "-o", "json", "-f"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "pod.yaml: line 1: Pod default/s3-pod: unknown field \"spec.containers[0].imagePullPolice\""
        ),
        "{stderr}"
    );
    assert_eq!(stderr.matches("unknown field").count(), 1, "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["items"][0]["verdict"], "pass");
}

/// A kubeconfig with contexts `ci` (current) and `other`, both of user `deployer` whose
/// credentials are `user` (a YAML flow mapping, e.g. `{token: t}`).
fn kubeconfig_at(
    dir: &std::path::Path,
    server: &str,
    ca_pem: Option<&str>,
    user: &str,
) -> std::path::PathBuf {
    use base64::Engine;
    let ca = ca_pem.map_or(String::new(), |pem| {
        format!(
            ", certificate-authority-data: {}",
            base64::engine::general_purpose::STANDARD.encode(pem)
        )
    });
    let path = dir.join("config");
    std::fs::write(
        &path,
        format!("apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: '{server}'{ca}}}}}]\nusers: [{{name: deployer, user: {user}}}]\ncontexts: [{{name: ci, context: {{cluster: c, user: deployer, namespace: default}}}}, {{name: other, context: {{cluster: c, user: deployer}}}}]\ncurrent-context: ci\n"),
    )
    .unwrap();
    path
}

/// `--context`, `--cluster` or `--user` naming what the kubeconfig lacks is a usage error
/// naming the name, the kubeconfig and what it holds; no cluster is called.
#[test]
fn wrong_context_names_the_context_and_the_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kubeconfig_at(
        dir.path(),
        "https://127.0.0.1:1",
        None,
        "{token: placeholder}",
    );
    let shown = kubeconfig.display().to_string();
    for (flag, name, what) in [
        ("--context", "prod", "context \"prod\" does not exist in"),
        (
            "--cluster",
            "gone",
            "cluster \"gone\" (of context \"ci\") does not exist in",
        ),
        (
            "--user",
            "admin",
            "user \"admin\" (of context \"ci\") does not exist in",
        ),
    ] {
        let out = podiam()
            .args(["verify", "s3-pod", flag, name, "--kubeconfig"])
            .arg(&kubeconfig)
            .output()
            .unwrap();
        assert_refused(&out, 2, &[what, &shown]);
    }
    let out = podiam()
        .args(["verify", "s3-pod", "--context", "prod", "--kubeconfig"])
        .arg(&kubeconfig)
        .output()
        .unwrap();
    assert_refused(&out, 2, &["its contexts: ci, other"]);
    // Through $KUBECONFIG, it names the variable's value.
    let out = podiam()
        .env("KUBECONFIG", &kubeconfig)
        .args(["verify", "s3-pod", "--context", "prod"])
        .output()
        .unwrap();
    assert_refused(&out, 2, &[&format!("KUBECONFIG={shown}")]);
}

/// A fake apiserver over HTTPS answering 401 to everything, as kube-apiserver answers
/// credentials it does not accept (an expired or revoked token; an expired client certificate
/// is not authenticated either). Returns its URL and its CA.
fn unauthorized_apiserver() -> (String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, &ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress([127, 0, 0, 1].into()));
    let cert = params.signed_by(&key, &issuer).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone(), ca_cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let listener = podiam_e2e::https_server::bind_localhost().unwrap();
    let url = format!(
        "https://127.0.0.1:{}",
        listener.local_addr().unwrap().port()
    );
    let router = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::UNAUTHORIZED,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#,
        )
    });
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                podiam_e2e::https_server::serve_https(listener, std::sync::Arc::new(tls), router)
                    .await
            })
    });
    (url, ca_cert.pem())
}

/// Credentials the apiserver answers 401 to: exit 3, naming the server, the context, the user,
/// the kubeconfig and the cause (an expired JWT says when), never the token; no report.
#[test]
fn expired_kubeconfig_credentials_exit_3_naming_server_context_and_cause() {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let (server, ca) = unauthorized_apiserver();
    let dir = tempfile::tempdir().unwrap();
    // A ServiceAccount token that expired in September 2020.
    let claims = b64(
        r#"{"iss":"https://kubernetes.default.svc","sub":"system:serviceaccount:ci:deployer","exp":1600000000}"#,
    );
    let jwt = format!(
        "{}.{claims}.c2lnbmF0dXJl",
        b64(r#"{"alg":"RS256","kid":"k"}"#)
    );
    let kubeconfig = kubeconfig_at(
        dir.path(),
        &server,
        Some(&ca),
        &format!("{{token: '{jwt}'}}"),
    );
    let out = podiam()
        .args([
            "verify",
            "s3-pod",
            "--request-timeout",
            "10s",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .output()
        .unwrap();
    let stderr = assert_refused(
        &out,
        3,
        &[
            "pod default/s3-pod: unauthorized",
            &server,
            "(context ci) answered 401 (Unauthorized)",
            "user \"deployer\"",
            &format!("kubeconfig {}", kubeconfig.display()),
            "its token expired",
        ],
    );
    assert!(!stderr.contains(&claims), "the token is printed: {stderr}");
    // An opaque token (or a client certificate) gives no expiry: every likely cause is named.
    let opaque = "opaque-token-7f3a9c";
    let kubeconfig = kubeconfig_at(
        dir.path(),
        &server,
        Some(&ca),
        &format!("{{token: '{opaque}'}}"),
    );
    let out = podiam()
        .args(["verify", "-A", "--request-timeout", "10s", "--kubeconfig"])
        .arg(&kubeconfig)
        .output()
        .unwrap();
    let stderr = assert_refused(
        &out,
        3,
        &[
            "list pods",
            "answered 401",
            "an expired or revoked token, an expired client certificate",
        ],
    );
    assert!(!stderr.contains(opaque), "the token is printed: {stderr}");
    // A client certificate past its notAfter: said so (the apiserver does not authenticate it).
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["deployer".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2019, 1, 1);
    params.not_after = rcgen::date_time_ymd(2020, 9, 13);
    let cert = params.self_signed(&key).unwrap();
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    let kubeconfig = kubeconfig_at(
        dir.path(),
        &server,
        Some(&ca),
        &format!(
            "{{client-certificate-data: {}, client-key-data: {}}}",
            b64(cert.pem()),
            b64(key.serialize_pem())
        ),
    );
    let out = podiam()
        .args([
            "verify",
            "s3-pod",
            "--request-timeout",
            "10s",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .output()
        .unwrap();
    let stderr = assert_refused(&out, 3, &["answered 401", "its client certificate expired"]);
    assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
}
