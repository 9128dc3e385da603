//! The request parsers of the emulators that run in-process: GCP STS (`/v1/token` JSON and
//! form bodies), the metadata server (any path, query and header), IAM Credentials
//! (`generateAccessToken` bodies), and Entra (the token form, tenant paths, discovery). A
//! hostile or buggy client controls method, path, headers and body: every request gets an
//! HTTP answer (a handler that panics drops the connection), within the client's timeout,
//! and bad input is a 4xx, never a 5xx.

use std::time::Duration;

use proptest::prelude::*;

use podiam_e2e::emulators::azure::{AzureEmulatorOptions, AzureEmulators};
use podiam_e2e::emulators::gcp::{GcpEmulatorOptions, GcpEmulators};

use super::support::{hostile_text, runner};

const CI_CASES: u32 = 250;
const TIMEOUT: Duration = Duration::from_secs(5);

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: reqwest::Method,
    pub path: String,
    pub content_type: Option<&'static str>,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// Sends `r` to `base` and answers its status, or why no HTTP answer came.
pub fn send(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    base: &str,
    r: &Request,
) -> Result<u16, String> {
    rt.block_on(async {
        let mut b = client
            .request(r.method.clone(), format!("{base}{}", r.path))
            .timeout(TIMEOUT)
            .body(r.body.clone());
        if let Some(ct) = r.content_type {
            b = b.header("content-type", ct);
        }
        for (k, v) in &r.headers {
            b = b.header(*k, v.as_str());
        }
        match b.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                resp.bytes().await.map_err(|e| format!("body: {e}"))?;
                Ok(status)
            }
            // A URL reqwest will not send (invalid header value, bad URL): not the server's.
            Err(e) if e.is_builder() => Ok(0),
            Err(e) => Err(format!("{e:?}")),
        }
    })
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9._-]{0,12}",
        1 => prop::sample::select(vec![
            "..", "%2e%2e", "%00", "%ff", "%", "a%2Fb", "é", "%C3%A9", "?", "?recursive=true",
            "?alt=json&x", "#", ";", "v1", "computeMetadata", "instance", "service-accounts",
            "default", "token", "identity?audience=x", "email", "scopes", "project", "project-id",
            "oauth2", "v2.0", "discovery", "keys", "common", "organizations",
        ])
        .prop_map(str::to_string),
    ]
}

fn path(prefixes: Vec<&'static str>) -> impl Strategy<Value = String> {
    (
        prop::sample::select(prefixes),
        prop::collection::vec(segment(), 0..6),
    )
        .prop_map(|(p, s)| {
            let mut path = p.to_string();
            for seg in s {
                path.push('/');
                path.push_str(&seg);
            }
            path
        })
}

fn form_body() -> impl Strategy<Value = Vec<u8>> {
    let key = prop::sample::select(vec![
        "grant_type",
        "client_id",
        "client_assertion",
        "client_assertion_type",
        "scope",
        "subject_token",
        "subject_token_type",
        "audience",
        "requested_token_type",
        "x",
    ]);
    let value = prop_oneof![
        hostile_text(),
        prop::sample::select(vec![
            "client_credentials",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "urn:ietf:params:oauth:token-type:jwt",
            "https://management.azure.com/.default",
            "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
            "",
        ])
        .prop_map(str::to_string),
    ];
    prop::collection::vec((key, value), 0..8).prop_map(|pairs| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            s.append_pair(k, &v);
        }
        s.finish().into_bytes()
    })
}

fn json_body() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        3 => prop::sample::select(vec![
            "{", "}", "[", "]", ",", ":", "\"grantType\"", "\"subjectToken\"", "\"subjectTokenType\"",
            "\"audience\"", "\"scope\"", "\"requestedTokenType\"", "\"lifetime\"", "\"delegates\"",
            "\"//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x\"",
            "\"urn:ietf:params:oauth:grant-type:token-exchange\"", "\"3600s\"", "\"-1s\"", "\"99999999999999999999s\"",
            "\"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln\"", "null", "1e999", "-0", "\"\\ud800\"",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        1 => hostile_text().prop_map(String::into_bytes),
    ];
    prop::collection::vec(piece, 0..20).prop_map(|v| v.concat())
}

fn request(paths: Vec<&'static str>) -> impl Strategy<Value = Request> {
    let method = prop::sample::select(vec![
        reqwest::Method::GET,
        reqwest::Method::POST,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
        reqwest::Method::HEAD,
        reqwest::Method::OPTIONS,
    ]);
    let content_type = prop::option::of(prop::sample::select(vec![
        "application/x-www-form-urlencoded",
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded; charset=utf-8",
        "multipart/form-data",
    ]));
    let header = prop::collection::vec(
        (
            prop::sample::select(vec![
                "metadata-flavor",
                "authorization",
                "x-google-metadata-request",
                "metadata",
                "x-ms-client-request-id",
            ]),
            prop_oneof![
                Just("Google".to_string()),
                Just("true".to_string()),
                Just("Bearer x".to_string()),
                "[ -~]{0,30}"
            ],
        ),
        0..3,
    );
    let body = prop_oneof![
        form_body(),
        json_body(),
        prop::collection::vec(any::<u8>(), 0..256)
    ];
    (method, path(paths), content_type, header, body).prop_map(
        |(method, path, content_type, headers, body)| Request {
            method,
            path,
            content_type,
            headers,
            body,
        },
    )
}

fn check(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    base: &str,
    r: &Request,
) -> Result<(), TestCaseError> {
    let answered = send(rt, client, base, r);
    let status =
        answered.map_err(|e| TestCaseError::fail(format!("no HTTP answer to {r:?}: {e}")))?;
    prop_assert!(status < 500, "HTTP {} to {:?}", status, r);
    Ok(())
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        // A fresh connection per request: a reused one the server closed after an early
        // answer would read as a dropped request (hyper's IncompleteMessage race).
        .pool_max_idle_per_host(0)
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap()
}

#[test]
fn gcp_sts_metadata_and_iam_credentials() {
    let rt = rt();
    let gcp = rt
        .block_on(GcpEmulators::start(GcpEmulatorOptions::default()))
        .expect("GCP emulators start");
    let client = http();
    let targets = [
        (
            gcp.sts_url().to_string(),
            vec!["/v1/token", "/v1", "", "/v1/token/"],
        ),
        (
            gcp.metadata_url(),
            vec![
                "/computeMetadata/v1",
                "/computeMetadata/v1/instance/service-accounts/default",
                "",
                "/computeMetadata/v1/project",
            ],
        ),
        (
            gcp.iam_credentials_url().to_string(),
            vec![
                "/v1/projects/-/serviceAccounts/a@p.iam.gserviceaccount.com:generateAccessToken",
                "/v1/projects/-/serviceAccounts",
                "",
            ],
        ),
    ];
    for (base, paths) in targets {
        runner(CI_CASES)
            .run(&request(paths), |r| check(&rt, &client, &base, &r))
            .unwrap_or_else(|e| panic!("{base}: {e}"));
    }
}

#[test]
fn entra_token_form_and_paths() {
    let rt = rt();
    let azure = rt
        .block_on(AzureEmulators::start(AzureEmulatorOptions::default()))
        .expect("Azure emulators start");
    let client = http();
    let base = azure.entra_url().trim_end_matches('/').to_string();
    let tenant: &'static str = Box::leak(format!("/{}", azure.tenant_id()).into_boxed_str());
    let token: &'static str = Box::leak(format!("{tenant}/oauth2/v2.0/token").into_boxed_str());
    runner(CI_CASES)
        .run(
            &request(vec![
                token,
                tenant,
                "/common",
                "",
                "/common/discovery/instance",
            ]),
            |r| check(&rt, &client, &base, &r),
        )
        .expect("Entra answers every request with an HTTP status below 500");
}

/// Found by `scripts/fuzz 10 20261204`: a 150 KB form sent with GET to an unknown Entra path
/// lost its answer (hyper: `BodyWrite`, broken pipe). axum answered 404 without reading the
/// body and closed; the kernel reset the connection under the client's unsent bytes. Each
/// emulator now reads the whole body first: no answer comes before the body's last byte.
#[test]
fn regression_no_answer_comes_before_the_whole_body() {
    use std::io::{Read, Write};
    let rt = rt();
    let gcp = rt
        .block_on(GcpEmulators::start(GcpEmulatorOptions::default()))
        .expect("GCP emulators start");
    for (base, path) in [
        (gcp.sts_url().to_string(), "/v1/tokens"),
        (
            gcp.iam_credentials_url().to_string(),
            "/v1/projects/-/serviceAccounts/a@p.iam.gserviceaccount.com:generateAccessToken",
        ),
    ] {
        let address = base.trim_start_matches("http://").trim_end_matches('/');
        let mut socket = std::net::TcpStream::connect(address).unwrap();
        let half = vec![b'a'; 64 * 1024];
        write!(
            socket,
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
            2 * half.len()
        )
        .unwrap();
        socket.write_all(&half).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut early = [0u8; 64];
        let answered_early = matches!(socket.read(&mut early), Ok(n) if n > 0);
        assert!(
            !answered_early,
            "{base}{path} answered before the body's end: {}",
            String::from_utf8_lossy(&early)
        );
        socket.write_all(&half).unwrap();
        socket.set_read_timeout(Some(TIMEOUT)).unwrap();
        let mut answer = [0u8; 12];
        socket.read_exact(&mut answer).unwrap();
        assert!(
            answer.starts_with(b"HTTP/1.1 40"),
            "{base}{path}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
}

/// With the body read first, the answers keep their status, through Entra's TLS and a real
/// client as well: 404 for an unknown path, 405 for a wrong method.
#[test]
fn regression_a_large_body_to_an_unknown_path_or_method_gets_its_answer() {
    let rt = rt();
    let azure = rt
        .block_on(AzureEmulators::start(AzureEmulatorOptions::default()))
        .expect("Azure emulators start");
    let gcp = rt
        .block_on(GcpEmulators::start(GcpEmulatorOptions::default()))
        .expect("GCP emulators start");
    let client = http();
    let entra = azure.entra_url().trim_end_matches('/').to_string();
    let token_path = format!("/{}/oauth2/v2.0/token", azure.tenant_id());
    let body = format!("subject_token={}", "%2F".repeat(90_000)).into_bytes();
    let cases = [
        (
            entra.clone(),
            format!("{token_path}/m_"),
            reqwest::Method::GET,
            404,
        ),
        (entra, token_path, reqwest::Method::GET, 405),
        (
            gcp.sts_url().to_string(),
            "/v1/tokens".to_string(),
            reqwest::Method::POST,
            404,
        ),
        (
            gcp.iam_credentials_url().to_string(),
            "/v1/projects/-/serviceAccounts/a@p.iam.gserviceaccount.com:generateAccessToken"
                .to_string(),
            reqwest::Method::PUT,
            405,
        ),
    ];
    for (base, path, method, expected) in cases {
        for attempt in 0..10 {
            let request = Request {
                method: method.clone(),
                path: path.clone(),
                content_type: Some("application/x-www-form-urlencoded"),
                headers: Vec::new(),
                body: body.clone(),
            };
            let status = send(&rt, &client, &base, &request)
                .unwrap_or_else(|e| panic!("{method} {base}{path} (attempt {attempt}): {e}"));
            assert_eq!(status, expected, "{method} {base}{path}");
        }
    }
}
