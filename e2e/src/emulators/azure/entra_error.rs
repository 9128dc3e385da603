//! Entra ID (AADSTS) error responses of the v2.0 token endpoint: the JSON body and HTTP
//! status a real tenant answers, so clients parse and show them as they would in Azure.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::super::ids::uuid_like as random_guid;

/// Where Entra documents workload identity federation in its FIC error messages.
const FEDERATION_DOCS: &str =
    "https://learn.microsoft.com/entra/workload-id/workload-identity-federation";

/// One refusal: the AADSTS number, OAuth `error`, status and the description after the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraError {
    pub code: u32,
    pub error: &'static str,
    pub status: StatusCode,
    pub message: String,
}

impl EntraError {
    fn new(code: u32, error: &'static str, status: StatusCode, message: String) -> Self {
        Self {
            code,
            error,
            status,
            message,
        }
    }

    pub fn tenant_not_found(tenant: &str) -> Self {
        Self::new(
            90002,
            "invalid_request",
            StatusCode::BAD_REQUEST,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        )
    }

    /// What Entra answers while it sheds load or fails: 429 (throttled) or a 5xx, with the
    /// transient-error code clients retry on.
    pub fn transient(status: StatusCode) -> Self {
        Self::new(
            90033,
            "temporarily_unavailable",
            status,
            "A transient error has occurred. Please try again.".to_owned(),
        )
    }

    pub fn missing_parameter(name: &str) -> Self {
        Self::new(
            900144,
            "invalid_request",
            StatusCode::BAD_REQUEST,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    pub fn unsupported_grant_type(grant_type: &str) -> Self {
        Self::new(
            70003,
            "unsupported_grant_type",
            StatusCode::BAD_REQUEST,
            format!("The app requested an unsupported grant type '{grant_type}'."),
        )
    }

    pub fn invalid_assertion_type() -> Self {
        Self::new(
            50027,
            "invalid_request",
            StatusCode::BAD_REQUEST,
            "Invalid JWT token. Client assertion type must be 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.".to_owned(),
        )
    }

    pub fn invalid_scope(scope: &str) -> Self {
        Self::new(
            1002012,
            "invalid_scope",
            StatusCode::BAD_REQUEST,
            format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        )
    }

    pub fn application_not_found(client_id: &str, tenant: &str) -> Self {
        Self::new(
            700016,
            "unauthorized_client",
            StatusCode::BAD_REQUEST,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."
            ),
        )
    }

    pub fn invalid_client_secret(client_id: &str) -> Self {
        Self::new(
            7000215,
            "invalid_client",
            StatusCode::UNAUTHORIZED,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        )
    }

    pub fn malformed_assertion() -> Self {
        Self::new(
            50027,
            "invalid_request",
            StatusCode::BAD_REQUEST,
            "JWT token is invalid or malformed.".to_owned(),
        )
    }

    pub fn no_record_for_issuer(issuer: &str) -> Self {
        Self::new(
            700211,
            "invalid_request",
            StatusCode::BAD_REQUEST,
            format!(
                "No matching federated identity record found for presented assertion issuer '{issuer}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. {FEDERATION_DOCS}"
            ),
        )
    }

    pub fn no_record_for_subject(subject: &str) -> Self {
        Self::new(
            700213,
            "invalid_request",
            StatusCode::BAD_REQUEST,
            format!(
                "No matching federated identity record found for presented assertion subject '{subject}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. {FEDERATION_DOCS}"
            ),
        )
    }

    pub fn no_matching_record(issuer: &str, subject: &str, audience: &str) -> Self {
        Self::new(
            70021,
            "invalid_request",
            StatusCode::BAD_REQUEST,
            format!(
                "No matching federated identity record found for presented assertion. Assertion Issuer: '{issuer}'. Assertion Subject: '{subject}'. Assertion Audience: '{audience}'. {FEDERATION_DOCS}"
            ),
        )
    }

    pub fn issuer_unreachable(issuer: &str) -> Self {
        Self::new(
            90061,
            "invalid_request",
            StatusCode::BAD_REQUEST,
            format!(
                "Request to External OIDC endpoint failed. The OpenID Connect discovery document or signing keys of issuer '{issuer}' could not be retrieved."
            ),
        )
    }

    /// The issuer's discovery document names another issuer: Entra gets no usable keys.
    pub fn discovery_issuer_mismatch(issuer: &str, discovered: &str) -> Self {
        Self::new(
            90061,
            "invalid_request",
            StatusCode::BAD_REQUEST,
            format!(
                "Request to External OIDC endpoint failed. The OpenID Connect discovery document of issuer '{issuer}' names the issuer '{discovered}'."
            ),
        )
    }

    pub fn signature_invalid() -> Self {
        Self::new(
            700027,
            "invalid_client",
            StatusCode::UNAUTHORIZED,
            "Client assertion failed signature validation.".to_owned(),
        )
    }

    /// Times as Entra prints them: `2026-01-02T03:04:05.0000000Z`.
    pub fn outside_valid_time_range(now: i64, not_before: Option<i64>, expires: i64) -> Self {
        let from = not_before.map_or_else(|| "(none)".to_owned(), entra_time);
        Self::new(
            700024,
            "invalid_client",
            StatusCode::UNAUTHORIZED,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {from}, expiry time of assertion {}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
                entra_time(now),
                entra_time(expires)
            ),
        )
    }

    /// `AADSTS70021: …`
    pub fn description(&self) -> String {
        format!("AADSTS{}: {}", self.code, self.message)
    }
}

fn entra_time(unix_seconds: i64) -> String {
    chrono::DateTime::from_timestamp(unix_seconds, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6f0Z").to_string())
        .unwrap_or_else(|| unix_seconds.to_string())
}

impl IntoResponse for EntraError {
    fn into_response(self) -> Response {
        let trace_id = random_guid();
        let correlation_id = random_guid();
        let now = chrono::Utc::now();
        let description = format!(
            "{}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {}",
            self.description(),
            now.format("%Y-%m-%d %H:%M:%SZ")
        );
        let body = json!({
            "error": self.error,
            "error_description": description,
            "error_codes": [self.code],
            "timestamp": now.format("%Y-%m-%d %H:%M:%SZ").to_string(),
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store, no-cache"),
        );
        if let Ok(value) = HeaderValue::from_str(&trace_id) {
            response.headers_mut().insert("x-ms-request-id", value);
        }
        response
    }
}
