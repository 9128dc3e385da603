//! The one JSON line the probe prints: the contract with the plugin
//! (`kubectl-podiam/src/ephemeral/report.rs` reads it; both are tested against
//! `probe/tests/fixtures/report.json`). It holds no secret by construction: no field carries a
//! token, a credential or an answer's body; cloud error messages are cut short.

use serde::Serialize;

use crate::jwt::Claims;

/// Bumped when a field changes meaning; the plugin refuses other versions.
pub const SCHEMA: u32 = 1;
/// Longest cloud error message kept.
pub const MESSAGE_CHARS: usize = 300;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub podiam_probe: u32,
    pub version: String,
    /// aws-irsa, aws-pod-identity, azure-workload-identity, gcp-external-account,
    /// gcp-metadata, none.
    pub mechanism: String,
    pub user: User,
    /// `target-process` (the target's /proc/<pid>/environ) or `own` (the env the plugin copied
    /// from the spec).
    pub env_source: String,
    pub target_pid: Option<u32>,
    /// What made the calls: the probe and the proxy rules it applies.
    pub client: String,
    pub token: Option<TokenRead>,
    pub calls: Vec<Call>,
    pub identity: Option<Identity>,
    pub node: Option<Node>,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// The target process's uid, when visible.
    pub target_uid: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TokenRead {
    pub variable: String,
    pub path: String,
    pub read: bool,
    pub error: Option<String>,
    pub bytes: usize,
    pub claims: Option<Claims>,
}

/// One HTTP call: an answer (status, the cloud's error code) or a failure with its cause.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Call {
    /// e.g. `sts:AssumeRoleWithWebIdentity`, `sts:GetCallerIdentity`; the node's calls are
    /// prefixed `node:` (`node:imds:token`, `node:sts:GetCallerIdentity`).
    pub step: String,
    pub url: String,
    /// Why the pod's SDK calls this URL.
    pub because: String,
    pub proxy: Option<String>,
    pub ca: Option<String>,
    pub status: Option<u16>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub failure: Option<Failure>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Failure {
    /// dns, refused, no-route, timeout, tls-untrusted, tls-name, tls, proxy, other.
    pub cause: String,
    pub detail: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Identity {
    pub provider: String,
    pub principal: String,
    /// The endpoint that answered with it.
    pub endpoint: String,
    /// More about the principal (Azure: object id and tenant).
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Node {
    pub asked: Vec<String>,
    pub reached: Option<NodeReached>,
    pub not_reached: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeReached {
    pub provider: String,
    pub principal: String,
    pub via: String,
}

impl Report {
    pub fn line(&self) -> String {
        serde_json::to_string(self).expect("a report serializes")
    }
}

pub fn short(message: &str) -> String {
    message.chars().take(MESSAGE_CHARS).collect()
}
