//! Fetching issuers' signing keys over HTTPS (discovery → jwks_uri), cached per issuer.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;

/// Why no key could be found for a token.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// Discovery or JWKS could not be fetched or parsed: AWS says IDPCommunicationError.
    #[error("{0}")]
    Unreachable(String),
    /// The JWKS has no key for the token's `kid`.
    #[error("no key in the issuer's JWKS matches the token's kid")]
    NoMatchingKey,
}

#[derive(Deserialize)]
struct Discovery {
    jwks_uri: String,
}

pub struct JwksCache {
    http: reqwest::Client,
    keys_by_issuer: Mutex<HashMap<String, JwkSet>>,
}

impl JwksCache {
    /// `extra_ca_pems`: CA certificates to trust besides the public roots (the emulated
    /// issuer's CA, a local cluster's CA).
    pub fn new(extra_ca_pems: &[String]) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5));
        for pem in extra_ca_pems {
            let certificate = reqwest::Certificate::from_pem(pem.as_bytes())
                .context("reading a CA certificate PEM")?;
            builder = builder.add_root_certificate(certificate);
        }
        Ok(Self {
            http: builder.build().context("building the JWKS HTTP client")?,
            keys_by_issuer: Mutex::new(HashMap::new()),
        })
    }

    /// The key that should have signed a token from `issuer` with header `kid`.
    /// Fetches the JWKS on first use and again when the `kid` is unknown (key rotation).
    pub async fn decoding_key(
        &self,
        issuer: &str,
        kid: Option<&str>,
    ) -> Result<DecodingKey, JwksError> {
        let cached = self.lock().get(issuer).cloned();
        if let Some(jwks) = cached
            && let Some(key) = pick_key(&jwks, kid)
        {
            return key;
        }
        let jwks = self.fetch(issuer).await?;
        self.lock().insert(issuer.to_owned(), jwks.clone());
        pick_key(&jwks, kid).unwrap_or(Err(JwksError::NoMatchingKey))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, JwkSet>> {
        self.keys_by_issuer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    async fn fetch(&self, issuer: &str) -> Result<JwkSet, JwksError> {
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let discovery: Discovery = self.get_json(&discovery_url).await?;
        self.get_json(&discovery.jwks_uri).await
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(&self, url: &str) -> Result<T, JwksError> {
        let unreachable = |err: reqwest::Error| {
            JwksError::Unreachable(format!(
                "Couldn't retrieve verification key from your identity provider ({url}): {err}"
            ))
        };
        self.http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unreachable)?
            .json()
            .await
            .map_err(unreachable)
    }
}

/// `None` when the set has no key for `kid` (then the caller refetches).
fn pick_key(jwks: &JwkSet, kid: Option<&str>) -> Option<Result<DecodingKey, JwksError>> {
    let jwk = match kid {
        Some(kid) => jwks.find(kid)?,
        // Without a kid, a single-key set is unambiguous.
        None if jwks.keys.len() == 1 => &jwks.keys[0],
        None => return None,
    };
    Some(DecodingKey::from_jwk(jwk).map_err(|_| JwksError::NoMatchingKey))
}
