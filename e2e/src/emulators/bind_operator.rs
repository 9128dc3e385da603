//! The operator `bind` runs as in the harness: an IAM user of its own whose calls the gate
//! authorizes against exactly the policy podiam ships (`deploy/iam/podiam-bind-policy.json`,
//! compiled in from the repository, not copied), or that policy minus some actions for a
//! scenario proving that each is needed (`setup.aws.bindPolicyWithout`).
//!
//! The backend sees the user as an administrator (moto enforces IAM, but without the
//! `iam:PassedToService` condition EKS needs, and with resource `*` for IAM actions): the gate
//! is the only judge of this key.

use anyhow::{Context, Result, bail};
use aws_sdk_iam::error::ProvideErrorMetadata;
use serde_json::Value;

use super::credentials::AdminCredentials;
use super::issued_secrets::{SecretKind, record};

/// The IAM policy podiam ships for `bind`.
pub const SHIPPED_BIND_POLICY: &str = include_str!("../../../deploy/iam/podiam-bind-policy.json");

/// The IAM user `bind` runs as.
pub const BIND_OPERATOR_USER: &str = "podiam-e2e-bind-operator";

/// The shipped policy without `actions` (removed from every statement; a statement left with
/// none is dropped). An action the policy does not grant is an error: the scenario would prove
/// nothing.
pub fn shipped_policy_without(actions: &[String]) -> Result<String> {
    let mut policy: Value =
        serde_json::from_str(SHIPPED_BIND_POLICY).context("parsing the shipped bind policy")?;
    if actions.is_empty() {
        return Ok(SHIPPED_BIND_POLICY.to_owned());
    }
    let statements = policy
        .get_mut("Statement")
        .and_then(Value::as_array_mut)
        .context("the shipped bind policy has no Statement list")?;
    for action in actions {
        let mut found = false;
        for statement in statements.iter_mut() {
            let listed = match statement.get("Action") {
                Some(Value::String(one)) => vec![one.clone()],
                Some(Value::Array(many)) => many
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => Vec::new(),
            };
            if listed.iter().any(|a| a == action) {
                found = true;
                let kept: Vec<Value> = listed
                    .into_iter()
                    .filter(|a| a != action)
                    .map(Value::String)
                    .collect();
                statement["Action"] = Value::Array(kept);
            }
        }
        if !found {
            bail!(
                "bindPolicyWithout: {action} is not an action of deploy/iam/podiam-bind-policy.json"
            );
        }
    }
    statements.retain(|s| s["Action"].as_array().is_none_or(|a| !a.is_empty()));
    Ok(policy.to_string())
}

/// Creates (or reuses) the operator's user in the backend at `backend_url`, allowed everything
/// there, and gives it a fresh access key (older keys of a reused user are deleted first).
pub async fn provision(backend_url: &str, admin: &AdminCredentials) -> Result<AdminCredentials> {
    let iam = admin.iam_client(backend_url);
    match iam.create_user().user_name(BIND_OPERATOR_USER).send().await {
        Ok(_) => {}
        // An external backend kept from an earlier run.
        Err(err) if err.code() == Some("EntityAlreadyExists") => {}
        Err(err) => return Err(err).context("creating the bind operator's IAM user"),
    }
    let allow_all =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    iam.put_user_policy()
        .user_name(BIND_OPERATOR_USER)
        .policy_name("the-aws-gate-decides")
        .policy_document(allow_all)
        .send()
        .await
        .context("allowing the bind operator everything in the backend")?;
    let old = iam
        .list_access_keys()
        .user_name(BIND_OPERATOR_USER)
        .send()
        .await
        .context("listing the bind operator's access keys")?;
    for key in old.access_key_metadata() {
        if let Some(id) = key.access_key_id() {
            iam.delete_access_key()
                .user_name(BIND_OPERATOR_USER)
                .access_key_id(id)
                .send()
                .await
                .context("deleting an old access key of the bind operator")?;
        }
    }
    let created = iam
        .create_access_key()
        .user_name(BIND_OPERATOR_USER)
        .send()
        .await
        .context("creating the bind operator's access key")?;
    let key = created
        .access_key()
        .context("CreateAccessKey returned no key")?;
    record(SecretKind::AwsAccessKeyId, key.access_key_id());
    record(SecretKind::AwsSecretAccessKey, key.secret_access_key());
    Ok(AdminCredentials {
        access_key_id: key.access_key_id().to_owned(),
        secret_access_key: key.secret_access_key().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_actions_keeps_the_rest_and_refuses_unknown_ones() {
        let full = shipped_policy_without(&[]).expect("shipped");
        assert_eq!(full, SHIPPED_BIND_POLICY);
        let reduced =
            shipped_policy_without(&["iam:UpdateAssumeRolePolicy".to_owned()]).expect("reduced");
        assert!(!reduced.contains("iam:UpdateAssumeRolePolicy"));
        assert!(reduced.contains("iam:CreateRole"));
        // A statement whose only action goes is dropped.
        let no_pass = shipped_policy_without(&["iam:PassRole".to_owned()]).expect("reduced");
        assert!(!no_pass.contains("PassRoleToPodIdentity"));
        assert!(shipped_policy_without(&["iam:CreateUser".to_owned()]).is_err());
    }
}
