//! Who owns an access key, asked of LocalStack: the gate needs it to authorize S3 in front of
//! a backend that enforces nothing, and for keys it did not hand out itself (a role session
//! minted through the node's IMDS, a user's key created by `CreateAccessKey`).
//!
//! LocalStack does not check signatures, so `GetCallerIdentity` signed with the key id and
//! any secret names the key's owner; a key it never issued names the root of account
//! 000000000000. Only answers for this account are kept (cached: keys never change owner).

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_sts::config::timeout::TimeoutConfig;

use super::hop_budgets;

/// Sent as the secret: LocalStack reads only the key id.
const UNCHECKED_SECRET: &str = "not-checked-by-localstack";

pub struct LocalStackCallers {
    url: String,
    account_id: String,
    known: Mutex<HashMap<String, String>>,
}

impl LocalStackCallers {
    pub fn new(url: &str, account_id: &str) -> Self {
        Self {
            url: url.to_owned(),
            account_id: account_id.to_owned(),
            known: Mutex::new(HashMap::new()),
        }
    }

    /// The owner's ARN, or `None` when LocalStack does not know the key in this account.
    pub async fn caller_arn(&self, access_key_id: &str) -> Result<Option<String>, String> {
        if let Some(arn) = self.lock().get(access_key_id) {
            return Ok(Some(arn.clone()));
        }
        let credentials = aws_credential_types::Credentials::new(
            access_key_id,
            UNCHECKED_SECRET,
            None,
            None,
            "podiam-gate-key-lookup",
        );
        let config = aws_sdk_sts::Config::builder()
            .behavior_version(aws_sdk_sts::config::BehaviorVersion::latest())
            .region(aws_sdk_sts::config::Region::new(super::REGION))
            .endpoint_url(&self.url)
            .credentials_provider(credentials)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(hop_budgets::CONNECT)
                    .operation_timeout(hop_budgets::MOTO_CALL)
                    .build(),
            )
            .build();
        let sts = aws_sdk_sts::Client::from_conf(config);
        let identity =
            sts.get_caller_identity().send().await.map_err(|e| {
                format!("LocalStack GetCallerIdentity for a caller's key failed: {e}")
            })?;
        let in_account = identity.account() == Some(self.account_id.as_str());
        match identity.arn() {
            Some(arn) if in_account => {
                self.lock().insert(access_key_id.to_owned(), arn.to_owned());
                Ok(Some(arn.to_owned()))
            }
            _ => Ok(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `ROLE` of `arn:aws:sts::ACCT:assumed-role/ROLE/SESSION` or of a role ARN
/// `arn:aws:iam::ACCT:role/PATH/ROLE`.
pub fn role_name_of(arn: &str) -> Option<&str> {
    let resource = arn.splitn(6, ':').nth(5)?;
    if let Some(rest) = resource.strip_prefix("assumed-role/") {
        return rest.split('/').next().filter(|r| !r.is_empty());
    }
    resource
        .strip_prefix("role/")
        .and_then(|rest| rest.rsplit('/').next())
        .filter(|r| !r.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_role_names() {
        assert_eq!(
            role_name_of("arn:aws:sts::123456789012:assumed-role/my-pod-role/s1"),
            Some("my-pod-role")
        );
        assert_eq!(
            role_name_of("arn:aws:iam::123456789012:role/team/my-pod-role"),
            Some("my-pod-role")
        );
        assert_eq!(role_name_of("arn:aws:iam::123456789012:user/admin"), None);
        assert_eq!(role_name_of("arn:aws:iam::123456789012:root"), None);
    }
}
