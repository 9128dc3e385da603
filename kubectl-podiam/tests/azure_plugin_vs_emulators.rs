//! The built plugin against the strict Azure emulators (HTTPS OIDC issuer, Entra token endpoint
//! with its own CA, Blob front with RBAC), no cluster: `verify -f examples/azure --token-file -`
//! as a user would run it offline. The emulators' judgement (e2e/src/emulators/azure) is
//! separate code from the plugin's diagnosis, so these compare the two.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use podiam_e2e::emulators::azure::{
    AzureEmulators, AzureSetup, SEED_CLIENT_ID, TOKEN_EXCHANGE_AUDIENCE,
};
use podiam_e2e::emulators::{DEFAULT_ISSUER_PATH, OidcIssuer, SigningKey, TokenSpec};
use podiam_e2e::setup::SetupVariables;
use serde_json::Value;

const BLOB: &str = "blob:list=mystorageaccount/mycontainer";

struct Fixture {
    issuer: OidcIssuer,
    azure: AzureEmulators,
    _state: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let state = tempfile::tempdir().expect("temp dir");
    let issuer = OidcIssuer::start(
        state.path(),
        DEFAULT_ISSUER_PATH,
        SigningKey::generate().expect("signing key"),
        &tokio::runtime::Handle::current(),
    )
    .expect("OIDC issuer starts");
    let azure = AzureEmulators::start_seeded(issuer.url(), issuer.ca_file())
        .await
        .expect("Azure emulators start with the seed");
    Fixture {
        issuer,
        azure,
        _state: state,
    }
}

impl Fixture {
    fn apply(&self, setup: &AzureSetup) {
        self.azure
            .apply(
                setup,
                &SetupVariables {
                    issuer: self.issuer.url().to_owned(),
                    account_id: String::new(),
                },
            )
            .expect("setup applies");
    }

    fn token(&self, adjust: impl Fn(&mut TokenSpec)) -> String {
        let mut spec = TokenSpec::new("default", "aks-service-account");
        spec.audiences = vec![TOKEN_EXCHANGE_AUDIENCE.to_owned()];
        adjust(&mut spec);
        self.issuer.mint_token(&spec).expect("mint")
    }

    /// Runs the plugin offline with the token on stdin, trusting the emulators' CA bundle
    /// through SSL_CERT_FILE (as the harness does) unless `trust` is false.
    fn verify(&self, token: &str, trust: bool, extra: &[&str]) -> (Output, Value) {
        let mut cmd = Command::cargo_bin("kubectl-podiam").unwrap();
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .env("PODIAM_AZURE_BLOB_ENDPOINT", self.azure.blob_endpoint())
            .args(["verify", "-o", "json", "--token-file", "-", "-f"])
            .arg(examples())
            .args(["--azure-authority-host", self.azure.entra_url()])
            .args(extra)
            .write_stdin(token.to_string());
        if trust {
            cmd.env("SSL_CERT_FILE", self.azure.ca_bundle_file());
        } else {
            // Only the issuer's CA: a valid bundle in which no root signed Entra's certificate.
            cmd.env("SSL_CERT_FILE", self.issuer.ca_file());
        }
        let out = cmd.output().unwrap();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "no JSON report ({e}); stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        for line in [&out.stdout, &out.stderr] {
            assert!(
                !String::from_utf8_lossy(line).contains(&token[..40]),
                "the token leaked into the output"
            );
        }
        (out, report)
    }
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/azure")
}

fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["items"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {report:#}"))
}

fn message(report: &Value, id: &str) -> String {
    check(report, id)["message"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_flow_exchanges_at_entra_and_lists_the_container() {
    let f = fixture().await;
    let token = f.token(|_| {});
    let (out, report) = f.verify(
        &token,
        true,
        &["--expect-client-id", SEED_CLIENT_ID, "--can", BLOB],
    );
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["items"][0]["mechanism"], "azure-workload-identity");
    assert_eq!(report["items"][0]["identity"]["provider"], "azure");
    assert_eq!(report["items"][0]["identity"]["principal"], SEED_CLIENT_ID);
    let source = report["items"][0]["identity"]["source"].as_str().unwrap();
    assert!(
        source.contains(&format!("exchanged at {}/", f.azure.entra_url())),
        "{source}"
    );
    assert_eq!(check(&report, "azure.entra.token")["status"], "pass");
    assert!(
        message(&report, "azure.entra.token")
            .contains("tenant 72f988bf-86f1-41af-91ab-2d7cd011db47")
    );
    assert_eq!(
        check(&report, "azure.entra.expected-client-id")["status"],
        "pass"
    );
    assert_eq!(check(&report, "azure.access.can")["status"], "pass");
    // The emulator really issued one token, for this application and Storage.
    let issued = f.azure.issued_tokens();
    assert_eq!(issued.len(), 1, "{issued:?}");
    assert_eq!(issued[0].client_id, SEED_CLIENT_ID);
    assert_eq!(issued[0].audience, "https://storage.azure.com");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_role_is_denied_by_the_blob_front() {
    let f = fixture().await;
    let mut setup = AzureSetup::seed();
    setup.storage_accounts[0].role_assignments.clear();
    f.apply(&setup);
    let token = f.token(|_| {});
    let (out, report) = f.verify(&token, true, &["--can", BLOB]);
    assert_eq!(out.status.code(), Some(1), "{report:#}");
    assert_eq!(report["items"][0]["identity"]["principal"], SEED_CLIENT_ID);
    assert_eq!(check(&report, "azure.access.can")["status"], "fail");
    assert!(message(&report, "azure.access.can").contains("AuthorizationPermissionMismatch"));
    let (out, report) = f.verify(&token, true, &["--cannot", BLOB]);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(check(&report, "azure.access.cannot")["status"], "pass");
}

#[tokio::test(flavor = "multi_thread")]
async fn entra_rejections_are_explained_with_the_tokens_claims() {
    let f = fixture().await;

    // Audience not api://AzureADTokenExchange: no matching federated credential.
    let (out, report) = f.verify(
        &f.token(|s| s.audiences = vec!["sts.amazonaws.com".to_owned()]),
        true,
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(check(&report, "azure.token.claims")["status"], "fail");
    let m = message(&report, "azure.entra.token");
    assert!(m.contains("AADSTS70021"), "{m}");
    assert!(m.contains(&format!("issuer {}", f.issuer.url())), "{m}");
    assert!(m.contains("audience sts.amazonaws.com"), "{m}");

    // Subject differs in case only: Entra compares exactly.
    let (_, report) = f.verify(
        &f.token(|s| s.subject = Some("system:serviceaccount:default:AKS-service-account".into())),
        true,
        &[],
    );
    let m = message(&report, "azure.entra.token");
    assert!(m.contains("AADSTS700213"), "{m}");
    assert!(
        m.contains("sub=system:serviceaccount:default:AKS-service-account"),
        "{m}"
    );

    // Expired assertion.
    let (_, report) = f.verify(&f.token(|s| s.expired = true), true, &[]);
    let m = message(&report, "azure.entra.token");
    assert!(m.contains("AADSTS700024") && m.contains("expired"), "{m}");
    assert!(
        check(&report, "azure.entra.token")["remediation"]
            .as_str()
            .unwrap()
            .contains("read the token file fresh")
    );

    // The federated credential names the issuer with a trailing slash; the token has none.
    let mut slash = AzureSetup::seed();
    slash.applications[0].federated_credentials[0].issuer = "${ISSUER}/".to_owned();
    f.apply(&slash);
    let (_, report) = f.verify(&f.token(|_| {}), true, &[]);
    let m = message(&report, "azure.entra.token");
    assert!(m.contains("AADSTS700211"), "{m}");
    assert!(m.contains("has no trailing '/'"), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_emulators_ca_is_trusted_only_through_ssl_cert_file() {
    let f = fixture().await;
    let (out, report) = f.verify(&f.token(|_| {}), false, &[]);
    assert_eq!(out.status.code(), Some(3), "{report:#}");
    assert_eq!(check(&report, "azure.entra.token")["status"], "warn");
    assert!(message(&report, "azure.entra.token").contains("unreachable"));
    assert!(f.azure.issued_tokens().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn no_assertion_or_access_token_in_output_at_highest_verbosity() {
    let f = fixture().await;
    let token = f.token(|_| {});
    let jwt = regex::Regex::new(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}").unwrap();
    for format in ["json", "text"] {
        let mut cmd = Command::cargo_bin("kubectl-podiam").unwrap();
        let out = cmd
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SSL_CERT_FILE", f.azure.ca_bundle_file())
            .env("PODIAM_AZURE_BLOB_ENDPOINT", f.azure.blob_endpoint())
            .args(["-vvv", "verify", "-o", format, "--token-file", "-", "-f"])
            .arg(examples())
            .args(["--azure-authority-host", f.azure.entra_url(), "--can", BLOB])
            .write_stdin(token.clone())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{format}");
        for (what, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let text = String::from_utf8_lossy(text);
            assert!(
                !jwt.is_match(&text),
                "{format} {what}: a JWT-shaped string leaked"
            );
            assert!(
                !text.contains(token.split('.').nth(1).unwrap()),
                "{format} {what}"
            );
        }
    }
    assert_eq!(f.azure.issued_tokens().len(), 2, "both runs exchanged");
}

/// Token requests to Entra as (what the emulator answered), in order.
fn entra_token_outcomes(f: &Fixture) -> Vec<String> {
    f.azure
        .request_log()
        .into_iter()
        .filter(|e| e.path.ends_with("/oauth2/v2.0/token"))
        .map(|e| e.outcome)
        .collect()
}

/// Entra throttling once (429, `Retry-After: 1`): azure_core's retry waits and asks again,
/// as the pod's azure-identity would; the run is judged as without the throttle.
#[tokio::test(flavor = "multi_thread")]
async fn entra_throttling_once_is_retried_after_its_retry_after() {
    let f = fixture().await;
    f.azure.fail_token_requests(429, 1);
    let started = std::time::Instant::now();
    let (out, report) = f.verify(&f.token(|_| {}), true, &["--can", BLOB]);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(check(&report, "azure.entra.token")["status"], "pass");
    assert_eq!(
        entra_token_outcomes(&f),
        ["injected 429", "200"],
        "one throttled request, then the retry"
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(1),
        "Retry-After honoured: {:?}",
        started.elapsed()
    );
}

/// Entra failing every attempt (500): no identity could be established, so never a pass and
/// never a verdict on the binding either: exit 3, the check naming Entra's answer.
#[tokio::test(flavor = "multi_thread")]
async fn entra_failing_every_attempt_exits_3_naming_the_error() {
    let f = fixture().await;
    f.azure.fail_token_requests(500, 10);
    let (out, report) = f.verify(&f.token(|_| {}), true, &["--can", BLOB]);
    let entra = check(&report, "azure.entra.token");
    assert_eq!(out.status.code(), Some(3), "{report:#}");
    assert_eq!(report["items"][0]["verdict"], "incomplete", "{report:#}");
    assert_eq!(entra["status"], "warn", "{entra:#}");
    let text = entra["message"].as_str().unwrap();
    assert!(
        text.starts_with("Entra failed on the service's side each of 3 attempts (HTTP 500 AADSTS90033: A transient error has occurred. Please try again.)")
            && text.contains("the binding was not judged"),
        "the answer is named: {text}"
    );
    assert_eq!(
        entra_token_outcomes(&f),
        ["injected 500"; 3],
        "three attempts, as the other clouds' standard modes"
    );
}
