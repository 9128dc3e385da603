//! The harness's Azure side end to end, without the plugin: the environment the scenarios
//! run in (cluster, AWS emulators whose issuer is the cluster's, Azure emulators, both webhook
//! stand-ins, cluster DNS and cloud front) gives a labelled pod the webhook's variables, with
//! `AZURE_AUTHORITY_HOST=https://login.microsoftonline.com/` as on AKS; from inside the pod,
//! curl exchanges the pod's own projected token there (the cluster's DNS and the cloud front
//! lead to the Entra emulator) for an access token; from the host, at the emulator's own
//! address as the plugin does, the token gets an access token the Blob front accepts; the same
//! token is refused by Entra when the federated credential names another subject.
//!
//! Needs root, the cluster binaries and the Python venv, like `podiam-e2e run`. The cluster
//! takes the machine's cluster lock itself: never wrap the test in `flock` on it (it would wait
//! for itself). The token is held in memory only.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::AttachParams;
use podiam_e2e::emulators::azure::{AzureSetup, SEED_CLIENT_ID};
use podiam_e2e::runner::environment::Environment;
use podiam_e2e::setup::SetupVariables;
use serde_json::Value;
use tokio::io::AsyncReadExt;

const NAMESPACE: &str = "podiam-azure-live";

const MANIFESTS: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata:
  name: aks-service-account
  annotations:
    azure.workload.identity/client-id: "11111111-2222-3333-4444-555555555555"
---
apiVersion: v1
kind: Pod
metadata:
  name: azure-pod
  labels:
    azure.workload.identity/use: "true"
spec:
  serviceAccountName: aks-service-account
  containers:
    - name: app
      image: mcr.microsoft.com/azure-cli
      command: ["sleep", "3600"]
"#;

async fn exec_stdout(pods: &Api<Pod>, command: &[&str]) -> String {
    let params = AttachParams::default()
        .stdin(false)
        .stdout(true)
        .stderr(false);
    let run = async {
        let mut attached = pods
            .exec("azure-pod", command.iter().copied(), &params)
            .await
            .expect("exec");
        let mut out = Vec::new();
        if let Some(mut stdout) = attached.stdout() {
            let _ = stdout.read_to_end(&mut out).await;
        }
        String::from_utf8(out).expect("utf-8")
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("exec timed out")
}

async fn exchange(
    http: &reqwest::Client,
    authority: &str,
    tenant: &str,
    client_id: &str,
    assertion: &str,
) -> (u16, Value) {
    let response = http
        .post(format!("{authority}{tenant}/oauth2/v2.0/token"))
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
        .expect("Entra emulator reachable at the pod's AZURE_AUTHORITY_HOST");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_pod_token_exchanges_at_the_entra_emulator() {
    let state = tempfile::tempdir().expect("state dir");
    let env = Environment::start_local(state.path())
        .await
        .unwrap_or_else(|e| panic!("environment: {e:#}"));
    let issuer = env.aws.issuer_url().to_owned();
    let variables = SetupVariables {
        issuer: issuer.clone(),
        account_id: "123456789012".to_owned(),
    };
    let mut setup = AzureSetup::seed();
    setup.applications[0].federated_credentials[0].subject =
        format!("system:serviceaccount:{NAMESPACE}:aks-service-account");
    env.azure.apply(&setup, &variables).expect("Azure setup");

    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(env.client.clone());
    namespaces
        .create(
            &Default::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": NAMESPACE}})).unwrap(),
        )
        .await
        .expect("namespace");
    env.create_pods(NAMESPACE, MANIFESTS, &["azure-pod"])
        .await
        .unwrap_or_else(|e| panic!("pod: {e:#}"));

    let pods: Api<Pod> = Api::namespaced(env.client.clone(), NAMESPACE);
    let environment = exec_stdout(&pods, &["env"]).await;
    let var = |name: &str| {
        environment
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("{name} not in the pod's environment"))
            .to_owned()
    };
    assert_eq!(
        var("AZURE_AUTHORITY_HOST"),
        "https://login.microsoftonline.com/"
    );
    assert_eq!(var("AZURE_CLIENT_ID"), SEED_CLIENT_ID);
    let tenant = var("AZURE_TENANT_ID");
    let token = exec_stdout(&pods, &["cat", &var("AZURE_FEDERATED_TOKEN_FILE")]).await;
    assert_eq!(token.split('.').count(), 3, "the token file holds no JWT");

    // Inside the pod, at the real authority (curl trusts the harness CA in the image's bundle).
    let in_pod = exec_stdout(
        &pods,
        &[
            "sh",
            "-c",
            "curl -sS -o /dev/null -w '%{http_code}' \
             -d grant_type=client_credentials -d client_id=\"$AZURE_CLIENT_ID\" \
             --data-urlencode scope=https://storage.azure.com/.default \
             --data-urlencode client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
             --data-urlencode client_assertion@\"$AZURE_FEDERATED_TOKEN_FILE\" \
             \"${AZURE_AUTHORITY_HOST}${AZURE_TENANT_ID}/oauth2/v2.0/token\" 2>&1",
        ],
    )
    .await;
    assert_eq!(
        in_pod, "200",
        "the in-pod exchange at login.microsoftonline.com"
    );

    // From the host, as the plugin does, trusting the emulators' bundle (SSL_CERT_FILE).
    let authority = format!("{}/", env.azure.entra_url());
    let bundle = std::fs::read(env.azure.ca_bundle_file()).expect("CA bundle");
    let mut http = reqwest::Client::builder().tls_built_in_root_certs(false);
    for cert in reqwest::Certificate::from_pem_bundle(&bundle).expect("PEM bundle") {
        http = http.add_root_certificate(cert);
    }
    let http = http.build().unwrap();
    let (status, body) = exchange(&http, &authority, &tenant, SEED_CLIENT_ID, token.trim()).await;
    assert_eq!(status, 200, "{body}");
    let access_token = body["access_token"].as_str().expect("access token");
    let listed = http
        .get(format!(
            "{}/mystorageaccount/mycontainer?restype=container&comp=list",
            env.azure.blob_endpoint()
        ))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("Blob front");
    assert_eq!(listed.status(), 200);
    assert!(
        listed
            .text()
            .await
            .unwrap()
            .contains("<Name>hello.txt</Name>")
    );

    // The same live token against a credential for another subject: AADSTS700213.
    setup.applications[0].federated_credentials[0].subject =
        format!("system:serviceaccount:{NAMESPACE}:someone-else");
    env.azure.apply(&setup, &variables).expect("Azure setup");
    let (status, body) = exchange(&http, &authority, &tenant, SEED_CLIENT_ID, token.trim()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error_codes"][0], 700213, "{body}");

    env.down().await.expect("down");
}
