//! What the user asked verify/whoami to check, parsed and validated once.

use crate::error::{Error, Result};
use crate::exchange::aws_config::AwsTarget;
use crate::exchange::aws_s3::S3Action;
use crate::exchange::azure_blob::BlobAction;
use crate::exchange::azure_config::AzureTarget;

/// One `--can` or `--cannot` expectation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessExpectation {
    S3 {
        action: S3Action,
        allowed: bool,
        /// As the user wrote it, for messages.
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
            "{flag} {spec:?}: unsupported service (supported: s3:ListBucket, s3:GetObject, s3:PutObject, blob:list)"
        )))
    }
}

#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    pub expect_role: Option<String>,
    pub access: Vec<AccessExpectation>,
    pub aws: AwsTarget,
    /// `--expect-client-id`: the Entra application (client) id the pod must get.
    pub expect_client_id: Option<String>,
    pub azure: AzureTarget,
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
            AccessExpectation::parse("blob:list=mystorageaccount/mycontainer", true),
            Ok(AccessExpectation::Blob { allowed: true, .. })
        ));
        assert!(AccessExpectation::parse("blob:list=mystorageaccount", false).is_err());
    }
}
