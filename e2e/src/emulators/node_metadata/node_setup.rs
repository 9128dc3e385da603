//! The node a scenario's pods run on, as its cloud sees it (`spec.setup.node`): the EC2
//! instance profile and IMDS options, the AKS node's managed identity (the kubelet identity),
//! the GCE node's service account. The node metadata emulators answer the scenario's pods
//! with it; a namespace that declares nothing gets a node without any identity.

use serde::{Deserialize, Serialize};

/// EC2's allowed range for `HttpPutResponseHopLimit`.
pub const HOP_LIMIT_RANGE: std::ops::RangeInclusive<u8> = 1..=64;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeSetup {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsNodeSetup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureNodeSetup>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp: Option<GcpNodeSetup>,
}

impl NodeSetup {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Rejects what EC2 would refuse (a hop limit outside 1–64).
    pub fn validate(&self) -> Result<(), NodeSetupError> {
        if let Some(aws) = &self.aws
            && !HOP_LIMIT_RANGE.contains(&aws.hop_limit)
        {
            return Err(NodeSetupError::HopLimit(aws.hop_limit));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeSetupError {
    #[error("node.aws.hopLimit {0} is outside EC2's range 1-64")]
    HopLimit(u8),
}

/// An EC2 instance's IAM and metadata options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsNodeSetup {
    /// The role of the instance profile (a role of `spec.setup.aws.roles`, trusting
    /// `ec2.amazonaws.com`). Absent: an instance without an instance profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_role: Option<String>,
    /// `HttpPutResponseHopLimit`. EC2's API default is 1 and AL2023 managed node groups keep
    /// it; eksctl and AWS's container guidance use 2. Default here: 2, so an instance role is
    /// reachable from pods unless a scenario hardens the node with 1.
    #[serde(default = "default_hop_limit")]
    pub hop_limit: u8,
    /// `HttpTokens`. Default: `required` (IMDSv2 only, as AL2023 AMIs launch).
    #[serde(default)]
    pub http_tokens: HttpTokens,
}

impl Default for AwsNodeSetup {
    fn default() -> Self {
        Self {
            instance_role: None,
            hop_limit: default_hop_limit(),
            http_tokens: HttpTokens::default(),
        }
    }
}

fn default_hop_limit() -> u8 {
    2
}

/// Whether IMDSv1 (GET without a session token) is answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpTokens {
    #[default]
    Required,
    Optional,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureNodeSetup {
    /// The node's user-assigned managed identity (AKS: the kubelet identity). Absent: a node
    /// without identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_identity: Option<ManagedIdentitySetup>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManagedIdentitySetup {
    pub client_id: String,
    /// The identity's object (principal) id; default: derived from the client id as the
    /// Entra emulator derives service principals' ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    /// ARM id (`/subscriptions/…/userAssignedIdentities/NAME`), matched against `msi_res_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GcpNodeSetup {
    /// The node pool's service account. Declaring it puts the scenario's pods on a node
    /// without the GKE metadata server: every pod gets this account.
    pub service_account: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_names() {
        let setup: NodeSetup = serde_saphyr::from_str(
            "aws: {instanceRole: node-role}\nazure: {managedIdentity: {clientId: c}}\ngcp: {serviceAccount: n@p.iam.gserviceaccount.com}\n",
        )
        .expect("parses");
        let aws = setup.aws.as_ref().expect("aws");
        assert_eq!(aws.instance_role.as_deref(), Some("node-role"));
        assert_eq!(aws.hop_limit, 2);
        assert_eq!(aws.http_tokens, HttpTokens::Required);
        assert_eq!(
            setup
                .azure
                .as_ref()
                .and_then(|a| a.managed_identity.as_ref())
                .map(|m| m.client_id.as_str()),
            Some("c")
        );
        assert!(!setup.is_empty());
        assert!(NodeSetup::default().is_empty());
        assert_eq!(setup.validate(), Ok(()));
    }

    #[test]
    fn strict_values() {
        let optional: NodeSetup =
            serde_saphyr::from_str("aws: {hopLimit: 1, httpTokens: optional}\n").expect("parses");
        assert_eq!(
            optional.aws.as_ref().map(|a| a.http_tokens),
            Some(HttpTokens::Optional)
        );
        assert!(serde_saphyr::from_str::<NodeSetup>("aws: {httpTokens: maybe}\n").is_err());
        assert!(serde_saphyr::from_str::<NodeSetup>("aws: {instanceRoel: x}\n").is_err());
        let zero: NodeSetup = serde_saphyr::from_str("aws: {hopLimit: 0}\n").expect("parses");
        assert_eq!(zero.validate(), Err(NodeSetupError::HopLimit(0)));
    }
}
