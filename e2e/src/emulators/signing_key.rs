//! The issuer's RSA signing key: generated, or loaded from a PEM (e.g. a cluster's SA key).

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey};
use rcgen::{KeyPair, PKCS_RSA_SHA256, PublicKeyData};
use sha2::{Digest, Sha256};

/// An RS256 signing key with its Kubernetes-style key id.
pub struct SigningKey {
    pem: String,
    kid: String,
    encoding_key: EncodingKey,
    public_jwk: Jwk,
}

impl SigningKey {
    /// A fresh RSA-2048 key.
    pub fn generate() -> Result<Self> {
        let key_pair =
            KeyPair::generate_for(&PKCS_RSA_SHA256).context("generating an RSA signing key")?;
        Self::from_pem(&key_pair.serialize_pem())
    }

    /// Loads an RSA private key (PKCS#1 or PKCS#8 PEM).
    pub fn from_pem(pem: &str) -> Result<Self> {
        let key_pair = KeyPair::from_pem_and_sign_algo(pem, &PKCS_RSA_SHA256)
            .context("reading the RSA private key PEM")?;
        // Same key id as kube-apiserver: base64url(sha256(PKIX public key DER)), so tokens
        // the cluster signs with this key find their key in our JWKS.
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(key_pair.subject_public_key_info()));
        let encoding_key =
            EncodingKey::from_rsa_pem(pem.as_bytes()).context("loading the RSA key for JWT")?;
        let mut public_jwk = Jwk::from_encoding_key(&encoding_key, Algorithm::RS256)
            .context("deriving the public JWK")?;
        public_jwk.common.key_id = Some(kid.clone());
        public_jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            pem: pem.to_owned(),
            kid,
            encoding_key,
            public_jwk,
        })
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let pem = fs::read_to_string(path)
            .with_context(|| format!("reading signing key {}", path.display()))?;
        Self::from_pem(&pem)
    }

    /// Loads the key at `path`, or generates one and writes it there (mode 0600).
    pub fn load_or_generate(path: &Path) -> Result<Self> {
        if path.exists() {
            return Self::from_file(path);
        }
        let key = Self::generate()?;
        key.write_private_pem(path)?;
        Ok(key)
    }

    /// Writes the private key with mode 0600: a throwaway test key, but still a key.
    pub fn write_private_pem(&self, path: &Path) -> Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("writing signing key {}", path.display()))?;
        file.write_all(self.pem.as_bytes())?;
        Ok(())
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn encoding_key(&self) -> &EncodingKey {
        &self.encoding_key
    }

    /// The public half as a JWKS document with one key.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: vec![self.public_jwk.clone()],
        }
    }
}
