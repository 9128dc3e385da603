//! What amazon-eks-pod-identity-webhook does at CREATE to a pod whose ServiceAccount has a
//! Pod Identity association (pkg/handler/handler.go, container-credentials path, which takes
//! precedence over IRSA): per non-skipped container, unless it already sets a container
//! credentials variable, a region and AWS_STS_REGIONAL_ENDPOINTS, it appends
//! AWS_STS_REGIONAL_ENDPOINTS=regional (ServiceAccount opt-in), then the full URI and token file
//! when neither is set, and mounts the token volume read-only; the volume is inserted first.
//! No AWS_ROLE_ARN: the ServiceAccount's IRSA annotation is ignored.

use k8s_openapi::api::core::v1::{
    Container, EnvVar, PodSpec, ProjectedVolumeSource, ServiceAccountTokenProjection, Volume,
    VolumeMount, VolumeProjection,
};

use crate::cloud::aws;
use crate::cloud::aws::irsa;
use crate::cloud::aws::pod_identity as a;
use crate::mechanisms::aws_irsa::webhook as irsa_webhook;
use crate::subject::{PodSubject, has_env};

/// The file inside the volume: `MOUNT_PATH/TOKEN_FILE`.
const TOKEN_FILE: &str = "eks-pod-identity-token";

/// The lifetime the webhook requests: the IRSA rules (pod, then ServiceAccount annotation);
/// the default 86400 is then drawn at random from 79200–86400, so the model gives the upper
/// bound and the checks accept the range.
pub fn expiration_seconds(pod: &PodSubject) -> i64 {
    irsa_webhook::expiration_seconds(pod)
}

pub fn mutate(pod: &PodSubject) -> PodSpec {
    let mut spec = pod.spec.clone();
    let skipped = irsa_webhook::skipped_containers(pod);
    let regional = irsa_webhook::regional_sts(pod);
    let mutate_container = |c: &mut Container| {
        if skipped.contains(&c.name) {
            return;
        }
        let preset = has_env(c, a::ENV_FULL_URI) || has_env(c, a::ENV_TOKEN_FILE);
        let region = has_env(c, aws::ENV_REGION) || has_env(c, aws::ENV_DEFAULT_REGION);
        let regional_set = has_env(c, irsa::ENV_REGIONAL);
        if preset && region && regional_set {
            return;
        }
        let env = c.env.get_or_insert_with(Vec::new);
        if regional && !regional_set {
            env.push(literal(irsa::ENV_REGIONAL, "regional"));
        }
        if !preset {
            env.push(literal(a::ENV_FULL_URI, a::AGENT_URI));
            env.push(literal(a::ENV_TOKEN_FILE, a::TOKEN_PATH));
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
        volumes.insert(
            0,
            Volume {
                name: a::VOLUME_NAME.into(),
                projected: Some(ProjectedVolumeSource {
                    sources: Some(vec![VolumeProjection {
                        service_account_token: Some(ServiceAccountTokenProjection {
                            audience: Some(a::AUDIENCE.into()),
                            expiration_seconds: Some(expiration_seconds(pod)),
                            path: TOKEN_FILE.into(),
                        }),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
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
