//! Static checks: the injected env, the projected token volume and its mount, and which
//! credential source the container's SDK will pick when IRSA is wired too.

use k8s_openapi::api::core::v1::{Container, PodSpec, Volume};

use crate::cloud::aws::irsa;
use crate::cloud::aws::pod_identity as a;
use crate::model::Check;
use crate::subject::{PodSubject, env_value, has_env};

/// The container the report is about, in the spec as it runs.
pub fn target<'a>(pod: &PodSubject, spec: &'a PodSpec) -> Option<&'a Container> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .find(|c| c.name == pod.container)
}

/// Both IRSA variables: the SDK chain then uses web identity before container credentials.
pub fn has_irsa_env(container: &Container) -> bool {
    has_env(container, irsa::ENV_ROLE_ARN) && has_env(container, irsa::ENV_TOKEN_FILE)
}

/// Does the full URI point at the Pod Identity Agent (any port)?
pub fn is_agent_uri(uri: &str) -> bool {
    host_of(uri).is_some_and(|h| h == a::AGENT_HOST || h == a::AGENT_HOST_V6)
}

/// `host` of `scheme://host[:port]/…` (brackets kept for IPv6).
pub fn host_of(uri: &str) -> Option<&str> {
    let rest = uri.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    if authority.starts_with('[') {
        return authority.split_inclusive(']').next();
    }
    authority.split(':').next()
}

/// Any container wired for Pod Identity: the token variable, an agent URI, or the volume.
pub fn wired(pod: &PodSubject) -> bool {
    pod.all_containers().any(|c| {
        has_env(c, a::ENV_TOKEN_FILE) || env_value(c, a::ENV_FULL_URI).is_some_and(is_agent_uri)
    }) || pod
        .spec
        .volumes
        .iter()
        .flatten()
        .any(|v| v.name == a::VOLUME_NAME)
}

fn token_volume(spec: &PodSpec) -> Option<&Volume> {
    spec.volumes
        .iter()
        .flatten()
        .find(|v| v.name == a::VOLUME_NAME)
}

/// The audience of the projected token in the Pod Identity volume.
pub fn volume_audience(spec: &PodSpec) -> Option<String> {
    token_volume(spec)?
        .projected
        .as_ref()?
        .sources
        .as_ref()?
        .iter()
        .find_map(|s| s.service_account_token.as_ref()?.audience.clone())
}

pub fn static_checks(pod: &PodSubject, spec: &PodSpec) -> Vec<Check> {
    let mut checks = Vec::new();
    let Some(container) = target(pod, spec) else {
        return checks;
    };
    checks.push(env_check(pod, container));
    checks.push(volume_check(pod, spec, container));
    if let Some(c) = precedence_check(pod, container) {
        checks.push(c);
    }
    checks
}

fn env_check(pod: &PodSubject, container: &Container) -> Check {
    const ID: &str = "aws.pod-identity.env";
    let uri = env_value(container, a::ENV_FULL_URI);
    let token_file = env_value(container, a::ENV_TOKEN_FILE);
    let (Some(uri), Some(_)) = (uri, token_file) else {
        let missing: Vec<&str> = [a::ENV_FULL_URI, a::ENV_TOKEN_FILE]
            .into_iter()
            .filter(|n| !has_env(container, n))
            .collect();
        if missing.is_empty() {
            return Check::fail(
                ID,
                format!(
                    "container {} takes {} or {} from valueFrom, not a literal",
                    pod.container,
                    a::ENV_FULL_URI,
                    a::ENV_TOKEN_FILE
                ),
                "let the webhook inject the values (remove the preset env) and recreate the pod",
            );
        }
        let why = if pod.label(a::POD_LABEL).is_some() {
            format!(
                "the webhook wired this pod (label {}) but skipped this container: listed in eks.amazonaws.com/skip-containers, or a preset {} made it skip",
                a::POD_LABEL,
                a::ENV_FULL_URI
            )
        } else {
            format!(
                "the webhook did not wire it (created before the association, listed in eks.amazonaws.com/skip-containers, or a preset {} made the webhook skip it)",
                a::ENV_FULL_URI
            )
        };
        return Check::fail(
            ID,
            format!(
                "container {} lacks {}: {why}",
                pod.container,
                missing.join(" and "),
            ),
            "remove preset container-credentials env and skip-containers entries, then recreate the pod",
        );
    };
    if has_env(container, a::ENV_RELATIVE_URI) {
        return Check::fail(
            ID,
            format!(
                "container {} also sets {}: SDKs use it before {}, so the Pod Identity Agent is never asked",
                pod.container,
                a::ENV_RELATIVE_URI,
                a::ENV_FULL_URI
            ),
            format!("remove {} from the container", a::ENV_RELATIVE_URI),
        );
    }
    let host = host_of(uri).unwrap_or_default();
    if uri.starts_with("http://") && !a::HTTP_ALLOWED_HOSTS.contains(&host) {
        return Check::fail(
            ID,
            format!(
                "{}={uri}: SDKs refuse plain http to {host} (only loopback, 169.254.170.2, 169.254.170.23, fd00:ec2::23)",
                a::ENV_FULL_URI
            ),
            format!("use {} (remove the preset env and recreate)", a::AGENT_URI),
        );
    }
    if uri != a::AGENT_URI && !is_default_v6(uri) {
        return Check::warn(
            ID,
            format!(
                "{}={uri} is not the Pod Identity Agent's {} (a preset value the webhook kept)",
                a::ENV_FULL_URI,
                a::AGENT_URI
            ),
            format!(
                "remove the preset {} so the webhook injects the agent's URI",
                a::ENV_FULL_URI
            ),
        );
    }
    let wired_by = match pod.label(a::POD_LABEL) {
        Some(value) => format!(
            " (injected by the webhook: pod label {}={value})",
            a::POD_LABEL
        ),
        None => String::new(),
    };
    Check::pass(
        ID,
        format!(
            "container {} has {}={uri} and {}{wired_by}",
            pod.container,
            a::ENV_FULL_URI,
            a::ENV_TOKEN_FILE
        ),
    )
}

fn is_default_v6(uri: &str) -> bool {
    uri == format!("http://{}/v1/credentials", a::AGENT_HOST_V6)
}

fn volume_check(pod: &PodSubject, spec: &PodSpec, container: &Container) -> Check {
    const ID: &str = "aws.pod-identity.token-volume";
    let Some(volume) = token_volume(spec) else {
        return Check::fail(
            ID,
            format!("the pod has no {} volume", a::VOLUME_NAME),
            "recreate the pod so the webhook projects the Pod Identity token",
        );
    };
    if volume.projected.is_none() {
        return Check::fail(
            ID,
            format!(
                "volume {} is not a projected ServiceAccount token",
                a::VOLUME_NAME
            ),
            "remove the hand-written volume and recreate the pod",
        );
    }
    match volume_audience(spec) {
        Some(aud) if aud == a::AUDIENCE => {}
        other => {
            return Check::fail(
                ID,
                format!(
                    "volume {}'s token audience is {:?}, EKS Auth accepts only {}",
                    a::VOLUME_NAME,
                    other.unwrap_or_default(),
                    a::AUDIENCE
                ),
                format!("project the token with audience {}", a::AUDIENCE),
            );
        }
    }
    let token_file = env_value(container, a::ENV_TOKEN_FILE).unwrap_or(a::TOKEN_PATH);
    let mounted = container.volume_mounts.iter().flatten().any(|m| {
        m.name == a::VOLUME_NAME
            && token_file.starts_with(&format!("{}/", m.mount_path.trim_end_matches('/')))
    });
    if !mounted {
        return Check::fail(
            ID,
            format!(
                "container {} does not mount {} where {token_file} lies",
                pod.container,
                a::VOLUME_NAME
            ),
            format!("mount {} at {}", a::VOLUME_NAME, a::MOUNT_PATH),
        );
    }
    Check::pass(
        ID,
        format!(
            "projected token (audience {}) mounted for {token_file}",
            a::AUDIENCE
        ),
    )
}

/// The SDK's choice when more than one AWS mechanism is wired into the container.
fn precedence_check(pod: &PodSubject, container: &Container) -> Option<Check> {
    const ID: &str = "aws.precedence";
    if has_irsa_env(container) {
        // Judged as IRSA (see `precedence_under_irsa`); reported here only for completeness.
        return None;
    }
    pod.sa_annotation(irsa::ROLE_ARN).map(|role| {
        Check::pass(
            ID,
            format!(
                "ServiceAccount {} is also annotated for IRSA ({role}); the association won in the webhook (no {} injected), so the SDK uses Pod Identity",
                pod.service_account_name(),
                irsa::ENV_ROLE_ARN
            ),
        )
    })
}

/// For a container judged as IRSA: Pod Identity is wired too, but never used.
pub fn precedence_under_irsa(pod: &PodSubject, spec: &PodSpec) -> Option<Check> {
    let container = target(pod, spec)?;
    if !has_irsa_env(container) || !has_env(container, a::ENV_FULL_URI) {
        return None;
    }
    let role = env_value(container, irsa::ENV_ROLE_ARN).unwrap_or("(from valueFrom)");
    Some(Check::warn(
        "aws.precedence",
        format!(
            "container {} has both IRSA ({}={role}) and Pod Identity ({}) env: the SDK chain tries web identity before container credentials, so it uses IRSA and never asks the Pod Identity Agent",
            pod.container,
            irsa::ENV_ROLE_ARN,
            a::ENV_FULL_URI
        ),
        "keep one mechanism: remove the preset AWS_ROLE_ARN/AWS_WEB_IDENTITY_TOKEN_FILE to use the association, or delete the association",
    ))
}
