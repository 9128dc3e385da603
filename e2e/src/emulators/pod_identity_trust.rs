//! Does a role's trust policy let the EKS service principal assume it for Pod Identity?
//!
//! EKS Auth calls `sts:AssumeRole` and `sts:TagSession` as `pods.eks.amazonaws.com`; both
//! must be allowed and neither explicitly denied. Written for this emulator from the IAM
//! policy grammar: `Principal` `"*"`, `{"Service": str|[str]}` or `{"AWS": "*"}`;
//! `Action`/`NotAction` globs; conditions `StringEquals`, `StringLike`, `ArnEquals`,
//! `ArnLike` (and their `Not` forms) on `aws:SourceAccount`, `aws:SourceArn` and
//! `aws:RequestTag/<key>`. Any other operator or key makes its statement not apply.

use std::collections::BTreeMap;

use serde_json::Value;

use super::trust_policy::glob_matches;

pub const EKS_PODS_PRINCIPAL: &str = "pods.eks.amazonaws.com";
pub const REQUIRED_ACTIONS: [&str; 2] = ["sts:AssumeRole", "sts:TagSession"];

/// The request context EKS Auth presents to the trust policy.
#[derive(Debug, Clone)]
pub struct PodIdentityAssumeContext {
    pub source_account: String,
    /// The cluster's ARN.
    pub source_arn: String,
    pub session_tags: BTreeMap<String, String>,
}

impl PodIdentityAssumeContext {
    fn value(&self, key: &str) -> Option<String> {
        let key = key.to_ascii_lowercase();
        match key.as_str() {
            "aws:sourceaccount" => Some(self.source_account.clone()),
            "aws:sourcearn" => Some(self.source_arn.clone()),
            _ => key.strip_prefix("aws:requesttag/").and_then(|tag| {
                self.session_tags
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(tag))
                    .map(|(_, v)| v.clone())
            }),
        }
    }
}

/// Allowed when every required action is allowed and none explicitly denied.
pub fn eks_may_assume(policy_text: &str, context: &PodIdentityAssumeContext) -> bool {
    let Ok(policy) = serde_json::from_str::<Value>(policy_text) else {
        return false;
    };
    let statements: Vec<&Value> = match policy.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return false,
    };
    REQUIRED_ACTIONS.iter().all(|action| {
        let applying: Vec<&&Value> = statements
            .iter()
            .filter(|s| applies(s, action, context))
            .collect();
        let denied = applying
            .iter()
            .any(|s| s.get("Effect").and_then(Value::as_str) == Some("Deny"));
        let allowed = applying
            .iter()
            .any(|s| s.get("Effect").and_then(Value::as_str) == Some("Allow"));
        allowed && !denied
    })
}

fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn applies(statement: &Value, action: &str, context: &PodIdentityAssumeContext) -> bool {
    principal_matches(statement.get("Principal"))
        && action_matches(statement, action)
        && conditions_match(statement.get("Condition"), context)
}

fn principal_matches(principal: Option<&Value>) -> bool {
    match principal {
        Some(Value::String(any)) => any == "*",
        Some(Value::Object(map)) => {
            strings(map.get("Service")).contains(&EKS_PODS_PRINCIPAL)
                || strings(map.get("AWS")).contains(&"*")
        }
        _ => false,
    }
}

fn action_matches(statement: &Value, action: &str) -> bool {
    let matches_any = |list: Vec<&str>| {
        list.iter()
            .any(|p| glob_matches(&p.to_ascii_lowercase(), &action.to_ascii_lowercase()))
    };
    if let Some(actions) = statement.get("Action") {
        matches_any(strings(Some(actions)))
    } else if let Some(not_actions) = statement.get("NotAction") {
        !matches_any(strings(Some(not_actions)))
    } else {
        false
    }
}

fn conditions_match(conditions: Option<&Value>, context: &PodIdentityAssumeContext) -> bool {
    let Some(conditions) = conditions else {
        return true;
    };
    let Some(operators) = conditions.as_object() else {
        return false;
    };
    operators.iter().all(|(operator, keys)| {
        let Some(keys) = keys.as_object() else {
            return false;
        };
        keys.iter().all(|(key, wanted)| {
            let wanted = strings(Some(wanted));
            let actual = context.value(key);
            match operator.as_str() {
                "StringEquals" | "ArnEquals" => {
                    actual.is_some_and(|a| wanted.contains(&a.as_str()))
                }
                "StringLike" | "ArnLike" => {
                    actual.is_some_and(|a| wanted.iter().any(|w| glob_matches(w, &a)))
                }
                "StringNotEquals" | "ArnNotEquals" => {
                    actual.is_none_or(|a| !wanted.contains(&a.as_str()))
                }
                "StringNotLike" | "ArnNotLike" => {
                    actual.is_none_or(|a| !wanted.iter().any(|w| glob_matches(w, &a)))
                }
                _ => false,
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> PodIdentityAssumeContext {
        PodIdentityAssumeContext {
            source_account: "123456789012".into(),
            source_arn: "arn:aws:eks:us-east-1:123456789012:cluster/podiam-e2e".into(),
            session_tags: BTreeMap::from([("kubernetes-namespace".into(), "apps".into())]),
        }
    }

    #[test]
    fn needs_the_service_principal_and_both_actions() {
        let ok = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
        assert!(eks_may_assume(ok, &context()));
        let no_tag = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        assert!(!eks_may_assume(no_tag, &context()));
        let ec2 = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;
        assert!(!eks_may_assume(ec2, &context()));
        let wildcard = r#"{"Statement":{"Effect":"Allow","Principal":{"Service":["x","pods.eks.amazonaws.com"]},"Action":"sts:*"}}"#;
        assert!(eks_may_assume(wildcard, &context()));
    }

    #[test]
    fn conditions_and_denies() {
        let scoped = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"],"Condition":{"StringEquals":{"aws:SourceAccount":"123456789012","aws:RequestTag/kubernetes-namespace":"apps"},"ArnLike":{"aws:SourceArn":"arn:aws:eks:*:123456789012:cluster/*"}}}]}"#;
        assert!(eks_may_assume(scoped, &context()));
        let other_ns = scoped.replace("\"apps\"", "\"other\"");
        assert!(!eks_may_assume(&other_ns, &context()));
        let denied = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*"},{"Effect":"Deny","Principal":"*","Action":"sts:TagSession"}]}"#;
        assert!(!eks_may_assume(denied, &context()));
    }
}
