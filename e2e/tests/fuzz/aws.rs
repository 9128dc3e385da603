//! The AWS gate's request parsers (STS query protocol: form body or query string,
//! `AssumeRoleWithWebIdentity` tokens; the EKS Auth `assume-role-for-pod-identity` JSON body)
//! and the Pod Identity agent's request (`GET /v1/credentials` with its Authorization header).
//! moto is replaced by a closed port: requests the gate forwards fail as the gate says, so the
//! property here is an HTTP answer within the gate's own bound — a parser that panics drops
//! the connection, one that loops answers late.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;

use podiam_e2e::emulators::hop_budgets::{AGENT_REQUEST, GATE_REQUEST};
use podiam_e2e::emulators::pod_identity_agent::AgentRoute;
use podiam_e2e::emulators::{AdminCredentials, AwsGate, PodIdentityAgent};

use super::emulators::{Request, http, send};
use super::support::{hostile_text, runner};

const CI_CASES: u32 = 200;

/// Unsigned JWTs with claims from a small set: issuers that are closed local ports, so no
/// case waits on DNS or a remote JWKS.
fn token() -> impl Strategy<Value = String> {
    let claim = prop::sample::select(vec![
        r#""iss":"https://127.0.0.1:1/issuer""#,
        r#""iss":"http://127.0.0.1:1""#,
        r#""iss":7"#,
        r#""sub":"system:serviceaccount:default:app""#,
        r#""aud":["sts.amazonaws.com"]"#,
        r#""aud":"pods.eks.amazonaws.com""#,
        r#""exp":4102444800"#,
        r#""exp":-1"#,
        r#""exp":"x""#,
        r#""kubernetes.io":{"namespace":"default","pod":{"name":"p"}}"#,
        r#""kubernetes.io":[]"#,
    ]);
    let header = prop::sample::select(vec![
        r#"{"alg":"RS256","kid":"k"}"#,
        r#"{"alg":"none"}"#,
        r#"{"alg":"HS256"}"#,
        "{}",
        "[",
    ]);
    prop_oneof![
        3 => (header, prop::collection::vec(claim, 0..6), "[A-Za-z0-9_-]{0,20}").prop_map(|(h, c, sig)| {
            format!(
                "{}.{}.{sig}",
                URL_SAFE_NO_PAD.encode(h),
                URL_SAFE_NO_PAD.encode(format!("{{{}}}", c.join(",")))
            )
        }),
        1 => hostile_text(),
    ]
}

fn sts_request() -> impl Strategy<Value = Request> {
    let action = prop::sample::select(vec![
        "AssumeRoleWithWebIdentity",
        "AssumeRole",
        "GetCallerIdentity",
        "CreateOpenIDConnectProvider",
        "",
        "x",
    ]);
    let role = prop_oneof![
        Just("arn:aws:iam::123456789012:role/r".to_string()),
        Just("arn:aws:iam::123456789012:role/".to_string()),
        "[ -~]{0,30}",
    ];
    let extra = prop::collection::vec(
        (
            prop::sample::select(vec![
                "Version",
                "DurationSeconds",
                "RoleSessionName",
                "Policy",
                "Url",
                "Action",
            ]),
            hostile_text(),
        ),
        0..3,
    );
    (
        action,
        role,
        token(),
        extra,
        any::<bool>(),
        prop::option::of(Just(
            "AWS4-HMAC-SHA256 Credential=AKIA/x, SignedHeaders=host, Signature=00",
        )),
    )
        .prop_map(|(action, role, token, extra, in_query, auth)| {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("Action", action)
                .append_pair("Version", "2011-06-15")
                .append_pair("RoleArn", &role)
                .append_pair("RoleSessionName", "fuzz")
                .append_pair("WebIdentityToken", &token);
            for (k, v) in extra {
                form.append_pair(k, &v);
            }
            let encoded = form.finish();
            let headers = auth
                .map(|a| vec![("authorization", a.to_string())])
                .unwrap_or_default();
            if in_query {
                Request {
                    method: reqwest::Method::GET,
                    path: format!("/?{encoded}"),
                    content_type: None,
                    headers,
                    body: Vec::new(),
                }
            } else {
                Request {
                    method: reqwest::Method::POST,
                    path: "/".into(),
                    content_type: Some("application/x-www-form-urlencoded"),
                    headers,
                    body: encoded.into_bytes(),
                }
            }
        })
}

fn eks_auth_request() -> impl Strategy<Value = Request> {
    let body = prop_oneof![
        token().prop_map(|t| serde_json::json!({"token": t}).to_string()),
        hostile_text(),
        Just("{\"token\": 7}".to_string()),
        Just("{}".to_string()),
    ];
    (
        prop::sample::select(vec![
            "/clusters/podiam/assume-role-for-pod-identity",
            "/clusters/%00/assume-role-for-pod-identity",
            "/clusters/podiam/pod-identity-associations",
            "/clusters/podiam/pod-identity-associations/a-1",
        ]),
        body,
    )
        .prop_map(|(path, body)| Request {
            method: reqwest::Method::POST,
            path: path.to_string(),
            content_type: Some("application/json"),
            headers: Vec::new(),
            body: body.into_bytes(),
        })
}

fn agent_request() -> impl Strategy<Value = Request> {
    let auth = prop::option::of(prop_oneof![token(), "[ -~]{0,40}"]);
    (
        prop::sample::select(vec![
            "/v1/credentials",
            "/v1/credentials?x=1",
            "/v1",
            "/",
            "/v1/credentials/..",
        ]),
        auth,
    )
        .prop_map(|(path, auth)| Request {
            method: reqwest::Method::GET,
            path: path.to_string(),
            content_type: None,
            headers: auth.map(|a| vec![("authorization", a)]).unwrap_or_default(),
            body: Vec::new(),
        })
}

fn answered(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    base: &str,
    r: &Request,
    bound: Duration,
) -> Result<(), TestCaseError> {
    let started = std::time::Instant::now();
    let status = send(rt, client, base, r)
        .map_err(|e| TestCaseError::fail(format!("no HTTP answer to {r:?}: {e}")))?;
    prop_assert!(
        started.elapsed() <= bound + Duration::from_secs(2),
        "answered after {:?}",
        started.elapsed()
    );
    prop_assert!(status == 0 || (100..600).contains(&status));
    Ok(())
}

#[test]
fn gate_and_pod_identity_agent() {
    let servers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let admin = AdminCredentials {
        access_key_id: "AKIAFUZZ".into(),
        secret_access_key: "fuzz-secret".into(),
    };
    let gate = AwsGate::start(
        "http://127.0.0.1:1",
        admin.clone(),
        "123456789012",
        &[],
        servers.handle(),
    )
    .expect("gate starts");
    let agent = PodIdentityAgent::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        "podiam",
        AgentRoute {
            endpoint: gate.url().to_owned(),
            credentials: admin,
        },
    )
    .expect("agent starts");
    let rt = super::emulators::rt();
    let client = http();
    let gate_url = gate.url().to_owned();
    runner(CI_CASES)
        .run(&prop_oneof![sts_request(), eks_auth_request()], |r| {
            answered(&rt, &client, &gate_url, &r, GATE_REQUEST)
        })
        .expect("the gate answers every request within its bound");
    let agent_url = format!("http://{}", agent.address());
    runner(CI_CASES / 2)
        .run(&agent_request(), |r| {
            answered(&rt, &client, &agent_url, &r, AGENT_REQUEST)
        })
        .expect("the agent answers every request within its bound");
}
