//! Contract: a hop that stalls is answered with an error naming it, in the caller's protocol,
//! well within the plugin's 30 s exec budget — never a hang. moto is stood in for by a TCP
//! listener that accepts and never answers, so no Python is needed; the agent and the gate are
//! the real ones on 127.0.0.1.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use podiam_e2e::emulators::eks_auth::POD_IDENTITY_AUDIENCE;
use podiam_e2e::emulators::hop_budgets;
use podiam_e2e::emulators::pod_identity_agent::AgentRoute;
use podiam_e2e::emulators::{
    ACCOUNT_ID, AdminCredentials, AwsGate, DEFAULT_CLUSTER_NAME, DEFAULT_ISSUER_PATH, OidcIssuer,
    Phase, PodIdentityAgent, REGION, RequestLogEntry, SigningKey, TokenSpec,
};
use tokio::runtime::Handle;

/// Accepts connections and keeps them open without ever reading or answering.
fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    url
}

fn admin() -> AdminCredentials {
    AdminCredentials {
        access_key_id: "AKIAPODIAMTESTADMIN0".to_owned(),
        secret_access_key: "not-a-real-secret-but-never-printed".to_owned(),
    }
}

struct Setup {
    issuer: OidcIssuer,
    gate: AwsGate,
    _dir: tempfile::TempDir,
}

/// Issuer and gate on this test's runtime; the gate's moto is `moto_url`. EKS Auth knows the
/// default cluster and an association `apps/reader` → `pod-role`.
fn setup(moto_url: &str) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = OidcIssuer::start(
        dir.path(),
        DEFAULT_ISSUER_PATH,
        SigningKey::generate().expect("key"),
        &Handle::current(),
    )
    .expect("issuer");
    let ca = std::fs::read_to_string(issuer.ca_file()).expect("CA");
    let gate =
        AwsGate::start(moto_url, admin(), ACCOUNT_ID, &[ca], &Handle::current()).expect("gate");
    let store = gate.eks_auth();
    store.register_cluster(DEFAULT_CLUSTER_NAME, issuer.url());
    store.associate(
        ACCOUNT_ID,
        REGION,
        DEFAULT_CLUSTER_NAME,
        "apps",
        "reader",
        &format!("arn:aws:iam::{ACCOUNT_ID}:role/pod-role"),
    );
    Setup {
        issuer,
        gate,
        _dir: dir,
    }
}

fn pod_token(issuer: &OidcIssuer) -> String {
    let mut spec = TokenSpec::new("apps", "reader");
    spec.audiences = vec![POD_IDENTITY_AUDIENCE.to_owned()];
    spec.pod_name = Some("reader-pod".to_owned());
    issuer.mint_token(&spec).expect("mint")
}

fn agent_for(endpoint: &str) -> PodIdentityAgent {
    PodIdentityAgent::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        DEFAULT_CLUSTER_NAME,
        AgentRoute {
            endpoint: endpoint.to_owned(),
            credentials: admin(),
        },
    )
    .expect("agent")
}

/// What the pod's SDK does: GET with the raw token in `Authorization`.
async fn ask_agent(agent: &PodIdentityAgent, token: &str) -> (u16, String, Duration) {
    let started = Instant::now();
    let response = reqwest::Client::new()
        .get(agent.credentials_url())
        .header("Authorization", token)
        // Longer than every bound under test: a hang fails the assertion below, not this.
        .timeout(Duration::from_secs(40))
        .send()
        .await
        .expect("the agent answers");
    let status = response.status().as_u16();
    let body = response.text().await.expect("body");
    (status, body, started.elapsed())
}

fn no_secrets(entries: &[RequestLogEntry], token: &str) {
    let dump = format!("{entries:?}");
    assert!(!dump.contains(token), "a token in the request log");
    assert!(!dump.contains(&admin().secret_access_key));
    let lines: String = entries.iter().map(ToString::to_string).collect();
    assert!(!lines.contains(token));
}

/// The arrival and the answer of the one request with `action`.
fn arrival_and_answer(
    entries: &[RequestLogEntry],
    action: &str,
) -> (RequestLogEntry, RequestLogEntry) {
    let mine: Vec<&RequestLogEntry> = entries.iter().filter(|e| e.action == action).collect();
    assert_eq!(mine.len(), 2, "{entries:#?}");
    assert_eq!(mine[0].phase, Phase::Arrived);
    assert_eq!(mine[1].phase, Phase::Answered);
    assert_eq!(mine[0].request_id, mine[1].request_id);
    (mine[0].clone(), mine[1].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_moto_behind_eks_auth_is_named_by_the_agent_in_time() {
    let moto = silent_server();
    let setup = setup(&moto);
    let agent = agent_for(setup.gate.url());
    let token = pod_token(&setup.issuer);

    let (status, body, took) = ask_agent(&agent, &token).await;

    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("(ServerException)")
            && body.contains("moto did not answer IAM GetRole pod-role within 5s"),
        "{body}"
    );
    assert!(took >= hop_budgets::MOTO_CALL, "{took:?}");
    assert!(took < hop_budgets::GATE_REQUEST, "{took:?}");
    assert!(!body.contains(&token));

    let gate_log = setup.gate.request_log().entries();
    let (arrived, answered) = arrival_and_answer(&gate_log, "AssumeRoleForPodIdentity");
    assert_eq!(arrived.namespace, "apps");
    assert_eq!(answered.outcome, "ServerException");
    assert!(
        answered.elapsed_ms.is_some_and(|ms| ms >= 5000),
        "{answered}"
    );
    no_secrets(&gate_log, &token);

    let agent_log = agent.request_events();
    let (arrived, answered) = arrival_and_answer(&agent_log, "GetCredentials");
    assert_eq!(arrived.namespace, "apps");
    assert_eq!(answered.outcome, "500");
    assert!(arrived.time <= answered.time);
    no_secrets(&agent_log, &token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_eks_auth_is_named_by_the_agent_in_time() {
    let eks_auth = silent_server();
    let issuer_dir = tempfile::tempdir().expect("tempdir");
    let issuer = OidcIssuer::start(
        issuer_dir.path(),
        DEFAULT_ISSUER_PATH,
        SigningKey::generate().expect("key"),
        &Handle::current(),
    )
    .expect("issuer");
    let agent = agent_for(&eks_auth);
    let token = pod_token(&issuer);

    let (status, body, took) = ask_agent(&agent, &token).await;

    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains(&format!("EKS Auth at {eks_auth} did not answer within 10s")),
        "{body}"
    );
    assert!(took >= hop_budgets::AGENT_TO_EKS_AUTH, "{took:?}");
    assert!(took < hop_budgets::AGENT_REQUEST, "{took:?}");
    let log = agent.request_events();
    let (_, answered) = arrival_and_answer(&log, "GetCredentials");
    assert_eq!(answered.outcome, "500");
    no_secrets(&log, &token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_moto_behind_a_pass_through_is_an_aws_xml_error_in_time() {
    let moto = silent_server();
    let setup = setup(&moto);
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(format!("{}/", setup.gate.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        // Signed (the gate refuses unsigned calls as AWS does, without asking moto).
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261203/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body("Action=GetCallerIdentity&Version=2011-06-15")
        .timeout(Duration::from_secs(40))
        .send()
        .await
        .expect("the gate answers");
    let took = started.elapsed();
    assert_eq!(response.status().as_u16(), 500);
    let body = response.text().await.expect("body");
    assert!(body.contains("<Code>InternalFailure</Code>"), "{body}");
    assert!(
        body.contains("<Message>moto did not answer within 5s</Message>"),
        "{body}"
    );
    assert!(took < hop_budgets::GATE_REQUEST, "{took:?}");
    let (arrived, answered) =
        arrival_and_answer(&setup.gate.request_log().entries(), "GetCallerIdentity");
    assert_eq!(arrived.namespace, "");
    assert_eq!(answered.outcome, "500");
}

/// A stand-in EKS Auth that refuses every request (404 ResourceNotFoundException, keep-alive)
/// and counts the TCP connections it accepted.
async fn counting_eks_auth() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                loop {
                    let mut content_length = 0usize;
                    loop {
                        let mut line = String::new();
                        if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            content_length = value.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; content_length];
                    if stream.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let answer =
                        r#"{"__type":"ResourceNotFoundException","message":"no association"}"#;
                    let response = format!(
                        "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\nx-amzn-errortype: ResourceNotFoundException\r\ncontent-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                    if stream
                        .get_mut()
                        .write_all(response.as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (url, connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_keeps_one_eks_auth_client_per_route() {
    let (eks_auth, connections) = counting_eks_auth().await;
    let issuer_dir = tempfile::tempdir().expect("tempdir");
    let issuer = OidcIssuer::start(
        issuer_dir.path(),
        DEFAULT_ISSUER_PATH,
        SigningKey::generate().expect("key"),
        &Handle::current(),
    )
    .expect("issuer");
    let agent = agent_for(&eks_auth);
    let token = pod_token(&issuer);
    for _ in 0..3 {
        let (status, body, _) = ask_agent(&agent, &token).await;
        assert_eq!(status, 404, "{body}");
        assert!(
            body.contains("(ResourceNotFoundException): no association"),
            "{body}"
        );
    }
    // One client, one pooled keep-alive connection; a client per request opens one each.
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the agent opened a connection per request"
    );
}
