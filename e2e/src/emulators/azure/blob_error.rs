//! Azure Storage error responses: the XML body, `x-ms-error-code` and status the Blob
//! service answers, with `RequestId`/`Time` lines in the message as Azure writes them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::super::ids::uuid_like;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: &'static str,
    /// `AuthenticationErrorDetail` for 401s.
    pub detail: Option<&'static str>,
    /// `WWW-Authenticate` challenge for 401s: where to get a token.
    pub challenge: Option<String>,
}

impl BlobError {
    fn new(status: StatusCode, code: &'static str, message: &'static str) -> Self {
        Self {
            status,
            code,
            message,
            detail: None,
            challenge: None,
        }
    }

    pub fn no_authentication_information(challenge: String) -> Self {
        Self {
            challenge: Some(challenge),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "NoAuthenticationInformation",
                "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
            )
        }
    }

    pub fn invalid_authentication_info(detail: &'static str, challenge: String) -> Self {
        Self {
            detail: Some(detail),
            challenge: Some(challenge),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationInfo",
                "Server failed to authenticate the request. Please refer to the information in the www-authenticate header.",
            )
        }
    }

    pub fn permission_mismatch() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "AuthorizationPermissionMismatch",
            "This request is not authorized to perform this operation using this permission.",
        )
    }

    pub fn container_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ContainerNotFound",
            "The specified container does not exist.",
        )
    }

    pub fn blob_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "BlobNotFound",
            "The specified blob does not exist.",
        )
    }

    /// Path-style requests for an account the emulator does not hold. (Real Azure fails in
    /// DNS for `ACCOUNT.blob.core.windows.net`; there is no HTTP answer to copy.)
    pub fn account_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            "The specified resource does not exist.",
        )
    }

    pub fn unsupported_operation() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "UnsupportedHttpVerb",
            "The resource doesn't support specified Http Verb.",
        )
    }
}

impl IntoResponse for BlobError {
    fn into_response(self) -> Response {
        let request_id = uuid_like();
        let time = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6f0Z");
        let detail = self
            .detail
            .map(|d| {
                format!(
                    "<AuthenticationErrorDetail>{}</AuthenticationErrorDetail>",
                    quick_xml::escape::escape(d)
                )
            })
            .unwrap_or_default();
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{}</Code><Message>{}\nRequestId:{request_id}\nTime:{time}</Message>{detail}</Error>",
            self.code, self.message
        );
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
        headers.insert("x-ms-error-code", HeaderValue::from_static(self.code));
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            headers.insert("x-ms-request-id", value);
        }
        if let Some(challenge) = self.challenge
            && let Ok(value) = HeaderValue::from_str(&challenge)
        {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}
