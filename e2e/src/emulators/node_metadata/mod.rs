//! The node's own metadata services as a pod reaches them at 169.254.169.254:80, besides the
//! GKE metadata server (`/computeMetadata/`, in [`super::gcp`]) on the same listener: EC2's
//! IMDS (`/latest/`, IMDSv2 tokens, hop limit) and Azure's IMDS managed identity endpoint
//! (`/metadata/`). A pod whose SDK finds no other credentials falls back to these and gets the
//! node's identity; the scenario declares that identity per namespace (`spec.setup.node`), and
//! callers are told apart by source address (the pod's IP → its namespace).

mod aws_imds;
mod azure_imds;
mod ec2_instance;
mod ec2_trust;
pub mod held_requests;
mod imds_token;
mod node_route;
pub mod node_setup;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use axum::Router;
use axum::routing::any;

use super::gcp::{ConnectionAddresses, Location, PodResolver};
use super::request_log::{RequestLog, RequestLogEntry};
use imds_token::ImdsTokens;

pub use ec2_instance::Ec2Instance;
pub use node_route::{AwsBackend, NodeRoute};
pub use node_setup::{
    AwsNodeSetup, AzureNodeSetup, GcpNodeSetup, HttpTokens, ManagedIdentitySetup, NodeSetup,
};

/// How long a token request that the hop limit would drop is held before the connection is
/// closed without an answer: longer than SDKs wait (1–2 s), bounded so nothing hangs.
pub const DEFAULT_DROP_HOLD: Duration = Duration::from_secs(10);

/// The routes, the IMDSv2 tokens and the log the node metadata handlers share.
pub struct NodeMetadata {
    resolver: Arc<PodResolver>,
    routes: Mutex<HashMap<String, NodeRoute>>,
    tokens: ImdsTokens,
    log: RequestLog,
    drop_hold: Duration,
    /// Requests held open on purpose (here and by the GKE metadata server), per namespace.
    held: held_requests::HeldRequests,
    /// For moto (instance role credentials).
    http: reqwest::Client,
}

/// A caller and the node that serves it.
struct NodeCaller {
    location: Location,
    /// The namespace whose node answers (`None`: the default node, without identity).
    namespace: Option<String>,
    route: Option<NodeRoute>,
}

impl NodeCaller {
    fn describe(&self) -> String {
        match &self.location {
            Location::Pod { namespace, name } => format!("{namespace}/{name}"),
            Location::Node => "node".to_owned(),
            Location::Unknown => "unknown".to_owned(),
        }
    }

    fn is_pod(&self) -> bool {
        matches!(self.location, Location::Pod { .. })
    }

    /// The calling pod's namespace (whichever node answers it).
    fn pod_namespace(&self) -> Option<&str> {
        match &self.location {
            Location::Pod { namespace, .. } => Some(namespace),
            Location::Node | Location::Unknown => None,
        }
    }
}

impl NodeMetadata {
    pub fn new(resolver: Arc<PodResolver>) -> Self {
        Self {
            resolver,
            routes: Mutex::new(HashMap::new()),
            tokens: ImdsTokens::default(),
            log: RequestLog::default(),
            drop_hold: DEFAULT_DROP_HOLD,
            held: held_requests::HeldRequests::default(),
            http: reqwest::Client::new(),
        }
    }

    /// Holds dropped token requests for `hold` instead of [`DEFAULT_DROP_HOLD`] (tests).
    pub fn with_drop_hold(mut self, hold: Duration) -> Self {
        self.drop_hold = hold;
        self
    }

    /// Pods of `namespace` are answered with `route`'s node until [`Self::unroute_namespace`].
    pub fn route_namespace(&self, namespace: &str, route: NodeRoute) {
        self.lock_routes().insert(namespace.to_owned(), route);
    }

    pub fn unroute_namespace(&self, namespace: &str) {
        self.lock_routes().remove(namespace);
    }

    /// Ends every request held open for pods of `namespace` (its scenario is over).
    pub fn release_held(&self, namespace: &str) {
        self.held.release(namespace);
    }

    /// Requests held open right now.
    pub fn held_count(&self) -> usize {
        self.held.count()
    }

    /// Holds a pod's request for `duration` or until its namespace is released.
    pub(crate) async fn hold(&self, namespace: &str, duration: Duration) -> held_requests::HoldEnd {
        self.held.hold(namespace, duration).await
    }

    /// The node service account declared for `namespace`'s node (GCE metadata, no GKE
    /// metadata server), if any.
    pub fn gcp_service_account(&self, namespace: &str) -> Option<String> {
        self.lock_routes()
            .get(namespace)
            .and_then(|route| route.node.gcp.as_ref())
            .map(|gcp| gcp.service_account.clone())
    }

    /// Requests answered so far (status only; no tokens or credentials).
    pub fn request_log(&self) -> Vec<RequestLogEntry> {
        self.log.entries()
    }

    async fn caller(&self, addresses: ConnectionAddresses) -> Result<NodeCaller> {
        let location = self
            .resolver
            .locate(addresses.peer.ip(), addresses.local.map(|a| a.ip()))
            .await?;
        let namespace = match &location {
            Location::Pod { namespace, .. } => Some(namespace.clone()),
            Location::Node | Location::Unknown => None,
        };
        let route = namespace
            .as_deref()
            .and_then(|ns| self.lock_routes().get(ns).cloned());
        // A namespace nobody declared is served by the default node, like unknown callers.
        let namespace = route.is_some().then_some(namespace).flatten();
        Ok(NodeCaller {
            location,
            namespace,
            route,
        })
    }

    /// `outcome`: the status sent, or why nothing was.
    fn record(&self, method: &str, path: &str, action: String, outcome: impl ToString) {
        self.log.record(RequestLogEntry::answered(
            method,
            path,
            action,
            outcome.to_string(),
        ));
    }

    fn lock_routes(&self) -> std::sync::MutexGuard<'_, HashMap<String, NodeRoute>> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// EC2 IMDS under `/latest/`, Azure IMDS under `/metadata/`; merged with the GKE metadata
/// server's router (whose fallback serves everything else).
pub fn router(state: Arc<NodeMetadata>) -> Router {
    Router::new()
        .route("/latest", any(aws_imds::handle))
        .route("/latest/", any(aws_imds::handle))
        .route("/latest/{*path}", any(aws_imds::handle))
        .route("/metadata/{*path}", any(azure_imds::handle))
        .with_state(state)
}
