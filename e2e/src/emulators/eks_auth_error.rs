//! EKS Auth and EKS control-plane errors in the restJson1 shape the SDKs parse:
//! `x-amzn-errortype` and a JSON body with `__type`, `message` and, for the control plane's
//! exceptions, the `clusterName` they concern.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::ids::uuid_like;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EksAuthError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The exception's `clusterName` member (EKS control-plane exceptions carry it).
    pub cluster_name: Option<String>,
}

impl EksAuthError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            cluster_name: None,
        }
    }

    pub fn for_cluster(mut self, cluster_name: &str) -> Self {
        self.cluster_name = Some(cluster_name.to_owned());
        self
    }

    /// 409: e.g. a second association for the same ServiceAccount.
    pub fn resource_in_use(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "ResourceInUseException", message)
    }

    pub fn invalid_token(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidTokenException", message)
    }

    pub fn expired_token(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ExpiredTokenException", message)
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterException",
            message,
        )
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequestException", message)
    }

    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "AccessDeniedException", message)
    }

    /// The EKS control plane's refusal of an unauthorized call: a 403 (EKS API reference).
    pub fn control_plane_access_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDeniedException", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
    }

    /// A request that is not signed with a known key never reaches the service.
    pub fn unrecognized_client() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    }

    pub fn missing_authentication() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ServerException",
            message,
        )
    }
}

impl IntoResponse for EksAuthError {
    fn into_response(self) -> Response {
        let mut body = json!({"__type": self.code, "message": self.message});
        if let Some(cluster) = &self.cluster_name {
            body["clusterName"] = json!(cluster);
        }
        let body = body.to_string();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert("x-amzn-errortype", HeaderValue::from_static(self.code));
        if let Ok(id) = HeaderValue::from_str(&uuid_like()) {
            headers.insert("x-amzn-requestid", id);
        }
        response
    }
}
