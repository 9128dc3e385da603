//! An HTTPS OIDC issuer like EKS's: discovery document and JWKS for one RSA key.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, RwLock};

use anyhow::{Context, Result};
use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::jwk::JwkSet;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::signing_key::SigningKey;
use super::web_identity_token::{TokenSpec, mint_token};
use crate::https_server::{bind_localhost, serve_https};

/// EKS issuers look like `https://oidc.eks.REGION.amazonaws.com/id/<32 hex>`.
pub const DEFAULT_ISSUER_PATH: &str = "/id/EXAMPLED539D4633E53DE1B71EXAMPLE";

/// File name of the issuer's CA certificate inside the state directory.
pub const CA_FILE_NAME: &str = "oidc-ca.pem";

/// A running issuer. Stops serving when dropped.
pub struct OidcIssuer {
    url: String,
    ca_file: PathBuf,
    signing_key: Arc<SigningKey>,
    // Generated on first use: only negative tests need it and RSA keygen takes a moment.
    wrong_key: OnceLock<SigningKey>,
    /// What the discovery and JWKS routes answer; tests change it (rotation, a wrong issuer).
    served: Arc<RwLock<Served>>,
    server: JoinHandle<()>,
}

struct Served {
    discovery: Value,
    jwks: JwkSet,
}

impl OidcIssuer {
    /// Starts serving on `127.0.0.1:<random>` under `path` (e.g. [`DEFAULT_ISSUER_PATH`],
    /// or "" for a bare host), writing the CA certificate to `state_dir`.
    /// Serves from `runtime`.
    pub fn start(
        state_dir: &Path,
        path: &str,
        signing_key: SigningKey,
        runtime: &Handle,
    ) -> Result<Self> {
        let path = path.trim_end_matches('/');
        let listener = bind_localhost().context("binding the OIDC issuer port")?;
        let port = listener.local_addr()?.port();
        let url = format!("https://127.0.0.1:{port}{path}");

        let (ca_pem, tls) = tls_for_localhost()?;
        fs::create_dir_all(state_dir)
            .with_context(|| format!("creating {}", state_dir.display()))?;
        let ca_file = state_dir.join(CA_FILE_NAME);
        fs::write(&ca_file, ca_pem).with_context(|| format!("writing {}", ca_file.display()))?;

        let signing_key = Arc::new(signing_key);
        let served = Arc::new(RwLock::new(Served {
            discovery: discovery_document(&url),
            jwks: signing_key.jwks(),
        }));
        let router = discovery_router(path, served.clone());
        let server = runtime.spawn(async move {
            // Registered with `runtime`'s reactor, hence converted inside it.
            if let Ok(listener) = TcpListener::from_std(listener) {
                serve_https(listener, tls, router).await;
            }
        });
        Ok(Self {
            url,
            ca_file,
            signing_key,
            wrong_key: OnceLock::new(),
            served,
            server,
        })
    }

    /// Publishes exactly these keys from now on (key rotation: add the new key, later drop
    /// the old one). Tokens signed with a key no longer published stop validating once a
    /// verifier's cache refreshes.
    pub fn publish_keys(&self, keys: &[&SigningKey]) {
        let mut served = self.served.write().unwrap_or_else(|p| p.into_inner());
        served.jwks = JwkSet {
            keys: keys.iter().flat_map(|k| k.jwks().keys).collect(),
        };
    }

    /// Makes the discovery document claim `issuer` (a misconfigured issuer whose document
    /// does not name itself).
    pub fn claim_issuer(&self, issuer: &str) {
        let mut served = self.served.write().unwrap_or_else(|p| p.into_inner());
        served.discovery["issuer"] = json!(issuer);
    }

    /// `https://127.0.0.1:PORT/id/…`: the `iss` of minted tokens.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Issuer without scheme, as IAM names the provider and trust-policy condition keys.
    pub fn host_path(&self) -> &str {
        self.url.trim_start_matches("https://")
    }

    /// PEM of the CA that signed the issuer's TLS certificate.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    pub fn signing_key(&self) -> &SigningKey {
        &self.signing_key
    }

    /// A JWT shaped like a Kubernetes projected ServiceAccount token.
    pub fn mint_token(&self, spec: &TokenSpec) -> Result<String> {
        let wrong_key = match (spec.wrong_key, self.wrong_key.get()) {
            (false, _) => None,
            (true, Some(key)) => Some(key),
            (true, None) => {
                let key = SigningKey::generate()?;
                Some(self.wrong_key.get_or_init(|| key))
            }
        };
        mint_token(spec, &self.url, &self.signing_key, wrong_key)
    }
}

impl Drop for OidcIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn discovery_document(issuer_url: &str) -> Value {
    // EKS serves its JWKS at `<issuer>/keys`.
    json!({
        "issuer": issuer_url,
        "jwks_uri": format!("{issuer_url}/keys"),
        "authorization_endpoint": "urn:kubernetes:programmatic_authorization",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "claims_supported": ["sub", "iss"],
    })
}

fn discovery_router(path: &str, served: Arc<RwLock<Served>>) -> Router {
    let read = |served: &Arc<RwLock<Served>>| {
        served
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .discovery
            .clone()
    };
    let for_keys = served.clone();
    Router::new()
        .route(
            &format!("{path}/.well-known/openid-configuration"),
            get(move || async move { Json(read(&served)) }),
        )
        .route(
            &format!("{path}/keys"),
            get(move || async move {
                let jwks = for_keys
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .jwks
                    .clone();
                Json(jwks)
            }),
        )
}

/// A throwaway CA and a server certificate for 127.0.0.1/localhost signed by it.
fn tls_for_localhost() -> Result<(String, Arc<rustls::ServerConfig>)> {
    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "podiam-e2e test CA");
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let ca_issuer = Issuer::new(ca_params, &ca_key);

    let server_key = KeyPair::generate().context("generating the issuer TLS key")?;
    let server_params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    let server_cert = server_params.signed_by(&server_key, &ca_issuer)?;

    let chain = vec![
        CertificateDer::from(server_cert.der().to_vec()),
        CertificateDer::from(ca_cert.der().to_vec()),
    ];
    let private_key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
    // Explicit provider: the workspace links both ring and aws-lc-rs, so there is no default.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .context("building the issuer TLS config")?;
    Ok((ca_cert.pem(), Arc::new(config)))
}
