//! Templates and Pod Identity: an association lives in EKS, not in the manifests, so whether
//! the webhook will wire a template's pod for Pod Identity (and ignore its IRSA annotation) is
//! known only after asking EKS (ListPodIdentityAssociations with the operator's credentials,
//! when `--eks-cluster-name` is given). Until then the verdict names what cannot be known.

use crate::cloud::aws::irsa;
use crate::cloud::aws::pod_identity as a;
use crate::exchange::{CloudError, aws_eks};
use crate::model::Check;
use crate::options::VerifyOptions;
use crate::subject::{EksAssociation, Origin, PodSubject};

/// Answer-cache kind of the association lookup for a template's ServiceAccount.
pub const LIST_LOOKUP: &str = "aws-eks-association-list";
pub const ID: &str = "aws.pod-identity.association";

fn how_to_know() -> String {
    format!(
        "pass --eks-cluster-name (or set {}) with AWS credentials allowed eks:ListPodIdentityAssociations and eks:DescribePodIdentityAssociation",
        a::ENV_CLUSTER_NAME
    )
}

/// The template with its ServiceAccount's association looked up; `None` when there is nothing
/// to look up (not a template, no cluster name, no AWS credentials here).
pub async fn with_association(pod: &PodSubject, options: &VerifyOptions) -> Option<PodSubject> {
    if pod.origin != Origin::Template {
        return None;
    }
    let cluster = options.eks_cluster_name.as_deref()?;
    let found = options
        .answers
        .get_or_compute(
            LIST_LOOKUP,
            &[cluster, &pod.namespace, pod.service_account_name()],
            || lookup(pod, options, cluster),
        )
        .await;
    let mut resolved = pod.clone();
    resolved.eks_association = found;
    Some(resolved)
}

async fn lookup(pod: &PodSubject, options: &VerifyOptions, cluster: &str) -> EksAssociation {
    // No credentials: not looked up (an info on IRSA templates), as without a cluster name.
    // The name may be inferred from the kubeconfig: a failure here would make every template
    // of an EKS user without AWS credentials incomplete.
    let Some(operator) = options.aws.operator().await else {
        return EksAssociation::NotLookedUp;
    };
    let sa = pod.service_account_name();
    match aws_eks::find_association(&operator, cluster, &pod.namespace, sa).await {
        Ok(Some(found)) => EksAssociation::Found {
            cluster: cluster.to_string(),
            id: found.id,
            role_arn: found.role_arn,
            target_role_arn: found.target_role_arn,
        },
        Ok(None) => EksAssociation::Absent {
            cluster: cluster.to_string(),
        },
        Err(CloudError::Unreachable(msg)) => {
            EksAssociation::LookupFailed(format!("EKS is unreachable: {msg}"))
        }
        Err(CloudError::Rejected { code, message }) => {
            EksAssociation::LookupFailed(format!("EKS said {code}: {message}"))
        }
    }
}

/// For a template wired to nothing else: a skip saying an association cannot be ruled out, or
/// `None` when EKS answered (then the association is known to exist or not).
pub fn unknown_association(pod: &PodSubject) -> Option<Check> {
    if pod.origin != Origin::Template {
        return None;
    }
    let sa = format!("{}/{}", pod.namespace, pod.service_account_name());
    let why = match &pod.eks_association {
        EksAssociation::NotLookedUp => "offline".to_string(),
        EksAssociation::LookupFailed(e) => format!("the lookup failed ({e})"),
        EksAssociation::Absent { .. } | EksAssociation::Found { .. } => return None,
    };
    Some(Check::skip(
        "identity.mechanism",
        format!(
            "{} has no workload identity annotation, label or env; an EKS Pod Identity association for ServiceAccount {sa} would still give it a role, but associations live in EKS, not in manifests, and were not looked up: {why}. To know, {}; else bind the ServiceAccount (kubectl podiam bind {})",
            pod.describe(),
            how_to_know(),
            pod.service_account_name()
        ),
    ))
}

/// The association's check for a template judged as Pod Identity, and for an IRSA-annotated
/// template whose association is unknown (an association would win over the annotation).
pub fn association_check(pod: &PodSubject) -> Option<Check> {
    if pod.origin != Origin::Template {
        return None;
    }
    let sa = format!("{}/{}", pod.namespace, pod.service_account_name());
    let irsa_annotation = pod.sa_annotation(irsa::ROLE_ARN).filter(|r| !r.is_empty());
    match (&pod.eks_association, irsa_annotation) {
        (
            EksAssociation::Found {
                cluster,
                id,
                role_arn,
                target_role_arn,
            },
            None,
        ) => Some(Check::pass(
            ID,
            format!(
                "cluster {cluster} has Pod Identity association {id} for {sa} ({}): the webhook wires the pod for Pod Identity at CREATE",
                roles(role_arn, target_role_arn.as_deref())
            ),
        )),
        (
            EksAssociation::Found {
                cluster,
                id,
                role_arn,
                target_role_arn,
            },
            Some(annotated),
        ) => Some(Check::warn(
            ID,
            format!(
                "cluster {cluster} has Pod Identity association {id} for {sa} ({}), which wins in the webhook: the pod gets Pod Identity and no AWS_ROLE_ARN, so the ServiceAccount's {}={annotated} is ignored",
                roles(role_arn, target_role_arn.as_deref()),
                irsa::ROLE_ARN
            ),
            format!(
                "keep one mechanism: delete the association (aws eks delete-pod-identity-association --cluster-name {cluster} --association-id {id}) to use IRSA, or remove the {} annotation",
                irsa::ROLE_ARN
            ),
        )),
        // Not asked: an `info` (on every IRSA template a skip or warning would be noise).
        (EksAssociation::NotLookedUp, Some(_)) => Some(Check::info(
            ID,
            format!(
                "not known whether ServiceAccount {sa} has an EKS Pod Identity association (associations live in EKS, not in manifests); one would win over its IRSA annotation"
            ),
            "to know, pass --eks-cluster-name with AWS credentials (eks:ListPodIdentityAssociations)",
        )),
        // Asked, and the lookup failed: a skip naming why.
        (EksAssociation::LookupFailed(why), Some(_)) => Some(Check::skip(
            ID,
            format!(
                "not known whether ServiceAccount {sa} has an EKS Pod Identity association (it would win over its IRSA annotation): the lookup failed: {why}"
            ),
        )),
        (EksAssociation::Absent { .. }, _) | (_, None) => None,
    }
}

/// The association's roles as a message names them: "role R", or "role R, then target T" when
/// EKS Auth chains to a target role (the pod gets T).
pub fn roles(role_arn: &str, target_role_arn: Option<&str>) -> String {
    match target_role_arn {
        Some(target) => format!("role {role_arn}, then target {target}"),
        None => format!("role {role_arn}"),
    }
}
