//! What the user asked verify/whoami to check, parsed and validated once.

use crate::answer_cache::AnswerCache;
use crate::error::{Error, Result};
use crate::exchange::aws_config::AwsTarget;
use crate::exchange::aws_s3::S3Action;
use crate::exchange::azure_blob::BlobAction;
use crate::exchange::azure_config::AzureTarget;
use crate::exchange::gcs::GcsAction;

/// One `--can` or `--cannot` expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessExpectation {
    S3 {
        action: S3Action,
        allowed: bool,
        /// As the user wrote it, for messages.
        spec: String,
    },
    Gcs {
        action: GcsAction,
        allowed: bool,
        spec: String,
    },
    /// Azure Blob data plane with the pod's Entra token, e.g. `blob:list=ACCOUNT/CONTAINER`.
    Blob {
        action: BlobAction,
        allowed: bool,
        spec: String,
    },
}

impl AccessExpectation {
    /// `--can` (true) or `--cannot` (false).
    pub fn allowed(&self) -> bool {
        match self {
            AccessExpectation::S3 { allowed, .. }
            | AccessExpectation::Gcs { allowed, .. }
            | AccessExpectation::Blob { allowed, .. } => *allowed,
        }
    }

    /// Parses `ACTION=RESOURCE`, e.g. `s3:ListBucket=my-bucket`.
    pub fn parse(spec: &str, allowed: bool) -> Result<Self> {
        let flag = if allowed { "--can" } else { "--cannot" };
        let (action, resource) = spec.split_once('=').ok_or_else(|| {
            Error::Usage(format!(
                "{flag} {spec:?}: expected ACTION=RESOURCE, e.g. s3:ListBucket=my-bucket"
            ))
        })?;
        if action.starts_with("s3:") {
            let action = S3Action::parse(action, resource)
                .map_err(|e| Error::Usage(format!("{flag} {spec:?}: {e}")))?;
            return Ok(AccessExpectation::S3 {
                action,
                allowed,
                spec: spec.to_string(),
            });
        }
        if action.starts_with("gcs:") {
            let action = GcsAction::parse(action, resource)
                .map_err(|e| Error::Usage(format!("{flag} {spec:?}: {e}")))?;
            return Ok(AccessExpectation::Gcs {
                action,
                allowed,
                spec: spec.to_string(),
            });
        }
        if action.starts_with("blob:") {
            let action = BlobAction::parse(action, resource)
                .map_err(|e| Error::Usage(format!("{flag} {spec:?}: {e}")))?;
            return Ok(AccessExpectation::Blob {
                action,
                allowed,
                spec: spec.to_string(),
            });
        }
        Err(Error::Usage(format!(
            "{flag} {spec:?}: unsupported service (supported: s3:ListBucket, s3:GetObject, s3:PutObject, gcs:list, gcs:get, blob:list)"
        )))
    }
}

/// Where the GCP calls made from the host go, and how long each may take.
#[derive(Debug, Clone, Default)]
pub struct GcpTarget {
    /// `--gcs-endpoint-url`; else `STORAGE_EMULATOR_HOST`; else storage.googleapis.com.
    pub gcs_endpoint_url: Option<String>,
    /// `--gcp-tokeninfo-url` (or `PODIAM_GCP_TOKENINFO_URL`); else oauth2.googleapis.com.
    pub tokeninfo_url: Option<String>,
    pub timeout: Option<std::time::Duration>,
}

#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    pub expect_role: Option<String>,
    /// `--expect-gsa EMAIL`: the Google service account the pod must get.
    pub expect_gsa: Option<String>,
    pub access: Vec<AccessExpectation>,
    pub aws: AwsTarget,
    /// The EKS cluster, for `AssumeRoleForPodIdentity` from this machine.
    pub eks_cluster_name: Option<String>,
    /// How the ServiceAccount's RBAC is reviewed (the Kubernetes half of the identity).
    pub rbac: crate::rbac::RbacOptions,
    pub gcp: GcpTarget,
    /// Cloud answers shared by pods that cannot get different ones (fleet verification).
    pub answers: AnswerCache,
    /// `--expect-client-id`: the Entra application (client) id the pod must get.
    pub expect_client_id: Option<String>,
    pub azure: AzureTarget,
    /// `verify -f`: the NetworkPolicy and Namespace documents of the input (None when live:
    /// the policies are then read from the cluster).
    pub manifest_network_policies: Option<crate::network_policy::ManifestNetworkPolicies>,
    /// `--probe` and `--probe-image`: whether an ephemeral probe is started in the pod.
    pub probe: crate::ephemeral::ProbeSettings,
    /// `--allow-skip`: expectations that ended as `skip` do not make the pod incomplete.
    pub allow_skip: bool,
    /// `--assume-role`: roles assumed in order after the pod's own exchange, each hop with the
    /// previous hop's credentials (`mechanisms::aws_role_chain`).
    pub assume_roles: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_expectations() {
        assert!(AccessExpectation::parse("s3:ListBucket=my-bucket", true).is_ok());
        assert!(AccessExpectation::parse("s3:ListBucket", true).is_err());
        assert!(AccessExpectation::parse("ec2:RunInstances=x", false).is_err());
        assert!(matches!(
            AccessExpectation::parse("gcs:list=my-bucket", true),
            Ok(AccessExpectation::Gcs { allowed: true, .. })
        ));
        assert!(matches!(
            AccessExpectation::parse("gcs:get=my-bucket/a.txt", false),
            Ok(AccessExpectation::Gcs { allowed: false, .. })
        ));
        assert!(AccessExpectation::parse("gcs:get=my-bucket", false).is_err());
        assert!(matches!(
            AccessExpectation::parse("blob:list=mystorageaccount/mycontainer", true),
            Ok(AccessExpectation::Blob { allowed: true, .. })
        ));
        assert!(AccessExpectation::parse("blob:list=mystorageaccount", false).is_err());
    }
}
