//! An independent evaluator of IAM role trust policies for `sts:AssumeRoleWithWebIdentity`
//! (and, through [`decide`], for a service principal's `sts:AssumeRole`).
//!
//! Written from the IAM policy grammar, not from the plugin's diagnostics, so tests compare
//! the plugin's prediction with this enforcement. Supported: `Effect` Allow/Deny,
//! `Principal` `{"Federated": str|[str]}`, `{"Service": …}`, `"*"`/`{"AWS": "*"}`,
//! `Action`/`NotAction` with `*`/`?` globs, and the conditions of [`super::policy_condition`].
//! It fails closed: an unknown operator, a malformed condition or an Effect other than
//! Allow/Deny is an error, and STS answers AccessDenied. Explicit Deny wins over Allow; nothing
//! matching is an implicit deny.
//!
//! A wildcard principal (`"*"`, `{"AWS": "*"}`, `{"Federated": "*"}`) never grants a web
//! identity: the IAM Principal reference names a web identity principal only by its provider,
//! and the lead's decision for issue 11 is to refuse it as AWS does. In a Deny it matches
//! (denying everyone denies this caller too).

use std::collections::BTreeMap;

use serde_json::Value;

use super::policy_condition::{
    ConditionContext, ConditionError, condition_block_holds, policy_strings,
};

pub const WEB_IDENTITY_ACTION: &str = "sts:AssumeRoleWithWebIdentity";

/// The request as the trust policy sees it.
#[derive(Debug, Clone)]
pub struct WebIdentityRequestContext {
    /// `arn:aws:iam::<acct>:oidc-provider/<issuer host+path>`
    pub provider_arn: String,
    /// Condition context keys (lowercase), e.g. `<host/path>:sub` → values.
    pub keys: BTreeMap<String, Vec<String>>,
}

impl WebIdentityRequestContext {
    /// Context for a token from `issuer_host_path` with the given claims.
    pub fn new(
        account_id: &str,
        issuer_host_path: &str,
        sub: &str,
        aud: &[String],
        amr: &[String],
    ) -> Self {
        let mut keys = BTreeMap::new();
        let prefix = issuer_host_path.to_ascii_lowercase();
        keys.insert(format!("{prefix}:sub"), vec![sub.to_owned()]);
        if !aud.is_empty() {
            keys.insert(format!("{prefix}:aud"), aud.to_vec());
        }
        if !amr.is_empty() {
            keys.insert(format!("{prefix}:amr"), amr.to_vec());
        }
        Self {
            provider_arn: format!("arn:aws:iam::{account_id}:oidc-provider/{issuer_host_path}"),
            keys,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustDecision {
    Allowed,
    /// A Deny statement matched.
    ExplicitDeny,
    /// No Allow statement matched.
    ImplicitDeny,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TrustPolicyError {
    #[error("trust policy is not valid JSON: {0}")]
    NotJson(String),
    #[error("trust policy has no Statement")]
    NoStatement,
    #[error("statement has an Effect other than Allow or Deny")]
    BadEffect,
    #[error("{0}")]
    Condition(ConditionError),
}

/// Evaluates a trust policy document (JSON text) for `sts:AssumeRoleWithWebIdentity`.
pub fn evaluate_trust_policy_text(
    document: &str,
    request: &WebIdentityRequestContext,
) -> Result<TrustDecision, TrustPolicyError> {
    let policy: Value =
        serde_json::from_str(document).map_err(|e| TrustPolicyError::NotJson(e.to_string()))?;
    evaluate_trust_policy(&policy, request)
}

/// Evaluates a parsed trust policy for `sts:AssumeRoleWithWebIdentity`.
pub fn evaluate_trust_policy(
    policy: &Value,
    request: &WebIdentityRequestContext,
) -> Result<TrustDecision, TrustPolicyError> {
    decide(
        policy,
        Caller::OidcProvider(&request.provider_arn),
        WEB_IDENTITY_ACTION,
        &request.keys,
    )
}

/// Who calls STS.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    /// A web identity from this IAM OIDC provider ARN.
    OidcProvider(&'a str),
    /// An AWS service principal such as `pods.eks.amazonaws.com`.
    ServicePrincipal(&'a str),
    /// An IAM principal calling `sts:AssumeRole` (see [`AwsPrincipal`]).
    Aws(&'a AwsPrincipal),
}

/// An IAM principal (a role session or a user) as `{"AWS": …}` names it.
#[derive(Debug, Clone)]
pub struct AwsPrincipal {
    pub account: String,
    /// The ARNs that name exactly this principal: for a role session, the role's ARN (with its
    /// path) and the session's `arn:aws:sts::ACCT:assumed-role/ROLE/SESSION`; for a user, its ARN.
    pub arns: Vec<String>,
    /// Only an exact ARN admits (no account or `*`): a role assuming itself, and the check of
    /// whether the policy names the caller itself.
    pub exact_only: bool,
}

/// The decision for one caller, action and condition context (keys lowercase).
pub fn decide(
    policy: &Value,
    caller: Caller,
    action: &str,
    keys: &ConditionContext,
) -> Result<TrustDecision, TrustPolicyError> {
    let statements: Vec<&Value> = match policy.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(statement @ Value::Object(_)) => vec![statement],
        _ => return Err(TrustPolicyError::NoStatement),
    };
    let mut allowed = false;
    let mut denied = false;
    // Every statement is read, so a bad one anywhere refuses the request.
    for statement in statements {
        let is_allow = match statement.get("Effect").and_then(Value::as_str) {
            Some("Allow") => true,
            Some("Deny") => false,
            _ => return Err(TrustPolicyError::BadEffect),
        };
        let conditions = condition_block_holds(statement.get("Condition"), keys)
            .map_err(TrustPolicyError::Condition)?;
        let applies = conditions
            && principal_matches(statement.get("Principal"), caller, is_allow)
            && action_matches(statement, action);
        if applies {
            if is_allow {
                allowed = true;
            } else {
                denied = true;
            }
        }
    }
    Ok(if denied {
        TrustDecision::ExplicitDeny
    } else if allowed {
        TrustDecision::Allowed
    } else {
        TrustDecision::ImplicitDeny
    })
}

fn principal_matches(principal: Option<&Value>, caller: Caller, is_allow: bool) -> bool {
    let listed = |kind: &str| -> Vec<String> {
        principal
            .and_then(|p| p.get(kind))
            .map(policy_strings)
            .unwrap_or_default()
    };
    let anyone = matches!(principal, Some(Value::String(s)) if s == "*")
        || listed("AWS").iter().any(|p| p == "*");
    match caller {
        Caller::OidcProvider(arn) => {
            let federated = listed("Federated");
            if federated.iter().any(|p| p == arn) {
                return true;
            }
            // Wildcards deny a web identity but never grant it.
            !is_allow && (anyone || federated.iter().any(|p| p == "*"))
        }
        Caller::ServicePrincipal(name) => anyone || listed("Service").iter().any(|s| s == name),
        Caller::Aws(caller) => {
            let aws = listed("AWS");
            if aws.iter().any(|p| caller.arns.contains(p)) || (!is_allow && anyone) {
                return true;
            }
            let root = format!("arn:aws:iam::{}:root", caller.account);
            !caller.exact_only && (anyone || aws.iter().any(|p| *p == caller.account || *p == root))
        }
    }
}

fn action_matches(statement: &Value, action: &str) -> bool {
    // Action names are case-insensitive.
    let wanted = action.to_ascii_lowercase();
    let matches_any = |patterns: &Value| {
        policy_strings(patterns)
            .iter()
            .any(|pattern| glob_matches(&pattern.to_ascii_lowercase(), &wanted))
    };
    if let Some(actions) = statement.get("Action") {
        matches_any(actions)
    } else if let Some(not_actions) = statement.get("NotAction") {
        !matches_any(not_actions)
    } else {
        false
    }
}

/// IAM wildcard match: `*` any run of characters, `?` exactly one.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Iterative wildcard matching with backtracking to the last `*`.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ISSUER: &str = "127.0.0.1:8443/id/EXAMPLE";
    const PROVIDER: &str = "arn:aws:iam::123456789012:oidc-provider/127.0.0.1:8443/id/EXAMPLE";

    fn request(sub: &str, aud: &[&str]) -> WebIdentityRequestContext {
        let aud: Vec<String> = aud.iter().map(|a| (*a).to_owned()).collect();
        WebIdentityRequestContext::new("123456789012", ISSUER, sub, &aud, &[])
    }

    fn eksctl_policy(operator: &str, sub: &str) -> Value {
        json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": { "Federated": PROVIDER },
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": { operator: {
                    format!("{ISSUER}:sub"): sub,
                    format!("{ISSUER}:aud"): "sts.amazonaws.com",
                }}
            }]
        })
    }

    fn decide(policy: &Value, request: &WebIdentityRequestContext) -> TrustDecision {
        evaluate_trust_policy(policy, request).expect("valid policy")
    }

    const READER: &str = "system:serviceaccount:default:s3-reader";

    #[test]
    fn eksctl_string_equals_allows_exact_subject_and_audience() {
        let policy = eksctl_policy("StringEquals", READER);
        assert_eq!(
            decide(&policy, &request(READER, &["sts.amazonaws.com"])),
            TrustDecision::Allowed
        );
    }

    #[test]
    fn other_namespace_is_implicitly_denied() {
        let policy = eksctl_policy("StringEquals", READER);
        let other = request(
            "system:serviceaccount:other:s3-reader",
            &["sts.amazonaws.com"],
        );
        assert_eq!(decide(&policy, &other), TrustDecision::ImplicitDeny);
    }

    #[test]
    fn wrong_audience_is_implicitly_denied() {
        let policy = eksctl_policy("StringEquals", READER);
        assert_eq!(
            decide(&policy, &request(READER, &["other"])),
            TrustDecision::ImplicitDeny
        );
    }

    #[test]
    fn string_like_matches_globs() {
        let policy = eksctl_policy("StringLike", "system:serviceaccount:team-?:*");
        assert_eq!(
            decide(
                &policy,
                &request("system:serviceaccount:team-a:x", &["sts.amazonaws.com"])
            ),
            TrustDecision::Allowed
        );
        assert_eq!(
            decide(
                &policy,
                &request("system:serviceaccount:team-ab:x", &["sts.amazonaws.com"])
            ),
            TrustDecision::ImplicitDeny
        );
    }

    #[test]
    fn string_equals_does_not_glob() {
        let policy = eksctl_policy("StringEquals", "system:serviceaccount:default:*");
        assert_eq!(
            decide(&policy, &request(READER, &["sts.amazonaws.com"])),
            TrustDecision::ImplicitDeny
        );
    }

    #[test]
    fn other_provider_is_not_trusted() {
        let mut policy = eksctl_policy("StringEquals", READER);
        policy["Statement"][0]["Principal"]["Federated"] =
            json!("arn:aws:iam::123456789012:oidc-provider/other.example/id/X");
        assert_eq!(
            decide(&policy, &request(READER, &["sts.amazonaws.com"])),
            TrustDecision::ImplicitDeny
        );
    }

    #[test]
    fn federated_list_and_action_list_and_wildcards() {
        for action in [
            json!(["sts:AssumeRole", "sts:AssumeRoleWithWebIdentity"]),
            json!("sts:*"),
            json!("*"),
            json!("STS:assumerolewithwebidentity"),
        ] {
            let policy = json!({
                "Statement": {
                    "Effect": "Allow",
                    "Principal": { "Federated": ["arn:aws:iam::123456789012:oidc-provider/x", PROVIDER] },
                    "Action": action,
                }
            });
            assert_eq!(
                decide(&policy, &request(READER, &["sts.amazonaws.com"])),
                TrustDecision::Allowed,
                "{action}"
            );
        }
    }

    #[test]
    fn only_assume_role_action_does_not_allow_web_identity() {
        let mut policy = eksctl_policy("StringEquals", READER);
        policy["Statement"][0]["Action"] = json!("sts:AssumeRole");
        assert_eq!(
            decide(&policy, &request(READER, &["sts.amazonaws.com"])),
            TrustDecision::ImplicitDeny
        );
    }

    #[test]
    fn explicit_deny_wins() {
        let mut policy = eksctl_policy("StringLike", "system:serviceaccount:default:*");
        policy["Statement"]
            .as_array_mut()
            .expect("list")
            .push(json!({
                "Effect": "Deny",
                "Principal": { "Federated": PROVIDER },
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": { "StringEquals": { format!("{ISSUER}:sub"): READER } }
            }));
        assert_eq!(
            decide(&policy, &request(READER, &["sts.amazonaws.com"])),
            TrustDecision::ExplicitDeny
        );
        assert_eq!(
            decide(
                &policy,
                &request(
                    "system:serviceaccount:default:other",
                    &["sts.amazonaws.com"]
                )
            ),
            TrustDecision::Allowed
        );
    }

    #[test]
    fn negated_operators() {
        let policy = eksctl_policy("StringNotEquals", "system:serviceaccount:kube-system:admin");
        // StringNotEquals on aud "sts.amazonaws.com" fails for the aud key itself.
        assert_eq!(
            decide(&policy, &request(READER, &["sts.amazonaws.com"])),
            TrustDecision::ImplicitDeny
        );
        let policy = json!({"Statement": [{
            "Effect": "Allow", "Principal": {"Federated": PROVIDER},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringNotLike": {format!("{ISSUER}:sub"): "system:serviceaccount:kube-system:*"}}
        }]});
        assert_eq!(
            decide(&policy, &request(READER, &["a"])),
            TrustDecision::Allowed
        );
        assert_eq!(
            decide(
                &policy,
                &request("system:serviceaccount:kube-system:x", &["a"])
            ),
            TrustDecision::ImplicitDeny
        );
    }

    #[test]
    fn condition_keys_are_case_insensitive() {
        let policy = json!({"Statement": [{
            "Effect": "Allow", "Principal": {"Federated": PROVIDER},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {format!("{}:SUB", ISSUER.to_uppercase()): READER}}
        }]});
        assert_eq!(
            decide(&policy, &request(READER, &["a"])),
            TrustDecision::Allowed
        );
    }

    #[test]
    fn set_operators_on_audience() {
        let key = format!("{ISSUER}:aud");
        let any = json!({"Statement": [{
            "Effect": "Allow", "Principal": {"Federated": PROVIDER},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"ForAnyValue:StringEquals": {key.clone(): ["sts.amazonaws.com"]}}
        }]});
        assert_eq!(
            decide(&any, &request(READER, &["x", "sts.amazonaws.com"])),
            TrustDecision::Allowed
        );
        let all = json!({"Statement": [{
            "Effect": "Allow", "Principal": {"Federated": PROVIDER},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"ForAllValues:StringEquals": {key: ["sts.amazonaws.com"]}}
        }]});
        assert_eq!(
            decide(&all, &request(READER, &["x", "sts.amazonaws.com"])),
            TrustDecision::ImplicitDeny
        );
        assert_eq!(
            decide(&all, &request(READER, &["sts.amazonaws.com"])),
            TrustDecision::Allowed
        );
    }

    #[test]
    fn missing_key_and_if_exists() {
        let policy = json!({"Statement": [{
            "Effect": "Allow", "Principal": {"Federated": PROVIDER},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {format!("{ISSUER}:amr"): "authenticated"}}
        }]});
        assert_eq!(
            decide(&policy, &request(READER, &["a"])),
            TrustDecision::ImplicitDeny
        );
        let policy = json!({"Statement": [{
            "Effect": "Allow", "Principal": {"Federated": PROVIDER},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEqualsIfExists": {format!("{ISSUER}:amr"): "authenticated"}}
        }]});
        assert_eq!(
            decide(&policy, &request(READER, &["a"])),
            TrustDecision::Allowed
        );
    }

    // Issue 11: an unknown operator made its statement not apply, so a Deny holding one was
    // silently dropped and the Allow beside it granted.
    #[test]
    fn unknown_operator_fails_closed() {
        let mut policy = eksctl_policy("StringEquals", READER);
        policy["Statement"]
            .as_array_mut()
            .expect("list")
            .push(json!({
                "Effect": "Deny", "Principal": { "Federated": PROVIDER },
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": { "StringFancy": { format!("{ISSUER}:sub"): READER } }
            }));
        assert_eq!(
            evaluate_trust_policy(&policy, &request(READER, &["sts.amazonaws.com"])),
            Err(TrustPolicyError::Condition(
                ConditionError::UnknownOperator("StringFancy".into())
            ))
        );
    }

    #[test]
    fn wildcard_principals_never_grant_a_web_identity() {
        for principal in [json!("*"), json!({"AWS": "*"}), json!({"Federated": "*"})] {
            let allow = json!({"Statement": {"Effect": "Allow", "Principal": principal.clone(), "Action": "*"}});
            assert_eq!(
                decide(&allow, &request(READER, &["a"])),
                TrustDecision::ImplicitDeny
            );
            let deny = json!({"Statement": [
                {"Effect": "Allow", "Principal": {"Federated": PROVIDER}, "Action": "*"},
                {"Effect": "Deny", "Principal": principal, "Action": "*"}
            ]});
            assert_eq!(
                decide(&deny, &request(READER, &["a"])),
                TrustDecision::ExplicitDeny
            );
        }
    }

    #[test]
    fn malformed_policies_are_errors() {
        let r = request(READER, &["a"]);
        assert_eq!(
            evaluate_trust_policy(&json!({}), &r),
            Err(TrustPolicyError::NoStatement)
        );
        assert_eq!(
            evaluate_trust_policy(&json!({"Statement": [{"Effect": "Maybe"}]}), &r),
            Err(TrustPolicyError::BadEffect)
        );
        assert!(evaluate_trust_policy_text("{", &r).is_err());
    }

    #[test]
    fn glob() {
        assert!(glob_matches("*", ""));
        assert!(glob_matches("a*c", "abbbc"));
        assert!(glob_matches("a?c", "abc"));
        assert!(!glob_matches("a?c", "ac"));
        assert!(glob_matches(
            "*:default:*",
            "system:serviceaccount:default:x"
        ));
        assert!(!glob_matches("abc", "abcd"));
    }
}
