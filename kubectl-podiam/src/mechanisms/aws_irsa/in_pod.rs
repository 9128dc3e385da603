//! AssumeRoleWithWebIdentity made by the pod itself: from inside its network namespace, with
//! its own token file, at the STS endpoint its SDK would choose, through its proxy settings and
//! trusting its CA bundle. The answer's credentials come back into memory only.

use std::time::Duration;

use crate::endpoints::aws_sts::{self, SdkFamily, StsEndpoint};
use crate::evidence::RuntimeEnv;
use crate::exchange::aws_sts_answer::{self, WebIdentityAnswer};
use crate::exchange::{CloudError, sdk_retry};
use crate::mechanisms::pod_path::{self, Endpoint};
use crate::model::Check;
use crate::pod_session::{PodCall, PodSession, SecretFromFile, form};

/// What the pod's own exchange came to.
pub enum PodExchange {
    /// STS answered the pod: the credentials, or AWS's error code.
    Answered {
        result: Result<WebIdentityAnswer, CloudError>,
        /// The HTTP status of the (last) answer.
        status: u16,
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
    let (outcome, attempts) = sdk_retry::retried(
        "STS",
        || call_once(session, env, endpoint, &call),
        retryable,
    )
    .await;
    exhausted(outcome, attempts)
}

/// The status of an answer the pod's SDK would retry (standard mode).
fn retryable(outcome: &PodExchange) -> Option<u16> {
    let (status, code) = match outcome {
        PodExchange::Answered {
            result: Err(CloudError::Rejected { code, .. }),
            status,
            ..
        } => (*status, code.as_str()),
        PodExchange::StatusOnly { status, .. } => (*status, ""),
        _ => return None,
    };
    sdk_retry::retryable(status, code).then_some(status)
}

/// After the last attempt, a retryable answer is the cause that no usable answer came (exit 3).
fn exhausted(outcome: PodExchange, attempts: u32) -> PodExchange {
    match outcome {
        PodExchange::Answered {
            result: Err(e),
            status,
            client,
        } => PodExchange::Answered {
            result: Err(sdk_retry::last_answer("STS", status, e, attempts)),
            status,
            client,
        },
        other => other,
    }
}

async fn call_once(
    session: &PodSession,
    env: &RuntimeEnv,
    endpoint: &StsEndpoint,
    call: &PodCall,
) -> PodExchange {
    match session.call(call).await {
        Ok(answer) if !answer.body_available => PodExchange::StatusOnly {
            status: answer.status,
            client: answer.client,
        },
        Ok(answer) => PodExchange::Answered {
            result: aws_sts_answer::parse(answer.status, &answer.body),
            status: answer.status,
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
                call,
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

    use crate::pod_session::tests::through_curl_and_python;

    const ROLE: &str = "arn:aws:iam::123456789012:role/my-pod-role";
    const THROTTLED: &str = "HTTP/1.0 400 Bad Request\r\nContent-Type: text/xml\r\n\r\n<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>";
    const UNAVAILABLE: &str =
        "HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\nbusy";
    const DENIED: &str = "HTTP/1.0 403 Forbidden\r\nContent-Type: text/xml\r\n\r\n<ErrorResponse><Error><Code>AccessDenied</Code><Message>Not authorized</Message></Error></ErrorResponse>";
    const ANSWER: &str = "HTTP/1.0 200 OK\r\nContent-Type: text/xml\r\n\r\n<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/my-pod-role/podiam-x</Arn><AssumedRoleId>AROA:podiam-x</AssumedRoleId></AssumedRoleUser><Credentials><AccessKeyId>ASIAEXAMPLE</AccessKeyId><SecretAccessKey>s</SecretAccessKey><SessionToken>t</SessionToken><Expiration>2030-01-01T00:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";

    /// The pod's exchange (curl, then python3: both show STS's body) against a server
    /// answering `responses` in turn; returns each client's outcome and the calls received.
    async fn exchanged(responses: Vec<&'static str>) -> Vec<(PodExchange, usize)> {
        through_curl_and_python(responses, async |pod, port, token_path| {
            let endpoint = StsEndpoint {
                url: format!("http://127.0.0.1:{port}/"),
                host: "127.0.0.1".into(),
                port,
                signing_region: None,
                because: "the test's endpoint".into(),
            };
            let env = RuntimeEnv::parse(b"");
            exchange(pod, &env, &endpoint, ROLE, token_path, "podiam-x").await
        })
        .await
    }

    #[tokio::test]
    async fn throttling_then_a_5xx_are_retried_as_the_sdk_would_then_the_answer_counts() {
        for (outcome, calls) in exchanged(vec![THROTTLED, UNAVAILABLE, ANSWER]).await {
            match outcome {
                PodExchange::Answered {
                    result: Ok(answer),
                    status: 200,
                    ..
                } => assert!(answer.assumed_role_arn.ends_with("/podiam-x")),
                _ => panic!("the third attempt's credentials were not used"),
            }
            assert_eq!(calls, 3, "one call per attempt");
        }
    }

    #[tokio::test]
    async fn a_service_that_keeps_throttling_is_a_named_cause_after_three_attempts() {
        for (outcome, calls) in exchanged(vec![THROTTLED]).await {
            match outcome {
                PodExchange::Answered {
                    result: Err(CloudError::Unreachable(cause)),
                    ..
                } => {
                    assert!(
                        cause.contains("STS throttled each of 3 attempts")
                            && cause.contains("HTTP 400 Throttling: Rate exceeded")
                            && cause.contains("retry later"),
                        "{cause}"
                    );
                }
                _ => panic!("a throttle after the last attempt must be a cause, not a verdict"),
            }
            assert_eq!(calls, 3, "the SDKs' standard mode makes three attempts");
        }
    }

    #[tokio::test]
    async fn a_refusal_is_never_retried() {
        for (outcome, calls) in exchanged(vec![DENIED, ANSWER]).await {
            assert!(
                matches!(
                    &outcome,
                    PodExchange::Answered { result: Err(CloudError::Rejected { code, .. }), status: 403, .. } if code == "AccessDenied"
                ),
                "AccessDenied must stay the answer"
            );
            assert_eq!(calls, 1);
        }
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
