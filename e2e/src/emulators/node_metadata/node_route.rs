//! What serves one namespace's node: its declared identity and the emulated clouds that back
//! it (the worker's moto for the instance role, the Azure emulators' token signer).

use super::super::azure::ManagedIdentityTokens;
use super::super::credentials::AdminCredentials;
use super::node_setup::NodeSetup;

#[derive(Clone)]
pub struct NodeRoute {
    pub node: NodeSetup,
    /// Where the instance role's credentials are minted; `None`: no AWS account behind it.
    pub aws: Option<AwsBackend>,
    /// Signs the managed identity's access tokens; `None`: no Entra behind it.
    pub azure: Option<ManagedIdentityTokens>,
}

/// The emulated AWS account of a scenario worker.
#[derive(Clone, Debug)]
pub struct AwsBackend {
    pub moto_url: String,
    pub admin: AdminCredentials,
    pub account_id: String,
    pub region: String,
}
