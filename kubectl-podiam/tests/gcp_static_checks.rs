//! Static GKE Workload Identity checks on manifests modelled on FACTS.md, judged offline
//! exactly as `verify -f` does.

use std::path::Path;

use podiam::evidence::Probe;
use podiam::judge::judge;
use podiam::manifest::{documents, subjects};
use podiam::model::{MechanismId, ReportItem, Status, Verdict};
use podiam::options::VerifyOptions;

const KSA: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata:
  name: gke-service-account
  namespace: default
  annotations:
    iam.gke.io/gcp-service-account: gke-service-account@my-project.iam.gserviceaccount.com
"#;

const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: gcs-pod, namespace: default}
spec:
  serviceAccountName: gke-service-account
  containers: [{name: app, image: google/cloud-sdk, command: [sleep, "3600"]}]
"#;

fn judge_with(yaml: &str, options: &VerifyOptions) -> ReportItem {
    let docs = documents::parse(Path::new("test.yaml"), yaml).expect("fixture parses");
    let subjects = subjects::subjects(&docs, "default", None).expect("fixture has pods");
    assert_eq!(subjects.len(), 1, "expected one pod");
    let probe = Probe::Offline { token: None };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(judge(&subjects[0], &probe, options))
}

fn one(yaml: &str) -> ReportItem {
    judge_with(yaml, &VerifyOptions::default())
}

fn check<'a>(item: &'a ReportItem, id: &str) -> &'a podiam::model::Check {
    item.checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id} in {:#?}", item.checks))
}

fn status_of(item: &ReportItem, id: &str) -> Option<Status> {
    item.checks.iter().find(|c| c.id == id).map(|c| c.status)
}

fn ksa_with(annotations: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: gke-service-account\n  namespace: default\n  annotations:\n{annotations}\n"
    )
}

/// The seed pod with extra spec lines (indented two spaces under `spec:`).
fn pod_with(spec_extra: &str, container_extra: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata: {{name: gcs-pod, namespace: default}}
spec:
  serviceAccountName: gke-service-account
{spec_extra}
  containers:
    - name: app
      image: google/cloud-sdk
      command: [sleep, "3600"]
{container_extra}
"#
    )
}

#[test]
fn seed_passes_offline_with_the_configured_gsa() {
    let item = one(&format!("{KSA}\n---\n{POD}"));
    assert_eq!(item.mechanism, MechanismId::GcpWorkloadIdentity);
    assert_eq!(item.verdict, Verdict::Pass, "{:#?}", item.checks);
    let identity = item.identity.as_ref().expect("configured identity");
    assert_eq!(identity.provider, "gcp");
    assert_eq!(
        identity.principal,
        "gke-service-account@my-project.iam.gserviceaccount.com"
    );
    assert_eq!(identity.source, "configured (not exchanged)");
    assert_eq!(status_of(&item, "gcp.wi.annotation"), Some(Status::Pass));
    assert_eq!(status_of(&item, "gcp.wi.gsa-email"), Some(Status::Pass));
    assert_eq!(
        status_of(&item, "gcp.node.metadata-server"),
        Some(Status::Skip)
    );
    assert_eq!(status_of(&item, "gcp.metadata.token"), Some(Status::Skip));
}

#[test]
fn annotation_on_the_pod_instead_of_the_ksa_fails() {
    let pod = r#"
apiVersion: v1
kind: Pod
metadata:
  name: gcs-pod
  namespace: default
  annotations:
    iam.gke.io/gcp-service-account: gke-service-account@my-project.iam.gserviceaccount.com
spec:
  serviceAccountName: gke-service-account
  containers: [{name: app, image: google/cloud-sdk}]
"#;
    let item = one(&format!("{}\n---\n{pod}", ksa_with("    unrelated: x")));
    assert_eq!(item.mechanism, MechanismId::GcpWorkloadIdentity);
    assert_eq!(item.verdict, Verdict::Fail);
    let c = check(&item, "gcp.wi.annotation");
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.message.contains("only from the ServiceAccount"),
        "{}",
        c.message
    );
    assert!(
        c.remediation
            .as_deref()
            .unwrap()
            .contains("kubectl annotate serviceaccount -n default gke-service-account")
    );
}

#[test]
fn misspelt_keys_are_named() {
    for key in [
        "iam.gke.io/gcp-service-acount",
        "iam.gke.com/gcp-service-account",
        "iam.gke.io/gcp-service-accounts",
    ] {
        let item = one(&format!(
            "{}\n---\n{POD}",
            ksa_with(&format!(
                "    {key}: gke-service-account@my-project.iam.gserviceaccount.com"
            ))
        ));
        assert_eq!(item.mechanism, MechanismId::GcpWorkloadIdentity, "{key}");
        let c = check(&item, "gcp.wi.annotation");
        assert_eq!(c.status, Status::Fail, "{key}");
        assert!(c.message.contains(key), "{}", c.message);
        assert!(
            c.remediation
                .as_deref()
                .unwrap()
                .contains(&format!("{key}-"))
        );
    }
}

#[test]
fn invalid_and_default_gsa_emails() {
    let invalid = one(&format!(
        "{}\n---\n{POD}",
        ksa_with("    iam.gke.io/gcp-service-account: gke-service-account@my-project")
    ));
    assert_eq!(status_of(&invalid, "gcp.wi.gsa-email"), Some(Status::Fail));
    assert_eq!(invalid.verdict, Verdict::Fail);
    let default = one(&format!(
        "{}\n---\n{POD}",
        ksa_with(
            "    iam.gke.io/gcp-service-account: 1234567890-compute@developer.gserviceaccount.com"
        )
    ));
    assert_eq!(status_of(&default, "gcp.wi.gsa-email"), Some(Status::Warn));
    let empty = one(&format!(
        "{}\n---\n{POD}",
        ksa_with("    iam.gke.io/gcp-service-account: ''")
    ));
    assert_eq!(status_of(&empty, "gcp.wi.annotation"), Some(Status::Fail));
}

#[test]
fn host_network_sees_the_node_identity() {
    let item = one(&format!(
        "{KSA}\n---\n{}",
        pod_with("  hostNetwork: true", "")
    ));
    let c = check(&item, "gcp.pod.host-network");
    assert_eq!(c.status, Status::Fail);
    assert!(c.message.contains("node's identity"), "{}", c.message);
    assert_eq!(item.verdict, Verdict::Fail);
}

#[test]
fn node_selection_decides_the_metadata_server_check() {
    let selected = one(&format!(
        "{KSA}\n---\n{}",
        pod_with(
            "  nodeSelector:\n    iam.gke.io/gke-metadata-server-enabled: \"true\"",
            ""
        )
    ));
    assert_eq!(
        status_of(&selected, "gcp.node.metadata-server"),
        Some(Status::Pass)
    );
    let excluded = one(&format!(
        "{KSA}\n---\n{}",
        pod_with(
            "  nodeSelector:\n    iam.gke.io/gke-metadata-server-enabled: \"false\"",
            ""
        )
    ));
    assert_eq!(
        status_of(&excluded, "gcp.node.metadata-server"),
        Some(Status::Fail)
    );
    let affinity = one(&format!(
        "{KSA}\n---\n{}",
        pod_with(
            r#"  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
          - matchExpressions:
              - {key: iam.gke.io/gke-metadata-server-enabled, operator: NotIn, values: ["true"]}"#,
            ""
        )
    ));
    assert_eq!(
        status_of(&affinity, "gcp.node.metadata-server"),
        Some(Status::Fail)
    );
}

#[test]
fn unannotated_ksa_on_a_gke_node_is_direct_principal_mode() {
    let item = one(&format!(
        "{}\n---\n{}",
        ksa_with("    unrelated: x"),
        pod_with(
            "  nodeSelector:\n    iam.gke.io/gke-metadata-server-enabled: \"true\"",
            ""
        )
    ));
    assert_eq!(item.mechanism, MechanismId::GcpWorkloadIdentity);
    let c = check(&item, "gcp.wi.annotation");
    assert_eq!(c.status, Status::Warn);
    let principal = "principal://iam.googleapis.com/projects/PROJECT_NUMBER/locations/global/workloadIdentityPools/PROJECT_ID.svc.id.goog/subject/ns/default/sa/gke-service-account";
    assert!(c.message.contains(principal), "{}", c.message);
    assert_eq!(item.identity.as_ref().unwrap().principal, principal);
    assert_eq!(item.verdict, Verdict::Pass);
}

#[test]
fn key_file_from_a_secret_is_a_static_key() {
    let item = one(&format!(
        "{}\n---\n{}",
        ksa_with("    unrelated: x"),
        pod_with(
            "  volumes:\n    - {name: key, secret: {secretName: gcp-key}}",
            "      env: [{name: GOOGLE_APPLICATION_CREDENTIALS, value: /var/secrets/google/key.json}]\n      volumeMounts: [{name: key, mountPath: /var/secrets/google}]"
        )
    ));
    assert_eq!(item.mechanism, MechanismId::GcpWorkloadIdentity);
    let c = check(&item, "gcp.credentials.static-key");
    assert_eq!(c.status, Status::Warn);
    assert!(
        c.message.contains("Secret gcp-key key key.json"),
        "{}",
        c.message
    );
    // A pure external-credentials pod is not judged as a GKE metadata-server pod.
    assert_eq!(status_of(&item, "gcp.node.metadata-server"), None);
}

const CONFIG_MAP: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: wif-config, namespace: default}
data:
  credential-configuration.json: |
    {"type": "external_account",
     "audience": "//iam.googleapis.com/projects/1234567890/locations/global/workloadIdentityPools/my-pool/providers/my-provider",
     "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
     "token_url": "https://sts.googleapis.com/v1/token",
     "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/gke-service-account@my-project.iam.gserviceaccount.com:generateAccessToken",
     "credential_source": {"file": "/var/run/service-account/token", "format": {"type": "text"}}}
"#;

fn federated_pod(token_mount: bool) -> String {
    let token_volume = if token_mount {
        "    - name: token\n      projected:\n        sources:\n          - serviceAccountToken: {audience: 'https://iam.googleapis.com/projects/1234567890/locations/global/workloadIdentityPools/my-pool/providers/my-provider', expirationSeconds: 3600, path: token}"
    } else {
        ""
    };
    let token_mount = if token_mount {
        "\n        - {name: token, mountPath: /var/run/service-account, readOnly: true}"
    } else {
        ""
    };
    pod_with(
        &format!(
            "  volumes:\n    - name: gcp-config\n      configMap: {{name: wif-config}}\n{token_volume}"
        ),
        &format!(
            "      env: [{{name: GOOGLE_APPLICATION_CREDENTIALS, value: /etc/gcp/credential-configuration.json}}]\n      volumeMounts:\n        - {{name: gcp-config, mountPath: /etc/gcp}}{token_mount}"
        ),
    )
}

#[test]
fn external_account_config_from_the_input_is_judged() {
    let item = one(&format!(
        "{}\n---\n{CONFIG_MAP}\n---\n{}",
        ksa_with("    unrelated: x"),
        federated_pod(true)
    ));
    assert_eq!(item.mechanism, MechanismId::GcpWorkloadIdentity);
    let config = check(&item, "gcp.external-account.config");
    assert_eq!(config.status, Status::Pass, "{}", config.message);
    assert!(
        config
            .message
            .contains("impersonating gke-service-account@my-project.iam.gserviceaccount.com")
    );
    assert_eq!(
        status_of(&item, "gcp.external-account.token-file"),
        Some(Status::Pass)
    );
    // Offline without --token-file: nothing to exchange, nothing failed, no identity
    // established (the pool's provider decides): incomplete.
    assert_eq!(status_of(&item, "gcp.sts.exchange"), Some(Status::Skip));
    assert_eq!(item.verdict, Verdict::Incomplete, "{:#?}", item.checks);
}

#[test]
fn external_account_without_its_token_mount_fails() {
    let item = one(&format!(
        "{}\n---\n{CONFIG_MAP}\n---\n{}",
        ksa_with("    unrelated: x"),
        federated_pod(false)
    ));
    assert_eq!(
        status_of(&item, "gcp.external-account.token-file"),
        Some(Status::Fail)
    );
}

#[test]
fn garbage_external_account_config_is_a_clear_failure() {
    let garbage = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: wif-config, namespace: default}\ndata:\n  credential-configuration.json: 'not json {'\n";
    let item = one(&format!(
        "{}\n---\n{garbage}\n---\n{}",
        ksa_with("    unrelated: x"),
        federated_pod(true)
    ));
    let c = check(&item, "gcp.external-account.config");
    assert_eq!(c.status, Status::Fail);
    assert!(c.message.contains("not JSON"), "{}", c.message);
    assert!(c.message.contains("ConfigMap wif-config"), "{}", c.message);
}

#[test]
fn credentials_env_beside_the_annotation_wins_and_is_flagged() {
    let item = one(&format!(
        "{KSA}\n---\n{CONFIG_MAP}\n---\n{}",
        federated_pod(true)
    ));
    let c = check(&item, "gcp.credentials.precedence");
    assert_eq!(c.status, Status::Warn);
    assert!(
        c.message.contains("before the metadata server"),
        "{}",
        c.message
    );
}

#[test]
fn aws_pods_are_not_claimed() {
    let item = one(r#"
apiVersion: v1
kind: ServiceAccount
metadata:
  name: both
  namespace: default
  annotations:
    eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/my-pod-role
    iam.gke.io/gcp-service-account: gke-service-account@my-project.iam.gserviceaccount.com
---
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: default}
spec:
  serviceAccountName: both
  containers: [{name: app, image: x}]
"#);
    assert_eq!(item.mechanism, MechanismId::AwsIrsa);
    assert!(item.checks.iter().all(|c| !c.id.starts_with("gcp.")));
}

#[test]
fn workload_templates_are_judged() {
    let item = one(&format!(
        r#"{KSA}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: default}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      serviceAccountName: gke-service-account
      hostNetwork: true
      containers: [{{name: app, image: google/cloud-sdk}}]
"#
    ));
    assert_eq!(item.pod.kind, "Deployment");
    assert_eq!(item.mechanism, MechanismId::GcpWorkloadIdentity);
    assert_eq!(status_of(&item, "gcp.pod.host-network"), Some(Status::Fail));
}

#[test]
fn expected_gsa_is_compared_with_the_configured_one_offline() {
    let options = VerifyOptions {
        expect_gsa: Some("other@my-project.iam.gserviceaccount.com".into()),
        ..Default::default()
    };
    let item = judge_with(&format!("{KSA}\n---\n{POD}"), &options);
    assert_eq!(status_of(&item, "gcp.expected-gsa"), Some(Status::Fail));
    let options = VerifyOptions {
        expect_gsa: Some("gke-service-account@my-project.iam.gserviceaccount.com".into()),
        ..Default::default()
    };
    let item = judge_with(&format!("{KSA}\n---\n{POD}"), &options);
    assert_eq!(status_of(&item, "gcp.expected-gsa"), Some(Status::Pass));
}
