//! Which predefined roles grant the permissions the emulators enforce (a small, explicit
//! subset of Google's role catalogue).

use super::principal::Principal;
use super::setup::IamBindingSetup;

/// `iam.serviceAccounts.getAccessToken` / `getOpenIdToken` on a service account.
const TOKEN_MINTING_ROLES: &[&str] = &[
    "roles/iam.workloadIdentityUser",
    "roles/iam.serviceAccountTokenCreator",
];

/// A GCS permission on a bucket's objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoragePermission {
    List,
    Get,
    Create,
    Delete,
}

impl StoragePermission {
    /// Google's permission name, as in its error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::List => "storage.objects.list",
            Self::Get => "storage.objects.get",
            Self::Create => "storage.objects.create",
            Self::Delete => "storage.objects.delete",
        }
    }

    fn granted_by(self, role: &str) -> bool {
        let roles: &[&str] = match self {
            Self::List | Self::Get => &[
                "roles/storage.objectViewer",
                "roles/storage.objectUser",
                "roles/storage.objectAdmin",
                "roles/storage.admin",
            ],
            Self::Create => &[
                "roles/storage.objectCreator",
                "roles/storage.objectUser",
                "roles/storage.objectAdmin",
                "roles/storage.admin",
            ],
            Self::Delete => &[
                "roles/storage.objectUser",
                "roles/storage.objectAdmin",
                "roles/storage.admin",
            ],
        };
        roles.contains(&role)
    }
}

/// Whether `bindings` (a service account's policy) let `principal` mint its tokens.
pub fn may_mint_tokens(bindings: &[IamBindingSetup], principal: &Principal) -> bool {
    bindings.iter().any(|binding| {
        TOKEN_MINTING_ROLES.contains(&binding.role.as_str())
            && binding.members.iter().any(|m| principal.is_named_by(m))
    })
}

/// Whether `bindings` (a bucket's policy) grant `permission` to `principal`.
pub fn has_storage_permission(
    bindings: &[IamBindingSetup],
    principal: &Principal,
    permission: StoragePermission,
) -> bool {
    bindings.iter().any(|binding| {
        permission.granted_by(&binding.role)
            && binding.members.iter().any(|m| principal.is_named_by(m))
    })
}

/// A permission on a service account as a resource (its IAM policy), granted on the project
/// or on the account itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceAccountPermission {
    GetIamPolicy,
    SetIamPolicy,
}

impl ServiceAccountPermission {
    /// Google's permission name, as in its error messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::GetIamPolicy => "iam.serviceAccounts.getIamPolicy",
            Self::SetIamPolicy => "iam.serviceAccounts.setIamPolicy",
        }
    }

    fn granted_by(self, role: &str) -> bool {
        // roles/editor may read policies but never change them.
        let roles: &[&str] = match self {
            Self::GetIamPolicy => &[
                "roles/owner",
                "roles/editor",
                "roles/iam.serviceAccountAdmin",
                "roles/iam.securityAdmin",
                "roles/iam.securityReviewer",
            ],
            Self::SetIamPolicy => &[
                "roles/owner",
                "roles/iam.serviceAccountAdmin",
                "roles/iam.securityAdmin",
            ],
        };
        roles.contains(&role)
    }
}

/// Whether the project's or the account's own bindings grant `permission` to `principal`.
pub fn has_service_account_permission(
    project_bindings: &[IamBindingSetup],
    account_bindings: &[IamBindingSetup],
    principal: &Principal,
    permission: ServiceAccountPermission,
) -> bool {
    project_bindings
        .iter()
        .chain(account_bindings)
        .any(|binding| {
            permission.granted_by(&binding.role)
                && binding.members.iter().any(|m| {
                    // allUsers never administers anything.
                    m != "allUsers" && m != "allAuthenticatedUsers" && principal.is_named_by(m)
                })
        })
}
