//! The exchange an AKS workload-identity pod's SDK performs: the ServiceAccount token as a
//! client assertion (client_credentials) at `{authority}/{tenant}/oauth2/v2.0/token`, through
//! azure_identity's `ClientAssertionCredential` with the authority as a custom cloud. Its HTTP
//! client (reqwest + rustls platform verifier) loads roots via rustls-native-certs, which
//! honours SSL_CERT_FILE, so an emulated HTTPS authority with its own CA works unchanged.
//! The assertion and the access token stay in memory; only their claims are reported.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::TokenCredential;
use azure_core::error::ErrorKind;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{
    AsyncRawResponse, ClientMethodOptions, ClientOptions, Context, ExponentialRetryOptions,
    Request, RetryOptions,
};
use azure_identity::{
    ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions,
};
use serde::Deserialize;

pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// The projected ServiceAccount token handed to the credential; Debug never shows it.
struct InMemoryAssertion(String);

impl std::fmt::Debug for InMemoryAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InMemoryAssertion(<redacted>)")
    }
}

#[async_trait::async_trait]
impl ClientAssertion for InMemoryAssertion {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        Ok(self.0.clone())
    }
}

pub struct EntraRequest<'a> {
    pub authority_host: &'a str,
    pub tenant_id: &'a str,
    pub client_id: &'a str,
    pub assertion: &'a str,
    pub scope: &'a str,
}

/// What Entra granted: the access token (never printed) and its identity claims.
pub struct EntraGrant {
    pub access_token: String,
    pub claims: AccessTokenClaims,
}

impl std::fmt::Debug for EntraGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntraGrant")
            .field("claims", &self.claims)
            .finish_non_exhaustive()
    }
}

/// Identity claims of an Entra access token: v1 tokens name the app in `appid`, v2 in `azp`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct AccessTokenClaims {
    pub appid: Option<String>,
    pub azp: Option<String>,
    pub oid: Option<String>,
    pub tid: Option<String>,
    pub iss: Option<String>,
}

impl AccessTokenClaims {
    pub fn decode(token: &str) -> Result<Self, String> {
        jsonwebtoken::dangerous::insecure_decode::<AccessTokenClaims>(token.trim())
            .map(|d| d.claims)
            // The message names the failure kind, never the input.
            .map_err(|e| format!("the access token is not a JWT ({e})"))
    }

    pub fn client_id(&self) -> Option<&str> {
        self.appid.as_deref().or(self.azp.as_deref())
    }
}

/// Entra's JSON error body (`error`, `error_description`, `error_codes`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct EntraErrorBody {
    #[serde(skip)]
    pub status: u16,
    pub error: String,
    pub error_description: String,
    pub error_codes: Vec<i64>,
    pub trace_id: Option<String>,
    pub correlation_id: Option<String>,
}

impl EntraErrorBody {
    /// Parses an error answer; a body that is not Entra JSON keeps its first line as the
    /// description so the user still sees what came back.
    pub fn parse(status: u16, body: &[u8]) -> Self {
        let mut parsed =
            serde_json::from_slice::<EntraErrorBody>(body).unwrap_or_else(|_| EntraErrorBody {
                error_description: String::from_utf8_lossy(body)
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect(),
                ..Default::default()
            });
        parsed.status = status;
        parsed
    }

    /// `AADSTS70021` from `error_codes`, else from the description, else the OAuth `error`.
    pub fn code(&self) -> String {
        if let Some(c) = self.error_codes.first() {
            return format!("AADSTS{c}");
        }
        if let Some(start) = self.error_description.find("AADSTS") {
            let digits: String = self.error_description[start + 6..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if !digits.is_empty() {
                return format!("AADSTS{digits}");
            }
        }
        if self.error.is_empty() {
            format!("HTTP {}", self.status)
        } else {
            self.error.clone()
        }
    }

    /// The value Entra quotes after `label` in the description, e.g. "Assertion Issuer":
    /// up to the closing quote when quoted, else up to the next space (a final '.' dropped).
    pub fn quoted(&self, label: &str) -> Option<String> {
        let rest = &self.error_description[self.error_description.find(label)? + label.len()..];
        let rest = rest.trim_start_matches([':', ' ']);
        let value = match rest.strip_prefix('\'') {
            Some(inner) => inner.split('\'').next().unwrap_or_default(),
            None => rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .trim_end_matches('.'),
        };
        (!value.is_empty()).then(|| value.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntraError {
    #[error("{}: {}", .0.code(), .0.error_description)]
    Rejected(EntraErrorBody),
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The request could not be made as configured (authority not HTTPS, bad tenant, …).
    #[error("{0}")]
    Invalid(String),
}

/// azure_identity 1.0 reads Entra's error body into borrowed strings, which fails on the
/// escaped `\r\n` that real Entra descriptions carry, and the AADSTS code would be lost; this
/// per-try policy keeps a copy of any error answer so the diagnosis sees what Entra said.
#[derive(Debug, Default)]
struct ErrorBodyCapture(Mutex<Option<(u16, Vec<u8>)>>);

#[async_trait::async_trait]
impl Policy for ErrorBodyCapture {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let response = next[0].send(ctx, request, &next[1..]).await?;
        let status = u16::from(response.status());
        if (200..300).contains(&status) {
            return Ok(response);
        }
        let (status, headers, body) = response.deconstruct();
        let bytes = body.collect().await?;
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some((u16::from(status), bytes.to_vec()));
        }
        Ok(AsyncRawResponse::from_bytes(status, headers, bytes))
    }
}

pub async fn exchange(
    request: &EntraRequest<'_>,
    timeout: Duration,
) -> Result<EntraGrant, EntraError> {
    let owned = [
        request.authority_host,
        request.tenant_id,
        request.client_id,
        request.assertion,
        request.scope,
    ]
    .map(str::to_string);
    // The SDK's HTTP client panics when no root certificate loads (e.g. an empty
    // SSL_CERT_FILE); a task keeps that panic from ending the report.
    match tokio::spawn(exchange_owned(owned, timeout)).await {
        Ok(result) => result,
        Err(e) => {
            let reason = e
                .try_into_panic()
                .ok()
                .and_then(|p| {
                    p.downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                })
                .unwrap_or_else(|| "the exchange was aborted".into());
            Err(EntraError::Unreachable(format!(
                "no HTTP client: {reason} (check SSL_CERT_FILE / the system roots)"
            )))
        }
    }
}

async fn exchange_owned(
    [authority_host, tenant_id, client_id, assertion, scope]: [String; 5],
    timeout: Duration,
) -> Result<EntraGrant, EntraError> {
    let cloud = CloudConfiguration::Custom({
        let mut custom = CustomConfiguration::default();
        custom.authority_host = authority_host;
        custom
    });
    let capture = Arc::new(ErrorBodyCapture::default());
    let options = ClientAssertionCredentialOptions {
        client_options: ClientOptions {
            cloud: Some(Arc::new(cloud)),
            // The SDK's own exponential retry (408, 429, 5xx; Retry-After honoured on 429 and
            // 503), as the pod's azure-identity would retry, with three attempts in all as the
            // other clouds' standard modes: a throttle that clears is no finding.
            retry: RetryOptions::exponential(ExponentialRetryOptions {
                max_retries: 2,
                ..Default::default()
            }),
            per_try_policies: vec![capture.clone()],
            ..Default::default()
        },
    };
    let credential = ClientAssertionCredential::new(
        tenant_id,
        client_id,
        InMemoryAssertion(assertion),
        Some(options),
    )
    .map_err(|e| EntraError::Invalid(e.to_string()))?;
    let answer = tokio::time::timeout(timeout, credential.get_token(&[scope.as_str()], None))
        .await
        .map_err(|_| EntraError::Unreachable(format!("no answer within {}s", timeout.as_secs())))?;
    let token = match answer {
        Ok(token) => token,
        Err(e) => {
            let captured = capture.0.lock().ok().and_then(|mut slot| slot.take());
            return Err(match captured {
                Some((status, body)) => EntraError::Rejected(EntraErrorBody::parse(status, &body)),
                None => classify(e),
            });
        }
    };
    let access_token = token.token.secret().to_string();
    let claims = AccessTokenClaims::decode(&access_token).map_err(EntraError::Invalid)?;
    Ok(EntraGrant {
        access_token,
        claims,
    })
}

/// The credential wraps the pipeline's error; an HTTP answer keeps its raw body.
fn classify(err: azure_core::Error) -> EntraError {
    let inner = err.downcast_ref::<azure_core::Error>().unwrap_or(&err);
    match inner.kind() {
        ErrorKind::HttpResponse {
            status,
            raw_response,
            ..
        } => EntraError::Rejected(EntraErrorBody::parse(
            u16::from(*status),
            raw_response
                .as_ref()
                .map(|r| r.body().as_ref())
                .unwrap_or_default(),
        )),
        ErrorKind::Connection | ErrorKind::Io => EntraError::Unreachable(error_chain(inner)),
        _ => EntraError::Invalid(error_chain(inner)),
    }
}

/// Each cause's Display once: "failed to execute request: … : invalid peer certificate".
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const AADSTS70021: &str = r#"{"error":"invalid_request","error_description":"AADSTS70021: No matching federated identity record found for presented assertion. Assertion Issuer: 'https://oidc.example/issuer'. Assertion Subject: 'system:serviceaccount:default:aks-service-account'. Assertion Audience: 'api://AzureADTokenExchange'. https://docs.microsoft.com/azure/active-directory/develop/workload-identity-federation Trace ID: 1 Correlation ID: 2 Timestamp: 2026-01-01 00:00:00Z","error_codes":[70021],"timestamp":"2026-01-01 00:00:00Z","trace_id":"1","correlation_id":"2"}"#;

    #[test]
    fn parses_an_entra_error_body() {
        let body = EntraErrorBody::parse(400, AADSTS70021.as_bytes());
        assert_eq!(body.status, 400);
        assert_eq!(body.error, "invalid_request");
        assert_eq!(body.error_codes, vec![70021]);
        assert_eq!(body.code(), "AADSTS70021");
        assert_eq!(
            body.quoted("Assertion Issuer").as_deref(),
            Some("https://oidc.example/issuer")
        );
        assert_eq!(
            body.quoted("Assertion Subject").as_deref(),
            Some("system:serviceaccount:default:aks-service-account")
        );
        assert_eq!(
            body.quoted("Assertion Audience").as_deref(),
            Some("api://AzureADTokenExchange")
        );
        assert_eq!(body.correlation_id.as_deref(), Some("2"));
        let dotted = EntraErrorBody::parse(
            400,
            br#"{"error_description":"AADSTS70021: x. Assertion Audience: 'sts.amazonaws.com'. Assertion Subject: plain.","error_codes":[70021]}"#,
        );
        assert_eq!(
            dotted.quoted("Assertion Audience").as_deref(),
            Some("sts.amazonaws.com")
        );
        assert_eq!(dotted.quoted("Assertion Subject").as_deref(), Some("plain"));
    }

    #[test]
    fn code_falls_back_to_the_description_then_the_oauth_error() {
        let body = EntraErrorBody::parse(
            401,
            br#"{"error":"invalid_client","error_description":"AADSTS700024: Client assertion is not within its valid time range."}"#,
        );
        assert_eq!(body.code(), "AADSTS700024");
        let body = EntraErrorBody::parse(
            400,
            br#"{"error":"invalid_scope","error_description":"bad scope"}"#,
        );
        assert_eq!(body.code(), "invalid_scope");
    }

    #[test]
    fn non_json_bodies_keep_their_first_line() {
        let body = EntraErrorBody::parse(502, b"Bad Gateway\nmore");
        assert_eq!(body.code(), "HTTP 502");
        assert_eq!(body.error_description, "Bad Gateway");
    }

    #[test]
    fn access_token_claims_name_the_app() {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let token = format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
            URL_SAFE_NO_PAD
                .encode(r#"{"appid":"00000000-0000-0000-0000-0000000000a1","oid":"o","tid":"t"}"#)
        );
        let claims = AccessTokenClaims::decode(&token).unwrap();
        assert_eq!(
            claims.client_id(),
            Some("00000000-0000-0000-0000-0000000000a1")
        );
        assert_eq!(claims.oid.as_deref(), Some("o"));
        let err = AccessTokenClaims::decode("garbage-token-value").unwrap_err();
        assert!(!err.contains("garbage-token-value"), "{err}");
    }
}
