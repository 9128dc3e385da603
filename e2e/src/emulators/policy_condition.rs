//! The gate's reading of an IAM `Condition` block: written for the emulator from the IAM User
//! Guide, independently of the plugin's diagnosis. It fails closed: an operator it does not
//! know is an error, and the caller refuses the request.
//!
//! IAM User Guide, "Condition operators": an absent key makes a condition false, except for
//! negated operators (true) and `…IfExists` (true); `Null` with `"true"` holds when the key is
//! absent, `"false"` when present. "Condition": values of one key are OR-ed, keys and operators
//! AND-ed; key names ignore case. "Single-valued vs. multivalued context keys": `ForAllValues`
//! holds when every request value matches some policy value (and when the key is absent);
//! `ForAnyValue` when one does (never when absent).

use std::collections::BTreeMap;

use serde_json::Value;

use super::trust_policy::glob_matches;

/// Condition context keys of a request: lowercase names → values (absent = no entry).
pub type ConditionContext = BTreeMap<String, Vec<String>>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    #[error("unknown condition operator {0:?}")]
    UnknownOperator(String),
    #[error("a Condition block must map operators to objects of keys")]
    Malformed,
}

/// Whether every operator and key of `condition` holds (`None`: no condition, holds).
pub fn condition_block_holds(
    condition: Option<&Value>,
    context: &ConditionContext,
) -> Result<bool, ConditionError> {
    let Some(condition) = condition else {
        return Ok(true);
    };
    let operators = condition.as_object().ok_or(ConditionError::Malformed)?;
    let mut all = true;
    // Every operator is read (and an unknown one refused) even after one failed.
    for (operator, keys) in operators {
        let parsed = ParsedOperator::from_name(operator)?;
        let keys = keys.as_object().ok_or(ConditionError::Malformed)?;
        for (key, policy_values) in keys {
            let actual = context
                .get(&key.to_ascii_lowercase())
                .map(Vec::as_slice)
                .unwrap_or_default();
            all &= parsed.holds(actual, &policy_strings(policy_values));
        }
    }
    Ok(all)
}

/// A string or list of strings; booleans and numbers as their text (IAM accepts them).
pub fn policy_strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(list) => list.iter().flat_map(policy_strings).collect(),
        Value::Bool(b) => vec![b.to_string()],
        Value::Number(n) => vec![n.to_string()],
        Value::Null | Value::Object(_) => Vec::new(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOperator {
    None,
    AnyValue,
    AllValues,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Base {
    Equals,
    EqualsIgnoreCase,
    Like,
    Arn,
    Bool,
    Null,
}

struct ParsedOperator {
    set: SetOperator,
    base: Base,
    not: bool,
    if_exists: bool,
}

impl ParsedOperator {
    fn from_name(name: &str) -> Result<Self, ConditionError> {
        let unknown = || ConditionError::UnknownOperator(name.to_owned());
        let (set, rest) = if let Some(rest) = name.strip_prefix("ForAnyValue:") {
            (SetOperator::AnyValue, rest)
        } else if let Some(rest) = name.strip_prefix("ForAllValues:") {
            (SetOperator::AllValues, rest)
        } else {
            (SetOperator::None, name)
        };
        // `Null` takes neither a set operator nor IfExists.
        if rest == "Null" {
            return if set == SetOperator::None {
                Ok(Self {
                    set,
                    base: Base::Null,
                    not: false,
                    if_exists: false,
                })
            } else {
                Err(unknown())
            };
        }
        let (rest, if_exists) = rest
            .strip_suffix("IfExists")
            .map_or((rest, false), |r| (r, true));
        let (base, not) = match rest {
            "StringEquals" => (Base::Equals, false),
            "StringNotEquals" => (Base::Equals, true),
            "StringEqualsIgnoreCase" => (Base::EqualsIgnoreCase, false),
            "StringNotEqualsIgnoreCase" => (Base::EqualsIgnoreCase, true),
            "StringLike" => (Base::Like, false),
            "StringNotLike" => (Base::Like, true),
            "ArnEquals" | "ArnLike" => (Base::Arn, false),
            "ArnNotEquals" | "ArnNotLike" => (Base::Arn, true),
            "Bool" => (Base::Bool, false),
            _ => return Err(unknown()),
        };
        Ok(Self {
            set,
            base,
            not,
            if_exists,
        })
    }

    fn holds(&self, actual: &[String], policy_values: &[String]) -> bool {
        let present = !actual.is_empty();
        if self.base == Base::Null {
            return policy_values
                .iter()
                .any(|v| (v == "true" && !present) || (v == "false" && present));
        }
        if !present {
            // The set operator decides first: ForAnyValue is false on an absent key even when
            // negated (found by the differential test); ForAllValues is true.
            return match self.set {
                _ if self.if_exists => true,
                SetOperator::AnyValue => false,
                SetOperator::AllValues => true,
                SetOperator::None => self.not,
            };
        }
        // For one request value: does it satisfy the operator (negation included)?
        let satisfies = |value: &String| {
            let matched = policy_values
                .iter()
                .any(|policy| base_matches(self.base, policy, value));
            if self.not { !matched } else { matched }
        };
        let satisfied = actual.iter().filter(|v| satisfies(v)).count();
        match (self.set, self.not) {
            (SetOperator::AnyValue, _) => satisfied > 0,
            (SetOperator::AllValues, _) => satisfied == actual.len(),
            // Unqualified on a multivalued key: positive if any value matches, negated only
            // if none does (AWS leaves this case unspecified; both readings are conservative).
            (SetOperator::None, false) => satisfied > 0,
            (SetOperator::None, true) => satisfied == actual.len(),
        }
    }
}

fn base_matches(base: Base, policy: &str, value: &str) -> bool {
    match base {
        Base::Equals => policy == value,
        // "ignoring case": Unicode case per character, not only ASCII.
        Base::EqualsIgnoreCase => policy
            .chars()
            .flat_map(char::to_lowercase)
            .eq(value.chars().flat_map(char::to_lowercase)),
        Base::Like => glob_matches(policy, value),
        Base::Arn => arn_like(policy, value),
        Base::Bool => policy.eq_ignore_ascii_case(value),
        Base::Null => false,
    }
}

/// ARN operators compare the six colon-separated parts one by one, each with wildcards.
fn arn_like(policy: &str, value: &str) -> bool {
    let split = |arn: &str| -> Option<Vec<String>> {
        let parts: Vec<String> = arn.splitn(6, ':').map(str::to_owned).collect();
        (parts.len() == 6).then_some(parts)
    };
    match (split(policy), split(value)) {
        (Some(p), Some(v)) => p.iter().zip(v.iter()).all(|(p, v)| glob_matches(p, v)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn context(pairs: &[(&str, &[&str])]) -> ConditionContext {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn unknown_operators_fail_closed() {
        for op in [
            "StringFancy",
            "ForAnyValue:Null",
            "NullIfExists",
            "NumericEquals",
        ] {
            assert_eq!(
                condition_block_holds(Some(&json!({op: {"k": "v"}})), &context(&[])),
                Err(ConditionError::UnknownOperator(op.into()))
            );
        }
        // Even after a failing operator, an unknown one is still an error.
        assert!(
            condition_block_holds(
                Some(&json!({"StringEquals": {"k": "x"}, "Zzz": {"k": "v"}})),
                &context(&[("k", &["y"])])
            )
            .is_err()
        );
    }

    #[test]
    fn operators() {
        let ctx = context(&[("aud", &["a", "b"]), ("flag", &["true"])]);
        let holds = |c: Value| condition_block_holds(Some(&c), &ctx).expect("valid");
        assert!(holds(json!({"ForAnyValue:StringEquals": {"AUD": "a"}})));
        assert!(!holds(json!({"ForAllValues:StringEquals": {"aud": "a"}})));
        assert!(holds(
            json!({"ForAllValues:StringEquals": {"missing": "a"}})
        ));
        assert!(!holds(
            json!({"ForAnyValue:StringEquals": {"missing": "a"}})
        ));
        assert!(holds(json!({"StringNotEquals": {"missing": "a"}})));
        assert!(holds(json!({"StringEqualsIfExists": {"missing": "a"}})));
        assert!(holds(json!({"Null": {"missing": true}})));
        assert!(holds(json!({"Null": {"aud": "false"}})));
        assert!(holds(json!({"Bool": {"flag": true}})));
        assert!(holds(json!({"StringEqualsIgnoreCase": {"aud": "B"}})));
        assert!(!holds(json!({"StringNotEquals": {"aud": "b"}})));
    }
}
