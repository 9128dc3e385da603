//! Static GKE Workload Identity checks: what the pod spec, its KSA and (for live pods) its node
//! say, before any exec or exchange.

use k8s_openapi::api::core::v1::{Container, PodSpec};
use regex::Regex;

use super::mounted_file::{self, Backing};
use crate::cloud::gcp as a;
use crate::exchange::gcp_credentials::{self, CredentialsFile};
use crate::model::Check;
use crate::subject::{Origin, PodSubject, env_value};

/// `spec` is the pod as it runs (GKE has no mutating webhook for Workload Identity).
pub fn static_checks(pod: &PodSubject, spec: &PodSpec) -> Vec<Check> {
    let target = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .find(|c| c.name == pod.container);
    let credentials = target.and_then(|c| env_value(c, a::ENV_CREDENTIALS));
    let mut checks = Vec::new();
    if let (Some(c), Some(path)) = (target, credentials) {
        checks.extend(credentials_file(pod, spec, c, path));
    }
    // GKE's metadata server path: unless the pod has only an external_account config.
    if credentials.is_none() || configured_gsa(pod).is_some() {
        checks.push(annotation(pod));
        if let Some(gsa) = configured_gsa(pod) {
            checks.push(gsa_email(gsa));
        }
        checks.push(metadata_server_node(pod, spec));
        checks.push(host_network(pod, spec));
    }
    checks
}

/// The KSA's non-empty GSA annotation.
pub fn configured_gsa(pod: &PodSubject) -> Option<&str> {
    pod.sa_annotation(a::GSA).filter(|g| !g.trim().is_empty())
}

fn ksa(pod: &PodSubject) -> String {
    format!("{}/{}", pod.namespace, pod.service_account_name())
}

pub fn annotate_fix(pod: &PodSubject, gsa: &str) -> String {
    format!(
        "kubectl annotate serviceaccount -n {} {} {}={gsa} and grant {} on the GSA to {}",
        pod.namespace,
        pod.service_account_name(),
        a::GSA,
        a::ROLE_WORKLOAD_IDENTITY_USER,
        a::binding_member(
            project_of(gsa).unwrap_or("PROJECT_ID"),
            &pod.namespace,
            pod.service_account_name()
        )
    )
}

/// The project of a user-managed GSA email (`NAME@PROJECT.iam.gserviceaccount.com`).
pub fn project_of(gsa: &str) -> Option<&str> {
    gsa.split_once('@')?
        .1
        .strip_suffix(".iam.gserviceaccount.com")
        .filter(|p| !p.is_empty() && !p.contains('.'))
}

/// The KSA's keys that look like a misspelt GSA annotation.
fn typo_keys(pod: &PodSubject) -> Vec<(&str, &str)> {
    pod.service_account
        .as_ref()
        .and_then(|sa| sa.metadata.annotations.as_ref())
        .map(|m| {
            m.iter()
                .filter(|(k, _)| a::is_gsa_typo(k))
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect()
        })
        .unwrap_or_default()
}

/// The placeholder principal of direct access, before the metadata server names the project.
pub fn direct_principal_placeholder(pod: &PodSubject) -> String {
    a::direct_principal(
        "PROJECT_NUMBER",
        "PROJECT_ID",
        &pod.namespace,
        pod.service_account_name(),
    )
}

fn annotation(pod: &PodSubject) -> Check {
    const ID: &str = "gcp.wi.annotation";
    let sa = ksa(pod);
    let on_pod = pod.annotation(a::GSA);
    if pod.service_account.is_none() {
        return Check::warn(
            ID,
            format!(
                "ServiceAccount {sa} is not available; judged from the pod alone{}",
                if on_pod.is_some() {
                    format!(" (the pod itself carries {}, which GKE ignores)", a::GSA)
                } else {
                    String::new()
                }
            ),
            "include the ServiceAccount in the input (-f) or allow `get serviceaccounts`",
        );
    }
    if let Some(gsa) = pod.sa_annotation(a::GSA) {
        if gsa.trim().is_empty() {
            return Check::fail(
                ID,
                format!("ServiceAccount {sa} has an empty {} annotation", a::GSA),
                annotate_fix(pod, "NAME@PROJECT_ID.iam.gserviceaccount.com"),
            );
        }
        return Check::pass(ID, format!("ServiceAccount {sa} has {}={gsa}", a::GSA));
    }
    if let Some((key, value)) = typo_keys(pod).first() {
        return Check::fail(
            ID,
            format!(
                "ServiceAccount {sa} is annotated {key}={value}, which GKE ignores (the key is {})",
                a::GSA
            ),
            format!(
                "kubectl annotate serviceaccount -n {} {} {key}- {}={value}",
                pod.namespace,
                pod.service_account_name(),
                a::GSA
            ),
        );
    }
    if let Some(gsa) = on_pod {
        return Check::fail(
            ID,
            format!(
                "{} carries {}={gsa}, but GKE reads it only from the ServiceAccount {sa}, which has none",
                pod.describe(),
                a::GSA
            ),
            format!(
                "move the annotation to the ServiceAccount: {}",
                annotate_fix(pod, gsa)
            ),
        );
    }
    Check::warn(
        ID,
        format!(
            "ServiceAccount {sa} has no {} annotation: the pod acts as the KSA itself (direct principal {}), so only IAM grants to that principal apply",
            a::GSA,
            direct_principal_placeholder(pod)
        ),
        format!(
            "grant roles to that principal, or {}",
            annotate_fix(pod, "NAME@PROJECT_ID.iam.gserviceaccount.com")
        ),
    )
}

fn gsa_email(gsa: &str) -> Check {
    const ID: &str = "gcp.wi.gsa-email";
    let pattern = Regex::new(a::GSA_PATTERN).expect("valid regex");
    if let Some(c) = pattern.captures(gsa) {
        return Check::pass(
            ID,
            format!("{gsa} is a service account of project {}", &c[2]),
        );
    }
    if a::NODE_SA_SUFFIXES.iter().any(|s| gsa.ends_with(s)) {
        return Check::warn(
            ID,
            format!(
                "{gsa} is a default service account (broad project roles, shared by every node and workload)"
            ),
            "create a dedicated GSA for this workload with only the roles it needs",
        );
    }
    Check::fail(
        ID,
        format!(
            "{gsa:?} is not a service account email NAME@PROJECT_ID.iam.gserviceaccount.com; the metadata server cannot mint tokens for it"
        ),
        "annotate the KSA with the GSA's full email, e.g. gke-service-account@my-project.iam.gserviceaccount.com",
    )
}

/// How the pod spec constrains the node label, when it does.
fn selected_label(spec: &PodSpec) -> Option<(bool, &'static str)> {
    if let Some(v) = spec
        .node_selector
        .as_ref()
        .and_then(|s| s.get(a::NODE_LABEL))
    {
        return Some((v == "true", "nodeSelector"));
    }
    let terms = spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?;
    for term in &terms.node_selector_terms {
        for e in term.match_expressions.iter().flatten() {
            if e.key != a::NODE_LABEL {
                continue;
            }
            let has_true = e.values.iter().flatten().any(|v| v == "true");
            let ok = match e.operator.as_str() {
                "In" => has_true,
                "NotIn" => !has_true,
                "Exists" => true,
                _ => false,
            };
            return Some((ok, "required node affinity"));
        }
    }
    None
}

fn metadata_server_node(pod: &PodSubject, spec: &PodSpec) -> Check {
    const ID: &str = "gcp.node.metadata-server";
    let fix = format!(
        "run the pod on a node pool with the GKE metadata server: gcloud container node-pools update POOL --cluster CLUSTER --workload-metadata=GKE_METADATA (nodes get {}=true)",
        a::NODE_LABEL
    );
    if let Some(labels) = &pod.node_labels {
        let node = spec.node_name.as_deref().unwrap_or("?");
        return match labels.get(a::NODE_LABEL).map(String::as_str) {
            Some("true") => Check::pass(
                ID,
                format!(
                    "node {node} runs the GKE metadata server ({}=true)",
                    a::NODE_LABEL
                ),
            ),
            other => Check::fail(
                ID,
                format!(
                    "node {node} has {}: it does not run the GKE metadata server, so the pod gets the node's service account (or none)",
                    other.map_or(format!("no {} label", a::NODE_LABEL), |v| format!(
                        "{}={v}",
                        a::NODE_LABEL
                    ))
                ),
                fix,
            ),
        };
    }
    if pod.origin == Origin::Live {
        return Check::skip(
            ID,
            "the pod's node could not be read (not scheduled yet, or no permission to get nodes)",
        );
    }
    match selected_label(spec) {
        Some((true, how)) => Check::pass(
            ID,
            format!("the pod's {how} requires {}=true", a::NODE_LABEL),
        ),
        Some((false, how)) => Check::fail(
            ID,
            format!(
                "the pod's {how} keeps it off nodes with {}=true: it never reaches the GKE metadata server",
                a::NODE_LABEL
            ),
            format!("select {}=true instead", a::NODE_LABEL),
        ),
        None => Check::skip(
            ID,
            format!(
                "offline: the pod does not select nodes by {}; its node pool decides (workloadMetadataConfig.mode GKE_METADATA)",
                a::NODE_LABEL
            ),
        ),
    }
}

fn host_network(pod: &PodSubject, spec: &PodSpec) -> Check {
    const ID: &str = "gcp.pod.host-network";
    if spec.host_network == Some(true) {
        return Check::fail(
            ID,
            format!(
                "{} uses hostNetwork: true, so its metadata requests bypass the GKE metadata server and it sees the node's identity",
                pod.describe()
            ),
            "remove hostNetwork: true (Workload Identity does not apply to host-network pods)",
        );
    }
    Check::pass(
        ID,
        "the pod has its own network namespace, so the GKE metadata server answers its requests",
    )
}

/// The fix for a downloaded key.
pub const STATIC_KEY_FIX: &str = "delete the key (gcloud iam service-accounts keys delete), drop GOOGLE_APPLICATION_CREDENTIALS and use Workload Identity (KSA annotation) or an external_account config";

fn credentials_file(
    pod: &PodSubject,
    spec: &PodSpec,
    target: &Container,
    path: &str,
) -> Vec<Check> {
    let mut checks = Vec::new();
    if let Some(gsa) = configured_gsa(pod) {
        checks.push(Check::warn(
            "gcp.credentials.precedence",
            format!(
                "container {} sets {}={path}: Google's default credentials read that file before the metadata server, so SDKs do not act as {gsa}",
                target.name,
                a::ENV_CREDENTIALS
            ),
            format!(
                "remove {} from the container to use Workload Identity",
                a::ENV_CREDENTIALS
            ),
        ));
    }
    let Some(mounted) = mounted_file::resolve(spec, target, path) else {
        checks.push(Check::warn(
            "gcp.credentials.file",
            format!(
                "{}={path} lies in no volume mount: the file must be baked into the image",
                a::ENV_CREDENTIALS
            ),
            "mount the credentials configuration from a ConfigMap (external_account) rather than the image",
        ));
        return checks;
    };
    match &mounted.backing {
        Backing::Secret { name, key } => checks.push(Check::warn(
            "gcp.credentials.static-key",
            format!(
                "{}={path} comes from Secret {name} key {key}: most likely a downloaded service-account key, a long-lived secret",
                a::ENV_CREDENTIALS
            ),
            STATIC_KEY_FIX,
        )),
        Backing::ConfigMap { name, key } => {
            match pod.config_maps.get(name).and_then(|d| d.get(key)) {
                Some(text) => checks.extend(judge_file(pod, spec, target, text.as_bytes(), &format!("ConfigMap {name} key {key}"))),
                None => checks.push(Check::skip(
                    "gcp.external-account.config",
                    format!(
                        "{}={path} comes from ConfigMap {name} key {key}, not in the input; it is read by exec at runtime",
                        a::ENV_CREDENTIALS
                    ),
                )),
            }
        }
        _ => checks.push(Check::skip(
            "gcp.external-account.config",
            format!(
                "{}={path} lies in volume {}; it is read by exec at runtime",
                a::ENV_CREDENTIALS,
                mounted.volume
            ),
        )),
    }
    checks
}

/// Judges the content of a credentials file (from `-f` or read by exec).
pub fn judge_file(
    pod: &PodSubject,
    spec: &PodSpec,
    target: &Container,
    bytes: &[u8],
    origin: &str,
) -> Vec<Check> {
    const ID: &str = "gcp.external-account.config";
    match gcp_credentials::parse(bytes) {
        Err(e) => vec![Check::fail(
            ID,
            format!("{origin}: {e}"),
            "regenerate it: gcloud iam workload-identity-pools create-cred-config … --credential-source-file=TOKEN_PATH --output-file=credential-configuration.json",
        )],
        Ok(CredentialsFile::ServiceAccountKey { client_email }) => vec![Check::warn(
            "gcp.credentials.static-key",
            format!(
                "{origin} is a service-account key{}: a long-lived secret that works from anywhere",
                client_email.map_or(String::new(), |e| format!(" for {e}"))
            ),
            STATIC_KEY_FIX,
        )],
        Ok(CredentialsFile::Other { kind }) => vec![Check::fail(
            ID,
            format!(
                "{origin} has type {kind:?}, not external_account: it is not a workload credential"
            ),
            "use an external_account configuration (gcloud iam workload-identity-pools create-cred-config)",
        )],
        Ok(CredentialsFile::ExternalAccount(config)) => {
            let mut checks = vec![Check::pass(
                ID,
                format!(
                    "{origin} is an external_account config: audience {}, token_url {}, {}",
                    config.audience,
                    config.token_url,
                    config.impersonated_email().map_or(
                        "no impersonation (direct principal)".to_string(),
                        |e| format!("impersonating {e}")
                    )
                ),
            )];
            if let Some(file) = config.credential_source.file.as_deref() {
                checks.push(token_source(pod, spec, target, file));
                checks.extend(crate::mechanisms::token_refresh::file_check(
                    spec,
                    target,
                    "credential_source.file",
                    file,
                ));
            }
            checks
        }
    }
}

fn token_source(pod: &PodSubject, spec: &PodSpec, target: &Container, file: &str) -> Check {
    const ID: &str = "gcp.external-account.token-file";
    match mounted_file::resolve(spec, target, file).map(|m| m.backing) {
        Some(Backing::ServiceAccountToken {
            audience,
            expiration_seconds,
        }) => Check::pass(
            ID,
            format!(
                "credential_source.file {file} is a projected token of ServiceAccount {} (audience {}, expires after {}s)",
                ksa(pod),
                audience.as_deref().unwrap_or("the API server's"),
                expiration_seconds.unwrap_or(3600)
            ),
        ),
        Some(other) => Check::warn(
            ID,
            format!(
                "credential_source.file {file} is not a projected ServiceAccount token ({other:?}): nothing rotates it"
            ),
            "mount a projected serviceAccountToken volume (audience = the provider's allowed audience) at that path",
        ),
        None => Check::fail(
            ID,
            format!(
                "credential_source.file {file} lies in no volume mount of container {}",
                target.name
            ),
            "mount a projected serviceAccountToken volume at the path the config names",
        ),
    }
}
