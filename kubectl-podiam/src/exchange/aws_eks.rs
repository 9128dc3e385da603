//! The EKS control plane's Pod Identity association API (aws-sdk-eks), with the operator's
//! credentials: what `bind --pod-identity` reads and writes.

use super::CloudError;
use super::aws_sts::classify;

/// An existing association of one ServiceAccount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Association {
    pub id: String,
    pub role_arn: String,
    /// EKS cross-account chaining: EKS Auth assumes `role_arn`, then this role, and the pod
    /// gets this role's credentials.
    pub target_role_arn: Option<String>,
}

/// The association of `namespace`/`service_account` in `cluster`, if any (EKS allows one).
pub async fn find_association(
    config: &aws_config::SdkConfig,
    cluster: &str,
    namespace: &str,
    service_account: &str,
) -> Result<Option<Association>, CloudError> {
    let eks = aws_sdk_eks::Client::new(config);
    let listed = eks
        .list_pod_identity_associations()
        .cluster_name(cluster)
        .namespace(namespace)
        .service_account(service_account)
        .send()
        .await
        .map_err(classify)?;
    // The summaries carry no role: describe the one found.
    let Some(id) = listed
        .associations()
        .iter()
        .find(|a| a.namespace() == Some(namespace) && a.service_account() == Some(service_account))
        .and_then(|a| a.association_id())
    else {
        return Ok(None);
    };
    let described = eks
        .describe_pod_identity_association()
        .cluster_name(cluster)
        .association_id(id)
        .send()
        .await
        .map_err(classify)?;
    let association = described.association();
    Ok(Some(Association {
        id: id.to_owned(),
        role_arn: association
            .and_then(|a| a.role_arn())
            .unwrap_or_default()
            .to_owned(),
        target_role_arn: association
            .and_then(|a| a.target_role_arn())
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
    }))
}

/// Creates the association; answers its id.
pub async fn create_association(
    config: &aws_config::SdkConfig,
    cluster: &str,
    namespace: &str,
    service_account: &str,
    role_arn: &str,
) -> Result<String, CloudError> {
    let out = aws_sdk_eks::Client::new(config)
        .create_pod_identity_association()
        .cluster_name(cluster)
        .namespace(namespace)
        .service_account(service_account)
        .role_arn(role_arn)
        .send()
        .await
        .map_err(classify)?;
    Ok(out
        .association()
        .and_then(|a| a.association_id())
        .unwrap_or_default()
        .to_owned())
}

/// Points an existing association at another role.
pub async fn update_association(
    config: &aws_config::SdkConfig,
    cluster: &str,
    association_id: &str,
    role_arn: &str,
) -> Result<(), CloudError> {
    aws_sdk_eks::Client::new(config)
        .update_pod_identity_association()
        .cluster_name(cluster)
        .association_id(association_id)
        .role_arn(role_arn)
        .send()
        .await
        .map(|_| ())
        .map_err(classify)
}
