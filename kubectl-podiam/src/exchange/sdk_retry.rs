//! The AWS SDKs' "standard" retry mode, for the exchange the pod makes from inside itself
//! (its curl, wget or python3 is no SDK, so the plugin retries for it). Where an SDK makes the
//! call (aws-sdk-* from this machine, azure_identity), that SDK's own retry is used instead.
//!
//! As botocore's `standard` mode and aws-sdk-rust's `RetryConfig::standard()`: at most three
//! attempts; a throttling code, a transient code or a 500/502/503/504 is retried after
//! `random(0..1) × 2^(attempt-1)` seconds, at most 20 s. 429 is retried as a throttle. The AWS
//! SDKs ignore `Retry-After` (the azure SDK honours it, in `azure_entra.rs`).
//!
//! [`retried`] drives the calls podiam makes for a pod (its STS, Entra, Google STS and IAM
//! Credentials, and Pod Identity Agent requests): one loop, so each cloud's call only says which
//! of its answers are worth another attempt.

use std::future::Future;
use std::hash::BuildHasher;
use std::time::Duration;

use super::CloudError;

/// Attempts in all, the first included (`AWS_MAX_ATTEMPTS`' default in standard mode).
pub const MAX_ATTEMPTS: u32 = 3;

/// The cap of one wait (botocore `standard`: `MAX_BACKOFF = 20`).
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// botocore's `standard.THROTTLING_ERROR_CODES` and `TRANSIENT_ERROR_CODES`.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// botocore's `standard.TRANSIENT_STATUS_CODES`, plus 429 (too many requests).
const RETRYABLE_STATUSES: &[u16] = &[429, 500, 502, 503, 504];

/// Whether an answer with this HTTP status and AWS error code is worth another attempt.
pub fn retryable(status: u16, code: &str) -> bool {
    RETRYABLE_STATUSES.contains(&status) || RETRYABLE_CODES.contains(&code)
}

/// Whether `code` says the service throttled the caller (the clear cause after the last try).
pub fn throttled(status: u16, code: &str) -> bool {
    status == 429
        || (RETRYABLE_CODES.contains(&code) && !code.starts_with("RequestTimeout"))
        || code.contains("Throttl")
}

/// The cause once every attempt was answered with a retryable error: the service is there
/// but gives no usable answer now (exit 3, like an unreachable one), never a verdict on the
/// configuration.
pub fn exhausted(service: &str, status: u16, code: &str, message: &str, attempts: u32) -> String {
    let why = if throttled(status, code) {
        "throttled"
    } else {
        "failed on the service's side"
    };
    let answer = match (code.is_empty(), message.is_empty()) {
        (true, true) => format!("HTTP {status}"),
        (true, false) => format!("HTTP {status}: {message}"),
        (false, _) => format!("HTTP {status} {code}: {message}"),
    };
    format!(
        "{service} {why} each of {attempts} attempts ({answer}), retried with backoff as the SDKs do; retry later"
    )
}

/// The error after the last attempt: a transient rejection (throttle, 5xx) becomes the cause
/// that no usable answer came ([`exhausted`]); any other error stays the answer.
pub fn last_answer(service: &str, status: u16, error: CloudError, attempts: u32) -> CloudError {
    match error {
        CloudError::Rejected { code, message } if retryable(status, &code) => {
            CloudError::Unreachable(exhausted(service, status, &code, &message, attempts))
        }
        other => other,
    }
}

/// Makes `attempt` until its answer is not worth another (`retryable` gives None) or
/// [`MAX_ATTEMPTS`] were made, waiting [`backoff`] between; returns the last answer and the
/// attempts made. `retryable` gives the answer's HTTP status when it is transient (429, 5xx,
/// a throttling code); a network failure is never retried here: it is a finding about the
/// pod's path, not a passing fault.
pub async fn retried<T, Attempt, Answer>(
    service: &str,
    mut attempt: Attempt,
    retryable: impl Fn(&T) -> Option<u16>,
) -> (T, u32)
where
    Attempt: FnMut() -> Answer,
    Answer: Future<Output = T>,
{
    let mut made = 1;
    loop {
        let answer = attempt().await;
        let Some(status) = retryable(&answer) else {
            return (answer, made);
        };
        if made >= MAX_ATTEMPTS {
            return (answer, made);
        }
        let wait = backoff(made);
        tracing::debug!(
            service,
            attempt = made,
            status,
            ?wait,
            "a transient answer to the pod's call; retrying as the SDK would"
        );
        tokio::time::sleep(wait).await;
        made += 1;
    }
}

/// The wait before attempt `attempt + 1` (`attempt` ≥ 1 attempts made): full jitter over
/// `2^(attempt-1)` seconds, capped.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling = Duration::from_secs(1u64 << attempt.saturating_sub(1).min(5)).min(MAX_BACKOFF);
    // RandomState is seeded randomly per instance: enough for a jitter, no new crate.
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    let fraction = (random % 1_000_000) as f64 / 1_000_000.0;
    ceiling.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_and_transient_answers_are_retried_and_refusals_are_not() {
        assert!(retryable(400, "Throttling"));
        assert!(retryable(400, "ThrottlingException"));
        assert!(retryable(429, ""));
        assert!(retryable(503, "ServiceUnavailable"));
        assert!(retryable(500, "HTTP500"));
        assert!(!retryable(403, "AccessDenied"));
        assert!(!retryable(400, "InvalidIdentityToken"));
        assert!(throttled(400, "Throttling"));
        assert!(throttled(429, "HTTP429"));
        assert!(!throttled(503, "HTTP503"));
    }

    #[tokio::test]
    async fn retried_stops_at_the_first_lasting_answer_or_after_three_attempts() {
        use std::sync::atomic::{AtomicU32, Ordering};
        // 503, 503, then 200: the third answer is kept.
        let calls = AtomicU32::new(0);
        let (answer, made) = retried(
            "test",
            || async { [503, 503, 200][calls.fetch_add(1, Ordering::SeqCst) as usize] },
            |status: &u16| retryable(*status, "").then_some(*status),
        )
        .await;
        assert_eq!((answer, made, calls.load(Ordering::SeqCst)), (200, 3, 3));
        // Always 429: three attempts, the last 429 kept.
        let calls = AtomicU32::new(0);
        let (answer, made) = retried(
            "test",
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                429u16
            },
            |status: &u16| retryable(*status, "").then_some(*status),
        )
        .await;
        assert_eq!((answer, made, calls.load(Ordering::SeqCst)), (429, 3, 3));
        // A refusal: one attempt.
        let calls = AtomicU32::new(0);
        let (answer, made) = retried(
            "test",
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                403u16
            },
            |status: &u16| retryable(*status, "").then_some(*status),
        )
        .await;
        assert_eq!((answer, made, calls.load(Ordering::SeqCst)), (403, 1, 1));
    }

    #[test]
    fn the_wait_is_jittered_under_a_doubling_ceiling() {
        for attempt in 1..=8 {
            let ceiling = Duration::from_secs(1 << (attempt - 1).min(5)).min(MAX_BACKOFF);
            let waits: Vec<Duration> = (0..50).map(|_| backoff(attempt)).collect();
            assert!(waits.iter().all(|w| *w < ceiling), "{attempt}: {waits:?}");
            assert!(
                waits.iter().any(|w| *w != waits[0]),
                "{attempt}: no jitter in {waits:?}"
            );
        }
    }
}
