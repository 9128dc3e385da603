//! Entra's judgement of a client assertion presented with a federated identity credential:
//! which credential of the application matches the token's issuer, subject and audience,
//! then the issuer's signature (keys fetched over HTTPS via OIDC discovery) and the lifetime.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use super::super::jwks_cache::{JwksCache, JwksError};
use super::entra_error::EntraError;
use super::setup::ApplicationSetup;

/// Entra tolerates this much clock skew on `nbf` and `exp`, like most token validators.
const CLOCK_SKEW_SECONDS: i64 = 300;

/// The claims Entra looked at in an assertion it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedAssertion {
    pub issuer: String,
    pub subject: String,
    /// Name of the federated identity credential that matched.
    pub credential: String,
}

/// What the exchange depends on besides the application: issuer reachability and time.
pub struct AssertionContext<'a> {
    pub jwks: &'a JwksCache,
    pub unreachable_issuers: &'a [String],
    /// Unix seconds, including any configured clock offset.
    pub now: i64,
}

/// Checks `assertion` for `app` in Entra's order: match a credential by issuer, subject and
/// audience (AADSTS700211 / 700213 / 70021), fetch the issuer's keys (90061), verify the
/// RS256 signature (700027), then the time window (700024).
pub async fn check_assertion(
    app: &ApplicationSetup,
    assertion: &str,
    context: &AssertionContext<'_>,
) -> Result<AcceptedAssertion, EntraError> {
    let (header, claims) =
        parse_unverified(assertion).ok_or_else(EntraError::malformed_assertion)?;
    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(EntraError::malformed_assertion)?
        .to_owned();
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .ok_or_else(EntraError::malformed_assertion)?
        .to_owned();
    let audiences = string_or_list(claims.get("aud"));

    // Exact comparisons: `https://x/` and `https://x` are different issuers to Entra, and
    // subjects are case-sensitive.
    let by_issuer: Vec<_> = app
        .federated_credentials
        .iter()
        .filter(|c| c.issuer == issuer)
        .collect();
    if by_issuer.is_empty() {
        return Err(EntraError::no_record_for_issuer(&issuer));
    }
    let by_subject: Vec<_> = by_issuer
        .into_iter()
        .filter(|c| c.subject == subject)
        .collect();
    if by_subject.is_empty() {
        return Err(EntraError::no_record_for_subject(&subject));
    }
    let Some(credential) = by_subject
        .into_iter()
        .find(|c| c.audiences.iter().any(|a| audiences.contains(a)))
    else {
        return Err(EntraError::no_matching_record(
            &issuer,
            &subject,
            &audiences.join(","),
        ));
    };

    if context
        .unreachable_issuers
        .iter()
        .any(|unreachable| unreachable == &issuer)
    {
        return Err(EntraError::issuer_unreachable(&issuer));
    }
    let key = context
        .jwks
        .decoding_key(&issuer, header.get("kid").and_then(Value::as_str))
        .await
        .map_err(|err| match err {
            JwksError::Unreachable(_) => EntraError::issuer_unreachable(&issuer),
            JwksError::IssuerMismatch { discovered, .. } => {
                EntraError::discovery_issuer_mismatch(&issuer, &discovered)
            }
            JwksError::NoMatchingKey => EntraError::signature_invalid(),
        })?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(EntraError::signature_invalid());
    }
    let mut validation = Validation::new(Algorithm::RS256);
    // Lifetime is judged below with Entra's message and the (possibly offset) clock.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(assertion, &key, &validation)
        .map_err(|_| EntraError::signature_invalid())?;

    let not_before = claims.get("nbf").and_then(Value::as_i64);
    let expires = claims
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or_else(EntraError::malformed_assertion)?;
    // An assertion issued in the future is not yet valid either.
    let issued_at = claims.get("iat").and_then(Value::as_i64);
    let too_early = not_before
        .into_iter()
        .chain(issued_at)
        .any(|at| context.now + CLOCK_SKEW_SECONDS < at);
    let too_late = context.now - CLOCK_SKEW_SECONDS >= expires;
    if too_early || too_late {
        return Err(EntraError::outside_valid_time_range(
            context.now,
            not_before,
            expires,
        ));
    }
    Ok(AcceptedAssertion {
        issuer,
        subject,
        credential: credential.name.clone(),
    })
}

/// Header and claims of a compact JWS, unverified; `None` for anything else.
fn parse_unverified(token: &str) -> Option<(Value, Value)> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let decode = |part: &str| -> Option<Value> {
        let value: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()?;
        value.is_object().then_some(value)
    };
    Some((decode(header)?, decode(payload)?))
}

fn string_or_list(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}
