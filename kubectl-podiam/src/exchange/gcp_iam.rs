//! The IAM API's service-account policy methods, for `bind --gcp-sa`:
//! `POST {base}/v1/projects/-/serviceAccounts/EMAIL:getIamPolicy` and `:setIamPolicy`.
//!
//! Why reqwest: Google's Rust SDK for IAM admin (google-cloud-iam-admin-v1) would bring a second
//! generated client stack for two calls whose shapes are stable; the policy is kept as JSON so
//! fields podiam does not model (conditions, audit configs, a version 3) survive the
//! read-modify-write untouched.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};

use super::CloudError;
use super::gcp_metadata::AccessToken;
use super::gcp_sts::error_of;

/// The IAM API when neither the flag nor gcloud's override is set.
pub const DEFAULT_ENDPOINT: &str = "https://iam.googleapis.com";
/// gcloud's endpoint override for the IAM API (property `api_endpoint_overrides/iam`).
pub const ENV_ENDPOINT_OVERRIDE: &str = "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM";

/// `--gcp-iam-endpoint-url`, else `CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM`, else Google; without
/// a trailing slash (gcloud's value has one).
pub fn endpoint(flag: Option<&str>) -> String {
    let from_env = std::env::var(ENV_ENDPOINT_OVERRIDE)
        .ok()
        .filter(|v| !v.trim().is_empty());
    let raw = flag
        .map(str::to_owned)
        .or(from_env)
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
    let raw = raw.trim().trim_end_matches('/');
    // gcloud overrides may carry the version path; the calls below add it themselves.
    raw.strip_suffix("/v1").unwrap_or(raw).to_owned()
}

fn method_url(base: &str, email: &str, method: &str) -> String {
    const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'@');
    format!(
        "{base}/v1/projects/-/serviceAccounts/{}:{method}",
        utf8_percent_encode(email, SEGMENT)
    )
}

async fn call(
    http: &reqwest::Client,
    url: String,
    token: &AccessToken,
    body: Value,
) -> Result<Value, CloudError> {
    let response = http
        .post(url)
        .bearer_auth(&token.token)
        .json(&body)
        .send()
        .await
        .map_err(|e| CloudError::Unreachable(e.without_url().to_string()))?;
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    if !(200..300).contains(&status) {
        let (code, message) = error_of(status, &text);
        return Err(CloudError::Rejected { code, message });
    }
    serde_json::from_str(&text).map_err(|e| CloudError::Rejected {
        code: "invalid_response".into(),
        message: format!("the IAM API answered {status} without a policy ({e})"),
    })
}

/// The account's policy (`{"version", "etag", "bindings"?}`), asking for version 3 so that
/// conditional bindings come back whole.
pub async fn get_iam_policy(
    http: &reqwest::Client,
    base: &str,
    token: &AccessToken,
    email: &str,
) -> Result<Value, CloudError> {
    call(
        http,
        method_url(base, email, "getIamPolicy"),
        token,
        json!({"options": {"requestedPolicyVersion": 3}}),
    )
    .await
}

/// Replaces the account's policy; `policy` carries the etag read with it, so a concurrent
/// change makes this fail with `ABORTED` instead of being overwritten.
pub async fn set_iam_policy(
    http: &reqwest::Client,
    base: &str,
    token: &AccessToken,
    email: &str,
    policy: &Value,
) -> Result<Value, CloudError> {
    call(
        http,
        method_url(base, email, "setIamPolicy"),
        token,
        json!({"policy": policy}),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_endpoints() {
        assert_eq!(
            method_url(
                "https://iam.googleapis.com",
                "a@p.iam.gserviceaccount.com",
                "getIamPolicy"
            ),
            "https://iam.googleapis.com/v1/projects/-/serviceAccounts/a@p.iam.gserviceaccount.com:getIamPolicy"
        );
        assert_eq!(endpoint(Some("http://127.0.0.1:9/")), "http://127.0.0.1:9");
        assert_eq!(
            endpoint(Some("https://iam.example/v1/")),
            "https://iam.example"
        );
    }
}
