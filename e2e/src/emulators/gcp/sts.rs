//! Google STS `POST /v1/token`: RFC 8693 token exchange of an OIDC token from a workload
//! identity pool provider's issuer for a federated access token.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use serde_json::json;

use super::google_error::OAuthError;
use super::principal::Principal;
use super::state::GcpState;
use super::subject_token_check::check_subject_token;

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const SUBJECT_TOKEN_TYPES: &[&str] = &[
    "urn:ietf:params:oauth:token-type:jwt",
    "urn:ietf:params:oauth:token-type:id_token",
];
/// The scope of a federated token when the request names none.
const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Federated tokens live one hour.
const FEDERATED_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

pub fn router(state: Arc<GcpState>) -> Router {
    super::super::whole_body::read_first(
        Router::new()
            .route("/v1/token", post(exchange))
            .with_state(state),
    )
}

async fn exchange(
    State(state): State<Arc<GcpState>>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let outcome = exchange_token(&state, &form).await;
    let (action_detail, logged) = match &outcome {
        Ok((principal, _)) => (principal.display(), "200".to_owned()),
        Err(error) => (String::new(), error.error.to_owned()),
    };
    state.record(
        "POST",
        "/v1/token",
        format!("sts:token {action_detail}").trim_end().to_owned(),
        logged,
    );
    match outcome {
        Ok((_, body)) => body.into_response(),
        Err(error) => error.into_response(),
    }
}

async fn exchange_token(
    state: &GcpState,
    form: &[(String, String)],
) -> Result<(Principal, Json<serde_json::Value>), OAuthError> {
    let get = |key: &str| {
        form.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    match get("grant_type") {
        Some(TOKEN_EXCHANGE) => {}
        Some(other) => {
            return Err(OAuthError::invalid_request(format!(
                "Invalid value for \"grant_type\": {other}. Only {TOKEN_EXCHANGE} is supported."
            )));
        }
        None => {
            return Err(OAuthError::invalid_request(
                "The request is missing the required parameter: grant_type.",
            ));
        }
    }
    match get("requested_token_type") {
        Some(ACCESS_TOKEN_TYPE) => {}
        _ => {
            return Err(OAuthError::invalid_request(format!(
                "Invalid value for \"requested_token_type\". Expected {ACCESS_TOKEN_TYPE}."
            )));
        }
    }
    match get("subject_token_type") {
        Some(kind) if SUBJECT_TOKEN_TYPES.contains(&kind) => {}
        _ => {
            return Err(OAuthError::invalid_request(
                "Invalid value for \"subject_token_type\". Expected urn:ietf:params:oauth:token-type:jwt or urn:ietf:params:oauth:token-type:id_token.",
            ));
        }
    }
    let subject_token = get("subject_token").ok_or_else(|| {
        OAuthError::invalid_request("The request is missing the required parameter: subject_token.")
    })?;
    // The pod's projected token: a secret of the run, valid or not.
    crate::emulators::issued_secrets::record(
        crate::emulators::issued_secrets::SecretKind::ServiceAccountToken,
        subject_token,
    );
    let audience = get("audience").unwrap_or_default();
    let Some(target) = ProviderName::parse(audience) else {
        return Err(OAuthError::invalid_request(
            "Invalid value for \"audience\". This value should be the full resource name of the Identity Provider. See https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token for the list of possible formats.",
        ));
    };
    let project = state.project.snapshot();
    let provider = (target.project_number == project.project_number)
        .then(|| state.project.provider(&target.pool, &target.provider))
        .flatten()
        .ok_or_else(|| {
            OAuthError::invalid_target(
                "The target service indicated by the \"audience\" parameters is invalid. This might either be because the pool or provider is disabled or deleted or because it doesn't exist.",
            )
        })?;
    let resource = audience.trim_start_matches("//");
    let accepted = check_subject_token(
        subject_token,
        &provider,
        &format!("//{resource}"),
        &state.jwks,
    )
    .await?;
    let principal = Principal::federated(&target.project_number, &target.pool, &accepted.subject);
    let access_token = state
        .tokens
        .issue(
            principal.clone(),
            FEDERATED_TOKEN_LIFETIME,
            get("scope").unwrap_or(CLOUD_PLATFORM_SCOPE),
        )
        .map_err(|err| OAuthError::invalid_request(format!("{err:#}")))?;
    Ok((
        principal,
        Json(json!({
            "access_token": access_token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": FEDERATED_TOKEN_LIFETIME.as_secs(),
        })),
    ))
}

/// `//iam.googleapis.com/projects/NUM/locations/global/workloadIdentityPools/POOL/providers/PROV`
struct ProviderName {
    project_number: String,
    pool: String,
    provider: String,
}

impl ProviderName {
    fn parse(audience: &str) -> Option<Self> {
        let rest = audience.strip_prefix("//iam.googleapis.com/projects/")?;
        let (project_number, rest) = rest.split_once("/locations/global/workloadIdentityPools/")?;
        let (pool, provider) = rest.split_once("/providers/")?;
        let valid = |s: &str| !s.is_empty() && !s.contains('/');
        (valid(project_number) && valid(pool) && valid(provider)).then(|| Self {
            project_number: project_number.to_owned(),
            pool: pool.to_owned(),
            provider: provider.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names() {
        let name = ProviderName::parse(
            "//iam.googleapis.com/projects/1234567890/locations/global/workloadIdentityPools/p/providers/k",
        )
        .expect("parses");
        assert_eq!(
            (
                name.project_number.as_str(),
                name.pool.as_str(),
                name.provider.as_str()
            ),
            ("1234567890", "p", "k")
        );
        assert!(
            ProviderName::parse(
                "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p"
            )
            .is_none()
        );
        assert!(ProviderName::parse("https://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k").is_none());
    }
}
