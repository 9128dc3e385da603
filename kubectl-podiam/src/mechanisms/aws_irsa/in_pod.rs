//! AssumeRoleWithWebIdentity made by the pod itself: from inside its network namespace, with
//! its own token file, at the STS endpoint its SDK would choose, through its proxy settings and
//! trusting its CA bundle. The answer's credentials come back into memory only.

use std::time::Duration;

use crate::endpoints::aws_sts::{self, SdkFamily, StsEndpoint};
use crate::evidence::RuntimeEnv;
use crate::exchange::CloudError;
use crate::exchange::aws_sts_answer::{self, WebIdentityAnswer};
use crate::mechanisms::pod_path::{self, Endpoint};
use crate::model::Check;
use crate::pod_session::{PodCall, PodSession, SecretFromFile, form};

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

/// The STS endpoints the pod's SDK would call, from the pod's environment
/// (`endpoints::aws_sts`, each SDK family's rules): the one most families choose first, then
/// the others with the families that choose them (e.g. botocore < 1.40 keeps the global
/// endpoint where the current SDKs go regional).
pub fn sts_endpoints(env: &RuntimeEnv) -> (StsEndpoint, Vec<(StsEndpoint, String)>) {
    let lookup = |name: &str| env.get(name).map(str::to_string);
    let mut view = aws_sts::pod_view(&lookup).endpoints;
    // Stable: ties keep the families' order (current SDKs first).
    view.sort_by_key(|(_, families)| std::cmp::Reverse(families.len()));
    let describe = |families: &[SdkFamily]| {
        families
            .iter()
            .map(|f| f.label())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut endpoints = view
        .into_iter()
        .map(|(e, families)| (e, describe(&families)));
    let Some((primary, _)) = endpoints.next() else {
        return (
            StsEndpoint {
                url: crate::cloud::aws::STS_GLOBAL_URL.into(),
                host: crate::cloud::aws::STS_GLOBAL_HOST.into(),
                port: 443,
                signing_region: None,
                because: "no SDK resolves an endpoint from this environment".into(),
            },
            Vec::new(),
        );
    };
    (primary, endpoints.collect())
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
    })
    .with_ca_file(aws_ca_bundle(env));
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

/// The bundle every AWS SDK and the CLI trust instead of the default when it is set.
fn aws_ca_bundle(env: &RuntimeEnv) -> Option<String> {
    env.get("AWS_CA_BUNDLE")
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// Whether the pod reaches `endpoint` at all (any HTTP answer, no token sent): for the
/// endpoints other SDK families would call. Err is the failing check naming the cause.
pub async fn reachable(
    session: &PodSession,
    env: &RuntimeEnv,
    endpoint: &StsEndpoint,
    families: &str,
) -> Result<String, Check> {
    let call = PodCall::get(endpoint.url.clone(), CALL_TIMEOUT).with_ca_file(aws_ca_bundle(env));
    match session.call(&call).await {
        Ok(answer) => Ok(answer.client),
        Err(failure) => {
            let because = format!("{families}: {}", endpoint.because);
            let mut check = pod_path::failure_check(
                &Endpoint {
                    check_id: ENDPOINT,
                    service: "STS",
                    because: &because,
                },
                &call,
                env,
                &failure,
            );
            check.status = crate::model::Status::Warn;
            check.message = format!(
                "pods whose SDK is {families} call another endpoint: {}",
                check.message
            );
            Err(check)
        }
    }
}

/// The endpoints the SDK families would call, beyond the one exchanged with.
pub const ENDPOINT: &str = "aws.sts.endpoint";

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(vars: &str) -> (String, Vec<(String, String)>) {
        let (primary, others) = sts_endpoints(&RuntimeEnv::parse(vars.as_bytes()));
        (
            primary.url,
            others.into_iter().map(|(e, f)| (e.url, f)).collect(),
        )
    }

    #[test]
    fn the_endpoint_most_sdks_call_first_then_the_others() {
        let (primary, others) = endpoints("AWS_REGION=us-east-1\nAWS_DEFAULT_REGION=us-east-1\n");
        assert!(
            primary.starts_with("https://sts.us-east-1.amazonaws.com"),
            "{primary}"
        );
        assert_eq!(others.len(), 1, "{others:?}");
        assert!(
            others[0].0.starts_with("https://sts.amazonaws.com"),
            "{others:?}"
        );
        assert!(others[0].1.contains("botocore"), "{others:?}");
        let (primary, others) =
            endpoints("AWS_REGION=us-east-1\nAWS_ENDPOINT_URL_STS=https://vpce.example\n");
        assert!(
            primary.starts_with("https://vpce.example"),
            "{primary} {others:?}"
        );
    }
}
