//! The emulator's reading of identity policies (JSON texts) for one action on one resource,
//! written from the IAM User Guide ("Policy evaluation logic") independently of the plugin:
//! allowed when an Allow statement matches action and resource (`Action`/`NotAction`,
//! `Resource`/`NotResource`, globs, actions case-insensitive) and no Deny does.
//!
//! Conditions: the S3 authorization (`s3_authorization`) models no request context, so there a
//! statement with a `Condition` is not evaluated (an Allow with one grants nothing, a Deny with
//! one denies). The operator's policy (`operator_policy`) gives the context keys it models; a
//! condition on any other key, or one `policy_condition` cannot read, is treated the same
//! conservative way.

use serde_json::Value;

use super::policy_condition::{ConditionContext, condition_block_holds, policy_strings};
use super::trust_policy::glob_matches;

/// What identity policies say about one permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyDecision {
    Allowed,
    ExplicitDeny,
    NoAllow,
}

/// How statements' `Condition` blocks are read.
#[derive(Debug, Clone, Copy)]
pub enum Conditions<'a> {
    /// No request context is modelled: conditional statements are conservative.
    NotModelled,
    /// The request's context; `modelled` lists (lowercase) every key the caller models, so an
    /// absent one of these is truly absent. Keys outside it are conservative.
    Context {
        context: &'a ConditionContext,
        modelled: &'a [&'a str],
    },
}

/// Evaluates `policies` for `action` on `resource`. Unparsable policies grant nothing.
pub fn evaluate(
    policies: &[String],
    action: &str,
    resource: &str,
    conditions: Conditions<'_>,
) -> PolicyDecision {
    let mut allowed = false;
    for text in policies {
        let Ok(policy) = serde_json::from_str::<Value>(text) else {
            continue;
        };
        let statements: Vec<&Value> = match policy.get("Statement") {
            Some(Value::Array(list)) => list.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            _ => continue,
        };
        for statement in statements {
            let action_matches = matches_element(statement, "Action", "NotAction", |pattern| {
                glob_matches(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())
            });
            let resource_matches =
                matches_element(statement, "Resource", "NotResource", |pattern| {
                    glob_matches(pattern, resource)
                });
            if !(action_matches && resource_matches) {
                continue;
            }
            let condition = condition_outcome(statement.get("Condition"), conditions);
            match statement.get("Effect").and_then(Value::as_str) {
                // A Deny applies unless its condition is known not to hold.
                Some("Deny") if condition != Outcome::Fails => return PolicyDecision::ExplicitDeny,
                Some("Allow") if condition == Outcome::Holds => allowed = true,
                _ => {}
            }
        }
    }
    if allowed {
        PolicyDecision::Allowed
    } else {
        PolicyDecision::NoAllow
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Holds,
    Fails,
    /// Not modelled or unreadable: an Allow grants nothing, a Deny denies.
    Unknown,
}

fn condition_outcome(condition: Option<&Value>, conditions: Conditions<'_>) -> Outcome {
    let Some(condition) = condition else {
        return Outcome::Holds;
    };
    let Conditions::Context { context, modelled } = conditions else {
        return Outcome::Unknown;
    };
    let all_modelled = condition.as_object().is_some_and(|operators| {
        operators.values().all(|keys| {
            keys.as_object().is_some_and(|keys| {
                keys.keys()
                    .all(|key| modelled.contains(&key.to_ascii_lowercase().as_str()))
            })
        })
    });
    if !all_modelled {
        return Outcome::Unknown;
    }
    match condition_block_holds(Some(condition), context) {
        Ok(true) => Outcome::Holds,
        Ok(false) => Outcome::Fails,
        Err(_) => Outcome::Unknown,
    }
}

fn matches_element(
    statement: &Value,
    positive: &str,
    negative: &str,
    matches: impl Fn(&str) -> bool,
) -> bool {
    if let Some(value) = statement.get(positive) {
        policy_strings(value).iter().any(|p| matches(p))
    } else if let Some(value) = statement.get(negative) {
        !policy_strings(value).iter().any(|p| matches(p))
    } else {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASS_ROLE: &str = r#"{"Statement":[{"Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::*:role/*","Condition":{"StringEquals":{"iam:PassedToService":"pods.eks.amazonaws.com"}}}]}"#;
    const MODELLED: &[&str] = &["iam:passedtoservice"];

    fn context(passed_to: Option<&str>) -> ConditionContext {
        passed_to
            .map(|service| ("iam:passedtoservice".to_owned(), vec![service.to_owned()]))
            .into_iter()
            .collect()
    }

    fn pass_role(policies: &[String], passed_to: Option<&str>) -> PolicyDecision {
        let context = context(passed_to);
        evaluate(
            policies,
            "iam:PassRole",
            "arn:aws:iam::123456789012:role/r",
            Conditions::Context {
                context: &context,
                modelled: MODELLED,
            },
        )
    }

    #[test]
    fn conditions_hold_only_with_the_modelled_context() {
        let policies = [PASS_ROLE.to_owned()];
        assert_eq!(
            pass_role(&policies, Some("pods.eks.amazonaws.com")),
            PolicyDecision::Allowed
        );
        assert_eq!(
            pass_role(&policies, Some("ec2.amazonaws.com")),
            PolicyDecision::NoAllow
        );
        assert_eq!(pass_role(&policies, None), PolicyDecision::NoAllow);
        // Without a modelled context (S3's rule), a conditional Allow grants nothing.
        assert_eq!(
            evaluate(
                &policies,
                "iam:PassRole",
                "arn:aws:iam::123456789012:role/r",
                Conditions::NotModelled
            ),
            PolicyDecision::NoAllow
        );
    }

    #[test]
    fn unmodelled_keys_and_unknown_operators_are_conservative() {
        let allow = r#"{"Statement":{"Effect":"Allow","Action":"iam:*","Resource":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":"x"}}}}"#;
        // A negated operator on an absent key would hold: the key is not modelled, so no.
        assert_eq!(
            pass_role(&[allow.to_owned()], Some("pods.eks.amazonaws.com")),
            PolicyDecision::NoAllow
        );
        let deny = r#"{"Statement":{"Effect":"Deny","Action":"iam:PassRole","Resource":"*","Condition":{"NumericLessThan":{"iam:PassedToService":"1"}}}}"#;
        assert_eq!(
            pass_role(
                &[PASS_ROLE.to_owned(), deny.to_owned()],
                Some("pods.eks.amazonaws.com")
            ),
            PolicyDecision::ExplicitDeny
        );
        // A Deny whose modelled condition fails does not apply.
        let deny_ec2 = r#"{"Statement":{"Effect":"Deny","Action":"iam:PassRole","Resource":"*","Condition":{"StringEquals":{"iam:PassedToService":"ec2.amazonaws.com"}}}}"#;
        assert_eq!(
            pass_role(
                &[PASS_ROLE.to_owned(), deny_ec2.to_owned()],
                Some("pods.eks.amazonaws.com")
            ),
            PolicyDecision::Allowed
        );
    }
}
