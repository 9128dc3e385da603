//! AssumeRoleWithWebIdentity then GetCallerIdentity: the exchange an IRSA pod's SDK performs.

use aws_credential_types::Credentials;
use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};

use aws_sdk_sts::config::http::HttpResponse;

use super::{CloudError, sdk_retry};

#[derive(Debug, Clone)]
pub struct AssumedRole {
    /// `arn:aws:sts::<acct>:assumed-role/<role>/<session>` as GetCallerIdentity reports it.
    pub caller_arn: String,
    pub account: String,
    /// Credentials for follow-up calls (`--can`); Debug output of this type redacts secrets.
    pub credentials: Credentials,
}

pub async fn assume_role_with_web_identity(
    config: &aws_config::SdkConfig,
    role_arn: &str,
    token: &str,
    session_name: &str,
) -> Result<AssumedRole, CloudError> {
    let sts = aws_sdk_sts::Client::new(config);
    let out = sts
        .assume_role_with_web_identity()
        .role_arn(role_arn)
        .role_session_name(session_name)
        .web_identity_token(token)
        .send()
        .await
        .map_err(classify)?;
    let c = out.credentials().ok_or_else(|| CloudError::Rejected {
        code: "NoCredentials".into(),
        message: "STS answered without credentials".into(),
    })?;
    let credentials = Credentials::new(
        c.access_key_id(),
        c.secret_access_key(),
        Some(c.session_token().to_string()),
        std::time::SystemTime::try_from(*c.expiration()).ok(),
        "podiam-web-identity",
    );
    caller_identity(config, credentials).await
}

/// GetCallerIdentity with `credentials`: the principal AWS really sees for them.
pub async fn caller_identity(
    config: &aws_config::SdkConfig,
    credentials: Credentials,
) -> Result<AssumedRole, CloudError> {
    let sts_as_role = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(config)
            .credentials_provider(credentials.clone())
            .build(),
    );
    let me = sts_as_role
        .get_caller_identity()
        .send()
        .await
        .map_err(classify)?;
    Ok(AssumedRole {
        caller_arn: me.arn().unwrap_or_default().to_string(),
        account: me.account().unwrap_or_default().to_string(),
        credentials,
    })
}

/// Service errors keep AWS's code and message; everything else means no answer.
pub fn classify<E>(err: SdkError<E, HttpResponse>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match &err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown");
            let message = service.err().message().unwrap_or_default();
            let status = service.raw().status().as_u16();
            // The SDK's standard retry already made its attempts: a throttle or a 5xx is the
            // service being unavailable now, not a verdict on the configuration.
            if sdk_retry::retryable(status, code) {
                return CloudError::Unreachable(sdk_retry::exhausted(
                    "AWS",
                    status,
                    code,
                    message,
                    sdk_retry::MAX_ATTEMPTS,
                ));
            }
            CloudError::Rejected {
                code: code.to_string(),
                message: message.to_string(),
            }
        }
        _ => CloudError::Unreachable(error_chain(&err)),
    }
}

/// "dispatch failure: … : Connection refused": each cause's Display once, no Debug dumps.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// The role name inside an assumed-role or role ARN.
pub fn role_name(arn: &str) -> Option<&str> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let mut parts = resource.split('/');
    match parts.next()? {
        "assumed-role" => parts.next(),
        "role" => resource.rsplit('/').next(),
        _ => None,
    }
}

/// The account id inside an ARN.
pub fn account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_from_arns() {
        assert_eq!(
            role_name("arn:aws:sts::123456789012:assumed-role/my-pod-role/s1"),
            Some("my-pod-role")
        );
        assert_eq!(
            role_name("arn:aws:iam::123456789012:role/path/to/my-pod-role"),
            Some("my-pod-role")
        );
        assert_eq!(role_name("garbage"), None);
        assert_eq!(
            account("arn:aws:iam::123456789012:role/x"),
            Some("123456789012")
        );
    }
}
