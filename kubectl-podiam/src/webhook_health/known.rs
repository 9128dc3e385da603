//! The identity webhooks a pod can depend on, as their upstream manifests register them, and
//! how to tell from a pod that it relies on one and whether it was mutated.

use crate::cloud::aws::irsa;
use crate::cloud::azure;
use crate::model::MechanismId;
use crate::subject::{PodSubject, has_env};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Webhook {
    /// amazon-eks-pod-identity-webhook: IRSA and EKS Pod Identity.
    Eks,
    /// azure-workload-identity's mutating webhook.
    Azure,
}

impl Webhook {
    /// The webhook the pod's identity needs at CREATE, if any: IRSA through an annotated
    /// ServiceAccount, Pod Identity (always injected by the webhook), AKS through the pod label.
    /// A pod wired by hand (no annotation, no label) or opted out needs none.
    pub fn needed_by(pod: &PodSubject, mechanism: MechanismId) -> Option<Webhook> {
        match mechanism {
            MechanismId::AwsIrsa | MechanismId::AwsPodIdentity
                if pod.label(irsa::SKIP_POD_LABEL).is_some() =>
            {
                None
            }
            MechanismId::AwsIrsa if pod.sa_annotation(irsa::ROLE_ARN).is_some() => {
                Some(Webhook::Eks)
            }
            MechanismId::AwsPodIdentity => Some(Webhook::Eks),
            MechanismId::AzureWorkloadIdentity
                if pod.label(azure::USE_LABEL) == Some(azure::USE_LABEL_VALUE) =>
            {
                Some(Webhook::Azure)
            }
            _ => None,
        }
    }

    /// MutatingWebhookConfiguration names: upstream's deploy manifests and EKS's own.
    pub fn configuration_names(self) -> &'static [&'static str] {
        match self {
            Webhook::Eks => &["pod-identity-webhook"],
            Webhook::Azure => &["azure-wi-webhook-mutating-webhook-configuration"],
        }
    }

    /// Names of the webhook entry inside a configuration (EKS's, upstream's self-hosted
    /// manifest's; Azure's), so a configuration installed under another name is still found.
    pub fn webhook_names(self) -> &'static [&'static str] {
        match self {
            Webhook::Eks => &[
                "iam-for-pods.amazonaws.com",
                "pod-identity-webhook.amazonaws.com",
            ],
            Webhook::Azure => &["mutation.azure-workload-identity.io"],
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Webhook::Eks => "the EKS pod identity webhook",
            Webhook::Azure => "the Azure workload identity webhook",
        }
    }

    /// How to get it back.
    pub fn install_hint(self) -> &'static str {
        match self {
            Webhook::Eks => {
                "on EKS it runs in the control plane (open a support case if its configuration is gone); self-managed: deploy amazon-eks-pod-identity-webhook"
            }
            Webhook::Azure => {
                "enable it (az aks update --enable-oidc-issuer --enable-workload-identity) or install the azure-workload-identity-webhook Helm chart"
            }
        }
    }

    /// Whether the webhook's mutation is in the pod: its token variable in any container
    /// (a skipped container still leaves the others mutated).
    pub fn mutated(self, pod: &PodSubject) -> bool {
        let vars: &[&str] = match self {
            Webhook::Eks => &[
                irsa::ENV_TOKEN_FILE,
                crate::cloud::aws::pod_identity::ENV_TOKEN_FILE,
            ],
            Webhook::Azure => &[azure::ENV_TOKEN_FILE],
        };
        pod.all_containers()
            .any(|c| vars.iter().any(|v| has_env(c, v)))
    }
}
