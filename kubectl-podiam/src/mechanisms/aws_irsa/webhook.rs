//! What amazon-eks-pod-identity-webhook does to a pod at CREATE, so a workload template can be
//! judged as the pod it will become. Mirrors pkg/handler/handler.go: env is injected only when
//! the container sets neither AWS_ROLE_ARN nor AWS_WEB_IDENTITY_TOKEN_FILE; the mount is still
//! added, unless the container also sets a region and AWS_STS_REGIONAL_ENDPOINTS, in which case
//! upstream leaves it alone entirely.

use k8s_openapi::api::core::v1::{
    Container, EnvVar, PodSpec, ProjectedVolumeSource, ServiceAccountTokenProjection, Volume,
    VolumeMount, VolumeProjection,
};

use crate::cloud::aws;
use crate::cloud::aws::irsa as a;
use crate::mechanisms::go_parse::csv::{self, CsvError};
use crate::mechanisms::go_parse::strconv;
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

/// What the webhook makes of the pod's skip-containers annotation: Go's `encoding/csv` reads
/// its first record; on a parse error the webhook skips no container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipList {
    Absent,
    Parsed(Vec<String>),
    /// Go's reader rejected the value: nothing is skipped.
    Unparsable(CsvError),
}

pub fn skip_list(pod: &PodSubject) -> SkipList {
    match pod.annotation(a::SKIP_CONTAINERS) {
        None => SkipList::Absent,
        Some(v) => match csv::first_record(v) {
            Ok(names) => SkipList::Parsed(names),
            Err(e) => SkipList::Unparsable(e),
        },
    }
}

/// Containers the webhook skips: the record's fields as Go reads them (white space kept).
pub fn skipped_containers(pod: &PodSubject) -> Vec<String> {
    match skip_list(pod) {
        SkipList::Parsed(names) => names,
        SkipList::Absent | SkipList::Unparsable(_) => Vec::new(),
    }
}

/// Token lifetime the webhook requests (`ParseInt`, nothing trimmed): the ServiceAccount's
/// annotation, or 86400 when absent or invalid; the pod's annotation overrides it, and an
/// invalid pod value falls back to the ServiceAccount's. Parsed values are raised to 600.
pub fn expiration_seconds(pod: &PodSubject) -> i64 {
    let parsed = |v: &str| {
        strconv::parse_int(v, 64)
            .ok()
            .map(|e| e.max(a::MIN_EXPIRATION))
    };
    let from_sa = pod
        .sa_annotation(a::TOKEN_EXPIRATION)
        .and_then(parsed)
        .unwrap_or(a::DEFAULT_EXPIRATION);
    pod.annotation(a::TOKEN_EXPIRATION)
        .and_then(parsed)
        .unwrap_or(from_sa)
}

/// The audience of the projected token: the ServiceAccount's annotation whenever present, so an
/// empty one projects the token with no audience (the API server's default audience applies).
pub fn audience(pod: &PodSubject) -> Option<String> {
    match pod.sa_annotation(a::AUDIENCE) {
        Some("") => None,
        Some(v) => Some(v.to_string()),
        None => Some(a::DEFAULT_AUDIENCE.to_string()),
    }
}

/// `strconv.ParseBool` of the ServiceAccount's annotation; invalid or absent → the webhook's
/// flag default (off).
pub fn regional_sts(pod: &PodSubject) -> bool {
    pod.sa_annotation(a::STS_REGIONAL_ENDPOINTS)
        .and_then(|v| strconv::parse_bool(v).ok())
        .unwrap_or(false)
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
            && (has_env(c, aws::ENV_REGION) || has_env(c, aws::ENV_DEFAULT_REGION))
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
                        audience: audience(pod),
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
