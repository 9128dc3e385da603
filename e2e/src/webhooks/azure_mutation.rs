//! The pod mutation of the Azure Workload Identity webhook v1.6.0 (`pkg/webhook/webhook.go`,
//! `consts.go`), as a pure function of the pod, its ServiceAccount and the webhook's config.
//!
//! Upstream behaviour kept on purpose:
//! - the webhook is only called for pods labelled `azure.workload.identity/use: "true"` (the
//!   configuration's `objectSelector`); this function does not look at the label;
//! - a ServiceAccount that cannot be read fails the admission (HTTP 400), and with
//!   `failurePolicy: Fail` the pod is not created;
//! - the SA needs no annotation to be mutated: without `client-id`, `AZURE_CLIENT_ID` is
//!   simply not injected (upstream skips empty values) but the token volume still is;
//! - `AZURE_TENANT_ID` comes from the SA's `tenant-id` annotation, else the webhook's tenant;
//! - each variable is added only when the container does not set it already;
//! - the token lifetime comes from the pod's annotation, else the SA's, else 3600, and must
//!   be within [3600, 86400] or the admission fails;
//! - the projected volume is `azure-workload-identity-reserved-<first 30 hex of
//!   sha256(pod name)>` (for a pod with only `generateName`, the hash is of
//!   `"<generateName> (prefix)"`), mounted read-only at `/var/run/secrets/azure/wi`, file
//!   `token/azure-identity-token`, audience `api://AzureADTokenExchange`;
//! - `skip-containers` is `;`-separated and applies to init and normal containers;
//! - the proxy sidecar (`inject-proxy-sidecar` annotation present) adds the `azwi-proxy-init`
//!   init container and the `azwi-proxy` native sidecar (restartPolicy Always, Kubernetes
//!   ≥ 1.32); refused for hostNetwork pods. Its images are not available locally, so such
//!   pods are admitted as upstream would admit them but cannot start here.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, ExecAction, Lifecycle, LifecycleHandler, Pod,
    ProjectedVolumeSource, SecurityContext, ServiceAccount, ServiceAccountTokenProjection, Volume,
    VolumeMount, VolumeProjection,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::admission::PatchOperation;

/// Pod label that makes the apiserver call the webhook (objectSelector).
pub const USE_LABEL: &str = "azure.workload.identity/use";
pub const CLIENT_ID_ANNOTATION: &str = "azure.workload.identity/client-id";
pub const TENANT_ID_ANNOTATION: &str = "azure.workload.identity/tenant-id";
pub const TOKEN_EXPIRATION_ANNOTATION: &str =
    "azure.workload.identity/service-account-token-expiration";
pub const SKIP_CONTAINERS_ANNOTATION: &str = "azure.workload.identity/skip-containers";
pub const INJECT_PROXY_SIDECAR_ANNOTATION: &str = "azure.workload.identity/inject-proxy-sidecar";
pub const PROXY_SIDECAR_PORT_ANNOTATION: &str = "azure.workload.identity/proxy-sidecar-port";

pub const MIN_TOKEN_EXPIRATION: i64 = 3600;
pub const MAX_TOKEN_EXPIRATION: i64 = 86_400;
pub const DEFAULT_TOKEN_EXPIRATION: i64 = 3600;
pub const DEFAULT_PROXY_PORT: i32 = 8000;

pub const DEFAULT_AUDIENCE: &str = "api://AzureADTokenExchange";
pub const VOLUME_NAME_PREFIX: &str = "azure-workload-identity-reserved-";
pub const VOLUME_MOUNT_PATH: &str = "/var/run/secrets/azure/wi";
pub const TOKEN_FILE_PATH: &str = "token/azure-identity-token";
/// `AZURE_FEDERATED_TOKEN_FILE` as injected.
pub const FEDERATED_TOKEN_FILE: &str = "/var/run/secrets/azure/wi/token/azure-identity-token";
/// Azure public cloud's authority (`ActiveDirectoryEndpoint`), upstream's default.
pub const PUBLIC_CLOUD_AUTHORITY_HOST: &str = "https://login.microsoftonline.com/";

pub const ENV_CLIENT_ID: &str = "AZURE_CLIENT_ID";
pub const ENV_TENANT_ID: &str = "AZURE_TENANT_ID";
pub const ENV_FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
pub const ENV_AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";

pub const PROXY_INIT_CONTAINER_NAME: &str = "azwi-proxy-init";
pub const PROXY_SIDECAR_CONTAINER_NAME: &str = "azwi-proxy";

/// The webhook's configuration (`AZURE_TENANT_ID`, `AZURE_ENVIRONMENT` → authority host).
#[derive(Clone, Debug)]
pub struct AzureMutationSettings {
    pub tenant_id: String,
    pub authority_host: String,
    pub audience: String,
    pub proxy_image: String,
    pub proxy_init_image: String,
}

impl Default for AzureMutationSettings {
    fn default() -> Self {
        Self {
            tenant_id: crate::emulators::azure::DEFAULT_TENANT_ID.to_owned(),
            authority_host: PUBLIC_CLOUD_AUTHORITY_HOST.to_owned(),
            audience: DEFAULT_AUDIENCE.to_owned(),
            proxy_image: "mcr.microsoft.com/oss/azure/workload-identity/proxy:v1.6.0".to_owned(),
            proxy_init_image: "mcr.microsoft.com/oss/azure/workload-identity/proxy-init:v1.6.0"
                .to_owned(),
        }
    }
}

/// The outcome for one pod: the patch, and what was decided.
#[derive(Clone, Debug, Default)]
pub struct AzureMutation {
    pub patch: Vec<PatchOperation>,
    pub volume_name: String,
    pub client_id: Option<String>,
    pub tenant_id: String,
    pub expiration_seconds: i64,
}

/// `azure-workload-identity-reserved-` + the first 30 hex digits of sha256(`pod_name`).
pub fn volume_name(pod_name: &str) -> String {
    let hex: String = Sha256::digest(pod_name.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{VOLUME_NAME_PREFIX}{}",
        &hex[..63 - VOLUME_NAME_PREFIX.len()]
    )
}

/// The name upstream hashes: the pod's name, or `"<generateName> (prefix)"`.
pub fn hashed_pod_name(pod: &Pod) -> String {
    match pod.metadata.name.as_deref() {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => format!(
            "{} (prefix)",
            pod.metadata.generate_name.as_deref().unwrap_or_default()
        ),
    }
}

fn pod_annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a String> {
    pod.metadata.annotations.as_ref()?.get(key)
}

fn sa_annotation<'a>(sa: &'a ServiceAccount, key: &str) -> Option<&'a String> {
    sa.metadata.annotations.as_ref()?.get(key)
}

fn token_expiration(pod: &Pod, sa: &ServiceAccount) -> Result<i64, String> {
    let raw = pod_annotation(pod, TOKEN_EXPIRATION_ANNOTATION)
        .filter(|v| !v.is_empty())
        .or_else(|| sa_annotation(sa, TOKEN_EXPIRATION_ANNOTATION).filter(|v| !v.is_empty()));
    let expiration = match raw {
        Some(value) => value
            .parse::<i64>()
            .map_err(|e| format!("strconv.ParseInt: parsing {value:?}: {e}"))?,
        None => DEFAULT_TOKEN_EXPIRATION,
    };
    if !(MIN_TOKEN_EXPIRATION..=MAX_TOKEN_EXPIRATION).contains(&expiration) {
        return Err(format!(
            "token expiration {expiration} not valid. Expected value to be between 3600 and 86400"
        ));
    }
    Ok(expiration)
}

fn skip_containers(pod: &Pod) -> BTreeSet<String> {
    pod_annotation(pod, SKIP_CONTAINERS_ANNOTATION)
        .filter(|v| !v.is_empty())
        .map(|v| v.split(';').map(|c| c.trim().to_owned()).collect())
        .unwrap_or_default()
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        value_from: None,
    }
}

fn mutate_containers(
    containers: &mut [Container],
    skip: &BTreeSet<String>,
    desired_env: &[EnvVar],
    volume_name: &str,
) {
    for container in containers.iter_mut() {
        if skip.contains(&container.name) {
            continue;
        }
        let existing = container.env.get_or_insert_with(Vec::new);
        for wanted in desired_env {
            let empty = wanted.value.as_deref().unwrap_or_default().is_empty();
            if !empty && !existing.iter().any(|e| e.name == wanted.name) {
                existing.push(wanted.clone());
            }
        }
        let mount = VolumeMount {
            name: volume_name.to_owned(),
            mount_path: VOLUME_MOUNT_PATH.to_owned(),
            read_only: Some(true),
            ..VolumeMount::default()
        };
        let mounts = container.volume_mounts.get_or_insert_with(Vec::new);
        match mounts.iter_mut().find(|m| m.name == volume_name) {
            Some(existing) => *existing = mount,
            None => mounts.push(mount),
        }
    }
}

fn proxy_port(pod: &Pod) -> Result<i32, String> {
    match pod_annotation(pod, PROXY_SIDECAR_PORT_ANNOTATION) {
        None => Ok(DEFAULT_PROXY_PORT),
        Some(value) => value
            .parse::<i32>()
            .map_err(|e| format!("failed to parse proxy sidecar port: {e}")),
    }
}

fn inject_proxy(
    pod_spec: &mut k8s_openapi::api::core::v1::PodSpec,
    port: i32,
    settings: &AzureMutationSettings,
) {
    let init = pod_spec.init_containers.get_or_insert_with(Vec::new);
    if !init.iter().any(|c| c.name == PROXY_INIT_CONTAINER_NAME) {
        init.push(Container {
            name: PROXY_INIT_CONTAINER_NAME.to_owned(),
            image: Some(settings.proxy_init_image.clone()),
            image_pull_policy: Some("IfNotPresent".to_owned()),
            security_context: Some(SecurityContext {
                capabilities: Some(Capabilities {
                    add: Some(vec!["NET_ADMIN".to_owned()]),
                    drop: Some(vec!["ALL".to_owned()]),
                }),
                privileged: Some(true),
                run_as_non_root: Some(false),
                run_as_user: Some(0),
                ..SecurityContext::default()
            }),
            env: Some(vec![env("PROXY_PORT", &port.to_string())]),
            ..Container::default()
        });
    }
    if !init.iter().any(|c| c.name == PROXY_SIDECAR_CONTAINER_NAME) {
        // Native sidecar (an init container that keeps running): Kubernetes ≥ 1.32.
        let sidecar = Container {
            name: PROXY_SIDECAR_CONTAINER_NAME.to_owned(),
            image: Some(settings.proxy_image.clone()),
            image_pull_policy: Some("IfNotPresent".to_owned()),
            args: Some(vec![
                format!("--proxy-port={port}"),
                "--log-level=info".to_owned(),
            ]),
            ports: Some(vec![ContainerPort {
                container_port: port,
                ..ContainerPort::default()
            }]),
            lifecycle: Some(Lifecycle {
                post_start: Some(LifecycleHandler {
                    exec: Some(ExecAction {
                        command: Some(vec![
                            "/proxy".to_owned(),
                            format!("--proxy-port={port}"),
                            "--probe".to_owned(),
                            "--log-level=info".to_owned(),
                        ]),
                    }),
                    ..LifecycleHandler::default()
                }),
                ..Lifecycle::default()
            }),
            security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                capabilities: Some(Capabilities {
                    add: None,
                    drop: Some(vec!["ALL".to_owned()]),
                }),
                privileged: Some(false),
                read_only_root_filesystem: Some(true),
                run_as_non_root: Some(true),
                ..SecurityContext::default()
            }),
            restart_policy: Some("Always".to_owned()),
            ..Container::default()
        };
        init.insert(0, sidecar);
    }
}

/// What upstream does to `pod` admitted with ServiceAccount `sa`. `Err` is the message of
/// upstream's HTTP 400 admission error (the pod is then refused: `failurePolicy: Fail`).
pub fn azure_mutation(
    pod: &Pod,
    sa: &ServiceAccount,
    settings: &AzureMutationSettings,
) -> Result<AzureMutation, String> {
    let mut spec = pod.spec.clone().unwrap_or_default();
    if pod_annotation(pod, INJECT_PROXY_SIDECAR_ANNOTATION).is_some() {
        if spec.host_network == Some(true) {
            return Err("hostNetwork is set to true, cannot inject proxy sidecar".to_owned());
        }
        inject_proxy(&mut spec, proxy_port(pod)?, settings);
    }
    let expiration_seconds = token_expiration(pod, sa)?;
    let client_id = sa_annotation(sa, CLIENT_ID_ANNOTATION).cloned();
    let tenant_id = sa_annotation(sa, TENANT_ID_ANNOTATION)
        .cloned()
        .unwrap_or_else(|| settings.tenant_id.clone());
    let skip = skip_containers(pod);
    let volume_name = volume_name(&hashed_pod_name(pod));
    let desired_env = [
        env(ENV_CLIENT_ID, client_id.as_deref().unwrap_or_default()),
        env(ENV_TENANT_ID, &tenant_id),
        env(ENV_FEDERATED_TOKEN_FILE, FEDERATED_TOKEN_FILE),
        env(ENV_AUTHORITY_HOST, &settings.authority_host),
    ];
    if let Some(init) = spec.init_containers.as_mut() {
        mutate_containers(init, &skip, &desired_env, &volume_name);
    }
    mutate_containers(&mut spec.containers, &skip, &desired_env, &volume_name);

    let volume = Volume {
        name: volume_name.clone(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(vec![VolumeProjection {
                service_account_token: Some(ServiceAccountTokenProjection {
                    audience: Some(settings.audience.clone()),
                    expiration_seconds: Some(expiration_seconds),
                    path: TOKEN_FILE_PATH.to_owned(),
                }),
                ..VolumeProjection::default()
            }]),
            default_mode: None,
        }),
        ..Volume::default()
    };
    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    match volumes.iter_mut().find(|v| v.name == volume_name) {
        Some(existing) => *existing = volume,
        None => volumes.push(volume),
    }

    let original = pod.spec.clone().unwrap_or_default();
    let mut patch = Vec::new();
    let mut replace = |field: &str, before: Value, after: Value| {
        if before != after && !after.is_null() {
            patch.push(PatchOperation::add(format!("/spec/{field}"), after));
        }
    };
    replace(
        "initContainers",
        to_json(&original.init_containers),
        to_json(&spec.init_containers),
    );
    replace(
        "containers",
        to_json(&original.containers),
        to_json(&spec.containers),
    );
    replace(
        "volumes",
        to_json(&original.volumes),
        to_json(&spec.volumes),
    );
    Ok(AzureMutation {
        patch,
        volume_name,
        client_id,
        tenant_id,
        expiration_seconds,
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

#[cfg(test)]
#[path = "azure_mutation_tests.rs"]
mod tests;
