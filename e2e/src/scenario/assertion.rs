//! Assertions on the plugin's JSON output: a JSONPath (RFC 9535) and one expectation.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde::Deserialize;
use serde_json::Value;
use serde_json_path::JsonPath;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Assertion {
    /// e.g. `$.items[0].identity.principal` or `$.items[0].checks[?@.id=='aws.token.source'].status`
    pub path: String,
    /// The first node equals this value.
    #[serde(default)]
    pub equals: Option<Value>,
    /// The first node is a string matching this regex.
    #[serde(default)]
    pub matches: Option<String>,
    /// The first node is a string containing this text.
    #[serde(default)]
    pub contains: Option<String>,
    /// The path selects no node.
    #[serde(default)]
    pub absent: bool,
    /// The path selects the same (non-empty) list of values here as in the output an earlier
    /// `podiam` step captured under this name: e.g. a bind's result against its plan.
    #[serde(default)]
    pub same_as: Option<String>,
}

/// Outputs of earlier `podiam` steps of the scenario, by `capture` name.
pub type Captures = BTreeMap<String, Value>;

impl Assertion {
    pub fn validate(&self) -> Result<()> {
        JsonPath::parse(&self.path)
            .map_err(|e| anyhow::anyhow!("invalid JSONPath {:?}: {e}", self.path))?;
        let expectations = [
            self.equals.is_some(),
            self.matches.is_some(),
            self.contains.is_some(),
            self.absent,
            self.same_as.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if expectations != 1 {
            bail!("needs exactly one of equals, matches, contains, absent, sameAs");
        }
        if let Some(re) = &self.matches {
            regex::Regex::new(re)?;
        }
        Ok(())
    }

    /// Ok, or a message saying what was found instead.
    pub fn check(&self, document: &Value) -> Result<(), String> {
        self.check_with(document, &Captures::new())
    }

    /// As `check`, with the captured outputs `sameAs` compares against.
    pub fn check_with(&self, document: &Value, captures: &Captures) -> Result<(), String> {
        let path = JsonPath::parse(&self.path).map_err(|e| e.to_string())?;
        let nodes = path.query(document).all();
        if let Some(name) = &self.same_as {
            let captured = captures
                .get(name)
                .ok_or_else(|| format!("{}: no earlier step captured {name:?}", self.path))?;
            let expected = path.query(captured).all();
            return if expected.is_empty() {
                Err(format!("{}: selects nothing in {name:?}", self.path))
            } else if nodes == expected {
                Ok(())
            } else {
                Err(format!(
                    "{}: {} here, but {} in {name:?}",
                    self.path,
                    Value::Array(nodes.into_iter().cloned().collect()),
                    Value::Array(expected.into_iter().cloned().collect())
                ))
            };
        }
        if self.absent {
            return match nodes.first() {
                None => Ok(()),
                Some(found) => Err(format!("{}: expected no value, found {found}", self.path)),
            };
        }
        let Some(found) = nodes.first() else {
            return Err(format!("{}: no value", self.path));
        };
        let text = found.as_str();
        let ok = if let Some(expected) = &self.equals {
            *found == expected
        } else if let Some(re) = &self.matches {
            text.is_some_and(|t| regex::Regex::new(re).is_ok_and(|r| r.is_match(t)))
        } else if let Some(needle) = &self.contains {
            text.is_some_and(|t| t.contains(needle.as_str()))
        } else {
            false
        };
        if ok {
            Ok(())
        } else {
            let wanted = self
                .equals
                .as_ref()
                .map(|v| format!("equal to {v}"))
                .or_else(|| self.matches.as_ref().map(|r| format!("matching /{r}/")))
                .or_else(|| self.contains.as_ref().map(|c| format!("containing {c:?}")))
                .unwrap_or_default();
            Err(format!(
                "{}: expected a value {wanted}, found {found}",
                self.path
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn a(yaml: &str) -> Assertion {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn checks_values() {
        let doc = json!({"items": [{"mechanism": "aws-irsa", "checks": [{"id": "x.y", "status": "fail", "message": "AccessDenied here"}]}]});
        assert!(
            a("{path: '$.items[0].mechanism', equals: aws-irsa}")
                .check(&doc)
                .is_ok()
        );
        assert!(
            a("{path: '$.items[0].mechanism', equals: none}")
                .check(&doc)
                .is_err()
        );
        assert!(
            a("{path: \"$.items[0].checks[?@.id=='x.y'].status\", equals: fail}")
                .check(&doc)
                .is_ok()
        );
        assert!(
            a("{path: \"$.items[0].checks[?@.id=='x.y'].message\", contains: AccessDenied}")
                .check(&doc)
                .is_ok()
        );
        assert!(
            a("{path: '$.items[0].mechanism', matches: '^aws-'}")
                .check(&doc)
                .is_ok()
        );
        assert!(
            a("{path: '$.items[0].identity', absent: true}")
                .check(&doc)
                .is_ok()
        );
        let err = a("{path: '$.items[1]', equals: 1}")
            .check(&doc)
            .unwrap_err();
        assert!(err.contains("no value"), "{err}");
    }

    #[test]
    fn same_as_compares_every_selected_value_with_the_capture() {
        let plan = json!({"changes": [{"action": "update", "status": "planned"}, {"action": "annotate", "status": "planned"}]});
        let captures = Captures::from([("plan".to_owned(), plan)]);
        let same = json!({"changes": [{"action": "update", "status": "applied"}, {"action": "annotate", "status": "applied"}]});
        let fewer = json!({"changes": [{"action": "update", "status": "applied"}]});
        let check = a("{path: '$.changes[*].action', sameAs: plan}");
        assert!(check.check_with(&same, &captures).is_ok());
        let err = check.check_with(&fewer, &captures).unwrap_err();
        assert!(err.contains("annotate"), "{err}");
        assert!(
            a("{path: '$.changes[*].status', sameAs: plan}")
                .check_with(&same, &captures)
                .is_err()
        );
        assert!(
            a("{path: '$.nothing', sameAs: plan}")
                .check_with(&same, &captures)
                .is_err()
        );
        assert!(check.check(&same).is_err(), "no capture named plan");
    }

    #[test]
    fn validation() {
        assert!(a("{path: '$.x', equals: 1}").validate().is_ok());
        assert!(a("{path: '$.x'}").validate().is_err());
        assert!(a("{path: 'not a path', equals: 1}").validate().is_err());
        assert!(a("{path: '$.x', matches: '('}").validate().is_err());
    }
}
