//! Entra's client-assertion token request made by the pod itself: from inside its network
//! namespace, with its own `AZURE_FEDERATED_TOKEN_FILE`, at the authority its SDK reads from
//! `AZURE_AUTHORITY_HOST`, through its proxy settings and trusting its CA bundle. The access
//! token comes back into memory only.

use std::time::Duration;

use serde::Deserialize;

use crate::endpoints::azure;
use crate::evidence::RuntimeEnv;
use crate::exchange::azure_entra::{AccessTokenClaims, EntraError, EntraErrorBody, EntraGrant};
use crate::exchange::sdk_retry;
use crate::mechanisms::pod_path::{self, Endpoint};
use crate::model::Check;
use crate::pod_session::{PodCall, PodSession, SecretFromFile, form};

pub const REACHABLE: &str = "azure.entra.reachable";
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Entra's token endpoint as the pod's SDK builds it.
pub struct EntraEndpoint {
    pub url: String,
    pub because: String,
}

pub fn endpoint(env: &RuntimeEnv, tenant_id: &str) -> Result<EntraEndpoint, String> {
    let lookup = |name: &str| env.get(name).map(str::to_string);
    let authority = azure::authority_host(&lookup).map_err(|e| e.to_string())?;
    Ok(EntraEndpoint {
        url: azure::token_url(&authority.host, tenant_id),
        because: authority.because,
    })
}

pub enum PodExchange {
    Answered {
        result: Result<EntraGrant, EntraError>,
        client: String,
    },
    /// Entra answered an error the pod's client does not show (busybox wget).
    StatusOnly {
        status: u16,
        client: String,
    },
    Failed(Box<Check>),
    Unusable(String),
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

pub async fn exchange(
    session: &PodSession,
    env: &RuntimeEnv,
    endpoint: &EntraEndpoint,
    client_id: &str,
    scope: &str,
    token_path: &str,
) -> PodExchange {
    let call = PodCall::post_form(
        endpoint.url.clone(),
        form(&[
            ("client_id", client_id),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("scope", scope),
            ("grant_type", "client_credentials"),
        ]),
        CALL_TIMEOUT,
    )
    .with_secret(SecretFromFile::FormField {
        path: token_path.into(),
        name: "client_assertion".into(),
    });
    // The pod's curl is no SDK: retry for it as azure-identity would (429 and 5xx, three
    // attempts with backoff), so a throttle that clears is no finding; the last answer stays.
    sdk_retry::retried(
        "Entra",
        || call_once(session, env, endpoint, &call),
        transient_status,
    )
    .await
    .0
}

/// The status of an answer the pod's SDK would retry (429, 5xx).
fn transient_status(outcome: &PodExchange) -> Option<u16> {
    let status = match outcome {
        PodExchange::Answered {
            result: Err(EntraError::Rejected(body)),
            ..
        } => body.status,
        PodExchange::StatusOnly { status, .. } => *status,
        _ => return None,
    };
    sdk_retry::retryable(status, "").then_some(status)
}

async fn call_once(
    session: &PodSession,
    env: &RuntimeEnv,
    endpoint: &EntraEndpoint,
    call: &PodCall,
) -> PodExchange {
    match session.call(call).await {
        Ok(answer) if answer.status != 200 && !answer.body_available => PodExchange::StatusOnly {
            status: answer.status,
            client: answer.client,
        },
        Ok(answer) if answer.status == 200 => {
            let result = match serde_json::from_slice::<TokenAnswer>(&answer.body) {
                Err(_) => Err(EntraError::Invalid(format!(
                    "Entra answered 200 without an access_token ({} bytes)",
                    answer.body.len()
                ))),
                Ok(t) => match AccessTokenClaims::decode(&t.access_token) {
                    Ok(claims) => Ok(EntraGrant {
                        access_token: t.access_token,
                        claims,
                    }),
                    Err(e) => Err(EntraError::Invalid(e)),
                },
            };
            PodExchange::Answered {
                result,
                client: answer.client,
            }
        }
        Ok(answer) => PodExchange::Answered {
            result: Err(EntraError::Rejected(EntraErrorBody::parse(
                answer.status,
                &answer.body,
            ))),
            client: answer.client,
        },
        Err(failure) => match pod_path::unusable(&failure) {
            Some(why) => PodExchange::Unusable(why),
            None => PodExchange::Failed(Box::new(pod_path::failure_check(
                &Endpoint {
                    check_id: REACHABLE,
                    service: "Entra",
                    because: &endpoint.because,
                },
                call,
                env,
                &failure,
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod_session::tests::through_curl_and_python;

    const THROTTLED: &str = "HTTP/1.0 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 1\r\n\r\n{\"error\":\"temporarily_unavailable\",\"error_description\":\"AADSTS90033: A transient error has occurred. Please try again.\",\"error_codes\":[90033]}";
    const FAILING: &str = "HTTP/1.0 500 Internal Server Error\r\nContent-Type: application/json\r\n\r\n{\"error\":\"temporarily_unavailable\",\"error_description\":\"AADSTS90033: A transient error has occurred. Please try again.\",\"error_codes\":[90033]}";
    const REFUSED: &str = "HTTP/1.0 400 Bad Request\r\nContent-Type: application/json\r\n\r\n{\"error\":\"invalid_request\",\"error_description\":\"AADSTS70021: No matching federated identity record found for presented assertion.\",\"error_codes\":[70021]}";
    /// An access token whose claims decode (the signature is not checked here).
    const ANSWER: &str = "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"token_type\":\"Bearer\",\"expires_in\":3599,\"access_token\":\"eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJhcHBpZCI6IjExMTExMTExLTIyMjItMzMzMy00NDQ0LTU1NTU1NTU1NTU1NSIsInRpZCI6InQiLCJvaWQiOiJvIiwiYXVkIjoiaHR0cHM6Ly9zdG9yYWdlLmF6dXJlLmNvbSJ9.c2ln\"}";

    /// The pod's token request (curl, then python3: both show Entra's body) against a server
    /// answering `responses` in turn; returns each client's outcome and the calls received.
    async fn exchanged(responses: Vec<&'static str>) -> Vec<(PodExchange, usize)> {
        through_curl_and_python(responses, async |pod, port, token_path| {
            let endpoint = EntraEndpoint {
                url: format!("http://127.0.0.1:{port}/t/oauth2/v2.0/token"),
                because: "the test's endpoint".into(),
            };
            let env = RuntimeEnv::parse(b"");
            exchange(
                pod,
                &env,
                &endpoint,
                "11111111-2222-3333-4444-555555555555",
                "https://storage.azure.com/.default",
                token_path,
            )
            .await
        })
        .await
    }

    #[tokio::test]
    async fn a_throttle_then_a_5xx_are_retried_as_azure_identity_would_then_the_answer_counts() {
        for (outcome, calls) in exchanged(vec![THROTTLED, FAILING, ANSWER]).await {
            match outcome {
                PodExchange::Answered {
                    result: Ok(grant), ..
                } => assert_eq!(
                    grant.claims.client_id(),
                    Some("11111111-2222-3333-4444-555555555555")
                ),
                PodExchange::Answered { result: Err(e), .. } => {
                    panic!("the third attempt's token was not used: {e:?}")
                }
                _ => panic!("the third attempt's token was not used"),
            }
            assert_eq!(calls, 3, "one call per attempt");
        }
    }

    #[tokio::test]
    async fn entra_failing_every_attempt_keeps_its_last_answer_after_three() {
        for (outcome, calls) in exchanged(vec![FAILING]).await {
            match outcome {
                PodExchange::Answered {
                    result: Err(EntraError::Rejected(body)),
                    ..
                } => {
                    assert_eq!(body.status, 500);
                    assert_eq!(body.code(), "AADSTS90033");
                }
                _ => panic!("the last transient answer must stay, to be named"),
            }
            assert_eq!(calls, 3, "three attempts, as the SDKs' defaults here");
        }
    }

    #[tokio::test]
    async fn a_refusal_is_never_retried() {
        for (outcome, calls) in exchanged(vec![REFUSED, ANSWER]).await {
            assert!(
                matches!(
                    &outcome,
                    PodExchange::Answered { result: Err(EntraError::Rejected(body)), .. } if body.code() == "AADSTS70021"
                ),
                "AADSTS70021 must stay the answer"
            );
            assert_eq!(calls, 1);
        }
    }
}
