//! Which IAM principal each access key the gate knows belongs to: the admin's key, and every
//! session key the gate handed out (AssumeRoleWithWebIdentity, EKS Auth, AssumeRole). The gate
//! reads the caller of a signed `sts:AssumeRole` from the key id in its SigV4 `Authorization`
//! header (the `Credential=AKID/…` scope) and looks it up here. Secrets are never stored.

use std::collections::HashMap;
use std::sync::Mutex;

/// An access key's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOwner {
    /// An IAM user: its ARN.
    User { arn: String },
    /// A role session: the role's ARN (with its path) and the session's assumed-role ARN.
    RoleSession {
        role_arn: String,
        session_arn: String,
    },
}

impl KeyOwner {
    /// The ARN AWS names the caller by in an AccessDenied message.
    pub fn caller_arn(&self) -> &str {
        match self {
            KeyOwner::User { arn } => arn,
            KeyOwner::RoleSession { session_arn, .. } => session_arn,
        }
    }
}

#[derive(Default)]
pub struct SessionDirectory {
    keys: Mutex<HashMap<String, KeyOwner>>,
}

impl SessionDirectory {
    pub fn record(&self, access_key_id: &str, owner: KeyOwner) {
        self.lock().insert(access_key_id.to_owned(), owner);
    }

    pub fn owner(&self, access_key_id: &str) -> Option<KeyOwner> {
        self.lock().get(access_key_id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, KeyOwner>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The access key id of a SigV4 `Authorization` header (`… Credential=AKID/DATE/…`).
pub fn signing_key_id(authorization: &str) -> Option<&str> {
    let scope = authorization.split("Credential=").nth(1)?;
    scope.split('/').next().filter(|k| !k.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_key_id_of_a_sigv4_header() {
        let header = "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20250101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=abc";
        assert_eq!(signing_key_id(header), Some("ASIAEXAMPLE"));
        assert_eq!(signing_key_id("Bearer x"), None);
    }
}
