//! Faults of the cloud side, no cluster: a proxy in front of the strict STS gate answers
//! AssumeRoleWithWebIdentity with `Throttling` (400) or a 503 with `Retry-After` a given number
//! of times, then forwards. The built plugin exchanges from this machine (`verify -f
//! --token-file -`), so the retry proven here is aws-sdk-sts's own standard mode; the pod's own
//! exchange retries the same way (`mechanisms/aws_irsa/in_pod.rs`, its unit tests).
//!
//! And a token that expires between podiam's read and STS's check: the proxy holds the
//! exchange past the token's `exp`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use assert_cmd::Command;
use podiam_e2e::emulators::{AwsEmulators, TokenSpec};
use serde_json::Value;

#[path = "support/gate_proxy.rs"]
mod gate_proxy;
use gate_proxy::{Fault, Rule};

const SEED_ROLE: &str = "arn:aws:iam::123456789012:role/my-pod-role";

const THROTTLED: &str = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/xml\r\nConnection: close\r\nContent-Length: 179\r\n\r\n<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>f0000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>";
const UNAVAILABLE: &str = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbusy";

/// The proxy: the first `faults` AssumeRoleWithWebIdentity calls get `fault`, every other
/// request goes to `upstream`. Returns its URL and the count of exchanges it received.
async fn fault_proxy(
    upstream: &str,
    faults: usize,
    fault: &'static str,
) -> (String, Arc<AtomicUsize>) {
    slow_fault_proxy(upstream, faults, fault, Duration::ZERO).await
}

/// As [`fault_proxy`], and every exchange is held for `delay` first (a slow STS).
async fn slow_fault_proxy(
    upstream: &str,
    faults: usize,
    fault: &'static str,
    delay: Duration,
) -> (String, Arc<AtomicUsize>) {
    let rule = Rule {
        matching: "Action=AssumeRoleWithWebIdentity",
        fault: Fault::Answer {
            response: fault,
            times: faults,
        },
        delay,
    };
    gate_proxy::start(upstream, rule).await
}

fn examples() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/aws")
}

/// `verify -f examples/aws --token-file -` with every AWS call through `endpoint`.
fn verify(endpoint: &str, token: &str) -> (Option<i32>, Value) {
    let out = Command::cargo_bin("kubectl-podiam")
        .unwrap()
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["verify", "-o", "json", "--token-file", "-", "-f"])
        .arg(examples())
        .args(["--expect-role", SEED_ROLE])
        .write_stdin(token.to_string())
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), report)
}

fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["items"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {report:#}"))
}

async fn emulators_and_token() -> (AwsEmulators, String) {
    let emulators = AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start with the seed (needs python3 with venv and PyPI for moto)");
    let token = emulators
        .mint_token(&TokenSpec::new("default", "s3-reader"))
        .unwrap();
    (emulators, token)
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_that_clears_within_the_sdks_attempts_is_no_finding() {
    let (emulators, token) = emulators_and_token().await;
    let (proxy, exchanges) = fault_proxy(emulators.gate_url(), 2, THROTTLED).await;
    let (code, report) = verify(&proxy, &token);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(check(&report, "aws.sts.assume-role")["status"], "pass");
    assert_eq!(
        exchanges.load(Ordering::SeqCst),
        3,
        "two throttled attempts, then the answer"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_503_with_retry_after_is_retried() {
    let (emulators, token) = emulators_and_token().await;
    let (proxy, exchanges) = fault_proxy(emulators.gate_url(), 1, UNAVAILABLE).await;
    let (code, report) = verify(&proxy, &token);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(exchanges.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn sts_that_keeps_throttling_exits_3_naming_the_throttle_never_a_failed_verification() {
    let (emulators, token) = emulators_and_token().await;
    let (proxy, exchanges) = fault_proxy(emulators.gate_url(), usize::MAX, THROTTLED).await;
    let (code, report) = verify(&proxy, &token);
    assert_eq!(code, Some(3), "{report:#}");
    let sts = check(&report, "aws.sts.assume-role");
    assert_eq!(sts["status"], "warn", "{sts:#}");
    let message = sts["message"].as_str().unwrap();
    assert!(
        message.contains("throttled each of 3 attempts")
            && message.contains("Throttling: Rate exceeded")
            && message.contains("retry later"),
        "{message}"
    );
    assert_eq!(
        exchanges.load(Ordering::SeqCst),
        3,
        "the SDK's standard mode makes three attempts"
    );
    assert_ne!(report["verdict"], "pass");
}

/// A token read two seconds before it expires, exchanged three seconds later: STS accepts a
/// token up to its clock skew (30 s) past `exp`, so the exchange succeeds, as the pod's SDK's
/// would; the claims check warns that the token is past the point where the kubelet refreshes
/// it (80% of its life), naming the cause of the exchanges that will fail next.
#[tokio::test(flavor = "multi_thread")]
async fn a_token_expiring_between_the_read_and_the_exchange_is_warned_of_and_still_exchanged() {
    let emulators = AwsEmulators::start_seeded()
        .await
        .expect("AWS emulators start with the seed (needs python3 with venv and PyPI for moto)");
    let mut spec = TokenSpec::new("default", "s3-reader");
    spec.issued_at_in_seconds = Some(-598);
    spec.expires_in_seconds = 2;
    let token = emulators.mint_token(&spec).unwrap();
    let (proxy, exchanges) =
        slow_fault_proxy(emulators.gate_url(), 0, THROTTLED, Duration::from_secs(3)).await;
    let (code, report) = verify(&proxy, &token);
    assert_eq!(exchanges.load(Ordering::SeqCst), 1, "{report:#}");
    let claims = check(&report, "aws.token.claims");
    assert_eq!(claims["status"], "warn", "{claims:#}");
    let message = claims["message"].as_str().unwrap();
    assert!(
        message.contains("past 90% of its 600s life")
            && message.contains("the kubelet refreshes projected tokens at 80%"),
        "{message}"
    );
    assert_eq!(check(&report, "aws.sts.assume-role")["status"], "pass");
    assert_eq!(code, Some(0), "a warning is no failure: {report:#}");
}
