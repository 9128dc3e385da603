//! What Google STS checks on an OIDC subject token before it federates it: the provider's
//! issuer, RS256 signature against that issuer's JWKS, audience against the provider's allowed
//! audiences, and the time window. The emulator's own code: the AWS gate has its own checks,
//! and the plugin never sees this.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use super::super::jwks_cache::{JwksCache, JwksError};
use super::google_error::OAuthError;
use super::setup::WorkloadIdentityPoolSetup;

/// Google tolerates a little clock skew on `exp`/`nbf`/`iat`.
const CLOCK_SKEW_SECONDS: i64 = 60;

/// The subject token's `sub`: `google.subject` under the default attribute mapping.
pub struct AcceptedSubject {
    pub subject: String,
}

pub async fn check_subject_token(
    token: &str,
    provider: &WorkloadIdentityPoolSetup,
    provider_resource: &str,
    jwks: &JwksCache,
) -> Result<AcceptedSubject, OAuthError> {
    let (header, claims) = parse_unverified(token)?;

    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if issuer.trim_end_matches('/') != provider.issuer.trim_end_matches('/') {
        return Err(OAuthError::invalid_grant(format!(
            "The issuer in ID Token {issuer} does not match the expected ones."
        )));
    }

    // Keys come from the discovery document of the token's own `iss`, which must name it.
    let key = jwks
        .decoding_key(issuer, header.get("kid").and_then(Value::as_str))
        .await
        .map_err(|err| match err {
            JwksError::IssuerMismatch { discovered, .. } => OAuthError::invalid_grant(format!(
                "The issuer {discovered} in the OIDC discovery document does not match the issuer {issuer} in the ID Token."
            )),
            JwksError::Unreachable(_) => OAuthError::invalid_grant(format!(
                "Unable to retrieve the OIDC discovery document or JWKS of issuer {}.",
                provider.issuer
            )),
            JwksError::NoMatchingKey => OAuthError::invalid_grant(
                "The key ID in the ID Token header does not match any key in the provider's JWKS.",
            ),
        })?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(OAuthError::invalid_grant(
            "The ID Token is signed with an unsupported algorithm; RS256 is required.",
        ));
    }
    let mut validation = Validation::new(Algorithm::RS256);
    // Audience and time are checked below with Google's messages; the library only verifies.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map_err(|_| OAuthError::invalid_grant("Invalid JWT signature."))?;

    let audiences = string_or_list(claims.get("aud"));
    let default_audience = format!("https:{provider_resource}");
    let allowed: Vec<&str> = if provider.allowed_audiences.is_empty() {
        vec![default_audience.as_str()]
    } else {
        provider
            .allowed_audiences
            .iter()
            .map(String::as_str)
            .collect()
    };
    if !audiences.iter().any(|aud| allowed.contains(&aud.as_str())) {
        return Err(OAuthError::invalid_grant(format!(
            "The audience in ID Token [{}] does not match the expected audience.",
            audiences.join(", ")
        )));
    }

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let Some(expiry) = claims.get("exp").and_then(Value::as_i64) else {
        return Err(OAuthError::invalid_grant(
            "The ID Token is missing the required 'exp' claim.",
        ));
    };
    if now >= expiry + CLOCK_SKEW_SECONDS {
        return Err(OAuthError::invalid_grant(format!(
            "ID Token expired at {expiry}; the current time is {now}."
        )));
    }
    for claim in ["nbf", "iat"] {
        if let Some(at) = claims.get(claim).and_then(Value::as_i64)
            && at > now + CLOCK_SKEW_SECONDS
        {
            let what = if claim == "iat" {
                "issued at"
            } else {
                "not valid before"
            };
            return Err(OAuthError::invalid_grant(format!(
                "ID Token {what} {at}, which is in the future; the current time is {now}."
            )));
        }
    }

    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            OAuthError::invalid_grant("The mapped attribute 'google.subject' must not be empty.")
        })?;
    if subject.len() > 127 {
        return Err(OAuthError::invalid_grant(
            "The mapped attribute 'google.subject' exceeds the 127 byte limit.",
        ));
    }
    Ok(AcceptedSubject {
        subject: subject.to_owned(),
    })
}

fn parse_unverified(token: &str) -> Result<(Value, Value), OAuthError> {
    let not_a_jwt = || OAuthError::invalid_grant("Unable to parse the ID Token.");
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(not_a_jwt());
    };
    let decode = |part: &str| -> Result<Value, OAuthError> {
        let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| not_a_jwt())?;
        serde_json::from_slice::<Value>(&bytes)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(not_a_jwt)
    };
    Ok((decode(header)?, decode(payload)?))
}

fn string_or_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}
