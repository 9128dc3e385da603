//! AWS IAM Roles for Service Accounts.

pub mod checks;
// IAM policy evaluation for the trust diagnosis (issue 11, item 2).
pub mod iam_condition;
pub mod iam_policy;
pub mod in_pod;
pub mod trust;
pub mod webhook;

use k8s_openapi::api::core::v1::PodSpec;

use super::projected_token::{self, ClaimChecks, TokenChecks};
use super::{BoxFuture, Mechanism, RuntimeOutcome};
use crate::cloud::aws;
use crate::cloud::aws::irsa as a;
use crate::evidence::{Probe, RuntimeEnv};
use crate::exchange::aws_sts::{self, AssumedRole};
use crate::exchange::{CloudError, aws_account, aws_iam, aws_s3};
use crate::model::{Check, Identity, MechanismId};
use crate::options::{AccessExpectation, VerifyOptions};
use crate::subject::{Origin, PodSubject, env_value, has_env};
use crate::token_claims::{self, Claims};

pub struct AwsIrsa;

impl Mechanism for AwsIrsa {
    fn id(&self) -> MechanismId {
        MechanismId::AwsIrsa
    }

    fn detect(&self, pod: &PodSubject) -> bool {
        pod.sa_annotation(a::ROLE_ARN).is_some()
            || pod.sa_annotation(a::ROLE_ARN_TYPO).is_some()
            || pod
                .all_containers()
                .any(|c| has_env(c, a::ENV_ROLE_ARN) || has_env(c, a::ENV_TOKEN_FILE))
            || pod
                .spec
                .volumes
                .iter()
                .flatten()
                .any(|v| v.name == a::VOLUME_NAME)
    }

    fn admit(&self, pod: &PodSubject) -> PodSpec {
        match pod.origin {
            Origin::Template => webhook::mutate(pod),
            Origin::Live | Origin::Dump => pod.spec.clone(),
        }
    }

    fn token_file_vars(&self) -> &'static [&'static str] {
        &[a::ENV_TOKEN_FILE]
    }

    fn configured(
        &self,
        pod: &PodSubject,
        spec: &PodSpec,
        env: Option<&RuntimeEnv>,
    ) -> Result<super::Configured, String> {
        super::configured_from_env(
            pod,
            env,
            container_var(pod, spec, env, a::ENV_ROLE_ARN),
            "aws",
            a::ENV_ROLE_ARN,
            a::ROLE_ARN,
            "role",
        )
    }

    fn static_checks(&self, pod: &PodSubject, spec: &PodSpec) -> Vec<Check> {
        let mut checks = checks::static_checks(pod, spec);
        // Pod Identity wired too: the SDK still uses IRSA; say so.
        checks.extend(super::aws_pod_identity::checks::precedence_under_irsa(
            pod, spec,
        ));
        // A template: an association in EKS (unknown unless looked up) would win over IRSA.
        checks.extend(super::aws_pod_identity::offline::association_check(pod));
        checks
    }

    fn runtime<'a>(
        &'a self,
        pod: &'a PodSubject,
        spec: &'a PodSpec,
        env: Option<&'a RuntimeEnv>,
        probe: &'a Probe,
        options: &'a VerifyOptions,
    ) -> BoxFuture<'a, RuntimeOutcome> {
        Box::pin(runtime(pod, spec, env, probe, options))
    }
}

/// A variable as the container sees it: the runtime env when exec worked, else the spec.
fn container_var(
    pod: &PodSubject,
    spec: &PodSpec,
    env: Option<&RuntimeEnv>,
    name: &str,
) -> Option<String> {
    if let Some(env) = env {
        return env.get(name).map(str::to_string);
    }
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .find(|c| c.name == pod.container)
        .and_then(|c| env_value(c, name))
        .map(str::to_string)
}

/// The pod token's audience: the volume's, else what the webhook projects; `None` when the
/// projection names none (the API server's default audience applies).
fn token_audience(spec: &PodSpec, pod: &PodSubject) -> Option<String> {
    spec.volumes
        .iter()
        .flatten()
        .find(|v| v.name == a::VOLUME_NAME)
        .and_then(|v| {
            v.projected
                .as_ref()?
                .sources
                .as_ref()?
                .iter()
                .find_map(|s| s.service_account_token.as_ref())
                .map(|p| p.audience.clone().filter(|a| !a.is_empty()))
        })
        .unwrap_or_else(|| webhook::audience(pod))
}

async fn runtime(
    pod: &PodSubject,
    spec: &PodSpec,
    env: Option<&RuntimeEnv>,
    probe: &Probe,
    options: &VerifyOptions,
) -> RuntimeOutcome {
    let mut out = RuntimeOutcome::default();
    let role = container_var(pod, spec, env, a::ENV_ROLE_ARN);
    let token_path = container_var(pod, spec, env, a::ENV_TOKEN_FILE);
    let (Some(role), Some(token_path)) = (role, token_path) else {
        out.checks.push(Check::skip(
            "aws.sts.assume-role",
            format!(
                "container {} has no {} and {}, so its SDK does not use IRSA",
                pod.container,
                a::ENV_ROLE_ARN,
                a::ENV_TOKEN_FILE
            ),
        ));
        return out;
    };
    let projected_audience = token_audience(spec, pod);
    // STS needs one of the OIDC provider's client ids: the annotated audience, or for a token
    // with the API server's default audience, the usual sts.amazonaws.com.
    let audience = projected_audience
        .clone()
        .unwrap_or_else(|| a::DEFAULT_AUDIENCE.to_string());
    let checks = TokenChecks {
        source: "aws.token.source",
        readable: "aws.irsa.token-readable",
        exchange: "aws.sts.assume-role",
        offline: "offline: no token to exchange (pass --token-file to exchange one)",
        file: token_path.clone(),
        denied_fix: "run every container as the same runAsUser (the kubelet then gives that user the token), or drop a restrictive defaultMode",
        exec_fix: "allow exec (pods/exec) and keep `cat` in the image to read the pod's own token",
        // Empty: the equivalent token gets the API server's default audience, as the pod's.
        audience: projected_audience.as_deref().unwrap_or_default(),
        expiration_seconds: webhook::expiration_seconds(pod),
    };
    let token = match projected_token::obtain(pod, probe, env, &token_path, &checks, &mut out).await
    {
        Some(t) => t,
        None => return out,
    };
    tracing::debug!(source = %token.source, bytes = token.bytes.len(), "token obtained");
    let token_source = token.source.clone();
    let claims = match token_claims::decode(&token.bytes) {
        Ok(c) => c,
        Err(e) => {
            out.checks.push(Check::fail(
                "aws.token.claims",
                format!("{}: {e}", token.source),
                "point AWS_WEB_IDENTITY_TOKEN_FILE at the projected ServiceAccount token",
            ));
            return out;
        }
    };
    out.checks.push(projected_token::claims_check(
        pod,
        &claims,
        ClaimChecks {
            id: "aws.token.claims",
            audience: audience.clone(),
            subject_fix: "point AWS_WEB_IDENTITY_TOKEN_FILE at the pod's own projected token".into(),
            audience_message: format!("the token's audience {:?} lacks {audience:?}", claims.aud),
            audience_fix: "recreate the pod so the webhook projects a token with the annotated audience".into(),
            expired_fix: "the kubelet refreshes projected tokens: check the node; a copied token file is never refreshed",
        },
    ));
    let token_text = String::from_utf8_lossy(token.bytes.trim_ascii()).into_owned();
    let equivalent = token.equivalent;
    drop(token);
    let region = container_var(pod, spec, env, aws::ENV_REGION)
        .or_else(|| container_var(pod, spec, env, aws::ENV_DEFAULT_REGION));
    let config = options.aws.anonymous(region.as_deref()).await;
    let session = format!("podiam-{}", pod.name.chars().take(50).collect::<String>());
    let host = HostExchange {
        options,
        config: &config,
        role: &role,
        claims: &claims,
        token: &token_text,
        session: &session,
    };

    // The pod's own exchange, from inside it, when its session can make calls and the token
    // is its own file (an equivalent token exists only here).
    let pod_session = env.and_then(|e| e.session().map(|s| (e, s)));
    let why_not_in_pod = match (pod_session, equivalent) {
        (Some((env, pod_session)), false) => {
            let (endpoint, other_endpoints) = in_pod::sts_endpoints(env);
            match in_pod::exchange(pod_session, env, &endpoint, &role, &token_path, &session).await
            {
                in_pod::PodExchange::Answered { result, client, .. } => {
                    out.checks.push(Check::pass(
                        in_pod::REACHABLE,
                        format!(
                            "the pod reached STS at {} with {client} ({})",
                            endpoint.url, endpoint.because
                        ),
                    ));
                    let source = format!(
                        "{token_source}; exchanged by the pod itself ({client} in container {} at {})",
                        pod.container, endpoint.url
                    );
                    for (other, families) in &other_endpoints {
                        out.checks.push(
                            match in_pod::reachable(pod_session, env, other, families).await {
                                Ok(client) => Check::pass(
                                    in_pod::ENDPOINT,
                                    format!(
                                        "pods whose SDK is {families} call {} ({}): reached with {client}",
                                        other.url, other.because
                                    ),
                                ),
                                Err(check) => check,
                            },
                        );
                    }
                    let exchanged = match result {
                        Ok(answer) => aws_sts::caller_identity(&config, answer.credentials)
                            .await
                            .map(|assumed| with_session(assumed, &session)),
                        Err(rejected) => Err(rejected),
                    };
                    judge_exchange(&mut out, &host, exchanged, source).await;
                    return out;
                }
                in_pod::PodExchange::StatusOnly { status, client } => format!(
                    "STS answered the pod's exchange with HTTP {status}, but the pod's {client} does not show STS's error"
                ),
                in_pod::PodExchange::Failed(check) => {
                    let from_here = host.exchange().await;
                    let mut check = *check;
                    if let Ok(assumed) = &from_here {
                        check.message.push_str(&format!(
                            " — from this machine STS accepts the same token ({}): the pod's network path is the cause",
                            assumed.caller_arn
                        ));
                    }
                    out.checks.push(check);
                    // --expect-role: judged from the configuration (expectations.rs).
                    return out;
                }
                in_pod::PodExchange::Unusable(why) => why,
            }
        }
        (_, true) => "the pod's own token could not be read".to_string(),
        (None, false) => match probe {
            Probe::Live { .. } => "no exec session in the pod (no shell in the image)".to_string(),
            Probe::Offline { .. } => String::new(),
        },
    };
    if !why_not_in_pod.is_empty() {
        out.checks.push(Check::warn(
            "aws.sts.pod-path",
            format!("{why_not_in_pod}: the exchange was made from this machine, not from the pod's own network path"),
            "keep a shell and curl (or wget/python3) in the image, or use --probe=ephemeral, so podiam can exchange from inside the pod",
        ));
    }
    let source = if matches!(probe, Probe::Live { .. }) {
        format!("{token_source}; exchanged from this machine (podiam), not by the pod")
    } else {
        token_source.clone()
    };
    let exchanged = host.exchange().await;
    judge_exchange(&mut out, &host, exchanged, source).await;
    out
}

/// The exchange made from this machine with the operator's STS endpoint: shared between pods
/// that present the same claims for the same role (answer_cache.rs).
struct HostExchange<'a> {
    options: &'a VerifyOptions,
    config: &'a aws_config::SdkConfig,
    role: &'a str,
    claims: &'a Claims,
    token: &'a str,
    session: &'a str,
}

impl HostExchange<'_> {
    fn key(&self) -> Vec<String> {
        let region_name = self
            .config
            .region()
            .map(|r| r.to_string())
            .unwrap_or_default();
        exchange_key(self.role, self.claims, self.token, &region_name)
    }

    async fn exchange(&self) -> Result<AssumedRole, CloudError> {
        let key = self.key();
        self.options
            .answers
            .get_or_compute(
                "aws-sts-exchange",
                &key.iter().map(String::as_str).collect::<Vec<_>>(),
                || async {
                    tracing::debug!(role = %self.role, session = %self.session, region = ?self.config.region(), "AssumeRoleWithWebIdentity from this machine");
                    aws_sts::assume_role_with_web_identity(self.config, self.role, self.token, self.session).await
                },
            )
            .await
            .map(|assumed| with_session(assumed, self.session))
    }
}

/// The checks that follow an exchange, wherever it was made.
async fn judge_exchange(
    out: &mut RuntimeOutcome,
    host: &HostExchange<'_>,
    exchanged: Result<AssumedRole, CloudError>,
    source: String,
) {
    let (options, role, claims) = (host.options, host.role, host.claims);
    tracing::debug!(outcome = ?exchanged.as_ref().map(|a| &a.caller_arn), "STS answered");
    match exchanged {
        Ok(assumed) => {
            out.checks.push(Check::pass(
                "aws.sts.assume-role",
                format!("STS accepted the token for {role}: {}", assumed.caller_arn),
            ));
            out.identity = Some(Identity {
                provider: "aws",
                principal: assumed.caller_arn.clone(),
                source,
            });
            expected_role(out, options, &assumed.caller_arn);
            access_checks(out, options, host.config, &assumed).await;
            super::aws_role_chain::follow(out, options, host.config, &assumed).await;
        }
        Err(CloudError::Unreachable(msg)) => {
            out.unreachable = true;
            out.checks.push(Check::warn(
                "aws.sts.assume-role",
                format!("STS is unreachable: {msg}"),
                "check network access to STS, or set AWS_ENDPOINT_URL_STS / --aws-endpoint-url",
            ));
        }
        Err(CloudError::Rejected { code, message }) => {
            out.checks
                .push(rejection_check(role, &code, &message, claims));
            let key = host.key();
            let explained = options
                .answers
                .get_or_compute(
                    "aws-iam-trust-explanation",
                    &key.iter().map(String::as_str).collect::<Vec<_>>(),
                    || async {
                        let mut explained = RuntimeOutcome::default();
                        explain_with_operator_credentials(&mut explained, options, role, claims)
                            .await;
                        explained.checks
                    },
                )
                .await;
            out.checks.extend(explained);
        }
    }
}

fn rejection_check(role: &str, code: &str, message: &str, claims: &Claims) -> Check {
    const ID: &str = "aws.sts.assume-role";
    let iss = claims.iss.as_deref().unwrap_or("?");
    let aud = claims.aud.first().map_or("?", String::as_str);
    let sub = claims.sub.as_deref().unwrap_or("?");
    let host_path = iss.trim_start_matches("https://");
    let account = aws_sts::account(role).unwrap_or("<ACCOUNT_ID>");
    let (cause, fix) = match code {
        "InvalidIdentityToken" if message.starts_with("No OpenIDConnect provider found") => (
            format!("the cluster's issuer {iss} is not registered as an IAM OIDC provider in account {account}"),
            format!("eksctl utils associate-iam-oidc-provider --cluster <CLUSTER> --approve (or: aws iam create-open-id-connect-provider --url {iss} --client-id-list {aud})"),
        ),
        "InvalidIdentityToken" if message.contains("Incorrect token audience") => (
            format!("the token's audience {aud:?} is not a client id of the OIDC provider for {iss}"),
            format!("aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn arn:aws:iam::{account}:oidc-provider/{host_path} --client-id {aud}, or fix eks.amazonaws.com/audience and recreate the pod"),
        ),
        "InvalidIdentityToken" if message.contains("Missing a required claim: aud") => (
            "the token has no audience".to_string(),
            "remove a blank eks.amazonaws.com/audience annotation and recreate the pod".to_string(),
        ),
        "InvalidIdentityToken" => (
            "STS could not validate the token (signature or format)".to_string(),
            format!("make sure {iss}'s JWKS publishes the cluster's ServiceAccount signing key"),
        ),
        "AccessDenied" => (
            format!("role {role}'s trust policy does not allow {sub} with audience {aud}"),
            format!("trust arn:aws:iam::{account}:oidc-provider/{host_path} with StringEquals {host_path}:sub = {sub} and {host_path}:aud = {aud} (kubectl podiam bind does this)"),
        ),
        "ExpiredTokenException" => (
            "the token has expired".to_string(),
            "the kubelet rotates projected tokens at 80% of their life: check the node, and never copy token files".to_string(),
        ),
        "IDPCommunicationError" => (
            format!("STS could not fetch {iss}/.well-known/openid-configuration or its JWKS"),
            "make the issuer's discovery document and JWKS publicly reachable over HTTPS".to_string(),
        ),
        "IDPRejectedClaim" => (
            "the identity provider rejected a claim".to_string(),
            "check the OIDC provider's configuration".to_string(),
        ),
        _ => (
            "STS refused the exchange".to_string(),
            "see the AWS error above".to_string(),
        ),
    };
    Check::fail(ID, format!("{cause} — STS said {code}: {message}"), fix)
}

async fn explain_with_operator_credentials(
    out: &mut RuntimeOutcome,
    options: &VerifyOptions,
    role: &str,
    claims: &Claims,
) {
    let (Some(role_name), Some(account)) = (aws_sts::role_name(role), aws_sts::account(role))
    else {
        return;
    };
    // The role's own account (issue 11, item 4): never a same-named role elsewhere.
    let config = match aws_account::for_account(&options.aws, account).await {
        aws_account::AccountCredentials::Ready { config, how } => {
            tracing::debug!(%account, %how, "reading the trust policy");
            *config
        }
        aws_account::AccountCredentials::Missing(why) => {
            out.checks.push(Check::skip(
                "aws.iam.trust-policy",
                format!("role {role}'s trust policy is not read: {why}"),
            ));
            return;
        }
    };
    let policy = aws_iam::trust_policy(&config, role_name).await;
    let providers = aws_iam::oidc_providers(&config).await;
    match (policy, providers) {
        (Ok(policy), Ok(providers)) => {
            out.checks.extend(trust::explain(&trust::TrustInputs {
                claims,
                account,
                role_name,
                providers: &providers,
                policy: &policy,
            }));
        }
        (Err(e), _) | (_, Err(e)) => out.checks.push(Check::skip(
            "aws.iam.trust-policy",
            format!("could not read role {role_name} or the OIDC providers: {e}"),
        )),
    }
}

fn expected_role(out: &mut RuntimeOutcome, options: &VerifyOptions, actual: &str) {
    const ID: &str = "aws.sts.expected-role";
    let Some(expected) = &options.expect_role else {
        return;
    };
    let same = aws_sts::role_name(expected) == aws_sts::role_name(actual)
        && aws_sts::account(expected) == aws_sts::account(actual);
    out.checks.push(if same {
        Check::pass(ID, format!("the pod gets the expected role {expected}"))
    } else {
        Check::fail(
            ID,
            format!("expected role {expected}, but the pod gets {actual}"),
            "fix the ServiceAccount annotation (or a preset AWS_ROLE_ARN) and recreate the pod",
        )
    });
}

pub(crate) async fn access_checks(
    out: &mut RuntimeOutcome,
    options: &VerifyOptions,
    config: &aws_config::SdkConfig,
    assumed: &AssumedRole,
) {
    let path_style = options.aws.endpoint_overridden();
    for expectation in &options.access {
        let AccessExpectation::S3 {
            action,
            allowed,
            spec,
        } = expectation
        else {
            continue;
        };
        let (id, want) = if *allowed {
            ("aws.access.can", "allowed")
        } else {
            ("aws.access.cannot", "denied")
        };
        // The same role gets the same answer for the same call, whichever pod asks.
        let region = config.region().map(|r| r.to_string()).unwrap_or_default();
        let role = without_session(&assumed.caller_arn);
        let result = options
            .answers
            .get_or_compute(
                "aws-s3-access",
                &[role, &region, spec, if *allowed { "can" } else { "cannot" }],
                || aws_s3::attempt(config, path_style, &assumed.credentials, action),
            )
            .await;
        tracing::debug!(%spec, outcome = ?result, "S3 call with the exchanged credentials");
        let check = match (result, allowed) {
            (Ok(()), true) => Check::pass(id, format!("{spec}: allowed, as expected")),
            (Err(CloudError::Rejected { code, .. }), false) if is_denial(&code) => {
                Check::pass(id, format!("{spec}: denied ({code}), as expected"))
            }
            (Ok(()), false) => Check::fail(
                id,
                format!("{spec}: allowed, but expected {want}"),
                "remove the permission from the role's policies",
            ),
            (Err(CloudError::Unreachable(msg)), _) => {
                out.unreachable = true;
                Check::warn(
                    id,
                    format!("{spec}: S3 unreachable: {msg}"),
                    "check AWS_ENDPOINT_URL_S3 / network access",
                )
            }
            (Err(CloudError::Rejected { code, message }), _) => Check::fail(
                id,
                format!("{spec}: {code}: {message}, but expected {want}"),
                if *allowed {
                    "grant the action on the resource in the role's permission policy"
                } else {
                    "the call failed for another reason than a denial; check the resource exists"
                },
            ),
        };
        out.checks.push(check);
    }
}

/// What STS decides an exchange on: the role, the claims its trust policy and OIDC provider
/// look at (iss, sub, aud), the key that signed the token (the JWT header's kid: a rotated key
/// is a different answer), whether the token has expired, and the region. Never the token.
fn exchange_key(role: &str, claims: &Claims, token: &str, region: &str) -> Vec<String> {
    let header = token.split('.').next().unwrap_or_default().to_string();
    let expired = claims
        .exp
        .is_some_and(|exp| exp <= crate::token_claims::now());
    vec![
        role.to_string(),
        claims.iss.clone().unwrap_or_default(),
        claims.sub.clone().unwrap_or_default(),
        claims.aud.join(","),
        header,
        expired.to_string(),
        region.to_string(),
    ]
}

/// `arn:aws:sts::ACCT:assumed-role/ROLE/SESSION` → `…/ROLE`.
fn without_session(caller_arn: &str) -> &str {
    match caller_arn.rsplit_once('/') {
        Some((role, _)) if caller_arn.contains(":assumed-role/") => role,
        _ => caller_arn,
    }
}

/// An exchange made for another pod, as STS would have answered this pod's session name.
fn with_session(mut assumed: AssumedRole, session: &str) -> AssumedRole {
    if assumed.caller_arn.contains(":assumed-role/") {
        assumed.caller_arn = format!("{}/{session}", without_session(&assumed.caller_arn));
    }
    assumed
}

fn is_denial(code: &str) -> bool {
    matches!(
        code,
        "AccessDenied" | "AccessDeniedException" | "Forbidden" | "403"
    )
}

#[cfg(test)]
mod fleet_sharing_tests {
    use super::*;

    fn claims(sub: &str, exp: i64) -> Claims {
        Claims {
            iss: Some("https://issuer".into()),
            sub: Some(sub.into()),
            aud: vec!["sts.amazonaws.com".into()],
            exp: Some(exp),
            iat: None,
            nbf: None,
            kubernetes: None,
        }
    }

    #[test]
    fn the_exchange_key_holds_what_sts_decides_on() {
        let later = crate::token_claims::now() + 3600;
        let a = exchange_key("role", &claims("s:a", later), "hdr.p.sig", "us-east-1");
        // Another pod's token: other payload and signature, same decision inputs.
        assert_eq!(
            a,
            exchange_key("role", &claims("s:a", later + 5), "hdr.q.sig2", "us-east-1")
        );
        for other in [
            exchange_key("role2", &claims("s:a", later), "hdr.p.sig", "us-east-1"),
            exchange_key("role", &claims("s:b", later), "hdr.p.sig", "us-east-1"),
            exchange_key(
                "role",
                &claims("s:a", crate::token_claims::now() - 1),
                "hdr.p.sig",
                "us-east-1",
            ),
            exchange_key("role", &claims("s:a", later), "otherkid.p.sig", "us-east-1"),
            exchange_key("role", &claims("s:a", later), "hdr.p.sig", "eu-west-1"),
        ] {
            assert_ne!(a, other);
        }
        assert!(!a.iter().any(|part| part.contains("sig")), "{a:?}");
    }

    #[test]
    fn a_shared_exchange_gets_this_pods_session() {
        let assumed = AssumedRole {
            caller_arn: "arn:aws:sts::123456789012:assumed-role/my-pod-role/podiam-web-1".into(),
            account: "123456789012".into(),
            credentials: aws_credential_types::Credentials::new(
                "AKIDEXAMPLE",
                "not-a-secret",
                None,
                None,
                "test",
            ),
        };
        assert_eq!(
            with_session(assumed, "podiam-web-2").caller_arn,
            "arn:aws:sts::123456789012:assumed-role/my-pod-role/podiam-web-2"
        );
        assert_eq!(
            without_session("arn:aws:sts::1:assumed-role/r/s"),
            "arn:aws:sts::1:assumed-role/r"
        );
        assert_eq!(
            without_session("arn:aws:iam::1:user/u"),
            "arn:aws:iam::1:user/u"
        );
    }
}
