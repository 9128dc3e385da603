//! Access tokens the Entra emulator issues (v1.0 shape, as Entra issues for
//! `https://storage.azure.com/.default`), and their validation by the resource side.

use anyhow::{Context, Result};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::super::signing_key::SigningKey;

/// Lifetime Entra reports for client-credential tokens (`expires_in`).
pub const ACCESS_TOKEN_LIFETIME_SECONDS: i64 = 3599;

/// The claims of an issued access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// The application (client) id (v1.0 claim).
    pub appid: String,
    /// The same, as v2.0 names it.
    pub azp: String,
    /// Object id of the application's service principal in the tenant.
    pub oid: String,
    pub sub: String,
    pub tid: String,
    /// `1`: the client authenticated with a certificate or assertion.
    pub appidacr: String,
    pub idtyp: String,
    pub ver: String,
    /// Application permissions granted to the client on the resource (e.g. Graph's
    /// `Application.ReadWrite.All`); absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// A record of one issued token (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub client_id: String,
    pub tenant_id: String,
    pub object_id: String,
    pub audience: String,
    /// The federated credential whose assertion was accepted.
    pub credential: String,
    pub expires_at: i64,
}

/// `https://sts.windows.net/{tenant}/`: the issuer of v1.0 access tokens.
pub fn token_issuer(tenant_id: &str) -> String {
    format!("https://sts.windows.net/{tenant_id}/")
}

/// A stable service-principal object id for a client id: the same app always gets the same
/// `oid`, different apps different ones.
pub fn object_id_for(client_id: &str) -> String {
    let digest = Sha256::digest(format!("service-principal:{client_id}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Signs a token for `client_id` in `tenant_id` for `audience` (the scope without
/// `/.default`) carrying the application permissions `roles`, valid from `now`.
pub fn issue(
    key: &SigningKey,
    client_id: &str,
    tenant_id: &str,
    audience: &str,
    roles: Vec<String>,
    now: i64,
) -> Result<(String, AccessTokenClaims)> {
    let oid = object_id_for(client_id);
    issue_for_principal(key, client_id, &oid, tenant_id, audience, roles, now)
}

/// Like [`issue`], for a principal whose object id is known (a managed identity's).
pub fn issue_for_principal(
    key: &SigningKey,
    client_id: &str,
    oid: &str,
    tenant_id: &str,
    audience: &str,
    roles: Vec<String>,
    now: i64,
) -> Result<(String, AccessTokenClaims)> {
    let oid = oid.to_owned();
    let claims = AccessTokenClaims {
        aud: audience.to_owned(),
        iss: token_issuer(tenant_id),
        iat: now,
        nbf: now,
        exp: now + ACCESS_TOKEN_LIFETIME_SECONDS,
        appid: client_id.to_owned(),
        azp: client_id.to_owned(),
        oid: oid.clone(),
        sub: oid,
        tid: tenant_id.to_owned(),
        appidacr: "2".to_owned(),
        idtyp: "app".to_owned(),
        ver: "1.0".to_owned(),
        roles,
    };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid().to_owned());
    let token = jsonwebtoken::encode(&header, &claims, key.encoding_key())
        .context("signing an access token")?;
    crate::emulators::issued_secrets::record(
        crate::emulators::issued_secrets::SecretKind::EntraAccessToken,
        &token,
    );
    Ok((token, claims))
}

/// Why a bearer token was refused, in Azure Storage's `AuthenticationErrorDetail` words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRejection(pub &'static str);

/// Verifies signature, issuer and lifetime of a token issued by this emulator for
/// `tenant_id`, and that its audience is one of `audiences`.
pub fn verify(
    key: &DecodingKey,
    token: &str,
    tenant_id: &str,
    audiences: &[String],
) -> Result<AccessTokenClaims, TokenRejection> {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_aud = false;
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss"]);
    let claims = jsonwebtoken::decode::<AccessTokenClaims>(token, key, &validation)
        .map_err(|err| match err.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                TokenRejection("Lifetime validation failed. The token is expired.")
            }
            jsonwebtoken::errors::ErrorKind::ImmatureSignature => {
                TokenRejection("Lifetime validation failed. The token is not yet valid.")
            }
            _ => TokenRejection("Signature validation failed. Signature verification failed."),
        })?
        .claims;
    if claims.iss != token_issuer(tenant_id) {
        return Err(TokenRejection(
            "Issuer validation failed. Issuer did not match.",
        ));
    }
    if !audiences.iter().any(|a| a == &claims.aud) {
        return Err(TokenRejection(
            "Audience validation failed. Audience did not match.",
        ));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_are_stable_guids() {
        let a = object_id_for("11111111-2222-3333-4444-555555555555");
        assert_eq!(a, object_id_for("11111111-2222-3333-4444-555555555555"));
        assert_ne!(a, object_id_for("11111111-2222-3333-4444-555555555556"));
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }
}
