//! The pod being judged: a live pod, a pod dump, or a workload's pod template, with the
//! objects around it that decide its identity (ServiceAccount, node OS, referenced secrets).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, PodSpec, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Origin {
    /// Read from the cluster now: evidence can be collected by exec.
    #[default]
    Live,
    /// A Pod object from a file that was already created (has `metadata.uid` or `status`).
    Dump,
    /// A pod template (Deployment, …): judged as the webhook would mutate it at creation.
    Template,
}

#[derive(Debug, Clone, Default)]
pub struct PodSubject {
    /// `Pod` or the workload kind (`Deployment`, `CronJob`, …).
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub meta: ObjectMeta,
    pub spec: PodSpec,
    pub origin: Origin,
    /// The container the report is about (`-c`, the default-container annotation, or the first).
    pub container: String,
    /// The ServiceAccount, when it could be read or was in the input.
    pub service_account: Option<ServiceAccount>,
    /// For live pods: the owner's pod template, to tell a chart preset from later drift.
    pub owner_template: Option<PodSpec>,
    /// `windows` or `linux` when known (node label, or nodeSelector for templates).
    pub node_os: Option<String>,
    /// Key names (never values) of Secrets the pod references, when they could be read.
    pub secret_keys: BTreeMap<String, Vec<String>>,
    /// Labels of the node a live pod runs on, when the node could be read.
    pub node_labels: Option<BTreeMap<String, String>>,
    /// ConfigMaps given with `-f` (name → data): config files a pod mounts (e.g. a GCP
    /// external_account configuration) can then be read offline. Empty for live pods.
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    /// The ServiceAccount's EKS Pod Identity association: it lives in EKS, not in manifests, so
    /// a template is judged as the webhook will mutate it only once it has been looked up.
    pub eks_association: EksAssociation,
}

/// What is known of a ServiceAccount's EKS Pod Identity association.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum EksAssociation {
    /// Not looked up (no cluster name or no AWS credentials, or a live pod: already mutated).
    #[default]
    NotLookedUp,
    /// The lookup failed (the error, never a credential).
    LookupFailed(String),
    /// EKS answered: this ServiceAccount has no association in the cluster.
    Absent { cluster: String },
    Found {
        cluster: String,
        id: String,
        role_arn: String,
        /// EKS Auth chains from `role_arn` to this role: the pod gets the target's credentials.
        target_role_arn: Option<String>,
    },
}

impl PodSubject {
    pub fn service_account_name(&self) -> &str {
        self.spec
            .service_account_name
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or("default")
    }

    pub fn subject_claim(&self) -> String {
        format!(
            "system:serviceaccount:{}:{}",
            self.namespace,
            self.service_account_name()
        )
    }

    pub fn label(&self, key: &str) -> Option<&str> {
        self.meta.labels.as_ref()?.get(key).map(String::as_str)
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.meta.annotations.as_ref()?.get(key).map(String::as_str)
    }

    pub fn sa_annotation(&self, key: &str) -> Option<&str> {
        self.service_account
            .as_ref()?
            .metadata
            .annotations
            .as_ref()?
            .get(key)
            .map(String::as_str)
    }

    /// Init containers then containers, as the webhooks walk them.
    pub fn all_containers(&self) -> impl Iterator<Item = &Container> {
        self.spec
            .init_containers
            .iter()
            .flatten()
            .chain(self.spec.containers.iter())
    }

    pub fn target(&self) -> Option<&Container> {
        self.all_containers().find(|c| c.name == self.container)
    }

    /// Whether the token is mounted into the pod at all (`automountServiceAccountToken`).
    pub fn automount_token(&self) -> bool {
        self.spec
            .automount_service_account_token
            .or_else(|| {
                self.service_account
                    .as_ref()
                    .and_then(|sa| sa.automount_service_account_token)
            })
            .unwrap_or(true)
    }

    pub fn describe(&self) -> String {
        if self.kind == "Pod" {
            format!("pod {}/{}", self.namespace, self.name)
        } else {
            format!("{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// The container chosen when none is named: kubectl's default-container annotation, else the
/// first container.
pub fn default_container(meta: &ObjectMeta, spec: &PodSpec) -> Option<String> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get("kubectl.kubernetes.io/default-container"))
        .cloned()
        .or_else(|| spec.containers.first().map(|c| c.name.clone()))
}

/// Literal value of an env var in a container's spec (not `valueFrom`).
pub fn env_value<'a>(container: &'a Container, name: &str) -> Option<&'a str> {
    container
        .env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .and_then(|e| e.value.as_deref())
}

pub fn has_env(container: &Container, name: &str) -> bool {
    container.env.iter().flatten().any(|e| e.name == name)
}

/// Names of the Secrets a pod spec's containers read by env (`secretKeyRef`) or `envFrom`,
/// init containers included: the keys of these are listed, never their values.
pub fn referenced_secrets(spec: &PodSpec) -> Vec<String> {
    let mut names: Vec<String> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .flat_map(|c| {
            let from_env = c
                .env
                .iter()
                .flatten()
                .filter_map(|e| e.value_from.as_ref()?.secret_key_ref.as_ref())
                .map(|r| r.name.clone());
            let from_env_from = c
                .env_from
                .iter()
                .flatten()
                .filter_map(|e| e.secret_ref.as_ref())
                .map(|r| r.name.clone());
            from_env.chain(from_env_from).collect::<Vec<_>>()
        })
        .collect();
    names.sort();
    names.dedup();
    names
}
