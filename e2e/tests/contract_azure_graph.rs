//! Contract: the Microsoft Graph emulator (applications' federated identity credentials) with
//! the operator principal's client-secret tokens: Graph's shapes, limits and authorization,
//! checked from Rust over raw HTTP; the same calls from azure-identity's ClientSecretCredential
//! and `requests` (the harness venv) via pytest; and Entra honouring what Graph wrote.
//!
//! Needs python3 with venv and a reachable PyPI for the Python half — fails naming them.

use std::fs;
use std::path::Path;

use podiam_e2e::emulators::azure::{
    AzureEmulatorOptions, AzureEmulators, AzureSetup, DEFAULT_TENANT_ID, OPERATOR_CLIENT_ID,
    SEED_CLIENT_ID, TOKEN_EXCHANGE_AUDIENCE, application_object_id,
};
use podiam_e2e::emulators::{DEFAULT_ISSUER_PATH, OidcIssuer, SigningKey, TokenSpec};
use podiam_e2e::python_env::PythonEnv;
use podiam_e2e::setup::SetupVariables;
use serde_json::{Value, json};

const OWNED_CLIENT_ID: &str = "55555555-2222-3333-4444-555555555555";

struct Fixture {
    issuer: OidcIssuer,
    azure: AzureEmulators,
    http: reqwest::Client,
    _state: tempfile::TempDir,
}

/// The seed plus an application owned by the operator.
fn setup(permissions: &[&str]) -> AzureSetup {
    let mut setup = AzureSetup::seed();
    let owned: AzureSetup = serde_saphyr::from_str(&format!(
        "applications:\n  - clientId: {OWNED_CLIENT_ID}\n    owners: [{OPERATOR_CLIENT_ID}]\n"
    ))
    .expect("owned application parses");
    setup.applications.extend(owned.applications);
    setup.operator_graph_permissions = permissions.iter().map(|p| (*p).to_owned()).collect();
    setup
}

impl Fixture {
    async fn start() -> Self {
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
        let ca = reqwest::Certificate::from_pem(&fs::read(azure.ca_file()).unwrap()).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(ca)
            .build()
            .unwrap();
        let fixture = Self {
            issuer,
            azure,
            http,
            _state: state,
        };
        fixture.apply(&setup(&["Application.ReadWrite.All"]));
        fixture
    }

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

    async fn operator_token(&self, secret: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!(
                "{}/{DEFAULT_TENANT_ID}/oauth2/v2.0/token",
                self.azure.entra_url()
            ))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", OPERATOR_CLIENT_ID),
                ("client_secret", secret),
                ("scope", "https://graph.microsoft.com/.default"),
            ])
            .send()
            .await
            .expect("token endpoint answers");
        (
            response.status().as_u16(),
            response.json().await.expect("JSON"),
        )
    }

    async fn token(&self) -> String {
        let (_, secret) = self.azure.operator_credentials();
        let (status, body) = self.operator_token(secret).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn graph(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(
                method,
                format!("{}/v1.0{path}", self.azure.graph_endpoint()),
            )
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("Graph answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Entra's answer to a ServiceAccount token of `subject` presented for the seed app.
    async fn exchange(&self, subject: &str) -> (u16, Value) {
        let mut spec = TokenSpec::new("default", "unused");
        spec.subject = Some(subject.to_owned());
        spec.audiences = vec![TOKEN_EXCHANGE_AUDIENCE.to_owned()];
        let assertion = self.issuer.mint_token(&spec).expect("mint");
        let response = self
            .http
            .post(format!(
                "{}/{DEFAULT_TENANT_ID}/oauth2/v2.0/token",
                self.azure.entra_url()
            ))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", SEED_CLIENT_ID),
                ("scope", "https://storage.azure.com/.default"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.as_str()),
            ])
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }
}

fn credential(name: &str, issuer: &str, subject: &str) -> Value {
    json!({"name": name, "issuer": issuer, "subject": subject, "audiences": [TOKEN_EXCHANGE_AUDIENCE]})
}

fn graph_error(body: &Value) -> (&str, &str) {
    let error = &body["error"];
    assert!(
        error["innerError"]["request-id"].is_string() && error["innerError"]["date"].is_string(),
        "Graph error shape: {body}"
    );
    (
        error["code"].as_str().unwrap_or_default(),
        error["message"].as_str().unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graph_writes_credentials_that_entra_then_honours() {
    let f = Fixture::start().await;
    let (status, body) = f.operator_token("wrong-secret").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error_codes"][0], 7000215, "{body}");

    let token = f.token().await;
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let (status, body) = f
        .graph(
            get.clone(),
            &format!("/applications?$filter=appId%20eq%20'{SEED_CLIENT_ID}'"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let object_id = body["value"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(object_id, application_object_id(SEED_CLIENT_ID));
    let (status, by_app_id) = f
        .graph(
            get.clone(),
            &format!("/applications(appId='{SEED_CLIENT_ID}')"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(by_app_id["id"], object_id.as_str());
    let (status, missing) = f
        .graph(
            get.clone(),
            "/applications(appId='99999999-2222-3333-4444-555555555555')",
            &token,
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(graph_error(&missing).0, "Request_ResourceNotFound");

    // Not federated yet: Entra refuses the subject…
    let subject = "system:serviceaccount:default:bound-later";
    let (status, body) = f.exchange(subject).await;
    assert_eq!(status, 400);
    assert_eq!(body["error_codes"][0], 700213, "{body}");
    // …Graph adds the credential…
    let path = format!("/applications/{object_id}/federatedIdentityCredentials");
    let (status, created) = f
        .graph(
            post.clone(),
            &path,
            &token,
            Some(credential("bound-later", f.issuer.url(), subject)),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["issuer"], f.issuer.url());
    // …and the next exchange is granted through it.
    let (status, body) = f.exchange(subject).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        f.azure
            .issued_tokens()
            .iter()
            .any(|t| t.credential == "bound-later")
    );
    let record = f
        .azure
        .record(&format!("application/{SEED_CLIENT_ID}"))
        .unwrap();
    assert_eq!(record["federatedCredentials"][1]["name"], "bound-later");

    // Graph's limits: unique name (409), unique issuer + subject (400), 20 per application.
    let (status, body) = f
        .graph(
            post.clone(),
            &path,
            &token,
            Some(credential(
                "bound-later",
                f.issuer.url(),
                "system:serviceaccount:x:y",
            )),
        )
        .await;
    assert_eq!(status, 409);
    assert_eq!(
        graph_error(&body),
        (
            "Request_MultipleObjectsWithSameKeyValue",
            "FederatedIdentityCredential with name bound-later already exists."
        )
    );
    // An issuer that is not https is refused, and nothing is created.
    let plain = f.issuer.url().replacen("https://", "http://", 1);
    let (status, body) = f
        .graph(
            post.clone(),
            &path,
            &token,
            Some(credential(
                "plain-http",
                &plain,
                "system:serviceaccount:x:plain",
            )),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        graph_error(&body).1.contains("must be a valid https URL"),
        "{body}"
    );
    let (status, body) = f
        .graph(
            post.clone(),
            &path,
            &token,
            Some(credential("another", f.issuer.url(), subject)),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        graph_error(&body).0,
        "InvalidFederatedIdentityCredentialValue"
    );
    for i in 2..20 {
        let (status, body) = f
            .graph(
                post.clone(),
                &path,
                &token,
                Some(credential(
                    &format!("fill-{i}"),
                    f.issuer.url(),
                    &format!("system:serviceaccount:fill:{i}"),
                )),
            )
            .await;
        assert_eq!(status, 201, "credential {i}: {body}");
    }
    let (status, body) = f
        .graph(
            post.clone(),
            &path,
            &token,
            Some(credential(
                "twenty-first",
                f.issuer.url(),
                "system:serviceaccount:fill:21",
            )),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(graph_error(&body).0, "Request_BadRequest");

    // PATCH cannot rename; DELETE by name; then the subject is refused again.
    let (status, body) = f
        .graph(
            reqwest::Method::PATCH,
            &format!("{path}/bound-later"),
            &token,
            Some(json!({"name": "renamed"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = f
        .graph(
            reqwest::Method::DELETE,
            &format!("{path}/bound-later"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, body) = f.exchange(subject).await;
    assert_eq!(
        (status, body["error_codes"][0].clone()),
        (400, json!(700213))
    );

    // A storage token is no Graph token.
    let (status, body) = f.graph(get, &path, "not-a-token", None).await;
    assert_eq!(status, 401);
    assert_eq!(graph_error(&body).0, "InvalidAuthenticationToken");
    for entry in f.azure.request_log() {
        assert!(!format!("{entry:?}").contains(&token[..40]), "token in log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graph_authorizes_by_application_permissions() {
    let f = Fixture::start().await;
    let seed_path = format!(
        "/applications/{}/federatedIdentityCredentials",
        application_object_id(SEED_CLIENT_ID)
    );
    let owned_path = format!(
        "/applications/{}/federatedIdentityCredentials",
        application_object_id(OWNED_CLIENT_ID)
    );
    let new = |name: &str| {
        credential(
            name,
            f.issuer.url(),
            &format!("system:serviceaccount:p:{name}"),
        )
    };

    f.apply(&setup(&["Application.Read.All"]));
    let token = f.token().await;
    let (status, _) = f
        .graph(reqwest::Method::GET, &seed_path, &token, None)
        .await;
    assert_eq!(status, 200, "Application.Read.All reads");
    let (status, body) = f
        .graph(reqwest::Method::POST, &seed_path, &token, Some(new("a")))
        .await;
    assert_eq!(status, 403);
    assert_eq!(
        graph_error(&body),
        (
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation."
        )
    );

    f.apply(&setup(&["Application.ReadWrite.OwnedBy"]));
    let token = f.token().await;
    let (status, body) = f
        .graph(reqwest::Method::POST, &owned_path, &token, Some(new("b")))
        .await;
    assert_eq!(status, 201, "the owner writes its application: {body}");
    let (status, _) = f
        .graph(reqwest::Method::POST, &seed_path, &token, Some(new("c")))
        .await;
    assert_eq!(status, 403, "but not another one");

    f.apply(&setup(&[]));
    let token = f.token().await;
    let (status, body) = f
        .graph(reqwest::Method::GET, "/applications", &token, None)
        .await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn azure_identity_and_requests_python_contract() {
    let f = Fixture::start().await;
    let python = tokio::task::spawn_blocking(PythonEnv::ensure)
        .await
        .unwrap()
        .expect("Python venv with azure-identity, requests and pytest");
    let home = tempfile::tempdir().expect("temp dir");
    let (operator, secret) = f.azure.operator_credentials();
    let test_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/test_azure_graph.py");
    let output = tokio::process::Command::new(python.python())
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(&test_file)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("AZURE_AUTHORITY_HOST", f.azure.authority_host())
        .env("REQUESTS_CA_BUNDLE", f.azure.ca_bundle_file())
        .env("SSL_CERT_FILE", f.azure.ca_bundle_file())
        .env("PODIAM_TENANT_ID", DEFAULT_TENANT_ID)
        .env("PODIAM_OPERATOR_CLIENT_ID", operator)
        .env("PODIAM_OPERATOR_SECRET", secret)
        .env("PODIAM_GRAPH_ENDPOINT", f.azure.graph_endpoint())
        .env("PODIAM_CLIENT_ID", SEED_CLIENT_ID)
        .env("PODIAM_ISSUER", f.issuer.url())
        .output()
        .await
        .expect("run pytest from the venv");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "pytest failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("4 passed"),
        "expected 4 Python cases: {stdout}"
    );
    assert!(!stdout.contains(secret), "the secret was printed");
    // The Python side's token request reached the emulator as the operator.
    assert!(
        f.azure
            .issued_tokens()
            .iter()
            .any(|t| t.client_id == OPERATOR_CLIENT_ID && t.credential == "client secret")
    );
}
