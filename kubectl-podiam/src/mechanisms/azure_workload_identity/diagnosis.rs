//! Entra's AADSTS answers to a federated client assertion, turned into cause and fix. The
//! token's own claims are set next to what Entra quotes, so a mismatch is visible at a glance.

use crate::exchange::azure_entra::EntraErrorBody;
use crate::model::Check;
use crate::token_claims::Claims;

use crate::cloud::azure as a;

pub const ID: &str = "azure.entra.token";

/// What was asked of Entra, for the messages.
pub struct Attempt<'a> {
    pub client_id: &'a str,
    pub tenant_id: &'a str,
    pub endpoint: &'a str,
}

fn fic_fix(attempt: &Attempt<'_>, iss: &str, sub: &str) -> String {
    format!(
        "az identity federated-credential create --identity-name <IDENTITY> --resource-group <RESOURCE_GROUP> --name <NAME> --issuer {iss} --subject {sub} --audiences {} (for an app registration: az ad app federated-credential create --id {})",
        a::AUDIENCE,
        attempt.client_id
    )
}

pub fn rejection(attempt: &Attempt<'_>, body: &EntraErrorBody, claims: &Claims) -> Check {
    let code = body.code();
    let iss = claims.iss.as_deref().unwrap_or("?");
    let sub = claims.sub.as_deref().unwrap_or("?");
    let aud = claims.aud.join(",");
    let (cause, fix) = match code.as_str() {
        "AADSTS70021" => {
            let shown_iss = body.quoted("Assertion Issuer").unwrap_or(iss.to_string());
            let shown_sub = body.quoted("Assertion Subject").unwrap_or(sub.to_string());
            let shown_aud = body.quoted("Assertion Audience").unwrap_or(aud.clone());
            (
                format!(
                    "application {} has no federated identity credential for issuer {shown_iss}, subject {shown_sub}, audience {shown_aud} (issuer, subject and audience must all match exactly, case-sensitive)",
                    attempt.client_id
                ),
                fic_fix(attempt, &shown_iss, &shown_sub),
            )
        }
        "AADSTS700211" => {
            let shown = body.quoted("assertion issuer").unwrap_or(iss.to_string());
            let slash = if iss.ends_with('/') {
                format!("the token's issuer {iss} ends with '/': the credential must too")
            } else {
                format!("the token's issuer {iss} has no trailing '/': the credential must not either")
            };
            let off = if iss.starts_with("https://kubernetes.default.svc") {
                "; this issuer means the cluster's OIDC issuer is off: az aks update --enable-oidc-issuer --resource-group <RG> --name <CLUSTER>, then use its URL"
            } else {
                ""
            };
            (
                format!(
                    "no federated identity credential of application {} trusts issuer {shown} (the token says iss={iss}); {slash}{off}",
                    attempt.client_id
                ),
                format!(
                    "set the credential's issuer to exactly {iss} (az aks show --query oidcIssuerProfile.issuerUrl -o tsv), or {}",
                    fic_fix(attempt, iss, sub)
                ),
            )
        }
        "AADSTS700213" => {
            let shown = body.quoted("assertion subject").unwrap_or(sub.to_string());
            (
                format!(
                    "no federated identity credential of application {} names subject {shown} (the token says sub={sub}); the subject is system:serviceaccount:NAMESPACE:SERVICEACCOUNT, exact and case-sensitive",
                    attempt.client_id
                ),
                fic_fix(attempt, iss, sub),
            )
        }
        "AADSTS700024" => {
            let timing = match (claims.exp, claims.nbf.or(claims.iat)) {
                (Some(exp), _) if exp <= crate::token_claims::now() => format!("the token expired {}s ago", crate::token_claims::now() - exp),
                (_, Some(nbf)) if nbf > crate::token_claims::now() => format!(
                    "the token is valid only from {}s in the future (clock skew)",
                    nbf - crate::token_claims::now()
                ),
                (Some(exp), _) => format!(
                    "the token still has {}s by this machine's clock: the clocks disagree",
                    exp - crate::token_claims::now()
                ),
                _ => "the token carries no exp".to_string(),
            };
            (
                format!("the assertion is outside its valid time range: {timing}"),
                "read the token file fresh before each exchange (the kubelet rotates it; a copied token is never refreshed) and keep node clocks in sync".to_string(),
            )
        }
        "AADSTS90061" => (
            format!(
                "Entra could not fetch {iss}/.well-known/openid-configuration or its JWKS to validate the token"
            ),
            "make the cluster's OIDC issuer discovery document and JWKS publicly reachable over HTTPS (AKS: az aks update --enable-oidc-issuer)".to_string(),
        ),
        "AADSTS700027" => (
            format!(
                "Entra could not verify the token's signature with the keys {iss} publishes (its JWKS lacks the cluster's current ServiceAccount signing key)"
            ),
            "publish the cluster's ServiceAccount signing key in the issuer's JWKS (self-managed: azwi jwks --public-keys sa.pub, after key rotation upload the new jwks.json)".to_string(),
        ),
        "AADSTS700016" => (
            format!(
                "no application with client id {} exists in tenant {}",
                attempt.client_id, attempt.tenant_id
            ),
            "annotate the ServiceAccount with the identity's clientId (a GUID) and, if needed, the right tenant-id; recreate the pod".to_string(),
        ),
        "AADSTS90002" => (
            format!("tenant {} does not exist", attempt.tenant_id),
            format!(
                "set {} on the ServiceAccount to your tenant id (az account show --query tenantId -o tsv) and recreate the pod",
                a::TENANT_ID
            ),
        ),
        _ => (
            "Entra refused the exchange".to_string(),
            "see Entra's message; check the federated identity credential (issuer, subject, audience) of the application".to_string(),
        ),
    };
    let correlation = body
        .correlation_id
        .as_deref()
        .map(|c| format!(" (correlation id {c})"))
        .unwrap_or_default();
    Check::fail(
        ID,
        format!(
            "{cause} — {} answered {} {code}: {}{correlation}",
            attempt.endpoint,
            body.status,
            first_sentence(&body.error_description)
        ),
        fix,
    )
}

/// Whether Entra's answer is one its clients retry (429, 5xx): load shed or a failure on its
/// side, which says nothing about the binding.
pub fn transient(body: &EntraErrorBody) -> bool {
    crate::exchange::sdk_retry::retryable(body.status, "")
}

/// The cause once the SDK's attempts all got a transient answer: named, with Entra's words
/// and correlation id; a warning, since the binding was not judged.
pub fn unavailable(attempt: &Attempt<'_>, body: &EntraErrorBody) -> Check {
    let correlation = body
        .correlation_id
        .as_deref()
        .map(|c| format!(" (correlation id {c})"))
        .unwrap_or_default();
    Check::warn(
        ID,
        format!(
            "{} at {}{correlation}: the binding was not judged",
            crate::exchange::sdk_retry::exhausted(
                "Entra",
                body.status,
                &body.code(),
                &first_sentence(&body.error_description),
                crate::exchange::sdk_retry::MAX_ATTEMPTS,
            ),
            attempt.endpoint,
        ),
        "retry later; if it persists, check Entra's service health (https://azure.status.microsoft) and the tenant's throttling limits",
    )
}

/// Entra descriptions run on with trace ids and timestamps; the first sentences carry the news.
fn first_sentence(description: &str) -> String {
    // The code is already in the message: drop a leading "AADSTS70021: ".
    let description = match description.split_once(": ") {
        Some((code, rest)) if code.starts_with("AADSTS") => rest,
        _ => description,
    };
    let cut = description
        .find(" Trace ID:")
        .or_else(|| description.find("\r\n"))
        .unwrap_or(description.len());
    description[..cut].trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(iss: &str, sub: &str, exp: i64) -> Claims {
        Claims {
            iss: Some(iss.into()),
            sub: Some(sub.into()),
            aud: vec![a::AUDIENCE.into()],
            exp: Some(exp),
            iat: Some(exp - 3600),
            nbf: Some(exp - 3600),
            kubernetes: None,
        }
    }

    const ATTEMPT: Attempt<'static> = Attempt {
        client_id: "00000000-0000-0000-0000-0000000000a1",
        tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47",
        endpoint: "https://login.example/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token",
    };
    const SUB: &str = "system:serviceaccount:default:aks-service-account";

    #[test]
    fn throttles_and_server_errors_are_no_verdict_and_refusals_are() {
        let throttled = EntraErrorBody::parse(
            429,
            br#"{"error":"temporarily_unavailable","error_description":"AADSTS90033: A transient error has occurred. Please try again. Trace ID: x","error_codes":[90033],"correlation_id":"c-2"}"#,
        );
        assert!(transient(&throttled));
        let check = unavailable(&ATTEMPT, &throttled);
        assert_eq!(check.status, crate::model::Status::Warn);
        assert!(
            check.message.starts_with(
                "Entra throttled each of 3 attempts (HTTP 429 AADSTS90033: A transient error has occurred. Please try again.)"
            ) && check.message.contains("(correlation id c-2): the binding was not judged"),
            "{}",
            check.message
        );
        let failing = EntraErrorBody::parse(503, b"busy");
        assert!(transient(&failing));
        assert!(
            unavailable(&ATTEMPT, &failing)
                .message
                .starts_with("Entra failed on the service's side each of 3 attempts (HTTP 503")
        );
        let refused = EntraErrorBody::parse(
            400,
            br#"{"error":"invalid_request","error_description":"AADSTS70021: No matching federated identity record found.","error_codes":[70021]}"#,
        );
        assert!(!transient(&refused));
    }

    #[test]
    fn no_matching_credential_names_issuer_subject_and_audience() {
        let body = EntraErrorBody::parse(
            400,
            br#"{"error":"invalid_request","error_description":"AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: 'https://issuer.example'. Assertion Subject: 'system:serviceaccount:default:aks-service-account'. Assertion Audience: 'api://AzureADTokenExchange'. Trace ID: x","error_codes":[70021],"correlation_id":"c-1"}"#,
        );
        let check = rejection(
            &ATTEMPT,
            &body,
            &claims(
                "https://issuer.example",
                SUB,
                crate::token_claims::now() + 600,
            ),
        );
        assert!(
            check.message.contains("issuer https://issuer.example"),
            "{}",
            check.message
        );
        assert!(
            check.message.contains(&format!("subject {SUB}")),
            "{}",
            check.message
        );
        assert!(check.message.contains("AADSTS70021"), "{}", check.message);
        assert!(
            check.message.contains("correlation id c-1"),
            "{}",
            check.message
        );
        assert!(!check.message.contains("Trace ID"), "{}", check.message);
        let fix = check.remediation.unwrap();
        assert!(fix.contains("--issuer https://issuer.example --subject system:serviceaccount:default:aks-service-account"), "{fix}");
    }

    #[test]
    fn issuer_mismatch_explains_the_trailing_slash() {
        let body = EntraErrorBody::parse(
            400,
            br#"{"error":"invalid_request","error_description":"AADSTS700211: No matching federated identity record found for presented assertion issuer 'https://issuer.example/'.","error_codes":[700211]}"#,
        );
        let check = rejection(
            &ATTEMPT,
            &body,
            &claims(
                "https://issuer.example/",
                SUB,
                crate::token_claims::now() + 600,
            ),
        );
        assert!(check.message.contains("ends with '/'"), "{}", check.message);
        let body = EntraErrorBody::parse(
            400,
            br#"{"error":"invalid_request","error_description":"AADSTS700211: No matching federated identity record found for presented assertion issuer 'https://kubernetes.default.svc.cluster.local'.","error_codes":[700211]}"#,
        );
        let check = rejection(
            &ATTEMPT,
            &body,
            &claims(
                "https://kubernetes.default.svc.cluster.local",
                SUB,
                crate::token_claims::now() + 600,
            ),
        );
        assert!(
            check.message.contains("--enable-oidc-issuer"),
            "{}",
            check.message
        );
    }

    #[test]
    fn subject_mismatch_and_expiry_and_unknown_codes() {
        let body = EntraErrorBody::parse(
            400,
            br#"{"error":"invalid_request","error_description":"AADSTS700213: No matching federated identity record found for presented assertion subject 'system:serviceaccount:default:aks-service-account'.","error_codes":[700213]}"#,
        );
        let check = rejection(
            &ATTEMPT,
            &body,
            &claims("https://i", SUB, crate::token_claims::now() + 600),
        );
        assert!(
            check.message.contains(&format!("names subject {SUB}")),
            "{}",
            check.message
        );

        let body = EntraErrorBody::parse(
            401,
            br#"{"error":"invalid_client","error_description":"AADSTS700024: Client assertion is not within its valid time range.","error_codes":[700024]}"#,
        );
        let check = rejection(
            &ATTEMPT,
            &body,
            &claims("https://i", SUB, crate::token_claims::now() - 100),
        );
        assert!(check.message.contains("expired"), "{}", check.message);
        assert!(
            check.message.contains("401 AADSTS700024"),
            "{}",
            check.message
        );

        let body = EntraErrorBody::parse(
            400,
            br#"{"error":"invalid_request","error_description":"AADSTS90061: Request to External OIDC endpoint failed.","error_codes":[90061]}"#,
        );
        let check = rejection(
            &ATTEMPT,
            &body,
            &claims("https://i", SUB, crate::token_claims::now() + 600),
        );
        assert!(
            check
                .message
                .contains("https://i/.well-known/openid-configuration"),
            "{}",
            check.message
        );

        let body = EntraErrorBody::parse(
            400,
            br#"{"error":"invalid_request","error_description":"AADSTS12345: Something new.","error_codes":[12345]}"#,
        );
        let check = rejection(
            &ATTEMPT,
            &body,
            &claims("https://i", SUB, crate::token_claims::now() + 600),
        );
        assert!(
            check.message.contains("AADSTS12345: Something new."),
            "{}",
            check.message
        );
    }
}
