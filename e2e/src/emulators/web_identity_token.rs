//! Kubernetes bound-ServiceAccount-token-shaped JWTs, with knobs for negative tests.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use jsonwebtoken::{Algorithm, Header, encode};
use serde_json::json;

use super::ids::uuid_like;
use super::signing_key::SigningKey;

/// What token to mint. Start from [`TokenSpec::new`] and adjust the fields.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    pub namespace: String,
    pub service_account: String,
    /// `aud` claim; empty means the claim is left out.
    pub audiences: Vec<String>,
    pub expires_in_seconds: i64,
    /// Issued two hours ago, expired one hour ago.
    pub expired: bool,
    /// Signed by a different key under the issuer's `kid`: the signature cannot verify.
    pub wrong_key: bool,
    /// Adds `kubernetes.io.pod` like a projected volume token.
    pub pod_name: Option<String>,
    /// Overrides `iss` (default: the issuer's URL).
    pub issuer: Option<String>,
    /// Overrides `sub` (default: `system:serviceaccount:NS:SA`).
    pub subject: Option<String>,
    /// `nbf` this many seconds from now (default: `iat`).
    pub not_before_in_seconds: Option<i64>,
    /// `iat` this many seconds from now (default: now).
    pub issued_at_in_seconds: Option<i64>,
}

impl TokenSpec {
    /// A valid token for `namespace/service_account` with audience `sts.amazonaws.com`, 1 h.
    pub fn new(namespace: &str, service_account: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
            service_account: service_account.to_owned(),
            audiences: vec!["sts.amazonaws.com".to_owned()],
            expires_in_seconds: 3600,
            expired: false,
            wrong_key: false,
            pod_name: None,
            issuer: None,
            subject: None,
            not_before_in_seconds: None,
            issued_at_in_seconds: None,
        }
    }
}

/// Signs the token described by `spec` as `issuer_url` with `key`; with `spec.wrong_key`,
/// signs with `wrong_key` instead (required then) while keeping `key`'s kid.
pub fn mint_token(
    spec: &TokenSpec,
    issuer_url: &str,
    key: &SigningKey,
    wrong_key: Option<&SigningKey>,
) -> Result<String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("system clock before 1970")?
        .as_secs() as i64;
    let (iat, exp) = if spec.expired {
        (now - 7200, now - 3600)
    } else {
        (now, now + spec.expires_in_seconds)
    };
    let iat = spec.issued_at_in_seconds.map_or(iat, |offset| now + offset);
    let nbf = spec
        .not_before_in_seconds
        .map_or(iat, |offset| now + offset);
    let subject = spec.subject.clone().unwrap_or_else(|| {
        format!(
            "system:serviceaccount:{}:{}",
            spec.namespace, spec.service_account
        )
    });
    let mut kubernetes = json!({
        "namespace": spec.namespace,
        "serviceaccount": { "name": spec.service_account, "uid": uuid_like() },
    });
    if let Some(pod_name) = &spec.pod_name {
        kubernetes["pod"] = json!({ "name": pod_name, "uid": uuid_like() });
    }
    let mut claims = json!({
        "iss": spec.issuer.clone().unwrap_or_else(|| issuer_url.to_owned()),
        "sub": subject,
        "exp": exp,
        "iat": iat,
        "nbf": nbf,
        "kubernetes.io": kubernetes,
    });
    if !spec.audiences.is_empty() {
        claims["aud"] = json!(spec.audiences);
    }
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid().to_owned());
    let signer = if spec.wrong_key {
        wrong_key.context("a wrong-key token needs a second key")?
    } else {
        key
    };
    let token = encode(&header, &claims, signer.encoding_key()).context("signing the token")?;
    super::issued_secrets::record(
        super::issued_secrets::SecretKind::ServiceAccountToken,
        &token,
    );
    Ok(token)
}
