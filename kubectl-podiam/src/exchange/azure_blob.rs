//! `--can/--cannot blob:list=ACCOUNT/CONTAINER`: List Blobs with the exchanged Entra token.
//! Sent through azure_core's own HTTP client rather than azure_storage_blob: the SDK's bearer
//! token policy refuses plain-HTTP endpoints, and the emulated data plane (like Azurite) is
//! plain HTTP on a path-style URL.

use azure_core::http::{Method, Request, Url, new_http_client};

use super::azure_config::AzureTarget;
use super::azure_entra::error_chain;

/// Blob data-plane version the request speaks (one that accepts OAuth bearer tokens).
pub const API_VERSION: &str = "2021-08-06";

/// A Blob action the plugin knows how to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobAction {
    List { account: String, container: String },
}

impl BlobAction {
    pub fn parse(action: &str, resource: &str) -> Result<Self, String> {
        match action {
            "blob:list" => resource
                .split_once('/')
                .filter(|(a, c)| !a.is_empty() && !c.is_empty() && !c.contains('/'))
                .map(|(a, c)| BlobAction::List {
                    account: a.to_string(),
                    container: c.to_string(),
                })
                .ok_or_else(|| format!("blob:list needs ACCOUNT/CONTAINER, got {resource:?}")),
            other => Err(format!(
                "unsupported action {other:?} (supported: blob:list)"
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// 401/403: the identity may not do this (e.g. `AuthorizationPermissionMismatch`).
    #[error("{code} (HTTP {status})")]
    Denied { status: u16, code: String },
    /// Any other error answer (`ContainerNotFound`, …).
    #[error("{code} (HTTP {status})")]
    Failed { status: u16, code: String },
    #[error("unreachable: {0}")]
    Unreachable(String),
}

pub async fn attempt(
    target: &AzureTarget,
    access_token: &str,
    action: &BlobAction,
) -> Result<(), BlobError> {
    let BlobAction::List { account, container } = action;
    let url = format!(
        "{}?restype=container&comp=list&maxresults=1",
        target.container_url(account, container)
    );
    let url = Url::parse(&url).map_err(|e| BlobError::Unreachable(format!("{url}: {e}")))?;
    let mut request = Request::new(url, Method::Get);
    request.insert_header("x-ms-version", API_VERSION);
    request.insert_header("authorization", format!("Bearer {access_token}"));
    let client = new_http_client(None);
    let sent = tokio::time::timeout(target.timeout(), client.execute_request(&request))
        .await
        .map_err(|_| {
            BlobError::Unreachable(format!("no answer within {}s", target.timeout().as_secs()))
        })?
        .map_err(|e| BlobError::Unreachable(error_chain(&e)))?;
    let status = u16::from(sent.status());
    let header_code = sent
        .headers()
        .get_optional_str(&"x-ms-error-code".into())
        .map(str::to_string);
    let body = sent.into_body().collect().await.unwrap_or_default();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let code = header_code
        .or_else(|| error_code_in(&body))
        .unwrap_or_else(|| format!("HTTP {status}"));
    if status == 401 || status == 403 {
        Err(BlobError::Denied { status, code })
    } else {
        Err(BlobError::Failed { status, code })
    }
}

/// `<Code>…</Code>` of a Storage XML error body.
fn error_code_in(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let start = text.find("<Code>")? + "<Code>".len();
    let end = start + text[start..].find("</Code>")?;
    Some(text[start..end].trim().to_string()).filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_blob_actions() {
        assert_eq!(
            BlobAction::parse("blob:list", "mystorageaccount/mycontainer"),
            Ok(BlobAction::List {
                account: "mystorageaccount".into(),
                container: "mycontainer".into()
            })
        );
        assert!(BlobAction::parse("blob:list", "mystorageaccount").is_err());
        assert!(BlobAction::parse("blob:list", "a/b/c").is_err());
        assert!(BlobAction::parse("blob:delete", "a/b").is_err());
    }

    #[test]
    fn reads_the_storage_error_code() {
        let body = br#"<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthorizationPermissionMismatch</Code><Message>This request is not authorized to perform this operation using this permission.</Message></Error>"#;
        assert_eq!(
            error_code_in(body).as_deref(),
            Some("AuthorizationPermissionMismatch")
        );
        assert_eq!(error_code_in(b"nope"), None);
    }
}
