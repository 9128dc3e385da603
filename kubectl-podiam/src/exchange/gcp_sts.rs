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

use super::CloudError;
use super::gcp_metadata::AccessToken;
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

fn unreachable(e: reqwest::Error) -> CloudError {
    // Without the URL: a query string could carry a token in other APIs.
    CloudError::Unreachable(e.without_url().to_string())
}

async fn read_error(response: reqwest::Response) -> CloudError {
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    let (code, message) = error_of(status, &body);
    CloudError::Rejected { code, message }
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
    let response = http
        .post(token_url)
        .form(&[
            ("grant_type", a::GRANT_TYPE_TOKEN_EXCHANGE),
            ("requested_token_type", a::TOKEN_TYPE_ACCESS_TOKEN),
            ("subject_token_type", subject_token_type),
            ("subject_token", subject_token),
            ("audience", audience),
            ("scope", scope),
        ])
        .send()
        .await
        .map_err(unreachable)?;
    if !response.status().is_success() {
        return Err(read_error(response).await);
    }
    let answer: StsAnswer = response.json().await.map_err(|e| CloudError::Rejected {
        code: "invalid_response".into(),
        message: format!(
            "STS answered 200 without an access_token ({})",
            e.without_url()
        ),
    })?;
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
    let response = http
        .post(impersonation_url)
        .bearer_auth(&federated.token)
        .json(&serde_json::json!({"delegates": [], "scope": [scope], "lifetime": "3600s"}))
        .send()
        .await
        .map_err(unreachable)?;
    if !response.status().is_success() {
        return Err(read_error(response).await);
    }
    let answer: GenerateAnswer = response.json().await.map_err(|e| CloudError::Rejected {
        code: "invalid_response".into(),
        message: format!(
            "generateAccessToken answered 200 without an accessToken ({})",
            e.without_url()
        ),
    })?;
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
}
