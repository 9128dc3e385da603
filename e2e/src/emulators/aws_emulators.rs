//! Everything an AWS test needs, started together: OIDC issuer, the backend (moto by default,
//! or LocalStack: `AwsBackend`), and the strict gate in front of it.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::aws_backend::{AwsBackend, BackendKind};
use super::aws_gate::AwsGate;
use super::background_runtime::BackgroundRuntime;
use super::bind_operator::{self, BIND_OPERATOR_USER, shipped_policy_without};
use super::credentials::AdminCredentials;
use super::localstack::{LocalStackServer, check_health};
use super::localstack_docker::LocalStackContainer;
use super::moto::{MotoAuth, MotoServer};
use super::oidc_issuer::{DEFAULT_ISSUER_PATH, OidcIssuer};
use super::operator_policy::RestrictedKey;
use super::request_log::RequestLogEntry;
use super::signing_key::SigningKey;
use super::web_identity_token::TokenSpec;
use super::{ACCOUNT_ID, REGION};
use crate::localstack_env::LocalStackEnv;
use crate::python_env::PythonEnv;
use crate::setup::{CloudSetup, SetupVariables};

/// How to start [`AwsEmulators`]. `Default` is right for most tests.
#[derive(Debug, Clone)]
pub struct AwsEmulatorOptions {
    /// Where the CA file (and the signing key, if generated with `persist_signing_key`) go.
    /// `None`: a fresh temporary directory, removed on drop.
    pub state_dir: Option<PathBuf>,
    /// Issuer URL path, e.g. `/id/EXAMPLE…` (the default, EKS-like) or "".
    pub issuer_path: String,
    /// Sign with this RSA key (PEM file), e.g. a cluster's service-account key.
    /// `None`: a generated key.
    pub signing_key_file: Option<PathBuf>,
    /// Write the generated key to `state_dir/signing-key.pem` (mode 0600), or reuse it if
    /// present, so `podiam-e2e token mint` can sign later.
    pub persist_signing_key: bool,
    /// More CA PEM files the gate trusts when fetching JWKS (e.g. a cluster's issuer CA).
    pub extra_trusted_ca_files: Vec<PathBuf>,
    /// What the gate fronts for IAM, STS and S3 (`--aws-backend`).
    pub backend: AwsBackend,
}

impl Default for AwsEmulatorOptions {
    fn default() -> Self {
        Self {
            state_dir: None,
            issuer_path: DEFAULT_ISSUER_PATH.to_owned(),
            signing_key_file: None,
            persist_signing_key: false,
            extra_trusted_ca_files: Vec::new(),
            backend: AwsBackend::default(),
        }
    }
}

/// The backend as it runs: stopped (if ours) when dropped.
enum RunningBackend {
    Moto(MotoServer),
    LocalStack(LocalStackServer),
    Container(Box<LocalStackContainer>),
    /// `--aws-backend URL`: somebody else's.
    External(String),
}

impl RunningBackend {
    fn url(&self) -> &str {
        match self {
            RunningBackend::Moto(moto) => moto.url(),
            RunningBackend::LocalStack(localstack) => localstack.url(),
            RunningBackend::Container(container) => container.url(),
            RunningBackend::External(url) => url,
        }
    }
}

/// LocalStack's admin: the account's root. LocalStack takes a 12-digit access key id as the
/// account id and checks no secret; the secret is still never printed.
fn localstack_root() -> AdminCredentials {
    let root = AdminCredentials {
        access_key_id: ACCOUNT_ID.to_owned(),
        secret_access_key: "localstack-checks-no-secret".to_owned(),
    };
    // Registered as any secret is, so the redaction scans cover the LocalStack backends too.
    use super::issued_secrets::{SecretKind, record};
    record(SecretKind::AwsSecretAccessKey, &root.secret_access_key);
    root
}

async fn start_backend(
    backend: &AwsBackend,
    state_dir: &Path,
) -> Result<(RunningBackend, AdminCredentials)> {
    match backend {
        AwsBackend::Moto => {
            let python = tokio::task::spawn_blocking(PythonEnv::ensure).await??;
            let moto = MotoServer::start(&python, MotoAuth::Enforced).await?;
            let admin = moto
                .admin_credentials()
                .cloned()
                .context("moto started without an admin")?;
            Ok((RunningBackend::Moto(moto), admin))
        }
        AwsBackend::LocalStack => {
            let env = tokio::task::spawn_blocking(LocalStackEnv::ensure).await??;
            let server = LocalStackServer::start(&env, state_dir).await?;
            Ok((RunningBackend::LocalStack(server), localstack_root()))
        }
        AwsBackend::Url(url) => {
            check_health(url).await?;
            Ok((RunningBackend::External(url.clone()), localstack_root()))
        }
        AwsBackend::LocalStackDocker { image } => {
            let container = LocalStackContainer::start(image.as_deref(), state_dir).await?;
            Ok((
                RunningBackend::Container(Box::new(container)),
                localstack_root(),
            ))
        }
    }
}

/// File name of the persisted signing key inside the state directory.
pub const SIGNING_KEY_FILE_NAME: &str = "signing-key.pem";

/// Running emulators. Dropping this stops the servers and the backend (if started here).
///
/// The servers run on a runtime of their own, so a test may block its thread (run the
/// plugin with `std::process::Command`) while they answer.
pub struct AwsEmulators {
    // Field order is drop order: the gate stops before the backend goes away.
    gate: AwsGate,
    issuer: OidcIssuer,
    backend: RunningBackend,
    backend_choice: AwsBackend,
    admin: AdminCredentials,
    /// The key `bind` runs with: the gate holds it to the shipped bind policy.
    bind_operator: AdminCredentials,
    state_dir: PathBuf,
    _temporary_state_dir: Option<tempfile::TempDir>,
    // Last: the servers above run on it.
    _runtime: BackgroundRuntime,
}

impl AwsEmulators {
    /// Starts issuer, backend (moto with IAM enforced, or LocalStack) and gate. Creates the
    /// backend's Python venv on first use.
    pub async fn start(options: AwsEmulatorOptions) -> Result<Self> {
        let (state_dir, temporary_state_dir) = match &options.state_dir {
            Some(dir) => {
                fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                (dir.clone(), None)
            }
            None => {
                let temp = tempfile::TempDir::with_prefix("podiam-e2e-")?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let signing_key = match (&options.signing_key_file, options.persist_signing_key) {
            (Some(file), _) => SigningKey::from_file(file)?,
            (None, true) => SigningKey::load_or_generate(&state_dir.join(SIGNING_KEY_FILE_NAME))?,
            (None, false) => SigningKey::generate()?,
        };
        let runtime = BackgroundRuntime::new()?;
        let issuer = OidcIssuer::start(
            &state_dir,
            &options.issuer_path,
            signing_key,
            &runtime.handle(),
        )?;
        let (backend, admin) = start_backend(&options.backend, &state_dir)
            .await
            .with_context(|| format!("starting the AWS backend ({})", options.backend))?;

        let mut trusted_ca_pems = vec![fs::read_to_string(issuer.ca_file())?];
        for file in &options.extra_trusted_ca_files {
            trusted_ca_pems.push(
                fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?,
            );
        }
        let gate = AwsGate::start_in_front_of(
            options.backend.kind(),
            backend.url(),
            admin.clone(),
            ACCOUNT_ID,
            &trusted_ca_pems,
            &runtime.handle(),
        )?;
        let bind_operator = bind_operator::provision(backend.url(), &admin)
            .await
            .context("provisioning the bind operator")?;
        gate.restrict(Some(RestrictedKey {
            access_key_id: bind_operator.access_key_id.clone(),
            caller_arn: format!("arn:aws:iam::{ACCOUNT_ID}:user/{BIND_OPERATOR_USER}"),
            policy: shipped_policy_without(&[])?,
        }));
        Ok(Self {
            gate,
            issuer,
            backend,
            backend_choice: options.backend.clone(),
            admin,
            bind_operator,
            state_dir,
            _temporary_state_dir: temporary_state_dir,
            _runtime: runtime,
        })
    }

    /// Default options with the seed applied (`CloudSetup::seed_aws`): where most tests start.
    pub async fn start_seeded() -> Result<Self> {
        let emulators = Self::start(AwsEmulatorOptions::default()).await?;
        emulators
            .apply(&CloudSetup::seed_aws())
            .await
            .context("applying the AWS seed")?;
        Ok(emulators)
    }

    /// The AWS endpoint for clients (`AWS_ENDPOINT_URL`): `http://127.0.0.1:PORT`.
    pub fn gate_url(&self) -> &str {
        self.gate.url()
    }

    /// The backend itself (moto or LocalStack), bypassing the gate. IAM written here is not
    /// seen by the gate until [`AwsEmulators::forget_iam_cache`]; prefer
    /// [`AwsEmulators::gate_url`].
    pub fn moto_url(&self) -> &str {
        self.backend.url()
    }

    /// Same as [`AwsEmulators::moto_url`], named for what it is with any backend.
    pub fn backend_url(&self) -> &str {
        self.backend.url()
    }

    /// Which backend the gate fronts.
    pub fn backend(&self) -> &AwsBackend {
        &self.backend_choice
    }

    /// Whether the gate (LocalStack) or the backend (moto) authorizes S3.
    pub fn backend_kind(&self) -> BackendKind {
        self.backend_choice.kind()
    }

    /// LocalStack's log (host mode or container): `STATE_DIR/localstack.log`.
    pub fn backend_log_file(&self) -> Option<&Path> {
        match &self.backend {
            RunningBackend::LocalStack(server) => Some(server.log_file()),
            RunningBackend::Container(container) => Some(container.log_file()),
            RunningBackend::External(_) | RunningBackend::Moto(_) => None,
        }
    }

    /// `https://127.0.0.1:PORT/id/…`
    pub fn issuer_url(&self) -> &str {
        self.issuer.url()
    }

    /// `127.0.0.1:PORT/id/…`: the OIDC provider name in IAM ARNs and condition keys.
    pub fn issuer_host_path(&self) -> &str {
        self.issuer.host_path()
    }

    /// PEM file of the CA behind the issuer's TLS certificate.
    pub fn ca_file(&self) -> &Path {
        self.issuer.ca_file()
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    pub fn account_id(&self) -> &str {
        ACCOUNT_ID
    }

    pub fn region(&self) -> &str {
        REGION
    }

    /// `arn:aws:iam::123456789012:role/<name>`
    pub fn role_arn(&self, role_name: &str) -> String {
        format!("arn:aws:iam::{ACCOUNT_ID}:role/{role_name}")
    }

    /// A token from this issuer (or deliberately not, see [`TokenSpec`]).
    pub fn mint_token(&self, spec: &TokenSpec) -> Result<String> {
        self.issuer.mint_token(spec)
    }

    /// Creates the setup's providers, roles and buckets, expanding `${ISSUER}`,
    /// `${ISSUER_HOSTPATH}` and `${ACCOUNT_ID}`. Goes through the gate so it sees the change.
    pub async fn apply(&self, setup: &CloudSetup) -> Result<()> {
        self.apply_for_issuer(setup, self.issuer_url()).await
    }

    /// Like [`Self::apply`], with `${ISSUER}` naming `issuer`: for emulators whose tokens come
    /// from another issuer (a parallel worker of a cluster whose issuer is the first emulator's).
    pub async fn apply_for_issuer(&self, setup: &CloudSetup, issuer: &str) -> Result<()> {
        let variables = SetupVariables {
            issuer: issuer.to_owned(),
            account_id: ACCOUNT_ID.to_owned(),
        };
        let setup = setup.expand(&variables)?;
        // Every setup says which bind policy holds: the shipped one unless it removes actions.
        self.gate.restrict(Some(RestrictedKey {
            access_key_id: self.bind_operator.access_key_id.clone(),
            caller_arn: format!("arn:aws:iam::{ACCOUNT_ID}:user/{BIND_OPERATOR_USER}"),
            policy: shipped_policy_without(&setup.aws.bind_policy_without)?,
        }));
        setup.apply_aws(self.gate_url(), &self.admin).await?;
        self.gate.forget_iam_cache();
        // EKS Auth knows the default cluster (and every named one) by this issuer.
        let store = self.gate.eks_auth();
        store.register_cluster(super::DEFAULT_CLUSTER_NAME, issuer);
        for association in &setup.aws.pod_identity_associations {
            store.register_cluster(association.cluster(), issuer);
            store.associate(
                ACCOUNT_ID,
                REGION,
                association.cluster(),
                &association.namespace,
                &association.service_account,
                &association.role_arn(ACCOUNT_ID)?,
            );
        }
        Ok(())
    }

    /// The Pod Identity associations EKS Auth serves now.
    pub fn pod_identity_associations(&self) -> Vec<super::PodIdentityAssociation> {
        self.gate.eks_auth().associations()
    }

    /// The store behind EKS Auth and the association API, for the webhook stand-in: a pod of
    /// an associated ServiceAccount is mutated whether the association came from a scenario's
    /// setup or from `CreatePodIdentityAssociation`.
    pub fn eks_associations(&self) -> std::sync::Arc<super::eks_auth::EksAuthStore> {
        self.gate.eks_auth_shared()
    }

    /// Deletes every Pod Identity association (between scenarios).
    pub fn clear_pod_identity_associations(&self) {
        self.gate.eks_auth().clear_associations();
    }

    /// Access key and secret of moto's admin user, for operator-side IAM reads in tests.
    /// Never print them.
    pub fn admin_credentials(&self) -> (String, String) {
        (
            self.admin.access_key_id.clone(),
            self.admin.secret_access_key.clone(),
        )
    }

    /// Access key and secret `bind` runs with (`runner::plugin_command`): the gate allows this
    /// key exactly what `deploy/iam/podiam-bind-policy.json` allows. Never print them.
    pub fn bind_operator_credentials(&self) -> (String, String) {
        (
            self.bind_operator.access_key_id.clone(),
            self.bind_operator.secret_access_key.clone(),
        )
    }

    /// The admin as a struct (with SDK client helpers).
    pub fn admin(&self) -> &AdminCredentials {
        &self.admin
    }

    /// The requests the gate has answered so far, one entry each (no tokens or credentials).
    pub fn request_log(&self) -> Vec<RequestLogEntry> {
        self.gate.request_log().answered()
    }

    /// Every arrival and answer at the gate, oldest first: a request still in progress (or
    /// stuck) shows as an arrival without an answer.
    pub fn request_events(&self) -> Vec<RequestLogEntry> {
        self.gate.request_log().entries()
    }

    /// Drop the gate's cached IAM reads, after writing IAM straight to moto.
    pub fn forget_iam_cache(&self) {
        self.gate.forget_iam_cache();
    }

    /// The non-secret settings a client needs, as `KEY=value` lines.
    pub fn env_file_contents(&self) -> String {
        format!(
            "AWS_ENDPOINT_URL={}\nAWS_REGION={REGION}\nPODIAM_OIDC_ISSUER={}\nPODIAM_OIDC_CA_FILE={}\n",
            self.gate_url(),
            self.issuer_url(),
            self.ca_file().display()
        )
    }
}
