//! Every static IRSA and static-credential check on manifests modelled on FACTS.md, judged
//! offline exactly as `verify -f` does.

use std::path::Path;

use podiam::evidence::Probe;
use podiam::judge::judge;
use podiam::manifest::{documents, subjects};
use podiam::model::{MechanismId, ReportItem, Status, Verdict};
use podiam::options::VerifyOptions;

const SA: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata:
  name: s3-reader
  namespace: default
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/my-pod-role
"#;

fn judge_yaml(yaml: &str) -> Vec<ReportItem> {
    let docs = documents::parse(Path::new("test.yaml"), yaml).expect("fixture parses");
    let subjects = subjects::subjects(&docs, "default", None).expect("fixture has pods");
    let probe = Probe::Offline { token: None };
    let rt = tokio::runtime::Runtime::new().unwrap();
    subjects
        .iter()
        .map(|s| rt.block_on(judge(s, &probe, &VerifyOptions::default())))
        .collect()
}

fn one(yaml: &str) -> ReportItem {
    let mut items = judge_yaml(yaml);
    assert_eq!(items.len(), 1, "expected one pod");
    items.remove(0)
}

fn status_of(item: &ReportItem, id: &str) -> Option<Status> {
    item.checks.iter().find(|c| c.id == id).map(|c| c.status)
}

fn message_of<'a>(item: &'a ReportItem, id: &str) -> &'a str {
    item.checks
        .iter()
        .find(|c| c.id == id)
        .map(|c| c.message.as_str())
        .unwrap_or_else(|| panic!("no check {id} in {:#?}", item.checks))
}

fn failed_ids(item: &ReportItem) -> Vec<&'static str> {
    item.checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.id)
        .collect()
}

fn with_sa(pod: &str) -> String {
    format!("{SA}\n---\n{pod}")
}

/// A live pod as the webhook mutated it (has a uid), with optional extra container env.
fn mutated_live_pod(extra_env: &str, volume_extra: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: s3-pod
  namespace: default
  uid: 0b6f0f6e-1111-2222-3333-444455556666
spec:
  serviceAccountName: s3-reader
  containers:
    - name: app
      image: amazonlinux
      env:
        - name: AWS_ROLE_ARN
          value: arn:aws:iam::123456789012:role/my-pod-role
        - name: AWS_WEB_IDENTITY_TOKEN_FILE
          value: /var/run/secrets/eks.amazonaws.com/serviceaccount/token
{extra_env}
      volumeMounts:
        - name: aws-iam-token
          mountPath: /var/run/secrets/eks.amazonaws.com/serviceaccount
          readOnly: true
  volumes:
    - name: aws-iam-token
      projected:
{volume_extra}
        sources:
          - serviceAccountToken:
              audience: sts.amazonaws.com
              expirationSeconds: 86400
              path: token
status:
  phase: Running
"#
    )
}

#[test]
fn seed_template_passes_as_the_webhook_would_mutate_it() {
    let item = one(&with_sa(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: s3-pod, namespace: default}
spec:
  serviceAccountName: s3-reader
  containers: [{name: app, image: amazonlinux, command: [sleep, "3600"]}]
"#,
    ));
    assert_eq!(item.mechanism, MechanismId::AwsIrsa);
    assert_eq!(item.verdict, Verdict::Pass, "{:#?}", item.checks);
    assert_eq!(status_of(&item, "aws.irsa.pod-mutated"), Some(Status::Pass));
}

#[test]
fn mutated_live_pod_passes() {
    let item = one(&with_sa(&mutated_live_pod("", "")));
    assert_eq!(item.verdict, Verdict::Pass, "{:#?}", item.checks);
}

#[test]
fn live_pod_created_before_the_annotation_must_be_recreated() {
    let item = one(&with_sa(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: s3-pod, namespace: default, uid: abc}
spec:
  serviceAccountName: s3-reader
  containers: [{name: app, image: amazonlinux}]
status: {phase: Running}
"#,
    ));
    assert_eq!(item.verdict, Verdict::Fail);
    let msg = message_of(&item, "aws.irsa.pod-mutated");
    assert!(msg.contains("created before the annotation"), "{msg}");
    let fix = item
        .checks
        .iter()
        .find(|c| c.id == "aws.irsa.pod-mutated")
        .and_then(|c| c.remediation.clone())
        .unwrap();
    assert!(
        fix.contains("kubectl delete pod -n default s3-pod"),
        "{fix}"
    );
}

#[test]
fn role_drift_after_reannotation() {
    let sa = SA.replace("role/my-pod-role", "role/new-role");
    let item = one(&format!("{sa}\n---\n{}", mutated_live_pod("", "")));
    assert_eq!(failed_ids(&item), vec!["aws.irsa.role-drift"]);
    assert!(
        message_of(&item, "aws.irsa.role-drift")
            .contains("arn:aws:iam::123456789012:role/new-role")
    );
}

#[test]
fn chart_preset_role_wins_and_is_named() {
    let item = one(&with_sa(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      serviceAccountName: s3-reader
      containers:
        - name: app
          image: amazonlinux
          env:
            - {name: AWS_ROLE_ARN, value: "arn:aws:iam::123456789012:role/chart-default-role"}
"#,
    ));
    assert_eq!(item.pod.kind, "Deployment");
    assert!(failed_ids(&item).contains(&"aws.irsa.preset-env"));
    let msg = message_of(&item, "aws.irsa.preset-env");
    assert!(msg.contains("chart-default-role wins"), "{msg}");
    // The webhook injected no token file either: the SDK has a role and no token.
    assert_eq!(status_of(&item, "aws.irsa.pod-mutated"), Some(Status::Fail));
}

#[test]
fn fully_preset_container_gets_no_mount_either() {
    let item = one(&with_sa(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: default}
spec:
  serviceAccountName: s3-reader
  containers:
    - name: app
      image: amazonlinux
      env:
        - {name: AWS_ROLE_ARN, value: "arn:aws:iam::123456789012:role/my-pod-role"}
        - {name: AWS_REGION, value: eu-west-1}
        - {name: AWS_STS_REGIONAL_ENDPOINTS, value: regional}
"#,
    ));
    let mutated = message_of(&item, "aws.irsa.pod-mutated");
    assert!(mutated.contains("lack the IRSA env or mount"), "{mutated}");
    assert_eq!(item.verdict, Verdict::Fail);
    // The preset role equals the annotation: only a warning, the missing mount is the failure.
    assert_eq!(status_of(&item, "aws.irsa.preset-env"), Some(Status::Warn));
}

#[test]
fn preset_token_path_outside_any_mount_fails() {
    let item = one(&with_sa(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: default}
spec:
  serviceAccountName: s3-reader
  containers:
    - name: app
      image: amazonlinux
      env:
        - {name: AWS_WEB_IDENTITY_TOKEN_FILE, value: /tmp/token}
"#,
    ));
    let failed = failed_ids(&item);
    assert!(failed.contains(&"aws.irsa.preset-env"), "{failed:?}");
    assert!(failed.contains(&"aws.irsa.token-path"), "{failed:?}");
}

#[test]
fn non_root_pod_without_fs_group_is_not_flagged() {
    let item = one(&with_sa(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: default}
spec:
  serviceAccountName: s3-reader
  securityContext: {runAsUser: 1000}
  containers:
    - {name: app, image: amazonlinux}
    - {name: sidecar, image: busybox}
"#,
    ));
    assert_eq!(item.verdict, Verdict::Pass, "{:#?}", item.checks);
    assert_eq!(
        status_of(&item, "aws.irsa.token-readable"),
        Some(Status::Pass)
    );
}

#[test]
fn restrictive_default_mode_with_mixed_users_is_unreadable() {
    let pod = mutated_live_pod("", "        defaultMode: 0600")
        .replace(
            "  uid: ",
            "  annotations: {kubectl.kubernetes.io/default-container: app}\n  uid: ",
        )
        .replace(
        "  containers:\n",
        "  securityContext: {runAsUser: 1000}\n  containers:\n    - name: root-sidecar\n      image: busybox\n      securityContext: {runAsUser: 0}\n      env: [{name: AWS_ROLE_ARN, value: x}, {name: AWS_WEB_IDENTITY_TOKEN_FILE, value: /tmp/t}]\n      volumeMounts: [{name: aws-iam-token, mountPath: /var/run/secrets/eks.amazonaws.com/serviceaccount}]\n",
    );
    let item = one(&with_sa(&pod));
    assert_eq!(
        status_of(&item, "aws.irsa.token-readable"),
        Some(Status::Fail),
        "{:#?}",
        item.checks
    );
    assert!(message_of(&item, "aws.irsa.token-readable").contains("0600"));
}

#[test]
fn static_keys_in_env_fail_and_win_over_irsa() {
    let item = one(&with_sa(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: default}
spec:
  serviceAccountName: s3-reader
  containers:
    - name: app
      image: amazonlinux
      env:
        - {name: AWS_ACCESS_KEY_ID, value: AKIAEXAMPLEEXAMPLE12}
        - name: AWS_SECRET_ACCESS_KEY
          valueFrom: {secretKeyRef: {name: aws-keys, key: secret}}
"#,
    ));
    assert_eq!(item.mechanism, MechanismId::StaticCredentials);
    assert_eq!(
        status_of(&item, "static-credentials.env"),
        Some(Status::Fail)
    );
    let msg = message_of(&item, "static-credentials.env");
    assert!(msg.contains("secret aws-keys key secret"), "{msg}");
    let json = serde_json::to_string(&item).unwrap();
    assert!(
        !json.contains("AKIAEXAMPLEEXAMPLE12"),
        "a key value leaked: {json}"
    );
}

#[test]
fn static_keys_through_env_from_a_secret_in_the_input() {
    let item = one(&with_sa(
        r#"
apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: default}
stringData: {AWS_ACCESS_KEY_ID: x, AWS_SECRET_ACCESS_KEY: s}
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: default}
spec:
  serviceAccountName: s3-reader
  containers:
    - {name: app, image: amazonlinux, envFrom: [{secretRef: {name: creds}}]}
"#,
    ));
    assert_eq!(
        status_of(&item, "static-credentials.env"),
        Some(Status::Fail)
    );
    assert!(message_of(&item, "static-credentials.env").contains("envFrom secret creds"));
}

#[test]
fn env_from_an_unknown_secret_is_a_warning() {
    let item = one(&with_sa(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: default}
spec:
  serviceAccountName: s3-reader
  containers:
    - {name: app, image: amazonlinux, envFrom: [{secretRef: {name: elsewhere}}]}
"#,
    ));
    assert_eq!(
        status_of(&item, "static-credentials.env"),
        Some(Status::Warn)
    );
}

#[test]
fn skipped_target_container_gets_no_identity() {
    let item = one(&with_sa(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: p
  namespace: default
  annotations: {eks.amazonaws.com/skip-containers: "app,other"}
spec:
  serviceAccountName: s3-reader
  containers: [{name: app, image: amazonlinux}, {name: other, image: busybox}]
"#,
    ));
    assert!(failed_ids(&item).contains(&"aws.irsa.container-skipped"));
    assert_eq!(status_of(&item, "aws.irsa.pod-mutated"), Some(Status::Pass));
}

#[test]
fn skipping_another_container_is_fine() {
    let item = one(&with_sa(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: p
  namespace: default
  annotations: {eks.amazonaws.com/skip-containers: "istio-proxy"}
spec:
  serviceAccountName: s3-reader
  containers: [{name: app, image: amazonlinux}, {name: istio-proxy, image: busybox}]
"#,
    ));
    assert_eq!(item.verdict, Verdict::Pass, "{:#?}", item.checks);
    assert!(message_of(&item, "aws.irsa.pod-mutated").contains("istio-proxy skipped"));
}

#[test]
fn windows_template_gets_the_windows_path() {
    let item = one(&with_sa(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: default}
spec:
  serviceAccountName: s3-reader
  nodeSelector: {kubernetes.io/os: windows}
  containers: [{name: app, image: mcr.microsoft.com/windows/nanoserver}]
"#,
    ));
    assert_eq!(status_of(&item, "aws.irsa.token-path"), Some(Status::Pass));
    assert!(message_of(&item, "aws.irsa.token-path").contains(r"C:\var\run"));
}

#[test]
fn windows_live_pod_with_a_linux_path_fails() {
    let pod = mutated_live_pod("", "").replace(
        "  serviceAccountName: s3-reader\n",
        "  serviceAccountName: s3-reader\n  nodeSelector: {kubernetes.io/os: windows}\n",
    );
    let item = one(&with_sa(&pod));
    assert_eq!(failed_ids(&item), vec!["aws.irsa.token-path"]);
}

#[test]
fn typoed_annotation_is_named() {
    let sa = SA.replace("eks.amazonaws.com/role-arn", "eks.amazon.com/role-arn");
    let item = one(&format!(
        "{sa}\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: default}}\nspec:\n  serviceAccountName: s3-reader\n  containers: [{{name: app, image: x}}]\n"
    ));
    assert_eq!(item.mechanism, MechanismId::AwsIrsa);
    let msg = message_of(&item, "aws.irsa.annotation");
    assert!(
        msg.contains("eks.amazon.com/role-arn") && msg.contains("typo"),
        "{msg}"
    );
}

#[test]
fn opt_out_label_prevents_mutation() {
    let item = one(&with_sa(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: p
  namespace: default
  labels: {eks.amazonaws.com/skip-pod-identity-webhook: "true"}
spec:
  serviceAccountName: s3-reader
  containers: [{name: app, image: x}]
"#,
    ));
    assert!(message_of(&item, "aws.irsa.pod-mutated").contains("skip-pod-identity-webhook"));
    assert_eq!(item.verdict, Verdict::Fail);
}

#[test]
fn invalid_role_arn_fails() {
    let sa = SA.replace(
        "arn:aws:iam::123456789012:role/my-pod-role",
        "arn:aws:iam::12345:role/my-pod-role",
    );
    let item = one(&format!(
        "{sa}\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p, namespace: default}}\nspec:\n  serviceAccountName: s3-reader\n  containers: [{{name: app, image: x}}]\n"
    ));
    assert!(failed_ids(&item).contains(&"aws.irsa.role-arn"));
}

#[test]
fn audience_changed_after_creation_fails() {
    let sa = SA.replace(
        "    eks.amazonaws.com/role-arn",
        "    eks.amazonaws.com/audience: my-audience\n    eks.amazonaws.com/role-arn",
    );
    let item = one(&format!("{sa}\n---\n{}", mutated_live_pod("", "")));
    assert_eq!(failed_ids(&item), vec!["aws.irsa.audience"]);
}

#[test]
fn token_expiration_annotation_is_applied_with_the_minimum() {
    let item = one(&format!(
        "{}\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: default\n  annotations: {{eks.amazonaws.com/token-expiration: \"300\"}}\nspec:\n  serviceAccountName: s3-reader\n  containers: [{{name: app, image: x}}]\n",
        SA
    ));
    assert!(message_of(&item, "aws.irsa.token-expiration").contains("600s"));
}

#[test]
fn regional_sts_annotation_is_checked_on_live_pods() {
    let sa = SA.replace(
        "    eks.amazonaws.com/role-arn",
        "    eks.amazonaws.com/sts-regional-endpoints: \"true\"\n    eks.amazonaws.com/role-arn",
    );
    let item = one(&format!("{sa}\n---\n{}", mutated_live_pod("", "")));
    assert_eq!(
        status_of(&item, "aws.irsa.regional-sts"),
        Some(Status::Warn)
    );
    let item = one(&format!(
        "{sa}\n---\n{}",
        mutated_live_pod(
            "        - {name: AWS_STS_REGIONAL_ENDPOINTS, value: regional}",
            ""
        )
    ));
    assert_eq!(
        status_of(&item, "aws.irsa.regional-sts"),
        Some(Status::Pass)
    );
}

#[test]
fn unannotated_service_account_means_no_identity() {
    let item = one(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: plain, namespace: default}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: default}\nspec:\n  serviceAccountName: plain\n  containers: [{name: app, image: x}]\n",
    );
    assert_eq!(item.mechanism, MechanismId::None);
    // Offline an EKS Pod Identity association (it lives in EKS) could still wire this pod:
    // unknown, not a failure (tests/webhook_models.rs: once EKS says none, it fails).
    assert!(failed_ids(&item).is_empty(), "{:#?}", item.checks);
    assert_eq!(status_of(&item, "identity.mechanism"), Some(Status::Skip));
    assert!(item.identity.is_none());
}

#[test]
fn every_workload_kind_is_judged_by_its_template() {
    let items = judge_yaml(&format!(
        r#"{SA}
---
apiVersion: v1
kind: List
items:
  - apiVersion: batch/v1
    kind: CronJob
    metadata: {{name: nightly, namespace: default}}
    spec:
      schedule: "0 0 * * *"
      jobTemplate:
        spec:
          template:
            spec:
              serviceAccountName: s3-reader
              restartPolicy: Never
              containers: [{{name: job, image: x}}]
  - apiVersion: apps/v1
    kind: StatefulSet
    metadata: {{name: db, namespace: default}}
    spec:
      serviceName: db
      selector: {{matchLabels: {{a: b}}}}
      template:
        metadata: {{labels: {{a: b}}}}
        spec:
          serviceAccountName: s3-reader
          containers: [{{name: db, image: x}}]
"#
    ));
    let kinds: Vec<&str> = items.iter().map(|i| i.pod.kind.as_str()).collect();
    assert_eq!(kinds, vec!["CronJob", "StatefulSet"]);
    assert!(
        items
            .iter()
            .all(|i| i.verdict == Verdict::Pass && i.mechanism == MechanismId::AwsIrsa)
    );
}
