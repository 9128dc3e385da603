//! The external_account exchange made by the pod itself: Google STS at the config's
//! `token_url` with the subject token read from `credential_source.file` inside the pod, then
//! IAM Credentials `generateAccessToken` at the config's impersonation URL, both from the
//! pod's network namespace. The federated and access tokens come back into memory only (the
//! federated one goes back into the pod as the impersonation's bearer).

use std::time::Duration;

use serde::Deserialize;

use crate::evidence::RuntimeEnv;
use crate::exchange::gcp_credentials::ExternalAccount;
use crate::exchange::gcp_metadata::AccessToken;
use crate::exchange::{CloudError, gcp_sts, sdk_retry};
use crate::mechanisms::pod_path::{self, Endpoint};
use crate::model::Check;
use crate::pod_session::{Method, PodCall, PodSession, SecretFromFile, form};

use crate::cloud::gcp as a;

const CALL_TIMEOUT: Duration = Duration::from_secs(10);
pub const STS_REACHABLE: &str = "gcp.sts.reachable";
pub const IAM_REACHABLE: &str = "gcp.iam.reachable";

/// Why a step made in the pod gave no cloud answer.
pub enum StepFailure {
    /// The cloud answered with an error (its code and message).
    Cloud(CloudError),
    /// The pod's network path failed: the check naming the cause.
    Path(Box<Check>),
    /// The pod could not make the call (no client, the exec ended, an error body the
    /// pod's client hides): why; the step is then made from this machine.
    Unusable(String),
}

#[derive(Deserialize)]
struct StsAnswer {
    access_token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateAnswer {
    access_token: String,
}

/// Where the pod's calls go, and with which client they were made (for the evidence).
pub struct PodPath<'a> {
    pub session: &'a PodSession,
    pub env: &'a RuntimeEnv,
}

impl PodPath<'_> {
    /// STS with the subject token read from `file` in the pod (text format only).
    pub async fn sts(
        &self,
        config: &ExternalAccount,
        file: &str,
    ) -> Result<(AccessToken, String), StepFailure> {
        let call = PodCall::post_form(
            config.token_url.clone(),
            form(&[
                ("grant_type", a::GRANT_TYPE_TOKEN_EXCHANGE),
                ("requested_token_type", a::TOKEN_TYPE_ACCESS_TOKEN),
                ("subject_token_type", &config.subject_token_type),
                ("audience", &config.audience),
                ("scope", a::SCOPE_CLOUD_PLATFORM),
            ]),
            CALL_TIMEOUT,
        )
        .with_secret(SecretFromFile::FormField {
            path: file.into(),
            name: "subject_token".into(),
        });
        let body = self
            .answer(
                &call,
                STS_REACHABLE,
                "Google STS",
                "the external_account config's token_url",
            )
            .await?;
        let (client, bytes) = body;
        serde_json::from_slice::<StsAnswer>(&bytes)
            .map(|a| {
                (
                    AccessToken {
                        token: a.access_token,
                        expires_in: None,
                    },
                    client,
                )
            })
            .map_err(|_| {
                StepFailure::Cloud(CloudError::Rejected {
                    code: "invalid_response".into(),
                    message: "STS answered 200 without an access_token".into(),
                })
            })
    }

    /// `generateAccessToken` at `url` with the federated token as bearer.
    pub async fn impersonate(
        &self,
        url: &str,
        federated: &AccessToken,
    ) -> Result<AccessToken, StepFailure> {
        let call = PodCall {
            method: Method::Post,
            content_type: Some("application/json".into()),
            body: serde_json::json!({"delegates": [], "scope": [a::SCOPE_CLOUD_PLATFORM], "lifetime": "3600s"})
                .to_string(),
            ..PodCall::get(url, CALL_TIMEOUT)
        }
        .secret_header("Authorization", &format!("Bearer {}", federated.token));
        let (_, bytes) = self
            .answer(
                &call,
                IAM_REACHABLE,
                "IAM Credentials",
                "the external_account config's service_account_impersonation_url",
            )
            .await?;
        serde_json::from_slice::<GenerateAnswer>(&bytes)
            .map(|a| AccessToken {
                token: a.access_token,
                expires_in: None,
            })
            .map_err(|_| {
                StepFailure::Cloud(CloudError::Rejected {
                    code: "invalid_response".into(),
                    message: "generateAccessToken answered 200 without an accessToken".into(),
                })
            })
    }

    /// A 200 body (and the client), or why not. Google's own clients make the
    /// external_account requests once (google-auth-library-python's `sts.py`), but a 429 or
    /// 5xx is the service being busy, not a verdict on the binding: retried as
    /// `exchange/sdk_retry.rs` says, then named as a cause that is no answer (exit 3).
    async fn answer(
        &self,
        call: &PodCall,
        check_id: &'static str,
        service: &str,
        because: &str,
    ) -> Result<(String, Vec<u8>), StepFailure> {
        let transient = |answer: &Result<(String, Vec<u8>), (u16, StepFailure)>| match answer {
            Err((status, StepFailure::Cloud(_))) => {
                sdk_retry::retryable(*status, "").then_some(*status)
            }
            _ => None,
        };
        let (answer, attempts) = sdk_retry::retried(
            service,
            || self.answer_once(call, check_id, service, because),
            transient,
        )
        .await;
        answer.map_err(|(status, failure)| match failure {
            StepFailure::Cloud(e) => {
                StepFailure::Cloud(sdk_retry::last_answer(service, status, e, attempts))
            }
            other => other,
        })
    }

    /// One call: a 200 body (and the client), or why not with the HTTP status (0 when no
    /// answer came).
    async fn answer_once(
        &self,
        call: &PodCall,
        check_id: &'static str,
        service: &str,
        because: &str,
    ) -> Result<(String, Vec<u8>), (u16, StepFailure)> {
        match self.session.call(call).await {
            Ok(answer) if answer.status == 200 => Ok((answer.client, answer.body)),
            Ok(answer) if !answer.body_available => Err((
                answer.status,
                StepFailure::Unusable(format!(
                    "{service} answered the pod with HTTP {}, but the pod's {} does not show the error",
                    answer.status, answer.client
                )),
            )),
            Ok(answer) => {
                let (code, message) =
                    gcp_sts::error_of(answer.status, &String::from_utf8_lossy(&answer.body));
                Err((
                    answer.status,
                    StepFailure::Cloud(CloudError::Rejected { code, message }),
                ))
            }
            Err(failure) => Err((
                0,
                match pod_path::unusable(&failure) {
                    Some(why) => StepFailure::Unusable(why),
                    None => StepFailure::Path(Box::new(pod_path::failure_check(
                        &Endpoint {
                            check_id,
                            service,
                            because,
                        },
                        call,
                        self.env,
                        &failure,
                    ))),
                },
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pod_session::tests::through_curl_and_python;

    const THROTTLED: &str = "HTTP/1.0 429 Too Many Requests\r\nContent-Type: application/json\r\n\r\n{\"error\":{\"code\":429,\"message\":\"Quota exceeded for quota metric 'Token exchange requests'\",\"status\":\"RESOURCE_EXHAUSTED\"}}";
    const UNAVAILABLE: &str = "HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n\r\n{\"error\":{\"code\":503,\"message\":\"The service is currently unavailable.\",\"status\":\"UNAVAILABLE\"}}";
    const REFUSED: &str = "HTTP/1.0 400 Bad Request\r\nContent-Type: application/json\r\n\r\n{\"error\":\"invalid_grant\",\"error_description\":\"The audience in ID Token does not match the expected audience.\"}";
    const ANSWER: &str = "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"access_token\":\"ya29.federated\",\"issued_token_type\":\"urn:ietf:params:oauth:token-type:access_token\",\"token_type\":\"Bearer\",\"expires_in\":3600}";

    /// The pod's STS exchange (curl, then python3) against a server answering `responses` in
    /// turn; each client's outcome and the calls received.
    async fn exchanged(
        responses: Vec<&'static str>,
    ) -> Vec<(Result<(AccessToken, String), StepFailure>, usize)> {
        through_curl_and_python(responses, async |pod, port, token_path| {
            let config = ExternalAccount {
                audience: "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/k".into(),
                subject_token_type: a::TOKEN_TYPE_JWT.into(),
                token_url: format!("http://127.0.0.1:{port}/v1/token"),
                service_account_impersonation_url: None,
                credential_source: serde_json::from_str(r#"{"file":"/unused"}"#).unwrap(),
            };
            let env = RuntimeEnv::parse(b"");
            let path = PodPath {
                session: pod,
                env: &env,
            };
            path.sts(&config, token_path).await
        })
        .await
    }

    #[tokio::test]
    async fn a_throttle_then_a_5xx_are_retried_then_the_answer_counts() {
        for (outcome, calls) in exchanged(vec![THROTTLED, UNAVAILABLE, ANSWER]).await {
            match outcome {
                Ok((token, _client)) => assert_eq!(token.token, "ya29.federated"),
                Err(_) => panic!("the third attempt's token was not used"),
            }
            assert_eq!(calls, 3, "one call per attempt");
        }
    }

    #[tokio::test]
    async fn google_sts_unavailable_to_every_attempt_is_a_named_cause_not_a_refusal() {
        for (outcome, calls) in exchanged(vec![UNAVAILABLE]).await {
            match outcome {
                Err(StepFailure::Cloud(CloudError::Unreachable(cause))) => assert!(
                    cause.contains("Google STS failed on the service's side each of 3 attempts")
                        && cause.contains("HTTP 503 UNAVAILABLE")
                        && cause.contains("retry later"),
                    "{cause}"
                ),
                _ => panic!("a 503 after the last attempt must be a cause, not a verdict"),
            }
            assert_eq!(calls, 3);
        }
    }

    #[tokio::test]
    async fn a_refusal_is_never_retried() {
        for (outcome, calls) in exchanged(vec![REFUSED, ANSWER]).await {
            assert!(
                matches!(
                    &outcome,
                    Err(StepFailure::Cloud(CloudError::Rejected { code, .. })) if code == "invalid_grant"
                ),
                "invalid_grant must stay the answer"
            );
            assert_eq!(calls, 1);
        }
    }
}
