//! Where the Azure calls go: `--azure-authority-host` over the pod's AZURE_AUTHORITY_HOST, and the
//! Blob data plane from `--azure-blob-endpoint` / PODIAM_AZURE_BLOB_ENDPOINT (path style), else
//! the public `https://ACCOUNT.blob.core.windows.net`.

use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct AzureTarget {
    /// `--azure-authority-host`: wins over the pod's AZURE_AUTHORITY_HOST.
    pub authority_host: Option<String>,
    /// `--azure-blob-endpoint` (or PODIAM_AZURE_BLOB_ENDPOINT): the account becomes the first
    /// path segment, as with Azurite and the emulators.
    pub blob_endpoint: Option<String>,
    pub timeout: Option<Duration>,
}

impl AzureTarget {
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(Duration::from_secs(15))
    }

    /// `{base}/{account}/{container}` path style with an endpoint, else the public host.
    pub fn container_url(&self, account: &str, container: &str) -> String {
        match &self.blob_endpoint {
            Some(base) => format!("{}/{account}/{container}", base.trim_end_matches('/')),
            None => format!("https://{account}.blob.core.windows.net/{container}"),
        }
    }
}

/// `{authority}/{tenant}/oauth2/v2.0/token`, whatever trailing slash the authority carries.
pub fn token_endpoint(authority_host: &str, tenant_id: &str) -> String {
    format!(
        "{}/{tenant_id}/oauth2/v2.0/token",
        authority_host.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let public = AzureTarget::default();
        assert_eq!(
            public.container_url("mystorageaccount", "mycontainer"),
            "https://mystorageaccount.blob.core.windows.net/mycontainer"
        );
        let emulated = AzureTarget {
            blob_endpoint: Some("http://127.0.0.1:10000/".into()),
            ..Default::default()
        };
        assert_eq!(
            emulated.container_url("mystorageaccount", "mycontainer"),
            "http://127.0.0.1:10000/mystorageaccount/mycontainer"
        );
        assert_eq!(
            token_endpoint("https://login.microsoftonline.com/", "t"),
            "https://login.microsoftonline.com/t/oauth2/v2.0/token"
        );
    }
}
