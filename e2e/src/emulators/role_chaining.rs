//! `sts:AssumeRole` with a role session's (or a user's) credentials: role chaining, as
//! cert-manager, Karpenter and External Secrets do it from a pod's IRSA or Pod Identity
//! credentials.
//!
//! What is modelled (single account, the emulated one):
//! - the caller is the owner of the signing access key ([`super::sessions`]); an unknown key is
//!   refused (InvalidClientTokenId). The signature itself is not recomputed.
//! - the target role must exist in this account and its trust policy, evaluated by the gate's
//!   own evaluator ([`super::trust_policy::decide`], `Caller::Aws`), must allow `sts:AssumeRole`
//!   for the caller: `{"AWS": …}` naming the role's ARN, the session's ARN, the account (`ACCT`
//!   or `arn:aws:iam::ACCT:root`) or `*`. A role assuming itself is admitted only by its own
//!   ARN named explicitly (IAM's behaviour since 2022). An unreadable policy refuses.
//! - the caller's identity policy must allow `sts:AssumeRole` on the target, unless the trust
//!   policy names the caller itself (same account: a resource policy naming the principal is
//!   enough). Allowed when any Allow statement of the source role's policies has an action
//!   matching `sts:AssumeRole` and a `Resource` matching the target ARN (globs), and no such
//!   Deny; statements with a `Condition` are not evaluated (an Allow with one grants nothing, a
//!   Deny with one denies). A user caller (the admin) is taken as allowed (its policy is
//!   allow-all).
//! - refusals are AWS's AccessDenied: "User: CALLER is not authorized to perform:
//!   sts:AssumeRole on resource: ROLE". Session policies, tags, external ids, permission
//!   boundaries and SCPs are not modelled.

use serde_json::Value;

use super::credentials::AdminCredentials;
use super::iam_directory::IamDirectory;
use super::identity_policy::{self, Conditions, PolicyDecision};
use super::moto_web_identity::{RoleSessionCredentials, assume_role_in_moto};
use super::policy_condition::ConditionContext;
use super::sessions::{KeyOwner, SessionDirectory};
use super::sts_error::StsError;
use super::trust_policy::{AwsPrincipal, Caller, TrustDecision, decide};

pub const ASSUME_ROLE: &str = "sts:AssumeRole";

pub struct ChainDeps<'a> {
    pub account_id: &'a str,
    pub admin: &'a AdminCredentials,
    pub directory: &'a IamDirectory,
    pub sessions: &'a SessionDirectory,
    pub moto_http: &'a reqwest::Client,
    pub moto_url: &'a str,
}

/// What a granted AssumeRole answers.
pub struct Granted {
    pub session_arn: String,
    pub assumed_role_id: String,
    pub credentials: RoleSessionCredentials,
}

/// Decides and, when allowed, mints the target role's session.
pub async fn assume_role(
    deps: &ChainDeps<'_>,
    access_key_id: &str,
    role_arn: &str,
    session_name: &str,
    duration_seconds: i32,
) -> Result<Granted, StsError> {
    let owner = deps
        .sessions
        .owner(access_key_id)
        .ok_or_else(StsError::invalid_client_token_id)?;
    let denied = || StsError::not_authorized_to_assume(owner.caller_arn(), role_arn);
    let target_name = role_arn
        .strip_prefix(&format!("arn:aws:iam::{}:role/", deps.account_id))
        .and_then(|path_name| path_name.rsplit('/').next())
        .ok_or_else(denied)?;
    let role = deps
        .directory
        .role(target_name)
        .await
        .map_err(|e| StsError::internal(format!("{e:#}")))?
        .filter(|r| r.arn == role_arn)
        .ok_or_else(denied)?;
    let policy: Value = serde_json::from_str(&role.trust_policy).map_err(|_| denied())?;
    let source_role = match &owner {
        KeyOwner::RoleSession { role_arn, .. } => Some(role_arn.clone()),
        KeyOwner::User { .. } => None,
    };
    let assuming_itself = source_role.as_deref() == Some(role.arn.as_str());
    let mut caller = AwsPrincipal {
        account: deps.account_id.to_owned(),
        arns: match &owner {
            KeyOwner::User { arn } => vec![arn.clone()],
            KeyOwner::RoleSession {
                role_arn,
                session_arn,
            } => vec![role_arn.clone(), session_arn.clone()],
        },
        exact_only: assuming_itself,
    };
    let keys = ConditionContext::new();
    let trusted = decide(&policy, Caller::Aws(&caller), ASSUME_ROLE, &keys);
    if trusted != Ok(TrustDecision::Allowed) {
        tracing::debug!(?trusted, role = %role.arn, "AssumeRole refused by the trust policy");
        return Err(denied());
    }
    caller.exact_only = true;
    let names_caller =
        decide(&policy, Caller::Aws(&caller), ASSUME_ROLE, &keys) == Ok(TrustDecision::Allowed);
    if !names_caller && let Some(source) = &source_role {
        let source_name = source.rsplit('/').next().unwrap_or_default();
        let policies = deps
            .directory
            .role_identity_policies(source_name)
            .await
            .map_err(|e| StsError::internal(format!("{e:#}")))?;
        if !identity_allows(&policies, &role.arn) {
            tracing::debug!(role = %role.arn, %source, "AssumeRole refused: no identity permission");
            return Err(denied());
        }
    }
    let credentials = assume_role_in_moto(
        deps.moto_http,
        deps.moto_url,
        deps.admin,
        &role.arn,
        session_name,
        duration_seconds,
    )
    .await
    .map_err(|e| StsError::internal(format!("{e:#}")))?;
    let session_arn = format!(
        "arn:aws:sts::{}:assumed-role/{}/{session_name}",
        deps.account_id, role.name
    );
    deps.sessions.record(
        &credentials.access_key_id,
        KeyOwner::RoleSession {
            role_arn: role.arn.clone(),
            session_arn: session_arn.clone(),
        },
    );
    Ok(Granted {
        session_arn,
        assumed_role_id: format!("{}:{session_name}", role.role_id),
        credentials,
    })
}

/// Whether identity policies (JSON texts) allow `sts:AssumeRole` on `target`: the gate's one
/// identity-policy reader, with no request context modelled (a conditional Allow grants
/// nothing, a conditional Deny denies).
pub fn identity_allows(policies: &[String], target: &str) -> bool {
    identity_policy::evaluate(policies, ASSUME_ROLE, target, Conditions::NotModelled)
        == PolicyDecision::Allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: &str = "arn:aws:iam::123456789012:role/target";

    #[test]
    fn identity_permission_needs_action_and_resource() {
        let on_target = format!(
            r#"{{"Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"{TARGET}"}}]}}"#
        );
        assert!(identity_allows(&[on_target], TARGET));
        let star = r#"{"Statement":{"Effect":"Allow","Action":"sts:*","Resource":"*"}}"#;
        assert!(identity_allows(&[star.to_owned()], TARGET));
        let other = r#"{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::123456789012:role/other"}]}"#;
        assert!(!identity_allows(&[other.to_owned()], TARGET));
        let s3 = r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
        assert!(!identity_allows(&[s3.to_owned()], TARGET));
        let denied =
            r#"{"Statement":[{"Effect":"Deny","Action":"sts:AssumeRole","Resource":"*"}]}"#;
        assert!(!identity_allows(
            &[star.to_owned(), denied.to_owned()],
            TARGET
        ));
        let conditional = r#"{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}"#;
        assert!(!identity_allows(&[conditional.to_owned()], TARGET));
    }

    fn session(exact_only: bool) -> AwsPrincipal {
        AwsPrincipal {
            account: "123456789012".into(),
            arns: vec![
                "arn:aws:iam::123456789012:role/team/source".into(),
                "arn:aws:sts::123456789012:assumed-role/source/s1".into(),
            ],
            exact_only,
        }
    }

    fn trust(principal: &str) -> Value {
        serde_json::from_str(&format!(
            r#"{{"Statement":[{{"Effect":"Allow","Principal":{{"AWS":{principal}}},"Action":"sts:AssumeRole"}}]}}"#
        ))
        .unwrap()
    }

    #[test]
    fn trust_principals_for_a_role_session() {
        let keys = ConditionContext::new();
        let decision = |policy: &Value, caller: &AwsPrincipal| {
            decide(policy, Caller::Aws(caller), ASSUME_ROLE, &keys)
        };
        let allowed = Ok(TrustDecision::Allowed);
        for principal in [
            r#""arn:aws:iam::123456789012:role/team/source""#,
            r#""arn:aws:sts::123456789012:assumed-role/source/s1""#,
            r#""arn:aws:iam::123456789012:root""#,
            r#""123456789012""#,
            r#""*""#,
        ] {
            assert_eq!(
                decision(&trust(principal), &session(false)),
                allowed,
                "{principal}"
            );
        }
        assert_ne!(
            decision(
                &trust(r#""arn:aws:iam::123456789012:role/other""#),
                &session(false)
            ),
            allowed
        );
        assert_ne!(
            decision(
                &trust(r#""arn:aws:iam::999999999999:root""#),
                &session(false)
            ),
            allowed
        );
        // Self-assumption: only the role named explicitly.
        assert_ne!(
            decision(
                &trust(r#""arn:aws:iam::123456789012:root""#),
                &session(true)
            ),
            allowed
        );
        assert_eq!(
            decision(
                &trust(r#""arn:aws:iam::123456789012:role/team/source""#),
                &session(true)
            ),
            allowed
        );
    }
}
