//! A pod no mechanism claimed: why, and what would wire it. An EKS Pod Identity association
//! reaches a ServiceAccount without any annotation, label or env in the cluster, so "wired to no
//! cloud identity" is said only after it is ruled out (live: EKS Auth answers for the pod's
//! ServiceAccount; a template: the association lookup, else a skip naming what is unknown).

use crate::cloud::{aws, azure, gcp};
use crate::evidence::Probe;
use crate::mechanisms::aws_pod_identity;
use crate::model::{Check, MechanismId};
use crate::options::VerifyOptions;
use crate::subject::PodSubject;

/// The `identity.mechanism` (or association) check of an unwired pod.
pub struct Unwired {
    pub check: Check,
    /// The mechanism the cloud already grants the pod's ServiceAccount though the pod was not
    /// wired for it (it predates the wiring): reported as the pod's mechanism, but nothing of
    /// it runs in the pod.
    pub granted: Option<MechanismId>,
}

pub async fn judge(pod: &PodSubject, probe: &Probe, options: &VerifyOptions) -> Unwired {
    if let Some(check) = aws_pod_identity::association_without_wiring(pod, probe, options).await {
        // EKS would grant this ServiceAccount a role: the pod predates the association.
        return Unwired {
            check,
            granted: Some(MechanismId::AwsPodIdentity),
        };
    }
    if let Some(check) = aws_pod_identity::offline::unknown_association(pod) {
        // A template: an association in EKS may wire it; not known without looking it up.
        return Unwired {
            check,
            granted: None,
        };
    }
    Unwired {
        check: no_cloud_identity(pod),
        granted: None,
    }
}

fn no_cloud_identity(pod: &PodSubject) -> Check {
    Check::fail(
        "identity.mechanism",
        format!(
            "{} is wired to no cloud identity: its ServiceAccount {} has no workload identity annotation and no identity env is injected",
            pod.describe(),
            pod.service_account_name()
        ),
        format!(
            "bind the ServiceAccount to a cloud identity, then recreate the pod: \
             `kubectl podiam bind {sa} --aws-role ROLE` (IRSA, annotation {irsa}), \
             `--pod-identity --aws-role ROLE` (EKS Pod Identity association), \
             `--gcp-sa GSA_EMAIL` (GKE, annotation {gke}) or \
             `--azure-client-id CLIENT_ID` (AKS, annotation {aks} and pod label {label}=true)",
            sa = pod.service_account_name(),
            irsa = aws::irsa::ROLE_ARN,
            gke = gcp::GSA,
            aks = azure::CLIENT_ID,
            label = azure::USE_LABEL,
        ),
    )
}
