//! Does a role's trust policy let the EKS service principal assume it for Pod Identity?
//!
//! EKS Auth calls `sts:AssumeRole` and `sts:TagSession` as `pods.eks.amazonaws.com`; both
//! must be allowed and neither explicitly denied. The statement logic is the gate's own
//! ([`super::trust_policy::decide`]); the request context holds `aws:SourceAccount`,
//! `aws:SourceArn` and `aws:RequestTag/<key>` for each session tag. A policy the gate cannot
//! read (an unknown operator, …) refuses the request: it fails closed.

use std::collections::BTreeMap;

use serde_json::Value;

use super::policy_condition::ConditionContext;
use super::trust_policy::{Caller, TrustDecision, decide};

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
    fn condition_keys(&self) -> ConditionContext {
        let mut keys = ConditionContext::new();
        keys.insert(
            "aws:sourceaccount".into(),
            vec![self.source_account.clone()],
        );
        keys.insert("aws:sourcearn".into(), vec![self.source_arn.clone()]);
        for (tag, value) in &self.session_tags {
            keys.insert(
                format!("aws:requesttag/{}", tag.to_ascii_lowercase()),
                vec![value.clone()],
            );
        }
        keys
    }
}

/// Allowed when every required action is allowed and none explicitly denied.
pub fn eks_may_assume(policy_text: &str, context: &PodIdentityAssumeContext) -> bool {
    let Ok(policy) = serde_json::from_str::<Value>(policy_text) else {
        return false;
    };
    let keys = context.condition_keys();
    REQUIRED_ACTIONS.iter().all(|action| {
        let decision = decide(
            &policy,
            Caller::ServicePrincipal(EKS_PODS_PRINCIPAL),
            action,
            &keys,
        );
        if let Err(err) = &decision {
            tracing::debug!(%err, "trust policy refused: the gate cannot read it");
        }
        matches!(decision, Ok(TrustDecision::Allowed))
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

    // Issue 11: an unknown operator made its statement not apply; now the request is refused.
    #[test]
    fn unknown_operators_and_new_operators() {
        let unknown = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:*"},{"Effect":"Deny","Principal":"*","Action":"sts:*","Condition":{"StringFancy":{"aws:SourceAccount":"1"}}}]}"#;
        assert!(!eks_may_assume(unknown, &context()));
        let if_exists = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"pods.eks.amazonaws.com"},"Action":"sts:*","Condition":{"StringEqualsIfExists":{"aws:RequestTag/absent":"x"},"Null":{"aws:SourceArn":"false"},"StringEqualsIgnoreCase":{"AWS:REQUESTTAG/KUBERNETES-NAMESPACE":"APPS"}}}]}"#;
        assert!(eks_may_assume(if_exists, &context()));
    }
}
