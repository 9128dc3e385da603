//! Every static Azure workload-identity check on manifests modelled on FACTS.md and the
//! webhook's v1.6 behaviour, judged offline exactly as `verify -f` does.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use podiam::evidence::{OfflineToken, Probe};
use podiam::exchange::azure_config::AzureTarget;
use podiam::judge::judge;
use podiam::manifest::{documents, subjects};
use podiam::model::{MechanismId, ReportItem, Status, Verdict};
use podiam::options::VerifyOptions;

const CLIENT: &str = "00000000-0000-0000-0000-0000000000a1";
const OTHER: &str = "11111111-2222-3333-4444-555555555555";

fn sa(annotations: &str, labels: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: ServiceAccount
metadata:
  name: aks-service-account
  namespace: default
  labels: {{{labels}}}
  annotations: {{{annotations}}}
"#
    )
}

fn annotated_sa() -> String {
    sa(
        &format!("azure.workload.identity/client-id: '{CLIENT}'"),
        "",
    )
}

/// A pod template (no uid): judged as the webhook would mutate it.
fn pod(labels: &str, annotations: &str, extra_container: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: azure-pod
  namespace: default
  labels: {{{labels}}}
  annotations: {{{annotations}}}
spec:
  serviceAccountName: aks-service-account
  containers:
    - name: app
      image: mcr.microsoft.com/azure-cli
      command: ["sleep", "3600"]
{extra_container}
"#
    )
}

const LABEL: &str = r#"azure.workload.identity/use: "true""#;

/// A live pod (has a uid) as the v1.6 webhook mutated it, with room for changes.
fn mutated_live_pod(client_env: &str, token_path: &str, audience: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: azure-pod
  namespace: default
  uid: 6a1c0000-1111-2222-3333-444455556666
  labels: {{{LABEL}}}
spec:
  serviceAccountName: aks-service-account
  containers:
    - name: app
      image: mcr.microsoft.com/azure-cli
      env:
{client_env}
        - {{name: AZURE_TENANT_ID, value: 72f988bf-86f1-41af-91ab-2d7cd011db47}}
        - {{name: AZURE_FEDERATED_TOKEN_FILE, value: {token_path}}}
        - {{name: AZURE_AUTHORITY_HOST, value: "https://login.microsoftonline.com/"}}
      volumeMounts:
        - {{name: azure-workload-identity-reserved-84709e45557231d11a821184f9f83a, mountPath: /var/run/secrets/azure/wi, readOnly: true}}
  volumes:
    - name: azure-workload-identity-reserved-84709e45557231d11a821184f9f83a
      projected:
        sources:
          - serviceAccountToken:
              audience: {audience}
              expirationSeconds: 3600
              path: token/azure-identity-token
status: {{phase: Running}}
"#
    )
}

fn client_env(id: &str) -> String {
    format!("        - {{name: AZURE_CLIENT_ID, value: '{id}'}}")
}

const V16_PATH: &str = "/var/run/secrets/azure/wi/token/azure-identity-token";

fn judge_with(yaml: &str, probe: &Probe, options: &VerifyOptions) -> Vec<ReportItem> {
    let docs = documents::parse(Path::new("test.yaml"), yaml).expect("fixture parses");
    let subjects = subjects::subjects(&docs, "default", None).expect("fixture has pods");
    let rt = tokio::runtime::Runtime::new().unwrap();
    subjects
        .iter()
        .map(|s| rt.block_on(judge(s, probe, options)))
        .collect()
}

fn one(yaml: &str) -> ReportItem {
    let mut items = judge_with(
        yaml,
        &Probe::Offline { token: None },
        &VerifyOptions::default(),
    );
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

fn fix_of<'a>(item: &'a ReportItem, id: &str) -> &'a str {
    item.checks
        .iter()
        .find(|c| c.id == id)
        .and_then(|c| c.remediation.as_deref())
        .unwrap_or_else(|| panic!("no fix for {id} in {:#?}", item.checks))
}

fn failed_ids(item: &ReportItem) -> Vec<&'static str> {
    let mut ids: Vec<&'static str> = item
        .checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.id)
        .collect();
    ids.sort();
    ids
}

#[test]
fn corrected_seed_passes_as_the_webhook_would_mutate_it() {
    let item = one(&format!("{}---{}", annotated_sa(), pod(LABEL, "", "")));
    assert_eq!(item.mechanism, MechanismId::AzureWorkloadIdentity);
    assert_eq!(item.verdict, Verdict::Pass, "{:#?}", item.checks);
    for id in [
        "azure.wi.pod-label",
        "azure.wi.client-id",
        "azure.wi.tenant-id",
        "azure.wi.pod-mutated",
        "azure.wi.token-path",
        "azure.wi.audience",
    ] {
        assert_eq!(status_of(&item, id), Some(Status::Pass), "{id}");
    }
    assert!(message_of(&item, "azure.wi.token-path").contains(V16_PATH));
    assert_eq!(status_of(&item, "azure.entra.token"), Some(Status::Skip));
}

#[test]
fn seed_as_written_fails_on_label_and_client_id() {
    let item = one(&format!(
        "{}---{}",
        sa(
            "azure.workload.identity/client-id: aks-pod-identity-client-id",
            ""
        ),
        pod("", "", "")
    ));
    assert_eq!(item.mechanism, MechanismId::AzureWorkloadIdentity);
    assert_eq!(
        failed_ids(&item),
        vec![
            "azure.wi.client-id",
            "azure.wi.pod-label",
            "azure.wi.pod-mutated"
        ]
    );
    assert!(message_of(&item, "azure.wi.client-id").contains("not a GUID"));
    assert!(fix_of(&item, "azure.wi.client-id").contains("--query clientId"));
    assert!(fix_of(&item, "azure.wi.pod-label").contains(r#"azure.workload.identity/use: "true""#));
}

#[test]
fn label_on_the_service_account_instead_of_the_pod() {
    let item = one(&format!(
        "{}---{}",
        sa(
            &format!("azure.workload.identity/client-id: '{CLIENT}'"),
            LABEL
        ),
        pod("", "", "")
    ));
    assert_eq!(status_of(&item, "azure.wi.pod-label"), Some(Status::Fail));
    assert!(
        message_of(&item, "azure.wi.pod-label")
            .contains("is on ServiceAccount aks-service-account"),
        "{}",
        message_of(&item, "azure.wi.pod-label")
    );
}

#[test]
fn label_value_must_be_exactly_true() {
    let item = one(&format!(
        "{}---{}",
        annotated_sa(),
        pod(r#"azure.workload.identity/use: "True""#, "", "")
    ));
    assert_eq!(status_of(&item, "azure.wi.pod-label"), Some(Status::Fail));
    assert!(message_of(&item, "azure.wi.pod-label").contains(r#""True""#));
    assert_eq!(status_of(&item, "azure.wi.pod-mutated"), Some(Status::Fail));
}

#[test]
fn client_id_on_the_pod_instead_of_the_service_account() {
    let item = one(&format!(
        "{}---{}",
        sa("", ""),
        pod(
            LABEL,
            &format!("azure.workload.identity/client-id: '{CLIENT}'"),
            ""
        )
    ));
    assert_eq!(item.mechanism, MechanismId::AzureWorkloadIdentity);
    assert_eq!(status_of(&item, "azure.wi.client-id"), Some(Status::Fail));
    assert!(message_of(&item, "azure.wi.client-id").contains("where the webhook ignores it"));
    assert!(fix_of(&item, "azure.wi.client-id").contains(&format!(
        "kubectl annotate serviceaccount -n default aks-service-account azure.workload.identity/client-id={CLIENT}"
    )));
}

#[test]
fn missing_client_id_means_no_client_id_env() {
    let item = one(&format!("{}---{}", sa("", ""), pod(LABEL, "", "")));
    assert_eq!(status_of(&item, "azure.wi.client-id"), Some(Status::Fail));
    assert!(message_of(&item, "azure.wi.client-id").contains("no client ID specified"));
}

#[test]
fn tenant_id_is_checked_or_the_webhook_default_noted() {
    let item = one(&format!(
        "{}---{}",
        sa(
            &format!(
                "azure.workload.identity/client-id: '{CLIENT}', azure.workload.identity/tenant-id: my-tenant"
            ),
            ""
        ),
        pod(LABEL, "", "")
    ));
    assert_eq!(status_of(&item, "azure.wi.tenant-id"), Some(Status::Fail));
    let item = one(&format!("{}---{}", annotated_sa(), pod(LABEL, "", "")));
    assert!(message_of(&item, "azure.wi.tenant-id").contains("webhook injects its own tenant"));
}

#[test]
fn token_expiration_out_of_range_makes_the_webhook_reject_the_pod() {
    for (where_, sa_extra, pod_ann) in [
        (
            "sa",
            ", azure.workload.identity/service-account-token-expiration: '600'",
            "",
        ),
        (
            "pod",
            "",
            "azure.workload.identity/service-account-token-expiration: '90000'",
        ),
    ] {
        let item = one(&format!(
            "{}---{}",
            sa(
                &format!("azure.workload.identity/client-id: '{CLIENT}'{sa_extra}"),
                ""
            ),
            pod(LABEL, pod_ann, "")
        ));
        assert_eq!(
            status_of(&item, "azure.wi.token-expiration"),
            Some(Status::Fail),
            "{where_}"
        );
        assert!(
            message_of(&item, "azure.wi.pod-mutated").contains("rejects"),
            "{where_}"
        );
    }
    let item = one(&format!(
        "{}---{}",
        annotated_sa(),
        pod(
            LABEL,
            "azure.workload.identity/service-account-token-expiration: '86400'",
            ""
        )
    ));
    assert_eq!(item.verdict, Verdict::Pass, "{:#?}", item.checks);
    assert!(message_of(&item, "azure.wi.token-expiration").contains("86400"));
}

#[test]
fn skipped_target_container_gets_no_identity() {
    let item = one(&format!(
        "{}---{}",
        annotated_sa(),
        pod(
            LABEL,
            "azure.workload.identity/skip-containers: 'sidecar;app'",
            ""
        )
    ));
    assert_eq!(
        status_of(&item, "azure.wi.container-skipped"),
        Some(Status::Fail)
    );
    assert_eq!(status_of(&item, "azure.entra.token"), Some(Status::Skip));
}

#[test]
fn skipping_another_container_is_fine() {
    let sidecar = "    - name: sidecar\n      image: busybox";
    let item = one(&format!(
        "{}---{}",
        annotated_sa(),
        pod(
            LABEL,
            "azure.workload.identity/skip-containers: sidecar",
            sidecar
        )
    ));
    assert_eq!(item.verdict, Verdict::Pass, "{:#?}", item.checks);
    assert!(message_of(&item, "azure.wi.pod-mutated").contains("sidecar skipped"));
}

#[test]
fn proxy_sidecar_is_noted_and_host_network_rejected() {
    let item = one(&format!(
        "{}---{}",
        annotated_sa(),
        pod(
            LABEL,
            "azure.workload.identity/inject-proxy-sidecar: 'true'",
            ""
        )
    ));
    assert_eq!(
        status_of(&item, "azure.wi.proxy-sidecar"),
        Some(Status::Pass)
    );
    assert!(message_of(&item, "azure.wi.proxy-sidecar").contains("port 8000"));
    let host_network = format!(
        "{}---{}",
        annotated_sa(),
        pod(
            LABEL,
            "azure.workload.identity/inject-proxy-sidecar: 'true'",
            ""
        )
    )
    .replace(
        "  serviceAccountName: aks-service-account\n",
        "  serviceAccountName: aks-service-account\n  hostNetwork: true\n",
    );
    let item = one(&host_network);
    assert_eq!(
        status_of(&item, "azure.wi.proxy-sidecar"),
        Some(Status::Fail)
    );
}

#[test]
fn mutated_live_pod_passes() {
    let item = one(&format!(
        "{}---{}",
        annotated_sa(),
        mutated_live_pod(&client_env(CLIENT), V16_PATH, "api://AzureADTokenExchange")
    ));
    assert_eq!(item.verdict, Verdict::Pass, "{:#?}", item.checks);
    assert_eq!(
        status_of(&item, "azure.wi.client-id-drift"),
        Some(Status::Pass)
    );
}

#[test]
fn live_pod_created_before_the_binding_must_be_recreated() {
    let unmutated = format!(
        "{}---{}",
        annotated_sa(),
        pod(LABEL, "", "").replace(
            "  name: azure-pod\n",
            "  name: azure-pod\n  uid: 6a1c0000-1111-2222-3333-444455556666\n"
        )
    );
    let item = one(&unmutated);
    assert_eq!(status_of(&item, "azure.wi.pod-mutated"), Some(Status::Fail));
    assert!(message_of(&item, "azure.wi.pod-mutated").contains("predates its binding"));
    assert!(
        fix_of(&item, "azure.wi.pod-mutated").contains("kubectl delete pod -n default azure-pod")
    );

    // Labelled and mutated, but created before the client-id annotation existed.
    let item = one(&format!(
        "{}---{}",
        annotated_sa(),
        mutated_live_pod("", V16_PATH, "api://AzureADTokenExchange")
    ));
    assert_eq!(status_of(&item, "azure.wi.pod-mutated"), Some(Status::Fail));
    assert!(message_of(&item, "azure.wi.pod-mutated").contains("has no AZURE_CLIENT_ID"));
}

#[test]
fn preset_client_id_overrides_the_service_account() {
    let preset = format!(
        "{}---{}",
        annotated_sa(),
        pod(LABEL, "", "").replace(
            "      command: [\"sleep\", \"3600\"]\n",
            &format!(
                "      command: [\"sleep\", \"3600\"]\n      env:\n        - {{name: AZURE_CLIENT_ID, value: '{OTHER}'}}\n"
            )
        )
    );
    let item = one(&preset);
    assert_eq!(status_of(&item, "azure.wi.preset-env"), Some(Status::Fail));
    let msg = message_of(&item, "azure.wi.preset-env");
    assert!(msg.contains(OTHER) && msg.contains(CLIENT), "{msg}");
}

#[test]
fn client_id_drift_after_reannotation() {
    let item = one(&format!(
        "{}---{}",
        annotated_sa(),
        mutated_live_pod(&client_env(OTHER), V16_PATH, "api://AzureADTokenExchange")
    ));
    assert_eq!(
        status_of(&item, "azure.wi.client-id-drift"),
        Some(Status::Fail)
    );
}

#[test]
fn hard_coded_v1_5_token_path_finds_no_token() {
    let item = one(&format!(
        "{}---{}",
        annotated_sa(),
        mutated_live_pod(
            &client_env(CLIENT),
            "/var/run/secrets/azure/tokens/azure-identity-token",
            "api://AzureADTokenExchange"
        )
    ));
    assert_eq!(status_of(&item, "azure.wi.token-path"), Some(Status::Fail));
    assert!(message_of(&item, "azure.wi.token-path").contains("v1.6 moved the token"));
}

#[test]
fn wrong_token_audience_fails() {
    let item = one(&format!(
        "{}---{}",
        annotated_sa(),
        mutated_live_pod(&client_env(CLIENT), V16_PATH, "sts.amazonaws.com")
    ));
    assert_eq!(status_of(&item, "azure.wi.audience"), Some(Status::Fail));
}

#[test]
fn deployment_template_is_judged_with_its_template_labels() {
    let yaml = format!(
        r#"{}---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: azure-app, namespace: default}}
spec:
  selector: {{matchLabels: {{app: azure-app}}}}
  template:
    metadata:
      labels: {{app: azure-app, {LABEL}}}
    spec:
      serviceAccountName: aks-service-account
      containers: [{{name: app, image: mcr.microsoft.com/azure-cli}}]
"#,
        annotated_sa()
    );
    let item = one(&yaml);
    assert_eq!(item.pod.kind, "Deployment");
    assert_eq!(item.verdict, Verdict::Pass, "{:#?}", item.checks);
    let unlabelled = one(&yaml.replace(&format!(", {LABEL}"), ""));
    assert!(fix_of(&unlabelled, "azure.wi.pod-label").contains("spec.template.metadata.labels"));
}

fn jwt(payload: &str) -> Vec<u8> {
    format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k"}"#),
        URL_SAFE_NO_PAD.encode(payload)
    )
    .into_bytes()
}

fn with_token(yaml: &str, payload: &str, options: &VerifyOptions) -> ReportItem {
    let probe = Probe::Offline {
        token: Some(OfflineToken {
            bytes: jwt(payload),
            origin: "token from --token-file test".into(),
        }),
    };
    judge_with(yaml, &probe, options).remove(0)
}

#[test]
fn offline_token_claims_are_checked_before_the_exchange() {
    let yaml = format!("{}---{}", annotated_sa(), pod(LABEL, "", ""));
    let options = VerifyOptions::default();
    let item = with_token(
        &yaml,
        r#"{"iss":"https://issuer.example","sub":"system:serviceaccount:default:aks-service-account","aud":["sts.amazonaws.com"],"exp":4000000000}"#,
        &options,
    );
    assert_eq!(status_of(&item, "azure.token.claims"), Some(Status::Fail));
    assert!(message_of(&item, "azure.token.claims").contains("api://AzureADTokenExchange"));
}

#[test]
fn unreachable_authority_is_a_warning_not_a_verdict() {
    let yaml = format!("{}---{}", annotated_sa(), pod(LABEL, "", ""));
    let options = VerifyOptions {
        azure: AzureTarget {
            // Nothing listens on port 1: connection refused at once.
            authority_host: Some("https://127.0.0.1:1/".into()),
            timeout: Some(std::time::Duration::from_secs(10)),
            ..Default::default()
        },
        ..Default::default()
    };
    let item = with_token(
        &yaml,
        r#"{"iss":"https://issuer.example","sub":"system:serviceaccount:default:aks-service-account","aud":["api://AzureADTokenExchange"],"exp":4000000000}"#,
        &options,
    );
    assert_eq!(status_of(&item, "azure.token.claims"), Some(Status::Pass));
    assert_eq!(status_of(&item, "azure.entra.token"), Some(Status::Warn));
    assert!(item.unreachable);
    let msg = message_of(&item, "azure.entra.token");
    assert!(
        msg.contains("https://127.0.0.1:1/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token"),
        "{msg}"
    );
    assert!(msg.contains("--azure-authority-host"), "{msg}");
}

#[test]
fn plain_http_authority_is_refused_like_the_sdk_does() {
    let yaml = format!("{}---{}", annotated_sa(), pod(LABEL, "", ""));
    let options = VerifyOptions {
        azure: AzureTarget {
            authority_host: Some("http://127.0.0.1:1/".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let item = with_token(
        &yaml,
        r#"{"iss":"https://issuer.example","sub":"system:serviceaccount:default:aks-service-account","aud":["api://AzureADTokenExchange"],"exp":4000000000}"#,
        &options,
    );
    assert_eq!(status_of(&item, "azure.entra.token"), Some(Status::Fail));
    assert!(message_of(&item, "azure.entra.token").contains("HTTPS"));
}
