//! What Google STS checks on an OIDC subject token before it federates it: the provider's
//! issuer, RS256 signature against that issuer's JWKS, audience against the provider's allowed
//! audiences, the time window, then the provider's attribute mapping and condition. The emulator's own code: the AWS gate has its own checks,
//! and the plugin never sees this.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use super::super::jwks_cache::{JwksCache, JwksError};
use super::attribute_mapping::map_and_check;
use super::google_error::OAuthError;
use super::setup::WorkloadIdentityPoolSetup;

/// Google tolerates a little clock skew on `exp`/`nbf`/`iat`.
const CLOCK_SKEW_SECONDS: i64 = 60;

/// `google.subject` as the provider's attribute mapping made it (default: the token's `sub`).
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

    let mapped = map_and_check(
        &provider.attribute_mapping,
        provider.attribute_condition.as_deref(),
        &claims,
    )?;
    Ok(AcceptedSubject {
        subject: mapped.subject,
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::emulators::jwks_cache::tests::issuer_and_cache;
    use crate::emulators::web_identity_token::TokenSpec;

    const RESOURCE: &str = "//iam.googleapis.com/projects/1234567890/locations/global/workloadIdentityPools/pool/providers/k8s";

    fn provider(issuer: &str, condition: Option<&str>) -> WorkloadIdentityPoolSetup {
        WorkloadIdentityPoolSetup {
            pool: "pool".to_owned(),
            provider: "k8s".to_owned(),
            issuer: issuer.to_owned(),
            allowed_audiences: Vec::new(),
            attribute_mapping: BTreeMap::from([
                (
                    "google.subject".to_owned(),
                    "assertion['kubernetes.io'].namespace + '/' + assertion['kubernetes.io'].serviceaccount.name".to_owned(),
                ),
            ]),
            attribute_condition: condition.map(str::to_owned),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_providers_condition_and_mapping_decide() {
        let (issuer, cache, _dir) = issuer_and_cache(Duration::from_secs(60));
        let token = |service_account: &str| {
            let mut spec = TokenSpec::new("apps", service_account);
            spec.audiences = vec![format!("https:{RESOURCE}")];
            issuer.mint_token(&spec).expect("mint")
        };
        let mut setup = provider(
            issuer.url(),
            Some(
                "assertion.sub == 'system:serviceaccount:apps:reader' || assertion.sub.startsWith('system:serviceaccount:batch:')",
            ),
        );
        // `+` is outside the subset: the setup is refused rather than misjudged.
        assert!(
            super::super::attribute_mapping::validate(
                &setup.attribute_mapping,
                setup.attribute_condition.as_deref()
            )
            .is_err()
        );
        setup.attribute_mapping = BTreeMap::from([(
            "google.subject".to_owned(),
            "assertion['kubernetes.io'].serviceaccount.name".to_owned(),
        )]);
        let accepted = check_subject_token(&token("reader"), &setup, RESOURCE, &cache)
            .await
            .expect("the condition holds");
        assert_eq!(accepted.subject, "reader", "mapped, not the raw sub");
        let refused = check_subject_token(&token("writer"), &setup, RESOURCE, &cache)
            .await
            .err()
            .expect("the condition rejects another ServiceAccount");
        assert_eq!(refused.error, "unauthorized_client");
        assert_eq!(
            refused.description,
            "The given credential is rejected by the attribute condition."
        );
        // Without a condition, the same token is accepted (only the mapping applies).
        setup.attribute_condition = None;
        assert!(
            check_subject_token(&token("writer"), &setup, RESOURCE, &cache)
                .await
                .is_ok()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_discovery_document_naming_another_issuer_is_invalid_grant() {
        let (issuer, cache, _dir) = issuer_and_cache(Duration::from_secs(60));
        issuer.claim_issuer("https://accounts.example.com");
        let mut spec = TokenSpec::new("apps", "reader");
        spec.audiences = vec![format!("https:{RESOURCE}")];
        let token = issuer.mint_token(&spec).expect("mint");
        let err = check_subject_token(&token, &provider(issuer.url(), None), RESOURCE, &cache)
            .await
            .err()
            .expect("refused");
        assert_eq!(err.error, "invalid_grant");
        assert!(
            err.description.contains("https://accounts.example.com"),
            "{}",
            err.description
        );
    }
}
