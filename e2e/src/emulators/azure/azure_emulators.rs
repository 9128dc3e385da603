//! Everything an Azure workload-identity test needs, started together: the Entra token
//! endpoint (HTTPS, its own CA) and the Blob data plane behind Azure's authorization.

use std::fs;
use std::net::{IpAddr, SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use jsonwebtoken::DecodingKey;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::super::background_runtime::BackgroundRuntime;
use super::super::jwks_cache::JwksCache;
use super::super::request_log::{RequestLog, RequestLogEntry};
use super::super::signing_key::SigningKey;
use super::access_token::IssuedToken;
use super::blob_front::{self, BlobState};
use super::blob_store::BlobStore;
use super::directory::Directory;
use super::entra::{self, EntraState, TokenFaults};
use super::graph::{self, GraphState};
use super::managed_identity::ManagedIdentityTokens;
use super::setup::AzureSetup;
use crate::https_server::serve_https;
use crate::setup::{CloudSetup, SetupVariables};
use crate::webhooks::tls::serving_tls;

/// File name of the emulators' CA certificate inside the state directory.
pub const AZURE_CA_FILE_NAME: &str = "azure-ca.pem";

/// File name of the bundle: this CA plus every trusted issuer CA (`SSL_CERT_FILE` for clients).
pub const CA_BUNDLE_FILE_NAME: &str = "ca-bundle.pem";

/// How to start [`AzureEmulators`].
#[derive(Debug, Clone)]
pub struct AzureEmulatorOptions {
    /// Where the CA file goes. `None`: a temporary directory removed on drop.
    pub state_dir: Option<PathBuf>,
    /// Address the Entra endpoint listens on. `127.0.0.1` for host-only tests; `0.0.0.0` when
    /// pods must reach it (the pod bridge appears only once the cluster is up).
    pub entra_bind_ip: IpAddr,
    /// Host pods and the plugin use in `AZURE_AUTHORITY_HOST` (default `127.0.0.1`). It is
    /// in the certificate, as are 127.0.0.1, localhost and the host's address on the pod bridge
    /// (`cluster::pod_host_ip`).
    pub authority_hostname: String,
    /// CA PEM files to trust when fetching issuers' OIDC discovery and JWKS (the cluster's
    /// issuer CA).
    pub trusted_ca_files: Vec<PathBuf>,
}

impl Default for AzureEmulatorOptions {
    fn default() -> Self {
        Self {
            state_dir: None,
            entra_bind_ip: IpAddr::from([127, 0, 0, 1]),
            authority_hostname: "127.0.0.1".to_owned(),
            trusted_ca_files: Vec::new(),
        }
    }
}

/// Running Azure emulators. Dropping this stops the servers.
pub struct AzureEmulators {
    directory: Directory,
    /// Entra's token-signing key, shared with the node's managed identity endpoint.
    signing_key: Arc<SigningKey>,
    store: BlobStore,
    log: RequestLog,
    entra_url: String,
    authority_host: String,
    blob_endpoint: String,
    blob_https_endpoint: String,
    graph_endpoint: String,
    operator_secret: String,
    entra_faults: Arc<TokenFaults>,
    ca_file: PathBuf,
    ca_bundle_file: PathBuf,
    servers: Vec<JoinHandle<()>>,
    _temporary_state_dir: Option<tempfile::TempDir>,
    // Last: the servers above run on it.
    _runtime: BackgroundRuntime,
}

fn listen(ip: IpAddr) -> Result<StdTcpListener> {
    let listener = StdTcpListener::bind(SocketAddr::new(ip, 0))
        .with_context(|| format!("binding an Azure emulator port on {ip}"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

impl AzureEmulators {
    /// Starts the Entra endpoint and the Blob front, empty (see [`Self::apply`]).
    pub async fn start(options: AzureEmulatorOptions) -> Result<Self> {
        let (state_dir, temporary_state_dir) = match &options.state_dir {
            Some(dir) => {
                fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                (dir.clone(), None)
            }
            None => {
                let temp = tempfile::TempDir::with_prefix("podiam-azure-")?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let mut san_ips: Vec<IpAddr> = vec![crate::cluster::pod_host_ip().into()];
        if let Ok(ip) = options.authority_hostname.parse::<IpAddr>() {
            san_ips.push(ip);
        }
        let tls = serving_tls("Entra ID emulator (podiam-e2e)", &san_ips)?;
        let ca_file = state_dir.join(AZURE_CA_FILE_NAME);
        fs::write(&ca_file, &tls.ca_pem)
            .with_context(|| format!("writing {}", ca_file.display()))?;

        let mut trusted = Vec::new();
        for file in &options.trusted_ca_files {
            trusted.push(
                fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?,
            );
        }
        let ca_bundle_file = state_dir.join(CA_BUNDLE_FILE_NAME);
        let mut bundle = tls.ca_pem.clone();
        for pem in &trusted {
            bundle.push_str(pem);
            if !pem.ends_with('\n') {
                bundle.push('\n');
            }
        }
        fs::write(&ca_bundle_file, bundle)
            .with_context(|| format!("writing {}", ca_bundle_file.display()))?;
        let jwks = JwksCache::new(&trusted)?;
        let signing_key = Arc::new(SigningKey::generate()?);
        let token_key = DecodingKey::from_jwk(&signing_key.jwks().keys[0])
            .context("the emulator's own public key")?;
        let operator_secret = random_secret()?;

        let entra_listener = listen(options.entra_bind_ip)?;
        let entra_port = entra_listener.local_addr()?.port();
        let blob_listener = listen(IpAddr::from([127, 0, 0, 1]))?;
        let blob_https_listener = listen(IpAddr::from([127, 0, 0, 1]))?;
        let graph_listener = listen(IpAddr::from([127, 0, 0, 1]))?;
        let graph_endpoint = format!("https://127.0.0.1:{}", graph_listener.local_addr()?.port());
        let entra_url = format!("https://127.0.0.1:{entra_port}");
        let authority_base = format!("https://{}:{entra_port}", options.authority_hostname);
        let blob_endpoint = format!("http://127.0.0.1:{}", blob_listener.local_addr()?.port());
        let blob_https_endpoint = format!(
            "https://127.0.0.1:{}",
            blob_https_listener.local_addr()?.port()
        );

        let directory = Directory::default();
        let store = BlobStore::default();
        let log = RequestLog::default();
        let entra_faults = Arc::new(TokenFaults::default());
        let entra_router = entra::router(Arc::new(EntraState {
            directory: directory.clone(),
            jwks,
            signing_key: signing_key.clone(),
            log: log.clone(),
            public_url: authority_base.clone(),
            operator_secret: operator_secret.clone(),
            faults: entra_faults.clone(),
        }));
        let graph_router = graph::router(Arc::new(GraphState {
            directory: directory.clone(),
            token_key: token_key.clone(),
            log: log.clone(),
        }));
        let blob_router = blob_front::router(Arc::new(BlobState {
            directory: directory.clone(),
            store: store.clone(),
            token_key,
            log: log.clone(),
            authority: authority_base.clone(),
        }));

        let runtime = BackgroundRuntime::new()?;
        let handle = runtime.handle();
        let entra_tls = tls.config.clone();
        let https_blob_router = blob_router.clone();
        let blob_tls = tls.config.clone();
        let graph_tls = tls.config;
        let servers = vec![
            handle.spawn(async move {
                // Converted inside the runtime whose reactor serves them.
                if let Ok(listener) = TcpListener::from_std(entra_listener) {
                    serve_https(listener, entra_tls, entra_router).await;
                }
            }),
            handle.spawn(async move {
                if let Ok(listener) = TcpListener::from_std(blob_listener) {
                    let _ = axum::serve(listener, blob_router).await;
                }
            }),
            handle.spawn(async move {
                if let Ok(listener) = TcpListener::from_std(blob_https_listener) {
                    serve_https(listener, blob_tls, https_blob_router).await;
                }
            }),
            handle.spawn(async move {
                if let Ok(listener) = TcpListener::from_std(graph_listener) {
                    serve_https(listener, graph_tls, graph_router).await;
                }
            }),
        ];
        Ok(Self {
            directory,
            signing_key,
            store,
            log,
            entra_url,
            authority_host: format!("{authority_base}/"),
            blob_endpoint,
            blob_https_endpoint,
            graph_endpoint,
            operator_secret,
            entra_faults,
            ca_file,
            ca_bundle_file,
            servers,
            _temporary_state_dir: temporary_state_dir,
            _runtime: runtime,
        })
    }

    /// Default options with [`AzureSetup::seed`] applied for `issuer`, trusting `issuer_ca`.
    pub async fn start_seeded(issuer: &str, issuer_ca: &Path) -> Result<Self> {
        let emulators = Self::start(AzureEmulatorOptions {
            trusted_ca_files: vec![issuer_ca.to_path_buf()],
            ..AzureEmulatorOptions::default()
        })
        .await?;
        emulators.apply(
            &AzureSetup::seed(),
            &SetupVariables {
                issuer: issuer.to_owned(),
                account_id: String::new(),
            },
        )?;
        Ok(emulators)
    }

    /// Replaces the tenant, applications, storage and knobs with `setup`, expanding
    /// `${ISSUER}` (and the other setup variables). `${NAMESPACE}` is the caller's.
    pub fn apply(&self, setup: &AzureSetup, variables: &SetupVariables) -> Result<()> {
        let expanded = CloudSetup {
            azure: setup.clone(),
            ..CloudSetup::default()
        }
        .expand(variables)?
        .azure;
        expanded.validate()?;
        self.store.load(&expanded, chrono::Utc::now().timestamp());
        self.directory.replace(expanded);
        Ok(())
    }

    /// Empties the tenant and storage, and forgets issued tokens (the request log stays).
    /// A record for a scenario's `state` step: `application/CLIENT_ID` → `{clientId,
    /// displayName, federatedCredentials}` (`null` when the tenant has no such application).
    pub fn record(&self, name: &str) -> Result<serde_json::Value> {
        let Some(client_id) = name.strip_prefix("application/") else {
            anyhow::bail!("unknown Azure record {name:?} (application/CLIENT_ID)");
        };
        let application = self
            .directory
            .snapshot()
            .applications
            .into_iter()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id));
        Ok(serde_json::to_value(application)?)
    }

    pub fn reset(&self) {
        self.directory.replace(AzureSetup::default());
        self.store.load(&AzureSetup::default(), 0);
        self.directory.clear_issued();
        self.entra_faults.clear();
    }

    /// What the node's Azure IMDS signs managed identity tokens with: Entra's key and tenant.
    pub fn managed_identity_tokens(&self) -> ManagedIdentityTokens {
        ManagedIdentityTokens::new(self.directory.clone(), self.signing_key.clone())
    }

    /// `https://127.0.0.1:PORT` (no trailing slash): the Entra endpoint from this host.
    pub fn entra_url(&self) -> &str {
        &self.entra_url
    }

    /// `https://HOST:PORT/`: `AZURE_AUTHORITY_HOST` for pods (HOST is the configured
    /// authority hostname, e.g. the pod bridge's host address on the local cluster).
    pub fn authority_host(&self) -> &str {
        &self.authority_host
    }

    /// `http://127.0.0.1:PORT`: `PODIAM_AZURE_BLOB_ENDPOINT` (path style).
    pub fn blob_endpoint(&self) -> &str {
        &self.blob_endpoint
    }

    /// The same Blob front over HTTPS (same CA), for SDKs that refuse bearer tokens on http.
    pub fn blob_https_endpoint(&self) -> &str {
        &self.blob_https_endpoint
    }

    /// `https://127.0.0.1:PORT`: Microsoft Graph (`PODIAM_AZURE_GRAPH_ENDPOINT`), same CA.
    pub fn graph_endpoint(&self) -> &str {
        &self.graph_endpoint
    }

    /// The operator principal's client id and secret (what `AZURE_CLIENT_ID` and
    /// `AZURE_CLIENT_SECRET` carry for the plugin); its Graph permissions come from the setup.
    pub fn operator_credentials(&self) -> (&'static str, &str) {
        (super::setup::OPERATOR_CLIENT_ID, &self.operator_secret)
    }

    /// PEM of the CA behind the Entra (and HTTPS Blob) certificates.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// PEM bundle of this CA and the trusted issuer CAs: `SSL_CERT_FILE` /
    /// `REQUESTS_CA_BUNDLE` for clients of the emulators and the cluster's issuer.
    pub fn ca_bundle_file(&self) -> &Path {
        &self.ca_bundle_file
    }

    /// The tenant currently applied.
    pub fn tenant_id(&self) -> String {
        self.directory.snapshot().tenant_id
    }

    /// Every request to Entra and Blob so far (no tokens).
    pub fn request_log(&self) -> Vec<RequestLogEntry> {
        self.log.entries()
    }

    /// The next `times` token requests to Entra are answered `status` (429 with `Retry-After:
    /// 1`, or a 5xx) with its transient-error body, unjudged: Entra shedding load.
    pub fn fail_token_requests(&self, status: u16, times: usize) {
        let status = axum::http::StatusCode::from_u16(status).expect("an HTTP status code");
        self.entra_faults.push(status, times);
    }

    /// Every access token issued since the last reset (claims only, never the token).
    pub fn issued_tokens(&self) -> Vec<IssuedToken> {
        self.directory.issued()
    }
}

/// A fresh client secret per run, shaped like Entra's (40 characters).
fn random_secret() -> Result<String> {
    let mut bytes = [0u8; 30];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for a secret: {e}"))?;
    use base64::Engine;
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    crate::emulators::issued_secrets::record(
        crate::emulators::issued_secrets::SecretKind::EntraClientSecret,
        &secret,
    );
    Ok(secret)
}

impl Drop for AzureEmulators {
    fn drop(&mut self) {
        for server in &self.servers {
            server.abort();
        }
    }
}
