//! EKS Auth `AssumeRoleForPodIdentity`: what the Pod Identity Agent does for a pod, done from
//! this machine with the operator's credentials when exec in the pod is not possible.

use aws_credential_types::Credentials;

use super::CloudError;
use super::aws_sts::classify;

/// What EKS Auth granted. Debug output of `credentials` redacts the secrets.
#[derive(Debug, Clone)]
pub struct PodIdentityGrant {
    pub association_id: String,
    pub association_arn: String,
    pub assumed_role_arn: String,
    pub namespace: String,
    pub service_account: String,
    pub credentials: Credentials,
}

pub async fn assume_role_for_pod_identity(
    config: &aws_config::SdkConfig,
    cluster_name: &str,
    token: &str,
) -> Result<PodIdentityGrant, CloudError> {
    let client = aws_sdk_eksauth::Client::new(config);
    let out = client
        .assume_role_for_pod_identity()
        .cluster_name(cluster_name)
        .token(token)
        .send()
        .await
        .map_err(classify)?;
    let missing = |what: &str| CloudError::Rejected {
        code: "IncompleteAnswer".into(),
        message: format!("EKS Auth answered without {what}"),
    };
    let c = out.credentials().ok_or_else(|| missing("credentials"))?;
    let association = out
        .pod_identity_association()
        .ok_or_else(|| missing("podIdentityAssociation"))?;
    let credentials = Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        std::time::SystemTime::try_from(*c.expiration()).ok(),
        "podiam-eks-pod-identity",
    );
    Ok(PodIdentityGrant {
        association_id: association.association_id().to_string(),
        association_arn: association.association_arn().to_string(),
        assumed_role_arn: out
            .assumed_role_user()
            .map(|u| u.arn().to_string())
            .unwrap_or_default(),
        namespace: out
            .subject()
            .map(|s| s.namespace().to_string())
            .unwrap_or_default(),
        service_account: out
            .subject()
            .map(|s| s.service_account().to_string())
            .unwrap_or_default(),
        credentials,
    })
}
