//! `sts:AssumeRole` with credentials in hand: one hop of a role chain (`--assume-role`).

use aws_credential_types::Credentials;

use super::CloudError;
use super::aws_sts::{AssumedRole, account, classify};

/// Assumes `role_arn` as `credentials`; the answer's assumed-role ARN names the new session.
pub async fn assume_role(
    config: &aws_config::SdkConfig,
    credentials: Credentials,
    role_arn: &str,
    session_name: &str,
) -> Result<AssumedRole, CloudError> {
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(config)
            .credentials_provider(credentials)
            .build(),
    );
    let out = sts
        .assume_role()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .send()
        .await
        .map_err(classify)?;
    let incomplete = |what: &str| CloudError::Rejected {
        code: "IncompleteAnswer".into(),
        message: format!("STS answered AssumeRole without {what}"),
    };
    let c = out.credentials().ok_or_else(|| incomplete("credentials"))?;
    let caller_arn = out
        .assumed_role_user()
        .map(|u| u.arn().to_string())
        .ok_or_else(|| incomplete("AssumedRoleUser"))?;
    Ok(AssumedRole {
        account: account(&caller_arn).unwrap_or_default().to_string(),
        caller_arn,
        credentials: Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            std::time::SystemTime::try_from(*c.expiration()).ok(),
            "podiam-assume-role",
        ),
    })
}
