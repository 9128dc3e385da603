//! The checks AWS STS makes on AssumeRoleWithWebIdentity, in AWS's order and words.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::Value;

use super::iam_directory::{IamDirectory, RoleRecord};
use super::jwks_cache::{JwksCache, JwksError};
use super::sts_error::StsError;
use super::trust_policy::{TrustDecision, WebIdentityRequestContext, evaluate_trust_policy_text};

/// Allowed clock difference for `exp` and `nbf`, in seconds.
const CLOCK_SKEW_SECONDS: i64 = 30;

/// The parameters of one AssumeRoleWithWebIdentity call.
#[derive(Debug, Clone)]
pub struct WebIdentityRequest {
    pub role_arn: String,
    pub role_session_name: String,
    pub web_identity_token: String,
    pub duration_seconds: i32,
}

/// A request that passed every check.
#[derive(Debug, Clone)]
pub struct ValidatedWebIdentity {
    pub role: RoleRecord,
    pub subject: String,
    /// The token audience that matched the provider's client id list.
    pub audience: String,
    pub provider_arn: String,
}

impl WebIdentityRequest {
    /// Reads the query-protocol parameters; `ValidationError` like AWS for bad ones.
    pub fn from_params(params: &[(String, String)]) -> Result<Self, StsError> {
        let get = |name: &str| {
            params
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        let required = |name: &'static str, field: &str| {
            get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                StsError::validation(format!(
                    "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
                ))
            })
        };
        let role_arn = required("RoleArn", "roleArn")?;
        let role_session_name = required("RoleSessionName", "roleSessionName")?;
        let web_identity_token = required("WebIdentityToken", "webIdentityToken")?;
        let session_name_ok = (2..=64).contains(&role_session_name.len())
            && role_session_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
        if !session_name_ok {
            return Err(StsError::validation(format!(
                "1 validation error detected: Value '{role_session_name}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"
            )));
        }
        let duration_seconds = match get("DurationSeconds") {
            None => 3600,
            Some(text) => {
                let value: i32 = text.parse().map_err(|_| {
                    StsError::validation(format!("Invalid DurationSeconds: {text}"))
                })?;
                if !(900..=43200).contains(&value) {
                    return Err(StsError::validation(format!(
                        "1 validation error detected: Value '{value}' at 'durationSeconds' failed to satisfy constraint: Member must have value {} 900",
                        if value < 900 {
                            "greater than or equal to"
                        } else {
                            "less than or equal to 43200, and"
                        }
                    )));
                }
                value
            }
        };
        Ok(Self {
            role_arn,
            role_session_name,
            web_identity_token,
            duration_seconds,
        })
    }
}

/// Runs every check; the first failure is the answer.
pub async fn check_web_identity(
    request: &WebIdentityRequest,
    account_id: &str,
    directory: &IamDirectory,
    jwks: &JwksCache,
) -> Result<ValidatedWebIdentity, StsError> {
    let internal = |err: anyhow::Error| StsError::internal(format!("{err:#}"));
    let token = &request.web_identity_token;
    // Whatever the cluster (or a test) presented is a secret of the run, valid or not.
    super::issued_secrets::record(
        super::issued_secrets::SecretKind::ServiceAccountToken,
        token,
    );
    let (header, claims) = parse_unverified(token)?;

    // 1. The issuer must be a registered IAM OIDC provider.
    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let issuer_with_scheme = if issuer.starts_with("https://") {
        issuer.to_owned()
    } else {
        format!("https://{issuer}")
    };
    let provider = directory
        .provider_for_issuer(issuer)
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            StsError::invalid_identity_token(format!(
                "No OpenIDConnect provider found in your account for {issuer_with_scheme}"
            ))
        })?;

    // 2. The audience must be one of the provider's client ids.
    let audiences = string_or_list(claims.get("aud"));
    if audiences.is_empty() {
        return Err(StsError::invalid_identity_token(
            "Missing a required claim: aud",
        ));
    }
    let audience = audiences
        .iter()
        .find(|aud| provider.client_ids.contains(aud))
        .cloned()
        .ok_or_else(|| StsError::invalid_identity_token("Incorrect token audience"))?;

    // 3. The signature must verify against the issuer's JWKS.
    let key = jwks
        .decoding_key(&issuer_with_scheme, header.get("kid").and_then(Value::as_str))
        .await
        .map_err(|err| match err {
            JwksError::Unreachable(message) => StsError::idp_communication(message),
            // A discovery document naming another issuer gives STS no keys it may use.
            JwksError::NoMatchingKey | JwksError::IssuerMismatch { .. } => StsError::invalid_identity_token(
                "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements",
            ),
        })?;
    let mut validation = Validation::new(Algorithm::RS256);
    // Time and audience are checked here, with AWS's messages; the library checks only
    // the signature and algorithm.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|_| {
        StsError::invalid_identity_token("The web identity token's signature is invalid")
    })?;

    // 4. Time window.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let Some(expiry) = claims.get("exp").and_then(Value::as_i64) else {
        return Err(StsError::invalid_identity_token(
            "Missing a required claim: exp",
        ));
    };
    if now >= expiry + CLOCK_SKEW_SECONDS {
        return Err(StsError::expired_token(format!(
            "Token expired: current date/time {now} must be before the expiration date/time {expiry}"
        )));
    }
    if let Some(not_before) = claims.get("nbf").and_then(Value::as_i64)
        && now + CLOCK_SKEW_SECONDS < not_before
    {
        return Err(StsError::invalid_identity_token(format!(
            "Token is not valid yet: current date/time {now} is before the not-before date/time {not_before}"
        )));
    }
    // A token issued in the future is as unusable as one not yet valid.
    if let Some(issued_at) = claims.get("iat").and_then(Value::as_i64)
        && now + CLOCK_SKEW_SECONDS < issued_at
    {
        return Err(StsError::invalid_identity_token(format!(
            "Token is not valid yet: current date/time {now} is before the issued-at date/time {issued_at}"
        )));
    }

    // 5. The role must exist in this account and trust this token.
    let role = role_from_arn(&request.role_arn, account_id, directory).await?;
    let subject = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let context = WebIdentityRequestContext::new(
        account_id,
        &provider.host_path,
        &subject,
        &audiences,
        &string_or_list(claims.get("amr")),
    );
    match evaluate_trust_policy_text(&role.trust_policy, &context) {
        Ok(TrustDecision::Allowed) => {}
        Ok(TrustDecision::ExplicitDeny | TrustDecision::ImplicitDeny) | Err(_) => {
            return Err(StsError::access_denied());
        }
    }
    if request.duration_seconds > role.max_session_duration {
        return Err(StsError::validation(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ));
    }
    Ok(ValidatedWebIdentity {
        role,
        subject,
        audience,
        provider_arn: provider.arn,
    })
}

/// Header and claims without verifying anything; garbage is `InvalidIdentityToken`.
fn parse_unverified(token: &str) -> Result<(Value, Value), StsError> {
    let not_a_jwt =
        || StsError::invalid_identity_token("The web identity token is not a valid JWT");
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(not_a_jwt());
    };
    let decode = |part: &str| -> Result<Value, StsError> {
        let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| not_a_jwt())?;
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| not_a_jwt())?;
        if value.is_object() {
            Ok(value)
        } else {
            Err(not_a_jwt())
        }
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

/// AWS answers AccessDenied, not NoSuchEntity, for a role that does not exist.
async fn role_from_arn(
    role_arn: &str,
    account_id: &str,
    directory: &IamDirectory,
) -> Result<RoleRecord, StsError> {
    let Some(rest) = role_arn.strip_prefix("arn:aws:iam::") else {
        return Err(StsError::validation(format!("{role_arn} is invalid")));
    };
    let Some((arn_account, role_path_and_name)) = rest.split_once(":role/") else {
        return Err(StsError::validation(format!("{role_arn} is invalid")));
    };
    if arn_account != account_id {
        return Err(StsError::access_denied());
    }
    let role_name = role_path_and_name
        .rsplit('/')
        .next()
        .unwrap_or(role_path_and_name);
    directory
        .role(role_name)
        .await
        .map_err(|err| StsError::internal(format!("{err:#}")))?
        .filter(|role| role.arn == role_arn)
        .ok_or_else(StsError::access_denied)
}
