//! Whether a role's trust policy lets EC2 assume it for an instance profile: an Allow
//! statement for the service principal `ec2.amazonaws.com` with `sts:AssumeRole`. The
//! emulator's own reading of the policy (conditions on EC2's context are not modelled: a
//! conditioned statement counts as not granting).

use serde_json::Value;

const EC2_SERVICE: &str = "ec2.amazonaws.com";

pub fn ec2_may_assume(policy_text: &str) -> bool {
    let Ok(policy) = serde_json::from_str::<Value>(policy_text) else {
        return false;
    };
    statements(&policy).iter().any(|statement| {
        statement.get("Effect").and_then(Value::as_str) == Some("Allow")
            && statement.get("Condition").is_none()
            && names_ec2(statement.get("Principal"))
            && allows_assume_role(statement.get("Action"))
    })
}

fn statements(policy: &Value) -> Vec<&Value> {
    match policy.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(single @ Value::Object(_)) => vec![single],
        _ => Vec::new(),
    }
}

fn strings(value: Option<&Value>) -> Vec<&str> {
    match value {
        Some(Value::String(text)) => vec![text.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn names_ec2(principal: Option<&Value>) -> bool {
    principal
        .and_then(|p| p.get("Service"))
        .is_some_and(|service| strings(Some(service)).contains(&EC2_SERVICE))
}

fn allows_assume_role(action: Option<&Value>) -> bool {
    strings(action)
        .iter()
        .any(|a| a.eq_ignore_ascii_case("sts:AssumeRole") || *a == "sts:*" || *a == "*")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ec2_with_assume_role() {
        let ec2 = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        assert!(ec2_may_assume(ec2));
        let list = r#"{"Statement":{"Effect":"Allow","Principal":{"Service":["eks.amazonaws.com","ec2.amazonaws.com"]},"Action":["sts:TagSession","sts:AssumeRole"]}}"#;
        assert!(ec2_may_assume(list));
        let pods = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        assert!(!ec2_may_assume(pods));
        let web = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#;
        assert!(!ec2_may_assume(web));
        let deny = r#"{"Statement":[{"Effect":"Deny","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        assert!(!ec2_may_assume(deny));
        assert!(!ec2_may_assume("not json"));
    }
}
