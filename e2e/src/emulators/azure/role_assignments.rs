//! Azure RBAC for blob data, as far as the emulator needs it: the three built-in
//! `Storage Blob Data *` roles, assigned on an account or a container.

use super::setup::RoleAssignmentSetup;

/// A built-in data-plane role. Reader may list and read; Contributor and Owner may also write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobRole {
    Reader,
    Contributor,
    Owner,
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobAction {
    /// `Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read` (list and get).
    Read,
    /// `.../blobs/write`.
    Write,
}

impl BlobRole {
    /// Role names as Azure spells them (case-insensitive, as `az role assignment` accepts).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "storage blob data reader" => Some(Self::Reader),
            "storage blob data contributor" => Some(Self::Contributor),
            "storage blob data owner" => Some(Self::Owner),
            _ => None,
        }
    }

    fn allows(self, action: BlobAction) -> bool {
        match action {
            BlobAction::Read => true,
            BlobAction::Write => matches!(self, Self::Contributor | Self::Owner),
        }
    }
}

/// The container an assignment's scope names, or `None` for the whole account.
fn scoped_container(scope: Option<&str>) -> Option<&str> {
    let scope = scope?.trim_end_matches('/');
    if scope.is_empty() {
        return None;
    }
    match scope.rsplit_once("/containers/") {
        Some((_, container)) => Some(container),
        // An ARM scope naming only the account (…/storageAccounts/NAME) covers all of it.
        None if scope.contains("/storageAccounts/") => None,
        None => Some(scope),
    }
}

/// Whether any of `assignments` lets `principal` do `action` in `container`.
pub fn is_allowed(
    assignments: &[RoleAssignmentSetup],
    principal: &str,
    container: &str,
    action: BlobAction,
) -> bool {
    assignments.iter().any(|assignment| {
        assignment.principal.eq_ignore_ascii_case(principal)
            && BlobRole::parse(&assignment.role).is_some_and(|role| role.allows(action))
            && scoped_container(assignment.scope.as_deref()).is_none_or(|c| c == container)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(role: &str, scope: Option<&str>) -> RoleAssignmentSetup {
        RoleAssignmentSetup {
            role: role.to_owned(),
            principal: "app".to_owned(),
            scope: scope.map(str::to_owned),
        }
    }

    #[test]
    fn reader_reads_only_its_scope() {
        let reader = [assignment("Storage Blob Data Reader", Some("mycontainer"))];
        assert!(is_allowed(&reader, "app", "mycontainer", BlobAction::Read));
        assert!(!is_allowed(&reader, "app", "other", BlobAction::Read));
        assert!(!is_allowed(
            &reader,
            "app",
            "mycontainer",
            BlobAction::Write
        ));
        assert!(!is_allowed(
            &reader,
            "someone-else",
            "mycontainer",
            BlobAction::Read
        ));
    }

    #[test]
    fn account_and_arm_scopes() {
        let account = [assignment("Storage Blob Data Contributor", None)];
        assert!(is_allowed(&account, "app", "any", BlobAction::Write));
        let arm = [assignment(
            "Storage Blob Data Owner",
            Some(
                "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/a/blobServices/default/containers/c",
            ),
        )];
        assert!(is_allowed(&arm, "app", "c", BlobAction::Write));
        assert!(!is_allowed(&arm, "app", "d", BlobAction::Read));
        let arm_account = [assignment(
            "Storage Blob Data Reader",
            Some("/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/a"),
        )];
        assert!(is_allowed(&arm_account, "app", "d", BlobAction::Read));
        // A generic role is not a data role.
        assert!(!is_allowed(
            &[assignment("Reader", None)],
            "app",
            "c",
            BlobAction::Read
        ));
    }
}
