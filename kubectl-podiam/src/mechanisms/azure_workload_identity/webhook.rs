//! What the azure-workload-identity webhook (v1.6) does to a pod at CREATE, so a workload
//! template can be judged as the pod it will become. Modelled on pkg/webhook/webhook.go:
//! - only pods labelled `azure.workload.identity/use: "true"` reach it (objectSelector);
//! - it fails the CREATE (failurePolicy Fail) on a token expiration outside 3600–86400 or not a
//!   number, and on a proxy sidecar request it cannot honour (hostNetwork, bad port);
//! - per non-skipped container (init containers too) it appends each of AZURE_CLIENT_ID,
//!   AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST that the container does
//!   not already name and whose value is not empty (no client-id annotation → no
//!   AZURE_CLIENT_ID), and mounts the token volume read-only at /var/run/secrets/azure/wi;
//! - it adds one projected volume `azure-workload-identity-reserved-<sha256(pod name)>` with a
//!   ServiceAccount token for `api://AzureADTokenExchange` at `token/azure-identity-token`.

use k8s_openapi::api::core::v1::{
    Container, EnvVar, PodSpec, ProjectedVolumeSource, ServiceAccountTokenProjection, Volume,
    VolumeMount, VolumeProjection,
};
use sha2::{Digest, Sha256};

use crate::cloud::azure as a;
use crate::mechanisms::go_parse::strconv;
use crate::subject::{Origin, PodSubject, has_env};

/// Whether the webhook would mutate this pod, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Mutates,
    /// The pod lacks `azure.workload.identity/use: "true"`: the webhook never sees it.
    NotLabelled,
    /// The webhook answers the CREATE with an error, so the pod is never created.
    Rejected(String),
}

pub fn is_labelled(pod: &PodSubject) -> bool {
    pod.label(a::USE_LABEL) == Some(a::USE_LABEL_VALUE)
}

/// In the webhook's order: the ServiceAccount lookup, the proxy sidecar, the token expiration.
pub fn admission(pod: &PodSubject) -> Admission {
    if !is_labelled(pod) {
        return Admission::NotLabelled;
    }
    if let Some(missing) = missing_service_account(pod) {
        return Admission::Rejected(missing);
    }
    if injects_proxy(pod) {
        if pod.spec.host_network == Some(true) {
            return Admission::Rejected(
                "hostNetwork is set to true, cannot inject proxy sidecar".into(),
            );
        }
        if let Err(e) = proxy_port(pod) {
            return Admission::Rejected(e);
        }
    }
    if let Err(e) = expiration_seconds(pod) {
        return Admission::Rejected(e);
    }
    Admission::Mutates
}

/// The webhook reads the pod's ServiceAccount at CREATE and answers 400 when it does not exist.
/// A template whose ServiceAccount is not in the input is judged as created without it; only
/// `default` is taken to exist (every namespace has it).
pub fn missing_service_account(pod: &PodSubject) -> Option<String> {
    let name = pod.service_account_name();
    (pod.origin == Origin::Template && pod.service_account.is_none() && name != "default")
        .then(|| format!("serviceaccounts \"{name}\" not found"))
}

/// Token lifetime: the pod annotation, else the ServiceAccount's, else 3600 (empty values count
/// as absent); the webhook rejects the pod with Go's error when the value is not an integer
/// (`strconv.ParseInt`, nothing trimmed) or lies outside 3600–86400.
pub fn expiration_seconds(pod: &PodSubject) -> Result<i64, String> {
    let raw = pod
        .annotation(a::TOKEN_EXPIRATION)
        .filter(|v| !v.is_empty())
        .or_else(|| {
            pod.sa_annotation(a::TOKEN_EXPIRATION)
                .filter(|v| !v.is_empty())
        });
    let Some(raw) = raw else {
        return Ok(a::DEFAULT_EXPIRATION);
    };
    let value = strconv::parse_int(raw, 64).map_err(|e| e.to_string())?;
    if !(a::MIN_EXPIRATION..=a::MAX_EXPIRATION).contains(&value) {
        return Err(format!(
            "token expiration {value} not valid. Expected value to be between {} and {}",
            a::MIN_EXPIRATION,
            a::MAX_EXPIRATION
        ));
    }
    Ok(value)
}

pub fn injects_proxy(pod: &PodSubject) -> bool {
    pod.annotation(a::INJECT_PROXY_SIDECAR).is_some()
}

pub fn proxy_port(pod: &PodSubject) -> Result<i32, String> {
    match pod.annotation(a::PROXY_SIDECAR_PORT) {
        None => Ok(a::DEFAULT_PROXY_PORT),
        Some(v) => strconv::parse_int(v, 32)
            .map(|p| p as i32)
            .map_err(|e| format!("failed to parse proxy sidecar port: {e}")),
    }
}

/// Containers named in the pod's skip-containers annotation (`;`-separated).
pub fn skipped_containers(pod: &PodSubject) -> Vec<String> {
    pod.annotation(a::SKIP_CONTAINERS)
        .map(|v| {
            v.split(';')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

pub fn client_id(pod: &PodSubject) -> Option<&str> {
    pod.sa_annotation(a::CLIENT_ID)
}

/// The ServiceAccount's tenant-id annotation when present (even empty), else the webhook's.
pub fn tenant_id(pod: &PodSubject) -> &str {
    pod.sa_annotation(a::TENANT_ID)
        .unwrap_or(a::DEFAULT_TENANT_ID)
}

/// `azure-workload-identity-reserved-` + the first 30 hex digits of sha256(pod name), so the
/// name stays within 63 characters. Pods named by generateName hash "<prefix> (prefix)".
pub fn volume_name(pod_name: &str) -> String {
    let digest = Sha256::digest(pod_name.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}{}",
        a::VOLUME_PREFIX,
        &hex[..63 - a::VOLUME_PREFIX.len()]
    )
}

/// Is this one of the webhook's token volumes (v1.6 hashed name or the ≤1.5 fixed name)?
pub fn is_token_volume(name: &str) -> bool {
    name.starts_with(a::VOLUME_PREFIX) || name == a::LEGACY_VOLUME_NAME
}

/// The name the webhook sees at CREATE: the pod's name, else its generateName marked as such.
fn admitted_name(pod: &PodSubject) -> String {
    match (&pod.meta.name, &pod.meta.generate_name) {
        (Some(n), _) if !n.is_empty() => n.clone(),
        (_, Some(g)) if !g.is_empty() => format!("{g} (prefix)"),
        _ => pod.name.clone(),
    }
}

/// The pod spec after the webhook's mutation (unchanged when it would not mutate).
pub fn mutate(pod: &PodSubject) -> PodSpec {
    let mut spec = pod.spec.clone();
    if admission(pod) != Admission::Mutates {
        return spec;
    }
    let expiration = expiration_seconds(pod).unwrap_or(a::DEFAULT_EXPIRATION);
    if injects_proxy(pod) {
        add_proxy(&mut spec, proxy_port(pod).unwrap_or(a::DEFAULT_PROXY_PORT));
    }
    let volume = volume_name(&admitted_name(pod));
    let values = [
        client_id(pod).unwrap_or_default().to_string(),
        tenant_id(pod).to_string(),
        a::TOKEN_PATH.to_string(),
        a::PUBLIC_AUTHORITY_HOST.to_string(),
    ];
    let skipped = skipped_containers(pod);
    let mutate_container = |c: &mut Container| {
        if skipped.contains(&c.name) {
            return;
        }
        for (name, value) in a::INJECTED_ENV.iter().zip(&values) {
            if !has_env(c, name) && !value.is_empty() {
                c.env.get_or_insert_with(Vec::new).push(EnvVar {
                    name: (*name).into(),
                    value: Some(value.clone()),
                    value_from: None,
                });
            }
        }
        let mount = VolumeMount {
            name: volume.clone(),
            mount_path: a::MOUNT_PATH.into(),
            read_only: Some(true),
            ..Default::default()
        };
        let mounts = c.volume_mounts.get_or_insert_with(Vec::new);
        match mounts.iter_mut().find(|m| m.name == volume) {
            Some(existing) => *existing = mount,
            None => mounts.push(mount),
        }
    };
    spec.init_containers
        .iter_mut()
        .flatten()
        .for_each(mutate_container);
    spec.containers.iter_mut().for_each(mutate_container);
    let token_volume = Volume {
        name: volume.clone(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(vec![VolumeProjection {
                service_account_token: Some(ServiceAccountTokenProjection {
                    audience: Some(a::AUDIENCE.into()),
                    expiration_seconds: Some(expiration),
                    path: a::TOKEN_FILE_PATH.into(),
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    match volumes.iter_mut().find(|v| v.name == volume) {
        Some(existing) => *existing = token_volume,
        None => volumes.push(token_volume),
    }
    spec
}

/// The proxy init container (appended to init containers) and the proxy sidecar (first
/// container), each added once. The model keeps the sidecar a regular container, as the
/// webhook does for API servers older than 1.32; the images are irrelevant to identity.
fn add_proxy(spec: &mut PodSpec, port: i32) {
    let init = spec.init_containers.get_or_insert_with(Vec::new);
    if !init.iter().any(|c| c.name == a::PROXY_INIT_CONTAINER) {
        init.push(Container {
            name: a::PROXY_INIT_CONTAINER.into(),
            env: Some(vec![EnvVar {
                name: "PROXY_PORT".into(),
                value: Some(port.to_string()),
                value_from: None,
            }]),
            ..Default::default()
        });
    }
    if !spec
        .containers
        .iter()
        .any(|c| c.name == a::PROXY_SIDECAR_CONTAINER)
    {
        spec.containers.insert(
            0,
            Container {
                name: a::PROXY_SIDECAR_CONTAINER.into(),
                args: Some(vec![format!("--proxy-port={port}")]),
                ..Default::default()
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subject::env_value;
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(
        labels: &[(&str, &str)],
        annotations: &[(&str, &str)],
        sa: &[(&str, &str)],
        containers: Vec<Container>,
    ) -> PodSubject {
        let map = |kv: &[(&str, &str)]| {
            Some(
                kv.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        PodSubject {
            kind: "Deployment".into(),
            namespace: "default".into(),
            name: "azure-app".into(),
            meta: ObjectMeta {
                labels: map(labels),
                annotations: map(annotations),
                ..Default::default()
            },
            spec: PodSpec {
                service_account_name: Some("aks-service-account".into()),
                containers,
                ..Default::default()
            },
            origin: Origin::Template,
            container: "app".into(),
            service_account: Some(ServiceAccount {
                metadata: ObjectMeta {
                    name: Some("aks-service-account".into()),
                    annotations: map(sa),
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn container(name: &str, env: &[(&str, &str)]) -> Container {
        Container {
            name: name.into(),
            env: Some(
                env.iter()
                    .map(|(k, v)| EnvVar {
                        name: k.to_string(),
                        value: Some(v.to_string()),
                        value_from: None,
                    })
                    .collect(),
            ),
            ..Default::default()
        }
    }

    const CLIENT: &str = "00000000-0000-0000-0000-0000000000a1";
    const USE: (&str, &str) = (a::USE_LABEL, "true");

    #[test]
    fn labelled_pod_gets_env_and_the_v1_6_volume() {
        let p = pod(
            &[USE],
            &[],
            &[(a::CLIENT_ID, CLIENT)],
            vec![container("app", &[])],
        );
        let spec = mutate(&p);
        let c = &spec.containers[0];
        assert_eq!(env_value(c, a::ENV_CLIENT_ID), Some(CLIENT));
        assert_eq!(env_value(c, a::ENV_TENANT_ID), Some(a::DEFAULT_TENANT_ID));
        assert_eq!(
            env_value(c, a::ENV_TOKEN_FILE),
            Some("/var/run/secrets/azure/wi/token/azure-identity-token")
        );
        assert_eq!(
            env_value(c, a::ENV_AUTHORITY_HOST),
            Some(a::PUBLIC_AUTHORITY_HOST)
        );
        let volumes = spec.volumes.unwrap();
        assert_eq!(volumes.len(), 1);
        let v = &volumes[0];
        assert!(v.name.starts_with("azure-workload-identity-reserved-"));
        assert_eq!(v.name.len(), 63);
        assert_eq!(v.name, volume_name("azure-app"));
        let projection = v.projected.as_ref().unwrap().sources.as_ref().unwrap()[0]
            .service_account_token
            .clone()
            .unwrap();
        assert_eq!(
            projection.audience.as_deref(),
            Some("api://AzureADTokenExchange")
        );
        assert_eq!(projection.expiration_seconds, Some(3600));
        assert_eq!(projection.path, "token/azure-identity-token");
        let mount = &c.volume_mounts.as_ref().unwrap()[0];
        assert_eq!(mount.mount_path, "/var/run/secrets/azure/wi");
        assert_eq!(mount.read_only, Some(true));
    }

    #[test]
    fn volume_name_is_sha256_of_the_pod_name_truncated_to_63() {
        // sha256("azure-pod") computed independently (sha256sum) and truncated to 30 digits.
        assert_eq!(
            volume_name("azure-pod"),
            format!(
                "azure-workload-identity-reserved-{}",
                &hex_of_sha256(b"azure-pod")[..30]
            )
        );
        assert_ne!(volume_name("a"), volume_name("b"));
    }

    fn hex_of_sha256(bytes: &[u8]) -> String {
        let out = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(bytes)?;
                child.wait_with_output()
            })
            .expect("sha256sum (coreutils) is needed for this test");
        String::from_utf8(out.stdout).unwrap()[..64].to_string()
    }

    #[test]
    fn unlabelled_or_wrongly_labelled_pods_are_left_alone() {
        for labels in [
            vec![],
            vec![(a::USE_LABEL, "True")],
            vec![(a::USE_LABEL, "yes")],
        ] {
            let p = pod(
                &labels,
                &[],
                &[(a::CLIENT_ID, CLIENT)],
                vec![container("app", &[])],
            );
            assert_eq!(admission(&p), Admission::NotLabelled);
            assert_eq!(mutate(&p), p.spec);
        }
    }

    #[test]
    fn preset_env_is_kept_and_the_rest_injected() {
        let other = "11111111-1111-1111-1111-111111111111";
        let p = pod(
            &[USE],
            &[],
            &[(a::CLIENT_ID, CLIENT)],
            vec![container("app", &[(a::ENV_CLIENT_ID, other)])],
        );
        let spec = mutate(&p);
        let c = &spec.containers[0];
        assert_eq!(env_value(c, a::ENV_CLIENT_ID), Some(other));
        let names: Vec<&str> = c.env.iter().flatten().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names.iter().filter(|n| **n == a::ENV_CLIENT_ID).count(),
            1,
            "{names:?}"
        );
        assert_eq!(env_value(c, a::ENV_TOKEN_FILE), Some(a::TOKEN_PATH));
    }

    #[test]
    fn no_client_id_annotation_means_no_client_id_env() {
        let p = pod(&[USE], &[], &[], vec![container("app", &[])]);
        let spec = mutate(&p);
        assert!(!has_env(&spec.containers[0], a::ENV_CLIENT_ID));
        assert!(has_env(&spec.containers[0], a::ENV_TOKEN_FILE));
    }

    #[test]
    fn skip_containers_is_semicolon_separated_and_covers_init_containers() {
        let mut p = pod(
            &[USE],
            &[(a::SKIP_CONTAINERS, "sidecar; init")],
            &[(a::CLIENT_ID, CLIENT)],
            vec![container("app", &[]), container("sidecar", &[])],
        );
        p.spec.init_containers = Some(vec![container("init", &[])]);
        let spec = mutate(&p);
        assert!(has_env(&spec.containers[0], a::ENV_CLIENT_ID));
        assert!(!has_env(&spec.containers[1], a::ENV_CLIENT_ID));
        assert!(spec.containers[1].volume_mounts.is_none());
        assert!(!has_env(
            &spec.init_containers.unwrap()[0],
            a::ENV_CLIENT_ID
        ));
        assert_eq!(skipped_containers(&p), vec!["sidecar", "init"]);
    }

    #[test]
    fn expiration_comes_from_the_pod_first_and_out_of_range_is_rejected() {
        let p = pod(
            &[USE],
            &[(a::TOKEN_EXPIRATION, "7200")],
            &[(a::TOKEN_EXPIRATION, "86400")],
            vec![container("app", &[])],
        );
        assert_eq!(expiration_seconds(&p), Ok(7200));
        for bad in ["600", "90000", "1h"] {
            let p = pod(
                &[USE],
                &[],
                &[(a::TOKEN_EXPIRATION, bad)],
                vec![container("app", &[])],
            );
            assert!(matches!(admission(&p), Admission::Rejected(_)), "{bad}");
            assert_eq!(mutate(&p), p.spec);
        }
    }

    #[test]
    fn proxy_sidecar_and_init_container_are_added_once() {
        let p = pod(
            &[USE],
            &[
                (a::INJECT_PROXY_SIDECAR, "true"),
                (a::PROXY_SIDECAR_PORT, "8001"),
            ],
            &[(a::CLIENT_ID, CLIENT)],
            vec![container("app", &[])],
        );
        let spec = mutate(&p);
        assert_eq!(spec.containers[0].name, a::PROXY_SIDECAR_CONTAINER);
        assert_eq!(spec.containers[1].name, "app");
        let init = spec.init_containers.unwrap();
        assert_eq!(init[0].name, a::PROXY_INIT_CONTAINER);
        assert_eq!(env_value(&init[0], "PROXY_PORT"), Some("8001"));
        let mut host = p.clone();
        host.spec.host_network = Some(true);
        assert!(matches!(admission(&host), Admission::Rejected(_)));
    }
}
