//! Cloud-side objects a test or scenario needs (`spec.setup`): OIDC providers, roles with
//! trust and inline policies, buckets with objects. Applied with the AWS SDK as the admin.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use aws_sdk_iam::error::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::emulators::AdminCredentials;
use crate::emulators::azure::AzureSetup;
use crate::emulators::gcp::GcpSetup;
use crate::emulators::node_metadata::NodeSetup;

/// The seed every AWS contract test starts from (`e2e/fixtures/aws-seed.yaml`).
const AWS_SEED_YAML: &str = include_str!("../fixtures/aws-seed.yaml");
/// The GKE Workload Identity seed (`e2e/fixtures/gcp-seed.yaml`).
const GCP_SEED_YAML: &str = include_str!("../fixtures/gcp-seed.yaml");

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloudSetup {
    #[serde(default)]
    pub aws: AwsSetup,
    /// GKE Workload Identity side: applied to the GCP emulators.
    #[serde(default)]
    pub gcp: GcpSetup,
    /// Entra tenant, applications with federated credentials, storage accounts.
    #[serde(default)]
    pub azure: AzureSetup,
    /// The node the scenario's pods run on: its instance role and IMDS options, managed
    /// identity, service account — what their SDKs fall back to through the node's metadata.
    #[serde(default, skip_serializing_if = "NodeSetup::is_empty")]
    pub node: NodeSetup,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsSetup {
    #[serde(default)]
    pub oidc_providers: Vec<OidcProviderSetup>,
    #[serde(default)]
    pub roles: Vec<RoleSetup>,
    #[serde(default)]
    pub buckets: Vec<BucketSetup>,
    /// EKS Pod Identity associations: served by the EKS Auth emulator and given to the webhook
    /// stand-in (the runner does that), so pods of these ServiceAccounts get Pod Identity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod_identity_associations: Vec<PodIdentityAssociationSetup>,
    /// Actions removed from the shipped bind policy (`deploy/iam/podiam-bind-policy.json`)
    /// for this scenario's `bind` runs: proof that each is needed. Default: none removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bind_policy_without: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodIdentityAssociationSetup {
    /// Default: `podiam-e2e` (`emulators::DEFAULT_CLUSTER_NAME`), the local cluster's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_name: Option<String>,
    pub namespace: String,
    pub service_account: String,
    /// Either the role's ARN or its name in the emulated account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_name: Option<String>,
}

impl PodIdentityAssociationSetup {
    pub fn cluster(&self) -> &str {
        self.cluster_name
            .as_deref()
            .unwrap_or(crate::emulators::DEFAULT_CLUSTER_NAME)
    }

    pub fn role_arn(&self, account_id: &str) -> Result<String> {
        match (&self.role_arn, &self.role_name) {
            (Some(arn), None) => Ok(arn.clone()),
            (None, Some(name)) => Ok(format!("arn:aws:iam::{account_id}:role/{name}")),
            _ => anyhow::bail!(
                "pod identity association {}/{}: give exactly one of roleArn and roleName",
                self.namespace,
                self.service_account
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OidcProviderSetup {
    /// Issuer URL with `https://`; `${ISSUER}` is the running issuer.
    pub url: String,
    pub client_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleSetup {
    pub name: String,
    /// The trust policy document, as YAML or JSON.
    pub trust_policy: Value,
    #[serde(default)]
    pub policies: Vec<InlinePolicySetup>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InlinePolicySetup {
    pub name: String,
    pub document: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BucketSetup {
    pub name: String,
    /// Key → text content.
    #[serde(default)]
    pub objects: BTreeMap<String, String>,
}

/// Values substituted for `${…}` placeholders.
#[derive(Debug, Clone)]
pub struct SetupVariables {
    /// `https://127.0.0.1:PORT/id/…`
    pub issuer: String,
    pub account_id: String,
}

impl CloudSetup {
    pub fn from_yaml(text: &str) -> Result<Self> {
        serde_saphyr::from_str(text).context("parsing cloud setup YAML")
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_yaml(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Role `my-pod-role` trusted for `system:serviceaccount:default:s3-reader` with audience
    /// `sts.amazonaws.com`, allowed to read bucket `my-bucket` (which holds `hello.txt`).
    pub fn seed_aws() -> Self {
        Self::from_yaml(AWS_SEED_YAML).expect("fixtures/aws-seed.yaml is valid")
    }

    /// GSA `gke-service-account@my-project.iam.gserviceaccount.com` impersonable by KSA
    /// `default/gke-service-account`, reader of bucket `my-bucket` (which holds `hello.txt`).
    pub fn seed_gcp() -> Self {
        Self::from_yaml(GCP_SEED_YAML).expect("fixtures/gcp-seed.yaml is valid")
    }

    /// Replaces `${ISSUER}`, `${ISSUER_HOSTPATH}` and `${ACCOUNT_ID}` in every string.
    pub fn expand(&self, variables: &SetupVariables) -> Result<Self> {
        let host_path = variables.issuer.trim_start_matches("https://");
        let mut value = serde_json::to_value(self)?;
        expand_strings(&mut value, &|text: &str| {
            text.replace("${ISSUER_HOSTPATH}", host_path)
                .replace("${ISSUER}", &variables.issuer)
                .replace("${ACCOUNT_ID}", &variables.account_id)
        });
        Ok(serde_json::from_value(value)?)
    }

    /// Creates everything in AWS at `endpoint` as `admin`. Existing OIDC providers are kept.
    pub async fn apply_aws(&self, endpoint: &str, admin: &AdminCredentials) -> Result<()> {
        let iam = admin.iam_client(endpoint);
        for provider in &self.aws.oidc_providers {
            let created = iam
                .create_open_id_connect_provider()
                .url(&provider.url)
                .set_client_id_list(Some(provider.client_ids.clone()))
                .send()
                .await;
            match created {
                Ok(_) => {}
                Err(err) if err.code() == Some("EntityAlreadyExists") => {}
                Err(err) => {
                    return Err(err)
                        .with_context(|| format!("creating OIDC provider {}", provider.url));
                }
            }
        }
        for role in &self.aws.roles {
            iam.create_role()
                .role_name(&role.name)
                .assume_role_policy_document(role.trust_policy.to_string())
                .send()
                .await
                .with_context(|| format!("creating role {}", role.name))?;
            for policy in &role.policies {
                iam.put_role_policy()
                    .role_name(&role.name)
                    .policy_name(&policy.name)
                    .policy_document(policy.document.to_string())
                    .send()
                    .await
                    .with_context(|| format!("putting policy {} on {}", policy.name, role.name))?;
            }
        }
        let s3 = admin.s3_client(endpoint);
        for bucket in &self.aws.buckets {
            s3.create_bucket()
                .bucket(&bucket.name)
                .send()
                .await
                .with_context(|| format!("creating bucket {}", bucket.name))?;
            for (key, content) in &bucket.objects {
                s3.put_object()
                    .bucket(&bucket.name)
                    .key(key)
                    .body(content.clone().into_bytes().into())
                    .send()
                    .await
                    .with_context(|| format!("putting s3://{}/{key}", bucket.name))?;
            }
        }
        Ok(())
    }
}

fn expand_strings(value: &mut Value, expand: &dyn Fn(&str) -> String) {
    match value {
        Value::String(text) => *text = expand(text),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| expand_strings(item, expand)),
        // Keys too: trust-policy condition keys are `${ISSUER_HOSTPATH}:sub`.
        Value::Object(map) => {
            *map = std::mem::take(map)
                .into_iter()
                .map(|(key, mut item)| {
                    expand_strings(&mut item, expand);
                    (expand(&key), item)
                })
                .collect();
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_parses_and_expands() {
        let setup = CloudSetup::seed_aws().expand(&SetupVariables {
            issuer: "https://127.0.0.1:1/id/X".to_owned(),
            account_id: "123456789012".to_owned(),
        });
        let setup = setup.expect("expands");
        assert_eq!(setup.aws.oidc_providers[0].url, "https://127.0.0.1:1/id/X");
        let trust = setup.aws.roles[0].trust_policy.to_string();
        assert!(trust.contains("oidc-provider/127.0.0.1:1/id/X"), "{trust}");
        assert!(trust.contains("\"127.0.0.1:1/id/X:sub\""), "{trust}");
        assert_eq!(setup.aws.buckets[0].name, "my-bucket");
    }

    #[test]
    fn gcp_seed_parses() {
        let setup = CloudSetup::seed_gcp();
        assert!(setup.aws.roles.is_empty());
        assert_eq!(setup.gcp.buckets[0].name, "my-bucket");
        assert_eq!(
            setup.gcp.service_accounts[0].email,
            "gke-service-account@my-project.iam.gserviceaccount.com"
        );
    }

    #[test]
    fn pod_identity_associations_parse() {
        let setup = CloudSetup::from_yaml(
            "aws:\n  podIdentityAssociations:\n    - {namespace: ns, serviceAccount: sa, roleName: r}\n",
        )
        .expect("parses");
        let association = &setup.aws.pod_identity_associations[0];
        assert_eq!(association.cluster(), "podiam-e2e");
        assert_eq!(
            association.role_arn("123456789012").unwrap(),
            "arn:aws:iam::123456789012:role/r"
        );
        assert!(
            CloudSetup::from_yaml(
                "aws:\n  podIdentityAssociations:\n    - {namespace: ns, serviceAccount: sa}\n"
            )
            .unwrap()
            .aws
            .pod_identity_associations[0]
                .role_arn("1")
                .is_err()
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(CloudSetup::from_yaml("aws:\n  rolez: []\n").is_err());
    }
}
