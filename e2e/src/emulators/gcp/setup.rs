//! The GCP side of a scenario (`spec.setup.gcp`): project, service accounts with their IAM
//! policies, workload identity pools, buckets with objects and IAM bindings, and the knobs of
//! the GKE metadata server emulator.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    DEFAULT_NODE_SERVICE_ACCOUNT, DEFAULT_OPERATOR, DEFAULT_PROJECT_ID, DEFAULT_PROJECT_NUMBER,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GcpSetup {
    #[serde(default = "default_project_id")]
    pub project_id: String,
    #[serde(default = "default_project_number")]
    pub project_number: String,
    /// The project's own IAM policy (who may manage its service accounts). Default: the
    /// harness's operator ([`DEFAULT_OPERATOR`]) is `roles/owner`, as a project's creator is.
    #[serde(default = "default_project_iam_policy")]
    pub project_iam_policy: IamPolicySetup,
    #[serde(default)]
    pub service_accounts: Vec<ServiceAccountSetup>,
    #[serde(default)]
    pub workload_identity_pools: Vec<WorkloadIdentityPoolSetup>,
    #[serde(default)]
    pub buckets: Vec<GcsBucketSetup>,
    /// The node pool's service account, seen by hostNetwork pods (GKE: the Compute Engine
    /// default service account unless the node pool names another).
    #[serde(default)]
    pub node_service_account: Option<String>,
    /// The metadata server holds a pod's requests until the pod is this old (GKE's start-up
    /// race); 0 answers at once.
    #[serde(default)]
    pub metadata_startup_delay_seconds: u64,
}

impl Default for GcpSetup {
    fn default() -> Self {
        Self {
            project_id: default_project_id(),
            project_number: default_project_number(),
            project_iam_policy: default_project_iam_policy(),
            service_accounts: Vec::new(),
            workload_identity_pools: Vec::new(),
            buckets: Vec::new(),
            node_service_account: None,
            metadata_startup_delay_seconds: 0,
        }
    }
}

impl GcpSetup {
    /// Rejects what Google's IAM API would refuse to create: a provider whose issuer is not an
    /// https URL, or whose mapping or condition does not parse. Run after `${ISSUER}` is expanded.
    pub fn validate(&self) -> anyhow::Result<()> {
        for pool in &self.workload_identity_pools {
            let name = format!("workload identity provider {}/{}", pool.pool, pool.provider);
            if !pool.issuer.starts_with("https://") {
                anyhow::bail!(
                    "{name}: issuer {:?} is refused (INVALID_ARGUMENT): an OIDC issuer URI must use https",
                    pool.issuer
                );
            }
            super::attribute_mapping::validate(
                &pool.attribute_mapping,
                pool.attribute_condition.as_deref(),
            )
            .map_err(|reason| anyhow::anyhow!("{name}: {reason}"))?;
        }
        Ok(())
    }

    /// Nothing set beyond the defaults (scenarios of other clouds).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// `1234567890-compute@developer.gserviceaccount.com` unless `nodeServiceAccount` is set.
    pub fn node_service_account(&self) -> String {
        self.node_service_account.clone().unwrap_or_else(|| {
            if self.project_number == DEFAULT_PROJECT_NUMBER {
                DEFAULT_NODE_SERVICE_ACCOUNT.to_owned()
            } else {
                format!(
                    "{}-compute@developer.gserviceaccount.com",
                    self.project_number
                )
            }
        })
    }

    /// `PROJECT_ID.svc.id.goog`: GKE's workload identity pool (and the "email" the metadata
    /// server reports for a KSA without a GSA annotation).
    pub fn workload_pool(&self) -> String {
        format!("{}.svc.id.goog", self.project_id)
    }
}

fn default_project_id() -> String {
    DEFAULT_PROJECT_ID.to_owned()
}

fn default_project_number() -> String {
    DEFAULT_PROJECT_NUMBER.to_owned()
}

fn default_project_iam_policy() -> IamPolicySetup {
    IamPolicySetup {
        bindings: vec![IamBindingSetup {
            role: "roles/owner".to_owned(),
            members: vec![format!("user:{DEFAULT_OPERATOR}")],
        }],
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceAccountSetup {
    /// `NAME@PROJECT.iam.gserviceaccount.com`
    pub email: String,
    #[serde(default)]
    pub iam_policy: IamPolicySetup,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IamPolicySetup {
    #[serde(default)]
    pub bindings: Vec<IamBindingSetup>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IamBindingSetup {
    /// e.g. `roles/iam.workloadIdentityUser`
    pub role: String,
    /// e.g. `serviceAccount:my-project.svc.id.goog[default/gke-service-account]`
    pub members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadIdentityPoolSetup {
    pub pool: String,
    pub provider: String,
    /// Issuer URL (`https://…`); `${ISSUER}` is the cluster's.
    pub issuer: String,
    /// Empty: Google's default, the provider's own resource URL
    /// `https://iam.googleapis.com/projects/NUM/locations/global/workloadIdentityPools/POOL/providers/PROV`.
    #[serde(default)]
    pub allowed_audiences: Vec<String>,
    /// `google.subject` / `google.groups` / `attribute.NAME` → CEL over `assertion`.
    /// Empty: Google's default for OIDC, `google.subject = assertion.sub`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attribute_mapping: BTreeMap<String, String>,
    /// CEL over `assertion`, `google` and `attribute`; a credential it does not hold for is
    /// refused (`unauthorized_client`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute_condition: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GcsBucketSetup {
    pub name: String,
    /// Object name → text content.
    #[serde(default)]
    pub objects: BTreeMap<String, String>,
    #[serde(default)]
    pub bindings: Vec<IamBindingSetup>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_camel_case() {
        let setup: GcpSetup = serde_saphyr::from_str(
            "serviceAccounts:\n  - email: a@my-project.iam.gserviceaccount.com\n    iamPolicy:\n      bindings:\n        - role: roles/iam.workloadIdentityUser\n          members: [\"serviceAccount:my-project.svc.id.goog[default/k]\"]\nmetadataStartupDelaySeconds: 5\n",
        )
        .expect("parses");
        assert_eq!(setup.project_id, "my-project");
        assert_eq!(setup.project_number, "1234567890");
        assert_eq!(setup.metadata_startup_delay_seconds, 5);
        assert_eq!(
            setup.node_service_account(),
            "1234567890-compute@developer.gserviceaccount.com"
        );
        assert_eq!(
            setup.service_accounts[0].iam_policy.bindings[0].role,
            "roles/iam.workloadIdentityUser"
        );
        assert!(!setup.is_empty());
        assert!(GcpSetup::default().is_empty());
    }

    #[test]
    fn providers_google_would_refuse_are_refused() {
        let with = |issuer: &str, condition: &str| -> GcpSetup {
            serde_json::from_value(serde_json::json!({"workloadIdentityPools": [{
                "pool": "p", "provider": "k", "issuer": issuer, "attributeCondition": condition,
            }]}))
            .expect("parses")
        };
        assert!(
            with("https://issuer.example.com", "assertion.sub == 'x'")
                .validate()
                .is_ok()
        );
        let err = with("http://issuer.example.com", "assertion.sub == 'x'")
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("must use https"), "{err}");
        assert!(
            with("https://issuer.example.com", "assertion.sub = 'x'")
                .validate()
                .is_err()
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        assert!(serde_saphyr::from_str::<GcpSetup>("serviceAcounts: []\n").is_err());
        assert!(
            serde_saphyr::from_str::<GcpSetup>("buckets:\n  - name: b\n    acl: []\n").is_err()
        );
    }
}
