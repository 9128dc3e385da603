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
