//! `--assume-role ARN` (repeatable): after the pod's own exchange gave credentials, assume each
//! role in order with the previous hop's credentials (`sts:AssumeRole`), as cert-manager,
//! Karpenter and External Secrets do. One check [`ID`] per hop, its message starting with the
//! ARN (so `expectations::complete` can tell which hops are covered): pass names the session
//! STS answered; fail names STS's error, its cause and the fix. A denial is diagnosed from the
//! target role's trust policy when the operator has credentials for its account (IAM GetRole,
//! evaluated by [`super::aws_irsa::iam_policy`]); else both possible causes are named.

use super::RuntimeOutcome;
use super::aws_irsa::iam_condition::ContextKeys;
use super::aws_irsa::iam_policy::{self, Caller, Decision, RoleSession};
use crate::exchange::aws_assume_role::assume_role;
use crate::exchange::aws_sts::{self, AssumedRole};
use crate::exchange::{CloudError, aws_account, aws_iam};
use crate::model::Check;
use crate::options::VerifyOptions;

pub const ID: &str = "aws.sts.assume-role-chain";
const ACTION: &str = "sts:AssumeRole";

/// Follows `options.assume_roles` from the pod's credentials.
pub async fn follow(
    out: &mut RuntimeOutcome,
    options: &VerifyOptions,
    config: &aws_config::SdkConfig,
    pod: &AssumedRole,
) {
    let mut previous = pod.clone();
    let mut broken: Option<String> = None;
    for (index, target) in options.assume_roles.iter().enumerate() {
        let hop = index + 1;
        if let Some(why) = &broken {
            out.checks
                .push(Check::skip(ID, format!("{target}: not tried — {why}")));
            continue;
        }
        let session = format!("podiam-hop-{hop}");
        tracing::debug!(%target, from = %previous.caller_arn, "AssumeRole (role chain)");
        match assume_role(config, previous.credentials.clone(), target, &session).await {
            Ok(next) => {
                out.checks.push(Check::pass(
                    ID,
                    format!(
                        "{target}: hop {hop} from {} assumed it: {}",
                        previous.caller_arn, next.caller_arn
                    ),
                ));
                previous = next;
            }
            Err(CloudError::Unreachable(msg)) => {
                out.unreachable = true;
                out.checks.push(Check::warn(
                    ID,
                    format!("{target}: hop {hop}: STS is unreachable: {msg}"),
                    "check network access to STS, or set AWS_ENDPOINT_URL_STS / --aws-endpoint-url",
                ));
                broken = Some(format!("hop {hop} ({target}) got no answer"));
            }
            Err(CloudError::Rejected { code, message }) => {
                let (cause, fix) = diagnose(options, &previous.caller_arn, target, &code).await;
                out.checks.push(Check::fail(
                    ID,
                    format!(
                        "{target}: hop {hop} from {} failed: {cause} — STS said {code}: {message}",
                        previous.caller_arn
                    ),
                    fix,
                ));
                broken = Some(format!("hop {hop} ({target}) failed"));
            }
        }
    }
}

/// The role ARN (no path) behind a session or role ARN.
fn role_arn_of(arn: &str) -> Option<String> {
    Some(format!(
        "arn:aws:iam::{}:role/{}",
        aws_sts::account(arn)?,
        aws_sts::role_name(arn)?
    ))
}

/// The trust statement that admits `source_role`.
pub fn trust_statement(source_role: &str) -> String {
    format!(r#"{{"Effect":"Allow","Principal":{{"AWS":"{source_role}"}},"Action":"{ACTION}"}}"#)
}

/// The identity statement that lets the source assume `target`.
pub fn permission_statement(target: &str) -> String {
    format!(r#"{{"Effect":"Allow","Action":"{ACTION}","Resource":"{target}"}}"#)
}

/// (cause, fix) of a refused hop from `source` (the caller's session ARN) to `target`.
async fn diagnose(
    options: &VerifyOptions,
    source: &str,
    target: &str,
    code: &str,
) -> (String, String) {
    let source_role = role_arn_of(source).unwrap_or_else(|| source.to_string());
    let source_name = aws_sts::role_name(source).unwrap_or("<SOURCE_ROLE>");
    let target_name = aws_sts::role_name(target).unwrap_or("<TARGET_ROLE>");
    let trust_fix = format!(
        "add to role {target_name}'s trust policy the statement {}",
        trust_statement(&source_role)
    );
    let permission_fix = format!(
        "aws iam put-role-policy --role-name {source_name} --policy-name assume-{target_name} --policy-document '{{\"Version\":\"2012-10-17\",\"Statement\":[{}]}}'",
        permission_statement(target)
    );
    let assuming_itself = role_arn_of(target).is_some_and(|t| t == source_role);
    if code != "AccessDenied" {
        return (
            "STS refused the AssumeRole".to_string(),
            format!("check that {target} exists and is a role ARN"),
        );
    }
    match read_trust(options, source, target, assuming_itself).await {
        Ok(Some(Decision::Allowed(statement))) => (
            format!(
                "role {target_name}'s trust policy admits {source} (statement {statement}), so the denial comes from the source's permissions: its identity policy does not allow {ACTION} on {target} (or a permissions boundary or SCP denies it)"
            ),
            permission_fix,
        ),
        Ok(Some(decision)) => (
            format!(
                "role {target_name}'s trust policy does not admit {source}: {}",
                refusal(&decision, assuming_itself)
            ),
            trust_fix,
        ),
        Ok(None) => unreadable_or_unknown(
            assuming_itself,
            target_name,
            &trust_fix,
            &permission_fix,
            "its trust policy could not be evaluated",
        ),
        Err(why) => unreadable_or_unknown(
            assuming_itself,
            target_name,
            &trust_fix,
            &permission_fix,
            &format!("its trust policy was not read: {why}"),
        ),
    }
}

fn unreadable_or_unknown(
    assuming_itself: bool,
    target_name: &str,
    trust_fix: &str,
    permission_fix: &str,
    why: &str,
) -> (String, String) {
    if assuming_itself {
        return (
            format!(
                "role {target_name} is assuming itself, which AWS allows only when its trust policy names the role itself explicitly (since 2022; an account principal is not enough) — {why}"
            ),
            trust_fix.to_string(),
        );
    }
    (
        format!(
            "either role {target_name}'s trust policy does not name the source, or the source's identity policy lacks {ACTION} on it — {why}"
        ),
        format!("{trust_fix}; and if it trusts the account rather than the role: {permission_fix}"),
    )
}

fn refusal(decision: &Decision, assuming_itself: bool) -> String {
    match decision {
        Decision::ExplicitDeny(statement) => format!("statement {statement} denies it explicitly"),
        Decision::ImplicitDeny if assuming_itself => "a role assuming itself must be named explicitly in its own trust policy (AWS's behaviour since 2022)".to_string(),
        Decision::ImplicitDeny => "no statement allows it".to_string(),
        Decision::Unreadable(problem) => format!("podiam cannot evaluate it: {problem}"),
        Decision::Allowed(_) => "it is allowed".to_string(),
    }
}

/// The target's trust policy evaluated for the source session, with operator credentials for
/// the target's account. `Ok(None)`: nothing to evaluate (not a role ARN).
async fn read_trust(
    options: &VerifyOptions,
    source: &str,
    target: &str,
    assuming_itself: bool,
) -> Result<Option<Decision>, String> {
    let (Some(account), Some(target_name)) = (aws_sts::account(target), aws_sts::role_name(target))
    else {
        return Ok(None);
    };
    let (Some(source_account), Some(source_name)) =
        (aws_sts::account(source), aws_sts::role_name(source))
    else {
        return Ok(None);
    };
    let config = match aws_account::for_account(&options.aws, account).await {
        aws_account::AccountCredentials::Ready { config, .. } => *config,
        aws_account::AccountCredentials::Missing(why) => return Err(why),
    };
    let policy = aws_iam::trust_policy(&config, target_name)
        .await
        .map_err(|e| format!("IAM GetRole {target_name}: {e}"))?;
    let context = ContextKeys::new();
    let request = iam_policy::Request {
        caller: Caller::RoleSession(RoleSession {
            account: source_account,
            role_name: source_name,
            session_arn: source,
            assuming_itself,
        }),
        action: ACTION,
        context: &context,
    };
    Ok(Some(iam_policy::evaluate(&policy, &request).decision))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SESSION: &str = "arn:aws:sts::111111111111:assumed-role/pod-role/podiam-x";

    fn decide(principal: serde_json::Value, itself: bool) -> Decision {
        let policy = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}]});
        let context = ContextKeys::new();
        let request = iam_policy::Request {
            caller: Caller::RoleSession(RoleSession {
                account: "111111111111",
                role_name: "pod-role",
                session_arn: SESSION,
                assuming_itself: itself,
            }),
            action: ACTION,
            context: &context,
        };
        iam_policy::evaluate(&policy, &request).decision
    }

    #[test]
    fn a_role_session_is_admitted_by_role_session_or_account() {
        for principal in [
            json!("arn:aws:iam::111111111111:role/team/pod-role"),
            json!(SESSION),
            json!("arn:aws:iam::111111111111:root"),
            json!("111111111111"),
            json!("*"),
        ] {
            assert!(decide(principal.clone(), false).allows(), "{principal}");
        }
        assert!(!decide(json!("arn:aws:iam::111111111111:role/other"), false).allows());
        assert!(!decide(json!("arn:aws:iam::222222222222:root"), false).allows());
    }

    #[test]
    fn self_assumption_needs_the_role_named() {
        assert!(!decide(json!("arn:aws:iam::111111111111:root"), true).allows());
        assert!(!decide(json!("*"), true).allows());
        assert!(decide(json!("arn:aws:iam::111111111111:role/pod-role"), true).allows());
    }

    #[test]
    fn statements_to_add() {
        assert_eq!(
            trust_statement("arn:aws:iam::1:role/a"),
            r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:role/a"},"Action":"sts:AssumeRole"}"#
        );
        assert_eq!(
            role_arn_of(SESSION).as_deref(),
            Some("arn:aws:iam::111111111111:role/pod-role")
        );
    }
}
