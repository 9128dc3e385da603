//! A role trust policy evaluated for one request, statement by statement, keeping why each
//! statement did or did not apply so the diagnosis can say it. The e2e gate enforces with its
//! own code (no sharing); a differential test compares the two.
//!
//! IAM's logic ("Policy evaluation logic", IAM User Guide): an explicit `Deny` in an applying
//! statement wins; else an applying `Allow` allows; else the request is implicitly denied. A
//! statement applies when its principal, its action (`Action`, or `NotAction`) and every
//! condition match. Actions are case-insensitive and take `*`/`?`.
//!
//! Principals: a web identity caller (`sts:AssumeRoleWithWebIdentity`) is admitted only by a
//! `{"Federated": "<provider ARN>"}` that names its OIDC provider. A wildcard principal (`"*"`,
//! `{"AWS": "*"}`, `{"Federated": "*"}`) never admits it — podiam refuses it as the lead
//! decided for issue 11 ("wildcard principals refused as AWS refuses them"): IAM's Principal
//! reference lists web identity principals only as the provider itself. A wildcard still
//! matches in a `Deny` (denying everyone includes the caller). A service caller (EKS Pod
//! Identity's `pods.eks.amazonaws.com`) is matched by `{"Service": name}`, `"*"` and
//! `{"AWS": "*"}` ("All principals" in the Principal reference).
//!
//! A policy this evaluator cannot read (an unknown condition operator, an `Effect` other than
//! Allow/Deny, a malformed `Condition`) is `Unreadable`: IAM refuses to store such a document
//! (MalformedPolicyDocument), and podiam never guesses it as met.

use serde_json::Value;

use crate::cloud::aws::pod_identity;

use super::iam_condition::{ContextKeys, Operator, wildcard};

/// Who asks STS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller<'a> {
    /// A web identity token from this IAM OIDC provider (its ARN).
    WebIdentity(&'a str),
    /// An AWS service principal, e.g. `pods.eks.amazonaws.com`.
    Service(&'a str),
    /// A role session calling `sts:AssumeRole` (role chaining, `--assume-role`).
    RoleSession(RoleSession<'a>),
}

/// A role session as an `{"AWS": …}` principal sees it: admitted by the role's ARN (any path),
/// the session's ARN, the account (`ACCT` or `arn:aws:iam::ACCT:root`) or `*`. A role assuming
/// itself is admitted only by its own role ARN named explicitly (IAM's behaviour since 2022:
/// an account principal no longer grants self-assumption).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleSession<'a> {
    pub account: &'a str,
    pub role_name: &'a str,
    /// `arn:aws:sts::ACCT:assumed-role/ROLE/SESSION`.
    pub session_arn: &'a str,
    /// The target role is the caller's own role.
    pub assuming_itself: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub caller: Caller<'a>,
    pub action: &'a str,
    pub context: &'a ContextKeys,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The statement (index) that allowed.
    Allowed(usize),
    /// The statement (index) that denied.
    ExplicitDeny(usize),
    ImplicitDeny,
    Unreadable(Unreadable),
}

impl Decision {
    pub fn allows(&self) -> bool {
        matches!(self, Decision::Allowed(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    #[error("the trust policy has no Statement")]
    NoStatement,
    #[error("statement {statement} is not an object")]
    NotAnObject { statement: usize },
    #[error("statement {statement} has Effect {effect}, neither Allow nor Deny")]
    BadEffect { statement: usize, effect: String },
    #[error(
        "statement {statement} uses condition operator {operator:?}, which podiam does not evaluate (it knows String[Not]Equals[IgnoreCase], String[Not]Like, Arn[Not]Equals/Like, Bool, Null, with ForAnyValue:/ForAllValues: and …IfExists)"
    )]
    UnknownOperator { statement: usize, operator: String },
    #[error("statement {statement}'s Condition is not an object of objects")]
    BadCondition { statement: usize },
}

/// One condition key of one statement, as judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionTrace {
    pub operator: String,
    pub key: String,
    pub wanted: Vec<String>,
    pub actual: Vec<String>,
    pub held: bool,
}

/// Why one statement did or did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementTrace {
    pub index: usize,
    pub sid: Option<String>,
    pub effect: Effect,
    /// `None` when the principal matched; else why not.
    pub principal_mismatch: Option<String>,
    pub action_matched: bool,
    pub conditions: Vec<ConditionTrace>,
}

impl StatementTrace {
    pub fn applies(&self) -> bool {
        self.principal_mismatch.is_none()
            && self.action_matched
            && self.conditions.iter().all(|c| c.held)
    }

    /// "statement 2 (Sid \"X\")", for messages.
    pub fn name(&self) -> String {
        match &self.sid {
            Some(sid) if !sid.is_empty() => format!("statement {} (Sid {sid:?})", self.index),
            _ => format!("statement {}", self.index),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub decision: Decision,
    pub statements: Vec<StatementTrace>,
}

/// Evaluates `policy` for `request`.
pub fn evaluate(policy: &Value, request: &Request) -> Evaluation {
    let statements = match statements(policy) {
        Ok(s) => s,
        Err(problem) => {
            return Evaluation {
                decision: Decision::Unreadable(problem),
                statements: Vec::new(),
            };
        }
    };
    let mut traces = Vec::with_capacity(statements.len());
    for (index, statement) in statements.iter().enumerate() {
        match trace(index, statement, request) {
            Ok(t) => traces.push(t),
            Err(problem) => {
                return Evaluation {
                    decision: Decision::Unreadable(problem),
                    statements: traces,
                };
            }
        }
    }
    let applying = |effect: Effect| {
        traces
            .iter()
            .find(|t| t.effect == effect && t.applies())
            .map(|t| t.index)
    };
    let decision = if let Some(index) = applying(Effect::Deny) {
        Decision::ExplicitDeny(index)
    } else if let Some(index) = applying(Effect::Allow) {
        Decision::Allowed(index)
    } else {
        Decision::ImplicitDeny
    };
    Evaluation {
        decision,
        statements: traces,
    }
}

/// EKS Pod Identity: EKS Auth calls `sts:AssumeRole` and `sts:TagSession` as
/// `pods.eks.amazonaws.com`; both must be allowed. Returns each action's evaluation.
pub fn evaluate_pod_identity<'p>(
    policy: &Value,
    context: &ContextKeys,
    actions: &'p [&'p str],
) -> Vec<(&'p str, Evaluation)> {
    actions
        .iter()
        .map(|action| {
            let request = Request {
                caller: Caller::Service(pod_identity::TRUST_PRINCIPAL),
                action,
                context,
            };
            (*action, evaluate(policy, &request))
        })
        .collect()
}

fn statements(policy: &Value) -> Result<Vec<&Value>, Unreadable> {
    match policy.get("Statement") {
        Some(Value::Array(list)) => Ok(list.iter().collect()),
        Some(one @ Value::Object(_)) => Ok(vec![one]),
        _ => Err(Unreadable::NoStatement),
    }
}

fn trace(index: usize, statement: &Value, request: &Request) -> Result<StatementTrace, Unreadable> {
    let Some(statement) = statement.as_object() else {
        return Err(Unreadable::NotAnObject { statement: index });
    };
    let effect = match statement.get("Effect") {
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        other => {
            return Err(Unreadable::BadEffect {
                statement: index,
                effect: other.map_or("(none)".to_string(), Value::to_string),
            });
        }
    };
    let conditions = conditions(index, statement.get("Condition"), request.context)?;
    Ok(StatementTrace {
        index,
        sid: statement
            .get("Sid")
            .and_then(Value::as_str)
            .map(str::to_string),
        effect,
        principal_mismatch: principal_mismatch(statement.get("Principal"), effect, request.caller),
        action_matched: action_matched(statement, request.action),
        conditions,
    })
}

/// Every string in a JSON string or (nested) list; booleans and numbers as their JSON text.
fn texts(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect_texts(value, &mut out);
    out
}

fn collect_texts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Bool(b) => out.push(b.to_string()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|i| collect_texts(i, out)),
        Value::Null | Value::Object(_) => {}
    }
}

fn principal_mismatch(principal: Option<&Value>, effect: Effect, caller: Caller) -> Option<String> {
    let named = |kind: &str| -> Vec<String> {
        principal
            .and_then(|p| p.get(kind))
            .map(texts)
            .unwrap_or_default()
    };
    let everyone =
        principal.and_then(Value::as_str) == Some("*") || named("AWS").iter().any(|p| p == "*");
    match caller {
        Caller::WebIdentity(provider) => {
            let federated = named("Federated");
            if federated.iter().any(|p| p == provider) {
                return None;
            }
            let wildcard = everyone || federated.iter().any(|p| p == "*");
            match (wildcard, effect) {
                (true, Effect::Deny) => None,
                (true, Effect::Allow) => Some(format!(
                    "its wildcard principal does not admit a web identity: name {{\"Federated\": \"{provider}\"}}"
                )),
                (false, _) if federated.is_empty() => {
                    Some("it names no federated (OIDC) principal".to_string())
                }
                (false, _) => Some(format!(
                    "it trusts {}, not {provider}",
                    federated.join(", ")
                )),
            }
        }
        Caller::Service(service) => {
            if everyone || named("Service").iter().any(|s| s == service) {
                None
            } else {
                Some(format!("it does not name the service {service}"))
            }
        }
        // Denying everyone denies a role assuming itself too.
        Caller::RoleSession(_) if everyone && effect == Effect::Deny => None,
        Caller::RoleSession(session) => role_session_mismatch(&named("AWS"), everyone, &session),
    }
}

/// Why an `{"AWS": …}` principal list does not admit `session` (`None` when it does).
fn role_session_mismatch(aws: &[String], everyone: bool, session: &RoleSession) -> Option<String> {
    let names_role = |p: &str| {
        p.strip_prefix("arn:aws:iam::")
            .and_then(|rest| rest.split_once(":role/"))
            .is_some_and(|(account, path_name)| {
                account == session.account
                    && path_name.rsplit('/').next() == Some(session.role_name)
            })
    };
    let names_account =
        |p: &str| p == session.account || p == format!("arn:aws:iam::{}:root", session.account);
    if aws
        .iter()
        .any(|p| names_role(p) || p == session.session_arn)
    {
        return None;
    }
    if session.assuming_itself {
        return Some(format!(
            "a role assuming itself must be named explicitly: add {{\"AWS\": \"arn:aws:iam::{}:role/{}\"}} (an account or wildcard principal no longer grants self-assumption)",
            session.account, session.role_name
        ));
    }
    if everyone || aws.iter().any(|p| names_account(p)) {
        return None;
    }
    Some(if aws.is_empty() {
        "it names no AWS principal".to_string()
    } else {
        format!(
            "it trusts {}, not role {} of account {}",
            aws.join(", "),
            session.role_name,
            session.account
        )
    })
}

fn action_matched(statement: &serde_json::Map<String, Value>, action: &str) -> bool {
    let action = action.to_lowercase();
    let any = |patterns: &Value| {
        texts(patterns)
            .iter()
            .any(|p| wildcard(&p.to_lowercase(), &action))
    };
    // IAM requires exactly one of Action/NotAction; Action is read first if both appear.
    match (statement.get("Action"), statement.get("NotAction")) {
        (Some(actions), _) => any(actions),
        (None, Some(not_actions)) => !any(not_actions),
        (None, None) => false,
    }
}

fn conditions(
    index: usize,
    condition: Option<&Value>,
    context: &ContextKeys,
) -> Result<Vec<ConditionTrace>, Unreadable> {
    let Some(condition) = condition else {
        return Ok(Vec::new());
    };
    let Some(operators) = condition.as_object() else {
        return Err(Unreadable::BadCondition { statement: index });
    };
    let mut traces = Vec::new();
    for (name, keys) in operators {
        let Some(operator) = Operator::parse(name) else {
            return Err(Unreadable::UnknownOperator {
                statement: index,
                operator: name.clone(),
            });
        };
        let Some(keys) = keys.as_object() else {
            return Err(Unreadable::BadCondition { statement: index });
        };
        for (key, wanted) in keys {
            let wanted = texts(wanted);
            let actual = context.values(key).to_vec();
            traces.push(ConditionTrace {
                operator: name.clone(),
                key: key.clone(),
                held: operator.holds(&actual, &wanted),
                wanted,
                actual,
            });
        }
    }
    Ok(traces)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const PROVIDER: &str = "arn:aws:iam::123456789012:oidc-provider/oidc.example.com/id/ABC";
    const SUB_KEY: &str = "oidc.example.com/id/ABC:sub";
    const AUD_KEY: &str = "oidc.example.com/id/ABC:aud";
    const READER: &str = "system:serviceaccount:default:reader";

    fn context(sub: &str, aud: &[&str]) -> ContextKeys {
        ContextKeys::new()
            .with(SUB_KEY, vec![sub.to_string()])
            .with(AUD_KEY, aud.iter().map(|a| (*a).to_string()).collect())
    }

    fn decide(policy: &Value, context: &ContextKeys) -> Decision {
        evaluate(
            policy,
            &Request {
                caller: Caller::WebIdentity(PROVIDER),
                action: "sts:AssumeRoleWithWebIdentity",
                context,
            },
        )
        .decision
    }

    fn statement(effect: &str, condition: Value) -> Value {
        json!({"Effect": effect, "Principal": {"Federated": PROVIDER},
               "Action": "sts:AssumeRoleWithWebIdentity", "Condition": condition})
    }

    #[test]
    fn explicit_deny_wins_over_allow() {
        let policy = json!({"Statement": [
            statement("Allow", json!({"StringLike": {SUB_KEY: "system:serviceaccount:default:*"}})),
            statement("Deny", json!({"StringEquals": {SUB_KEY: READER}})),
        ]});
        assert_eq!(
            decide(&policy, &context(READER, &["sts.amazonaws.com"])),
            Decision::ExplicitDeny(1)
        );
        assert_eq!(
            decide(
                &policy,
                &context("system:serviceaccount:default:other", &["a"])
            ),
            Decision::Allowed(0)
        );
    }

    #[test]
    fn unknown_operator_is_unreadable_never_met() {
        let policy =
            json!({"Statement": [statement("Allow", json!({"StringFancy": {SUB_KEY: READER}}))]});
        assert_eq!(
            decide(&policy, &context(READER, &["a"])),
            Decision::Unreadable(Unreadable::UnknownOperator {
                statement: 0,
                operator: "StringFancy".into()
            })
        );
    }

    #[test]
    fn condition_keys_ignore_case() {
        let policy = json!({"Statement": [statement("Allow", json!({"StringEquals": {SUB_KEY.to_uppercase(): READER}}))]});
        assert_eq!(
            decide(&policy, &context(READER, &["a"])),
            Decision::Allowed(0)
        );
    }

    #[test]
    fn wildcard_principal_admits_no_web_identity_but_denies() {
        for principal in [json!("*"), json!({"AWS": "*"}), json!({"Federated": "*"})] {
            let allow =
                json!({"Statement": {"Effect": "Allow", "Principal": principal, "Action": "*"}});
            assert_eq!(
                decide(&allow, &context(READER, &["a"])),
                Decision::ImplicitDeny,
                "{principal}"
            );
            let deny = json!({"Statement": [
                statement("Allow", json!({})),
                {"Effect": "Deny", "Principal": principal, "Action": "*"}
            ]});
            assert_eq!(
                decide(&deny, &context(READER, &["a"])),
                Decision::ExplicitDeny(1)
            );
        }
    }

    #[test]
    fn not_action_and_action_wildcards() {
        let mut s = statement("Allow", json!({}));
        s.as_object_mut().unwrap().remove("Action");
        s["NotAction"] = json!("sts:AssumeRole");
        assert!(decide(&json!({"Statement": [s.clone()]}), &context(READER, &[])).allows());
        s["NotAction"] = json!("STS:AssumeRole*");
        assert_eq!(
            decide(&json!({"Statement": [s]}), &context(READER, &[])),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn pod_identity_needs_both_actions() {
        let context = ContextKeys::new().with("aws:SourceAccount", vec!["123456789012".into()]);
        let actions = ["sts:AssumeRole", "sts:TagSession"];
        let only_assume = json!({"Statement": {"Effect": "Allow", "Principal": {"Service": crate::cloud::aws::pod_identity::TRUST_PRINCIPAL}, "Action": "sts:AssumeRole"}});
        let results = evaluate_pod_identity(&only_assume, &context, &actions);
        assert!(results[0].1.decision.allows());
        assert!(!results[1].1.decision.allows());
        let everyone =
            json!({"Statement": {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:*"}});
        assert!(
            evaluate_pod_identity(&everyone, &context, &actions)
                .iter()
                .all(|(_, e)| e.decision.allows())
        );
    }

    #[test]
    fn bad_effect_and_missing_statement_are_unreadable() {
        assert_eq!(
            decide(&json!({}), &context(READER, &[])),
            Decision::Unreadable(Unreadable::NoStatement)
        );
        assert!(matches!(
            decide(
                &json!({"Statement": [{"Effect": "Maybe"}]}),
                &context(READER, &[])
            ),
            Decision::Unreadable(Unreadable::BadEffect { .. })
        ));
    }
}
