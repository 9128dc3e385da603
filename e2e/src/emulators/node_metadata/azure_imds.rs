//! Azure IMDS's managed identity endpoint as a pod on an AKS node reaches it:
//! `GET /metadata/identity/oauth2/token?api-version=…&resource=R[&client_id=|&object_id=|&msi_res_id=]`
//! with `Metadata: true`. The node's identity (the kubelet identity) is the scenario's; its
//! tokens are signed by the Entra emulator, so Blob role assignments to it apply.
//!
//! Error bodies are those Azure's own SDK tests replay from IMDS (azure-sdk-for-net's
//! ImdsManagedIdentityProbeSource tests): 400 `invalid_request` "Required metadata header not
//! specified" and "Identity not found" (Azure's docs table names the first one's code
//! `bad_request_102`). Missing `api-version`/`resource` wordings are ours.

use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::super::azure::object_id_for;
use super::super::gcp::ConnectionAddresses;
use super::node_setup::ManagedIdentitySetup;
use super::{NodeCaller, NodeMetadata};

pub const TOKEN_PATH: &str = "/metadata/identity/oauth2/token";
/// The `Server` header IMDS answers with (as seen in azure-sdk-for-net#43618's log).
const SERVER: &str = "IMDS/150.870.65.1253";

pub async fn handle(
    State(state): State<Arc<NodeMetadata>>,
    ConnectInfo(addresses): ConnectInfo<ConnectionAddresses>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let path = uri.path().to_owned();
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let (response, who) = match state.caller(addresses).await {
        Ok(caller) => {
            let who = format!(
                "azure imds from {} ({})",
                addresses.peer.ip(),
                caller.describe()
            );
            (answer(&caller, &method, &headers, &path, &query), who)
        }
        Err(err) => {
            tracing::warn!("Azure IMDS could not identify {}: {err:#}", addresses.peer);
            (
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "caller unknown",
                ),
                String::new(),
            )
        }
    };
    state.record(method.as_str(), &path, who, response.status().as_u16());
    response
}

fn answer(
    caller: &NodeCaller,
    method: &Method,
    headers: &HeaderMap,
    path: &str,
    query: &[(String, String)],
) -> Response {
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required metadata header not specified",
        );
    }
    if path != TOKEN_PATH {
        return error(StatusCode::NOT_FOUND, "not_found", "Not found");
    }
    if method != Method::GET {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "invalid_request",
            "Method not allowed",
        );
    }
    let param = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    if param("api-version").is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'api-version' is missing",
        );
    }
    let Some(resource) = param("resource") else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required audience parameter not specified",
        );
    };
    let route = caller.route.as_ref();
    let identity = route
        .and_then(|r| r.node.azure.as_ref())
        .and_then(|azure| azure.managed_identity.as_ref())
        .filter(|identity| {
            selects(
                identity,
                param("client_id"),
                param("object_id"),
                param("msi_res_id"),
            )
        });
    let (Some(identity), Some(tokens)) = (identity, route.and_then(|r| r.azure.as_ref())) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Identity not found",
        );
    };
    let principal_id = principal_id(identity);
    let now = chrono::Utc::now().timestamp();
    match tokens.issue(&identity.client_id, &principal_id, resource, now) {
        Ok(issued) => {
            let expires_in = issued.claims.exp - now;
            json_response(
                StatusCode::OK,
                &json!({
                    "access_token": issued.token,
                    "client_id": identity.client_id,
                    "expires_in": expires_in.to_string(),
                    "expires_on": issued.claims.exp.to_string(),
                    "ext_expires_in": expires_in.to_string(),
                    "not_before": issued.claims.nbf.to_string(),
                    "resource": resource,
                    "token_type": "Bearer",
                }),
            )
        }
        Err(err) => {
            tracing::warn!("Azure IMDS: signing a token: {err:#}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "signing failed",
            )
        }
    }
}

/// The node's single identity answers a request naming no identity, or naming it by client
/// id, object id or ARM resource id (case-insensitively, as Azure compares GUIDs).
fn selects(
    identity: &ManagedIdentitySetup,
    client_id: Option<&str>,
    object_id: Option<&str>,
    resource_id: Option<&str>,
) -> bool {
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    match (client_id, object_id, resource_id) {
        (None, None, None) => true,
        (Some(c), None, None) => same(c, &identity.client_id),
        (None, Some(o), None) => same(o, &principal_id(identity)),
        (None, None, Some(r)) => identity
            .resource_id
            .as_deref()
            .is_some_and(|id| same(r, id)),
        _ => false,
    }
}

fn principal_id(identity: &ManagedIdentitySetup) -> String {
    identity
        .principal_id
        .clone()
        .unwrap_or_else(|| object_id_for(&identity.client_id))
}

fn error(status: StatusCode, code: &str, description: &str) -> Response {
    json_response(
        status,
        &json!({"error": code, "error_description": description}),
    )
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(header::SERVER, HeaderValue::from_static(SERVER));
    response
}
