//! IAM condition operators, as the IAM User Guide documents them, for the plugin's trust
//! diagnosis. The e2e gate enforces with its own code (no sharing), and a differential test
//! compares the two.
//!
//! Sources (IAM User Guide):
//! - "IAM JSON policy elements: Condition operators": a key absent from the request context
//!   makes a condition false, except for negated operators (`StringNotEquals`, `StringNotLike`,
//!   `ArnNotLike`, …), which are then true; `…IfExists` is true when the key is absent; `Null`
//!   tests presence (`"true"`: absent, `"false"`: present). `StringLike` takes `*` and `?`;
//!   `ArnEquals`/`ArnLike` compare each of the six colon-separated ARN parts, each may hold
//!   wildcards. `…IgnoreCase` ignores case.
//! - "IAM JSON policy elements: Condition": several values for one key are OR-ed; several keys
//!   and several operators are AND-ed. Condition key names are not case-sensitive, values are.
//! - "Single-valued vs. multivalued context keys": `ForAllValues` is true when every value in
//!   the request matches one of the policy's values, and also when the key is absent;
//!   `ForAnyValue` is true when at least one does, false when the key is absent.
//!
//! A plain (unqualified) operator on a multivalued key (a token's `aud` can be a list) is not
//! specified by AWS; podiam reads it as: a positive operator holds when any value matches, a
//! negated one when no value matches (the conservative reading in both directions).

use std::collections::BTreeMap;

/// The condition keys of one request: names lowercase (IAM ignores key case), values as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextKeys {
    keys: BTreeMap<String, Vec<String>>,
}

impl ContextKeys {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key; an empty list is the same as an absent key.
    pub fn with(mut self, key: &str, values: Vec<String>) -> Self {
        if !values.is_empty() {
            self.keys.insert(key.to_ascii_lowercase(), values);
        }
        self
    }

    /// The key's values; empty when the request does not carry it.
    pub fn values(&self, key: &str) -> &[String] {
        self.keys
            .get(&key.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qualifier {
    Plain,
    ForAnyValue,
    ForAllValues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Equals { ignore_case: bool },
    Like,
    Arn,
    Bool,
}

/// A parsed condition operator such as `ForAnyValue:StringNotLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operator {
    qualifier: Qualifier,
    /// `Null` stands alone: no qualifier, no `IfExists`.
    null: bool,
    comparison: Comparison,
    negated: bool,
    if_exists: bool,
}

impl Operator {
    /// `None` for an operator this evaluator does not know (never read as met).
    /// Operator names are case-sensitive in IAM.
    pub fn parse(name: &str) -> Option<Self> {
        if name == "Null" {
            return Some(Self {
                qualifier: Qualifier::Plain,
                null: true,
                comparison: Comparison::Bool,
                negated: false,
                if_exists: false,
            });
        }
        let (qualifier, rest) = match name.split_once(':') {
            Some(("ForAnyValue", rest)) => (Qualifier::ForAnyValue, rest),
            Some(("ForAllValues", rest)) => (Qualifier::ForAllValues, rest),
            Some(_) => return None,
            None => (Qualifier::Plain, name),
        };
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (rest, false),
        };
        let (comparison, negated) = match base {
            "StringEquals" => (Comparison::Equals { ignore_case: false }, false),
            "StringNotEquals" => (Comparison::Equals { ignore_case: false }, true),
            "StringEqualsIgnoreCase" => (Comparison::Equals { ignore_case: true }, false),
            "StringNotEqualsIgnoreCase" => (Comparison::Equals { ignore_case: true }, true),
            "StringLike" => (Comparison::Like, false),
            "StringNotLike" => (Comparison::Like, true),
            "ArnEquals" | "ArnLike" => (Comparison::Arn, false),
            "ArnNotEquals" | "ArnNotLike" => (Comparison::Arn, true),
            "Bool" => (Comparison::Bool, false),
            _ => return None,
        };
        Some(Self {
            qualifier,
            null: false,
            comparison,
            negated,
            if_exists,
        })
    }

    /// Whether the condition holds for one key: `actual` from the request (empty when the key
    /// is absent), `wanted` the policy's values for it.
    pub fn holds(&self, actual: &[String], wanted: &[String]) -> bool {
        if self.null {
            let absent = actual.is_empty();
            return wanted.iter().any(|w| match w.as_str() {
                "true" => absent,
                "false" => !absent,
                _ => false,
            });
        }
        if actual.is_empty() && self.if_exists {
            return true;
        }
        // One request value against the policy's values (OR); negated: none of them.
        let value_ok = |value: &String| {
            let any = wanted.iter().any(|w| self.comparison.matches(w, value));
            any != self.negated
        };
        match self.qualifier {
            Qualifier::ForAnyValue => actual.iter().any(value_ok),
            Qualifier::ForAllValues => actual.iter().all(value_ok),
            Qualifier::Plain if self.negated => actual.iter().all(value_ok),
            Qualifier::Plain => actual.iter().any(value_ok),
        }
    }
}

impl Comparison {
    fn matches(self, pattern: &str, value: &str) -> bool {
        match self {
            Comparison::Equals { ignore_case: false } => pattern == value,
            // AWS says "ignoring case" without narrowing it to ASCII: each character's Unicode
            // lowercase. Not `str::to_lowercase`, whose final-sigma rule made "ΟΔΟΣ" differ from
            // "οδοσ" (found by tests/trust_differential.rs).
            Comparison::Equals { ignore_case: true } => fold_case(pattern) == fold_case(value),
            Comparison::Like => wildcard(pattern, value),
            Comparison::Arn => arn_matches(pattern, value),
            Comparison::Bool => pattern.eq_ignore_ascii_case(value),
        }
    }
}

fn fold_case(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    for c in text.chars() {
        folded.extend(c.to_lowercase());
    }
    folded
}

/// Each of the six ARN parts (`arn:partition:service:region:account:resource`) matched on its
/// own; a value that is not an ARN never matches.
fn arn_matches(pattern: &str, value: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let v: Vec<&str> = value.splitn(6, ':').collect();
    p.len() == 6 && v.len() == 6 && p.iter().zip(&v).all(|(p, v)| wildcard(p, v))
}

/// IAM's `*` (any run, also empty) and `?` (exactly one character), by dynamic programming
/// over characters.
pub fn wildcard(pattern: &str, value: &str) -> bool {
    let value: Vec<char> = value.chars().collect();
    // reachable[j]: the pattern read so far can produce value[..j].
    let mut reachable = vec![false; value.len() + 1];
    reachable[0] = true;
    for p in pattern.chars() {
        let mut next = vec![false; value.len() + 1];
        for j in 0..=value.len() {
            if !reachable[j] {
                continue;
            }
            match p {
                '*' => next[j..].iter_mut().for_each(|n| *n = true),
                '?' if j < value.len() => next[j + 1] = true,
                c if j < value.len() && value[j] == c => next[j + 1] = true,
                _ => {}
            }
        }
        reachable = next;
    }
    reachable[value.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_string()).collect()
    }

    fn holds(op: &str, actual: &[&str], wanted: &[&str]) -> bool {
        Operator::parse(op)
            .unwrap_or_else(|| panic!("{op} parses"))
            .holds(&s(actual), &s(wanted))
    }

    #[test]
    fn unknown_operators_do_not_parse() {
        for op in [
            "StringFancy",
            "stringequals",
            "ForSomeValues:StringEquals",
            "NullIfExists",
            "ForAnyValue:Null",
            "NumericLessThan",
        ] {
            assert_eq!(Operator::parse(op), None, "{op}");
        }
    }

    #[test]
    fn absent_keys() {
        assert!(!holds("StringEquals", &[], &["a"]));
        assert!(holds("StringNotEquals", &[], &["a"]));
        assert!(holds("StringNotLike", &[], &["a*"]));
        assert!(holds("StringEqualsIfExists", &[], &["a"]));
        assert!(!holds("ForAnyValue:StringEquals", &[], &["a"]));
        assert!(holds("ForAllValues:StringEquals", &[], &["a"]));
        assert!(holds("Null", &[], &["true"]));
        assert!(!holds("Null", &["x"], &["true"]));
        assert!(holds("Null", &["x"], &["false"]));
    }

    #[test]
    fn multivalued_audience() {
        let aud = ["sts.amazonaws.com", "other"];
        assert!(holds(
            "ForAnyValue:StringEquals",
            &aud,
            &["sts.amazonaws.com"]
        ));
        assert!(!holds(
            "ForAllValues:StringEquals",
            &aud,
            &["sts.amazonaws.com"]
        ));
        assert!(holds(
            "ForAllValues:StringEquals",
            &aud,
            &["sts.amazonaws.com", "other"]
        ));
        assert!(holds("ForAnyValue:StringNotEquals", &aud, &["other"]));
        assert!(!holds("ForAllValues:StringNotEquals", &aud, &["other"]));
        assert!(holds("StringEquals", &aud, &["other"]));
        assert!(!holds("StringNotEquals", &aud, &["other"]));
    }

    #[test]
    fn values_are_case_sensitive_unless_ignore_case() {
        assert!(!holds("StringEquals", &["Abc"], &["abc"]));
        assert!(holds("StringEqualsIgnoreCase", &["Abc"], &["abc"]));
        assert!(holds("StringEqualsIgnoreCase", &["É"], &["é"]));
        assert!(holds("StringEqualsIgnoreCase", &["ΟΔΟΣ"], &["οδοσ"]));
        assert!(!holds("StringNotEqualsIgnoreCase", &["ABC"], &["abc"]));
        assert!(!holds("StringLike", &["Abc"], &["a*"]));
    }

    #[test]
    fn arn_and_bool() {
        let cluster = ["arn:aws:eks:us-east-1:123456789012:cluster/podiam-e2e"];
        assert!(holds(
            "ArnLike",
            &cluster,
            &["arn:aws:eks:*:123456789012:cluster/*"]
        ));
        assert!(!holds(
            "ArnEquals",
            &cluster,
            &["arn:aws:eks:*:111111111111:cluster/*"]
        ));
        assert!(!holds("ArnLike", &["not-an-arn"], &["*"]));
        assert!(holds("ArnNotLike", &["not-an-arn"], &["*"]));
        assert!(holds("Bool", &["true"], &["true"]));
        assert!(!holds("Bool", &["false"], &["true"]));
        assert!(holds("BoolIfExists", &[], &["true"]));
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("*", ""));
        assert!(wildcard("a*c", "abbbc"));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("a?c", "ac"));
        assert!(wildcard(
            "system:serviceaccount:*:x",
            "system:serviceaccount:ns:x"
        ));
        assert!(!wildcard("abc", "abcd"));
        assert!(wildcard("**?", "é"));
    }

    #[test]
    fn keys_ignore_case() {
        let keys = ContextKeys::new().with("Host/Path:SUB", s(&["x"]));
        assert_eq!(keys.values("host/path:sub"), ["x"]);
        assert!(keys.values("other").is_empty());
        assert!(ContextKeys::new().with("k", vec![]).values("k").is_empty());
    }
}
