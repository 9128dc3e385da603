//! The Azure side of a scenario (`spec.setup.azure`): one Entra tenant with app registrations
//! and their federated identity credentials, and storage accounts with containers, blobs and
//! role assignments. Applied to [`super::AzureEmulators`] in memory.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// Microsoft's own tenant id, the default in Azure's docs and in the shared contract.
pub const DEFAULT_TENANT_ID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

/// The only audience Entra expects in a Kubernetes token exchanged for an Entra token.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";

/// Entra refuses a 21st federated identity credential on one application.
pub const MAX_FEDERATED_CREDENTIALS_PER_APP: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AzureSetup {
    #[serde(default = "default_tenant_id")]
    pub tenant_id: String,
    /// Other tenants that exist in Entra but hold none of these applications: a token
    /// request naming one is answered AADSTS700016 (application not found in the directory),
    /// where a tenant Entra does not know at all is AADSTS90002.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_tenants: Vec<String>,
    #[serde(default)]
    pub applications: Vec<ApplicationSetup>,
    #[serde(default)]
    pub storage_accounts: Vec<StorageAccountSetup>,
    /// Issuers whose OIDC discovery Entra cannot reach (AADSTS90061): e.g. `${ISSUER}` to
    /// play a private cluster whose issuer is not published.
    #[serde(default)]
    pub unreachable_issuers: Vec<String>,
    /// Seconds added to the emulator's clock when it judges assertion lifetimes: a live pod's
    /// fresh token then looks expired to Entra (AADSTS700024), as with a stale token file or a
    /// skewed node clock. 0: the real time.
    #[serde(default)]
    pub clock_offset_seconds: i64,
    /// Microsoft Graph application permissions (app roles in its tokens' `roles`) of the
    /// built-in operator principal ([`OPERATOR_CLIENT_ID`], whose client secret the harness
    /// hands to the plugin): `Application.ReadWrite.All` (every application),
    /// `Application.ReadWrite.OwnedBy` (the applications listing it in `owners`),
    /// `Application.Read.All`. Default: `[Application.ReadWrite.All]`.
    #[serde(default = "default_operator_graph_permissions")]
    pub operator_graph_permissions: Vec<String>,
}

impl Default for AzureSetup {
    fn default() -> Self {
        Self {
            tenant_id: default_tenant_id(),
            other_tenants: Vec::new(),
            applications: Vec::new(),
            storage_accounts: Vec::new(),
            unreachable_issuers: Vec::new(),
            clock_offset_seconds: 0,
            operator_graph_permissions: default_operator_graph_permissions(),
        }
    }
}

fn default_tenant_id() -> String {
    DEFAULT_TENANT_ID.to_owned()
}

fn default_operator_graph_permissions() -> Vec<String> {
    vec![APPLICATION_READ_WRITE_ALL.to_owned()]
}

/// Client id of the operator principal every tenant of the emulator has: the identity an
/// operator's `az login --service-principal` (or AZURE_CLIENT_ID/AZURE_CLIENT_SECRET) would be.
pub const OPERATOR_CLIENT_ID: &str = "0a0b0c0d-0000-4000-8000-00000000aa01";

/// Graph application permissions the emulator understands (Microsoft Graph's own names).
pub const APPLICATION_READ_WRITE_ALL: &str = "Application.ReadWrite.All";
pub const APPLICATION_READ_WRITE_OWNED_BY: &str = "Application.ReadWrite.OwnedBy";
pub const APPLICATION_READ_ALL: &str = "Application.Read.All";
const KNOWN_GRAPH_PERMISSIONS: [&str; 3] = [
    APPLICATION_READ_WRITE_ALL,
    APPLICATION_READ_WRITE_OWNED_BY,
    APPLICATION_READ_ALL,
];

/// An app registration (or user-assigned managed identity: both carry federated credentials).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplicationSetup {
    /// The application (client) id, a GUID.
    pub client_id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub federated_credentials: Vec<FederatedCredentialSetup>,
    /// Client ids of the principals owning this application (what
    /// `Application.ReadWrite.OwnedBy` lets them write).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FederatedCredentialSetup {
    pub name: String,
    /// Compared with the assertion's `iss` byte for byte: a trailing slash matters.
    pub issuer: String,
    /// `system:serviceaccount:NS:SA`, compared exactly (case-sensitive, no wildcards).
    pub subject: String,
    /// Entra allows exactly one value, normally `api://AzureADTokenExchange`.
    pub audiences: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StorageAccountSetup {
    pub name: String,
    #[serde(default)]
    pub containers: Vec<ContainerSetup>,
    #[serde(default)]
    pub role_assignments: Vec<RoleAssignmentSetup>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerSetup {
    pub name: String,
    /// Blob name → text content.
    #[serde(default)]
    pub blobs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleAssignmentSetup {
    /// `Storage Blob Data Reader`, `Storage Blob Data Contributor` or `Storage Blob Data Owner`.
    pub role: String,
    /// The application's (or managed identity's) client id, or its principal (object) id.
    pub principal: String,
    /// Absent: the whole account. Else a container name, or an ARM scope ending in
    /// `/blobServices/default/containers/NAME`.
    #[serde(default)]
    pub scope: Option<String>,
}

impl AzureSetup {
    /// Whether `tenant` is this setup's tenant (`Some(true)`), another existing tenant
    /// (`Some(false)`), or unknown to Entra (`None`).
    pub fn tenant(&self, tenant: &str) -> Option<bool> {
        if tenant.eq_ignore_ascii_case(&self.tenant_id) {
            Some(true)
        } else if self
            .other_tenants
            .iter()
            .any(|t| t.eq_ignore_ascii_case(tenant))
        {
            Some(false)
        } else {
            None
        }
    }

    /// Rejects what Entra or Azure RBAC would refuse to create.
    pub fn validate(&self) -> Result<()> {
        for permission in &self.operator_graph_permissions {
            if !KNOWN_GRAPH_PERMISSIONS.contains(&permission.as_str()) {
                bail!(
                    "unknown Graph permission {permission:?} (known: {})",
                    KNOWN_GRAPH_PERMISSIONS.join(", ")
                );
            }
        }
        for app in &self.applications {
            if app.federated_credentials.len() > MAX_FEDERATED_CREDENTIALS_PER_APP {
                bail!(
                    "application {} has {} federated identity credentials; Entra allows {MAX_FEDERATED_CREDENTIALS_PER_APP}",
                    app.client_id,
                    app.federated_credentials.len()
                );
            }
            for credential in &app.federated_credentials {
                if credential.audiences.len() != 1 {
                    bail!(
                        "federated credential {} of {} must have exactly one audience (Entra's limit), has {}",
                        credential.name,
                        app.client_id,
                        credential.audiences.len()
                    );
                }
                if !credential.issuer.starts_with("https://") {
                    bail!(
                        "federated credential {} of {}: Entra accepts only https issuers, not {:?}",
                        credential.name,
                        app.client_id,
                        credential.issuer
                    );
                }
                if credential.subject.contains('*') {
                    bail!(
                        "federated credential {} of {}: Entra subjects have no wildcards",
                        credential.name,
                        app.client_id
                    );
                }
            }
        }
        for account in &self.storage_accounts {
            for assignment in &account.role_assignments {
                if super::role_assignments::BlobRole::parse(&assignment.role).is_none() {
                    bail!(
                        "unknown role {:?} on storage account {} (known: Storage Blob Data Reader/Contributor/Owner)",
                        assignment.role,
                        account.name
                    );
                }
            }
        }
        Ok(())
    }

    /// Application `11111111-2222-3333-4444-555555555555` federated with
    /// `system:serviceaccount:default:aks-service-account` of `${ISSUER}`, reader of
    /// `mystorageaccount/mycontainer` (which holds `hello.txt`).
    pub fn seed() -> Self {
        serde_saphyr::from_str(SEED_YAML).expect("the Azure seed is valid")
    }
}

/// Client id of the seed's application.
pub const SEED_CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";

const SEED_YAML: &str = r#"
tenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47
applications:
  - clientId: 11111111-2222-3333-4444-555555555555
    displayName: aks-workload
    federatedCredentials:
      - name: aks-federated-credential
        issuer: ${ISSUER}
        subject: system:serviceaccount:default:aks-service-account
        audiences: [api://AzureADTokenExchange]
storageAccounts:
  - name: mystorageaccount
    containers:
      - name: mycontainer
        blobs: {hello.txt: hello from podiam}
    roleAssignments:
      - role: Storage Blob Data Reader
        principal: 11111111-2222-3333-4444-555555555555
        scope: mycontainer
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn federated_credentials_need_an_https_issuer() {
        let mut setup = AzureSetup::seed();
        setup.applications[0].federated_credentials[0].issuer =
            "https://oidc.example.com".to_owned();
        assert!(setup.validate().is_ok());
        setup.applications[0].federated_credentials[0].issuer =
            "http://oidc.example.com".to_owned();
        let err = setup.validate().unwrap_err().to_string();
        assert!(err.contains("only https issuers"), "{err}");
    }

    #[test]
    fn tenants_home_other_and_unknown() {
        let mut setup = AzureSetup::seed();
        setup.other_tenants = vec!["AAAAAAAA-bbbb-4ccc-8ddd-eeeeeeeeeeee".to_owned()];
        assert_eq!(setup.tenant(DEFAULT_TENANT_ID), Some(true));
        assert_eq!(
            setup.tenant("aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"),
            Some(false)
        );
        assert_eq!(setup.tenant("00000000-1111-4222-8333-444444444444"), None);
    }

    #[test]
    fn seed_parses_and_validates() {
        let seed = AzureSetup::seed();
        expanded_seed().validate().expect("valid");
        assert_eq!(seed.tenant_id, DEFAULT_TENANT_ID);
        assert_eq!(seed.applications[0].client_id, SEED_CLIENT_ID);
        assert_eq!(
            seed.applications[0].federated_credentials[0].audiences,
            [TOKEN_EXCHANGE_AUDIENCE]
        );
    }

    #[test]
    fn tenant_defaults_and_unknown_fields_fail() {
        let setup: AzureSetup = serde_saphyr::from_str("applications: []\n").expect("parses");
        assert_eq!(setup.tenant_id, DEFAULT_TENANT_ID);
        assert!(serde_saphyr::from_str::<AzureSetup>("aplications: []\n").is_err());
    }

    /// The seed as applied: `${ISSUER}` expanded to an https URL.
    fn expanded_seed() -> AzureSetup {
        let mut setup = AzureSetup::seed();
        setup.applications[0].federated_credentials[0].issuer =
            "https://127.0.0.1:1/id/X".to_owned();
        setup
    }

    #[test]
    fn two_audiences_and_unknown_roles_are_refused() {
        assert!(expanded_seed().validate().is_ok());
        let mut setup = expanded_seed();
        setup.applications[0].federated_credentials[0]
            .audiences
            .push("other".to_owned());
        assert!(setup.validate().is_err());
        let mut setup = expanded_seed();
        setup.storage_accounts[0].role_assignments[0].role = "Reader".to_owned();
        assert!(setup.validate().is_err());
    }
}
