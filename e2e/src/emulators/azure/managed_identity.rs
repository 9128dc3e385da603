//! Access tokens for a node's managed identity, as Azure IMDS hands them out: signed by the
//! Entra emulator's key for its tenant, so the Blob front accepts them like any Entra token
//! and authorizes the identity by its role assignments.

use std::sync::Arc;

use anyhow::Result;

use super::super::signing_key::SigningKey;
use super::access_token::{AccessTokenClaims, IssuedToken, issue_for_principal};
use super::directory::Directory;

/// Shared with the node metadata emulator (emulator-side code only).
#[derive(Clone)]
pub struct ManagedIdentityTokens {
    directory: Directory,
    key: Arc<SigningKey>,
}

/// An issued token and its claims. Debug never shows the token.
pub struct ManagedIdentityToken {
    pub token: String,
    pub claims: AccessTokenClaims,
}

impl std::fmt::Debug for ManagedIdentityToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedIdentityToken")
            .field("token", &"<redacted>")
            .field("claims", &self.claims)
            .finish()
    }
}

impl ManagedIdentityTokens {
    pub fn new(directory: Directory, key: Arc<SigningKey>) -> Self {
        Self { directory, key }
    }

    /// A token for the identity (`client_id`, object id `principal_id`) and `resource` (the
    /// audience, as requested), recorded among the tenant's issued tokens.
    pub fn issue(
        &self,
        client_id: &str,
        principal_id: &str,
        resource: &str,
        now: i64,
    ) -> Result<ManagedIdentityToken> {
        let tenant_id = self.directory.snapshot().tenant_id;
        let (token, claims) = issue_for_principal(
            &self.key,
            client_id,
            principal_id,
            &tenant_id,
            resource,
            Vec::new(),
            now,
        )?;
        self.directory.record_issued(IssuedToken {
            client_id: client_id.to_owned(),
            tenant_id,
            object_id: principal_id.to_owned(),
            audience: resource.to_owned(),
            credential: "managed identity (node)".to_owned(),
            expires_at: claims.exp,
        });
        Ok(ManagedIdentityToken { token, claims })
    }
}
