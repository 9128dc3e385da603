//! The EC2 instance a namespace's pods run on: a stable instance id per namespace, its
//! placement, and the instance identity document IMDS serves.

use serde_json::json;
use sha2::{Digest, Sha256};

/// What the emulated node runs as (m5.large: a common EKS node type).
pub const INSTANCE_TYPE: &str = "m5.large";
/// The EKS-optimized AMI id shape; the value is ours.
const IMAGE_ID: &str = "ami-0a1b2c3d4e5f67890";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2Instance {
    pub instance_id: String,
    pub region: String,
    pub account_id: String,
}

impl Ec2Instance {
    /// `instance` is the namespace (or `None` for the node that serves unknown callers).
    pub fn new(instance: Option<&str>, region: &str, account_id: &str) -> Self {
        let digest = Sha256::digest(format!("ec2-instance:{}", instance.unwrap_or("")).as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        Self {
            // `i-` and 17 hex digits, as EC2's long ids.
            instance_id: format!("i-{}", &hex[..17]),
            region: region.to_owned(),
            account_id: account_id.to_owned(),
        }
    }

    pub fn availability_zone(&self) -> String {
        format!("{}a", self.region)
    }

    /// `/latest/dynamic/instance-identity/document`, pretty-printed as IMDS serves it.
    pub fn identity_document(&self) -> String {
        let document = json!({
            "accountId": self.account_id,
            "architecture": "x86_64",
            "availabilityZone": self.availability_zone(),
            "billingProducts": null,
            "devpayProductCodes": null,
            "marketplaceProductCodes": null,
            "imageId": IMAGE_ID,
            "instanceId": self.instance_id,
            "instanceType": INSTANCE_TYPE,
            "kernelId": null,
            "pendingTime": "2026-01-01T00:00:00Z",
            "privateIp": crate::cluster::pod_host_ip().to_string(),
            "ramdiskId": null,
            "region": self.region,
            "version": "2017-09-30",
        });
        serde_json::to_string_pretty(&document).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_per_namespace() {
        let a = Ec2Instance::new(Some("ns-a"), "us-east-1", "123456789012");
        assert_eq!(
            a,
            Ec2Instance::new(Some("ns-a"), "us-east-1", "123456789012")
        );
        assert_ne!(
            a.instance_id,
            Ec2Instance::new(Some("ns-b"), "us-east-1", "1").instance_id
        );
        assert!(a.instance_id.starts_with("i-"));
        assert_eq!(a.instance_id.len(), 19);
        let document: serde_json::Value =
            serde_json::from_str(&a.identity_document()).expect("json");
        assert_eq!(document["instanceId"], a.instance_id.as_str());
        assert_eq!(document["region"], "us-east-1");
        assert_eq!(document["availabilityZone"], "us-east-1a");
        assert_eq!(document["accountId"], "123456789012");
    }
}
