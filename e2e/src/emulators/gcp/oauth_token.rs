//! Google's OAuth 2.0 token endpoint (`POST https://oauth2.googleapis.com/token`) for the
//! refresh-token grant an `authorized_user` file (gcloud's application default credentials)
//! makes. google-auth posts a form, google-cloud-auth (Rust) posts JSON: both are accepted, as
//! Google does. Errors use the OAuth shape: `invalid_grant` for an unknown refresh token,
//! `invalid_client` (401) for an unknown client or a wrong secret. `/tokeninfo` on the same host
//! is in `tokeninfo.rs`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use super::google_error::OAuthError;
use super::principal::Principal;
use super::state::GcpState;

/// Google's user access tokens live one hour (`expires_in` 3599).
const USER_TOKEN_LIFETIME: Duration = Duration::from_secs(3599);
const DEFAULT_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

pub fn router(state: Arc<GcpState>) -> Router {
    Router::new()
        .route("/token", post(token))
        .route(
            "/tokeninfo",
            axum::routing::get(super::tokeninfo::tokeninfo).post(super::tokeninfo::tokeninfo),
        )
        .with_state(state)
}

async fn token(State(state): State<Arc<GcpState>>, headers: HeaderMap, body: Bytes) -> Response {
    let outcome = refresh(&state, &headers, &body);
    let (who, logged) = match &outcome {
        Ok((principal, _)) => (principal.display(), "200".to_owned()),
        Err(error) => (String::new(), error.error.to_string()),
    };
    state.record(
        "POST",
        "/token",
        format!("oauth2:token {who}").trim_end().to_owned(),
        logged,
    );
    match outcome {
        Ok((_, answer)) => answer.into_response(),
        Err(error) if error.error == "invalid_client" => {
            let mut response = error.into_response();
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            response
        }
        Err(error) => error.into_response(),
    }
}

/// The request's parameters, from a form or a JSON object.
fn parameters(headers: &HeaderMap, body: &Bytes) -> Result<Vec<(String, String)>, OAuthError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return Ok(url::form_urlencoded::parse(body).into_owned().collect());
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| OAuthError::invalid_request("Invalid JSON payload received."))?;
    let object = value
        .as_object()
        .ok_or_else(|| OAuthError::invalid_request("Invalid JSON payload received."))?;
    Ok(object
        .iter()
        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
        .collect())
}

fn refresh(
    state: &GcpState,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Principal, Json<serde_json::Value>), OAuthError> {
    let form = parameters(headers, body)?;
    let get = |key: &str| {
        form.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    match get("grant_type") {
        Some("refresh_token") => {}
        Some(other) => {
            return Err(OAuthError {
                error: "unsupported_grant_type",
                description: format!("Invalid grant_type: {other}"),
            });
        }
        None => {
            return Err(OAuthError::invalid_request(
                "Missing required parameter: grant_type",
            ));
        }
    }
    let client_id = get("client_id").ok_or_else(|| OAuthError {
        error: "invalid_request",
        description: "Could not determine client ID from request.".to_owned(),
    })?;
    let refresh_token = get("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("Missing required parameter: refresh_token"))?;
    let grant = state.users.by_refresh_token(refresh_token);
    let client_known = state.users.knows_client(client_id);
    let invalid_client = || OAuthError {
        error: "invalid_client",
        description: "The OAuth client was not found.".to_owned(),
    };
    let Some(grant) = grant else {
        return Err(if client_known {
            OAuthError::invalid_grant("Bad Request")
        } else {
            invalid_client()
        });
    };
    if grant.client_id != client_id {
        return Err(if client_known {
            OAuthError::invalid_grant("Bad Request")
        } else {
            invalid_client()
        });
    }
    if get("client_secret") != Some(grant.client_secret.as_str()) {
        return Err(OAuthError {
            error: "invalid_client",
            description: "Unauthorized".to_owned(),
        });
    }
    let principal = Principal::User(grant.email);
    let scope = get("scope").unwrap_or(DEFAULT_SCOPE);
    let access_token = state
        .tokens
        .issue(principal.clone(), USER_TOKEN_LIFETIME, scope)
        .map_err(|err| OAuthError::invalid_request(format!("{err:#}")))?;
    Ok((
        principal,
        Json(json!({
            "access_token": access_token,
            "expires_in": USER_TOKEN_LIFETIME.as_secs(),
            "scope": scope,
            "token_type": "Bearer",
        })),
    ))
}
