//! The GCP emulators without a cluster (static resolver), with plain HTTP: the start-up race,
//! the direct principal of an unannotated KSA against bucket IAM, the node's identity, Cloud
//! Storage's 401/403 shapes, and tokeninfo.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime};

use podiam_e2e::emulators::gcp::{
    Caller, CallingPod, DEFAULT_NODE_SERVICE_ACCOUNT, GcpEmulatorOptions, GcpEmulators, GcpSetup,
    PodResolver,
};
use podiam_e2e::setup::{CloudSetup, SetupVariables};
use serde_json::{Value, json};

const DIRECT_PRINCIPAL: &str = "principal://iam.googleapis.com/projects/1234567890/locations/global/workloadIdentityPools/my-project.svc.id.goog/subject/ns/default/sa/plain-ksa";

async fn emulators_as(caller: Caller, setup: &GcpSetup) -> GcpEmulators {
    let emulators = GcpEmulators::start(GcpEmulatorOptions {
        resolver: PodResolver::Static(HashMap::from([(IpAddr::V4(Ipv4Addr::LOCALHOST), caller)])),
        ..GcpEmulatorOptions::default()
    })
    .await
    .expect("GCP emulators start");
    emulators
        .apply(
            setup,
            &SetupVariables {
                issuer: "https://issuer.invalid".to_owned(),
                account_id: String::new(),
            },
        )
        .expect("apply");
    emulators
}

fn plain_pod(started_at: Option<SystemTime>) -> Caller {
    Caller::Pod(CallingPod {
        namespace: "default".to_owned(),
        name: "gcs-pod".to_owned(),
        service_account: "plain-ksa".to_owned(),
        gsa_annotation: None,
        started_at,
    })
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

async fn metadata(emulators: &GcpEmulators, item: &str) -> reqwest::Result<reqwest::Response> {
    http()
        .get(format!(
            "{}/computeMetadata/v1/instance/service-accounts/default/{item}",
            emulators.metadata_url()
        ))
        .header("Metadata-Flavor", "Google")
        .timeout(Duration::from_secs(1))
        .send()
        .await
}

async fn token(emulators: &GcpEmulators) -> String {
    let answer: Value = metadata(emulators, "token")
        .await
        .expect("token request")
        .json()
        .await
        .expect("token JSON");
    assert_eq!(answer["token_type"], "Bearer");
    answer["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

async fn list_bucket(emulators: &GcpEmulators, bearer: Option<&str>) -> (u16, Value) {
    let mut request = http().get(format!("{}/storage/v1/b/my-bucket/o", emulators.gcs_url()));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("GCS list");
    let status = response.status().as_u16();
    (status, response.json().await.expect("GCS JSON"))
}

#[tokio::test]
async fn a_young_pod_waits_for_the_metadata_server() {
    let mut setup = CloudSetup::seed_gcp().gcp;
    setup.metadata_startup_delay_seconds = 3;
    let emulators = emulators_as(plain_pod(Some(SystemTime::now())), &setup).await;
    let refused = metadata(&emulators, "email").await;
    assert!(
        refused.as_ref().is_err_and(reqwest::Error::is_timeout),
        "a pod younger than the delay gets no answer (client times out)"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let started = Instant::now();
    let email = metadata(&emulators, "email").await.expect("answered");
    assert_eq!(email.text().await.expect("body"), "my-project.svc.id.goog");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn an_unannotated_ksa_is_its_own_principal() {
    let mut setup = CloudSetup::seed_gcp().gcp;
    let emulators = emulators_as(plain_pod(None), &setup).await;
    let federated = token(&emulators).await;
    let (status, body) = list_bucket(&emulators, Some(&federated)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["errors"][0]["reason"], "forbidden");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(DIRECT_PRINCIPAL)),
        "{body}"
    );

    setup.buckets[0].bindings.push(
        serde_json::from_value(json!({
            "role": "roles/storage.objectViewer",
            "members": [DIRECT_PRINCIPAL],
        }))
        .expect("binding"),
    );
    emulators.reset();
    emulators
        .apply(
            &setup,
            &SetupVariables {
                issuer: "https://issuer.invalid".to_owned(),
                account_id: String::new(),
            },
        )
        .expect("apply");
    let federated = token(&emulators).await;
    let (status, body) = list_bucket(&emulators, Some(&federated)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"][0]["name"], "hello.txt");
}

#[tokio::test]
async fn the_node_gets_the_node_service_account() {
    let setup = CloudSetup::seed_gcp().gcp;
    let emulators = emulators_as(Caller::Node, &setup).await;
    let email = metadata(&emulators, "email").await.expect("email");
    assert_eq!(
        email.text().await.expect("body"),
        DEFAULT_NODE_SERVICE_ACCOUNT
    );
    // The node's service account has no grant on the bucket.
    let node_token = token(&emulators).await;
    let (status, body) = list_bucket(&emulators, Some(&node_token)).await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn storage_refuses_missing_and_unknown_tokens() {
    let setup = CloudSetup::seed_gcp().gcp;
    let emulators = emulators_as(Caller::Unknown, &setup).await;
    let (status, body) = list_bucket(&emulators, None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["errors"][0]["reason"], "required");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Anonymous caller does not have storage.objects.list")),
        "{body}"
    );
    let (status, body) = list_bucket(&emulators, Some("ya29.made-up")).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["message"], "Invalid Credentials");
    // An unknown caller gets no identity from the metadata server.
    let refused = metadata(&emulators, "email").await.expect("answered");
    assert_eq!(refused.status().as_u16(), 403);
}

/// Google's tokeninfo as podiam asks it (POST form) and as the docs show it (GET query): a
/// metadata-server token is described with its account, a federated one without; made-up
/// tokens and a missing one are `invalid_token` / `Invalid Value` (HTTP 400).
#[tokio::test]
async fn tokeninfo_describes_only_tokens_the_emulators_issued() {
    let setup = CloudSetup::seed_gcp().gcp;
    let emulators = emulators_as(Caller::Node, &setup).await;
    let node_token = token(&emulators).await;
    let by_form = http()
        .post(emulators.tokeninfo_url())
        .form(&[("access_token", node_token.as_str())])
        .send()
        .await
        .expect("tokeninfo POST");
    assert_eq!(by_form.status().as_u16(), 200);
    let info: Value = by_form.json().await.expect("tokeninfo JSON");
    assert_eq!(info["email"], DEFAULT_NODE_SERVICE_ACCOUNT);
    assert_eq!(info["email_verified"], "true");
    assert_eq!(info["access_type"], "online");
    assert_eq!(info["azp"], info["aud"]);
    assert!(
        info["scope"].as_str().is_some_and(|s| s
            .contains("https://www.googleapis.com/auth/cloud-platform")
            && s.contains("https://www.googleapis.com/auth/userinfo.email")),
        "{info}"
    );
    let expires_in: u64 = info["expires_in"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("expires_in as a string of seconds");
    assert!((3500..=3599).contains(&expires_in), "{info}");
    let exp: u64 = info["exp"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("exp");
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!(exp > now && exp <= now + 3600, "{info}");

    let by_query = http()
        .get(emulators.tokeninfo_url())
        .query(&[("access_token", node_token.as_str())])
        .send()
        .await
        .expect("tokeninfo GET");
    assert_eq!(by_query.status().as_u16(), 200);

    for made_up in [Some("ya29.podiam-forged-by-the-pod"), Some(""), None] {
        let mut request = http().get(emulators.tokeninfo_url());
        if let Some(token) = made_up {
            request = request.query(&[("access_token", token)]);
        }
        let refused = request.send().await.expect("tokeninfo answers");
        assert_eq!(refused.status().as_u16(), 400, "{made_up:?}");
        let body: Value = refused.json().await.expect("error JSON");
        assert_eq!(
            body,
            json!({"error": "invalid_token", "error_description": "Invalid Value"})
        );
    }
    // Forgetting every token (a new scenario) makes the old one unknown.
    emulators.reset();
    let forgotten = http()
        .post(emulators.tokeninfo_url())
        .form(&[("access_token", node_token.as_str())])
        .send()
        .await
        .expect("tokeninfo POST");
    assert_eq!(forgotten.status().as_u16(), 400);
}

#[tokio::test]
async fn tokeninfo_names_no_account_for_a_federated_token() {
    let setup = CloudSetup::seed_gcp().gcp;
    let emulators = emulators_as(plain_pod(None), &setup).await;
    let federated = token(&emulators).await;
    let info: Value = http()
        .get(emulators.tokeninfo_url())
        .query(&[("access_token", federated.as_str())])
        .send()
        .await
        .expect("tokeninfo")
        .json()
        .await
        .expect("JSON");
    assert!(info.get("email").is_none(), "{info}");
    assert!(info["expires_in"].as_str().is_some(), "{info}");
}
