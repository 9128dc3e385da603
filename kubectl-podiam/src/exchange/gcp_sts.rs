//! The external_account exchange, as a Google SDK in the pod would do it: STS token exchange
//! at the config's `token_url`, then `generateAccessToken` at its impersonation URL.
//!
//! Why reqwest and not google-cloud-auth: its `ProgrammaticBuilder` (the only builder that
//! takes a subject token from code rather than a file) can impersonate only through
//! `with_target_principal`, which hard-codes `https://iamcredentials.googleapis.com`, so a
//! config's own `service_account_impersonation_url` (an emulator's, a private endpoint's) is
//! ignored; its file builder would need the token written to a file, which podiam never does.
//! It also folds both steps into one error, and the checks must say which step refused.
//! The request shapes below are those of FACTS.md (and google-auth-library-python).

use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::gcp_metadata::AccessToken;
use super::{CloudError, sdk_retry};
use crate::cloud::gcp as a;

/// One HTTP client for the GCP calls; rustls with the process's crypto provider.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .expect("reqwest client with rustls")
}

/// An OAuth error body: `{"error","error_description"}` (STS) or `{"error":{"code","message",
/// "status"}}` (Google APIs).
#[derive(Deserialize)]
struct OAuthError {
    error: Option<serde_json::Value>,
    error_description: Option<String>,
}

/// `(code, message)` from an error answer, e.g. `("invalid_grant", "…")` or
/// `("PERMISSION_DENIED", "…")`; falls back to the HTTP status.
pub fn error_of(status: u16, body: &str) -> (String, String) {
    let fallback = || (status.to_string(), body.chars().take(300).collect());
    let Ok(parsed) = serde_json::from_str::<OAuthError>(body) else {
        return fallback();
    };
    match parsed.error {
        Some(serde_json::Value::String(code)) => {
            (code, parsed.error_description.unwrap_or_default())
        }
        Some(serde_json::Value::Object(obj)) => {
            let code = obj
                .get("status")
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .unwrap_or_else(|| status.to_string());
            let message = obj
                .get("message")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string();
            (code, message)
        }
        _ => fallback(),
    }
}

/// A failed call: the HTTP status (0 when no answer came) and the error.
type Failed = (u16, CloudError);

fn unreachable(e: reqwest::Error) -> Failed {
    // Without the URL: a query string could carry a token in other APIs.
    (0, CloudError::Unreachable(e.without_url().to_string()))
}

async fn read_error(response: reqwest::Response) -> Failed {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let (code, message) = error_of(status, &body);
    (status, CloudError::Rejected { code, message })
}

/// Google's own clients make these requests once (google-auth-library-python's `sts.py` and
/// `impersonated_credentials.py`), but a 429 or 5xx is the service being busy, not a verdict
/// on the binding: `request` (built anew for each attempt) is retried as `sdk_retry` says,
/// then the cause that no answer came (exit 3). The 200 answer's JSON as `T`; `missing` names
/// what a 200 without it lacks.
async fn post<T: DeserializeOwned>(
    service: &str,
    missing: &str,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> Result<T, CloudError> {
    let transient = |answer: &Result<T, Failed>| match answer {
        Err((status, CloudError::Rejected { code, .. })) if sdk_retry::retryable(*status, code) => {
            Some(*status)
        }
        _ => None,
    };
    let (answer, attempts) =
        sdk_retry::retried(service, || send_once(request(), missing), transient).await;
    answer.map_err(|(status, e)| sdk_retry::last_answer(service, status, e, attempts))
}

async fn send_once<T: DeserializeOwned>(
    request: reqwest::RequestBuilder,
    missing: &str,
) -> Result<T, Failed> {
    let response = request.send().await.map_err(unreachable)?;
    if !response.status().is_success() {
        return Err(read_error(response).await);
    }
    response.json().await.map_err(|e| {
        (
            200,
            CloudError::Rejected {
                code: "invalid_response".into(),
                message: format!("{missing} ({})", e.without_url()),
            },
        )
    })
}

#[derive(Deserialize)]
struct StsAnswer {
    access_token: String,
    expires_in: Option<i64>,
}

/// STS token exchange: the subject token (a KSA token) for a federated access token.
pub async fn exchange(
    http: &reqwest::Client,
    token_url: &str,
    audience: &str,
    subject_token_type: &str,
    subject_token: &str,
    scope: &str,
) -> Result<AccessToken, CloudError> {
    let answer: StsAnswer = post(
        "Google STS",
        "STS answered 200 without an access_token",
        || {
            http.post(token_url).form(&[
                ("grant_type", a::GRANT_TYPE_TOKEN_EXCHANGE),
                ("requested_token_type", a::TOKEN_TYPE_ACCESS_TOKEN),
                ("subject_token_type", subject_token_type),
                ("subject_token", subject_token),
                ("audience", audience),
                ("scope", scope),
            ])
        },
    )
    .await?;
    Ok(AccessToken {
        token: answer.access_token,
        expires_in: answer.expires_in,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateAnswer {
    access_token: String,
}

/// IAM Credentials `generateAccessToken` for the GSA, authorised by the federated token.
pub async fn generate_access_token(
    http: &reqwest::Client,
    impersonation_url: &str,
    federated: &AccessToken,
    scope: &str,
) -> Result<AccessToken, CloudError> {
    let answer: GenerateAnswer = post(
        "IAM Credentials",
        "generateAccessToken answered 200 without an accessToken",
        || {
            http.post(impersonation_url)
                .bearer_auth(&federated.token)
                .json(&serde_json::json!({"delegates": [], "scope": [scope], "lifetime": "3600s"}))
        },
    )
    .await?;
    Ok(AccessToken {
        token: answer.access_token,
        expires_in: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sts_and_iam_error_bodies() {
        assert_eq!(
            error_of(
                400,
                r#"{"error":"invalid_grant","error_description":"The audience in ID Token does not match"}"#
            ),
            (
                "invalid_grant".into(),
                "The audience in ID Token does not match".into()
            )
        );
        assert_eq!(
            error_of(
                403,
                r#"{"error":{"code":403,"message":"Permission 'iam.serviceAccounts.getAccessToken' denied","status":"PERMISSION_DENIED"}}"#
            ),
            (
                "PERMISSION_DENIED".into(),
                "Permission 'iam.serviceAccounts.getAccessToken' denied".into()
            )
        );
        assert_eq!(error_of(502, "<html>bad gateway</html>").0, "502");
    }

    const UNAVAILABLE: &str = "HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n\r\n{\"error\":{\"code\":503,\"message\":\"The service is currently unavailable.\",\"status\":\"UNAVAILABLE\"}}";
    const THROTTLED: &str = "HTTP/1.0 429 Too Many Requests\r\nContent-Type: application/json\r\n\r\n{\"error\":{\"code\":429,\"message\":\"Quota exceeded\",\"status\":\"RESOURCE_EXHAUSTED\"}}";
    const DENIED: &str = "HTTP/1.0 403 Forbidden\r\nContent-Type: application/json\r\n\r\n{\"error\":{\"code\":403,\"message\":\"Permission 'iam.serviceAccounts.getAccessToken' denied\",\"status\":\"PERMISSION_DENIED\"}}";
    const STS_ANSWER: &str = "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"access_token\":\"ya29.federated\",\"expires_in\":3600}";
    const IAM_ANSWER: &str = "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"accessToken\":\"ya29.gsa\",\"expireTime\":\"2030-01-01T00:00:00Z\"}";

    async fn sts_against(responses: Vec<&'static str>) -> (Result<AccessToken, CloudError>, usize) {
        let (port, seen) = crate::pod_session::tests::scripted_server(responses).await;
        let answer = exchange(
            &http_client(Duration::from_secs(5)),
            &format!("http://127.0.0.1:{port}/v1/token"),
            "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k",
            a::TOKEN_TYPE_JWT,
            "subject",
            a::SCOPE_CLOUD_PLATFORM,
        )
        .await;
        let calls = seen.lock().unwrap().len();
        (answer, calls)
    }

    async fn iam_against(responses: Vec<&'static str>) -> (Result<AccessToken, CloudError>, usize) {
        let (port, seen) = crate::pod_session::tests::scripted_server(responses).await;
        let federated = AccessToken {
            token: "ya29.federated".into(),
            expires_in: None,
        };
        let answer = generate_access_token(
            &http_client(Duration::from_secs(5)),
            &format!("http://127.0.0.1:{port}/v1/projects/-/serviceAccounts/gsa@p.iam.gserviceaccount.com:generateAccessToken"),
            &federated,
            a::SCOPE_CLOUD_PLATFORM,
        )
        .await;
        let calls = seen.lock().unwrap().len();
        (answer, calls)
    }

    #[tokio::test]
    async fn from_this_machine_transient_answers_are_retried_then_the_answer_counts() {
        let (answer, calls) = sts_against(vec![THROTTLED, UNAVAILABLE, STS_ANSWER]).await;
        assert_eq!(answer.expect("the third answer").token, "ya29.federated");
        assert_eq!(calls, 3);
        let (answer, calls) = iam_against(vec![UNAVAILABLE, IAM_ANSWER]).await;
        assert_eq!(answer.expect("the second answer").token, "ya29.gsa");
        assert_eq!(calls, 2);
    }

    #[tokio::test]
    async fn from_this_machine_a_lasting_throttle_is_a_cause_and_a_refusal_is_not_retried() {
        let (answer, calls) = sts_against(vec![THROTTLED]).await;
        match answer {
            Err(CloudError::Unreachable(cause)) => assert!(
                cause.contains("Google STS throttled each of 3 attempts (HTTP 429 RESOURCE_EXHAUSTED: Quota exceeded)"),
                "{cause}"
            ),
            other => panic!("a lasting throttle must be no answer, not {other:?}"),
        }
        assert_eq!(calls, 3);
        let (answer, calls) = iam_against(vec![DENIED, IAM_ANSWER]).await;
        assert!(
            matches!(&answer, Err(CloudError::Rejected { code, .. }) if code == "PERMISSION_DENIED"),
            "{answer:?}"
        );
        assert_eq!(calls, 1);
    }
}
