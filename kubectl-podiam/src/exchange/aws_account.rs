//! Operator credentials for the account a role lives in. The trust diagnosis must read the
//! role and the OIDC providers of the role's own account: with credentials for another account
//! it would read a different role of the same name (issue 11, item 4).
//!
//! Credentials for that account come from the SDK's own chain: the operator's default
//! credentials when they are for that account, else the first profile of the shared config file
//! whose `role_arn` is in that account (aws-config then assumes it, with its `source_profile`
//! or `credential_source`). Otherwise the caller gets what is missing, to put in a skip.

use super::aws_config::AwsTarget;

/// What [`for_account`] found.
pub enum AccountCredentials {
    /// `how` says whose credentials, for messages.
    Ready {
        config: Box<aws_config::SdkConfig>,
        how: String,
    },
    /// Why there are none, and how to give them.
    Missing(String),
}

/// Credentials for IAM reads in `account`.
pub async fn for_account(target: &AwsTarget, account: &str) -> AccountCredentials {
    let Some(operator) = target.operator().await else {
        return AccountCredentials::Missing(format!(
            "no AWS credentials here to read IAM in account {account} ({})",
            how_to_give(account)
        ));
    };
    let caller = match caller_account(&operator).await {
        Ok(caller) => caller,
        Err(e) => {
            return AccountCredentials::Missing(format!(
                "could not tell which account your AWS credentials are for (GetCallerIdentity: {e}), so IAM in account {account} is not read"
            ));
        }
    };
    if caller == account {
        return AccountCredentials::Ready {
            config: Box::new(operator),
            how: format!("your AWS credentials (account {account})"),
        };
    }
    let Some(profile) = shared_config_text()
        .as_deref()
        .and_then(|text| profile_for_account(text, account))
    else {
        return AccountCredentials::Missing(format!(
            "the role is in account {account} but your AWS credentials are for account {caller} ({})",
            how_to_give(account)
        ));
    };
    let Some(config) = target.operator_profile(&profile).await else {
        return AccountCredentials::Missing(format!(
            "profile {profile} (role_arn in account {account}) yields no credentials ({})",
            how_to_give(account)
        ));
    };
    match caller_account(&config).await {
        Ok(assumed) if assumed == account => AccountCredentials::Ready {
            config: Box::new(config),
            how: format!("profile {profile} (account {account})"),
        },
        Ok(other) => AccountCredentials::Missing(format!(
            "profile {profile} gives credentials for account {other}, not {account}"
        )),
        Err(e) => AccountCredentials::Missing(format!(
            "profile {profile} (role_arn in account {account}) did not work: {e}"
        )),
    }
}

fn how_to_give(account: &str) -> String {
    format!(
        "run with credentials for account {account} (AWS_PROFILE=…), or add to ~/.aws/config (or AWS_CONFIG_FILE) a profile with role_arn = arn:aws:iam::{account}:role/<A ROLE THAT MAY READ IAM> and source_profile = <YOUR PROFILE>: podiam uses the first profile whose role_arn is in account {account}"
    )
}

async fn caller_account(config: &aws_config::SdkConfig) -> Result<String, String> {
    let sts = aws_sdk_sts::Client::new(config);
    let me = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| super::aws_sts::classify(e).to_string())?;
    Ok(me.account().unwrap_or_default().to_string())
}

/// The shared config file the SDK reads: `AWS_CONFIG_FILE`, else `~/.aws/config`.
fn shared_config_text() -> Option<String> {
    let path = match std::env::var_os("AWS_CONFIG_FILE") {
        Some(path) => std::path::PathBuf::from(path),
        None => std::path::PathBuf::from(std::env::var_os("HOME")?).join(".aws/config"),
    };
    std::fs::read_to_string(path).ok()
}

/// The first profile (in file order) whose `role_arn` is a role in `account`.
pub fn profile_for_account(config_text: &str, account: &str) -> Option<String> {
    let wanted = format!(":iam::{account}:role/");
    let mut section: Option<String> = None;
    for line in config_text.lines() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let header = header.trim();
            // `[default]` and `[profile NAME]`; other sections (sso-session, services) are not
            // profiles.
            section = if header == "default" {
                Some("default".to_string())
            } else {
                header
                    .strip_prefix("profile")
                    .filter(|rest| rest.starts_with(char::is_whitespace))
                    .map(|rest| rest.trim().to_string())
            };
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        if key.trim() == "role_arn"
            && value.trim().starts_with("arn:")
            && value.contains(&wanted)
            && let Some(name) = &section
        {
            return Some(name.clone());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
[default]
region = us-east-1

[sso-session corp]
role_arn = arn:aws:iam::222222222222:role/not-a-profile

[profile dev]
role_arn = arn:aws:iam::333333333333:role/reader
source_profile = default

[profile prod-reader]
role_arn=arn:aws:iam::222222222222:role/iam-reader
source_profile = default

[profile prod-admin]
role_arn = arn:aws:iam::222222222222:role/admin
";

    #[test]
    fn finds_the_first_profile_in_the_account() {
        assert_eq!(
            profile_for_account(CONFIG, "222222222222").as_deref(),
            Some("prod-reader")
        );
        assert_eq!(
            profile_for_account(CONFIG, "333333333333").as_deref(),
            Some("dev")
        );
        assert_eq!(profile_for_account(CONFIG, "444444444444"), None);
        // An account id that is a substring of another is not a match.
        assert_eq!(profile_for_account(CONFIG, "22222222222"), None);
    }

    #[test]
    fn the_missing_message_names_the_account_and_how() {
        let how = how_to_give("222222222222");
        assert!(how.contains("arn:aws:iam::222222222222:role/"), "{how}");
        assert!(how.contains("AWS_PROFILE"), "{how}");
        assert!(how.contains("source_profile"), "{how}");
    }
}
