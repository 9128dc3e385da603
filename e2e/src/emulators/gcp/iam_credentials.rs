//! IAM Credentials `POST /v1/projects/-/serviceAccounts/EMAIL:generateAccessToken`: a caller
//! (bearer token: federated or another service account) impersonates a service account whose
//! IAM policy grants it `roles/iam.workloadIdentityUser` or
//! `roles/iam.serviceAccountTokenCreator`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::google_error::RpcError;
use super::iam_roles::may_mint_tokens;
use super::principal::Principal;
use super::state::GcpState;
use super::token_store::{bearer_token, rfc3339_seconds};

const GET_ACCESS_TOKEN: &str = "iam.serviceAccounts.getAccessToken";
/// Without an org policy exception, Google caps lifetimes at one hour.
const MAX_LIFETIME_SECONDS: u64 = 3600;

pub fn router(state: Arc<GcpState>) -> Router {
    super::super::whole_body::read_first(
        Router::new()
            .route(
                "/v1/projects/{project}/serviceAccounts/{name_and_method}",
                post(service_account_method),
            )
            .with_state(state),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateAccessTokenRequest {
    // google-auth sends `"delegates": null`.
    #[serde(default)]
    delegates: Option<Vec<String>>,
    #[serde(default)]
    scope: Option<Vec<String>>,
    #[serde(default)]
    lifetime: Option<String>,
}

async fn service_account_method(
    State(state): State<Arc<GcpState>>,
    Path((_project, name_and_method)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (email, method) = name_and_method
        .rsplit_once(':')
        .unwrap_or((name_and_method.as_str(), ""));
    let path = format!("/v1/projects/-/serviceAccounts/{email}:{method}");
    let outcome = if method == "generateAccessToken" {
        generate_access_token(&state, email, &headers, &body)
    } else {
        Err(RpcError::not_found(format!(
            "Method {method} is not emulated."
        )))
    };
    let (caller, logged) = match &outcome {
        Ok((caller, _)) => (caller.display(), "200".to_owned()),
        Err(error) => (String::new(), error.status.to_owned()),
    };
    state.record(
        "POST",
        &path,
        format!("iamcredentials:{method} {caller}")
            .trim_end()
            .to_owned(),
        logged,
    );
    match outcome {
        Ok((_, response)) => response,
        Err(error) => error.into_response(),
    }
}

/// Authenticates, authorizes and mints; returns the caller and the answer.
fn generate_access_token(
    state: &GcpState,
    email: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Principal, Response), RpcError> {
    let caller = bearer_token(headers)
        .and_then(|token| state.tokens.lookup(token))
        .ok_or_else(RpcError::unauthenticated)?
        .principal;
    let request = parse_request(body)?;
    if request.delegates.as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(RpcError::invalid_argument(
            "Delegation chains are not emulated.",
        ));
    }
    let account = state
        .project
        .service_account(email)
        .ok_or_else(|| RpcError::permission_denied(GET_ACCESS_TOKEN))?;
    if !may_mint_tokens(&account.iam_policy.bindings, &caller) {
        return Err(RpcError::permission_denied(GET_ACCESS_TOKEN));
    }
    let lifetime = lifetime_of(&request)?;
    let token = state
        .tokens
        .issue(
            Principal::ServiceAccount(account.email),
            lifetime,
            &request.scope.as_deref().unwrap_or_default().join(" "),
        )
        .map_err(|err| RpcError::invalid_argument(format!("{err:#}")))?;
    let response = Json(json!({
        "accessToken": token,
        "expireTime": rfc3339_seconds(SystemTime::now() + lifetime),
    }))
    .into_response();
    Ok((caller, response))
}

fn parse_request(body: &Bytes) -> Result<GenerateAccessTokenRequest, RpcError> {
    let request: GenerateAccessTokenRequest = serde_json::from_slice(body).map_err(|err| {
        RpcError::invalid_argument(format!("Invalid JSON payload received. {err}"))
    })?;
    if request.scope.as_ref().is_none_or(Vec::is_empty) {
        return Err(RpcError::invalid_argument("Scope required."));
    }
    Ok(request)
}

fn lifetime_of(request: &GenerateAccessTokenRequest) -> Result<Duration, RpcError> {
    let seconds = match request.lifetime.as_deref() {
        None => MAX_LIFETIME_SECONDS,
        Some(text) => text
            .strip_suffix('s')
            .and_then(|n| n.parse::<f64>().ok())
            .filter(|n| *n > 0.0)
            .map(|n| n as u64)
            .ok_or_else(|| {
                RpcError::invalid_argument(format!("Invalid value at 'lifetime' ({text})"))
            })?,
    };
    if seconds > MAX_LIFETIME_SECONDS {
        return Err(RpcError::invalid_argument(
            "The lifetime of the requested access token exceeds the maximum of 3600s.",
        ));
    }
    Ok(Duration::from_secs(seconds))
}
