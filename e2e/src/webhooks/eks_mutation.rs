//! The pod mutation of amazon-eks-pod-identity-webhook (`pkg/handler/handler.go`,
//! `pkg/cache/cache.go`), as a pure function of the pod, its ServiceAccount and the
//! webhook's flags.
//!
//! Upstream behaviour kept on purpose, quirks included:
//! - the patch always re-adds the whole `/spec/containers` (and `/spec/initContainers` when
//!   the pod has any) list, even when nothing in it changed;
//! - the token volume is prepended (`/spec/volumes/0`), or `/spec/volumes` is added when the
//!   pod has no volume list at all;
//! - a container that already sets `AWS_ROLE_ARN` or `AWS_WEB_IDENTITY_TOKEN_FILE` gets
//!   neither; it still gets the mount, unless it *also* sets a region variable and
//!   `AWS_STS_REGIONAL_ENDPOINTS`, in which case upstream leaves it entirely alone;
//! - `AWS_DEFAULT_REGION` and `AWS_REGION` are both skipped when either is set;
//! - token expirations under 600 s are raised to 600; unparsable ones are ignored;
//! - an invalid role ARN only warns: the pod is still mutated;
//! - a pod whose ServiceAccount is unknown, or carries no (or an empty) role ARN, is not
//!   mutated; nor is a pod without `spec.serviceAccountName`: upstream looks up the name `""`
//!   (in a cluster the ServiceAccount admission plugin fills the name in first);
//! - an empty `audience` annotation leaves the projection without `audience` (Go's
//!   `omitempty`), so the API server's default audience applies;
//! - the containers sent back are Go-encoded: zero-valued `omitempty` fields such as a
//!   mount's `readOnly: false` are dropped ([`super::go_omitempty`]);
//! - an EKS Pod Identity association (the webhook's container-credentials identities) wins
//!   over IRSA, and the default 86400 s expiration is then jittered into [79200, 86400].

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::LazyLock;

use k8s_openapi::api::core::v1::{
    Container, EnvVar, Pod, ProjectedVolumeSource, ServiceAccount, ServiceAccountTokenProjection,
    Volume, VolumeMount, VolumeProjection,
};
use regex::Regex;
use serde_json::{Value, json};

use super::admission::PatchOperation;
use super::go_omitempty::containers_as_go_encodes;
use super::go_strconv;

/// ServiceAccount annotation naming the role to assume.
pub const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
/// ServiceAccount annotation overriding the token audience.
pub const AUDIENCE_ANNOTATION: &str = "eks.amazonaws.com/audience";
/// ServiceAccount annotation (`"true"`/`"false"`) for `AWS_STS_REGIONAL_ENDPOINTS=regional`.
pub const STS_REGIONAL_ENDPOINTS_ANNOTATION: &str = "eks.amazonaws.com/sts-regional-endpoints";
/// ServiceAccount or pod annotation: token lifetime in seconds (the pod's wins).
pub const TOKEN_EXPIRATION_ANNOTATION: &str = "eks.amazonaws.com/token-expiration";
/// Pod annotation: CSV of container names (init or not) to leave alone.
pub const SKIP_CONTAINERS_ANNOTATION: &str = "eks.amazonaws.com/skip-containers";
/// Pod label whose presence keeps the apiserver from calling the webhook at all
/// (the configuration's `objectSelector`; [`mutation_patch`] does not look at it).
pub const SKIP_POD_LABEL: &str = "eks.amazonaws.com/skip-pod-identity-webhook";
/// Pod label the webhook adds when it injects EKS Pod Identity.
pub const POD_IDENTITY_LABEL: &str = "eks.amazonaws.com/pod-identity";

/// `--token-audience` default.
pub const DEFAULT_AUDIENCE: &str = "sts.amazonaws.com";
/// `--token-expiration` default (`pkg.DefaultTokenExpiration`).
pub const DEFAULT_TOKEN_EXPIRATION: i64 = 86_400;
/// Lower bound of the Pod Identity jitter applied to the default expiration.
pub const DEFAULT_MIN_TOKEN_EXPIRATION: i64 = 79_200;
/// Shortest token the apiserver issues; shorter requests are raised to it.
pub const MIN_TOKEN_EXPIRATION: i64 = 600;

/// IRSA volume name, mount directory and token file name.
pub const IRSA_VOLUME_NAME: &str = "aws-iam-token";
pub const IRSA_MOUNT_PATH: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
pub const IRSA_TOKEN_PATH: &str = "token";

/// EKS Pod Identity (container credentials) audience, volume, mount, token file and agent URI.
pub const POD_IDENTITY_AUDIENCE: &str = "pods.eks.amazonaws.com";
pub const POD_IDENTITY_VOLUME_NAME: &str = "eks-pod-identity-token";
pub const POD_IDENTITY_MOUNT_PATH: &str = "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount";
pub const POD_IDENTITY_TOKEN_PATH: &str = "eks-pod-identity-token";
pub const POD_IDENTITY_FULL_URI: &str = "http://169.254.170.23/v1/credentials";

const ENV_ROLE_ARN: &str = "AWS_ROLE_ARN";
const ENV_WEB_IDENTITY_TOKEN_FILE: &str = "AWS_WEB_IDENTITY_TOKEN_FILE";
const ENV_CONTAINER_CREDENTIALS_FULL_URI: &str = "AWS_CONTAINER_CREDENTIALS_FULL_URI";
const ENV_CONTAINER_AUTHORIZATION_TOKEN_FILE: &str = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE";
const ENV_REGION: &str = "AWS_REGION";
const ENV_DEFAULT_REGION: &str = "AWS_DEFAULT_REGION";
const ENV_STS_REGIONAL_ENDPOINTS: &str = "AWS_STS_REGIONAL_ENDPOINTS";

/// The pattern upstream warns about (Go's `\w` and `\d` are ASCII-only).
static ROLE_ARN_PATTERN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^arn:aws[a-z0-9-]*:iam::[0-9]{12}:role/[0-9A-Za-z_\-/.@+=,]+$")
        .unwrap_or_else(|e| unreachable!("constant regex: {e}"))
});

/// How the Pod Identity path picks a lifetime when the default one would apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jitter {
    /// Uniform in [`DEFAULT_MIN_TOKEN_EXPIRATION`, `DEFAULT_TOKEN_EXPIRATION`], as upstream.
    Random,
    /// Always this value (tests).
    Fixed(i64),
}

/// The webhook's command-line configuration that shapes a mutation.
#[derive(Clone, Debug)]
pub struct MutationSettings {
    /// `--aws-default-region`: injects `AWS_DEFAULT_REGION` and `AWS_REGION` when set.
    pub region: Option<String>,
    /// `--sts-regional-endpoint`: default of the `sts-regional-endpoints` annotation.
    pub regional_sts_default: bool,
    /// `--token-audience`.
    pub default_audience: String,
    /// `--token-expiration`.
    pub default_token_expiration: i64,
    /// EKS Pod Identity associations as `(namespace, service account)`: the identities of the
    /// webhook's container-credentials config file, which EKS fills from its associations.
    pub pod_identity_associations: BTreeSet<(String, String)>,
    pub pod_identity_jitter: Jitter,
}

impl Default for MutationSettings {
    fn default() -> Self {
        Self {
            region: None,
            regional_sts_default: false,
            default_audience: DEFAULT_AUDIENCE.to_owned(),
            default_token_expiration: DEFAULT_TOKEN_EXPIRATION,
            pod_identity_associations: BTreeSet::new(),
            pod_identity_jitter: Jitter::Random,
        }
    }
}

/// Which credential method a mutation injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// IRSA: `AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`.
    WebIdentity,
    /// EKS Pod Identity: `AWS_CONTAINER_CREDENTIALS_FULL_URI` + token file.
    ContainerCredentials,
}

/// What the webhook answers for one pod.
#[derive(Clone, Debug, PartialEq)]
pub struct Mutation {
    /// `None`: allowed without a patch.
    pub method: Option<Method>,
    /// The JSON Patch (empty when `method` is `None`).
    pub patch: Vec<PatchOperation>,
    /// Whether the patch adds anything (upstream sends it either way).
    pub changed: bool,
    /// Why the pod was or was not mutated, for the request log.
    pub reason: String,
    /// Upstream log warnings, e.g. an invalid role ARN.
    pub warnings: Vec<String>,
}

impl Mutation {
    fn none(reason: impl Into<String>) -> Self {
        Self {
            method: None,
            patch: Vec::new(),
            changed: false,
            reason: reason.into(),
            warnings: Vec::new(),
        }
    }
}

/// What the upstream ServiceAccount cache stores for one ServiceAccount.
struct SaEntry {
    role_arn: String,
    audience: String,
    regional_sts: bool,
    token_expiration: i64,
    warnings: Vec<String>,
}

fn sa_entry(sa: &ServiceAccount, settings: &MutationSettings) -> SaEntry {
    let annotations = sa.metadata.annotations.as_ref();
    let get = |key: &str| annotations.and_then(|a| a.get(key));
    let mut warnings = Vec::new();
    let role_arn = get(ROLE_ARN_ANNOTATION).cloned().unwrap_or_default();
    if get(ROLE_ARN_ANNOTATION).is_some() && !ROLE_ARN_PATTERN.is_match(&role_arn) {
        warnings.push(format!("arn is invalid: {role_arn}"));
    }
    let audience = get(AUDIENCE_ANNOTATION)
        .cloned()
        .unwrap_or_else(|| settings.default_audience.clone());
    let regional_sts = get(STS_REGIONAL_ENDPOINTS_ANNOTATION)
        .and_then(|v| go_strconv::parse_bool(v))
        .unwrap_or(settings.regional_sts_default);
    let token_expiration = get(TOKEN_EXPIRATION_ANNOTATION)
        .and_then(|v| go_strconv::parse_int(v, 64).ok())
        .map(raise_to_minimum)
        .unwrap_or(settings.default_token_expiration);
    SaEntry {
        role_arn,
        audience,
        regional_sts,
        token_expiration,
        warnings,
    }
}

fn raise_to_minimum(expiration: i64) -> i64 {
    expiration.max(MIN_TOKEN_EXPIRATION)
}

enum Credentials {
    WebIdentity { role_arn: String },
    ContainerCredentials { full_uri: String },
}

struct PatchConfig {
    containers_to_skip: HashSet<String>,
    token_expiration: i64,
    regional_sts: bool,
    audience: String,
    mount_path: &'static str,
    volume_name: &'static str,
    token_path: &'static str,
    credentials: Credentials,
}

/// The webhook's answer for `pod` (its `metadata.namespace` set from the admission request),
/// given its ServiceAccount as read from the API (`None`: not found).
///
/// The opt-out label [`SKIP_POD_LABEL`] is not checked here: upstream relies on the
/// configuration's `objectSelector`, so a labelled pod never reaches the webhook.
pub fn mutation_patch(
    pod: &Pod,
    sa: Option<&ServiceAccount>,
    settings: &MutationSettings,
) -> Mutation {
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let sa_name = service_account_name(pod);
    // Upstream looks up the name `""`, which no ServiceAccount has.
    let sa = sa.filter(|_| !sa_name.is_empty());
    let entry = sa.map(|sa| sa_entry(sa, settings));
    let mut warnings = entry
        .as_ref()
        .map(|e| e.warnings.clone())
        .unwrap_or_default();

    let config = if settings
        .pod_identity_associations
        .contains(&(namespace.clone(), sa_name.clone()))
    {
        // GetCommonConfigurations: the SA's values if cached, else (false, 86400).
        let (regional_sts, sa_expiration) = entry
            .as_ref()
            .map(|e| (e.regional_sts, e.token_expiration))
            .unwrap_or((false, DEFAULT_TOKEN_EXPIRATION));
        let (token_expiration, containers_to_skip) = parse_pod_annotations(pod, sa_expiration);
        let token_expiration = if token_expiration == DEFAULT_TOKEN_EXPIRATION {
            jittered_expiration(settings.pod_identity_jitter)
        } else {
            token_expiration
        };
        PatchConfig {
            containers_to_skip,
            token_expiration,
            regional_sts,
            audience: POD_IDENTITY_AUDIENCE.to_owned(),
            mount_path: POD_IDENTITY_MOUNT_PATH,
            volume_name: POD_IDENTITY_VOLUME_NAME,
            token_path: POD_IDENTITY_TOKEN_PATH,
            credentials: Credentials::ContainerCredentials {
                full_uri: POD_IDENTITY_FULL_URI.to_owned(),
            },
        }
    } else {
        let Some(entry) = entry else {
            return Mutation::none(format!(
                "ServiceAccount {namespace}/{sa_name} not found: not mutated"
            ));
        };
        if entry.role_arn.is_empty() {
            let mut none = Mutation::none(format!(
                "ServiceAccount {namespace}/{sa_name} has no {ROLE_ARN_ANNOTATION}: not mutated"
            ));
            none.warnings = warnings;
            return none;
        }
        let (token_expiration, containers_to_skip) =
            parse_pod_annotations(pod, entry.token_expiration);
        PatchConfig {
            containers_to_skip,
            token_expiration,
            regional_sts: entry.regional_sts,
            audience: entry.audience,
            mount_path: IRSA_MOUNT_PATH,
            volume_name: IRSA_VOLUME_NAME,
            token_path: IRSA_TOKEN_PATH,
            credentials: Credentials::WebIdentity {
                role_arn: entry.role_arn,
            },
        }
    };

    let method = match config.credentials {
        Credentials::WebIdentity { .. } => Method::WebIdentity,
        Credentials::ContainerCredentials { .. } => Method::ContainerCredentials,
    };
    let (patch, changed) = pod_spec_patch(pod, &config, settings.region.as_deref());
    let what = match method {
        Method::WebIdentity => "IRSA",
        Method::ContainerCredentials => "EKS Pod Identity",
    };
    let reason = if changed {
        format!("{what} injected for ServiceAccount {namespace}/{sa_name}")
    } else {
        format!(
            "{what}: required volume mounts and env variables were already present \
             (ServiceAccount {namespace}/{sa_name})"
        )
    };
    if !config.containers_to_skip.is_empty() {
        let mut skipped: Vec<&String> = config.containers_to_skip.iter().collect();
        skipped.sort();
        warnings.push(format!("containers skipped by annotation: {skipped:?}"));
    }
    Mutation {
        method: Some(method),
        patch,
        changed,
        reason,
        warnings,
    }
}

/// `spec.serviceAccountName` as upstream reads it: `""` when unset. No `default` fallback:
/// upstream has none (in a cluster the ServiceAccount admission plugin has filled the name
/// in by the time webhooks run; a review sent directly can lack it).
pub fn service_account_name(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or_default()
}

fn pod_annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a String> {
    pod.metadata.annotations.as_ref().and_then(|a| a.get(key))
}

fn parse_pod_annotations(pod: &Pod, sa_expiration: i64) -> (i64, HashSet<String>) {
    let expiration = pod_annotation(pod, TOKEN_EXPIRATION_ANNOTATION)
        .and_then(|v| go_strconv::parse_int(v, 64).ok())
        .map(raise_to_minimum)
        .unwrap_or(sa_expiration);
    let skip = pod_annotation(pod, SKIP_CONTAINERS_ANNOTATION)
        .and_then(|v| first_csv_record(v))
        .map(|names| names.into_iter().collect())
        .unwrap_or_default();
    (expiration, skip)
}

fn jittered_expiration(jitter: Jitter) -> i64 {
    match jitter {
        Jitter::Fixed(value) => value,
        Jitter::Random => {
            use std::hash::{BuildHasher, Hasher};
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(0);
            let span = (DEFAULT_TOKEN_EXPIRATION - DEFAULT_MIN_TOKEN_EXPIRATION + 1) as u64;
            DEFAULT_MIN_TOKEN_EXPIRATION + (hasher.finish() % span) as i64
        }
    }
}

/// The first record of `value` read like Go's `encoding/csv` with default settings
/// (`,` separator, RFC 4180 quotes, no trimming, empty lines skipped); `None` on a parse
/// error or no record, which upstream treats as "skip no container".
fn first_csv_record(value: &str) -> Option<Vec<String>> {
    let text = value.replace("\r\n", "\n");
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() && chars[i] == '\n' {
        i += 1;
    }
    if i == chars.len() {
        return None;
    }
    let mut fields = Vec::new();
    loop {
        let mut field = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => return None, // unterminated quoted field
                    Some('"') => match chars.get(i + 1) {
                        Some('"') => {
                            field.push('"');
                            i += 2;
                        }
                        Some(',') => {
                            i += 2;
                            fields.push(field);
                            break;
                        }
                        None | Some('\n') => {
                            fields.push(field);
                            return Some(fields);
                        }
                        Some(_) => return None, // extraneous quote
                    },
                    Some(c) => {
                        field.push(*c);
                        i += 1;
                    }
                }
            }
        } else {
            loop {
                match chars.get(i) {
                    None | Some('\n') => {
                        fields.push(field);
                        return Some(fields);
                    }
                    Some(',') => {
                        i += 1;
                        fields.push(field);
                        break;
                    }
                    Some('"') => return None, // bare quote
                    Some(c) => {
                        field.push(*c);
                        i += 1;
                    }
                }
            }
        }
    }
}

fn is_windows(pod: &Pod) -> bool {
    let selector = pod.spec.as_ref().and_then(|s| s.node_selector.as_ref());
    let os = |key: &str| selector.and_then(|s| s.get(key)).map(String::as_str);
    os("beta.kubernetes.io/os") == Some("windows") || os("kubernetes.io/os") == Some("windows")
}

fn pod_spec_patch(
    pod: &Pod,
    config: &PatchConfig,
    region: Option<&str>,
) -> (Vec<PatchOperation>, bool) {
    let mut token_file = format!("{}/{}", config.mount_path, config.token_path);
    if is_windows(pod) {
        token_file = format!("C:{}", token_file.replace('/', "\\"));
    }
    let spec = pod.spec.clone().unwrap_or_default();
    let mut changed = false;

    let mut mutate_all = |list: &[Container]| -> Vec<Container> {
        list.iter()
            .cloned()
            .map(|mut container| {
                if !config.containers_to_skip.contains(&container.name)
                    && add_env_to_container(&mut container, &token_file, config, region)
                {
                    changed = true;
                }
                container
            })
            .collect()
    };
    let init_containers = mutate_all(spec.init_containers.as_deref().unwrap_or_default());
    let containers = mutate_all(&spec.containers);

    let mut patch = Vec::new();
    if let Credentials::ContainerCredentials { .. } = config.credentials {
        if pod.metadata.labels.is_none() {
            patch.push(PatchOperation::add(
                "/metadata/labels",
                json!({ POD_IDENTITY_LABEL: "enabled" }),
            ));
        } else {
            patch.push(PatchOperation::add(
                format!("/metadata/labels/{}", POD_IDENTITY_LABEL.replace('/', "~1")),
                json!("enabled"),
            ));
        }
        changed = true;
    }

    let volume_exists = spec
        .volumes
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|v| v.name == config.volume_name);
    if !volume_exists {
        let volume = to_json(&token_volume(config));
        patch.push(match spec.volumes {
            None => PatchOperation::add("/spec/volumes", Value::Array(vec![volume])),
            Some(_) => PatchOperation::add("/spec/volumes/0", volume),
        });
        changed = true;
    }

    patch.push(PatchOperation::add(
        "/spec/containers",
        go_encoded(&containers),
    ));
    if !init_containers.is_empty() {
        patch.push(PatchOperation::add(
            "/spec/initContainers",
            go_encoded(&init_containers),
        ));
    }
    (patch, changed)
}

fn token_volume(config: &PatchConfig) -> Volume {
    Volume {
        name: config.volume_name.to_owned(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(vec![VolumeProjection {
                service_account_token: Some(ServiceAccountTokenProjection {
                    // Go's `omitempty`: an empty audience is absent, not "".
                    audience: Some(config.audience.clone()).filter(|a| !a.is_empty()),
                    expiration_seconds: Some(config.token_expiration),
                    path: config.token_path.to_owned(),
                }),
                ..VolumeProjection::default()
            }]),
            ..ProjectedVolumeSource::default()
        }),
        ..Volume::default()
    }
}

fn go_encoded(containers: &[Container]) -> Value {
    let mut value = to_json(&containers);
    containers_as_go_encodes(&mut value);
    value
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_else(|e| unreachable!("k8s-openapi types serialize: {e}"))
}

fn env(name: &str, value: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        value_from: None,
    }
}

/// Upstream's `addEnvToContainer`: whether the container changed.
fn add_env_to_container(
    container: &mut Container,
    token_file: &str,
    config: &PatchConfig,
    region: Option<&str>,
) -> bool {
    let names: BTreeMap<&str, ()> = container
        .env
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|e| (e.name.as_str(), ()))
        .collect();
    let has = |n: &str| names.contains_key(n);
    let web_identity_defined = has(ENV_ROLE_ARN) || has(ENV_WEB_IDENTITY_TOKEN_FILE);
    let container_credentials_defined =
        has(ENV_CONTAINER_CREDENTIALS_FULL_URI) || has(ENV_CONTAINER_AUTHORIZATION_TOKEN_FILE);
    let region_defined = has(ENV_REGION) || has(ENV_DEFAULT_REGION);
    let regional_sts_defined = has(ENV_STS_REGIONAL_ENDPOINTS);

    let credentials_defined = match config.credentials {
        Credentials::WebIdentity { .. } => web_identity_defined,
        Credentials::ContainerCredentials { .. } => container_credentials_defined,
    };
    if credentials_defined && region_defined && regional_sts_defined {
        return false;
    }

    let mut changed = false;
    let mut added = Vec::new();
    if !regional_sts_defined && config.regional_sts {
        added.push(env(ENV_STS_REGIONAL_ENDPOINTS, "regional"));
    }
    if let Some(region) = region.filter(|r| !r.is_empty() && !region_defined) {
        added.push(env(ENV_DEFAULT_REGION, region));
        added.push(env(ENV_REGION, region));
    }
    match &config.credentials {
        Credentials::ContainerCredentials { full_uri } if !container_credentials_defined => {
            added.push(env(ENV_CONTAINER_CREDENTIALS_FULL_URI, full_uri));
            added.push(env(ENV_CONTAINER_AUTHORIZATION_TOKEN_FILE, token_file));
        }
        Credentials::WebIdentity { role_arn } if !web_identity_defined => {
            added.push(env(ENV_ROLE_ARN, role_arn));
            added.push(env(ENV_WEB_IDENTITY_TOKEN_FILE, token_file));
        }
        _ => {}
    }
    if !added.is_empty() {
        container.env.get_or_insert_with(Vec::new).extend(added);
        changed = true;
    }

    let mounted = container
        .volume_mounts
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|m| m.name == config.volume_name);
    if !mounted {
        container
            .volume_mounts
            .get_or_insert_with(Vec::new)
            .push(VolumeMount {
                name: config.volume_name.to_owned(),
                read_only: Some(true),
                mount_path: config.mount_path.to_owned(),
                ..VolumeMount::default()
            });
        changed = true;
    }
    changed
}

#[cfg(test)]
#[path = "eks_mutation_tests.rs"]
mod tests;
