//! The operator's Google credentials for `bind --gcp-sa`: Application Default Credentials
//! through google-cloud-auth (`GOOGLE_APPLICATION_CREDENTIALS`, then gcloud's well-known
//! `~/.config/gcloud/application_default_credentials.json`, then the metadata server), exactly
//! as Google's Rust client libraries find them. An `authorized_user` file's own `token_uri` is
//! honoured by the crate, which is how the emulators serve tests.

use std::time::Duration;

use google_cloud_auth::credentials::Builder;

use super::CloudError;
use super::gcp_metadata::AccessToken;
use crate::cloud::gcp::SCOPE_CLOUD_PLATFORM;

/// What to tell an operator without usable Google credentials.
pub const LOGIN_HINT: &str = "run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a credentials file";

/// An access token for the operator, scoped to `cloud-platform`.
pub async fn operator_token(timeout: Duration) -> Result<AccessToken, CloudError> {
    // The crate's reqwest uses rustls without choosing a crypto provider: the process's.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let credentials = Builder::default()
        .with_scopes([SCOPE_CLOUD_PLATFORM])
        .build_access_token_credentials()
        .map_err(|e| CloudError::Rejected {
            code: "credentials".into(),
            message: format!(
                "no usable Google application default credentials ({e}); {LOGIN_HINT}"
            ),
        })?;
    // The crate retries transient failures; bound the whole attempt like any other request.
    let token = tokio::time::timeout(timeout, credentials.access_token())
        .await
        .map_err(|_| {
            CloudError::Unreachable(format!(
                "no Google access token within {}s; {LOGIN_HINT}",
                timeout.as_secs()
            ))
        })?
        .map_err(|e| CloudError::Rejected {
            code: "credentials".into(),
            // The crate's messages name the failing step, never the refresh token.
            message: format!("the application default credentials gave no access token ({e})"),
        })?;
    Ok(AccessToken {
        token: token.token,
        expires_in: None,
    })
}
