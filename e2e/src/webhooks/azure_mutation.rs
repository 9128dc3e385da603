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
//! - the proxy sidecar (`inject-proxy-sidecar` annotation present) appends the
//!   `azwi-proxy-init` init container and puts `azwi-proxy` first: in `initContainers` as a
//!   native sidecar (`restartPolicy: Always`) when the API server is ≥ 1.32.0 (semver, so a
//!   1.32 pre-release is older), else first in `containers`; its `--log-level=` is the
//!   webhook's own (empty when the webhook runs without `--log-level`); a port annotation
//!   that is not an int32 and a hostNetwork pod are refused. Its images are not available
//!   locally, so such pods are admitted as upstream would admit them but cannot start here;
//! - the rejection messages of unparsable numbers are Go's (`strconv.ParseInt: parsing
//!   "1h": invalid syntax`);
//! - the response is a diff of the pod before and after, and the pod's namespace was set
//!   from the request first: a pod without `metadata.namespace` (a controller's) gets
//!   `/metadata/namespace` added;
//! - `--custom-token-endpoint-annotation-suffix`/`-audience` ([`CustomTokenEndpoint`]): a pod
//!   annotated `azure.workload.identity/use-<suffix>: "true"` (any case) gets the custom
//!   audience, `AZURE_KUBERNETES_TOKEN_PROXY`, `AZURE_KUBERNETES_SNI_NAME`,
//!   `AZURE_KUBERNETES_CA_FILE` (and `AZURE_KUBERNETES_CA_DATA`), and the CA as a configMap or
//!   ClusterTrustBundle projection in the token volume at `ca-cert/ca.crt`.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{
    Capabilities, ClusterTrustBundleProjection, ConfigMapProjection, Container, ContainerPort,
    EnvVar, ExecAction, KeyToPath, Lifecycle, LifecycleHandler, Pod, ProjectedVolumeSource,
    SecurityContext, ServiceAccount, ServiceAccountTokenProjection, Volume, VolumeMount,
    VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::admission::PatchOperation;
use super::go_strconv;

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

pub const ENV_KUBERNETES_TOKEN_PROXY: &str = "AZURE_KUBERNETES_TOKEN_PROXY";
pub const ENV_KUBERNETES_SNI_NAME: &str = "AZURE_KUBERNETES_SNI_NAME";
pub const ENV_KUBERNETES_CA_FILE: &str = "AZURE_KUBERNETES_CA_FILE";
pub const ENV_KUBERNETES_CA_DATA: &str = "AZURE_KUBERNETES_CA_DATA";
/// Where the custom endpoint's CA lands in the token volume, and its key in the ConfigMap.
pub const CA_FILE_PATH: &str = "ca-cert/ca.crt";
pub const CA_CONFIG_MAP_KEY: &str = "ca.crt";
/// `AZURE_KUBERNETES_CA_FILE` as injected.
pub const KUBERNETES_CA_FILE: &str = "/var/run/secrets/azure/wi/ca-cert/ca.crt";
/// Prefix of the pod annotation that opts a pod into the custom token endpoint.
pub const CUSTOM_TOKEN_ENDPOINT_ANNOTATION_PREFIX: &str = "azure.workload.identity/use-";

/// Where the proxy sidecar goes: upstream decides once, at start, from the API server's
/// version (`SidecarContainers` is safe from 1.32 on, given the kubelet skew policy).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxySidecarPlacement {
    /// `initContainers[0]` with `restartPolicy: Always` (API server ≥ 1.32.0).
    NativeSidecar,
    /// `containers[0]` (older API servers).
    FirstContainer,
}

/// An API server version upstream could not parse (it then refuses to start).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("failed to check kubernetes version: could not parse {0:?} as a semantic version")]
pub struct ServerVersionError(pub String);

impl ProxySidecarPlacement {
    /// From the API server's `gitVersion` (`v1.34.4`, `v1.31.0-rc.1`, `v1.33.2+k3s1`), as
    /// `utilversion.ParseSemantic(v).AtLeast(1.32.0)`: a pre-release sorts before its release.
    pub fn for_server_version(git_version: &str) -> Result<Self, ServerVersionError> {
        let error = || ServerVersionError(git_version.to_owned());
        let version = git_version.strip_prefix('v').unwrap_or(git_version);
        let version = version.split_once('+').map_or(version, |(v, _build)| v);
        let (core, pre_release) = match version.split_once('-') {
            Some((core, pre)) if !pre.is_empty() => (core, true),
            Some(_) => return Err(error()),
            None => (version, false),
        };
        let numbers: Vec<u64> = core
            .split('.')
            .map(|n| {
                (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| n.parse().ok())
                    .flatten()
            })
            .collect::<Option<_>>()
            .ok_or_else(error)?;
        let [major, minor, patch] = numbers[..] else {
            return Err(error());
        };
        let at_least = match (major, minor, patch).cmp(&(1, 32, 0)) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Equal => !pre_release,
            std::cmp::Ordering::Less => false,
        };
        Ok(if at_least {
            Self::NativeSidecar
        } else {
            Self::FirstContainer
        })
    }
}

/// The CA of a custom token endpoint, from the webhook's environment (at most one is set).
#[derive(Clone, Debug, PartialEq)]
pub enum CustomCa {
    /// `AZURE_KUBERNETES_CA_DATA`: passed to the pod as `AZURE_KUBERNETES_CA_DATA`.
    Data(String),
    /// `AZURE_KUBERNETES_CA_CONFIGMAP_NAME`: key `ca.crt` projected to `ca-cert/ca.crt`.
    ConfigMap(String),
    /// `AZURE_KUBERNETES_CA_CTB_SIGNER_NAME` (+ `_LABEL_SELECTOR`): a ClusterTrustBundle
    /// projection to `ca-cert/ca.crt`.
    ClusterTrustBundle {
        signer_name: String,
        label_selector: Option<LabelSelector>,
    },
}

/// Upstream's `--custom-token-endpoint-annotation-suffix` and `--custom-token-endpoint-audience`
/// with the environment they read (`AZURE_KUBERNETES_TOKEN_PROXY`, `…_SNI_NAME`, the CA).
#[derive(Clone, Debug, PartialEq)]
pub struct CustomTokenEndpoint {
    /// The pod annotation `azure.workload.identity/use-<suffix>`.
    pub annotation: String,
    pub audience: String,
    pub token_proxy: String,
    pub sni_name: String,
    pub ca: Option<CustomCa>,
}

/// Why upstream refuses to start with these custom token endpoint flags.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CustomTokenEndpointError {
    #[error("custom token endpoint annotation suffix cannot be empty when audience is set")]
    EmptySuffix,
    #[error("custom token endpoint audience cannot be empty when annotation suffix is set")]
    EmptyAudience,
    #[error("custom token endpoint audience cannot be equal to default audience {0:?}")]
    DefaultAudience(String),
    #[error("custom token endpoint annotation key {0:?} is not valid")]
    InvalidAnnotationKey(String),
}

impl CustomTokenEndpoint {
    /// Validates the two flags as upstream's `NewPodMutator` does; `Ok(None)` when both are
    /// empty (the feature is off).
    pub fn from_flags(
        annotation_suffix: &str,
        audience: &str,
        token_proxy: &str,
        sni_name: &str,
        ca: Option<CustomCa>,
    ) -> Result<Option<Self>, CustomTokenEndpointError> {
        match (annotation_suffix.is_empty(), audience.is_empty()) {
            (true, true) => return Ok(None),
            (true, false) => return Err(CustomTokenEndpointError::EmptySuffix),
            (false, true) => return Err(CustomTokenEndpointError::EmptyAudience),
            (false, false) => {}
        }
        if audience.eq_ignore_ascii_case(DEFAULT_AUDIENCE) {
            return Err(CustomTokenEndpointError::DefaultAudience(
                DEFAULT_AUDIENCE.to_owned(),
            ));
        }
        let annotation = format!("{CUSTOM_TOKEN_ENDPOINT_ANNOTATION_PREFIX}{annotation_suffix}");
        if !is_qualified_name(&annotation.to_lowercase()) {
            return Err(CustomTokenEndpointError::InvalidAnnotationKey(annotation));
        }
        Ok(Some(Self {
            annotation,
            audience: audience.to_owned(),
            token_proxy: token_proxy.to_owned(),
            sni_name: sni_name.to_owned(),
            ca,
        }))
    }
}

/// Kubernetes' `IsQualifiedName` for a key with the fixed prefix: the name part is at most
/// 63 characters of `[a-z0-9A-Z._-]`, starting and ending alphanumeric.
fn is_qualified_name(key: &str) -> bool {
    let name = match key.split('/').collect::<Vec<_>>()[..] {
        [_prefix, name] => name,
        _ => return false,
    };
    let ends_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && ends_ok(name.chars().next())
        && ends_ok(name.chars().last())
}

/// The level names of the webhook's `--log-level` (monis.app/mlog), passed on to the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WebhookLogLevel {
    /// Run without `--log-level`: the proxy gets `--log-level=`.
    #[default]
    Unset,
    Info,
    Debug,
    Trace,
    All,
}

impl WebhookLogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unset => "",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
            Self::All => "all",
        }
    }
}

/// The webhook's configuration (`AZURE_TENANT_ID`, `AZURE_ENVIRONMENT` → authority host, its
/// flags and the API server version it saw at start).
#[derive(Clone, Debug)]
pub struct AzureMutationSettings {
    pub tenant_id: String,
    pub authority_host: String,
    pub audience: String,
    pub proxy_image: String,
    pub proxy_init_image: String,
    /// From the API server version; the default suits the harness's v1.34 clusters.
    pub proxy_placement: ProxySidecarPlacement,
    /// `--log-level` (upstream's deployment leaves it unset).
    pub log_level: WebhookLogLevel,
    /// `--custom-token-endpoint-*`; `None`: off (upstream's default).
    pub custom_token_endpoint: Option<CustomTokenEndpoint>,
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
            proxy_placement: ProxySidecarPlacement::NativeSidecar,
            log_level: WebhookLogLevel::Unset,
            custom_token_endpoint: None,
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
        Some(value) => go_strconv::parse_int(value, 64).map_err(|e| e.to_string())?,
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
        Some(value) => go_strconv::parse_int(value, 32)
            .map(|port| port as i32) // within int32: ParseInt checked the bit size
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
    let (list, restart_policy) = match settings.proxy_placement {
        ProxySidecarPlacement::NativeSidecar => (init, Some("Always".to_owned())),
        ProxySidecarPlacement::FirstContainer => (&mut pod_spec.containers, None),
    };
    if list.iter().any(|c| c.name == PROXY_SIDECAR_CONTAINER_NAME) {
        return;
    }
    // The proxy logs at the webhook's own level (`--log-level=` when it has none).
    let log_level = format!("--log-level={}", settings.log_level.as_str());
    let sidecar = Container {
        name: PROXY_SIDECAR_CONTAINER_NAME.to_owned(),
        image: Some(settings.proxy_image.clone()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        args: Some(vec![format!("--proxy-port={port}"), log_level.clone()]),
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
                        log_level,
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
        restart_policy,
        ..Container::default()
    };
    list.insert(0, sidecar);
}

/// Whether `pod` opted into the custom token endpoint (annotation value `true`, any case).
fn custom_endpoint_for<'a>(
    pod: &Pod,
    settings: &'a AzureMutationSettings,
) -> Option<&'a CustomTokenEndpoint> {
    let custom = settings.custom_token_endpoint.as_ref()?;
    pod_annotation(pod, &custom.annotation)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        .then_some(custom)
}

fn token_volume(
    volume_name: &str,
    expiration_seconds: i64,
    settings: &AzureMutationSettings,
    custom: Option<&CustomTokenEndpoint>,
) -> Volume {
    let audience = custom.map_or(&settings.audience, |c| &c.audience);
    let mut sources = vec![VolumeProjection {
        service_account_token: Some(ServiceAccountTokenProjection {
            audience: Some(audience.clone()),
            expiration_seconds: Some(expiration_seconds),
            path: TOKEN_FILE_PATH.to_owned(),
        }),
        ..VolumeProjection::default()
    }];
    match custom.and_then(|c| c.ca.as_ref()) {
        Some(CustomCa::ConfigMap(name)) => sources.push(VolumeProjection {
            config_map: Some(ConfigMapProjection {
                name: name.clone(),
                items: Some(vec![KeyToPath {
                    key: CA_CONFIG_MAP_KEY.to_owned(),
                    path: CA_FILE_PATH.to_owned(),
                    mode: None,
                }]),
                optional: Some(false),
            }),
            ..VolumeProjection::default()
        }),
        Some(CustomCa::ClusterTrustBundle {
            signer_name,
            label_selector,
        }) => sources.push(VolumeProjection {
            cluster_trust_bundle: Some(ClusterTrustBundleProjection {
                signer_name: Some(signer_name.clone()),
                label_selector: label_selector.clone(),
                path: CA_FILE_PATH.to_owned(),
                optional: Some(false),
                name: None,
            }),
            ..VolumeProjection::default()
        }),
        Some(CustomCa::Data(_)) | None => {}
    }
    Volume {
        name: volume_name.to_owned(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(sources),
            default_mode: None,
        }),
        ..Volume::default()
    }
}

/// What upstream does to `pod` (as admitted: its namespace may be missing) created in
/// `namespace` with ServiceAccount `sa`. `Err` is the message of upstream's HTTP 400
/// admission error (the pod is then refused: `failurePolicy: Fail`).
pub fn azure_mutation(
    pod: &Pod,
    namespace: &str,
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
    let custom = custom_endpoint_for(pod, settings);
    let volume_name = volume_name(&hashed_pod_name(pod));
    let mut desired_env = vec![
        env(ENV_CLIENT_ID, client_id.as_deref().unwrap_or_default()),
        env(ENV_TENANT_ID, &tenant_id),
        env(ENV_FEDERATED_TOKEN_FILE, FEDERATED_TOKEN_FILE),
        env(ENV_AUTHORITY_HOST, &settings.authority_host),
    ];
    if let Some(custom) = custom {
        let ca_data = match &custom.ca {
            Some(CustomCa::Data(data)) => data.as_str(),
            _ => "",
        };
        desired_env.extend([
            env(ENV_KUBERNETES_TOKEN_PROXY, &custom.token_proxy),
            env(ENV_KUBERNETES_SNI_NAME, &custom.sni_name),
            env(ENV_KUBERNETES_CA_FILE, KUBERNETES_CA_FILE),
            env(ENV_KUBERNETES_CA_DATA, ca_data),
        ]);
    }
    if let Some(init) = spec.init_containers.as_mut() {
        mutate_containers(init, &skip, &desired_env, &volume_name);
    }
    mutate_containers(&mut spec.containers, &skip, &desired_env, &volume_name);

    let volume = token_volume(&volume_name, expiration_seconds, settings, custom);
    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    match volumes.iter_mut().find(|v| v.name == volume_name) {
        Some(existing) => *existing = volume,
        None => volumes.push(volume),
    }

    let mut patch = Vec::new();
    // Upstream sets the namespace from the request before it diffs: a controller's pod
    // (created without one) gets it added.
    if pod.metadata.namespace.as_deref() != Some(namespace) {
        patch.push(PatchOperation::add(
            "/metadata/namespace",
            Value::String(namespace.to_owned()),
        ));
    }
    let original = pod.spec.clone().unwrap_or_default();
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
