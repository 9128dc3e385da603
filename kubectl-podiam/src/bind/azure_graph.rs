//! The Entra half of an AKS workload-identity binding, as `azwi serviceaccount create`'s
//! `federated-identity` phase writes it: a federated identity credential on the application,
//! named as azwi names it (base64url of SHA-256 over `NS-SA-ISSUER`), trusting the cluster's
//! issuer exactly as the cluster reports it, subject `system:serviceaccount:NS:SA`, audience
//! `api://AzureADTokenExchange`. Microsoft Graph v1.0 is called with plain HTTPS (reqwest,
//! rustls honouring SSL_CERT_FILE) and a token from the operator's credential.
//!
//! Operator credential: azure_identity's `ClientSecretCredential` when AZURE_CLIENT_ID,
//! AZURE_CLIENT_SECRET and a tenant are set (the SDKs' environment convention, what CI uses),
//! at the authority `--azure-authority-host`, else AZURE_AUTHORITY_HOST, else Entra's public
//! one; otherwise `DeveloperToolsCredential` (Azure CLI, then azd: the operator's `az login`).

use std::sync::Arc;
use std::time::Duration;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, RetryOptions};
use azure_identity::{
    ClientSecretCredential, ClientSecretCredentialOptions, DeveloperToolsCredential,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::cloud::azure as a;
use crate::error::{Error, Result};
use crate::exchange::CloudError;
use crate::exchange::azure_entra::error_chain;

/// Microsoft Graph's public endpoint, and the resource its tokens are for.
pub const PUBLIC_GRAPH_ENDPOINT: &str = "https://graph.microsoft.com";
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// Entra refuses a 21st federated identity credential on one application.
pub const MAX_CREDENTIALS_PER_APPLICATION: usize = 20;

/// Where the operator's Azure calls go (the same overrides as verify).
#[derive(Debug, Clone, Default)]
pub struct AzureBindTarget {
    /// `--azure-authority-host`, else AZURE_AUTHORITY_HOST.
    pub authority_host: Option<String>,
    /// `--azure-graph-endpoint` / PODIAM_AZURE_GRAPH_ENDPOINT, else the public Graph.
    pub graph_endpoint: Option<String>,
    pub timeout: Option<Duration>,
}

impl AzureBindTarget {
    fn graph_base(&self) -> String {
        format!(
            "{}/v1.0",
            self.graph_endpoint
                .as_deref()
                .unwrap_or(PUBLIC_GRAPH_ENDPOINT)
                .trim_end_matches('/')
        )
    }

    fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(Duration::from_secs(30))
    }
}

/// A federated identity credential as Graph returns and accepts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederatedCredential {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    pub issuer: String,
    pub subject: String,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The application whose credentials the binding changes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// The object id (Graph's key), not the client id.
    pub id: String,
    pub app_id: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

/// One Graph call of a binding.
#[derive(Debug, Clone, PartialEq)]
pub enum GraphOperation {
    CreateFederatedCredential {
        application: String,
        client_id: String,
        credential: Box<FederatedCredential>,
    },
    UpdateFederatedCredential {
        application: String,
        client_id: String,
        /// Id (or name) of the credential being changed.
        credential_id: String,
        before: Box<FederatedCredential>,
        after: Box<FederatedCredential>,
    },
}

impl GraphOperation {
    pub fn undo_hint(&self) -> String {
        match self {
            GraphOperation::CreateFederatedCredential {
                client_id,
                credential,
                ..
            } => format!(
                "az ad app federated-credential delete --id {client_id} --federated-credential-id {}",
                credential.name
            ),
            GraphOperation::UpdateFederatedCredential {
                client_id,
                credential_id,
                before,
                ..
            } => format!(
                "az ad app federated-credential update --id {client_id} --federated-credential-id {credential_id} --parameters '{}'",
                json!({
                    "issuer": before.issuer,
                    "subject": before.subject,
                    "audiences": before.audiences,
                })
            ),
        }
    }
}

/// azwi's credential name: base64url (padded) of SHA-256 over `NAMESPACE-NAME-ISSUER`, so a
/// re-run finds the same credential and two clusters' issuers never collide.
pub fn credential_name(namespace: &str, service_account: &str, issuer: &str) -> String {
    URL_SAFE.encode(Sha256::digest(
        format!("{namespace}-{service_account}-{issuer}").as_bytes(),
    ))
}

/// The operator's Graph session: a credential from the standard chain and an HTTP client.
pub struct GraphSession {
    credential: Arc<dyn TokenCredential>,
    /// Which credential, for messages: "the client secret of AZURE_CLIENT_ID …" or "az login".
    pub source: String,
    http: reqwest::Client,
    base: String,
}

impl GraphSession {
    /// The standard chain: a client secret from the environment, else the developer tools.
    pub fn from_environment(target: &AzureBindTarget, tenant_id: Option<&str>) -> Result<Self> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let authority = target
            .authority_host
            .clone()
            .or_else(|| env(a::ENV_AUTHORITY_HOST));
        let (credential, source): (Arc<dyn TokenCredential>, String) = match (
            env(a::ENV_CLIENT_ID),
            env(a::ENV_CLIENT_SECRET),
        ) {
            (Some(client_id), Some(secret)) => {
                let tenant = env(a::ENV_TENANT_ID)
                        .or_else(|| tenant_id.map(str::to_owned))
                        .ok_or_else(|| {
                            Error::Usage(
                                "AZURE_CLIENT_SECRET is set but no tenant: set AZURE_TENANT_ID (or pass --azure-tenant-id)".into(),
                            )
                        })?;
                let mut client_options = ClientOptions {
                    retry: RetryOptions::none(),
                    ..Default::default()
                };
                if let Some(authority) = &authority {
                    let mut custom = CustomConfiguration::default();
                    custom.authority_host = authority.clone();
                    client_options.cloud = Some(Arc::new(CloudConfiguration::Custom(custom)));
                }
                let credential = ClientSecretCredential::new(
                    &tenant,
                    client_id.clone(),
                    Secret::new(secret),
                    Some(ClientSecretCredentialOptions { client_options }),
                )
                .map_err(|e| Error::Usage(format!("Azure operator credential: {e}")))?;
                (
                    credential,
                    format!(
                        "the client secret of application {client_id} (AZURE_CLIENT_ID) in tenant {tenant}"
                    ),
                )
            }
            _ => (
                DeveloperToolsCredential::new(None)
                    .map_err(|e| Error::Usage(format!("Azure operator credential: {e}")))?,
                "the Azure CLI / azd login (no AZURE_CLIENT_ID + AZURE_CLIENT_SECRET)".into(),
            ),
        };
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(target.timeout())
            .connect_timeout(target.timeout())
            .build()
            .map_err(|e| Error::Cloud(format!("no HTTP client for Microsoft Graph: {e}")))?;
        Ok(Self {
            credential,
            source,
            http,
            base: target.graph_base(),
        })
    }

    async fn token(&self) -> Result<String> {
        let token = self
            .credential
            .get_token(&[GRAPH_SCOPE], None)
            .await
            .map_err(|e| {
                Error::Cloud(format!(
                    "no Microsoft Graph token from {}: {}",
                    self.source,
                    error_chain(&e)
                ))
            })?;
        Ok(token.token.secret().to_owned())
    }

    /// One Graph call; an error answer becomes `code: message` as Graph put it.
    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> std::result::Result<Option<Value>, CloudError> {
        let token = self
            .token()
            .await
            .map_err(|e| CloudError::Unreachable(e.to_string()))?;
        let mut request = self.http.request(method, url).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| CloudError::Unreachable(error_chain(&e)))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| CloudError::Unreachable(error_chain(&e)))?;
        if status.is_success() {
            if text.trim().is_empty() {
                return Ok(None);
            }
            return serde_json::from_str(&text).map(Some).map_err(|e| {
                CloudError::Unreachable(format!("Microsoft Graph answered non-JSON: {e}"))
            });
        }
        Err(graph_error(status.as_u16(), &text))
    }

    /// The application with this client id, or `None`.
    pub async fn application(&self, client_id: &str) -> Result<Option<Application>> {
        let url = reqwest::Url::parse_with_params(
            &format!("{}/applications", self.base),
            &[("$filter", format!("appId eq '{client_id}'"))],
        )
        .map_err(|e| Error::Usage(format!("Microsoft Graph endpoint {}: {e}", self.base)))?;
        let answer = self
            .call(reqwest::Method::GET, url.as_str(), None)
            .await
            .map_err(|e| cloud("GET /applications?$filter=appId eq …", e))?
            .unwrap_or_default();
        let found = answer
            .get("value")
            .and_then(Value::as_array)
            .and_then(|items| items.first())
            .cloned();
        found
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| Error::Cloud(format!("Microsoft Graph application: {e}")))
    }

    pub async fn federated_credentials(
        &self,
        application: &Application,
    ) -> Result<Vec<FederatedCredential>> {
        let url = format!(
            "{}/applications/{}/federatedIdentityCredentials",
            self.base, application.id
        );
        let answer = self
            .call(reqwest::Method::GET, &url, None)
            .await
            .map_err(|e| {
                cloud(
                    &format!(
                        "GET /applications/{}/federatedIdentityCredentials",
                        application.id
                    ),
                    e,
                )
            })?
            .unwrap_or_default();
        answer
            .get("value")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .map(Option::unwrap_or_default)
            .map_err(|e| Error::Cloud(format!("Microsoft Graph federated credentials: {e}")))
    }

    pub async fn apply(&self, operation: &GraphOperation) -> Result<()> {
        match operation {
            GraphOperation::CreateFederatedCredential {
                application,
                credential,
                ..
            } => {
                let url = format!(
                    "{}/applications/{application}/federatedIdentityCredentials",
                    self.base
                );
                let body =
                    serde_json::to_value(credential).map_err(|e| Error::Cloud(e.to_string()))?;
                self.call(reqwest::Method::POST, &url, Some(&body))
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        cloud(
                            &format!(
                                "POST /applications/{application}/federatedIdentityCredentials ({})",
                                credential.name
                            ),
                            e,
                        )
                    })
            }
            GraphOperation::UpdateFederatedCredential {
                application,
                credential_id,
                after,
                ..
            } => {
                let url = format!(
                    "{}/applications/{application}/federatedIdentityCredentials/{credential_id}",
                    self.base
                );
                let body = json!({
                    "issuer": after.issuer,
                    "subject": after.subject,
                    "audiences": after.audiences,
                });
                self.call(reqwest::Method::PATCH, &url, Some(&body))
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        cloud(
                            &format!(
                                "PATCH /applications/{application}/federatedIdentityCredentials/{credential_id}"
                            ),
                            e,
                        )
                    })
            }
        }
    }
}

fn cloud(what: &str, e: CloudError) -> Error {
    match e {
        CloudError::Unreachable(m) => Error::Cloud(format!("Microsoft Graph {what}: {m}")),
        CloudError::Rejected { code, message } => {
            let hint = if code == "Authorization_RequestDenied" {
                " (the operator needs Application.ReadWrite.All, or Application.ReadWrite.OwnedBy as an owner of the application)"
            } else {
                ""
            };
            Error::Cloud(format!("Microsoft Graph {what}: {code}: {message}{hint}"))
        }
    }
}

/// `{"error": {"code", "message"}}`, else the status and the first line of the body.
fn graph_error(status: u16, body: &str) -> CloudError {
    let parsed: Option<(String, String)> = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        let error = v.get("error")?;
        Some((
            error.get("code")?.as_str()?.to_owned(),
            error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        ))
    });
    let (code, message) = parsed.unwrap_or_else(|| {
        (
            format!("HTTP {status}"),
            body.lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect(),
        )
    });
    CloudError::Rejected { code, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_names_follow_azwi() {
        let name = credential_name("default", "aks-service-account", "https://oidc.example/x/");
        // SHA-256 is 32 bytes: 44 base64 characters with one '=' of padding, URL-safe alphabet.
        assert_eq!(name.len(), 44);
        assert!(name.ends_with('='));
        assert!(!name.contains('+') && !name.contains('/'));
        assert_ne!(
            name,
            credential_name("default", "aks-service-account", "https://oidc.example/x")
        );
        assert_eq!(
            name,
            credential_name("default", "aks-service-account", "https://oidc.example/x/")
        );
    }

    #[test]
    fn graph_errors_keep_code_and_message() {
        let e = graph_error(
            409,
            r#"{"error":{"code":"Request_MultipleObjectsWithSameKeyValue","message":"FederatedIdentityCredential with name main already exists.","innerError":{}}}"#,
        );
        assert_eq!(
            e,
            CloudError::Rejected {
                code: "Request_MultipleObjectsWithSameKeyValue".into(),
                message: "FederatedIdentityCredential with name main already exists.".into()
            }
        );
        assert_eq!(
            graph_error(502, "Bad Gateway\nmore"),
            CloudError::Rejected {
                code: "HTTP 502".into(),
                message: "Bad Gateway".into()
            }
        );
    }

    #[test]
    fn undo_hints_name_the_credential() {
        let credential = FederatedCredential {
            id: None,
            name: "n".into(),
            issuer: "https://i/".into(),
            subject: "system:serviceaccount:d:s".into(),
            audiences: vec![a::AUDIENCE.into()],
            description: None,
        };
        let create = GraphOperation::CreateFederatedCredential {
            application: "obj".into(),
            client_id: "cid".into(),
            credential: Box::new(credential.clone()),
        };
        assert_eq!(
            create.undo_hint(),
            "az ad app federated-credential delete --id cid --federated-credential-id n"
        );
        let update = GraphOperation::UpdateFederatedCredential {
            application: "obj".into(),
            client_id: "cid".into(),
            credential_id: "fid".into(),
            before: Box::new(credential.clone()),
            after: Box::new(credential),
        };
        assert!(update.undo_hint().contains("--federated-credential-id fid"));
        assert!(update.undo_hint().contains("https://i/"));
    }
}
