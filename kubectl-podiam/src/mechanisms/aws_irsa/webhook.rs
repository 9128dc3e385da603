//! What amazon-eks-pod-identity-webhook does to a pod at CREATE, so a workload template can be
//! judged as the pod it will become. Mirrors pkg/handler/handler.go: env is injected only when
//! the container sets neither AWS_ROLE_ARN nor AWS_WEB_IDENTITY_TOKEN_FILE; the mount is still
//! added, unless the container also sets a region and AWS_STS_REGIONAL_ENDPOINTS, in which case
//! upstream leaves it alone entirely.

use k8s_openapi::api::core::v1::{
    Container, EnvVar, PodSpec, ProjectedVolumeSource, ServiceAccountTokenProjection, Volume,
    VolumeMount, VolumeProjection,
};

use super::annotations as a;
use crate::subject::{PodSubject, has_env};

/// Whether the webhook would mutate this pod at all, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Mutates,
    OptedOut,
    NoRoleAnnotation,
}

pub fn admission(pod: &PodSubject) -> Admission {
    if pod.label(a::SKIP_POD_LABEL).is_some() {
        Admission::OptedOut
    } else if pod.sa_annotation(a::ROLE_ARN).is_none_or(str::is_empty) {
        Admission::NoRoleAnnotation
    } else {
        Admission::Mutates
    }
}

/// Containers named in the pod's skip-containers annotation (CSV).
pub fn skipped_containers(pod: &PodSubject) -> Vec<String> {
    pod.annotation(a::SKIP_CONTAINERS)
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Token lifetime the webhook requests: pod annotation, else SA annotation, else 86400; raised to 600.
pub fn expiration_seconds(pod: &PodSubject) -> i64 {
    pod.annotation(a::TOKEN_EXPIRATION)
        .or_else(|| pod.sa_annotation(a::TOKEN_EXPIRATION))
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(a::DEFAULT_EXPIRATION)
        .max(a::MIN_EXPIRATION)
}

pub fn audience(pod: &PodSubject) -> String {
    pod.sa_annotation(a::AUDIENCE)
        .filter(|s| !s.is_empty())
        .unwrap_or(a::DEFAULT_AUDIENCE)
        .to_string()
}

pub fn regional_sts(pod: &PodSubject) -> bool {
    pod.sa_annotation(a::STS_REGIONAL_ENDPOINTS) == Some("true")
}

pub fn token_path(pod: &PodSubject) -> &'static str {
    if pod.node_os.as_deref() == Some("windows") {
        a::WINDOWS_TOKEN_PATH
    } else {
        a::TOKEN_PATH
    }
}

/// The pod spec after the webhook's mutation (unchanged when it would not mutate).
pub fn mutate(pod: &PodSubject) -> PodSpec {
    let mut spec = pod.spec.clone();
    if admission(pod) != Admission::Mutates {
        return spec;
    }
    let role = pod
        .sa_annotation(a::ROLE_ARN)
        .unwrap_or_default()
        .to_string();
    let skipped = skipped_containers(pod);
    let token_path = token_path(pod);
    let regional = regional_sts(pod);
    let mutate_container = |c: &mut Container| {
        if skipped.contains(&c.name) {
            return;
        }
        let preset = has_env(c, a::ENV_ROLE_ARN) || has_env(c, a::ENV_TOKEN_FILE);
        let fully_preset = preset
            && (has_env(c, "AWS_REGION") || has_env(c, "AWS_DEFAULT_REGION"))
            && has_env(c, a::ENV_REGIONAL);
        if fully_preset {
            return;
        }
        if !preset {
            let env = c.env.get_or_insert_with(Vec::new);
            if regional && !env.iter().any(|e| e.name == a::ENV_REGIONAL) {
                env.push(literal(a::ENV_REGIONAL, "regional"));
            }
            env.push(literal(a::ENV_ROLE_ARN, &role));
            env.push(literal(a::ENV_TOKEN_FILE, token_path));
        }
        let mounts = c.volume_mounts.get_or_insert_with(Vec::new);
        if !mounts.iter().any(|m| m.name == a::VOLUME_NAME) {
            mounts.push(VolumeMount {
                name: a::VOLUME_NAME.into(),
                mount_path: a::MOUNT_PATH.into(),
                read_only: Some(true),
                ..Default::default()
            });
        }
    };
    spec.init_containers
        .iter_mut()
        .flatten()
        .for_each(mutate_container);
    spec.containers.iter_mut().for_each(mutate_container);
    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    if !volumes.iter().any(|v| v.name == a::VOLUME_NAME) {
        volumes.push(Volume {
            name: a::VOLUME_NAME.into(),
            projected: Some(ProjectedVolumeSource {
                sources: Some(vec![VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        audience: Some(audience(pod)),
                        expiration_seconds: Some(expiration_seconds(pod)),
                        path: "token".into(),
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    spec
}

fn literal(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        value_from: None,
    }
}
