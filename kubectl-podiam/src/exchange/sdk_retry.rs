//! The AWS SDKs' "standard" retry mode, for the exchange the pod makes from inside itself
//! (its curl, wget or python3 is no SDK, so the plugin retries for it). Where an SDK makes the
//! call (aws-sdk-* from this machine, azure_identity), that SDK's own retry is used instead.
//!
//! As botocore's `standard` mode and aws-sdk-rust's `RetryConfig::standard()`: at most three
//! attempts; a throttling code, a transient code or a 500/502/503/504 is retried after
//! `random(0..1) × 2^(attempt-1)` seconds, at most 20 s. 429 is retried as a throttle. The AWS
//! SDKs ignore `Retry-After` (the azure SDK honours it, in `azure_entra.rs`).

use std::hash::BuildHasher;
use std::time::Duration;

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
    format!(
        "{service} {why} each of {attempts} attempts (HTTP {status} {code}: {message}), retried with backoff as the SDKs do; retry later"
    )
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
