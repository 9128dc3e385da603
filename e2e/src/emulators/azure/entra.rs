//! The Entra ID (Azure AD) v2.0 endpoints that workload identity uses, over HTTPS:
//! the token endpoint (client credentials with a federated client assertion), the tenant's
//! OpenID configuration and keys, and MSAL's instance discovery.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::super::jwks_cache::JwksCache;
use super::super::request_log::{RequestLog, RequestLogEntry};
use super::super::signing_key::SigningKey;
use super::access_token::{ACCESS_TOKEN_LIFETIME_SECONDS, IssuedToken, issue, token_issuer};
use super::directory::Directory;
use super::entra_error::EntraError;
use super::federated_assertion::{AssertionContext, check_assertion};
use super::graph::GRAPH_RESOURCE;
use super::setup::OPERATOR_CLIENT_ID;

pub const JWT_BEARER_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

pub struct EntraState {
    pub directory: Directory,
    pub jwks: JwksCache,
    pub signing_key: std::sync::Arc<SigningKey>,
    pub log: RequestLog,
    /// `https://HOST:PORT` as clients reach it (discovery documents name it).
    pub public_url: String,
    /// The client secret of the operator principal ([`OPERATOR_CLIENT_ID`]).
    pub operator_secret: String,
    /// Faults injected by tests: the next token requests' answers (see [`TokenFaults`]).
    pub faults: Arc<TokenFaults>,
}

/// The next token requests answered with a transient error instead of being judged: 429 with
/// `Retry-After: 1`, or a 5xx — how Entra sheds load. Set by a test, used up in order.
#[derive(Debug, Default)]
pub struct TokenFaults(std::sync::Mutex<std::collections::VecDeque<StatusCode>>);

impl TokenFaults {
    pub fn push(&self, status: StatusCode, times: usize) {
        let mut queue = self.0.lock().expect("faults lock");
        queue.extend(std::iter::repeat_n(status, times));
    }

    fn next(&self) -> Option<StatusCode> {
        self.0.lock().expect("faults lock").pop_front()
    }

    pub fn clear(&self) {
        self.0.lock().expect("faults lock").clear();
    }
}

pub fn router(state: Arc<EntraState>) -> Router {
    super::super::whole_body::read_first(
        Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                get(openid_configuration),
            )
            .route("/{tenant}/discovery/v2.0/keys", get(keys))
            .route("/common/discovery/instance", get(instance_discovery))
            .with_state(state),
    )
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// The form fields of a token request. Like Entra, a body that is not
/// `application/x-www-form-urlencoded` has no fields (so `grant_type` is missing, AADSTS900144).
fn form_fields(headers: &HeaderMap, body: &[u8]) -> HashMap<String, String> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return HashMap::new();
    }
    url::form_urlencoded::parse(body).into_owned().collect()
}

async fn token(
    State(state): State<Arc<EntraState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = form_fields(&headers, &body);
    let path = format!("/{tenant}/oauth2/v2.0/token");
    let client_id = form.get("client_id").cloned().unwrap_or_default();
    if let Some(status) = state.faults.next() {
        let mut response = EntraError::transient(status).into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        state.log.record(RequestLogEntry::answered(
            "POST",
            &path,
            format!("entra:token client_id={client_id}"),
            format!("injected {}", status.as_u16()),
        ));
        return response;
    }
    let (response, outcome) = match exchange(&state, &tenant, &form).await {
        Ok(body) => (body.into_response(), "200".to_owned()),
        Err(error) => {
            let outcome = format!("AADSTS{}", error.code);
            (error.into_response(), outcome)
        }
    };
    state.log.record(RequestLogEntry::answered(
        "POST",
        &path,
        format!("entra:token client_id={client_id}"),
        outcome,
    ));
    response
}

async fn exchange(
    state: &EntraState,
    tenant: &str,
    form: &HashMap<String, String>,
) -> Result<Json<serde_json::Value>, EntraError> {
    let setup = state.directory.snapshot();
    // Another real tenant holds none of this setup's applications (nor the operator).
    let home_tenant = setup
        .tenant(tenant)
        .ok_or_else(|| EntraError::tenant_not_found(tenant))?;
    let param = |name: &str| {
        form.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| EntraError::missing_parameter(name))
    };
    let grant_type = param("grant_type")?;
    if grant_type != "client_credentials" {
        return Err(EntraError::unsupported_grant_type(grant_type));
    }
    let client_id = param("client_id")?;
    let scope = param("scope")?;
    let Some(resource) = scope.strip_suffix("/.default") else {
        return Err(EntraError::invalid_scope(scope));
    };
    if !home_tenant {
        return Err(EntraError::application_not_found(client_id, tenant));
    }
    if let Some(secret) = form.get("client_secret").filter(|v| !v.is_empty()) {
        return secret_grant(state, &setup, tenant, client_id, secret, resource);
    }
    let assertion_type = param("client_assertion_type")?;
    if assertion_type != JWT_BEARER_ASSERTION_TYPE {
        return Err(EntraError::invalid_assertion_type());
    }
    let assertion = param("client_assertion")?;
    // The pod's projected token: a secret of the run, valid or not.
    crate::emulators::issued_secrets::record(
        crate::emulators::issued_secrets::SecretKind::ServiceAccountToken,
        assertion,
    );
    let app = setup
        .applications
        .iter()
        .find(|app| app.client_id.eq_ignore_ascii_case(client_id))
        .ok_or_else(|| EntraError::application_not_found(client_id, tenant))?;

    let now = unix_now();
    let context = AssertionContext {
        jwks: &state.jwks,
        unreachable_issuers: &setup.unreachable_issuers,
        now: now + setup.clock_offset_seconds,
    };
    let accepted = check_assertion(app, assertion, &context).await?;
    // Workload applications hold no Graph permissions in the emulator.
    grant(
        state,
        &setup,
        &app.client_id,
        resource,
        Vec::new(),
        accepted.credential,
    )
}

/// The client-credentials grant with a client secret: only the operator principal has one.
/// Its Graph tokens carry the setup's `operatorGraphPermissions` as `roles`.
fn secret_grant(
    state: &EntraState,
    setup: &super::setup::AzureSetup,
    tenant: &str,
    client_id: &str,
    secret: &str,
    resource: &str,
) -> Result<Json<serde_json::Value>, EntraError> {
    let is_operator = client_id.eq_ignore_ascii_case(OPERATOR_CLIENT_ID);
    let known = is_operator
        || setup
            .applications
            .iter()
            .any(|app| app.client_id.eq_ignore_ascii_case(client_id));
    if !known {
        return Err(EntraError::application_not_found(client_id, tenant));
    }
    // Constant-time equality is beside the point in an emulator; a wrong secret and an app
    // without secrets answer alike, as in Entra.
    if !is_operator || secret != state.operator_secret {
        return Err(EntraError::invalid_client_secret(client_id));
    }
    let roles = if resource.trim_end_matches('/') == GRAPH_RESOURCE {
        setup.operator_graph_permissions.clone()
    } else {
        Vec::new()
    };
    grant(
        state,
        setup,
        OPERATOR_CLIENT_ID,
        resource,
        roles,
        "client secret".to_owned(),
    )
}

fn grant(
    state: &EntraState,
    setup: &super::setup::AzureSetup,
    client_id: &str,
    resource: &str,
    roles: Vec<String>,
    credential: String,
) -> Result<Json<serde_json::Value>, EntraError> {
    let now = unix_now();
    let (access_token, claims) = issue(
        &state.signing_key,
        client_id,
        &setup.tenant_id,
        resource.trim_end_matches('/'),
        roles,
        now,
    )
    .map_err(|_| EntraError::signature_invalid())?;
    state.directory.record_issued(IssuedToken {
        client_id: claims.appid.clone(),
        tenant_id: claims.tid.clone(),
        object_id: claims.oid.clone(),
        audience: claims.aud.clone(),
        credential,
        expires_at: claims.exp,
    });
    Ok(Json(json!({
        "token_type": "Bearer",
        "expires_in": ACCESS_TOKEN_LIFETIME_SECONDS,
        "ext_expires_in": ACCESS_TOKEN_LIFETIME_SECONDS,
        "access_token": access_token,
    })))
}

async fn openid_configuration(
    State(state): State<Arc<EntraState>>,
    Path(tenant): Path<String>,
) -> Response {
    let setup = state.directory.snapshot();
    // The tenant as the setup spells it.
    let tenant_id = match setup.tenant(&tenant) {
        None => return EntraError::tenant_not_found(&tenant).into_response(),
        Some(true) => setup.tenant_id.clone(),
        Some(false) => setup
            .other_tenants
            .iter()
            .find(|t| t.eq_ignore_ascii_case(&tenant))
            .cloned()
            .unwrap_or(tenant),
    };
    let base = format!("{}/{}", state.public_url, tenant_id);
    Json(json!({
        "token_endpoint": format!("{base}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{base}/v2.0"),
        "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/oauth2/v2.0/devicecode"),
        "end_session_endpoint": format!("{base}/oauth2/v2.0/logout"),
        "tenant_region_scope": "WW",
        "cloud_instance_name": "microsoftonline.com",
        "access_token_issuer": token_issuer(&tenant_id),
    }))
    .into_response()
}

async fn keys(State(state): State<Arc<EntraState>>) -> Response {
    let mut response = Json(state.signing_key.jwks()).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=86400, private"),
    );
    response
}

/// MSAL asks this before trusting an unknown authority host; answering with our own host as
/// the only alias makes the emulator a valid authority.
async fn instance_discovery(State(state): State<Arc<EntraState>>) -> Response {
    let host = state.public_url.trim_start_matches("https://").to_owned();
    let tenant = state.directory.snapshot().tenant_id;
    (
        StatusCode::OK,
        Json(json!({
            "tenant_discovery_endpoint": format!("{}/{tenant}/v2.0/.well-known/openid-configuration", state.public_url),
            "api-version": "1.1",
            "metadata": [{
                "preferred_network": host,
                "preferred_cache": host,
                "aliases": [host],
            }],
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulators::azure::setup::{AzureSetup, SEED_CLIENT_ID};

    const HOME: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const OTHER: &str = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
    const UNKNOWN: &str = "00000000-1111-4222-8333-444444444444";

    fn state() -> EntraState {
        let mut setup = AzureSetup::seed();
        setup.other_tenants = vec![OTHER.to_owned()];
        let directory = Directory::default();
        directory.replace(setup);
        EntraState {
            directory,
            jwks: JwksCache::new(&[]).expect("cache"),
            signing_key: Arc::new(SigningKey::generate().expect("key")),
            log: RequestLog::default(),
            public_url: "https://login.microsoftonline.com".to_owned(),
            operator_secret: "unused".to_owned(),
            faults: Arc::default(),
        }
    }

    fn form(client_id: &str) -> HashMap<String, String> {
        [
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("scope", "https://storage.azure.com/.default"),
            ("client_assertion_type", JWT_BEARER_ASSERTION_TYPE),
            ("client_assertion", "not-a-jwt"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[tokio::test]
    async fn a_real_but_wrong_tenant_does_not_hold_the_application() {
        let state = state();
        let err = exchange(&state, OTHER, &form(SEED_CLIENT_ID))
            .await
            .expect_err("another tenant");
        assert_eq!(err.code, 700016);
        assert_eq!(err.error, "unauthorized_client");
        assert!(
            err.message.starts_with(&format!(
                "Application with identifier '{SEED_CLIENT_ID}' was not found in the directory '{OTHER}'."
            )),
            "{}",
            err.message
        );
        let err = exchange(&state, UNKNOWN, &form(SEED_CLIENT_ID))
            .await
            .expect_err("unknown tenant");
        assert_eq!(err.code, 90002);
        assert!(
            err.message
                .starts_with(&format!("Tenant '{UNKNOWN}' not found."))
        );
        // In its own tenant the application is found: the (garbage) assertion is judged.
        let err = exchange(&state, HOME, &form(SEED_CLIENT_ID))
            .await
            .expect_err("garbage assertion");
        assert_eq!(err.code, 50027);
    }
}
