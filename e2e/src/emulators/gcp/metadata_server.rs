//! The GKE metadata server (gke-metadata-server) as a pod sees it at 169.254.169.254:80:
//! plain HTTP, `Metadata-Flavor: Google` required, identity by source IP.
//!
//! Start-up race: GKE documents that the metadata server "needs a few seconds before it can
//! start accepting requests on a new Pod" and that clients "configured with a short timeout"
//! fail. So a request from a pod younger than `metadataStartupDelaySeconds` is held without
//! an answer until the pod reaches that age: a client with a short timeout sees a timeout, a
//! patient one gets its answer — no status code GKE would not send.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use jsonwebtoken::{Algorithm, Header};
use serde_json::json;
use tokio::net::TcpListener;

use super::iam_roles::may_mint_tokens;
use super::pod_resolver::{Caller, CallingPod};
use super::principal::Principal;
use super::setup::GcpSetup;
use super::state::GcpState;
use crate::emulators::node_metadata::NodeMetadata;

/// GKE's exact answer to a request without the header.
pub const MISSING_FLAVOR_MESSAGE: &str = r#"Missing required header "Metadata-Flavor": "Google""#;
/// Metadata-server tokens are handed out with (just under) an hour left.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3599);
/// The scopes of the GKE metadata server's tokens (its `scopes` item lists them): Cloud APIs
/// and the account's email, so Google's tokeninfo names the account.
const TOKEN_SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/userinfo.email",
];

/// Both ends of the connection: the peer is the caller, the local address tells whether the
/// caller shares the node's network namespace.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionAddresses {
    pub peer: SocketAddr,
    pub local: Option<SocketAddr>,
}

impl Connected<IncomingStream<'_, TcpListener>> for ConnectionAddresses {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        Self {
            peer: *stream.remote_addr(),
            local: stream.io().local_addr().ok(),
        }
    }
}

pub fn router(state: Arc<GcpState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// A metadata answer: status, body, and whether the body is JSON.
struct Answer {
    status: StatusCode,
    body: String,
    json: bool,
}

impl Answer {
    fn text(body: impl Into<String>) -> Self {
        Self {
            status: StatusCode::OK,
            body: body.into(),
            json: false,
        }
    }

    fn json(value: serde_json::Value) -> Self {
        Self {
            status: StatusCode::OK,
            body: value.to_string(),
            json: true,
        }
    }

    fn error(status: StatusCode, body: impl Into<String>) -> Self {
        Self {
            status,
            body: body.into(),
            json: false,
        }
    }

    fn not_found() -> Self {
        Self::error(StatusCode::NOT_FOUND, "Not Found\n")
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let content_type = if self.json {
            "application/json"
        } else {
            "application/text"
        };
        let mut response = (self.status, self.body).into_response();
        let headers = response.headers_mut();
        headers.insert("Metadata-Flavor", HeaderValue::from_static("Google"));
        headers.insert(
            header::SERVER,
            HeaderValue::from_static("GKE Metadata Server"),
        );
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }
}

async fn handle(
    State(state): State<Arc<GcpState>>,
    ConnectInfo(addresses): ConnectInfo<ConnectionAddresses>,
    request: Request,
) -> Response {
    let path = request.uri().path().to_owned();
    let query: Vec<(String, String)> = request
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let has_flavor = request
        .headers()
        .get("Metadata-Flavor")
        .and_then(|v| v.to_str().ok())
        == Some("Google");
    let source = addresses.peer.ip();
    let (answer, who) = if path == "/" {
        // The discovery ping clients send before anything else.
        (Answer::text("computeMetadata/\n"), String::new())
    } else if !has_flavor {
        (
            Answer::error(StatusCode::FORBIDDEN, MISSING_FLAVOR_MESSAGE),
            String::new(),
        )
    } else {
        answer_for_caller(
            &state,
            source,
            addresses.local.map(|a| a.ip()),
            &path,
            &query,
        )
        .await
    };
    state.record(
        request.method().as_str(),
        &path,
        format!("metadata from {source}{who}"),
        answer.status.as_u16().to_string(),
    );
    answer.into_response()
}

async fn answer_for_caller(
    state: &GcpState,
    source: IpAddr,
    local: Option<IpAddr>,
    path: &str,
    query: &[(String, String)],
) -> (Answer, String) {
    let caller = match state.resolver.resolve(source, local).await {
        Ok(caller) => caller,
        Err(err) => {
            return (
                Answer::error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("could not identify the caller: {err:#}\n"),
                ),
                String::new(),
            );
        }
    };
    let project = state.project.snapshot();
    let who = match &caller {
        Caller::Pod(pod) => format!(
            " ({}/{} as {})",
            pod.namespace, pod.name, pod.service_account
        ),
        Caller::Node => " (node)".to_owned(),
        Caller::Unknown => " (unknown)".to_owned(),
    };
    // A namespace whose node declares its service account runs on a node without the GKE
    // metadata server: the Compute Engine metadata server answers with the node's account.
    let node_account = match &caller {
        Caller::Pod(pod) => state.node.gcp_service_account(&pod.namespace),
        Caller::Node | Caller::Unknown => None,
    };
    if let (Caller::Pod(pod), None) = (&caller, &node_account) {
        hold_until_ready(&state.node, pod, project.metadata_startup_delay_seconds).await;
    }
    let identity = match (&caller, node_account) {
        (Caller::Unknown, _) => {
            return (
                Answer::error(
                    StatusCode::FORBIDDEN,
                    format!("No pod or node on this cluster has the address {source}.\n"),
                ),
                who,
            );
        }
        (Caller::Node, _) => Identity::Node(project.node_service_account()),
        (Caller::Pod(_), Some(node_account)) => Identity::Node(node_account),
        (Caller::Pod(pod), None) => match &pod.gsa_annotation {
            Some(gsa) => Identity::Impersonating {
                gsa: gsa.clone(),
                ksa: Principal::gke_service_account(
                    &project.project_number,
                    &project.workload_pool(),
                    &pod.namespace,
                    &pod.service_account,
                ),
            },
            None => Identity::Direct(Principal::gke_service_account(
                &project.project_number,
                &project.workload_pool(),
                &pod.namespace,
                &pod.service_account,
            )),
        },
    };
    (answer(state, &project, &identity, path, query), who)
}

/// Sleeps until the pod is `delay_seconds` old (see the module docs), or until its scenario
/// ends (the runner releases the namespace's held requests).
async fn hold_until_ready(node: &NodeMetadata, pod: &CallingPod, delay_seconds: u64) {
    let Some(started_at) = pod.started_at else {
        return;
    };
    let ready_at = started_at + Duration::from_secs(delay_seconds);
    if let Ok(remaining) = ready_at.duration_since(SystemTime::now()) {
        node.hold(&pod.namespace, remaining).await;
    }
}

/// What the caller is, for Google.
enum Identity {
    /// The node pool's service account (hostNetwork pods, the node).
    Node(String),
    /// A KSA annotated with a GSA: tokens need the GSA's workloadIdentityUser binding.
    Impersonating { gsa: String, ksa: Principal },
    /// A KSA without annotation: federated tokens for the KSA itself.
    Direct(Principal),
}

impl Identity {
    fn email(&self, project: &GcpSetup) -> String {
        match self {
            Self::Node(email) | Self::Impersonating { gsa: email, .. } => email.clone(),
            Self::Direct(_) => project.workload_pool(),
        }
    }
}

fn answer(
    state: &GcpState,
    project: &GcpSetup,
    identity: &Identity,
    path: &str,
    query: &[(String, String)],
) -> Answer {
    let Some(rest) = path.strip_prefix("/computeMetadata/v1/") else {
        return Answer::not_found();
    };
    let param = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let email = identity.email(project);
    match rest {
        "project/project-id" => return Answer::text(&project.project_id),
        "project/numeric-project-id" => return Answer::text(&project.project_number),
        "instance/service-accounts" | "instance/service-accounts/" => {
            return Answer::text(format!("default/\n{email}/\n"));
        }
        _ => {}
    }
    let Some(account_path) = rest.strip_prefix("instance/service-accounts/") else {
        return Answer::not_found();
    };
    let (account, item) = account_path.split_once('/').unwrap_or((account_path, ""));
    if account != "default" && account != email {
        return Answer::not_found();
    }
    match item {
        "" if param("recursive") == Some("true") => Answer::json(json!({
            "aliases": ["default"],
            "email": email,
            "scopes": TOKEN_SCOPES,
        })),
        "" => Answer::text("aliases\nemail\nidentity\nscopes\ntoken\n"),
        "email" => Answer::text(email),
        "aliases" => Answer::text("default"),
        "scopes" => Answer::text(format!("{}\n", TOKEN_SCOPES.join("\n"))),
        "token" => access_token(state, project, identity),
        "identity" => match param("audience").filter(|a| !a.is_empty()) {
            Some(audience) => identity_token(state, project, identity, audience),
            None => Answer::error(
                StatusCode::BAD_REQUEST,
                "non-empty audience parameter required\n",
            ),
        },
        _ => Answer::not_found(),
    }
}

fn access_token(state: &GcpState, project: &GcpSetup, identity: &Identity) -> Answer {
    let principal = match identity {
        Identity::Node(email) => Principal::ServiceAccount(email.clone()),
        Identity::Direct(ksa) => ksa.clone(),
        Identity::Impersonating { gsa, ksa } => {
            if !gsa_trusts(project, gsa, ksa) {
                return Answer::error(
                    StatusCode::FORBIDDEN,
                    "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
                );
            }
            Principal::ServiceAccount(gsa.clone())
        }
    };
    match state
        .tokens
        .issue(principal, TOKEN_LIFETIME, &TOKEN_SCOPES.join(" "))
    {
        Ok(token) => Answer::json(json!({
            "access_token": token,
            "expires_in": TOKEN_LIFETIME.as_secs(),
            "token_type": "Bearer",
        })),
        Err(err) => Answer::error(StatusCode::INTERNAL_SERVER_ERROR, format!("{err:#}\n")),
    }
}

/// An ID token signed by the emulator's "Google" key for the service account.
fn identity_token(
    state: &GcpState,
    project: &GcpSetup,
    identity: &Identity,
    audience: &str,
) -> Answer {
    let denied = || {
        Answer::error(
            StatusCode::FORBIDDEN,
            "Permission 'iam.serviceAccounts.getOpenIdToken' denied on resource (or it may not exist).",
        )
    };
    let email = match identity {
        Identity::Node(email) => email.clone(),
        // Federated principals have no Google-signed ID tokens.
        Identity::Direct(_) => return denied(),
        Identity::Impersonating { gsa, ksa } => {
            if !gsa_trusts(project, gsa, ksa) {
                return denied();
            }
            gsa.clone()
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let unique_id = super::principal::unique_id(&email);
    let claims = json!({
        "iss": "https://accounts.google.com",
        "aud": audience,
        "azp": unique_id,
        "sub": unique_id,
        "email": email,
        "email_verified": true,
        "iat": now,
        "exp": now + 3600,
    });
    let key = match state.id_token_key() {
        Ok(key) => key,
        Err(err) => return Answer::error(StatusCode::INTERNAL_SERVER_ERROR, format!("{err:#}\n")),
    };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid().to_owned());
    match jsonwebtoken::encode(&header, &claims, key.encoding_key()) {
        Ok(jwt) => Answer::text(jwt),
        Err(err) => Answer::error(StatusCode::INTERNAL_SERVER_ERROR, format!("{err}\n")),
    }
}

/// The GSA exists and grants the KSA `roles/iam.workloadIdentityUser` (or token creator).
fn gsa_trusts(project: &GcpSetup, gsa: &str, ksa: &Principal) -> bool {
    project
        .service_accounts
        .iter()
        .find(|a| a.email.eq_ignore_ascii_case(gsa))
        .is_some_and(|account| may_mint_tokens(&account.iam_policy.bindings, ksa))
}
