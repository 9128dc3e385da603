//! Live input: the NetworkPolicies of a namespace and the labels of namespaces, read through
//! the API. A read that fails is an explicit outcome, never an "allowed".

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, ListParams};

use super::destination::Destination;
use super::evaluate::{SourcePod, evaluate_egress};
use super::verdict::EgressVerdict;
use crate::answer_cache::AnswerCache;

/// Answer-cache kinds: pods of one namespace share its policies, and namespace labels are
/// shared by every pod.
pub const POLICIES_READ: &str = "k8s-networkpolicies";
pub const NAMESPACE_LABELS_READ: &str = "k8s-namespace-labels";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyReadError {
    #[error(
        "could not read NetworkPolicies in namespace {namespace} (RBAC: list networkpolicies.networking.k8s.io)"
    )]
    Forbidden { namespace: String },
    #[error("could not read NetworkPolicies in namespace {namespace}: {message}")]
    Failed { namespace: String, message: String },
}

/// The NetworkPolicies of a namespace, or why they could not be read.
pub type PolicyRead = Result<Vec<NetworkPolicy>, PolicyReadError>;

/// Lists the NetworkPolicies of `namespace`, once per run.
pub async fn list_policies(
    client: &kube::Client,
    namespace: &str,
    reads: &AnswerCache,
) -> PolicyRead {
    reads
        .get_or_compute(POLICIES_READ, &[namespace], || async {
            Api::<NetworkPolicy>::namespaced(client.clone(), namespace)
                .list(&ListParams::default())
                .await
                .map(|list| list.items)
                .map_err(|e| read_error(namespace, e))
        })
        .await
}

fn read_error(namespace: &str, err: kube::Error) -> PolicyReadError {
    match &err {
        kube::Error::Api(status) if status.code == 403 || status.code == 401 => {
            PolicyReadError::Forbidden {
                namespace: namespace.to_string(),
            }
        }
        _ => PolicyReadError::Failed {
            namespace: namespace.to_string(),
            message: err.to_string(),
        },
    }
}

/// The labels of namespace `name`, once per run; None when it cannot be read (then only its
/// `kubernetes.io/metadata.name` label is known to the evaluator).
pub async fn namespace_labels(
    client: &kube::Client,
    name: &str,
    reads: &AnswerCache,
) -> Option<BTreeMap<String, String>> {
    reads
        .get_or_compute(NAMESPACE_LABELS_READ, &[name], || async {
            let ns = Api::<Namespace>::all(client.clone()).get(name).await.ok()?;
            Some(ns.metadata.labels.unwrap_or_default())
        })
        .await
}

/// [`evaluate_egress`] on policies as read: `Unreadable` when they could not be.
pub fn judge_egress(pod: &SourcePod, policies: &PolicyRead, dest: &Destination) -> EgressVerdict {
    match policies {
        Ok(policies) => evaluate_egress(pod, policies, dest),
        Err(e) => EgressVerdict::Unreadable {
            reason: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An API server answering every request with `code` and `body`.
    fn client(code: u16, body: serde_json::Value) -> kube::Client {
        let service = tower::service_fn(move |_req: http::Request<kube::client::Body>| {
            let body = body.clone();
            async move {
                Ok::<_, std::convert::Infallible>(
                    http::Response::builder()
                        .status(code)
                        .header("content-type", "application/json")
                        .body(kube::client::Body::from(serde_json::to_vec(&body).unwrap()))
                        .unwrap(),
                )
            }
        });
        kube::Client::new(service, "default")
    }

    fn pod() -> SourcePod {
        SourcePod {
            namespace: "app".into(),
            labels: BTreeMap::new(),
            host_network: false,
        }
    }

    #[tokio::test]
    async fn forbidden_list_is_unreadable_never_allowed() {
        let forbidden = client(
            403,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403,
                   "reason": "Forbidden",
                   "message": "networkpolicies.networking.k8s.io is forbidden: User \"me\" cannot list resource \"networkpolicies\""}),
        );
        let read = list_policies(&forbidden, "app", &AnswerCache::default()).await;
        assert_eq!(
            read,
            Err(PolicyReadError::Forbidden {
                namespace: "app".into()
            })
        );
        let verdict = judge_egress(&pod(), &read, &Destination::host("sts.amazonaws.com", 443));
        assert!(!verdict.is_allowed() && !verdict.is_blocked());
        assert_eq!(
            verdict.describe(),
            "could not read NetworkPolicies in namespace app (RBAC: list networkpolicies.networking.k8s.io)"
        );
    }

    #[tokio::test]
    async fn lists_policies_of_the_namespace() {
        let api = client(
            200,
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicyList",
                   "metadata": {},
                   "items": [{"metadata": {"name": "deny", "namespace": "app"},
                              "spec": {"podSelector": {}, "policyTypes": ["Egress"]}}]}),
        );
        let read = list_policies(&api, "app", &AnswerCache::default()).await;
        let verdict = judge_egress(&pod(), &read, &Destination::host("sts.amazonaws.com", 443));
        assert!(verdict.is_blocked(), "{verdict:?}");
    }
}
