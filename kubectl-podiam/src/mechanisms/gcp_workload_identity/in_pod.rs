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
use crate::exchange::{CloudError, gcp_sts};
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

    /// A 200 body (and the client), or why not.
    async fn answer(
        &self,
        call: &PodCall,
        check_id: &'static str,
        service: &str,
        because: &str,
    ) -> Result<(String, Vec<u8>), StepFailure> {
        match self.session.call(call).await {
            Ok(answer) if answer.status == 200 => Ok((answer.client, answer.body)),
            Ok(answer) if !answer.body_available => Err(StepFailure::Unusable(format!(
                "{service} answered the pod with HTTP {}, but the pod's {} does not show the error",
                answer.status, answer.client
            ))),
            Ok(answer) => {
                let (code, message) =
                    gcp_sts::error_of(answer.status, &String::from_utf8_lossy(&answer.body));
                Err(StepFailure::Cloud(CloudError::Rejected { code, message }))
            }
            Err(failure) => Err(match pod_path::unusable(&failure) {
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
            }),
        }
    }
}
