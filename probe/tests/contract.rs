//! The probe's JSON line is what the plugin reads: the shared fixture
//! (`probe/tests/fixtures/report.json`, also parsed by the plugin's `ephemeral::report` tests)
//! is exactly what the probe serializes for the same report.

use podiam_probe::jwt::Claims;
use podiam_probe::report::*;

fn call(step: &str, url: &str, because: &str, ca: Option<&str>) -> Call {
    Call {
        step: step.into(),
        url: url.into(),
        because: because.into(),
        ca: ca.map(str::to_string),
        status: Some(200),
        ..Call::default()
    }
}

#[test]
fn the_fixture_is_what_the_probe_prints() {
    let sts = "https://sts.us-east-1.amazonaws.com";
    let because = "AWS_REGION=us-east-1; STS is regional in this SDK (Go v2, JS v3, Java v2, Rust, botocore ≥ 1.40 (boto3 ≥ 1.40, AWS CLI v1 ≥ 1.42))";
    let ca = Some("/etc/ssl/certs/ca-certificates.crt (the target container's file)");
    let report = Report {
        podiam_probe: SCHEMA,
        version: env!("CARGO_PKG_VERSION").into(),
        mechanism: "aws-irsa".into(),
        user: User {
            uid: 1000,
            gid: 3000,
            target_uid: Some(1000),
        },
        env_source: "target-process".into(),
        target_pid: Some(7),
        client: "podiam-probe (rustls; Go's proxy rules)".into(),
        token: Some(TokenRead {
            variable: "AWS_WEB_IDENTITY_TOKEN_FILE".into(),
            path: "/var/run/secrets/eks.amazonaws.com/serviceaccount/token".into(),
            read: true,
            error: None,
            bytes: 1021,
            claims: Some(Claims {
                iss: Some("https://issuer.example".into()),
                sub: Some("system:serviceaccount:team-a:s3-reader".into()),
                aud: vec!["sts.amazonaws.com".into()],
                exp: Some(1_900_000_000),
                ..Claims::default()
            }),
        }),
        calls: vec![
            call("sts:AssumeRoleWithWebIdentity", sts, because, ca),
            call("sts:GetCallerIdentity", sts, because, ca),
            Call {
                status: None,
                failure: Some(Failure {
                    cause: "timeout".into(),
                    detail: "no answer within 2s".into(),
                }),
                ..call(
                    "node:imds:token",
                    "http://169.254.169.254/latest/api/token",
                    "the SDK chain's last resort",
                    None,
                )
            },
        ],
        identity: Some(Identity {
            provider: "aws".into(),
            principal: "arn:aws:sts::123456789012:assumed-role/my-pod-role/podiam-probe-20260101T000000Z".into(),
            endpoint: sts.into(),
            detail: None,
        }),
        node: Some(Node {
            asked: vec!["aws".into()],
            reached: None,
            not_reached: vec!["AWS IMDSv2 token request: no answer within 2s (a hop limit of 1 or a blocked 169.254.169.254)".into()],
        }),
        errors: Vec::new(),
    };
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/report.json")).unwrap();
    let printed: serde_json::Value = serde_json::from_str(&report.line()).unwrap();
    assert_eq!(printed, fixture);
}
