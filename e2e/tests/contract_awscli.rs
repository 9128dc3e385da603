//! Contract: the AWS half of `bench verify`'s manual anchor — the pinned AWS CLI (its own venv,
//! `podiam-e2e setup` creates it) — against the strict gate, without a cluster: a minted token
//! stands in for the one `kubectl exec cat` reads. Needs python3 with venv and a reachable PyPI.

use std::time::Instant;

use podiam_e2e::awscli_env::AwsCliEnv;
use podiam_e2e::emulators::{AwsEmulators, TokenSpec};
use podiam_e2e::manual_anchor::{AwsCli, ManualAnchorError, SESSION_NAME, assumed_role_arn};

#[tokio::test]
async fn the_aws_cli_assumes_the_role_and_names_its_session() {
    let emulators = AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start with the seed (needs python3 with venv and PyPI for moto)");
    let awscli = tokio::task::spawn_blocking(AwsCliEnv::ensure)
        .await
        .expect("join")
        .expect("AWS CLI venv");
    let cli = AwsCli {
        aws: awscli.aws(),
        endpoint_url: emulators.gate_url().to_owned(),
        region: emulators.region().to_owned(),
    };
    let role_arn = emulators.role_arn("my-pod-role");
    let token = emulators
        .mint_token(&TokenSpec::new("default", "s3-reader"))
        .expect("mint");

    let started = Instant::now();
    let credentials = cli
        .assume_role_with_web_identity(&role_arn, SESSION_NAME, &token)
        .await
        .expect("the gate grants the seed's role to default/s3-reader");
    let arn = cli
        .caller_arn(&credentials)
        .await
        .expect("get-caller-identity");
    eprintln!(
        "aws sts assume-role-with-web-identity + get-caller-identity: {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(Some(arn), assumed_role_arn(&role_arn, SESSION_NAME));
}

#[tokio::test]
async fn a_refusal_names_the_error_and_hides_the_token() {
    let emulators = AwsEmulators::start_seeded().await.expect("AWS emulators");
    let awscli = tokio::task::spawn_blocking(AwsCliEnv::ensure)
        .await
        .expect("join")
        .expect("AWS CLI venv");
    let cli = AwsCli {
        aws: awscli.aws(),
        endpoint_url: emulators.gate_url().to_owned(),
        region: emulators.region().to_owned(),
    };
    // The trust policy admits default/s3-reader only.
    let token = emulators
        .mint_token(&TokenSpec::new("other", "s3-reader"))
        .expect("mint");
    let err = cli
        .assume_role_with_web_identity(&emulators.role_arn("my-pod-role"), SESSION_NAME, &token)
        .await
        .expect_err("another namespace's token is refused");
    let text = err.to_string();
    assert!(matches!(err, ManualAnchorError::Failed { .. }), "{text}");
    assert!(text.contains("AccessDenied"), "{text}");
    assert!(!text.contains(&token), "the token leaked into the error");
}

/// The CLI starts and reaches the network: against a closed port it fails with a connection
/// error, not an import error (after its default retries: seconds).
#[tokio::test]
async fn the_cli_starts_and_reports_an_unreachable_endpoint() {
    let awscli = tokio::task::spawn_blocking(AwsCliEnv::ensure)
        .await
        .expect("join")
        .expect("AWS CLI venv");
    let cli = AwsCli {
        aws: awscli.aws(),
        // Port 9 (discard) on loopback: nothing listens.
        endpoint_url: "http://127.0.0.1:9".to_owned(),
        region: "us-east-1".to_owned(),
    };
    let started = Instant::now();
    let err = cli
        .assume_role_with_web_identity("arn:aws:iam::123456789012:role/r", SESSION_NAME, "a.b.c")
        .await
        .expect_err("nothing listens")
        .to_string();
    let took = started.elapsed();
    eprintln!(
        "aws against a closed port: {:.0} ms: {err}",
        took.as_secs_f64() * 1000.0
    );
    assert!(
        err.contains("Could not connect to the endpoint URL"),
        "{err}"
    );
}
