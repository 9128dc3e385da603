//! The cluster objects that say whether a webhook can mutate pods: its
//! MutatingWebhookConfiguration and the EndpointSlices of the Service it calls. Read once per
//! run through the answer cache (every pod of a fleet asks the same questions).

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};

use super::known::Webhook;
use crate::answer_cache::AnswerCache;

/// Answer-cache kinds.
pub const CONFIGURATIONS_READ: &str = "k8s-mutating-webhook-configurations";
pub const ENDPOINTS_READ: &str = "k8s-webhook-endpointslices";

/// Why a read gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unread {
    /// 401/403: the permission that is missing, as kubectl would name it.
    Forbidden(String),
    /// Anything else (timeout, unreachable), with its reason.
    Failed(String),
}

/// Where the API server sends the admission request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Service {
        namespace: String,
        name: String,
    },
    /// A URL (EKS's control-plane endpoint, or a webhook outside the cluster).
    Url(String),
}

/// One webhook entry of a configuration, reduced to what is judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub configuration: String,
    pub webhook: String,
    /// As registered; the API defaults an absent one to `Fail`.
    pub failure_policy: String,
    pub target: Target,
    pub created: Option<Timestamp>,
}

/// Ready and not-ready endpoint addresses of a Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointCount {
    pub ready: usize,
    pub not_ready: usize,
}

fn unread(what: &str, e: kube::Error) -> Unread {
    match e {
        kube::Error::Api(status) if status.code == 403 || status.code == 401 => {
            Unread::Forbidden(what.to_string())
        }
        other => Unread::Failed(other.to_string()),
    }
}

/// The registration of `webhook` among the cluster's configurations: by configuration name,
/// else by webhook entry name. None when neither is registered.
pub fn find(
    configurations: &[MutatingWebhookConfiguration],
    webhook: Webhook,
) -> Option<Registration> {
    let by_name = configurations.iter().find(|c| {
        c.metadata
            .name
            .as_deref()
            .is_some_and(|n| webhook.configuration_names().contains(&n))
    });
    let entry_matches = |name: &str| webhook.webhook_names().contains(&name);
    let (configuration, entry) = match by_name {
        Some(c) => {
            let entries = c.webhooks.as_deref().unwrap_or_default();
            let entry = entries
                .iter()
                .find(|w| entry_matches(&w.name))
                .or_else(|| entries.first());
            (c, entry)
        }
        None => configurations.iter().find_map(|c| {
            c.webhooks
                .as_deref()
                .unwrap_or_default()
                .iter()
                .find(|w| entry_matches(&w.name))
                .map(|w| (c, Some(w)))
        })?,
    };
    let entry = entry?;
    let target = match &entry.client_config.service {
        Some(s) => Target::Service {
            namespace: s.namespace.clone(),
            name: s.name.clone(),
        },
        None => Target::Url(entry.client_config.url.clone().unwrap_or_default()),
    };
    Some(Registration {
        configuration: configuration.metadata.name.clone().unwrap_or_default(),
        webhook: entry.name.clone(),
        failure_policy: entry
            .failure_policy
            .clone()
            .unwrap_or_else(|| "Fail".into()),
        target,
        created: configuration
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0),
    })
}

pub async fn configurations(
    client: &kube::Client,
    answers: &AnswerCache,
) -> Result<Vec<MutatingWebhookConfiguration>, Unread> {
    answers
        .get_or_compute(CONFIGURATIONS_READ, &[], || async {
            Api::<MutatingWebhookConfiguration>::all(client.clone())
                .list(&ListParams::default())
                .await
                .map(|l| l.items)
                .map_err(|e| {
                    unread(
                        "list mutatingwebhookconfigurations.admissionregistration.k8s.io (cluster-wide)",
                        e,
                    )
                })
        })
        .await
}

/// Counts the endpoints of a Service's EndpointSlices (`ready` unset counts as ready, as the
/// API defines it).
pub fn count(slices: &[EndpointSlice]) -> EndpointCount {
    let mut n = EndpointCount {
        ready: 0,
        not_ready: 0,
    };
    for endpoint in slices.iter().flat_map(|s| s.endpoints.iter()) {
        let ready = endpoint
            .conditions
            .as_ref()
            .and_then(|c| c.ready)
            .unwrap_or(true);
        if ready {
            n.ready += 1;
        } else {
            n.not_ready += 1;
        }
    }
    n
}

pub async fn endpoints(
    client: &kube::Client,
    answers: &AnswerCache,
    namespace: &str,
    service: &str,
) -> Result<EndpointCount, Unread> {
    answers
        .get_or_compute(ENDPOINTS_READ, &[namespace, service], || async {
            let params =
                ListParams::default().labels(&format!("kubernetes.io/service-name={service}"));
            Api::<EndpointSlice>::namespaced(client.clone(), namespace)
                .list(&params)
                .await
                .map(|l| count(&l.items))
                .map_err(|e| {
                    unread(
                        &format!("list endpointslices.discovery.k8s.io in namespace {namespace}"),
                        e,
                    )
                })
        })
        .await
}
