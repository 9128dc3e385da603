//! What every emulated Google endpoint shares: the project's IAM and data, the tokens issued so
//! far, the JWKS cache and the request log.

use std::sync::{Arc, OnceLock};

use anyhow::Result;

use super::super::jwks_cache::JwksCache;
use super::super::node_metadata::NodeMetadata;
use super::super::request_log::{RequestLog, RequestLogEntry};
use super::super::signing_key::SigningKey;
use super::pod_resolver::PodResolver;
use super::project_store::ProjectStore;
use super::token_store::TokenStore;
use super::user_store::UserStore;

pub struct GcpState {
    pub project: ProjectStore,
    pub tokens: TokenStore,
    /// Signed-in Google accounts (refresh tokens), for the OAuth token endpoint.
    pub users: UserStore,
    pub jwks: JwksCache,
    pub log: RequestLog,
    pub resolver: Arc<PodResolver>,
    /// The node's other metadata services on the same listener (EC2 and Azure IMDS), and the
    /// namespaces whose node has no GKE metadata server.
    pub node: Arc<NodeMetadata>,
    /// Signs the metadata server's ID tokens (Google's key); generated on first use.
    id_token_key: OnceLock<SigningKey>,
}

impl GcpState {
    pub fn new(jwks: JwksCache, resolver: PodResolver) -> Self {
        let resolver = Arc::new(resolver);
        Self {
            node: Arc::new(NodeMetadata::new(resolver.clone())),
            project: ProjectStore::default(),
            tokens: TokenStore::default(),
            users: UserStore::default(),
            jwks,
            log: RequestLog::default(),
            resolver,
            id_token_key: OnceLock::new(),
        }
    }

    pub fn id_token_key(&self) -> Result<&SigningKey> {
        if let Some(key) = self.id_token_key.get() {
            return Ok(key);
        }
        let key = SigningKey::generate()?;
        Ok(self.id_token_key.get_or_init(|| key))
    }

    /// Records one request; `action` names the API call, `outcome` the status or error.
    pub fn record(&self, method: &str, path: &str, action: String, outcome: String) {
        self.log
            .record(RequestLogEntry::answered(method, path, action, outcome));
    }
}
