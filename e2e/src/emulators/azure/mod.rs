//! Azure emulators for AKS Workload Identity: an Entra ID token endpoint that judges
//! federated client assertions as Entra does (exact issuer, subject and audience; the issuer's
//! keys fetched over HTTPS; AADSTS errors with Entra's codes and statuses), and the Blob data
//! plane behind Azure RBAC (`Storage Blob Data *` role assignments).
//!
//! The Blob side keeps its contents in memory instead of forwarding to Azurite: listing,
//! reading and writing block blobs is all podiam checks, and the front's authorization is the
//! part Azurite cannot provide (it accepts any well-formed bearer token).
//!
//! Microsoft Graph (applications and their federated identity credentials) is served on its
//! own HTTPS port with the same CA, for `bind`; its caller is the built-in operator principal
//! (client secret grant at the Entra endpoint, Graph permissions from the setup).

mod access_token;
mod azure_emulators;
mod blob_error;
mod blob_front;
mod blob_store;
mod directory;
mod entra;
mod entra_error;
mod federated_assertion;
mod graph;
mod graph_error;
mod managed_identity;
mod role_assignments;
pub mod setup;

pub use access_token::{AccessTokenClaims, IssuedToken, object_id_for, token_issuer};
pub use azure_emulators::{
    AZURE_CA_FILE_NAME, AzureEmulatorOptions, AzureEmulators, CA_BUNDLE_FILE_NAME,
};
pub use blob_front::STORAGE_RESOURCE;
pub use entra::JWT_BEARER_ASSERTION_TYPE;
pub use graph::{GRAPH_RESOURCE, application_object_id, credential_id};
pub use managed_identity::{ManagedIdentityToken, ManagedIdentityTokens};
pub use setup::{
    AzureSetup, DEFAULT_TENANT_ID, OPERATOR_CLIENT_ID, SEED_CLIENT_ID, TOKEN_EXCHANGE_AUDIENCE,
};
