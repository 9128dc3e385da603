//! Entra's client-assertion token request made by the pod itself: from inside its network
//! namespace, with its own `AZURE_FEDERATED_TOKEN_FILE`, at the authority its SDK reads from
//! `AZURE_AUTHORITY_HOST`, through its proxy settings and trusting its CA bundle. The access
//! token comes back into memory only.

use std::time::Duration;

use serde::Deserialize;

use crate::endpoints::azure;
use crate::evidence::RuntimeEnv;
use crate::exchange::azure_entra::{AccessTokenClaims, EntraError, EntraErrorBody, EntraGrant};
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
    match session.call(&call).await {
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
                &call,
                env,
                &failure,
            ))),
        },
    }
}
