//! Google's three error shapes: OAuth 2.0 (STS), google.rpc.Status (IAM Credentials) and the
//! JSON API's legacy shape (Cloud Storage).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// `{"error": "invalid_grant", "error_description": "…"}` (always HTTP 400 at STS).
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self {
            error: "invalid_request",
            description: description.into(),
        }
    }

    pub fn invalid_target(description: impl Into<String>) -> Self {
        Self {
            error: "invalid_target",
            description: description.into(),
        }
    }

    /// What STS answers when a provider's attribute condition rejects the credential.
    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self {
            error: "unauthorized_client",
            description: description.into(),
        }
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self {
            error: "invalid_grant",
            description: description.into(),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": self.error, "error_description": self.description })),
        )
            .into_response()
    }
}

/// `{"error": {"code", "message", "status", "details"}}` as Google's gRPC-transcoded APIs
/// answer (iamcredentials.googleapis.com).
#[derive(Debug, Clone)]
pub struct RpcError {
    pub code: StatusCode,
    pub status: &'static str,
    pub message: String,
    /// `google.rpc.ErrorInfo` reason, e.g. `IAM_PERMISSION_DENIED`.
    pub reason: Option<(&'static str, &'static str)>,
}

impl RpcError {
    /// 403 for a permission the caller lacks (or a service account that does not exist:
    /// Google does not tell them apart).
    pub fn permission_denied(permission: &'static str) -> Self {
        Self {
            code: StatusCode::FORBIDDEN,
            status: "PERMISSION_DENIED",
            message: format!("Permission '{permission}' denied on resource (or it may not exist)."),
            reason: Some(("IAM_PERMISSION_DENIED", permission)),
        }
    }

    pub fn unauthenticated() -> Self {
        Self {
            code: StatusCode::UNAUTHORIZED,
            status: "UNAUTHENTICATED",
            message: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.".to_owned(),
            reason: None,
        }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self {
            code: StatusCode::BAD_REQUEST,
            status: "INVALID_ARGUMENT",
            message: message.into(),
            reason: None,
        }
    }

    /// 409 for a read-modify-write whose etag is no longer current.
    pub fn aborted(message: impl Into<String>) -> Self {
        Self {
            code: StatusCode::CONFLICT,
            status: "ABORTED",
            message: message.into(),
            reason: None,
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            code: StatusCode::NOT_FOUND,
            status: "NOT_FOUND",
            message: message.into(),
            reason: None,
        }
    }
}

impl IntoResponse for RpcError {
    fn into_response(self) -> Response {
        let mut error = json!({
            "code": self.code.as_u16(),
            "message": self.message,
            "status": self.status,
        });
        if let Some((reason, permission)) = self.reason {
            error["details"] = json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "iam.googleapis.com",
                "metadata": { "permission": permission },
            }]);
        }
        (self.code, Json(json!({ "error": error }))).into_response()
    }
}

/// Cloud Storage JSON API errors: `{"error": {"code", "message", "errors": [{…reason}]}}`.
#[derive(Debug, Clone)]
pub struct StorageError {
    pub code: StatusCode,
    pub message: String,
    pub reason: &'static str,
}

impl StorageError {
    pub fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            reason,
        }
    }
}

impl IntoResponse for StorageError {
    fn into_response(self) -> Response {
        let mut detail = json!({
            "message": self.message,
            "domain": "global",
            "reason": self.reason,
        });
        if self.code == StatusCode::UNAUTHORIZED {
            detail["locationType"] = json!("header");
            detail["location"] = json!("Authorization");
        }
        (
            self.code,
            Json(json!({ "error": {
                "code": self.code.as_u16(),
                "message": self.message,
                "errors": [detail],
            }})),
        )
            .into_response()
    }
}
