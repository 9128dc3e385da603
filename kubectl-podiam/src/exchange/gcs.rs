//! `--can/--cannot gcs:…`: the real GCS JSON API call with the pod's access token.
//!
//! Why reqwest and not google-cloud-storage: that crate lists objects through the gRPC
//! StorageControl API (google.storage.v2), which would add a gRPC stack to the plugin and does
//! not reach JSON-API endpoints such as `STORAGE_EMULATOR_HOST`. Two GETs need no SDK.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::CloudError;
use super::gcp_metadata::AccessToken;
use super::gcp_sts::error_of;

/// A GCS action the plugin knows how to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GcsAction {
    List { bucket: String },
    Get { bucket: String, object: String },
}

impl GcsAction {
    /// `gcs:list` with `BUCKET`, `gcs:get` with `BUCKET/OBJECT`.
    pub fn parse(action: &str, resource: &str) -> Result<Self, String> {
        match action {
            "gcs:list" if !resource.is_empty() && !resource.contains('/') => Ok(GcsAction::List {
                bucket: resource.to_string(),
            }),
            "gcs:list" => Err(format!("gcs:list needs BUCKET, got {resource:?}")),
            "gcs:get" => resource
                .split_once('/')
                .filter(|(b, o)| !b.is_empty() && !o.is_empty())
                .map(|(b, o)| GcsAction::Get {
                    bucket: b.to_string(),
                    object: o.to_string(),
                })
                .ok_or_else(|| format!("gcs:get needs BUCKET/OBJECT, got {resource:?}")),
            other => Err(format!(
                "unsupported action {other:?} (supported: gcs:list, gcs:get)"
            )),
        }
    }

    /// The JSON API URL under `base` (no trailing slash).
    pub fn url(&self, base: &str) -> String {
        // Path segments: everything but unreserved characters is escaped, `/` included.
        const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~');
        let base = base.trim_end_matches('/');
        match self {
            GcsAction::List { bucket } => format!(
                "{base}/storage/v1/b/{}/o?maxResults=1",
                utf8_percent_encode(bucket, SEGMENT)
            ),
            GcsAction::Get { bucket, object } => format!(
                "{base}/storage/v1/b/{}/o/{}?alt=media",
                utf8_percent_encode(bucket, SEGMENT),
                utf8_percent_encode(object, SEGMENT)
            ),
        }
    }
}

/// Where the GCS JSON API is: `--gcs-endpoint-url`, else `STORAGE_EMULATOR_HOST`, else Google.
pub fn endpoint(flag: Option<&str>) -> String {
    let from_env = std::env::var(crate::cloud::gcp::ENV_STORAGE_EMULATOR_HOST)
        .ok()
        .filter(|v| !v.trim().is_empty());
    let raw = flag
        .map(str::to_string)
        .or(from_env)
        .unwrap_or_else(|| crate::cloud::gcp::GCS_DEFAULT_ENDPOINT.into());
    let raw = raw.trim().trim_end_matches('/').to_string();
    if raw.starts_with("http://") || raw.starts_with("https://") {
        raw
    } else {
        // The google-cloud convention allows a bare host:port.
        format!("http://{raw}")
    }
}

/// Ok when the call was allowed (2xx); the body is read and dropped.
pub async fn attempt(
    http: &reqwest::Client,
    base: &str,
    token: &AccessToken,
    action: &GcsAction,
) -> Result<(), CloudError> {
    let response = http
        .get(action.url(base))
        .bearer_auth(&token.token)
        .send()
        .await
        .map_err(|e| CloudError::Unreachable(e.without_url().to_string()))?;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let (code, message) = error_of(status, &body);
    Err(CloudError::Rejected {
        code: if code == status.to_string() {
            status.to_string()
        } else {
            format!("{status} {code}")
        },
        message,
    })
}

/// 401 and 403 mean "not allowed"; anything else is another failure.
pub fn is_denial(code: &str) -> bool {
    code.starts_with("401") || code.starts_with("403")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_actions_and_builds_urls() {
        let list = GcsAction::parse("gcs:list", "my-bucket").unwrap();
        assert_eq!(
            list.url("http://127.0.0.1:9/"),
            "http://127.0.0.1:9/storage/v1/b/my-bucket/o?maxResults=1"
        );
        let get = GcsAction::parse("gcs:get", "my-bucket/dir/hello.txt").unwrap();
        assert_eq!(
            get.url("https://storage.googleapis.com"),
            "https://storage.googleapis.com/storage/v1/b/my-bucket/o/dir%2Fhello.txt?alt=media"
        );
        assert!(GcsAction::parse("gcs:list", "a/b").is_err());
        assert!(GcsAction::parse("gcs:get", "bucket").is_err());
        assert!(GcsAction::parse("gcs:delete", "b").is_err());
    }

    #[test]
    fn denials() {
        assert!(is_denial("403 PERMISSION_DENIED"));
        assert!(is_denial("401"));
        assert!(!is_denial("404 NOT_FOUND"));
    }
}
