//! EKS Pod Identity: an association (cluster, namespace, ServiceAccount → role) makes the
//! webhook inject a projected token (audience `pods.eks.amazonaws.com`) and the container
//! credentials env; the SDK asks the node's Pod Identity Agent, which calls EKS Auth
//! `AssumeRoleForPodIdentity`.
//!
//! Runtime: the token is read by exec, the agent is asked from inside the pod (that request is
//! the exchange itself), and the credentials are checked with GetCallerIdentity. When the pod
//! cannot be asked (no exec, no shell/wget) or the agent refused, the same exchange is made
//! from this machine against EKS Auth with the operator's credentials, which also names the
//! exact AWS error.

pub mod agent;
pub mod checks;
pub mod offline;
pub mod platform;
pub mod target_hop;
pub mod webhook;

use k8s_openapi::api::core::v1::PodSpec;

use self::agent::AgentOutcome;
use super::projected_token::{self, ClaimChecks, TokenChecks};
use super::{BoxFuture, Mechanism, RuntimeOutcome, aws_irsa};
use crate::cloud::aws;
use crate::cloud::aws::pod_identity as a;
use crate::evidence::{Probe, RuntimeEnv};
use crate::exchange::CloudError;
use crate::exchange::aws_eks_auth::{self, PodIdentityGrant};
use crate::exchange::aws_sts;
use crate::model::{Check, Identity, MechanismId};
use crate::options::VerifyOptions;
use crate::subject::{EksAssociation, Origin, PodSubject, env_value};
use crate::token_claims;

pub struct AwsPodIdentity;

const EXCHANGE: &str = "aws.pod-identity.exchange";
const AGENT: &str = "aws.pod-identity.agent";
/// Lifetime asked for an equivalent token (the webhook's default is 86400; less is enough).
const EQUIVALENT_TOKEN_SECONDS: i64 = 3600;

impl Mechanism for AwsPodIdentity {
    fn id(&self) -> MechanismId {
        MechanismId::AwsPodIdentity
    }

    fn detect(&self, pod: &PodSubject) -> bool {
        (checks::wired(pod) && !checks::target(pod, &pod.spec).is_some_and(checks::has_irsa_env))
            || template_associated(pod)
    }

    /// Associations live in EKS, not in the manifest: a template is mutated only once its
    /// association was found (`offline::with_association`); else it is judged as written.
    fn admit(&self, pod: &PodSubject) -> PodSpec {
        if template_associated(pod) {
            webhook::mutate(pod)
        } else {
            pod.spec.clone()
        }
    }

    fn token_file_vars(&self) -> &'static [&'static str] {
        &[a::ENV_TOKEN_FILE]
    }

    fn configured(
        &self,
        pod: &PodSubject,
        _spec: &PodSpec,
        _env: Option<&RuntimeEnv>,
    ) -> Result<super::Configured, String> {
        // A template's association looked up in EKS names the role.
        if let crate::subject::EksAssociation::Found {
            cluster,
            id,
            role_arn,
            target_role_arn,
        } = &pod.eks_association
        {
            // With a target, EKS Auth chains through `role_arn`: the pod gets the target.
            let (principal, origin) = match target_role_arn {
                Some(target) => (
                    target.clone(),
                    format!(
                        "EKS Pod Identity association {id} in cluster {cluster} (through role {role_arn})"
                    ),
                ),
                None => (
                    role_arn.clone(),
                    format!("EKS Pod Identity association {id} in cluster {cluster}"),
                ),
            };
            return Ok(super::Configured {
                provider: "aws",
                principal,
                origin,
            });
        }
        Err("EKS Pod Identity's role is in the cluster's association, not in the pod's configuration (EKS Auth names it: give --eks-cluster-name and AWS credentials, or verify the live pod)".into())
    }

    fn static_checks(&self, pod: &PodSubject, spec: &PodSpec) -> Vec<Check> {
        let mut found = checks::static_checks(pod, spec);
        found.extend(offline::association_check(pod));
        found.extend(platform::checks(pod, spec));
        found
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

/// A template whose ServiceAccount EKS said has an association.
fn template_associated(pod: &PodSubject) -> bool {
    pod.origin == Origin::Template && matches!(pod.eks_association, EksAssociation::Found { .. })
}

fn container_var(
    pod: &PodSubject,
    spec: &PodSpec,
    env: Option<&RuntimeEnv>,
    name: &str,
) -> Option<String> {
    if let Some(env) = env {
        return env.get(name).map(str::to_string);
    }
    checks::target(pod, spec)
        .and_then(|c| env_value(c, name))
        .map(str::to_string)
}

async fn runtime(
    pod: &PodSubject,
    spec: &PodSpec,
    env: Option<&RuntimeEnv>,
    probe: &Probe,
    options: &VerifyOptions,
) -> RuntimeOutcome {
    let mut out = RuntimeOutcome::default();
    let uri = container_var(pod, spec, env, a::ENV_FULL_URI);
    let token_file = container_var(pod, spec, env, a::ENV_TOKEN_FILE);
    let (Some(uri), Some(token_file)) = (uri, token_file) else {
        out.checks.push(Check::skip(
            EXCHANGE,
            format!(
                "container {} has no {} and {}, so its SDK does not use Pod Identity",
                pod.container,
                a::ENV_FULL_URI,
                a::ENV_TOKEN_FILE
            ),
        ));
        return out;
    };
    // The token the agent would receive: the file by exec, else an equivalent TokenRequest.
    let checks = TokenChecks {
        source: "aws.pod-identity.token-source",
        readable: "aws.pod-identity.token-readable",
        exchange: EXCHANGE,
        offline: "offline: no token to exchange (pass --token-file to check one's claims)",
        file: token_file.clone(),
        denied_fix: "run every container as the same runAsUser, or drop a restrictive defaultMode",
        exec_fix: "allow exec (pods/exec) and keep sh, cat and wget in the image to test the agent from the pod",
        audience: a::AUDIENCE,
        expiration_seconds: EQUIVALENT_TOKEN_SECONDS,
    };
    let Some(token) =
        projected_token::obtain(pod, probe, env, &token_file, &checks, &mut out).await
    else {
        return out;
    };
    let claims = match token_claims::decode(&token.bytes) {
        Ok(c) => c,
        Err(e) => {
            out.checks.push(Check::fail(
                "aws.pod-identity.token-claims",
                format!("{}: {e}", token.source),
                format!(
                    "point {} at the projected {} token",
                    a::ENV_TOKEN_FILE,
                    a::VOLUME_NAME
                ),
            ));
            return out;
        }
    };
    out.checks.push(projected_token::claims_check(
        pod,
        &claims,
        ClaimChecks {
            id: "aws.pod-identity.token-claims",
            audience: a::AUDIENCE.to_owned(),
            subject_fix: format!("point {} at the pod's own projected token", a::ENV_TOKEN_FILE),
            audience_message: format!(
                "the token's audience {:?} lacks {}: EKS Auth answers InvalidTokenException",
                claims.aud,
                a::AUDIENCE
            ),
            audience_fix: format!("project the token with audience {}", a::AUDIENCE),
            expired_fix: "the kubelet refreshes projected tokens: check the node; a copied token file is never refreshed",
        },
    ));
    let region = container_var(pod, spec, env, aws::ENV_REGION)
        .or_else(|| container_var(pod, spec, env, aws::ENV_DEFAULT_REGION));
    let config = options.aws.anonymous(region.as_deref()).await;

    let asked_in_pod = matches!(probe, Probe::Live { .. }) && !token.equivalent;
    if asked_in_pod {
        tracing::debug!(%uri, "asking the Pod Identity Agent from inside the pod");
        match agent::ask(env, &uri, &token_file).await {
            AgentOutcome::Credentials {
                credentials,
                account_id,
            } => {
                out.checks.push(Check::pass(
                    AGENT,
                    format!(
                        "the pod reached the Pod Identity Agent at {uri} and got credentials (account {account_id})"
                    ),
                ));
                let source = format!(
                    "credentials the Pod Identity Agent ({uri}) gave container {} for its token",
                    pod.container
                );
                granted(
                    &mut out,
                    options,
                    &config,
                    credentials,
                    &source,
                    "the agent's credentials",
                )
                .await;
                return out;
            }
            AgentOutcome::Unreachable(why) => out.checks.push(Check::fail(
                AGENT,
                format!(
                    "container {} cannot reach the Pod Identity Agent at {uri}: {why}",
                    pod.container
                ),
                format!(
                    "install/repair the eks-pod-identity-agent add-on (a DaemonSet on hostNetwork listening on {}:80) on the pod's node, and keep {} at {}",
                    a::AGENT_HOST,
                    a::ENV_FULL_URI,
                    a::AGENT_URI
                ),
            )),
            AgentOutcome::Refused(status) => out.checks.push(Check::fail(
                AGENT,
                format!(
                    "the pod reaches the Pod Identity Agent at {uri}, but it gave no credentials: {status}"
                ),
                "see the EKS Auth answer below for the cause (association, trust policy, token)",
            )),
            AgentOutcome::Unavailable(why) => {
                out.unreachable = true;
                out.checks.push(Check::warn(
                    AGENT,
                    format!("the pod reaches the Pod Identity Agent at {uri}, but {why}"),
                    "the agent (or EKS Auth behind it) is busy or failing on the pod's node: check the eks-pod-identity-agent pod's logs there, then run again",
                ));
            }
            AgentOutcome::Garbled(why) => out.checks.push(Check::fail(
                AGENT,
                format!("{uri} answered the pod, but not as the Pod Identity Agent: {why}"),
                format!("point {} at {}", a::ENV_FULL_URI, a::AGENT_URI),
            )),
            AgentOutcome::NoTool(why) => out.checks.push(Check::skip(
                AGENT,
                format!("could not ask the agent from inside the pod: {why}"),
            )),
        }
    } else {
        out.checks.push(Check::skip(
            AGENT,
            "the pod's own token could not be read by exec, so the agent was not asked from inside the pod",
        ));
    }
    let token_text = String::from_utf8_lossy(token.bytes.trim_ascii()).into_owned();
    drop(token);
    exchange_from_here(&mut out, pod, options, &config, &token_text).await;
    out
}

/// Credentials in hand: who they are (GetCallerIdentity), then `--expect-role` and `--can`.
async fn granted(
    out: &mut RuntimeOutcome,
    options: &VerifyOptions,
    config: &aws_config::SdkConfig,
    credentials: aws_credential_types::Credentials,
    source: &str,
    what: &str,
) {
    match aws_sts::caller_identity(config, credentials).await {
        Ok(assumed) => {
            out.checks.push(Check::pass(
                EXCHANGE,
                format!("{what} are {} (GetCallerIdentity)", assumed.caller_arn),
            ));
            out.identity = Some(Identity {
                provider: "aws",
                principal: assumed.caller_arn.clone(),
                source: source.to_string(),
            });
            expected_role(out, options, &assumed.caller_arn);
            aws_irsa::access_checks(out, options, config, &assumed).await;
            super::aws_role_chain::follow(out, options, config, &assumed).await;
        }
        Err(CloudError::Unreachable(msg)) => {
            out.unreachable = true;
            out.checks.push(Check::warn(
                EXCHANGE,
                format!("STS is unreachable for GetCallerIdentity: {msg}"),
                "check network access to STS, or set AWS_ENDPOINT_URL_STS / --aws-endpoint-url",
            ));
        }
        Err(CloudError::Rejected { code, message }) => out.checks.push(Check::fail(
            EXCHANGE,
            format!("STS refused {what}: {code}: {message}"),
            "the role session may have been revoked; check the role still exists",
        )),
    }
}

/// `AssumeRoleForPodIdentity` from this machine, as the agent would call it.
async fn exchange_from_here(
    out: &mut RuntimeOutcome,
    pod: &PodSubject,
    options: &VerifyOptions,
    config: &aws_config::SdkConfig,
    token: &str,
) {
    let Some(cluster) = options.eks_cluster_name.as_deref() else {
        out.checks.push(Check::skip(
            EXCHANGE,
            format!(
                "no EKS cluster name to ask EKS Auth from here: pass --eks-cluster-name or set {}",
                a::ENV_CLUSTER_NAME
            ),
        ));
        return;
    };
    let Some(operator) = options.aws.operator().await else {
        out.checks.push(Check::skip(
            EXCHANGE,
            "no AWS credentials here to call EKS Auth AssumeRoleForPodIdentity",
        ));
        return;
    };
    tracing::debug!(%cluster, "AssumeRoleForPodIdentity from this machine");
    match aws_eks_auth::assume_role_for_pod_identity(&operator, cluster, token).await {
        Ok(grant) => {
            let source = format!(
                "EKS Auth AssumeRoleForPodIdentity asked from this machine (cluster {cluster}, association {})",
                grant.association_id
            );
            let what = format!(
                "credentials EKS Auth grants {}/{} through association {}",
                grant.namespace, grant.service_account, grant.association_id
            );
            let PodIdentityGrant { credentials, .. } = grant;
            granted(out, options, config, credentials, &source, &what).await;
        }
        Err(CloudError::Unreachable(msg)) => {
            out.unreachable = true;
            out.checks.push(Check::warn(
                EXCHANGE,
                format!("EKS Auth is unreachable: {msg}"),
                "check network access to eks-auth.REGION.api.aws, or set AWS_ENDPOINT_URL_EKS_AUTH / --aws-endpoint-url",
            ));
        }
        Err(CloudError::Rejected { code, message }) => {
            // A chained association (targetRoleArn) has two hops: name the one that refused.
            let hop = if code == "AccessDeniedException"
                && !message.contains("eks-auth:AssumeRoleForPodIdentity")
            {
                target_hop::diagnose(pod, options, &operator, cluster).await
            } else {
                None
            };
            let check = match hop {
                Some(hop) => hop_check(&hop, &code, &message),
                None => rejection_check(pod, cluster, &code, &message),
            };
            if check.status == crate::model::Status::Warn {
                out.unreachable = true;
            }
            out.checks.push(check);
        }
    }
}

fn rejection_check(pod: &PodSubject, cluster: &str, code: &str, message: &str) -> Check {
    let ns = &pod.namespace;
    let sa = pod.service_account_name();
    let said = format!("EKS Auth said {code}: {message}");
    let (cause, fix) = match code {
        "ResourceNotFoundException" if message.to_ascii_lowercase().contains("cluster") && !message.to_ascii_lowercase().contains("association") => (
            format!("EKS has no cluster {cluster} in this account and region"),
            "pass the right --eks-cluster-name (and --region)".to_string(),
        ),
        "ResourceNotFoundException" => (
            format!("cluster {cluster} has no Pod Identity association for {ns}/{sa}"),
            format!("aws eks create-pod-identity-association --cluster-name {cluster} --namespace {ns} --service-account {sa} --role-arn <ROLE_ARN>, then recreate the pod"),
        ),
        "AccessDeniedException" if message.contains("eks-auth:AssumeRoleForPodIdentity") => {
            return Check::warn(
                EXCHANGE,
                format!("your AWS identity may not call EKS Auth — {said}"),
                "allow eks-auth:AssumeRoleForPodIdentity for your user, or run from the pod (exec with sh and wget)",
            );
        }
        "AccessDeniedException" => (
            format!("EKS cannot assume the role associated with {ns}/{sa}: its trust policy must allow principal {{\"Service\": \"{}\"}} with sts:AssumeRole and sts:TagSession", a::TRUST_PRINCIPAL),
            "aws iam update-assume-role-policy --role-name <ROLE> --policy-document '{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"pods.eks.amazonaws.com\"},\"Action\":[\"sts:AssumeRole\",\"sts:TagSession\"]}]}'".to_string(),
        ),
        "InvalidTokenException" => (
            format!("EKS Auth rejected the token: not issued by cluster {cluster}'s issuer, audience not {}, or a bad signature", a::AUDIENCE),
            format!("use the projected {} token of this cluster's pod, and the right --eks-cluster-name", a::VOLUME_NAME),
        ),
        "ExpiredTokenException" => (
            "the token has expired".to_string(),
            "the kubelet rotates projected tokens: check the node, and never copy token files".to_string(),
        ),
        "InvalidParameterException" | "InvalidRequestException" => (
            "EKS Auth refused the request's parameters".to_string(),
            "check --eks-cluster-name and that the token is a ServiceAccount JWT".to_string(),
        ),
        "ThrottlingException" => {
            return Check::warn(EXCHANGE, said, "retry later");
        }
        "UnrecognizedClientException" | "InvalidSignatureException" | "MissingAuthenticationTokenException" | "ExpiredToken" => {
            return Check::warn(
                EXCHANGE,
                format!("your AWS credentials were not accepted by EKS Auth — {said}"),
                "refresh your AWS credentials (aws sso login, …)",
            );
        }
        _ => (
            "EKS Auth refused the exchange".to_string(),
            "see the AWS error above".to_string(),
        ),
    };
    Check::fail(EXCHANGE, format!("{cause} — {said}"), fix)
}

/// An AccessDeniedException of a chained association, naming the hop that refused.
fn hop_check(hop: &target_hop::Hop, code: &str, message: &str) -> Check {
    let said = format!("EKS Auth said {code}: {message}");
    let trust_service = format!(
        "{{\"Effect\":\"Allow\",\"Principal\":{{\"Service\":\"{}\"}},\"Action\":[\"sts:AssumeRole\",\"sts:TagSession\"]}}",
        a::TRUST_PRINCIPAL
    );
    let trust_role = |role: &str| {
        format!(
            "{{\"Effect\":\"Allow\",\"Principal\":{{\"AWS\":\"{role}\"}},\"Action\":[\"sts:AssumeRole\",\"sts:TagSession\"]}}"
        )
    };
    let name = |arn: &str| aws_sts::role_name(arn).unwrap_or("<ROLE>").to_string();
    let (cause, fix) = match hop {
        target_hop::Hop::First { role, why } => (
            format!(
                "first hop: EKS cannot assume the association's role {role}: its trust policy must allow principal {{\"Service\": \"{}\"}} with sts:AssumeRole and sts:TagSession ({why})",
                a::TRUST_PRINCIPAL
            ),
            format!(
                "add to role {}'s trust policy the statement {trust_service} (aws iam update-assume-role-policy)",
                name(role)
            ),
        ),
        target_hop::Hop::Target { role, target, why } => (
            format!(
                "target hop: EKS assumed the association's role {role}, but the target role {target}'s trust policy does not trust {role} for sts:AssumeRole ({why})"
            ),
            format!(
                "add to role {}'s trust policy the statement {} (aws iam update-assume-role-policy, in the target's account)",
                name(target),
                trust_role(role)
            ),
        ),
        target_hop::Hop::Unknown { role, target, why } => (
            format!(
                "EKS Auth refused the chain role {role}, then target {target}: the first role must trust {{\"Service\": \"{}\"}} and the target must trust {role}; which hop refused is not known ({why})",
                a::TRUST_PRINCIPAL
            ),
            "check both trust policies (aws iam get-role)".to_string(),
        ),
    };
    Check::fail(EXCHANGE, format!("{cause} — {said}"), fix)
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
            "point the Pod Identity association at the expected role (aws eks update-pod-identity-association)",
        )
    });
}

/// A pod wired to nothing although EKS would grant its ServiceAccount a role: it was created
/// before the association (the webhook only mutates at CREATE). Needs a live cluster, the
/// cluster name and operator credentials; `None` otherwise or when there is no association.
/// Answer-cache kind of the association lookup for an unwired pod's ServiceAccount.
pub const ASSOCIATION_LOOKUP: &str = "aws-eks-auth-association";

/// What an association lookup found: the ServiceAccount's association, not a pod's session.
#[derive(Debug, Clone)]
struct FoundAssociation {
    association_id: String,
    namespace: String,
    service_account: String,
    /// The role (`arn:aws:iam::ACCOUNT:role/NAME`), without this pod's session name.
    role: String,
}

async fn lookup_association(
    pod: &PodSubject,
    probe: &Probe,
    options: &VerifyOptions,
    cluster: &str,
) -> Option<FoundAssociation> {
    let operator = options.aws.operator().await?;
    let token = probe
        .equivalent_token(pod, a::AUDIENCE, EQUIVALENT_TOKEN_SECONDS)
        .await
        .ok()?;
    let token_text = String::from_utf8_lossy(token.bytes.trim_ascii()).into_owned();
    drop(token);
    let grant = aws_eks_auth::assume_role_for_pod_identity(&operator, cluster, &token_text).await;
    drop(token_text);
    match grant {
        Ok(g) => Some(FoundAssociation {
            role: match (
                aws_sts::account(&g.assumed_role_arn),
                aws_sts::role_name(&g.assumed_role_arn),
            ) {
                (Some(account), Some(name)) => format!("arn:aws:iam::{account}:role/{name}"),
                _ => g.assumed_role_arn.clone(),
            },
            association_id: g.association_id,
            namespace: g.namespace,
            service_account: g.service_account,
        }),
        Err(e) => {
            tracing::debug!(error = %e, "no Pod Identity association answers for this ServiceAccount");
            None
        }
    }
}

pub async fn association_without_wiring(
    pod: &PodSubject,
    probe: &Probe,
    options: &VerifyOptions,
) -> Option<Check> {
    if !matches!(probe, Probe::Live { .. }) {
        return None;
    }
    let cluster = options.eks_cluster_name.as_deref()?;
    // EKS Auth finds the association by the token's namespace and ServiceAccount, whatever
    // the pod: pods of one ServiceAccount share one lookup (one TokenRequest, one call).
    let grant = options
        .answers
        .get_or_compute(
            ASSOCIATION_LOOKUP,
            &[cluster, &pod.namespace, pod.service_account_name()],
            || lookup_association(pod, probe, options, cluster),
        )
        .await?;
    let skip_label = crate::cloud::aws::irsa::SKIP_POD_LABEL;
    let (why, fix) = if pod.label(skip_label).is_some() {
        (
            format!("it carries the {skip_label} label, so the webhook never saw it"),
            format!("remove the {skip_label} label from the pod template and recreate the pod"),
        )
    } else {
        (
            "it was created before the association (or while the webhook was down)".to_string(),
            "recreate the pod (kubectl rollout restart, or delete it) so the webhook injects the Pod Identity env and token".to_string(),
        )
    };
    Some(Check::fail(
        "aws.pod-identity.pod-mutated",
        format!(
            "cluster {cluster} has Pod Identity association {} for {}/{} (role {}), but {} has no {} or {}: {why}",
            grant.association_id,
            grant.namespace,
            grant.service_account,
            grant.role,
            pod.describe(),
            a::ENV_FULL_URI,
            a::ENV_TOKEN_FILE
        ),
        fix,
    ))
}

#[cfg(test)]
mod tests {
    use super::checks::{host_of, is_agent_uri};

    #[test]
    fn agent_uris() {
        assert!(is_agent_uri("http://169.254.170.23/v1/credentials"));
        assert!(is_agent_uri("http://169.254.170.23:8080/v1/credentials"));
        assert!(is_agent_uri("http://[fd00:ec2::23]/v1/credentials"));
        assert!(!is_agent_uri("http://169.254.170.2/v2/credentials"));
        assert_eq!(host_of("http://127.0.0.1:9/x"), Some("127.0.0.1"));
    }
}
