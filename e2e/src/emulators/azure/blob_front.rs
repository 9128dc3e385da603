//! The Azure Blob data plane, path style (`http://HOST:PORT/ACCOUNT/CONTAINER?...`), with
//! Azure's authorization in front: the bearer token must be one the Entra emulator issued for
//! storage (signature, issuer, audience, lifetime), and its application must hold a
//! `Storage Blob Data *` role on the account or container. Contents are held in memory
//! ([`super::blob_store`]); Azurite is not used (see the module docs).

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use jsonwebtoken::DecodingKey;
use quick_xml::escape::escape;

use super::super::ids::uuid_like;
use super::super::request_log::{RequestLog, RequestLogEntry};
use super::access_token::verify;
use super::blob_error::BlobError;
use super::blob_store::{BlobStore, StoredBlob};
use super::directory::Directory;
use super::role_assignments::{BlobAction, is_allowed};

/// The storage resource every Azure SDK asks a token for.
pub const STORAGE_RESOURCE: &str = "https://storage.azure.com";

/// Service version echoed when the client sends none.
const SERVICE_VERSION: &str = "2025-01-05";

pub struct BlobState {
    pub directory: Directory,
    pub store: BlobStore,
    /// The Entra emulator's public key: the only tokens storage accepts.
    pub token_key: DecodingKey,
    pub log: RequestLog,
    /// `https://HOST:PORT` of the Entra emulator, for `WWW-Authenticate` challenges.
    pub authority: String,
}

pub fn router(state: Arc<BlobState>) -> Router {
    Router::new()
        .route("/{account}/{container}", any(container_request))
        .route("/{account}/{container}/{*blob}", any(blob_request))
        .with_state(state)
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn rfc1123(unix_seconds: i64) -> String {
    chrono::DateTime::from_timestamp(unix_seconds, 0)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// A refusal, with the caller's client id when the token was valid (for the request log).
struct Refusal {
    error: BlobError,
    principal: Option<String>,
}

impl From<BlobError> for Refusal {
    fn from(error: BlobError) -> Self {
        Self {
            error,
            principal: None,
        }
    }
}

/// Who is calling, after authentication and authorization: the application's client id.
fn authorize(
    state: &BlobState,
    headers: &HeaderMap,
    account: &str,
    container: &str,
    action: BlobAction,
) -> Result<String, Refusal> {
    let setup = state.directory.snapshot();
    let challenge = format!(
        "Bearer authorization_uri={}/{}/oauth2/authorize resource_id={STORAGE_RESOURCE}",
        state.authority, setup.tenant_id
    );
    let Some(authorization) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(BlobError::no_authentication_information(challenge).into());
    };
    let Some(token) = authorization
        .strip_prefix("Bearer ")
        .or_else(|| authorization.strip_prefix("bearer "))
    else {
        return Err(BlobError::invalid_authentication_info(
            "Only bearer tokens from Microsoft Entra ID are accepted here (no Shared Key or SAS).",
            challenge,
        )
        .into());
    };
    let audiences = [
        STORAGE_RESOURCE.to_owned(),
        format!("{STORAGE_RESOURCE}/"),
        format!("https://{account}.blob.core.windows.net"),
        format!("https://{account}.blob.core.windows.net/"),
    ];
    let claims = verify(&state.token_key, token.trim(), &setup.tenant_id, &audiences)
        .map_err(|rejection| BlobError::invalid_authentication_info(rejection.0, challenge))
        .map_err(Refusal::from)?;
    let assignments = setup
        .storage_accounts
        .iter()
        .find(|a| a.name == account)
        .map(|a| a.role_assignments.as_slice())
        .unwrap_or_default();
    // Azure names the principal by object id; the harness's setups by client id: both work.
    let allowed = is_allowed(assignments, &claims.appid, container, action)
        || is_allowed(assignments, &claims.oid, container, action);
    if !allowed {
        return Err(Refusal {
            error: BlobError::permission_mismatch(),
            principal: Some(claims.appid),
        });
    }
    Ok(claims.appid)
}

fn record(
    state: &BlobState,
    method: &Method,
    path: &str,
    operation: &str,
    principal: &str,
    outcome: &str,
) {
    state.log.record(RequestLogEntry::answered(
        method.as_str(),
        path,
        format!("blob:{operation} principal={principal}"),
        outcome.to_owned(),
    ));
}

fn outcome_of(response: &Response) -> String {
    response
        .headers()
        .get("x-ms-error-code")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| response.status().as_u16().to_string(), str::to_owned)
}

fn with_service_headers(mut response: Response, request_headers: &HeaderMap) -> Response {
    let version = request_headers
        .get("x-ms-version")
        .cloned()
        .unwrap_or(HeaderValue::from_static(SERVICE_VERSION));
    let headers = response.headers_mut();
    headers.insert("x-ms-version", version);
    if !headers.contains_key("x-ms-request-id")
        && let Ok(id) = HeaderValue::from_str(&uuid_like())
    {
        headers.insert("x-ms-request-id", id);
    }
    if let Some(client_id) = request_headers.get("x-ms-client-request-id") {
        headers.insert("x-ms-client-request-id", client_id.clone());
    }
    if let Ok(date) = HeaderValue::from_str(&rfc1123(unix_now())) {
        headers.insert(header::DATE, date);
    }
    response
}

async fn container_request(
    State(state): State<Arc<BlobState>>,
    Path((account, container)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let path = format!("/{account}/{container}");
    let is_container = query.get("restype").map(String::as_str) == Some("container");
    let is_list = is_container && query.get("comp").map(String::as_str) == Some("list");
    let operation = match (&method, is_container, is_list) {
        (&Method::GET, true, true) => "ListBlobs",
        (&Method::GET | &Method::HEAD, true, false) => "GetContainerProperties",
        _ => "Unsupported",
    };
    let response = if operation == "Unsupported" {
        BlobError::unsupported_operation().into_response()
    } else if !state.store.has_account(&account) {
        BlobError::account_not_found().into_response()
    } else {
        match authorize(&state, &headers, &account, &container, BlobAction::Read) {
            Err(refusal) => {
                let response = with_service_headers(refusal.error.into_response(), &headers);
                let principal = refusal.principal.unwrap_or_else(|| "-".to_owned());
                record(
                    &state,
                    &method,
                    &path,
                    operation,
                    &principal,
                    &outcome_of(&response),
                );
                return response;
            }
            Ok(principal) => {
                let response = match state.store.list(&account, &container) {
                    None => BlobError::container_not_found().into_response(),
                    Some(blobs) if is_list => {
                        list_blobs_response(&account, &container, &blobs, &query)
                    }
                    Some(_) => container_properties_response(),
                };
                let response = with_service_headers(response, &headers);
                record(
                    &state,
                    &method,
                    &path,
                    operation,
                    &principal,
                    &outcome_of(&response),
                );
                return response;
            }
        }
    };
    let response = with_service_headers(response, &headers);
    record(
        &state,
        &method,
        &path,
        operation,
        "-",
        &outcome_of(&response),
    );
    response
}

async fn blob_request(
    State(state): State<Arc<BlobState>>,
    Path((account, container, blob)): Path<(String, String, String)>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/{account}/{container}/{blob}");
    let (operation, action) = match method {
        Method::GET => ("GetBlob", BlobAction::Read),
        Method::HEAD => ("GetBlobProperties", BlobAction::Read),
        Method::PUT => ("PutBlob", BlobAction::Write),
        _ => ("Unsupported", BlobAction::Write),
    };
    let mut principal = "-".to_owned();
    let response = if operation == "Unsupported" {
        BlobError::unsupported_operation().into_response()
    } else if !state.store.has_account(&account) {
        BlobError::account_not_found().into_response()
    } else {
        match authorize(&state, &headers, &account, &container, action) {
            Err(refusal) => {
                if let Some(who) = refusal.principal {
                    principal = who;
                }
                refusal.error.into_response()
            }
            Ok(who) => {
                principal = who;
                if method == Method::PUT {
                    if state
                        .store
                        .put(&account, &container, &blob, body.to_vec(), unix_now())
                    {
                        put_blob_response(&state, &account, &container, &blob)
                    } else {
                        BlobError::container_not_found().into_response()
                    }
                } else {
                    match state.store.get(&account, &container, &blob) {
                        None => BlobError::container_not_found().into_response(),
                        Some(None) => BlobError::blob_not_found().into_response(),
                        Some(Some(stored)) => {
                            get_blob_response(&stored, &headers, method == Method::HEAD)
                        }
                    }
                }
            }
        }
    };
    let response = with_service_headers(response, &headers);
    record(
        &state,
        &method,
        &path,
        operation,
        &principal,
        &outcome_of(&response),
    );
    response
}

fn list_blobs_response(
    account: &str,
    container: &str,
    blobs: &std::collections::BTreeMap<String, StoredBlob>,
    query: &HashMap<String, String>,
) -> Response {
    let prefix = query.get("prefix").map(String::as_str).unwrap_or_default();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults ServiceEndpoint=\"/{}/\" ContainerName=\"{}\">",
        escape(account),
        escape(container)
    );
    if !prefix.is_empty() {
        let _ = write!(xml, "<Prefix>{}</Prefix>", escape(prefix));
    }
    if let Some(max) = query.get("maxresults") {
        let _ = write!(xml, "<MaxResults>{}</MaxResults>", escape(max.as_str()));
    }
    xml.push_str("<Blobs>");
    for (name, blob) in blobs.iter().filter(|(name, _)| name.starts_with(prefix)) {
        let modified = rfc1123(blob.last_modified);
        let _ = write!(
            xml,
            "<Blob><Name>{}</Name><Properties><Creation-Time>{modified}</Creation-Time><Last-Modified>{modified}</Last-Modified><Etag>{}</Etag><Content-Length>{}</Content-Length><Content-Type>application/octet-stream</Content-Type><Content-Encoding /><Content-Language /><Content-CRC64 /><Content-MD5 /><Cache-Control /><Content-Disposition /><BlobType>BlockBlob</BlobType><AccessTier>Hot</AccessTier><AccessTierInferred>true</AccessTierInferred><LeaseStatus>unlocked</LeaseStatus><LeaseState>available</LeaseState><ServerEncrypted>true</ServerEncrypted></Properties><OrMetadata /></Blob>",
            escape(name.as_str()),
            blob.etag.trim_matches('"'),
            blob.content.len()
        );
    }
    xml.push_str("</Blobs><NextMarker /></EnumerationResults>");
    let mut response = (StatusCode::OK, xml).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    response
}

fn container_properties_response() -> Response {
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    if let Ok(modified) = HeaderValue::from_str(&rfc1123(unix_now())) {
        headers.insert(header::LAST_MODIFIED, modified);
    }
    headers.insert(
        header::ETAG,
        HeaderValue::from_static("\"0x8DC000000000000\""),
    );
    headers.insert("x-ms-lease-status", HeaderValue::from_static("unlocked"));
    headers.insert("x-ms-lease-state", HeaderValue::from_static("available"));
    headers.insert(
        "x-ms-has-immutability-policy",
        HeaderValue::from_static("false"),
    );
    headers.insert("x-ms-has-legal-hold", HeaderValue::from_static("false"));
    response
}

fn put_blob_response(state: &BlobState, account: &str, container: &str, blob: &str) -> Response {
    let mut response = StatusCode::CREATED.into_response();
    if let Some(Some(stored)) = state.store.get(account, container, blob) {
        let headers = response.headers_mut();
        if let Ok(etag) = HeaderValue::from_str(&stored.etag) {
            headers.insert(header::ETAG, etag);
        }
        if let Ok(modified) = HeaderValue::from_str(&rfc1123(stored.last_modified)) {
            headers.insert(header::LAST_MODIFIED, modified);
        }
        headers.insert(
            "x-ms-request-server-encrypted",
            HeaderValue::from_static("true"),
        );
    }
    response
}

/// `bytes=START-END` (END optional) from `x-ms-range` or `Range`.
fn requested_range(headers: &HeaderMap, total: usize) -> Option<(usize, usize)> {
    let value = headers
        .get("x-ms-range")
        .or_else(|| headers.get(header::RANGE))?
        .to_str()
        .ok()?;
    let (start, end) = value.strip_prefix("bytes=")?.split_once('-')?;
    let start: usize = start.parse().ok()?;
    let end = match end {
        "" => total.checked_sub(1)?,
        end => end.parse::<usize>().ok()?.min(total.checked_sub(1)?),
    };
    (start <= end).then_some((start, end))
}

fn get_blob_response(blob: &StoredBlob, request: &HeaderMap, head_only: bool) -> Response {
    let total = blob.content.len();
    let range = requested_range(request, total);
    let (status, content) = match range {
        Some((start, end)) => (
            StatusCode::PARTIAL_CONTENT,
            blob.content[start..=end].to_vec(),
        ),
        None => (StatusCode::OK, blob.content.clone()),
    };
    let length = content.len();
    let mut response = if head_only {
        status.into_response()
    } else {
        (status, content).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if let Some((start, end)) = range
        && let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{end}/{total}"))
    {
        headers.insert(header::CONTENT_RANGE, value);
    }
    if let Ok(etag) = HeaderValue::from_str(&blob.etag) {
        headers.insert(header::ETAG, etag);
    }
    if let Ok(modified) = HeaderValue::from_str(&rfc1123(blob.last_modified)) {
        headers.insert(header::LAST_MODIFIED, modified.clone());
        headers.insert("x-ms-creation-time", modified);
    }
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert("x-ms-blob-type", HeaderValue::from_static("BlockBlob"));
    headers.insert("x-ms-lease-status", HeaderValue::from_static("unlocked"));
    headers.insert("x-ms-lease-state", HeaderValue::from_static("available"));
    headers.insert("x-ms-server-encrypted", HeaderValue::from_static("true"));
    response
}
