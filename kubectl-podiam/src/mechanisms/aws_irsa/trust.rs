//! Explains why STS refused a token by reading the role's trust policy and the account's OIDC
//! providers with the operator's credentials. The policy is evaluated as IAM documents it
//! ([`super::iam_policy`]): explicit Deny wins, unknown operators are named (never met), keys
//! ignore case. This is the plugin's own diagnosis; the test emulator enforces with separate
//! code, and `tests/trust_differential.rs` checks the two agree.

use serde_json::Value;

use crate::cloud::aws::irsa;

use super::iam_condition::ContextKeys;
use super::iam_policy::{
    self, Caller, ConditionTrace, Decision, Effect, Evaluation, Request, StatementTrace,
};
use crate::exchange::aws_iam::OidcProvider;
use crate::model::Check;
use crate::token_claims::Claims;

const ACTION: &str = "sts:AssumeRoleWithWebIdentity";

pub struct TrustInputs<'a> {
    pub claims: &'a Claims,
    pub account: &'a str,
    pub role_name: &'a str,
    pub providers: &'a [OidcProvider],
    pub policy: &'a Value,
}

pub fn explain(inputs: &TrustInputs) -> Vec<Check> {
    let iss = inputs.claims.iss.clone().unwrap_or_default();
    let host_path = iss.trim_start_matches("https://").to_string();
    let mut checks = vec![provider_check(inputs, &host_path)];
    checks.push(policy_check(inputs, &host_path));
    checks
}

fn provider_check(inputs: &TrustInputs, host_path: &str) -> Check {
    const ID: &str = "aws.iam.oidc-provider";
    let Some(provider) = inputs.providers.iter().find(|p| p.url == host_path) else {
        return Check::fail(
            ID,
            format!(
                "no IAM OIDC provider for https://{host_path} in account {}",
                inputs.account
            ),
            format!(
                "eksctl utils associate-iam-oidc-provider --cluster <CLUSTER> --approve (or: aws iam create-open-id-connect-provider --url https://{host_path} --client-id-list sts.amazonaws.com)"
            ),
        );
    };
    let missing: Vec<&String> = inputs
        .claims
        .aud
        .iter()
        .filter(|a| !provider.client_ids.contains(a))
        .collect();
    if inputs.claims.aud.is_empty() || missing.len() == inputs.claims.aud.len() {
        return Check::fail(
            ID,
            format!(
                "the token's audience {:?} is not among the OIDC provider's client ids {:?}",
                inputs.claims.aud, provider.client_ids
            ),
            format!(
                "aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn arn:aws:iam::{}:oidc-provider/{host_path} --client-id {} (or set eks.amazonaws.com/audience to a registered client id and recreate the pod)",
                inputs.account,
                inputs
                    .claims
                    .aud
                    .first()
                    .map_or("<AUDIENCE>", String::as_str)
            ),
        );
    }
    Check::pass(
        ID,
        format!("OIDC provider {host_path} is registered and lists the token's audience"),
    )
}

/// The request context STS builds for this token: `<issuer host/path>:sub` and `:aud` (every
/// audience of the token: `aud` may be a list).
pub fn web_identity_context(claims: &Claims, host_path: &str) -> ContextKeys {
    ContextKeys::new()
        .with(
            &format!("{host_path}:sub"),
            claims.sub.iter().cloned().collect(),
        )
        .with(&format!("{host_path}:aud"), claims.aud.clone())
}

/// Whether the trust policy lets this token assume the role (the plugin's own evaluation).
pub fn evaluate_web_identity(policy: &Value, claims: &Claims, account: &str) -> Evaluation {
    let host_path = host_path(claims);
    let provider_arn = format!("arn:aws:iam::{account}:oidc-provider/{host_path}");
    let context = web_identity_context(claims, &host_path);
    iam_policy::evaluate(
        policy,
        &Request {
            caller: Caller::WebIdentity(&provider_arn),
            action: ACTION,
            context: &context,
        },
    )
}

fn host_path(claims: &Claims) -> String {
    let iss = claims.iss.as_deref().unwrap_or_default();
    iss.strip_prefix("https://").unwrap_or(iss).to_string()
}

fn unmet(c: &ConditionTrace) -> String {
    if c.actual.is_empty() {
        format!(
            "{} {} = {:?} does not hold: the request has no {}",
            c.operator, c.key, c.wanted, c.key
        )
    } else {
        format!(
            "{} {} = {:?} does not match the token's {:?}",
            c.operator, c.key, c.wanted, c.actual
        )
    }
}

fn met(c: &ConditionTrace) -> String {
    format!(
        "{} {} = {:?} holds for {:?}",
        c.operator, c.key, c.wanted, c.actual
    )
}

fn policy_check(inputs: &TrustInputs, host_path: &str) -> Check {
    const ID: &str = "aws.iam.trust-policy";
    let role = inputs.role_name;
    let provider_arn = format!("arn:aws:iam::{}:oidc-provider/{host_path}", inputs.account);
    let sub = inputs.claims.sub.clone().unwrap_or_default();
    let fix = format!(
        "aws iam update-assume-role-policy --role-name {role} with a statement: Effect Allow, Principal {{\"Federated\": \"{provider_arn}\"}}, Action {ACTION}, Condition StringEquals {{\"{host_path}:sub\": \"{sub}\", \"{host_path}:aud\": \"{}\"}} (or kubectl podiam bind)",
        inputs
            .claims
            .aud
            .first()
            .map_or(irsa::DEFAULT_AUDIENCE, String::as_str)
    );
    let evaluation = evaluate_web_identity(inputs.policy, inputs.claims, inputs.account);
    let named = |index: usize| {
        evaluation
            .statements
            .iter()
            .find(|t| t.index == index)
            .map_or_else(|| format!("statement {index}"), StatementTrace::name)
    };
    match &evaluation.decision {
        Decision::Allowed(index) => Check::pass(
            ID,
            format!(
                "role {role} trusts {sub} from {host_path} ({})",
                named(*index)
            ),
        ),
        Decision::ExplicitDeny(index) => {
            let held: Vec<String> = evaluation
                .statements
                .iter()
                .filter(|t| t.index == *index)
                .flat_map(|t| t.conditions.iter().map(met))
                .collect();
            Check::fail(
                ID,
                format!(
                    "role {role}'s trust policy explicitly denies this token: {} (Effect Deny) applies{}",
                    named(*index),
                    if held.is_empty() {
                        " unconditionally".to_string()
                    } else {
                        format!(": {}", held.join("; "))
                    }
                ),
                format!(
                    "remove or narrow {} of role {role}'s trust policy (aws iam update-assume-role-policy --role-name {role}); an explicit Deny wins over every Allow",
                    named(*index)
                ),
            )
        }
        Decision::Unreadable(problem) => Check::warn(
            ID,
            format!("cannot judge role {role}'s trust policy: {problem}; STS's refusal stands"),
            "check that statement by hand against the token's claims, or rewrite it with the operators IAM documents for web identity (StringEquals/StringLike on :sub and :aud)",
        ),
        Decision::ImplicitDeny => implicit_deny(&evaluation, role, &provider_arn, fix),
    }
}

/// No statement allowed: say, per Allow statement that names this caller and action, which
/// conditions failed; or that none names them.
fn implicit_deny(evaluation: &Evaluation, role: &str, provider_arn: &str, fix: String) -> Check {
    const ID: &str = "aws.iam.trust-policy";
    let allows = || {
        evaluation
            .statements
            .iter()
            .filter(|t| t.effect == Effect::Allow)
    };
    let reasons: Vec<String> = allows()
        .filter(|t| t.principal_mismatch.is_none() && t.action_matched)
        .map(|t| {
            let failed: Vec<String> = t.conditions.iter().filter(|c| !c.held).map(unmet).collect();
            format!("{}: {}", t.name(), failed.join("; "))
        })
        .collect();
    if !reasons.is_empty() {
        return Check::fail(
            ID,
            format!(
                "role {role}'s trust policy refuses this token: {}",
                reasons.join("; ")
            ),
            fix,
        );
    }
    let why: Vec<String> = allows()
        .map(|t| match &t.principal_mismatch {
            Some(why) => format!("{}: {why}", t.name()),
            None => format!("{}: its Action does not cover {ACTION}", t.name()),
        })
        .collect();
    Check::fail(
        ID,
        format!(
            "role {role} does not trust {provider_arn} for {ACTION} ({})",
            if why.is_empty() {
                "it has no Allow statement".to_string()
            } else {
                why.join("; ")
            }
        ),
        fix,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str, aud: &str) -> Claims {
        Claims {
            iss: Some("https://oidc.example.com/id/ABC".into()),
            sub: Some(sub.into()),
            aud: vec![aud.into()],
            exp: None,
            iat: None,
            nbf: None,
            kubernetes: None,
        }
    }

    fn policy(sub: &str) -> Value {
        serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.example.com/id/ABC"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {
                    "oidc.example.com/id/ABC:sub": sub,
                    "oidc.example.com/id/ABC:aud": "sts.amazonaws.com"
                }}
            }]
        })
    }

    fn providers() -> Vec<OidcProvider> {
        vec![OidcProvider {
            url: "oidc.example.com/id/ABC".into(),
            client_ids: vec!["sts.amazonaws.com".into()],
        }]
    }

    fn run(claims: &Claims, policy: &Value, providers: &[OidcProvider]) -> Vec<Check> {
        explain(&TrustInputs {
            claims,
            account: "123456789012",
            role_name: "my-pod-role",
            providers,
            policy,
        })
    }

    #[test]
    fn names_the_namespace_mismatch() {
        let c = claims(
            "system:serviceaccount:default:s3-reader",
            "sts.amazonaws.com",
        );
        let checks = run(
            &c,
            &policy("system:serviceaccount:other:s3-reader"),
            &providers(),
        );
        let trust = checks
            .iter()
            .find(|c| c.id == "aws.iam.trust-policy")
            .unwrap();
        assert_eq!(trust.status, crate::model::Status::Fail);
        assert!(
            trust
                .message
                .contains("system:serviceaccount:other:s3-reader")
        );
        assert!(
            trust
                .message
                .contains("system:serviceaccount:default:s3-reader")
        );
    }

    #[test]
    fn passes_a_matching_policy() {
        let c = claims(
            "system:serviceaccount:default:s3-reader",
            "sts.amazonaws.com",
        );
        let checks = run(
            &c,
            &policy("system:serviceaccount:default:s3-reader"),
            &providers(),
        );
        assert!(
            checks
                .iter()
                .all(|c| c.status == crate::model::Status::Pass)
        );
    }

    fn with_condition(condition: Value) -> Value {
        let mut p = policy("unused");
        p["Statement"][0]["Condition"] = condition;
        p
    }

    fn trust_check(policy: &Value) -> Check {
        let c = claims(
            "system:serviceaccount:default:s3-reader",
            "sts.amazonaws.com",
        );
        run(&c, policy, &providers())
            .into_iter()
            .find(|c| c.id == "aws.iam.trust-policy")
            .expect("a trust check")
    }

    #[test]
    fn string_like_globs() {
        let check = trust_check(&with_condition(serde_json::json!({"StringLike": {
            "oidc.example.com/id/ABC:sub": "system:serviceaccount:default:*"}})));
        assert_eq!(check.status, crate::model::Status::Pass);
        let check = trust_check(&with_condition(serde_json::json!({"StringLike": {
            "oidc.example.com/id/ABC:sub": "system:serviceaccount:other:*"}})));
        assert_eq!(check.status, crate::model::Status::Fail);
    }

    // Issue 11: an unknown operator was read as met, so this passed.
    #[test]
    fn an_unknown_operator_is_named_never_met() {
        let check = trust_check(&with_condition(serde_json::json!({"StringFancy": {
            "oidc.example.com/id/ABC:sub": "anything"}})));
        assert_ne!(check.status, crate::model::Status::Pass);
        assert!(check.message.contains("StringFancy"), "{}", check.message);
    }

    // Issue 11: Deny statements were ignored, so this passed.
    #[test]
    fn an_explicit_deny_is_named() {
        let mut p = policy("system:serviceaccount:default:s3-reader");
        p["Statement"].as_array_mut().unwrap().push(serde_json::json!({
            "Sid": "NoReaders", "Effect": "Deny",
            "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.example.com/id/ABC"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringLike": {"oidc.example.com/id/ABC:sub": "*:s3-reader"}}
        }));
        let check = trust_check(&p);
        assert_eq!(check.status, crate::model::Status::Fail);
        assert!(check.message.contains("NoReaders"), "{}", check.message);
        assert!(
            check.message.contains("explicitly denies"),
            "{}",
            check.message
        );
    }

    // Issue 11: condition keys were matched case-sensitively, so this failed.
    #[test]
    fn condition_keys_ignore_case() {
        let check = trust_check(&with_condition(serde_json::json!({"StringEquals": {
            "OIDC.example.com/id/ABC:SUB": "system:serviceaccount:default:s3-reader"}})));
        assert_eq!(
            check.status,
            crate::model::Status::Pass,
            "{}",
            check.message
        );
    }

    // Issue 11: ForAllValues/IfExists were unknown (read as met): a token with a second
    // audience passed a ForAllValues that does not list it.
    #[test]
    fn set_operators_and_if_exists() {
        let mut c = claims(
            "system:serviceaccount:default:s3-reader",
            "sts.amazonaws.com",
        );
        c.aud.push("other".into());
        let all = with_condition(serde_json::json!({"ForAllValues:StringEquals": {
            "oidc.example.com/id/ABC:aud": "sts.amazonaws.com"}}));
        let check = run(&c, &all, &providers()).remove(1);
        assert_eq!(check.status, crate::model::Status::Fail);
        assert!(
            check.message.contains("ForAllValues:StringEquals"),
            "{}",
            check.message
        );
        let any = with_condition(serde_json::json!({"ForAnyValue:StringEquals": {
            "oidc.example.com/id/ABC:aud": "sts.amazonaws.com"},
            "StringEqualsIfExists": {"oidc.example.com/id/ABC:amr": "x"}}));
        assert_eq!(
            run(&c, &any, &providers())[1].status,
            crate::model::Status::Pass
        );
    }

    #[test]
    fn a_wildcard_principal_is_refused_with_the_reason() {
        let p = serde_json::json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRoleWithWebIdentity"}]});
        let check = trust_check(&p);
        assert_eq!(check.status, crate::model::Status::Fail);
        assert!(
            check.message.contains("wildcard principal"),
            "{}",
            check.message
        );
    }

    #[test]
    fn missing_provider_and_audience() {
        let c = claims(
            "system:serviceaccount:default:s3-reader",
            "sts.amazonaws.com",
        );
        let checks = run(&c, &policy("x"), &[]);
        assert!(checks[0].message.contains("no IAM OIDC provider"));
        let c = claims(
            "system:serviceaccount:default:s3-reader",
            "sts.amazonaws.co",
        );
        let checks = run(&c, &policy("x"), &providers());
        assert!(
            checks[0]
                .message
                .contains("not among the OIDC provider's client ids")
        );
    }
}
