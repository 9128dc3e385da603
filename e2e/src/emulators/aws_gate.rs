//! The AWS endpoint clients talk to: strict AssumeRoleWithWebIdentity, EKS Auth
//! AssumeRoleForPodIdentity (see `eks_auth`), the EKS control plane's Pod Identity association
//! API (see `eks_associations`), everything else passed through to moto unchanged. In front of
//! LocalStack, which enforces nothing, the gate also refuses keys the backend does not know and
//! authorizes S3 requests by the caller's identity policies (`s3_authorization`). One key may
//! be restricted (`AwsGate::restrict`): every call made with it is authorized against its
//! identity policy first (`operator_policy`), whatever the backend would allow.

use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::{Body, Bytes, to_bytes};
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::aws_backend::BackendKind;
use super::credentials::AdminCredentials;
use super::eks_associations::{EksApiCall, EksControlPlane};
use super::eks_auth::{EksAuthDeps, EksAuthStore};
use super::eks_auth_error::EksAuthError;
use super::hop_budgets;
use super::iam_directory::IamDirectory;
use super::ids::uuid_like;
use super::jwks_cache::JwksCache;
use super::localstack_callers::{LocalStackCallers, role_name_of};
use super::moto_web_identity::assume_role_in_moto;
use super::operator_policy::{
    Needs, Refusal, RestrictedKey, eks_association_needs, eks_auth_needs, query_needs,
    query_refusal,
};
use super::request_log::{RequestLog, RequestSummary};
use super::role_chaining::{self, ChainDeps};
use super::s3_authorization::{
    PolicyDecision, S3Error, evaluate_identity_policies, required_permission,
};
use super::sessions::{KeyOwner, SessionDirectory, signing_key_id};
use super::sts_error::{StsError, xml_escape};
use super::token_namespace::token_namespace;
use super::web_identity_check::{ValidatedWebIdentity, WebIdentityRequest, check_web_identity};
use crate::https_server::bind_localhost;

/// S3 uploads in tests are small; this only bounds memory.
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

struct GateState {
    moto_url: String,
    admin: AdminCredentials,
    account_id: String,
    directory: IamDirectory,
    jwks: JwksCache,
    moto_http: reqwest::Client,
    log: RequestLog,
    /// Shared with the webhook stand-in, which mutates pods of associated ServiceAccounts.
    eks_auth: Arc<EksAuthStore>,
    /// Who each key the gate knows belongs to (the caller of a signed AssumeRole).
    sessions: SessionDirectory,
    /// The admin key's principal (moto: the bootstrap user; LocalStack: the account's root).
    admin_arn: String,
    /// LocalStack only: owners of keys the gate did not hand out.
    callers: Option<LocalStackCallers>,
    /// The key whose calls are authorized against its own identity policy (the `bind`
    /// operator's), if any.
    restricted: std::sync::Mutex<Option<RestrictedKey>>,
}

impl GateState {
    fn restricted(&self) -> Option<RestrictedKey> {
        self.restricted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The restricted key's id, which the emulated EKS APIs accept next to the admin's.
    fn restricted_key_id(&self) -> Option<String> {
        self.restricted().map(|key| key.access_key_id)
    }
}

/// A running gate on `127.0.0.1:<random>`; stops when dropped.
pub struct AwsGate {
    url: String,
    log: RequestLog,
    state: Arc<GateState>,
    server: JoinHandle<()>,
}

impl AwsGate {
    /// In front of moto with IAM enforced. `trusted_ca_pems`: CAs to trust when fetching
    /// issuers' JWKS. Serves from `runtime`.
    pub fn start(
        moto_url: &str,
        admin: AdminCredentials,
        account_id: &str,
        trusted_ca_pems: &[String],
        runtime: &Handle,
    ) -> Result<Self> {
        Self::start_in_front_of(
            BackendKind::Moto,
            moto_url,
            admin,
            account_id,
            trusted_ca_pems,
            runtime,
        )
    }

    /// In front of `backend` at `backend_url`; `admin` is moto's bootstrap user or, for
    /// LocalStack, the account's root key.
    pub fn start_in_front_of(
        backend: BackendKind,
        moto_url: &str,
        admin: AdminCredentials,
        account_id: &str,
        trusted_ca_pems: &[String],
        runtime: &Handle,
    ) -> Result<Self> {
        let log = RequestLog::default();
        let sessions = SessionDirectory::default();
        let admin_arn = match backend {
            BackendKind::Moto => {
                format!("arn:aws:iam::{account_id}:user/{}", super::moto::ADMIN_USER)
            }
            BackendKind::LocalStack => format!("arn:aws:iam::{account_id}:root"),
        };
        sessions.record(
            &admin.access_key_id,
            KeyOwner::User {
                arn: admin_arn.clone(),
            },
        );
        let callers = (backend == BackendKind::LocalStack)
            .then(|| LocalStackCallers::new(moto_url, account_id));
        let state = Arc::new(GateState {
            moto_url: moto_url.to_owned(),
            directory: IamDirectory::new(moto_url, &admin),
            admin,
            account_id: account_id.to_owned(),
            jwks: JwksCache::new(trusted_ca_pems)?,
            moto_http: hop_budgets::moto_http_client().context("building the moto HTTP client")?,
            log: log.clone(),
            eks_auth: Arc::new(EksAuthStore::default()),
            sessions,
            admin_arn,
            callers,
            restricted: std::sync::Mutex::new(None),
        });
        let listener = bind_localhost().context("binding the AWS gate port")?;
        let url = format!("http://{}", listener.local_addr()?);
        let router = Router::new()
            .route(
                "/clusters/{cluster_name}/assume-role-for-pod-identity",
                axum::routing::post(assume_role_for_pod_identity),
            )
            .route(
                "/clusters/{cluster_name}/pod-identity-associations",
                axum::routing::get(pod_identity_associations).post(pod_identity_associations),
            )
            .route(
                "/clusters/{cluster_name}/pod-identity-associations/{association_id}",
                axum::routing::get(pod_identity_association)
                    .post(pod_identity_association)
                    .delete(pod_identity_association),
            )
            .fallback(handle)
            .with_state(state.clone());
        let server = runtime.spawn(async move {
            // Registered with `runtime`'s reactor, hence converted inside it.
            if let Ok(listener) = TcpListener::from_std(listener) {
                let _ = axum::serve(listener, router).await;
            }
        });
        Ok(Self {
            url,
            log,
            state,
            server,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn request_log(&self) -> &RequestLog {
        &self.log
    }

    /// EKS clusters and Pod Identity associations served by `AssumeRoleForPodIdentity`.
    pub fn eks_auth(&self) -> &EksAuthStore {
        &self.state.eks_auth
    }

    /// The same store, for the webhook stand-in to read associations from.
    pub fn eks_auth_shared(&self) -> Arc<EksAuthStore> {
        self.state.eks_auth.clone()
    }

    /// Drop cached IAM reads (after writing IAM directly to moto).
    pub fn forget_iam_cache(&self) {
        self.state.directory.invalidate();
    }

    /// From now on, every call signed with `key`'s access key is authorized against its
    /// policy before anything else answers it (`None`: no key is restricted). The key's owner
    /// is recorded as an IAM user.
    pub fn restrict(&self, key: Option<RestrictedKey>) {
        if let Some(key) = &key {
            self.state.sessions.record(
                &key.access_key_id,
                KeyOwner::User {
                    arn: key.caller_arn.clone(),
                },
            );
        }
        *self
            .state
            .restricted
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = key;
    }
}

impl Drop for AwsGate {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn handle(State(state): State<Arc<GateState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let mut summary = RequestSummary {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        ..RequestSummary::default()
    };
    let body = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            state.log.arrive(summary).answer("RequestTooLarge");
            return StatusCode::PAYLOAD_TOO_LARGE.into_response();
        }
    };
    let params = query_protocol_params(&parts.method, parts.uri.query(), &parts.headers, &body);
    let param = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    summary.action = param("Action").unwrap_or_default();
    if summary.action == "AssumeRoleWithWebIdentity" {
        summary.namespace = param("WebIdentityToken")
            .and_then(|token| token_namespace(&token))
            .unwrap_or_default();
    }
    let pending = state.log.arrive(summary);
    let action = pending.summary().action.clone();

    let work = async {
        if action == "AssumeRoleWithWebIdentity" {
            match assume_role_with_web_identity(&state, &params).await {
                Ok(response) => (response, "200".to_owned()),
                Err(error) => {
                    let code = error.code.to_owned();
                    (error.into_response(), code)
                }
            }
        } else if !action.is_empty() && !is_signed(&parts.headers, &params) {
            // moto fails unsigned query-protocol calls with a 500; AWS refuses them.
            let error = StsError::missing_authentication_token();
            let code = error.code.to_owned();
            (error.into_response(), code)
        } else if let Some(refusal) = authorize_restricted(
            &state,
            &parts.method,
            &parts.uri,
            &parts.headers,
            &params,
            &action,
        )
        .await
        {
            refusal
        } else if let Some(refusal) = authorize_for_localstack(
            &state,
            &parts.method,
            &parts.uri,
            &parts.headers,
            &params,
            &action,
        )
        .await
        {
            refusal
        } else if action == "AssumeRole" {
            // moto checks AssumeRole against resource `*` and reads no trust policy for it.
            match assume_role(&state, &parts.headers, &params).await {
                Ok(response) => (response, "200".to_owned()),
                Err(error) => {
                    let code = error.code.to_owned();
                    (error.into_response(), code)
                }
            }
        } else if let Some(error) = refused_iam_write(&action, &param) {
            let code = error.code.to_owned();
            (error.into_response(), code)
        } else {
            let path_and_query = parts
                .uri
                .path_and_query()
                .map_or("/", |pq| pq.as_str())
                .to_owned();
            let response =
                pass_through(&state, parts.method, &path_and_query, parts.headers, body).await;
            if is_iam_write(&action, &response) {
                state.directory.invalidate();
            }
            let status = response.status().as_u16().to_string();
            (response, status)
        }
    };
    let (response, outcome) = match tokio::time::timeout(hop_budgets::GATE_REQUEST, work).await {
        Ok(answer) => answer,
        Err(_) => {
            // A write may have reached moto before the bound: never serve stale IAM reads.
            state.directory.invalidate();
            let error = StsError::internal(gate_timeout_message(&action));
            let code = error.code.to_owned();
            (error.into_response(), code)
        }
    };
    pending.answer(outcome);
    response
}

/// In front of LocalStack only (moto decides for itself): a signed request whose key the
/// backend does not know in this account is refused, and an S3 request must be allowed by the
/// caller's identity policies. `None`: pass on.
async fn authorize_for_localstack(
    state: &GateState,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    params: &[(String, String)],
    action: &str,
) -> Option<(Response, String)> {
    let callers = state.callers.as_ref()?;
    let is_s3 = action.is_empty();
    let refuse = |response: Response, code: &str| Some((response, code.to_owned()));
    let Some(key_id) = request_key_id(headers, params) else {
        // Unsigned query-protocol calls were refused before; this is anonymous S3.
        let error = S3Error::anonymous();
        let code = error.code;
        return refuse(error.into_response(), code);
    };
    let caller = match state.sessions.owner(&key_id) {
        Some(owner) => Some(owner.caller_arn().to_owned()),
        None => match callers.caller_arn(&key_id).await {
            Ok(caller) => caller,
            Err(message) => {
                return if is_s3 {
                    let error = S3Error::internal(message);
                    let code = error.code;
                    refuse(error.into_response(), code)
                } else {
                    let error = StsError::internal(message);
                    let code = error.code;
                    refuse(error.into_response(), code)
                };
            }
        },
    };
    let Some(caller) = caller else {
        return if is_s3 {
            let error = S3Error::invalid_access_key_id();
            let code = error.code;
            refuse(error.into_response(), code)
        } else {
            let error = StsError::invalid_client_token_id();
            let code = error.code;
            refuse(error.into_response(), code)
        };
    };
    if !is_s3 || caller == state.admin_arn {
        return None;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let permission = required_permission(method, host, uri.path(), params);
    let decision = match role_name_of(&caller) {
        Some(role) => match state.directory.role_identity_policies(role).await {
            Ok(policies) => evaluate_identity_policies(&policies, &permission),
            Err(err) => {
                let error = S3Error::internal(format!("reading {role}'s policies: {err:#}"));
                let code = error.code;
                return refuse(error.into_response(), code);
            }
        },
        // IAM users other than the admin: their policies are not modelled.
        None => PolicyDecision::NoAllow,
    };
    if decision == PolicyDecision::Allowed {
        return None;
    }
    let error = S3Error::access_denied(&caller, &permission, decision);
    let code = error.code;
    refuse(error.into_response(), code)
}

/// A call signed with the restricted key: refused, as AWS refuses it, unless its policy
/// allows what the call needs (`operator_policy`). `None`: pass on.
async fn authorize_restricted(
    state: &GateState,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    params: &[(String, String)],
    action: &str,
) -> Option<(Response, String)> {
    let key = state.restricted()?;
    let (key_id, service) = request_scope(headers, params)?;
    if key_id != key.access_key_id {
        return None;
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let is_s3 = action.is_empty() && service.as_deref().is_none_or(|s| s == "s3");
    let needs = if is_s3 {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        let permission = required_permission(method, host, uri.path(), params);
        Needs::All(vec![super::operator_policy::Permission {
            action: permission.action,
            shown_resource: format!("\"{}\"", permission.resource),
            resource: permission.resource,
            context: Default::default(),
        }])
    } else if action.is_empty() {
        Needs::Unmapped(format!(
            "{} {} {}",
            service.as_deref().unwrap_or("?"),
            method,
            uri.path()
        ))
    } else {
        let service = service.unwrap_or_default();
        // Policies match a role's ARN with its path: read it when IAM has the role.
        let role_arn = match param("RoleName") {
            Some(name) if service == "iam" && action != "CreateRole" => {
                match state.directory.role(&name).await {
                    Ok(role) => role.map(|r| r.arn),
                    Err(err) => {
                        let error = StsError::internal(format!("reading role {name}: {err:#}"));
                        let code = error.code.to_owned();
                        return Some((error.into_response(), code));
                    }
                }
            }
            _ => None,
        };
        query_needs(
            &service,
            action,
            &param,
            &state.account_id,
            role_arn.as_deref(),
        )
    };
    let refusal = key.authorize(needs).err()?;
    let code = "AccessDenied".to_owned();
    if is_s3 {
        let message = key.message(&refusal, true);
        let error = S3Error {
            status: StatusCode::FORBIDDEN,
            code: "AccessDenied",
            message,
        };
        return Some((error.into_response(), code));
    }
    let service = service_of(&refusal, action);
    Some((query_refusal(service, &key.message(&refusal, true)), code))
}

/// The namespace a Query refusal is written in: IAM's for `iam:` permissions.
fn service_of(refusal: &Refusal, action: &str) -> &'static str {
    match refusal {
        Refusal::Denied { permission, .. } if permission.action.starts_with("sts:") => "sts",
        Refusal::Unmapped(_) if action == "AssumeRole" => "sts",
        _ => "iam",
    }
}

/// The access key id of a signed request and, for SigV4, the service of its credential scope
/// (`AKID/DATE/REGION/SERVICE/aws4_request`); SigV2 presigned queries (S3 only) have none.
fn request_scope(
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Option<(String, Option<String>)> {
    let credential = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|authorization| authorization.split("Credential=").nth(1))
        .map(|rest| rest.split([',', ' ']).next().unwrap_or_default().to_owned())
        .or_else(|| {
            params
                .iter()
                .find(|(k, _)| k == "X-Amz-Credential")
                .map(|(_, v)| v.clone())
        });
    if let Some(credential) = credential {
        let mut scope = credential.split('/');
        let key = scope.next().filter(|k| !k.is_empty())?.to_owned();
        let service = scope.nth(2).map(str::to_owned);
        return Some((key, service));
    }
    request_key_id(headers, params).map(|key| (key, None))
}

/// The access key id a request is signed with: SigV4 header or presigned query.
fn request_key_id(headers: &HeaderMap, params: &[(String, String)]) -> Option<String> {
    if let Some(authorization) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return signing_key_id(authorization).map(str::to_owned);
    }
    params.iter().find_map(|(key, value)| match key.as_str() {
        "X-Amz-Credential" => value.split('/').next().map(str::to_owned),
        "AWSAccessKeyId" => Some(value.clone()),
        _ => None,
    })
}

/// IAM writes AWS refuses but moto accepts: an OIDC provider whose URL is not https.
fn refused_iam_write(action: &str, param: &dyn Fn(&str) -> Option<String>) -> Option<StsError> {
    if action != "CreateOpenIDConnectProvider" {
        return None;
    }
    let url = param("Url").unwrap_or_default();
    let is_https = url
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"));
    (!is_https).then(|| {
        StsError::invalid_input(format!(
            "Invalid URL {url}: the URL of an OpenID Connect provider must begin with https://"
        ))
    })
}

/// The whole-request bound's message: which request the gate could not finish in time.
fn gate_timeout_message(action: &str) -> String {
    let what = if action.is_empty() {
        "the request"
    } else {
        action
    };
    format!(
        "the AWS gate did not finish {what} within {}s",
        hop_budgets::GATE_REQUEST.as_secs()
    )
}

/// A SigV4 `Authorization` header, or a presigned (SigV4 or SigV2) query.
fn is_signed(headers: &HeaderMap, params: &[(String, String)]) -> bool {
    headers.contains_key(header::AUTHORIZATION)
        || params
            .iter()
            .any(|(key, _)| key == "X-Amz-Signature" || key == "Signature")
}

async fn assume_role_for_pod_identity(
    State(state): State<Arc<GateState>>,
    Path(cluster_name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let pending = state.log.arrive(RequestSummary {
        method: "POST".to_owned(),
        path: format!("/clusters/{cluster_name}/assume-role-for-pod-identity"),
        action: "AssumeRoleForPodIdentity".to_owned(),
        namespace: body_token_namespace(&body),
    });
    if let Some(error) = restricted_eks_refusal(
        &state,
        &headers,
        eks_auth_needs(&cluster_name, &state.account_id, super::REGION),
    ) {
        // EKS Auth's AccessDeniedException is a 400 (its API reference).
        let error = EksAuthError::access_denied(error.message);
        pending.answer(error.code.to_owned());
        return error.into_response();
    }
    let operator_key = state.restricted_key_id();
    let deps = EksAuthDeps {
        account_id: &state.account_id,
        region: super::REGION,
        admin: &state.admin,
        operator_key: operator_key.as_deref(),
        directory: &state.directory,
        jwks: &state.jwks,
        moto_http: &state.moto_http,
        moto_url: &state.moto_url,
        store: &state.eks_auth,
        sessions: &state.sessions,
    };
    let result = tokio::time::timeout(
        hop_budgets::GATE_REQUEST,
        super::eks_auth::assume_role_for_pod_identity(&deps, &cluster_name, &headers, &body),
    )
    .await
    .unwrap_or_else(|_| {
        Err(EksAuthError::internal(gate_timeout_message(
            "AssumeRoleForPodIdentity",
        )))
    });
    let (response, outcome) = match result {
        Ok(answer) => (json_ok(&answer), "200".to_owned()),
        Err(error) => {
            let code = error.code.to_owned();
            (error.into_response(), code)
        }
    };
    pending.answer(outcome);
    response
}

/// The namespace of the `token` member of an EKS Auth request body, for the log.
fn body_token_namespace(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|request| {
            request
                .get("token")
                .and_then(serde_json::Value::as_str)
                .and_then(token_namespace)
        })
        .unwrap_or_default()
}

fn json_ok(answer: &serde_json::Value) -> Response {
    let mut response = (StatusCode::OK, answer.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// `POST`/`GET /clusters/{name}/pod-identity-associations`: Create and List.
async fn pod_identity_associations(
    State(state): State<Arc<GateState>>,
    Path(cluster_name): Path<String>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let call = EksApiCall {
        method: &method,
        cluster_name: &cluster_name,
        association_id: None,
        query: query.as_deref(),
        headers: &headers,
        body: &body,
    };
    eks_control_plane(&state, &call)
}

/// `GET`/`POST`/`DELETE /clusters/{name}/pod-identity-associations/{id}`: Describe, Update,
/// Delete.
async fn pod_identity_association(
    State(state): State<Arc<GateState>>,
    Path((cluster_name, association_id)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let call = EksApiCall {
        method: &method,
        cluster_name: &cluster_name,
        association_id: Some(&association_id),
        query: None,
        headers: &headers,
        body: &body,
    };
    eks_control_plane(&state, &call)
}

fn eks_control_plane(state: &GateState, call: &EksApiCall<'_>) -> Response {
    let pending = state.log.arrive(RequestSummary {
        method: call.method.to_string(),
        path: match call.association_id {
            Some(id) => format!(
                "/clusters/{}/pod-identity-associations/{id}",
                call.cluster_name
            ),
            None => format!("/clusters/{}/pod-identity-associations", call.cluster_name),
        },
        action: call.action().to_owned(),
        namespace: String::new(),
    });
    let role_arn = serde_json::from_slice::<serde_json::Value>(call.body)
        .ok()
        .and_then(|body| body.get("roleArn")?.as_str().map(str::to_owned));
    let needs = eks_association_needs(
        call.method,
        call.cluster_name,
        call.association_id,
        role_arn.as_deref(),
        &state.account_id,
        super::REGION,
    );
    if let Some(error) = restricted_eks_refusal(state, call.headers, needs) {
        pending.answer(error.code.to_owned());
        return error.into_response();
    }
    let operator_key = state.restricted_key_id();
    let plane = EksControlPlane {
        account_id: &state.account_id,
        region: super::REGION,
        admin: &state.admin,
        operator_key: operator_key.as_deref(),
        store: &state.eks_auth,
    };
    let (response, outcome) = match super::eks_associations::handle(&plane, call) {
        Ok(answer) => (json_ok(&answer), "200".to_owned()),
        Err(error) => {
            let code = error.code.to_owned();
            (error.into_response(), code)
        }
    };
    pending.answer(outcome);
    response
}

/// An EKS call signed with the restricted key that its policy does not allow: EKS's 403
/// `AccessDeniedException` (no reason suffix, as EKS words it). `None`: pass on.
fn restricted_eks_refusal(
    state: &GateState,
    headers: &HeaderMap,
    needs: Needs,
) -> Option<EksAuthError> {
    let key = state.restricted()?;
    let (key_id, _) = request_scope(headers, &[])?;
    if key_id != key.access_key_id {
        return None;
    }
    let refusal = key.authorize(needs).err()?;
    Some(EksAuthError::control_plane_access_denied(
        key.message(&refusal, false),
    ))
}

/// Query-protocol parameters from the query string and, for form posts, the body.
fn query_protocol_params(
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if method == Method::POST && is_form {
        params.extend(url::form_urlencoded::parse(body).into_owned());
    }
    params
}

/// A successful IAM call that may have changed providers or roles.
fn is_iam_write(action: &str, response: &Response) -> bool {
    let is_read = action.starts_with("Get") || action.starts_with("List");
    // IAM's query-protocol actions are the only ones with these names we care about;
    // any non-read Action invalidates (cheap and never stale).
    !action.is_empty() && !is_read && response.status().is_success()
}

async fn assume_role_with_web_identity(
    state: &GateState,
    params: &[(String, String)],
) -> Result<Response, StsError> {
    let request = WebIdentityRequest::from_params(params)?;
    let validated =
        check_web_identity(&request, &state.account_id, &state.directory, &state.jwks).await?;
    let credentials = assume_role_in_moto(
        &state.moto_http,
        &state.moto_url,
        &state.admin,
        &validated.role.arn,
        &request.role_session_name,
        request.duration_seconds,
    )
    .await
    .map_err(|err| StsError::internal(format!("{err:#}")))?;
    state.sessions.record(
        &credentials.access_key_id,
        KeyOwner::RoleSession {
            role_arn: validated.role.arn.clone(),
            session_arn: format!(
                "arn:aws:sts::{}:assumed-role/{}/{}",
                state.account_id, validated.role.name, request.role_session_name
            ),
        },
    );
    let request_id = uuid_like();
    let xml = success_xml(
        &state.account_id,
        &request,
        &validated,
        &credentials,
        &request_id,
    );
    let mut response = (StatusCode::OK, xml).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("x-amzn-requestid", value);
    }
    Ok(response)
}

fn success_xml(
    account_id: &str,
    request: &WebIdentityRequest,
    validated: &ValidatedWebIdentity,
    credentials: &super::moto_web_identity::RoleSessionCredentials,
    request_id: &str,
) -> String {
    let session = &request.role_session_name;
    let assumed_role_arn = format!(
        "arn:aws:sts::{account_id}:assumed-role/{}/{session}",
        validated.role.name
    );
    // Same user id moto's GetCallerIdentity reports for these credentials.
    let assumed_role_id = format!("{}:{session}", validated.role.role_id);
    format!(
        r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>{subject}</SubjectFromWebIdentityToken>
    <Audience>{audience}</Audience>
    <AssumedRoleUser>
      <Arn>{arn}</Arn>
      <AssumedRoleId>{role_id}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>{access_key_id}</AccessKeyId>
      <SecretAccessKey>{secret}</SecretAccessKey>
      <SessionToken>{session_token}</SessionToken>
      <Expiration>{expiration}</Expiration>
    </Credentials>
    <Provider>{provider}</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>{request_id}</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>
"#,
        subject = xml_escape(&validated.subject),
        audience = xml_escape(&validated.audience),
        arn = xml_escape(&assumed_role_arn),
        role_id = xml_escape(&assumed_role_id),
        access_key_id = xml_escape(&credentials.access_key_id),
        secret = xml_escape(&credentials.secret_access_key),
        session_token = xml_escape(&credentials.session_token),
        expiration = xml_escape(&credentials.expiration),
        provider = xml_escape(&validated.provider_arn),
    )
}

/// A signed `sts:AssumeRole`: decided by [`role_chaining`], answered in AWS's XML.
async fn assume_role(
    state: &GateState,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<Response, StsError> {
    let param = |name: &str| {
        params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|v| !v.is_empty())
    };
    let missing = |name: &str| {
        StsError::validation(format!(
            "1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"
        ))
    };
    let role_arn = param("RoleArn").ok_or_else(|| missing("roleArn"))?;
    let session_name = param("RoleSessionName").ok_or_else(|| missing("roleSessionName"))?;
    let duration = param("DurationSeconds")
        .and_then(|d| d.parse().ok())
        .unwrap_or(3600);
    let key_id = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(signing_key_id)
        .ok_or_else(StsError::invalid_client_token_id)?;
    let deps = ChainDeps {
        account_id: &state.account_id,
        admin: &state.admin,
        directory: &state.directory,
        sessions: &state.sessions,
        moto_http: &state.moto_http,
        moto_url: &state.moto_url,
    };
    let granted =
        role_chaining::assume_role(&deps, key_id, role_arn, session_name, duration).await?;
    let request_id = uuid_like();
    let c = &granted.credentials;
    let xml = format!(
        r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <Arn>{arn}</Arn>
      <AssumedRoleId>{role_id}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>{access_key_id}</AccessKeyId>
      <SecretAccessKey>{secret}</SecretAccessKey>
      <SessionToken>{session_token}</SessionToken>
      <Expiration>{expiration}</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>{request_id}</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>
"#,
        arn = xml_escape(&granted.session_arn),
        role_id = xml_escape(&granted.assumed_role_id),
        access_key_id = xml_escape(&c.access_key_id),
        secret = xml_escape(&c.secret_access_key),
        session_token = xml_escape(&c.session_token),
        expiration = xml_escape(&c.expiration),
    );
    let mut response = (StatusCode::OK, xml).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    Ok(response)
}

/// Forwards the request to moto byte for byte (Host included: it is part of the signature).
/// Bodies are buffered, so only connection-level headers are dropped.
async fn pass_through(
    state: &GateState,
    method: Method,
    path_and_query: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let url = format!("{}{}", state.moto_url, path_and_query);
    let mut request = state.moto_http.request(method, url);
    for (name, value) in &headers {
        if !is_hop_by_hop(name.as_str()) {
            request = request.header(name, value);
        }
    }
    let upstream = match request.body(body).send().await {
        Ok(upstream) => upstream,
        Err(err) => {
            return StsError::internal(hop_budgets::moto_failure(&err)).into_response();
        }
    };
    let status = upstream.status();
    let upstream_headers = upstream.headers().clone();
    let bytes = match upstream.bytes().await {
        Ok(bytes) => bytes,
        Err(err) => {
            return StsError::internal(format!(
                "reading moto's answer: {}",
                hop_budgets::moto_failure(&err)
            ))
            .into_response();
        }
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in &upstream_headers {
        if !is_hop_by_hop(name.as_str()) {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection" | "keep-alive" | "transfer-encoding" | "upgrade"
    )
}
