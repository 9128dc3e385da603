//! The built plugin against the strict GCP emulators (own OIDC issuer, STS, IAM Credentials,
//! GCS front), no cluster: the external_account path of `verify -f … --token-file -`, with the
//! config in a ConfigMap of the input, exactly as a user would run it offline. The emulators'
//! enforcement is separate code from the plugin's diagnosis, so these compare the two.

use std::process::Output;

use assert_cmd::Command;
use podiam_e2e::emulators::TokenSpec;
use podiam_e2e::emulators::gcp::{GcpEmulatorOptions, GcpEmulators, GcpSetup};
use podiam_e2e::setup::SetupVariables;
use serde_json::Value;

const GSA: &str = "gke-service-account@my-project.iam.gserviceaccount.com";
const UNBOUND_GSA: &str = "unbound@my-project.iam.gserviceaccount.com";
const POOL: &str = "podiam-pool";
const PROVIDER: &str = "podiam-provider";
const PRINCIPAL: &str = "principal://iam.googleapis.com/projects/1234567890/locations/global/workloadIdentityPools/podiam-pool/subject/system:serviceaccount:default:gke-service-account";

const SETUP: &str = r#"
projectId: my-project
projectNumber: "1234567890"
serviceAccounts:
  - email: gke-service-account@my-project.iam.gserviceaccount.com
    iamPolicy:
      bindings:
        - role: roles/iam.workloadIdentityUser
          members: ["principal://iam.googleapis.com/projects/1234567890/locations/global/workloadIdentityPools/podiam-pool/subject/system:serviceaccount:default:gke-service-account"]
  - email: unbound@my-project.iam.gserviceaccount.com
workloadIdentityPools:
  - {pool: podiam-pool, provider: podiam-provider, issuer: "${ISSUER}"}
buckets:
  - name: my-bucket
    objects: {hello.txt: hello from podiam}
    bindings:
      - role: roles/storage.objectViewer
        members: ["serviceAccount:gke-service-account@my-project.iam.gserviceaccount.com"]
  - name: private-bucket
    objects: {secret.txt: not for you}
"#;

async fn emulators() -> GcpEmulators {
    let emulators = GcpEmulators::start(GcpEmulatorOptions {
        test_issuer: true,
        ..GcpEmulatorOptions::default()
    })
    .await
    .expect("GCP emulators start");
    let setup: GcpSetup = serde_saphyr::from_str(SETUP).expect("setup parses");
    let variables = SetupVariables {
        issuer: emulators.issuer_url().expect("own issuer").to_owned(),
        account_id: String::new(),
    };
    emulators.apply(&setup, &variables).expect("apply setup");
    emulators
}

/// A token for default/gke-service-account with the provider's default allowed audience.
fn token(emu: &GcpEmulators, adjust: impl Fn(&mut TokenSpec)) -> String {
    let mut spec = TokenSpec::new("default", "gke-service-account");
    spec.audiences = vec![format!("https:{}", emu.provider_audience(POOL, PROVIDER))];
    adjust(&mut spec);
    emu.mint_token(&spec).expect("mint token")
}

/// KSA, the external_account config as a ConfigMap, and the pod mounting both.
fn manifests(
    dir: &tempfile::TempDir,
    emu: &GcpEmulators,
    audience: &str,
    gsa: &str,
) -> std::path::PathBuf {
    let config = serde_json::json!({
        "type": "external_account",
        "audience": audience,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": emu.token_url(),
        "service_account_impersonation_url": emu.impersonation_url(gsa),
        "credential_source": {"file": "/var/run/service-account/token", "format": {"type": "text"}},
    });
    let file = dir.path().join("app.yaml");
    std::fs::write(
        &file,
        format!(
            r#"apiVersion: v1
kind: ServiceAccount
metadata: {{name: gke-service-account, namespace: default}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: wif-config, namespace: default}}
data:
  credential-configuration.json: '{config}'
---
apiVersion: v1
kind: Pod
metadata: {{name: gcs-pod, namespace: default}}
spec:
  serviceAccountName: gke-service-account
  containers:
    - name: app
      image: google/cloud-sdk
      command: [sleep, "3600"]
      env: [{{name: GOOGLE_APPLICATION_CREDENTIALS, value: /etc/gcp/credential-configuration.json}}]
      volumeMounts:
        - {{name: gcp-config, mountPath: /etc/gcp}}
        - {{name: token, mountPath: /var/run/service-account, readOnly: true}}
  volumes:
    - name: gcp-config
      configMap: {{name: wif-config}}
    - name: token
      projected:
        sources:
          - serviceAccountToken: {{audience: 'https:{audience}', expirationSeconds: 3600, path: token}}
"#
        ),
    )
    .unwrap();
    file
}

fn verify(
    emu: &GcpEmulators,
    manifests: &std::path::Path,
    token: &str,
    extra: &[&str],
) -> (Output, Value) {
    let out = Command::cargo_bin("kubectl-podiam")
        .unwrap()
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("STORAGE_EMULATOR_HOST", emu.gcs_url())
        .args(["verify", "-o", "json", "--token-file", "-", "-f"])
        .arg(manifests)
        .args(extra)
        .write_stdin(token.to_string())
        .output()
        .unwrap();
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

fn checks_named<'a>(report: &'a Value, id: &str) -> Vec<&'a Value> {
    report["items"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == id)
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn external_account_exchange_gets_the_gsa_and_its_bucket_access() {
    let emu = emulators().await;
    let dir = tempfile::tempdir().unwrap();
    let file = manifests(&dir, &emu, &emu.provider_audience(POOL, PROVIDER), GSA);
    let token = token(&emu, |_| {});
    let (out, report) = verify(
        &emu,
        &file,
        &token,
        &[
            "--expect-gsa",
            GSA,
            "--can",
            "gcs:list=my-bucket",
            "--can",
            "gcs:get=my-bucket/hello.txt",
            "--cannot",
            "gcs:list=private-bucket",
            "-vvv",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    let item = &report["items"][0];
    assert_eq!(item["mechanism"], "gcp-workload-identity");
    assert_eq!(item["identity"]["provider"], "gcp");
    assert_eq!(item["identity"]["principal"], GSA);
    assert!(
        item["identity"]["source"]
            .as_str()
            .unwrap()
            .contains("ConfigMap wif-config"),
        "{report:#}"
    );
    assert_eq!(check(&report, "gcp.sts.exchange")["status"], "pass");
    assert!(
        check(&report, "gcp.sts.exchange")["message"]
            .as_str()
            .unwrap()
            .contains(PRINCIPAL)
    );
    assert_eq!(
        check(&report, "gcp.iam.generate-access-token")["status"],
        "pass"
    );
    assert_eq!(check(&report, "gcp.token.claims")["status"], "pass");
    assert_eq!(check(&report, "gcp.expected-gsa")["status"], "pass");
    let can = checks_named(&report, "gcp.access.can");
    assert_eq!(can.len(), 2);
    assert!(can.iter().all(|c| c["status"] == "pass"), "{report:#}");
    let cannot = check(&report, "gcp.access.cannot");
    assert_eq!(cannot["status"], "pass");
    assert!(
        cannot["message"].as_str().unwrap().contains("403"),
        "{cannot}"
    );
    // The subject token reaches neither the report nor the most verbose log.
    let payload = token.split('.').nth(1).unwrap();
    for stream in [&out.stdout, &out.stderr] {
        let text = String::from_utf8_lossy(stream);
        assert!(!text.contains(payload), "token payload in output");
    }
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("GCS call"),
        "-vvv logs the GCS calls (without tokens)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_workload_identity_user_binding_is_pinpointed() {
    let emu = emulators().await;
    let dir = tempfile::tempdir().unwrap();
    let file = manifests(
        &dir,
        &emu,
        &emu.provider_audience(POOL, PROVIDER),
        UNBOUND_GSA,
    );
    let (out, report) = verify(
        &emu,
        &file,
        &token(&emu, |_| {}),
        &["--can", "gcs:list=my-bucket"],
    );
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(check(&report, "gcp.sts.exchange")["status"], "pass");
    let iam = check(&report, "gcp.iam.generate-access-token");
    assert_eq!(iam["status"], "fail");
    assert!(
        iam["message"]
            .as_str()
            .unwrap()
            .contains("PERMISSION_DENIED"),
        "{iam}"
    );
    let fix = iam["remediation"].as_str().unwrap();
    assert!(
        fix.contains(&format!(
            "add-iam-policy-binding {UNBOUND_GSA} --role=roles/iam.workloadIdentityUser --member={PRINCIPAL}"
        )),
        "{fix}"
    );
    assert_eq!(check(&report, "gcp.access.can")["status"], "skip");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_token_audience_is_invalid_grant() {
    let emu = emulators().await;
    let dir = tempfile::tempdir().unwrap();
    let file = manifests(&dir, &emu, &emu.provider_audience(POOL, PROVIDER), GSA);
    let token = token(&emu, |s| s.audiences = vec!["sts.amazonaws.com".into()]);
    let (out, report) = verify(&emu, &file, &token, &[]);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    let sts = check(&report, "gcp.sts.exchange");
    assert_eq!(sts["status"], "fail");
    let message = sts["message"].as_str().unwrap();
    assert!(message.contains("invalid_grant"), "{message}");
    assert!(message.contains("sts.amazonaws.com"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_pool_is_invalid_target() {
    let emu = emulators().await;
    let dir = tempfile::tempdir().unwrap();
    let file = manifests(
        &dir,
        &emu,
        &emu.provider_audience("no-such-pool", PROVIDER),
        GSA,
    );
    let (out, report) = verify(&emu, &file, &token(&emu, |_| {}), &[]);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    let sts = check(&report, "gcp.sts.exchange");
    assert_eq!(sts["status"], "fail");
    assert!(
        sts["message"].as_str().unwrap().contains("invalid_target"),
        "{sts}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_subject_token_is_caught_before_and_by_sts() {
    let emu = emulators().await;
    let dir = tempfile::tempdir().unwrap();
    let file = manifests(&dir, &emu, &emu.provider_audience(POOL, PROVIDER), GSA);
    let (out, report) = verify(&emu, &file, &token(&emu, |s| s.expired = true), &[]);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(check(&report, "gcp.token.claims")["status"], "fail");
    assert_eq!(check(&report, "gcp.sts.exchange")["status"], "fail");
}
