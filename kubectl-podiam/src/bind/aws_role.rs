//! The IAM side of an AWS binding: the role (created with `--create-role`), one trust
//! statement the mechanism needs, and attached managed policies. For IRSA the statement is
//! eksctl's (`create iamserviceaccount`): exactly `system:serviceaccount:NS:SA` with the
//! audience, through the account's IAM OIDC provider for the cluster's issuer; Pod Identity
//! brings its own ([`WantedTrust`]).
//!
//! An existing role keeps its other statements (other ServiceAccounts may depend on them); the
//! binding's statement is added only when the current ones do not already grant it.

use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use super::plan::{Change, ChangeStatus, Operation, System};
use crate::error::{Error, Result};
use crate::exchange::CloudError;
use crate::exchange::aws_iam;
use crate::exchange::aws_sts::classify;

/// What the user asked for with `--aws-role`.
#[derive(Debug, Clone)]
pub struct RoleRequest {
    /// A role name, or an ARN (`arn:aws:iam::ACCOUNT:role/PATH/NAME`).
    pub role: String,
    pub create_role: bool,
    pub policy_arns: Vec<String>,
    pub audience: String,
}

/// One IAM call of a binding.
#[derive(Debug, Clone, PartialEq)]
pub enum IamOperation {
    CreateRole { name: String, trust_policy: Value },
    UpdateTrustPolicy { name: String, trust_policy: Value },
    AttachRolePolicy { role: String, policy_arn: String },
}

impl IamOperation {
    pub fn undo_hint(&self) -> String {
        match self {
            IamOperation::CreateRole { name, .. } => {
                format!("aws iam delete-role --role-name {name}")
            }
            IamOperation::UpdateTrustPolicy { name, .. } => format!(
                "restore the previous trust policy of {name} (shown as `before` in `bind --dry-run=client -o json`)"
            ),
            IamOperation::AttachRolePolicy { role, policy_arn } => {
                format!("aws iam detach-role-policy --role-name {role} --policy-arn {policy_arn}")
            }
        }
    }
}

/// The role as resolved against the account.
#[derive(Debug, Clone)]
pub struct ResolvedRole {
    pub name: String,
    pub arn: String,
}

/// `https://oidc.eks…/id/X` → `oidc.eks…/id/X` (how IAM names the provider and condition keys).
pub fn issuer_host_path(issuer: &str) -> &str {
    issuer.trim_start_matches("https://").trim_end_matches('/')
}

/// The trust statement eksctl writes for one ServiceAccount.
pub fn irsa_statement(provider_arn: &str, host_path: &str, subject: &str, audience: &str) -> Value {
    let operator = if subject.contains('*') {
        "StringLike"
    } else {
        "StringEquals"
    };
    json!({
        "Effect": "Allow",
        "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {operator: {
            format!("{host_path}:sub"): subject,
            format!("{host_path}:aud"): audience,
        }}
    })
}

/// Does `statement` already allow exactly this subject and audience through this provider?
fn grants(
    statement: &Value,
    provider_arn: &str,
    host_path: &str,
    subject: &str,
    audience: &str,
) -> bool {
    let listed = |v: Option<&Value>, wanted: &str| match v {
        Some(Value::String(s)) => s == wanted,
        Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(wanted)),
        _ => false,
    };
    let only = |v: Option<&Value>, wanted: &str| match v {
        Some(Value::String(s)) => s == wanted,
        Some(Value::Array(items)) => items.len() == 1 && items[0].as_str() == Some(wanted),
        _ => false,
    };
    let operator = if subject.contains('*') {
        "StringLike"
    } else {
        "StringEquals"
    };
    let condition = statement.pointer(&format!("/Condition/{operator}"));
    statement.get("Effect").and_then(Value::as_str) == Some("Allow")
        && listed(statement.get("Action"), "sts:AssumeRoleWithWebIdentity")
        && listed(statement.pointer("/Principal/Federated"), provider_arn)
        && only(
            condition.and_then(|c| c.get(format!("{host_path}:sub"))),
            subject,
        )
        && listed(
            condition.and_then(|c| c.get(format!("{host_path}:aud"))),
            audience,
        )
}

/// Whether a role's current trust statements already grant what a binding needs.
pub type TrustCheck = Box<dyn Fn(&[Value]) -> bool + Send + Sync>;

/// The trust a binding needs in its role.
pub struct WantedTrust {
    /// The statement added when the current ones do not grant it.
    pub statement: Value,
    /// Whether the role's current statements already grant it.
    pub granted_by: TrustCheck,
    /// Who is trusted, for the plan: `system:serviceaccount:NS:SA (aud X) through …`.
    pub trusted: String,
}

pub fn statements(policy: &Value) -> Vec<Value> {
    match policy.get("Statement") {
        Some(Value::Array(items)) => items.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

pub(super) fn cloud_error(what: &str, e: CloudError) -> Error {
    match e {
        CloudError::Unreachable(m) => Error::Cloud(format!("{what}: unreachable: {m}")),
        CloudError::Rejected { code, message } => {
            Error::Cloud(format!("{what}: {code}: {message}"))
        }
    }
}

/// The account the operator's credentials belong to (for a role given by name).
async fn caller_account(config: &aws_config::SdkConfig) -> Result<String> {
    let identity = aws_sdk_sts::Client::new(config)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| {
            cloud_error(
                "sts:GetCallerIdentity with your AWS credentials",
                classify(e),
            )
        })?;
    identity
        .account()
        .map(str::to_owned)
        .ok_or_else(|| Error::Cloud("sts:GetCallerIdentity returned no account".into()))
}

/// The role's account and name: from its ARN, or the operator's account for a bare name. IAM
/// is read and changed in the operator's account, so an ARN of another account is refused
/// (else a same-named role of the operator's account would be changed in its place).
pub async fn account_and_name(
    config: &aws_config::SdkConfig,
    request: &RoleRequest,
) -> Result<(String, String)> {
    Ok(match request.role.strip_prefix("arn:") {
        Some(_) => {
            let account = crate::exchange::aws_sts::account(&request.role)
                .filter(|a| !a.is_empty())
                .ok_or_else(|| {
                    Error::Usage(format!("--aws-role {}: not a role ARN", request.role))
                })?
                .to_owned();
            let name = crate::exchange::aws_sts::role_name(&request.role)
                .filter(|n| !n.is_empty() && request.role.contains(":role/"))
                .ok_or_else(|| {
                    Error::Usage(format!("--aws-role {}: not a role ARN", request.role))
                })?
                .to_owned();
            let operator = caller_account(config).await?;
            if operator != account {
                return Err(Error::Refused(format!(
                    "--aws-role {} is in account {account}, but your AWS credentials are for account {operator}, where bind would read and change IAM: run it with credentials of account {account}",
                    request.role
                )));
            }
            (account, name)
        }
        None => (caller_account(config).await?, request.role.clone()),
    })
}

/// Plans the IAM changes of an IRSA binding, refusing when the issuer is not registered with
/// IAM.
pub async fn plan(
    config: &aws_config::SdkConfig,
    request: &RoleRequest,
    issuer: &str,
    subject: &str,
) -> Result<(ResolvedRole, Vec<Change>)> {
    let (account, name) = account_and_name(config, request).await?;
    let host_path = issuer_host_path(issuer);
    let provider_arn = format!("arn:aws:iam::{account}:oidc-provider/{host_path}");

    let providers = aws_iam::oidc_providers(config)
        .await
        .map_err(|e| cloud_error("iam:ListOpenIDConnectProviders", e))?;
    match providers.iter().find(|p| p.url == host_path) {
        None => {
            return Err(Error::Refused(format!(
                "the cluster's issuer {issuer} is not registered as an IAM OIDC provider in account {account}, so no role can trust its tokens.\n\
                 Register it first:\n  aws iam create-open-id-connect-provider --url {issuer} --client-id-list {aud}\n\
                 (on EKS: eksctl utils associate-iam-oidc-provider --cluster CLUSTER --approve)",
                aud = request.audience
            )));
        }
        Some(p) if !p.client_ids.iter().any(|c| c == &request.audience) => {
            return Err(Error::Refused(format!(
                "the IAM OIDC provider for {issuer} does not list the audience {aud} (it lists {listed}).\n\
                 Add it first:\n  aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn {provider_arn} --client-id {aud}",
                aud = request.audience,
                listed = p.client_ids.join(", ")
            )));
        }
        Some(_) => {}
    }

    let statement = irsa_statement(&provider_arn, host_path, subject, &request.audience);
    let (wanted_provider, wanted_host, wanted_subject, audience) = (
        provider_arn.clone(),
        host_path.to_owned(),
        subject.to_owned(),
        request.audience.clone(),
    );
    let wanted = WantedTrust {
        statement,
        granted_by: Box::new(move |current| {
            current.iter().any(|s| {
                grants(
                    s,
                    &wanted_provider,
                    &wanted_host,
                    &wanted_subject,
                    &audience,
                )
            })
        }),
        trusted: format!(
            "{subject} (aud {}) through oidc-provider/{host_path}",
            request.audience
        ),
    };
    plan_role(config, request, &account, &name, &wanted).await
}

/// Plans the role half shared by the AWS mechanisms: create the role (with `--create-role`) or
/// add the wanted statement to its trust policy, then attach the managed policies.
pub async fn plan_role(
    config: &aws_config::SdkConfig,
    request: &RoleRequest,
    account: &str,
    name: &str,
    wanted: &WantedTrust,
) -> Result<(ResolvedRole, Vec<Change>)> {
    let name = name.to_owned();
    let iam = aws_sdk_iam::Client::new(config);
    let statement = wanted.statement.clone();
    let mut changes = Vec::new();
    let existing = iam.get_role().role_name(&name).send().await;
    let (arn, role_exists) = match existing {
        Ok(out) => {
            let role = out.role();
            let arn = role
                .map(|r| r.arn().to_owned())
                .unwrap_or_else(|| format!("arn:aws:iam::{account}:role/{name}"));
            let document = role
                .and_then(|r| r.assume_role_policy_document())
                .unwrap_or("{}");
            let before: Value =
                serde_json::from_str(&percent_decode_str(document).decode_utf8_lossy()).map_err(
                    |e| Error::Cloud(format!("the trust policy of role {name} is not JSON: {e}")),
                )?;
            let current = statements(&before);
            if !(wanted.granted_by)(&current) {
                let mut after = before.clone();
                let mut list = current;
                list.push(statement.clone());
                after["Version"] = before
                    .get("Version")
                    .cloned()
                    .unwrap_or(json!("2012-10-17"));
                after["Statement"] = Value::Array(list);
                changes.push(Change {
                    system: System::Aws,
                    action: "update",
                    resource: format!("IAM role {name}"),
                    detail: format!(
                        "trust policy: allow {}; other statements kept",
                        wanted.trusted
                    ),
                    before: Some(before),
                    after: Some(after.clone()),
                    status: ChangeStatus::Planned,
                    operation: Operation::AwsIam(IamOperation::UpdateTrustPolicy {
                        name: name.clone(),
                        trust_policy: after,
                    }),
                });
            }
            (arn, true)
        }
        Err(e) => {
            let e = classify(e);
            match &e {
                CloudError::Rejected { code, .. } if code == "NoSuchEntity" => {}
                _ => return Err(cloud_error(&format!("iam:GetRole {name}"), e)),
            }
            if !request.create_role {
                return Err(Error::Refused(format!(
                    "IAM role {name} does not exist in account {account}: pass --create-role to create it, or name an existing role"
                )));
            }
            let trust = json!({"Version": "2012-10-17", "Statement": [statement]});
            changes.push(Change {
                system: System::Aws,
                action: "create",
                resource: format!("IAM role {name}"),
                detail: format!("new role trusting only {}", wanted.trusted),
                before: None,
                after: Some(trust.clone()),
                status: ChangeStatus::Planned,
                operation: Operation::AwsIam(IamOperation::CreateRole {
                    name: name.clone(),
                    trust_policy: trust,
                }),
            });
            (format!("arn:aws:iam::{account}:role/{name}"), false)
        }
    };

    let attached: Vec<String> = if role_exists {
        iam.list_attached_role_policies()
            .role_name(&name)
            .send()
            .await
            .map_err(|e| cloud_error(&format!("iam:ListAttachedRolePolicies {name}"), classify(e)))?
            .attached_policies()
            .iter()
            .filter_map(|p| p.policy_arn().map(str::to_owned))
            .collect()
    } else {
        Vec::new()
    };
    for policy_arn in &request.policy_arns {
        if !attached.contains(policy_arn) {
            changes.push(Change {
                system: System::Aws,
                action: "attach",
                resource: format!("IAM role {name}"),
                detail: format!("attach managed policy {policy_arn}"),
                before: None,
                after: None,
                status: ChangeStatus::Planned,
                operation: Operation::AwsIam(IamOperation::AttachRolePolicy {
                    role: name.clone(),
                    policy_arn: policy_arn.clone(),
                }),
            });
        }
    }
    Ok((ResolvedRole { name, arn }, changes))
}

/// Carries out one AWS change.
pub async fn apply(config: &aws_config::SdkConfig, operation: &IamOperation) -> Result<()> {
    let iam = aws_sdk_iam::Client::new(config);
    match operation {
        IamOperation::CreateRole { name, trust_policy } => iam
            .create_role()
            .role_name(name)
            .assume_role_policy_document(trust_policy.to_string())
            // No spaces: moto 5.2.5 miscomputes SigV4 for form values with spaces.
            .description("created-by-kubectl-podiam-bind")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| cloud_error(&format!("iam:CreateRole {name}"), classify(e))),
        IamOperation::UpdateTrustPolicy { name, trust_policy } => iam
            .update_assume_role_policy()
            .role_name(name)
            .policy_document(trust_policy.to_string())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| cloud_error(&format!("iam:UpdateAssumeRolePolicy {name}"), classify(e))),
        IamOperation::AttachRolePolicy { role, policy_arn } => iam
            .attach_role_policy()
            .role_name(role)
            .policy_arn(policy_arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                cloud_error(
                    &format!("iam:AttachRolePolicy {role} {policy_arn}"),
                    classify(e),
                )
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROVIDER: &str = "arn:aws:iam::123456789012:oidc-provider/oidc.example/id/X";
    const HOST: &str = "oidc.example/id/X";
    const SUB: &str = "system:serviceaccount:default:s3-reader";

    #[test]
    fn the_eksctl_statement_is_recognised_and_a_near_miss_is_not() {
        let statement = irsa_statement(PROVIDER, HOST, SUB, "sts.amazonaws.com");
        assert!(grants(&statement, PROVIDER, HOST, SUB, "sts.amazonaws.com"));
        assert!(!grants(
            &statement,
            PROVIDER,
            HOST,
            "system:serviceaccount:other:s3-reader",
            "sts.amazonaws.com"
        ));
        assert!(!grants(&statement, PROVIDER, HOST, SUB, "other-audience"));
        let other_provider = "arn:aws:iam::123456789012:oidc-provider/elsewhere";
        assert!(!grants(
            &statement,
            other_provider,
            HOST,
            SUB,
            "sts.amazonaws.com"
        ));
        let mut deny = statement.clone();
        deny["Effect"] = json!("Deny");
        assert!(!grants(&deny, PROVIDER, HOST, SUB, "sts.amazonaws.com"));
    }

    #[test]
    fn a_statement_for_several_subjects_is_not_taken_as_exactly_this_one() {
        let mut statement = irsa_statement(PROVIDER, HOST, SUB, "sts.amazonaws.com");
        statement["Condition"]["StringEquals"][format!("{HOST}:sub")] =
            json!([SUB, "system:serviceaccount:default:other"]);
        assert!(!grants(
            &statement,
            PROVIDER,
            HOST,
            SUB,
            "sts.amazonaws.com"
        ));
    }

    #[test]
    fn a_wildcard_subject_uses_string_like() {
        let statement = irsa_statement(
            PROVIDER,
            HOST,
            "system:serviceaccount:default:*",
            "sts.amazonaws.com",
        );
        assert!(statement.pointer("/Condition/StringLike").is_some());
        assert!(statement.pointer("/Condition/StringEquals").is_none());
    }

    #[test]
    fn issuer_host_path_drops_scheme_and_trailing_slash() {
        assert_eq!(
            issuer_host_path("https://oidc.example/id/X/"),
            "oidc.example/id/X"
        );
    }
}
