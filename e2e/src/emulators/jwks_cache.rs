//! Fetching issuers' signing keys over HTTPS (discovery → jwks_uri), cached per issuer for a
//! limited time: a key the issuer stops publishing stops validating once the cache refreshes,
//! as the clouds' caches do. The discovery document must name the issuer it was fetched for
//! (OpenID Connect Discovery §4.3): a document that claims another issuer yields no keys.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
    /// The discovery document's `issuer` is not the token's `iss`.
    #[error("the discovery document of {expected} names the issuer {discovered}")]
    IssuerMismatch {
        expected: String,
        discovered: String,
    },
}

/// How long fetched keys are used before the issuer is asked again.
pub const DEFAULT_KEYS_TTL: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

struct CachedKeys {
    jwks: JwkSet,
    fetched_at: Instant,
}

pub struct JwksCache {
    http: reqwest::Client,
    ttl: Duration,
    keys_by_issuer: Mutex<HashMap<String, CachedKeys>>,
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
            ttl: DEFAULT_KEYS_TTL,
            keys_by_issuer: Mutex::new(HashMap::new()),
        })
    }

    /// Keys older than `ttl` are fetched again before use (tests shorten it).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The key that should have signed a token whose `iss` is `issuer`, with header `kid`.
    /// Fetches the JWKS on first use, when the cached copy is older than the TTL, and when
    /// the `kid` is unknown (a key rotated in).
    pub async fn decoding_key(
        &self,
        issuer: &str,
        kid: Option<&str>,
    ) -> Result<DecodingKey, JwksError> {
        let fresh = self
            .lock()
            .get(issuer)
            .filter(|cached| cached.fetched_at.elapsed() < self.ttl)
            .map(|cached| cached.jwks.clone());
        if let Some(jwks) = fresh
            && let Some(key) = pick_key(&jwks, kid)
        {
            return key;
        }
        let jwks = self.fetch(issuer).await?;
        self.lock().insert(
            issuer.to_owned(),
            CachedKeys {
                jwks: jwks.clone(),
                fetched_at: Instant::now(),
            },
        );
        pick_key(&jwks, kid).unwrap_or(Err(JwksError::NoMatchingKey))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedKeys>> {
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
        // Exact comparison, as the spec requires: a trailing slash is another issuer.
        if discovery.issuer != issuer {
            return Err(JwksError::IssuerMismatch {
                expected: issuer.to_owned(),
                discovered: discovery.issuer,
            });
        }
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::emulators::oidc_issuer::{DEFAULT_ISSUER_PATH, OidcIssuer};
    use crate::emulators::signing_key::SigningKey;
    use crate::emulators::web_identity_token::{TokenSpec, mint_token};
    use jsonwebtoken::{Algorithm, Validation};

    /// A running issuer, a cache trusting its CA, and the temp dir holding the CA file.
    pub(crate) fn issuer_and_cache(ttl: Duration) -> (OidcIssuer, JwksCache, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = SigningKey::generate().expect("key");
        let issuer = OidcIssuer::start(
            dir.path(),
            DEFAULT_ISSUER_PATH,
            key,
            &tokio::runtime::Handle::current(),
        )
        .expect("issuer");
        let ca = std::fs::read_to_string(issuer.ca_file()).expect("CA");
        let cache = JwksCache::new(&[ca]).expect("cache").with_ttl(ttl);
        (issuer, cache, dir)
    }

    /// Whether `token` verifies with the key the cache picks for it.
    async fn verifies(cache: &JwksCache, issuer: &str, token: &str) -> Result<(), JwksError> {
        let header = jsonwebtoken::decode_header(token).expect("header");
        let key = cache.decoding_key(issuer, header.kid.as_deref()).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.validate_aud = false;
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map(|_| ())
            .map_err(|_| JwksError::NoMatchingKey)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_removed_key_stops_validating_once_the_cache_refreshes() {
        let ttl = Duration::from_millis(300);
        let (issuer, cache, _dir) = issuer_and_cache(ttl);
        let old_token = issuer
            .mint_token(&TokenSpec::new("default", "app"))
            .expect("mint");
        verifies(&cache, issuer.url(), &old_token)
            .await
            .expect("the published key validates");

        // Rotation in: a new key is published beside the old one; its tokens validate at
        // once (an unknown kid refetches), and the old key still does.
        let new_key = SigningKey::generate().expect("key");
        issuer.publish_keys(&[issuer.signing_key(), &new_key]);
        let new_token = mint_token(
            &TokenSpec::new("default", "app"),
            issuer.url(),
            &new_key,
            None,
        )
        .expect("mint");
        verifies(&cache, issuer.url(), &new_token)
            .await
            .expect("a rotated-in key validates without waiting for the TTL");

        // Rotation out: the old key is withdrawn. Until the cache expires it still
        // validates (as in the clouds); after, it is refused.
        issuer.publish_keys(&[&new_key]);
        verifies(&cache, issuer.url(), &old_token)
            .await
            .expect("cached keys are used until the TTL");
        tokio::time::sleep(ttl + Duration::from_millis(100)).await;
        assert!(matches!(
            verifies(&cache, issuer.url(), &old_token).await,
            Err(JwksError::NoMatchingKey)
        ));
        verifies(&cache, issuer.url(), &new_token)
            .await
            .expect("the new key still validates");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_discovery_document_naming_another_issuer_gives_no_keys() {
        let (issuer, cache, _dir) = issuer_and_cache(DEFAULT_KEYS_TTL);
        let token = issuer
            .mint_token(&TokenSpec::new("default", "app"))
            .expect("mint");
        issuer.claim_issuer("https://oidc.example.com/other");
        match verifies(&cache, issuer.url(), &token).await {
            Err(JwksError::IssuerMismatch {
                expected,
                discovered,
            }) => {
                assert_eq!(expected, issuer.url());
                assert_eq!(discovered, "https://oidc.example.com/other");
            }
            other => panic!("expected IssuerMismatch, got {other:?}"),
        }
        // A trailing slash is another issuer too (exact comparison).
        issuer.claim_issuer(&format!("{}/", issuer.url()));
        assert!(matches!(
            verifies(&cache, issuer.url(), &token).await,
            Err(JwksError::IssuerMismatch { .. })
        ));
    }
}
