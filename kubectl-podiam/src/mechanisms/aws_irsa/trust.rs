//! Explains why STS refused a token by reading the role's trust policy and the account's OIDC
//! providers with the operator's credentials. This is the plugin's own diagnosis; the test
//! emulator enforces with separate code, so the two can disagree and a test will notice.

use serde_json::Value;

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

fn as_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

fn glob(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    // Classic two-pointer wildcard match with backtracking on the last '*'.
    let (mut pi, mut vi, mut star, mut mark) = (0, 0, None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// One unmet condition, phrased for a human.
fn unmet_conditions(statement: &Value, host_path: &str, claims: &Claims) -> Vec<String> {
    let mut unmet = Vec::new();
    let Some(conditions) = statement.get("Condition").and_then(Value::as_object) else {
        return unmet;
    };
    for (operator, body) in conditions {
        let Some(body) = body.as_object() else {
            continue;
        };
        for (key, expected) in body {
            let claim = match key.strip_prefix(&format!("{host_path}:")) {
                Some("sub") => claims.sub.iter().cloned().collect::<Vec<_>>(),
                Some("aud") => claims.aud.clone(),
                _ => continue,
            };
            let expected = as_list(Some(expected));
            let matches = |f: &dyn Fn(&str, &str) -> bool| {
                claim.iter().any(|c| expected.iter().any(|e| f(e, c)))
            };
            let ok = match operator.as_str() {
                "StringEquals" => matches(&|e, c| e == c),
                "StringLike" => matches(&|e, c| glob(e, c)),
                "StringNotEquals" => !matches(&|e, c| e == c),
                "StringNotLike" => !matches(&|e, c| glob(e, c)),
                _ => true,
            };
            if !ok {
                unmet.push(format!(
                    "{operator} {key} = {expected:?} does not match the token's {claim:?}"
                ));
            }
        }
    }
    unmet
}

fn policy_check(inputs: &TrustInputs, host_path: &str) -> Check {
    const ID: &str = "aws.iam.trust-policy";
    let provider_arn = format!("arn:aws:iam::{}:oidc-provider/{host_path}", inputs.account);
    let sub = inputs.claims.sub.clone().unwrap_or_default();
    let fix = format!(
        "aws iam update-assume-role-policy --role-name {} with a statement: Effect Allow, Principal {{\"Federated\": \"{provider_arn}\"}}, Action {ACTION}, Condition StringEquals {{\"{host_path}:sub\": \"{sub}\", \"{host_path}:aud\": \"{}\"}} (or kubectl podiam bind)",
        inputs.role_name,
        inputs
            .claims
            .aud
            .first()
            .map_or("sts.amazonaws.com", String::as_str)
    );
    let statements: Vec<&Value> = match inputs.policy.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => Vec::new(),
    };
    let trusting: Vec<&Value> = statements
        .iter()
        .copied()
        .filter(|s| s.get("Effect").and_then(Value::as_str) == Some("Allow"))
        .filter(|s| {
            as_list(s.get("Principal").and_then(|p| p.get("Federated"))).contains(&provider_arn)
        })
        .filter(|s| {
            as_list(s.get("Action"))
                .iter()
                .any(|a| a == ACTION || a == "sts:*" || a == "*")
        })
        .collect();
    if trusting.is_empty() {
        let federated: Vec<String> = statements
            .iter()
            .flat_map(|s| as_list(s.get("Principal").and_then(|p| p.get("Federated"))))
            .collect();
        return Check::fail(
            ID,
            format!(
                "role {} does not trust {provider_arn} for {ACTION} (it trusts {})",
                inputs.role_name,
                if federated.is_empty() {
                    "no OIDC provider".to_string()
                } else {
                    federated.join(", ")
                }
            ),
            fix,
        );
    }
    let mut reasons = Vec::new();
    for statement in &trusting {
        let unmet = unmet_conditions(statement, host_path, inputs.claims);
        if unmet.is_empty() {
            return Check::pass(
                ID,
                format!("role {} trusts {sub} from {host_path}", inputs.role_name),
            );
        }
        reasons.extend(unmet);
    }
    Check::fail(
        ID,
        format!(
            "role {}'s trust policy refuses this token: {}",
            inputs.role_name,
            reasons.join("; ")
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

    #[test]
    fn string_like_globs() {
        assert!(glob(
            "system:serviceaccount:default:*",
            "system:serviceaccount:default:x"
        ));
        assert!(!glob(
            "system:serviceaccount:default:*",
            "system:serviceaccount:other:x"
        ));
        assert!(glob("a?c", "abc"));
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
