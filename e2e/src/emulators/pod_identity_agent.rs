//! The EKS Pod Identity Agent: `GET /v1/credentials` with the pod's raw ServiceAccount token in
//! `Authorization`; it calls EKS Auth `AssumeRoleForPodIdentity` (with aws-sdk-eksauth, signed
//! by the node's credentials — here the emulated account's admin) and answers the container
//! credentials JSON `{AccessKeyId, SecretAccessKey, Token, AccountId, Expiration}`, or, like the
//! real agent, a plain-text error with EKS Auth's HTTP status:
//! `[REQUEST_ID]: (ExceptionName): message, fault: client`.
//!
//! In the local cluster it listens on `169.254.170.23:80` (an address of the pod bridge). With
//! parallel scenario workers every namespace is routed to its worker's EKS Auth; others go to
//! the default route. Routing reads the token's namespace without validating anything: EKS
//! Auth validates.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use aws_sdk_eksauth::config::retry::RetryConfig;
use aws_sdk_eksauth::config::timeout::TimeoutConfig;
use aws_sdk_eksauth::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use serde_json::json;
use tokio::task::JoinHandle;

use super::background_runtime::BackgroundRuntime;
use super::credentials::AdminCredentials;
use super::hop_budgets;
use super::request_log::{RequestLog, RequestLogEntry, RequestSummary};
use super::token_namespace::token_namespace;

/// Where the agent sends a namespace's tokens.
#[derive(Clone, Debug)]
pub struct AgentRoute {
    /// The EKS Auth endpoint (the gate's URL).
    pub endpoint: String,
    /// The node's credentials.
    pub credentials: AdminCredentials,
}

/// A route with its EKS Auth client, built once: a client per request would build a new
/// connection pool and TLS root store (parsing every platform root certificate, on the
/// agent's two runtime threads) and open a new connection to the gate for every pod request.
#[derive(Clone)]
struct RoutedClient {
    endpoint: String,
    client: aws_sdk_eksauth::Client,
}

impl RoutedClient {
    fn new(route: &AgentRoute) -> Self {
        Self {
            endpoint: route.endpoint.clone(),
            client: eks_auth_client(route),
        }
    }
}

struct AgentState {
    cluster_name: String,
    default_route: RoutedClient,
    routes: Mutex<HashMap<String, RoutedClient>>,
    log: RequestLog,
}

/// A running agent; stops when dropped.
pub struct PodIdentityAgent {
    address: SocketAddr,
    state: Arc<AgentState>,
    server: JoinHandle<()>,
    // Last: the server runs on it.
    _runtime: BackgroundRuntime,
}

impl PodIdentityAgent {
    /// Serves on `listener` for `cluster_name`, sending tokens to `default_route`.
    pub fn start(
        listener: StdTcpListener,
        cluster_name: &str,
        default_route: AgentRoute,
    ) -> Result<Self> {
        listener
            .set_nonblocking(true)
            .context("setting the agent's socket non-blocking")?;
        let address = listener.local_addr()?;
        let runtime = BackgroundRuntime::new()?;
        let state = Arc::new(AgentState {
            cluster_name: cluster_name.to_owned(),
            default_route: RoutedClient::new(&default_route),
            routes: Mutex::new(HashMap::new()),
            log: RequestLog::default(),
        });
        let router = Router::new()
            .route("/v1/credentials", axum::routing::get(credentials))
            .with_state(state.clone());
        // Connections are logged when accepted, before any byte is read: a request that never
        // reaches the handler is told apart from one that never reached the agent at all.
        let accepts = state.log.clone();
        let server = runtime.handle().spawn(async move {
            if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
                let listener = listener.tap_io(move |stream| {
                    let peer = stream
                        .peer_addr()
                        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
                    accepts.record(RequestLogEntry::answered(
                        "TCP",
                        "-",
                        "Accept".to_owned(),
                        format!("connection from {peer}"),
                    ));
                });
                let _ = axum::serve(listener, router).await;
            }
        });
        Ok(Self {
            address,
            state,
            server,
            _runtime: runtime,
        })
    }

    /// Binds `address` (e.g. `169.254.170.23:80`, or `127.0.0.1:0` in tests) and starts.
    pub fn bind(
        address: SocketAddr,
        cluster_name: &str,
        default_route: AgentRoute,
    ) -> Result<Self> {
        let listener = StdTcpListener::bind(address)
            .with_context(|| format!("binding the Pod Identity Agent to {address}"))?;
        Self::start(listener, cluster_name, default_route)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://ADDRESS/v1/credentials`: the value of `AWS_CONTAINER_CREDENTIALS_FULL_URI`.
    pub fn credentials_url(&self) -> String {
        format!("http://{}/v1/credentials", self.address)
    }

    pub fn route_namespace(&self, namespace: &str, route: AgentRoute) {
        self.lock_routes()
            .insert(namespace.to_owned(), RoutedClient::new(&route));
    }

    pub fn unroute_namespace(&self, namespace: &str) {
        self.lock_routes().remove(namespace);
    }

    /// Requests answered so far, one entry each (outcome = HTTP status; no tokens or
    /// credentials).
    pub fn request_log(&self) -> Vec<RequestLogEntry> {
        let mut answered = self.state.log.answered();
        answered.retain(|e| e.action != "Accept");
        answered
    }

    /// Every arrival and answer, oldest first: a request still in progress (or stuck) shows
    /// as an arrival without an answer.
    pub fn request_events(&self) -> Vec<RequestLogEntry> {
        self.state.log.entries()
    }

    fn lock_routes(&self) -> std::sync::MutexGuard<'_, HashMap<String, RoutedClient>> {
        self.state.routes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for PodIdentityAgent {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn credentials(State(state): State<Arc<AgentState>>, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let namespace = token_namespace(&token);
    let pending = state.log.arrive(RequestSummary {
        method: "GET".to_owned(),
        path: "/v1/credentials".to_owned(),
        action: "GetCredentials".to_owned(),
        namespace: namespace.clone().unwrap_or_default(),
    });
    let response = if token.is_empty() {
        text_error(
            StatusCode::BAD_REQUEST,
            "Service account token cannot be empty".to_owned(),
        )
    } else {
        let route = namespace
            .and_then(|ns| {
                state
                    .routes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&ns)
                    .cloned()
            })
            .unwrap_or_else(|| state.default_route.clone());
        match tokio::time::timeout(
            hop_budgets::AGENT_REQUEST,
            fetch(&state.cluster_name, &route, &token),
        )
        .await
        {
            Ok(response) => response,
            Err(_) => text_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "the Pod Identity Agent did not finish within {}s (waiting on EKS Auth at {})",
                    hop_budgets::AGENT_REQUEST.as_secs(),
                    route.endpoint
                ),
            ),
        }
    };
    pending.answer(response.status().as_u16().to_string());
    response
}

/// An EKS Auth client for `route`: one attempt, bounded by [`hop_budgets::AGENT_TO_EKS_AUTH`].
fn eks_auth_client(route: &AgentRoute) -> aws_sdk_eksauth::Client {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(hop_budgets::CONNECT)
        .operation_attempt_timeout(hop_budgets::AGENT_TO_EKS_AUTH)
        .operation_timeout(hop_budgets::AGENT_TO_EKS_AUTH)
        .build();
    let config = aws_sdk_eksauth::Config::builder()
        .behavior_version(aws_sdk_eksauth::config::BehaviorVersion::latest())
        .region(aws_sdk_eksauth::config::Region::new(super::REGION))
        .endpoint_url(&route.endpoint)
        .credentials_provider(route.credentials.sdk_credentials())
        .timeout_config(timeouts)
        // A retry would hide the gate's own error behind the agent's timeout.
        .retry_config(RetryConfig::standard().with_max_attempts(1))
        .build();
    aws_sdk_eksauth::Client::from_conf(config)
}

async fn fetch(cluster_name: &str, route: &RoutedClient, token: &str) -> Response {
    let answer = route
        .client
        .assume_role_for_pod_identity()
        .cluster_name(cluster_name)
        .token(token)
        .send()
        .await;
    match answer {
        Ok(out) => {
            let Some(c) = out.credentials() else {
                return text_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "EKS Auth answered without credentials".to_owned(),
                );
            };
            let account_id = out
                .assumed_role_user()
                .and_then(|u| u.arn().split(':').nth(4))
                .unwrap_or_default()
                .to_owned();
            let expiration = c
                .expiration()
                .fmt(aws_sdk_eksauth::primitives::DateTimeFormat::DateTime)
                .unwrap_or_default();
            let body = json!({
                "AccessKeyId": c.access_key_id(),
                "SecretAccessKey": c.secret_access_key(),
                "Token": c.session_token(),
                "AccountId": account_id,
                "Expiration": expiration,
            });
            let mut response = (StatusCode::OK, body.to_string()).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(SdkError::ServiceError(service)) => {
            let status = StatusCode::from_u16(service.raw().status().as_u16())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let request_id = service
                .raw()
                .headers()
                .get("x-amzn-requestid")
                .unwrap_or_default()
                .to_owned();
            let error = service.err();
            text_error(
                status,
                format!(
                    "[{request_id}]: ({}): {}, fault: client",
                    error.code().unwrap_or("Unknown"),
                    error.message().unwrap_or_default()
                ),
            )
        }
        Err(SdkError::TimeoutError(_)) => text_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "EKS Auth at {} did not answer within {}s",
                route.endpoint,
                hop_budgets::AGENT_TO_EKS_AUTH.as_secs()
            ),
        ),
        Err(SdkError::DispatchFailure(failure)) if failure.is_timeout() => text_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "could not connect to EKS Auth at {} within {}s",
                route.endpoint,
                hop_budgets::CONNECT.as_secs()
            ),
        ),
        Err(other) => text_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("calling EKS Auth: {}", DisplayErrorContext(&other)),
        ),
    }
}

/// Go's `http.Error`: text/plain, the message and a newline.
fn text_error(status: StatusCode, message: String) -> Response {
    let mut response = (status, format!("{message}\n")).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}
