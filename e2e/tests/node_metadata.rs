//! The node metadata emulators over HTTP, without a cluster or Python: EC2 IMDSv2 (tokens,
//! TTL bounds, 401s, IMDSv1 only when optional, hop-limit drop), Azure IMDS (header, identity
//! selection, tokens the Blob front accepts) and the GCE node mode, on one listener as pods
//! see it. Callers are told apart by a static source-address map (127.0.0.1 → a pod or the
//! node). Instance-role credentials need moto: `contract_imds.rs`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use podiam_e2e::emulators::azure::{AzureEmulatorOptions, AzureEmulators, AzureSetup};
use podiam_e2e::emulators::gcp::{
    Caller, CallingPod, ConnectionAddresses, GcpEmulatorOptions, GcpEmulators, PodResolver,
};
use podiam_e2e::emulators::node_metadata::{
    AwsNodeSetup, AzureNodeSetup, GcpNodeSetup, HttpTokens, ManagedIdentitySetup, NodeMetadata,
    NodeRoute, NodeSetup, router,
};
use podiam_e2e::setup::SetupVariables;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NAMESPACE: &str = "node-test";
const NODE_CLIENT_ID: &str = "6f1c2d3e-0000-4000-8000-00000000ce11";
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn pod_caller() -> Caller {
    Caller::Pod(CallingPod {
        namespace: NAMESPACE.to_owned(),
        name: "app".to_owned(),
        service_account: "default".to_owned(),
        gsa_annotation: None,
        started_at: None,
    })
}

/// 127.0.0.1 is `caller`; the node metadata router alone, on a random port.
async fn serve(caller: Caller, route: Option<NodeRoute>, hold: Duration) -> SocketAddr {
    serve_node(caller, route, hold).await.0
}

/// [`serve`], also returning the node metadata services.
async fn serve_node(
    caller: Caller,
    route: Option<NodeRoute>,
    hold: Duration,
) -> (SocketAddr, Arc<NodeMetadata>) {
    let resolver = PodResolver::Static(HashMap::from([(LOCALHOST, caller)]));
    let node = Arc::new(NodeMetadata::new(Arc::new(resolver)).with_drop_hold(hold));
    if let Some(route) = route {
        node.route_namespace(NAMESPACE, route);
    }
    let listener = tokio::net::TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let address = listener.local_addr().unwrap();
    let service = router(node.clone()).into_make_service_with_connect_info::<ConnectionAddresses>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, service).await;
    });
    (address, node)
}

fn aws_route(aws: AwsNodeSetup) -> NodeRoute {
    NodeRoute {
        node: NodeSetup {
            aws: Some(aws),
            ..NodeSetup::default()
        },
        aws: None,
        azure: None,
    }
}

async fn put_token(http: &reqwest::Client, base: &str, ttl: Option<&str>) -> reqwest::Response {
    let mut request = http.put(format!("{base}/latest/api/token"));
    if let Some(ttl) = ttl {
        request = request.header("X-aws-ec2-metadata-token-ttl-seconds", ttl);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn imds_tokens_ttl_bounds_and_v2_required() {
    let role = AwsNodeSetup {
        instance_role: Some("node-role".to_owned()),
        ..AwsNodeSetup::default()
    };
    let address = serve(pod_caller(), Some(aws_route(role)), Duration::from_secs(10)).await;
    let base = format!("http://{address}");
    let http = reqwest::Client::new();

    for bad in [None, Some("0"), Some("21601"), Some("ten")] {
        let refused = put_token(&http, &base, bad).await;
        assert_eq!(refused.status(), 400, "TTL {bad:?}");
        assert_eq!(refused.headers()["content-type"], "text/html");
        assert!(
            refused
                .text()
                .await
                .unwrap()
                .contains("<title>400 - Bad Request</title>")
        );
    }
    let proxied = http
        .put(format!("{base}/latest/api/token"))
        .header("X-aws-ec2-metadata-token-ttl-seconds", "60")
        .header("X-Forwarded-For", "10.0.0.9")
        .send()
        .await
        .unwrap();
    assert_eq!(proxied.status(), 403);
    let get_token = http
        .get(format!("{base}/latest/api/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(get_token.status(), 405);

    let issued = put_token(&http, &base, Some("21600")).await;
    assert_eq!(issued.status(), 200);
    assert_eq!(
        issued.headers()["x-aws-ec2-metadata-token-ttl-seconds"],
        "21600"
    );
    assert_eq!(issued.headers()["server"], "EC2ws");
    let token = issued.text().await.unwrap();
    assert!(token.len() >= 40, "token too short");

    let roles_url = format!("{base}/latest/meta-data/iam/security-credentials/");
    let v1 = http.get(&roles_url).send().await.unwrap();
    assert_eq!(v1.status(), 401, "IMDSv1 with httpTokens required");
    let forged = http
        .get(&roles_url)
        .header("X-aws-ec2-metadata-token", "AQAEAforged==")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    let v2 = http
        .get(&roles_url)
        .header("X-aws-ec2-metadata-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(v2.status(), 200);
    assert_eq!(v2.text().await.unwrap(), "node-role");

    let get = |path: &str| {
        http.get(format!("{base}{path}"))
            .header("X-aws-ec2-metadata-token", &token)
            .send()
    };
    let instance_id = get("/latest/meta-data/instance-id")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        instance_id.starts_with("i-") && instance_id.len() == 19,
        "{instance_id}"
    );
    let region = get("/latest/meta-data/placement/region")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(region, "us-east-1");
    let document: Value = get("/latest/dynamic/instance-identity/document")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(document["instanceId"], instance_id.as_str());
    assert_eq!(document["accountId"], "123456789012");
    let missing = get("/latest/meta-data/nothing-here").await.unwrap();
    assert_eq!(missing.status(), 404);
    // Another role's name is not this instance's.
    let other = get("/latest/meta-data/iam/security-credentials/someone-else")
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    // The extended path botocore and aws-config try first: absent here, so they fall back.
    let extended = get("/latest/meta-data/iam/security-credentials-extended/")
        .await
        .unwrap();
    assert_eq!(extended.status(), 404);
}

#[tokio::test]
async fn imds_tokens_expire_and_v1_only_when_optional() {
    let optional = AwsNodeSetup {
        http_tokens: HttpTokens::Optional,
        ..AwsNodeSetup::default()
    };
    let address = serve(
        pod_caller(),
        Some(aws_route(optional)),
        Duration::from_secs(10),
    )
    .await;
    let base = format!("http://{address}");
    let http = reqwest::Client::new();
    let id_url = format!("{base}/latest/meta-data/instance-id");
    let v1 = http.get(&id_url).send().await.unwrap();
    assert_eq!(v1.status(), 200, "IMDSv1 with httpTokens optional");
    // A token that is sent must still be valid, even when tokens are optional.
    let token = put_token(&http, &base, Some("1"))
        .await
        .text()
        .await
        .unwrap();
    let fresh = http
        .get(&id_url)
        .header("X-aws-ec2-metadata-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(fresh.status(), 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = http
        .get(&id_url)
        .header("X-aws-ec2-metadata-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), 401);
    // No instance profile: the credentials path does not exist.
    let credentials = http
        .get(format!("{base}/latest/meta-data/iam/security-credentials/"))
        .send()
        .await
        .unwrap();
    assert_eq!(credentials.status(), 404);
}

/// Sends a raw token PUT and returns what came back before the server closed, and when.
async fn raw_token_put(address: SocketAddr) -> (Vec<u8>, Duration) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(
            b"PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\nContent-Length: 0\r\n\r\n",
        )
        .await
        .unwrap();
    let mut received = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut received)).await;
    (received, started.elapsed())
}

#[tokio::test]
async fn hop_limit_one_drops_the_pods_token_but_not_the_nodes() {
    let hardened = || {
        aws_route(AwsNodeSetup {
            hop_limit: 1,
            ..AwsNodeSetup::default()
        })
    };
    let hold = Duration::from_millis(400);
    let from_pod = serve(pod_caller(), Some(hardened()), hold).await;
    let (received, waited) = raw_token_put(from_pod).await;
    assert!(
        received.is_empty(),
        "the pod got an answer: {:?}",
        String::from_utf8_lossy(&received)
    );
    assert!(waited >= hold, "closed after {waited:?}, before the hold");

    let from_node = serve(Caller::Node, Some(hardened()), hold).await;
    let (received, _) = raw_token_put(from_node).await;
    assert!(
        String::from_utf8_lossy(&received).starts_with("HTTP/1.1 200"),
        "the node got no token"
    );

    // With hop limit 1 and tokens optional, IMDSv1 GETs still reach the pod (EC2 only drops
    // the PUT's answer).
    let optional = serve(
        pod_caller(),
        Some(aws_route(AwsNodeSetup {
            hop_limit: 1,
            http_tokens: HttpTokens::Optional,
            ..AwsNodeSetup::default()
        })),
        hold,
    )
    .await;
    let v1 = reqwest::get(format!("http://{optional}/latest/meta-data/instance-id"))
        .await
        .unwrap();
    assert_eq!(v1.status(), 200);
}

/// What the runner does when a scenario ends (`node_identity::unregister`): the pod's held
/// request is closed then, unanswered, not when the hold would have run out.
#[tokio::test]
async fn a_held_request_ends_with_its_scenario() {
    let hardened = aws_route(AwsNodeSetup {
        hop_limit: 1,
        ..AwsNodeSetup::default()
    });
    let (address, node) = serve_node(pod_caller(), Some(hardened), Duration::from_secs(60)).await;
    let put = tokio::spawn(raw_token_put(address));
    let deadline = Instant::now() + Duration::from_secs(5);
    while node.held_count() == 0 {
        assert!(Instant::now() < deadline, "the request was never held");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    node.release_held("another-namespace");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(node.held_count(), 1, "another scenario's end released it");
    node.unroute_namespace(NAMESPACE);
    node.release_held(NAMESPACE);
    let (received, waited) = put.await.unwrap();
    assert!(
        received.is_empty(),
        "the pod got an answer: {:?}",
        String::from_utf8_lossy(&received)
    );
    assert!(
        waited < Duration::from_secs(4),
        "closed after {waited:?}: not by the release"
    );
    assert_eq!(node.held_count(), 0);
}

#[tokio::test]
async fn unknown_namespaces_get_a_node_without_identity() {
    // The pod's namespace declared nothing: default node, IMDSv2, no instance profile.
    let address = serve(pod_caller(), None, Duration::from_secs(10)).await;
    let base = format!("http://{address}");
    let http = reqwest::Client::new();
    let token = put_token(&http, &base, Some("60"))
        .await
        .text()
        .await
        .unwrap();
    let credentials = http
        .get(format!("{base}/latest/meta-data/iam/security-credentials/"))
        .header("X-aws-ec2-metadata-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(credentials.status(), 404);
    let azure = http
        .get(format!(
            "{base}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com"
        ))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(azure.status(), 400);
    let body: Value = azure.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"error": "invalid_request", "error_description": "Identity not found"})
    );
}

struct AzureFixture {
    azure: AzureEmulators,
    base: String,
}

async fn azure_fixture(identity: Option<ManagedIdentitySetup>) -> AzureFixture {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let azure = AzureEmulators::start(AzureEmulatorOptions::default())
        .await
        .expect("Azure emulators start");
    let mut setup = AzureSetup::seed();
    setup.storage_accounts[0].role_assignments[0].principal = NODE_CLIENT_ID.to_owned();
    azure
        .apply(
            &setup,
            &SetupVariables {
                issuer: "https://127.0.0.1:1/unused".to_owned(),
                account_id: String::new(),
            },
        )
        .expect("setup applies");
    let route = NodeRoute {
        node: NodeSetup {
            azure: Some(AzureNodeSetup {
                managed_identity: identity,
            }),
            ..NodeSetup::default()
        },
        aws: None,
        azure: Some(azure.managed_identity_tokens()),
    };
    let address = serve(pod_caller(), Some(route), Duration::from_secs(10)).await;
    AzureFixture {
        azure,
        base: format!("http://{address}"),
    }
}

fn node_identity() -> ManagedIdentitySetup {
    ManagedIdentitySetup {
        client_id: NODE_CLIENT_ID.to_owned(),
        principal_id: None,
        resource_id: Some("/subscriptions/s/resourceGroups/MC_g/providers/Microsoft.ManagedIdentity/userAssignedIdentities/aks-agentpool".to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_imds_requires_the_header_and_serves_the_node_identity() {
    let f = azure_fixture(Some(node_identity())).await;
    let http = reqwest::Client::new();
    let token_url = |extra: &str| {
        format!(
            "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com{extra}",
            f.base
        )
    };
    let no_header = http.get(token_url("")).send().await.unwrap();
    assert_eq!(no_header.status(), 400);
    assert_eq!(
        no_header.json::<Value>().await.unwrap(),
        serde_json::json!({"error": "invalid_request", "error_description": "Required metadata header not specified"})
    );
    let wrong_client = http
        .get(token_url("&client_id=00000000-0000-0000-0000-000000000000"))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_client.status(), 400);
    assert_eq!(
        wrong_client.json::<Value>().await.unwrap()["error_description"],
        "Identity not found"
    );
    let no_resource = http
        .get(format!(
            "{}/metadata/identity/oauth2/token?api-version=2018-02-01",
            f.base
        ))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(no_resource.status(), 400);

    for selector in [
        String::new(),
        format!("&client_id={NODE_CLIENT_ID}"),
        format!("&msi_res_id={}", node_identity().resource_id.unwrap()),
    ] {
        let answer = http
            .get(token_url(&selector))
            .header("Metadata", "true")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "selector {selector:?}");
        let body: Value = answer.json().await.unwrap();
        for field in [
            "access_token",
            "client_id",
            "expires_in",
            "expires_on",
            "ext_expires_in",
            "not_before",
            "resource",
            "token_type",
        ] {
            assert!(
                body[field].is_string(),
                "{field} is not a string: {}",
                body[field]
            );
        }
        assert_eq!(body["client_id"], NODE_CLIENT_ID);
        assert_eq!(body["resource"], "https://storage.azure.com");
        assert_eq!(body["token_type"], "Bearer");
        let expires_in: i64 = body["expires_in"].as_str().unwrap().parse().unwrap();
        assert!(
            (3000..=3600).contains(&expires_in),
            "expires_in {expires_in}"
        );
    }

    // The token works where the identity has a role: the seed's container.
    let token = http
        .get(token_url(""))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let list = http
        .get(format!(
            "{}/mystorageaccount/mycontainer?restype=container&comp=list",
            f.azure.blob_endpoint()
        ))
        .bearer_auth(&token)
        .header("x-ms-version", "2025-01-05")
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    assert!(list.text().await.unwrap().contains("hello.txt"));
    let issued = f.azure.issued_tokens();
    assert!(
        issued.iter().any(|t| t.client_id == NODE_CLIENT_ID),
        "the managed identity token is not recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_node_without_identity_has_none() {
    let f = azure_fixture(None).await;
    let answer = reqwest::Client::new()
        .get(format!(
            "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://storage.azure.com",
            f.base
        ))
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    assert_eq!(
        answer.json::<Value>().await.unwrap()["error_description"],
        "Identity not found"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_listener_serves_gce_node_mode_and_the_imds_paths() {
    let gcp = GcpEmulators::start(GcpEmulatorOptions {
        resolver: PodResolver::Static(HashMap::from([(LOCALHOST, pod_caller())])),
        ..GcpEmulatorOptions::default()
    })
    .await
    .expect("GCP emulators start");
    let http = reqwest::Client::new();
    let email_url = format!(
        "{}/computeMetadata/v1/instance/service-accounts/default/email",
        gcp.metadata_url()
    );
    let email = |http: &reqwest::Client| {
        http.get(&email_url)
            .header("Metadata-Flavor", "Google")
            .send()
    };
    // GKE metadata server: the pod's KSA (no GSA annotation → the workload pool).
    let gke = email(&http).await.unwrap().text().await.unwrap();
    assert_eq!(gke, "my-project.svc.id.goog");

    let node_account = "gke-nodes@my-project.iam.gserviceaccount.com";
    gcp.node_metadata().route_namespace(
        NAMESPACE,
        NodeRoute {
            node: NodeSetup {
                gcp: Some(GcpNodeSetup {
                    service_account: node_account.to_owned(),
                }),
                ..NodeSetup::default()
            },
            aws: None,
            azure: None,
        },
    );
    let node = email(&http).await.unwrap().text().await.unwrap();
    assert_eq!(node, node_account);
    let token = http
        .get(format!(
            "{}/computeMetadata/v1/instance/service-accounts/default/token",
            gcp.metadata_url()
        ))
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 200);
    assert!(token.json::<Value>().await.unwrap()["access_token"].is_string());
    let no_flavor = http.get(&email_url).send().await.unwrap();
    assert_eq!(no_flavor.status(), 403);

    // Same listener, EC2's and Azure's paths.
    let imds = put_token(&http, &gcp.metadata_url(), Some("60")).await;
    assert_eq!(imds.status(), 200);
    assert_eq!(imds.headers()["server"], "EC2ws");
    let azure = http
        .get(format!(
            "{}/metadata/identity/oauth2/token",
            gcp.metadata_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(azure.status(), 400);

    gcp.node_metadata().unroute_namespace(NAMESPACE);
    assert_eq!(email(&http).await.unwrap().text().await.unwrap(), gke);
}
