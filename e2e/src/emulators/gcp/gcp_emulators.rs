//! Everything a GCP test needs, started together: the GKE metadata server, STS, IAM
//! Credentials, the IAM API (service-account policies), the OAuth token endpoint for the
//! operator's gcloud credentials with tokeninfo beside it, and the Cloud Storage front, on one
//! runtime of their own.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::super::background_runtime::BackgroundRuntime;
use super::super::jwks_cache::JwksCache;
use super::super::oidc_issuer::{DEFAULT_ISSUER_PATH, OidcIssuer};
use super::super::request_log::RequestLogEntry;
use super::super::signing_key::SigningKey;
use super::super::web_identity_token::TokenSpec;
use super::DEFAULT_OPERATOR;
use super::metadata_server::ConnectionAddresses;
use super::pod_resolver::PodResolver;
use super::setup::GcpSetup;
use super::state::GcpState;
use super::{gcs_front, iam_credentials, iam_policy_api, metadata_server, oauth_token, sts};
use crate::setup::SetupVariables;

/// How to start [`GcpEmulators`]. `Default` suits contract tests (all on 127.0.0.1, static
/// resolver with no pods, no issuer of its own).
pub struct GcpEmulatorOptions {
    /// Where the metadata server listens. In the local cluster: the bridge's host address on
    /// a random port, which pods reach at `169.254.169.254:80` by DNAT (`cluster::link_local`).
    pub metadata_bind: SocketAddr,
    /// Address STS, IAM Credentials and GCS listen on (random ports). The bridge's host
    /// address makes them reachable from pods as well as from the host.
    pub api_bind_ip: IpAddr,
    /// How the metadata server identifies callers.
    pub resolver: PodResolver,
    /// CA PEM files STS trusts when fetching issuers' JWKS (the cluster issuer's CA).
    pub trusted_ca_files: Vec<PathBuf>,
    /// Start an OIDC issuer of their own (for tests without a cluster): see
    /// [`GcpEmulators::issuer_url`] and [`GcpEmulators::mint_token`].
    pub test_issuer: bool,
}

impl Default for GcpEmulatorOptions {
    fn default() -> Self {
        Self {
            metadata_bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            resolver: PodResolver::Static(Default::default()),
            trusted_ca_files: Vec::new(),
            test_issuer: false,
        }
    }
}

/// Running GCP emulators. Dropping this stops the servers.
pub struct GcpEmulators {
    state: Arc<GcpState>,
    metadata_addr: SocketAddr,
    sts_url: String,
    iam_credentials_url: String,
    iam_url: String,
    oauth_url: String,
    gcs_url: String,
    /// `authorized_user` files written for signed-in accounts (0600).
    credentials_dir: tempfile::TempDir,
    operator_credentials_file: PathBuf,
    issuer: Option<OidcIssuer>,
    servers: Vec<JoinHandle<()>>,
    _temporary_dir: Option<tempfile::TempDir>,
    // Last: the servers above run on it.
    _runtime: BackgroundRuntime,
}

impl GcpEmulators {
    pub async fn start(options: GcpEmulatorOptions) -> Result<Self> {
        let runtime = BackgroundRuntime::new()?;
        let (issuer, temporary_dir) = if options.test_issuer {
            let dir = tempfile::TempDir::with_prefix("podiam-e2e-gcp-")?;
            let key = tokio::task::spawn_blocking(SigningKey::generate).await??;
            let issuer =
                OidcIssuer::start(dir.path(), DEFAULT_ISSUER_PATH, key, &runtime.handle())?;
            (Some(issuer), Some(dir))
        } else {
            (None, None)
        };
        let mut trusted_ca_pems = Vec::new();
        for file in options
            .trusted_ca_files
            .iter()
            .map(PathBuf::as_path)
            .chain(issuer.as_ref().map(OidcIssuer::ca_file))
        {
            trusted_ca_pems.push(
                fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?,
            );
        }
        let state = Arc::new(GcpState::new(
            JwksCache::new(&trusted_ca_pems)?,
            options.resolver,
        ));

        let mut servers = Vec::new();
        let bind_api = |what: &str| -> Result<StdTcpListener> {
            let listener = StdTcpListener::bind(SocketAddr::new(options.api_bind_ip, 0))
                .with_context(|| format!("binding the {what} port on {}", options.api_bind_ip))?;
            listener.set_nonblocking(true)?;
            Ok(listener)
        };
        let sts_listener = bind_api("STS")?;
        let sts_url = format!("http://{}", sts_listener.local_addr()?);
        servers.push(serve(&runtime, sts_listener, sts::router(state.clone())));
        let iam_listener = bind_api("IAM Credentials")?;
        let iam_credentials_url = format!("http://{}", iam_listener.local_addr()?);
        servers.push(serve(
            &runtime,
            iam_listener,
            iam_credentials::router(state.clone()),
        ));
        let iam_api_listener = bind_api("IAM")?;
        let iam_url = format!("http://{}", iam_api_listener.local_addr()?);
        servers.push(serve(
            &runtime,
            iam_api_listener,
            iam_policy_api::router(state.clone()),
        ));
        let oauth_listener = bind_api("OAuth token")?;
        let oauth_url = format!("http://{}", oauth_listener.local_addr()?);
        servers.push(serve(
            &runtime,
            oauth_listener,
            oauth_token::router(state.clone()),
        ));
        let credentials_dir = tempfile::TempDir::with_prefix("podiam-e2e-gcp-adc-")?;
        let operator_credentials_file =
            write_user_credentials(&state, credentials_dir.path(), &oauth_url, DEFAULT_OPERATOR)?;
        let gcs_listener = bind_api("Cloud Storage")?;
        let gcs_url = format!("http://{}", gcs_listener.local_addr()?);
        servers.push(serve(
            &runtime,
            gcs_listener,
            gcs_front::router(state.clone(), &gcs_url),
        ));

        let metadata_listener = StdTcpListener::bind(options.metadata_bind)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .with_context(|| format!("binding the metadata server on {}", options.metadata_bind))?;
        let metadata_addr = metadata_listener.local_addr()?;
        // One listener, as on a node: `/latest/` (EC2) and `/metadata/` (Azure) beside GKE's.
        let metadata_router = metadata_server::router(state.clone())
            .merge(super::super::node_metadata::router(state.node.clone()));
        servers.push(runtime.handle().spawn(async move {
            if let Ok(listener) = TcpListener::from_std(metadata_listener) {
                let service =
                    metadata_router.into_make_service_with_connect_info::<ConnectionAddresses>();
                let _ = axum::serve(listener, service).await;
            }
        }));

        Ok(Self {
            state,
            metadata_addr,
            sts_url,
            iam_credentials_url,
            iam_url,
            oauth_url,
            gcs_url,
            credentials_dir,
            operator_credentials_file,
            issuer,
            servers,
            _temporary_dir: temporary_dir,
            _runtime: runtime,
        })
    }

    /// Adds the setup's service accounts, pools and buckets (replacing same-named ones) and
    /// takes its project, node service account and start-up delay. Expands `${ISSUER}` and
    /// `${ISSUER_HOSTPATH}` from `variables`.
    pub fn apply(&self, setup: &GcpSetup, variables: &SetupVariables) -> Result<()> {
        let host_path = variables.issuer.trim_start_matches("https://");
        let text = serde_json::to_string(setup)?
            .replace("${ISSUER_HOSTPATH}", host_path)
            .replace("${ISSUER}", &variables.issuer);
        let expanded: GcpSetup = serde_json::from_str(&text).context("expanding the GCP setup")?;
        expanded.validate().context("spec.setup.gcp")?;
        self.state.project.apply(&expanded);
        Ok(())
    }

    /// A record for a scenario's `state` step: `service-account/EMAIL` → `{email, iamPolicy,
    /// etag}` (`null` when the project has no such account).
    pub fn record(&self, name: &str) -> Result<serde_json::Value> {
        let Some(email) = name.strip_prefix("service-account/") else {
            anyhow::bail!("unknown GCP record {name:?} (service-account/EMAIL)");
        };
        let Some(account) = self.state.project.service_account(email) else {
            return Ok(serde_json::Value::Null);
        };
        let mut record = serde_json::to_value(account)?;
        record["etag"] = self.state.project.etag(email).into();
        Ok(record)
    }

    /// Empties the project (back to defaults) and forgets every issued token. Signed-in
    /// accounts stay signed in (their refresh tokens are the operator's, not the scenario's).
    pub fn reset(&self) {
        self.state.project.reset();
        self.state.tokens.clear();
    }

    /// The project as applied so far.
    pub fn project(&self) -> GcpSetup {
        self.state.project.snapshot()
    }

    /// The node metadata services (EC2 and Azure IMDS) served with the metadata server: the
    /// runner routes each scenario namespace to its declared node identity.
    pub fn node_metadata(&self) -> std::sync::Arc<super::super::node_metadata::NodeMetadata> {
        self.state.node.clone()
    }

    /// `http://IP:PORT` of the metadata server.
    pub fn metadata_url(&self) -> String {
        format!("http://{}", self.metadata_addr)
    }

    /// `IP:PORT` of the metadata server: the value for `GCE_METADATA_HOST`.
    pub fn metadata_host(&self) -> String {
        self.metadata_addr.to_string()
    }

    /// Where the metadata server listens (pods may reach it by DNAT at 169.254.169.254:80).
    pub fn metadata_address(&self) -> SocketAddr {
        self.metadata_addr
    }

    /// `http://IP:PORT` of STS.
    pub fn sts_url(&self) -> &str {
        &self.sts_url
    }

    /// STS token endpoint: an external_account file's `token_url`.
    pub fn token_url(&self) -> String {
        format!("{}/v1/token", self.sts_url)
    }

    /// `http://IP:PORT` of IAM Credentials.
    pub fn iam_credentials_url(&self) -> &str {
        &self.iam_credentials_url
    }

    /// An external_account file's `service_account_impersonation_url` for `email`.
    pub fn impersonation_url(&self, email: &str) -> String {
        format!(
            "{}/v1/projects/-/serviceAccounts/{email}:generateAccessToken",
            self.iam_credentials_url
        )
    }

    /// `http://IP:PORT` of the IAM API (`iam.googleapis.com`): the value for gcloud's
    /// `CLOUDSDK_API_ENDPOINT_OVERRIDES_IAM` (with a trailing `/`).
    pub fn iam_url(&self) -> &str {
        &self.iam_url
    }

    /// The OAuth token endpoint (`oauth2.googleapis.com/token`): `token_uri` of the
    /// `authorized_user` files written here.
    pub fn oauth_token_url(&self) -> String {
        format!("{}/token", self.oauth_url)
    }

    /// Google's tokeninfo (`oauth2.googleapis.com/tokeninfo`) for the access tokens issued here:
    /// the value for the plugin's `PODIAM_GCP_TOKENINFO_URL`.
    pub fn tokeninfo_url(&self) -> String {
        format!("{}/tokeninfo", self.oauth_url)
    }

    /// gcloud's application default credentials (`authorized_user`) of [`DEFAULT_OPERATOR`],
    /// project owner by default: the value for `GOOGLE_APPLICATION_CREDENTIALS`.
    pub fn operator_credentials_file(&self) -> &Path {
        &self.operator_credentials_file
    }

    /// Signs `email` in and writes its `authorized_user` file (for a caller with other roles).
    pub fn user_credentials_file(&self, email: &str) -> Result<PathBuf> {
        write_user_credentials(
            &self.state,
            self.credentials_dir.path(),
            &self.oauth_url,
            email,
        )
    }

    /// `http://IP:PORT` of the Cloud Storage front: the value for `STORAGE_EMULATOR_HOST`.
    pub fn gcs_url(&self) -> &str {
        &self.gcs_url
    }

    /// `//iam.googleapis.com/projects/NUM/locations/global/workloadIdentityPools/POOL/providers/PROV`
    /// for the current project.
    pub fn provider_audience(&self, pool: &str, provider: &str) -> String {
        format!(
            "//iam.googleapis.com/projects/{}/locations/global/workloadIdentityPools/{pool}/providers/{provider}",
            self.state.project.snapshot().project_number
        )
    }

    /// The own issuer's URL (`test_issuer: true` only).
    pub fn issuer_url(&self) -> Option<&str> {
        self.issuer.as_ref().map(OidcIssuer::url)
    }

    /// PEM of the own issuer's TLS CA (`test_issuer: true` only).
    pub fn issuer_ca_file(&self) -> Option<&Path> {
        self.issuer.as_ref().map(OidcIssuer::ca_file)
    }

    /// A token from the own issuer (`test_issuer: true` only).
    pub fn mint_token(&self, spec: &TokenSpec) -> Result<String> {
        self.issuer
            .as_ref()
            .context("these GCP emulators were started without test_issuer")?
            .mint_token(spec)
    }

    /// Everything the emulators have answered so far (no tokens).
    pub fn request_log(&self) -> Vec<RequestLogEntry> {
        self.state.log.entries()
    }
}

impl Drop for GcpEmulators {
    fn drop(&mut self) {
        for server in &self.servers {
            server.abort();
        }
    }
}

/// What `gcloud auth application-default login` writes, with the emulator's `token_uri`.
fn write_user_credentials(
    state: &GcpState,
    dir: &Path,
    oauth_url: &str,
    email: &str,
) -> Result<PathBuf> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let credentials = state.users.sign_in(email)?;
    let file = dir.join(format!("{}.json", email.replace(['@', '/'], "_")));
    let body = serde_json::json!({
        "type": "authorized_user",
        "client_id": credentials.client_id,
        "client_secret": credentials.client_secret,
        "refresh_token": credentials.refresh_token,
        "token_uri": format!("{oauth_url}/token"),
        "account": email,
    });
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&file)
        .and_then(|mut f| f.write_all(body.to_string().as_bytes()))
        .with_context(|| format!("writing {}", file.display()))?;
    Ok(file)
}

fn serve(runtime: &BackgroundRuntime, listener: StdTcpListener, router: Router) -> JoinHandle<()> {
    runtime.handle().spawn(async move {
        // Registered with the runtime's reactor, hence converted inside it.
        if let Ok(listener) = TcpListener::from_std(listener) {
            let _ = axum::serve(listener, router).await;
        }
    })
}
