//! The probe against local fakes of STS and IMDS: the identity and the node's identity come
//! back, and the JSON line holds none of the secrets that went through the probe.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use podiam_probe::dns::Resolver;
use podiam_probe::run::{self, Options};
use podiam_probe::target::Target;

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lzc3VlciIsInN1YiI6InN5c3RlbTpzZXJ2aWNlYWNjb3VudDpuczpzYSIsImF1ZCI6InN0cy5hbWF6b25hd3MuY29tIn0.FAKESIGNATURESECRET";
const SECRETS: &[&str] = &[
    "FAKESIGNATURESECRET",
    "ASIAFAKEPODKEY",
    "podSecretKeyFAKE",
    "podSessionTokenFAKE",
    "ASIAFAKENODEKEY",
    "nodeSecretKeyFAKE",
    "nodeSessionTokenFAKE",
    "imdsTokenFAKE",
];

fn read_request(stream: &mut impl Read) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data);
        if let Some(end) = text.find("\r\n\r\n") {
            let len = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + len {
                break;
            }
        }
    }
    String::from_utf8_lossy(&data).into_owned()
}

fn respond(stream: &mut impl Write, status: u16, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
}

/// One server standing in for STS and IMDS.
fn fake_aws(accept_role: bool) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let mut s = stream.unwrap();
            let req = read_request(&mut s);
            let (status, body) = if req.starts_with("PUT /latest/api/token") {
                (200, "imdsTokenFAKE".to_string())
            } else if req.contains("/security-credentials/node-role") {
                assert!(req.contains("imdsTokenFAKE"), "IMDSv2 token not sent");
                (200, r#"{"Code":"Success","AccessKeyId":"ASIAFAKENODEKEY","SecretAccessKey":"nodeSecretKeyFAKE","Token":"nodeSessionTokenFAKE"}"#.into())
            } else if req.contains("/security-credentials/") {
                (200, "node-role\n".into())
            } else if req.contains("Action=AssumeRoleWithWebIdentity") {
                assert!(
                    req.contains("WebIdentityToken=eyJ"),
                    "the token was not sent"
                );
                if accept_role {
                    (200, "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIAFAKEPODKEY</AccessKeyId><SecretAccessKey>podSecretKeyFAKE</SecretAccessKey><SessionToken>podSessionTokenFAKE</SessionToken></Credentials><AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/my-pod-role/s</Arn></AssumedRoleUser></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>".into())
                } else {
                    (403, "<ErrorResponse><Error><Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error></ErrorResponse>".into())
                }
            } else if req.contains("Action=GetCallerIdentity") {
                let arn = if req.contains("Credential=ASIAFAKENODEKEY/") {
                    "arn:aws:sts::123456789012:assumed-role/node-role/i-0abc"
                } else if req.contains("Credential=ASIAFAKEPODKEY/") {
                    "arn:aws:sts::123456789012:assumed-role/my-pod-role/podiam-probe"
                } else {
                    "unsigned"
                };
                assert!(
                    req.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token"),
                    "{req}"
                );
                (
                    200,
                    format!(
                        "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>{arn}</Arn></GetCallerIdentityResult></GetCallerIdentityResponse>"
                    ),
                )
            } else {
                (404, String::new())
            };
            respond(&mut s, status, &body);
        }
    });
    port
}

fn target(port: u16, token_file: &str) -> Target {
    let vars: BTreeMap<String, String> = [
        (
            "AWS_ROLE_ARN",
            "arn:aws:iam::123456789012:role/my-pod-role".to_string(),
        ),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_string()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ENDPOINT_URL_STS", format!("http://127.0.0.1:{port}")),
        (
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            format!("http://127.0.0.1:{port}"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Target::from_vars(vars, "own")
}

fn token_file(name: &str) -> String {
    let path = std::env::temp_dir().join(format!("podiam-probe-{name}-{}", std::process::id()));
    std::fs::write(&path, TOKEN).unwrap();
    path.display().to_string()
}

fn options() -> Options {
    Options {
        mechanism: None,
        node: vec!["aws".into()],
        timeout: Duration::from_secs(5),
        metadata_timeout: Duration::from_secs(2),
    }
}

#[test]
fn irsa_identity_and_node_role_without_any_secret_in_the_line() {
    let port = fake_aws(true);
    let file = token_file("ok");
    let report = run::probe(target(port, &file), Resolver::from_files("", ""), options());
    let line = report.line();
    assert!(!line.contains('\n'));
    for secret in SECRETS {
        assert!(!line.contains(secret), "{secret} in {line}");
    }
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["mechanism"], "aws-irsa");
    assert_eq!(
        v["identity"]["principal"],
        "arn:aws:sts::123456789012:assumed-role/my-pod-role/podiam-probe"
    );
    assert_eq!(v["token"]["read"], true);
    assert_eq!(v["token"]["claims"]["sub"], "system:serviceaccount:ns:sa");
    assert_eq!(v["calls"][0]["step"], "sts:AssumeRoleWithWebIdentity");
    assert_eq!(v["calls"][0]["status"], 200);
    assert_eq!(
        v["node"]["reached"]["principal"],
        "arn:aws:sts::123456789012:assumed-role/node-role/i-0abc"
    );
    assert!(
        v["node"]["reached"]["via"]
            .as_str()
            .unwrap()
            .starts_with("IMDSv2")
    );
    std::fs::remove_file(file).unwrap();
}

#[test]
fn a_refusal_carries_the_clouds_code_and_an_unreachable_sts_its_cause() {
    let port = fake_aws(false);
    let file = token_file("denied");
    let mut o = options();
    o.node.clear();
    let report = run::probe(target(port, &file), Resolver::from_files("", ""), o.clone());
    let v: serde_json::Value = serde_json::from_str(&report.line()).unwrap();
    assert!(v["identity"].is_null());
    assert_eq!(v["calls"][0]["status"], 403);
    assert_eq!(v["calls"][0]["error_code"], "AccessDenied");

    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().port();
    drop(closed);
    let report = run::probe(target(dead, &file), Resolver::from_files("", ""), o);
    let v: serde_json::Value = serde_json::from_str(&report.line()).unwrap();
    assert_eq!(v["calls"][0]["failure"]["cause"], "refused");
    assert!(v["node"].is_null());

    let report = run::probe(
        target(port, "/nonexistent/token"),
        Resolver::from_files("", ""),
        options(),
    );
    let v: serde_json::Value = serde_json::from_str(&report.line()).unwrap();
    assert_eq!(v["token"]["read"], false);
    assert!(
        v["calls"][0]["step"] == "node:imds:token",
        "no exchange without a token: {v}"
    );
    std::fs::remove_file(file).unwrap();
}
