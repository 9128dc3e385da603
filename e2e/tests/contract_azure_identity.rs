//! Contract: azure-identity and azure-storage-blob (from the harness venv) against the strict
//! Entra and Blob emulators, via pytest; and the same judgements checked from Rust over raw
//! HTTP, so a failing case names the exact response.
//!
//! The assertions are minted by an HTTPS OIDC issuer started here (as the cluster's would be)
//! and passed to pytest through its environment, never printed. Needs python3 with venv and a
//! reachable PyPI — fails naming them otherwise.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use podiam_e2e::emulators::azure::{
    AzureEmulatorOptions, AzureEmulators, AzureSetup, DEFAULT_TENANT_ID, SEED_CLIENT_ID,
    TOKEN_EXCHANGE_AUDIENCE,
};
use podiam_e2e::emulators::{DEFAULT_ISSUER_PATH, OidcIssuer, SigningKey, TokenSpec};
use podiam_e2e::python_env::PythonEnv;
use podiam_e2e::setup::SetupVariables;
use serde_json::Value;

const SLASH_CLIENT_ID: &str = "22222222-2222-3333-4444-555555555555";
const UNREACHABLE_CLIENT_ID: &str = "33333333-2222-3333-4444-555555555555";
const NO_ROLE_CLIENT_ID: &str = "44444444-2222-3333-4444-555555555555";
const UNKNOWN_CLIENT_ID: &str = "99999999-2222-3333-4444-555555555555";
/// Nothing listens on port 1: Entra's discovery fetch fails like for a private issuer.
const UNREACHABLE_ISSUER: &str = "https://127.0.0.1:1/unreachable";

/// The seed, plus: an app whose credential names the issuer with a trailing slash, one whose
/// issuer cannot be reached, and one federated but without any role.
fn contract_setup() -> AzureSetup {
    let mut setup = AzureSetup::seed();
    let extra: AzureSetup = serde_saphyr::from_str(&format!(
        r#"
applications:
  - clientId: {SLASH_CLIENT_ID}
    federatedCredentials:
      - name: trailing-slash
        issuer: ${{ISSUER}}/
        subject: system:serviceaccount:default:aks-service-account
        audiences: [{TOKEN_EXCHANGE_AUDIENCE}]
  - clientId: {UNREACHABLE_CLIENT_ID}
    federatedCredentials:
      - name: private-issuer
        issuer: {UNREACHABLE_ISSUER}
        subject: system:serviceaccount:default:aks-service-account
        audiences: [{TOKEN_EXCHANGE_AUDIENCE}]
  - clientId: {NO_ROLE_CLIENT_ID}
    federatedCredentials:
      - name: no-role
        issuer: ${{ISSUER}}
        subject: system:serviceaccount:default:no-role
        audiences: [{TOKEN_EXCHANGE_AUDIENCE}]
"#
    ))
    .expect("extra applications parse");
    setup.applications.extend(extra.applications);
    setup
}

struct Fixture {
    issuer: OidcIssuer,
    azure: AzureEmulators,
    _state: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let state = tempfile::tempdir().expect("temp dir");
    let issuer = OidcIssuer::start(
        state.path(),
        DEFAULT_ISSUER_PATH,
        SigningKey::generate().expect("key"),
        &tokio::runtime::Handle::current(),
    )
    .expect("issuer starts");
    let azure = AzureEmulators::start(AzureEmulatorOptions {
        trusted_ca_files: vec![issuer.ca_file().to_path_buf()],
        ..AzureEmulatorOptions::default()
    })
    .await
    .expect("Azure emulators start");
    azure
        .apply(
            &contract_setup(),
            &SetupVariables {
                issuer: issuer.url().to_owned(),
                account_id: String::new(),
            },
        )
        .expect("setup applies");
    Fixture {
        issuer,
        azure,
        _state: state,
    }
}

fn assertion(issuer: &OidcIssuer, adjust: &dyn Fn(&mut TokenSpec)) -> String {
    let mut spec = TokenSpec::new("default", "aks-service-account");
    spec.audiences = vec![TOKEN_EXCHANGE_AUDIENCE.to_owned()];
    adjust(&mut spec);
    issuer.mint_token(&spec).expect("mint")
}

async fn exchange(
    fixture: &Fixture,
    tenant: &str,
    client_id: &str,
    assertion: &str,
) -> (u16, Value) {
    let ca = reqwest::Certificate::from_pem(&fs::read(fixture.azure.ca_file()).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let response = http
        .post(format!(
            "{}/{tenant}/oauth2/v2.0/token",
            fixture.azure.entra_url()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("scope", "https://storage.azure.com/.default"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ])
        .send()
        .await
        .expect("token endpoint answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

fn assert_aadsts(status: u16, body: &Value, code: u64, http: u16, error: &str) {
    assert_eq!(body["error_codes"][0], code, "{body}");
    assert_eq!(status, http, "{body}");
    assert_eq!(body["error"], error, "{body}");
    let description = body["error_description"].as_str().expect("description");
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    for field in ["timestamp", "trace_id", "correlation_id"] {
        assert!(body[field].is_string(), "{field} missing: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn entra_judges_federated_assertions_like_entra() {
    let f = fixture().await;
    let valid = assertion(&f.issuer, &|_| {});
    let (status, body) = exchange(&f, DEFAULT_TENANT_ID, SEED_CLIENT_ID, &valid).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    let issued = f.azure.issued_tokens();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].client_id, SEED_CLIENT_ID);
    assert_eq!(issued[0].audience, "https://storage.azure.com");
    assert_eq!(issued[0].credential, "aks-federated-credential");

    let (s, b) = exchange(
        &f,
        DEFAULT_TENANT_ID,
        SEED_CLIENT_ID,
        &assertion(&f.issuer, &|s| {
            s.audiences = vec!["sts.amazonaws.com".to_owned()]
        }),
    )
    .await;
    assert_aadsts(s, &b, 70021, 400, "invalid_request");
    let d = b["error_description"].as_str().unwrap();
    assert!(
        d.contains(&format!("Assertion Issuer: '{}'", f.issuer.url())),
        "{d}"
    );
    assert!(d.contains("Assertion Audience: 'sts.amazonaws.com'"), "{d}");

    let (s, b) = exchange(&f, DEFAULT_TENANT_ID, SLASH_CLIENT_ID, &valid).await;
    assert_aadsts(s, &b, 700211, 400, "invalid_request");

    let (s, b) = exchange(
        &f,
        DEFAULT_TENANT_ID,
        SEED_CLIENT_ID,
        &assertion(&f.issuer, &|s| {
            s.subject = Some("system:serviceaccount:default:AKS-service-account".to_owned())
        }),
    )
    .await;
    assert_aadsts(s, &b, 700213, 400, "invalid_request");

    let (s, b) = exchange(
        &f,
        DEFAULT_TENANT_ID,
        SEED_CLIENT_ID,
        &assertion(&f.issuer, &|s| s.expired = true),
    )
    .await;
    assert_aadsts(s, &b, 700024, 401, "invalid_client");

    let (s, b) = exchange(
        &f,
        DEFAULT_TENANT_ID,
        UNREACHABLE_CLIENT_ID,
        &assertion(&f.issuer, &|s| {
            s.issuer = Some(UNREACHABLE_ISSUER.to_owned())
        }),
    )
    .await;
    assert_aadsts(s, &b, 90061, 400, "invalid_request");

    let (s, b) = exchange(
        &f,
        DEFAULT_TENANT_ID,
        SEED_CLIENT_ID,
        &assertion(&f.issuer, &|s| s.wrong_key = true),
    )
    .await;
    assert_aadsts(s, &b, 700027, 401, "invalid_client");

    let (s, b) = exchange(&f, DEFAULT_TENANT_ID, UNKNOWN_CLIENT_ID, &valid).await;
    assert_aadsts(s, &b, 700016, 400, "unauthorized_client");

    let (s, b) = exchange(
        &f,
        "00000000-0000-0000-0000-000000000000",
        SEED_CLIENT_ID,
        &valid,
    )
    .await;
    assert_aadsts(s, &b, 90002, 400, "invalid_request");

    // A clock offset past the token's lifetime: the same live token is now expired.
    let mut skewed = contract_setup();
    skewed.clock_offset_seconds = 2 * 3600;
    f.azure
        .apply(
            &skewed,
            &SetupVariables {
                issuer: f.issuer.url().to_owned(),
                account_id: String::new(),
            },
        )
        .unwrap();
    let (s, b) = exchange(&f, DEFAULT_TENANT_ID, SEED_CLIENT_ID, &valid).await;
    assert_aadsts(s, &b, 700024, 401, "invalid_client");

    // Never a token in the request log.
    for entry in f.azure.request_log() {
        let line = format!("{entry:?}");
        assert!(!line.contains(&valid[..40]), "token in log: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blob_front_checks_tokens_and_role_assignments() {
    let f = fixture().await;
    let http = reqwest::Client::new();
    let list_url = format!(
        "{}/mystorageaccount/mycontainer?restype=container&comp=list",
        f.azure.blob_endpoint()
    );
    let anonymous = http.get(&list_url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.headers()["x-ms-error-code"],
        "NoAuthenticationInformation"
    );
    assert!(anonymous.headers().contains_key("www-authenticate"));

    let garbage = http
        .get(&list_url)
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 401);
    assert_eq!(
        garbage.headers()["x-ms-error-code"],
        "InvalidAuthenticationInfo"
    );
    let text = garbage.text().await.unwrap();
    assert!(
        text.contains("<Code>InvalidAuthenticationInfo</Code>"),
        "{text}"
    );

    let token = |client_id: &'static str, subject: &'static str| {
        let f = &f;
        async move {
            let a = assertion(&f.issuer, &|s| s.subject = Some(subject.to_owned()));
            let (status, body) = exchange(f, DEFAULT_TENANT_ID, client_id, &a).await;
            assert_eq!(status, 200, "{body}");
            body["access_token"].as_str().unwrap().to_owned()
        }
    };
    let reader = token(
        SEED_CLIENT_ID,
        "system:serviceaccount:default:aks-service-account",
    )
    .await;
    let listed = http
        .get(&list_url)
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let xml = listed.text().await.unwrap();
    assert!(xml.contains("<Name>hello.txt</Name>"), "{xml}");
    let blob = http
        .get(format!(
            "{}/mystorageaccount/mycontainer/hello.txt",
            f.azure.blob_endpoint()
        ))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(blob.text().await.unwrap(), "hello from podiam");
    let missing = http
        .get(format!(
            "{}/mystorageaccount/nocontainer?restype=container&comp=list",
            f.azure.blob_endpoint()
        ))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    // The Reader's scope is mycontainer: elsewhere it has no permission, existing or not.
    assert_eq!(missing.status(), 403);

    let stranger = token(NO_ROLE_CLIENT_ID, "system:serviceaccount:default:no-role").await;
    let refused = http
        .get(&list_url)
        .bearer_auth(&stranger)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.headers()["x-ms-error-code"],
        "AuthorizationPermissionMismatch"
    );
    let text = refused.text().await.unwrap();
    assert!(
        text.contains(
            "This request is not authorized to perform this operation using this permission."
        ),
        "{text}"
    );
    let log = f.azure.request_log();
    assert!(
        log.iter()
            .any(|e| e.outcome == "AuthorizationPermissionMismatch"
                && e.action.contains(NO_ROLE_CLIENT_ID))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn azure_identity_python_contract() {
    let f = fixture().await;
    let python = tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .unwrap()
        .expect("Python venv with azure-identity, azure-storage-blob and pytest");

    // WorkloadIdentityCredential reads a file, as in a pod: 0600, in a temp dir removed when
    // the test ends, never printed.
    let token_dir = tempfile::tempdir().expect("temp dir");
    let token_file = token_dir.path().join("azure-identity-token");
    write_private(&token_file, &assertion(&f.issuer, &|_| {}));

    let test_file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/test_azure_identity.py");
    let output = tokio::process::Command::new(python.python())
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(&test_file)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", token_dir.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("AZURE_AUTHORITY_HOST", f.azure.authority_host())
        .env("REQUESTS_CA_BUNDLE", f.azure.ca_bundle_file())
        .env("SSL_CERT_FILE", f.azure.ca_bundle_file())
        .env("PODIAM_TENANT_ID", DEFAULT_TENANT_ID)
        .env("PODIAM_CLIENT_ID", SEED_CLIENT_ID)
        .env("PODIAM_SLASH_CLIENT_ID", SLASH_CLIENT_ID)
        .env("PODIAM_UNREACHABLE_CLIENT_ID", UNREACHABLE_CLIENT_ID)
        .env("PODIAM_NO_ROLE_CLIENT_ID", NO_ROLE_CLIENT_ID)
        .env("PODIAM_UNKNOWN_CLIENT_ID", UNKNOWN_CLIENT_ID)
        .env("PODIAM_TOKEN_FILE", &token_file)
        .env("PODIAM_ASSERTION_VALID", assertion(&f.issuer, &|_| {}))
        .env(
            "PODIAM_ASSERTION_WRONG_AUDIENCE",
            assertion(&f.issuer, &|s| {
                s.audiences = vec!["sts.amazonaws.com".to_owned()]
            }),
        )
        .env(
            "PODIAM_ASSERTION_OTHER_SUBJECT",
            assertion(&f.issuer, &|s| {
                s.subject = Some("system:serviceaccount:default:someone-else".to_owned())
            }),
        )
        .env(
            "PODIAM_ASSERTION_EXPIRED",
            assertion(&f.issuer, &|s| s.expired = true),
        )
        .env(
            "PODIAM_ASSERTION_UNREACHABLE_ISSUER",
            assertion(&f.issuer, &|s| {
                s.issuer = Some(UNREACHABLE_ISSUER.to_owned())
            }),
        )
        .env(
            "PODIAM_ASSERTION_NO_ROLE",
            assertion(&f.issuer, &|s| {
                s.subject = Some("system:serviceaccount:default:no-role".to_owned())
            }),
        )
        .env(
            "PODIAM_BLOB_ACCOUNT_URL",
            format!("{}/mystorageaccount", f.azure.blob_https_endpoint()),
        )
        .output()
        .await
        .expect("run pytest from the venv");
    assert!(
        output.status.success(),
        "pytest failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("11 passed"), "expected all 11 Python cases to run: {stdout}");
    // The Rust side saw the tokens issued for the right applications.
    let issued = f.azure.issued_tokens();
    assert!(issued.iter().any(|t| t.client_id == SEED_CLIENT_ID));
    assert!(issued.iter().any(|t| t.client_id == NO_ROLE_CLIENT_ID));
    assert!(!issued.iter().any(|t| t.client_id == SLASH_CLIENT_ID));
}

fn write_private(path: &Path, contents: &str) {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .expect("create token file");
    file.write_all(contents.as_bytes())
        .expect("write token file");
}
