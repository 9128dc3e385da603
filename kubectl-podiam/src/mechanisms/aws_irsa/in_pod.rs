//! AssumeRoleWithWebIdentity made by the pod itself: from inside its network namespace, with
//! its own token file, at the STS endpoint its SDK would choose, through its proxy settings and
//! trusting its CA bundle. The answer's credentials come back into memory only.

use std::time::Duration;

use crate::evidence::RuntimeEnv;
use crate::exchange::CloudError;
use crate::exchange::aws_sts_answer::{self, WebIdentityAnswer};
use crate::mechanisms::pod_path::{self, Endpoint};
use crate::model::Check;
use crate::pod_session::{PodCall, PodSession, SecretFromFile, form};

/// STS as the pod's SDK calls it.
pub struct StsEndpoint {
    pub url: String,
    /// The variables that decided it, for messages.
    pub because: String,
}

/// What the pod's own exchange came to.
pub enum PodExchange {
    /// STS answered the pod: the credentials, or AWS's error code.
    Answered {
        result: Result<WebIdentityAnswer, CloudError>,
        client: String,
    },
    /// STS answered with an error status whose body the pod's client does not show
    /// (busybox wget): the code must come from an exchange made here.
    StatusOnly { status: u16, client: String },
    /// The pod's network path failed: the check naming the cause.
    Failed(Box<Check>),
    /// The pod's path could not be used (no client, the exec ended): why.
    Unusable(String),
}

/// How long the pod's client may take: the SDKs' own connect and read timeouts are of this
/// order, and a blocked endpoint must not hold a fleet run.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

pub const REACHABLE: &str = "aws.sts.reachable";

/// The endpoint the pod's SDK would call, from the pod's environment: a configured endpoint
/// (`AWS_ENDPOINT_URL_STS`, then `AWS_ENDPOINT_URL`), else the regional endpoint of
/// `AWS_REGION`/`AWS_DEFAULT_REGION` (the current SDKs' default, and what the webhook's
/// `AWS_STS_REGIONAL_ENDPOINTS=regional` asks older ones for), else the global endpoint.
pub fn sts_endpoint(env: &RuntimeEnv) -> StsEndpoint {
    let set = |name: &str| env.get(name).filter(|v| !v.is_empty());
    if set("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") != Some("true") {
        for name in ["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"] {
            if let Some(url) = set(name) {
                return StsEndpoint {
                    url: url.trim_end_matches('/').to_string() + "/",
                    because: format!("{name}={url}"),
                };
            }
        }
    }
    let region = set("AWS_REGION")
        .map(|r| (r, "AWS_REGION"))
        .or_else(|| set("AWS_DEFAULT_REGION").map(|r| (r, "AWS_DEFAULT_REGION")));
    let legacy = set("AWS_STS_REGIONAL_ENDPOINTS") == Some("legacy");
    match region {
        Some((region, var)) if !legacy || region != "us-east-1" => {
            let fips = set("AWS_USE_FIPS_ENDPOINT") == Some("true");
            let dual = set("AWS_USE_DUALSTACK_ENDPOINT") == Some("true");
            let (service, suffix) = match (fips, dual) {
                (false, false) => ("sts", "amazonaws.com"),
                (true, false) => ("sts-fips", "amazonaws.com"),
                (false, true) => ("sts", "api.aws"),
                (true, true) => ("sts-fips", "api.aws"),
            };
            let suffix = if region.starts_with("cn-") && !dual {
                "amazonaws.com.cn"
            } else {
                suffix
            };
            StsEndpoint {
                url: format!("https://{service}.{region}.{suffix}/"),
                because: format!("{var}={region}, regional endpoint"),
            }
        }
        Some((region, var)) => StsEndpoint {
            url: "https://sts.amazonaws.com/".into(),
            because: format!("{var}={region} with AWS_STS_REGIONAL_ENDPOINTS=legacy"),
        },
        None => StsEndpoint {
            url: "https://sts.amazonaws.com/".into(),
            because: "no AWS_REGION: the global endpoint".into(),
        },
    }
}

pub async fn exchange(
    session: &PodSession,
    env: &RuntimeEnv,
    endpoint: &StsEndpoint,
    role: &str,
    token_path: &str,
    session_name: &str,
) -> PodExchange {
    let call = PodCall::post_form(
        endpoint.url.clone(),
        form(&[
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", "2011-06-15"),
            ("RoleArn", role),
            ("RoleSessionName", session_name),
        ]),
        CALL_TIMEOUT,
    )
    .with_secret(SecretFromFile::FormField {
        path: token_path.into(),
        name: "WebIdentityToken".into(),
    });
    match session.call(&call).await {
        Ok(answer) if !answer.body_available => PodExchange::StatusOnly {
            status: answer.status,
            client: answer.client,
        },
        Ok(answer) => PodExchange::Answered {
            result: aws_sts_answer::parse(answer.status, &answer.body),
            client: answer.client,
        },
        Err(failure) => match pod_path::unusable(&failure) {
            Some(why) => PodExchange::Unusable(why),
            None => PodExchange::Failed(Box::new(pod_path::failure_check(
                &Endpoint {
                    check_id: REACHABLE,
                    service: "STS",
                    because: &endpoint.because,
                },
                &call,
                env,
                &failure,
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(vars: &str) -> String {
        sts_endpoint(&RuntimeEnv::parse(vars.as_bytes())).url
    }

    #[test]
    fn the_endpoint_the_pods_sdk_calls() {
        assert_eq!(endpoint(""), "https://sts.amazonaws.com/");
        assert_eq!(
            endpoint("AWS_REGION=eu-west-1\n"),
            "https://sts.eu-west-1.amazonaws.com/"
        );
        assert_eq!(
            endpoint("AWS_DEFAULT_REGION=us-east-1\n"),
            "https://sts.us-east-1.amazonaws.com/"
        );
        assert_eq!(
            endpoint("AWS_REGION=us-east-1\nAWS_STS_REGIONAL_ENDPOINTS=legacy\n"),
            "https://sts.amazonaws.com/"
        );
        assert_eq!(
            endpoint("AWS_REGION=us-east-1\nAWS_USE_FIPS_ENDPOINT=true\n"),
            "https://sts-fips.us-east-1.amazonaws.com/"
        );
        assert_eq!(
            endpoint("AWS_REGION=cn-north-1\n"),
            "https://sts.cn-north-1.amazonaws.com.cn/"
        );
        assert_eq!(
            endpoint(
                "AWS_REGION=us-east-1\nAWS_ENDPOINT_URL_STS=https://vpce-1.sts.us-east-1.vpce.amazonaws.com\n"
            ),
            "https://vpce-1.sts.us-east-1.vpce.amazonaws.com/"
        );
        assert_eq!(
            endpoint("AWS_ENDPOINT_URL=https://x\nAWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true\n"),
            "https://sts.amazonaws.com/"
        );
    }
}
