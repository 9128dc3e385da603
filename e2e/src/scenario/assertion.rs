//! Assertions on the plugin's JSON output: a JSONPath (RFC 9535) and one expectation, held by
//! every node the path selects (`match: all`, the default) or by at least one (`match: any`).
//! A path that selects nothing fails, unless the expectation is `absent`.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use serde::Deserialize;
use serde_json::Value;
use serde_json_path::JsonPath;

/// Which of the selected nodes must meet `equals`, `matches` or `contains`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchMode {
    /// Every selected node (and at least one is selected).
    #[default]
    All,
    /// At least one selected node.
    Any,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Assertion {
    /// e.g. `$.items[0].identity.principal` or `$.items[0].checks[?@.id=='aws.token.source'].status`
    pub path: String,
    /// The node equals this value.
    #[serde(default)]
    pub equals: Option<Value>,
    /// The node is a string matching this regex.
    #[serde(default)]
    pub matches: Option<String>,
    /// The node is a string containing this text.
    #[serde(default)]
    pub contains: Option<String>,
    /// Whether `equals`/`matches`/`contains` must hold for all selected nodes or any one.
    /// Not allowed with `absent` or `sameAs`, which judge the whole selection.
    #[serde(default, rename = "match")]
    pub match_mode: Option<MatchMode>,
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
        if self.match_mode.is_some() && (self.absent || self.same_as.is_some()) {
            bail!("match (all|any) goes with equals, matches or contains, not absent or sameAs");
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
            return match nodes.as_slice() {
                [] => Ok(()),
                found => Err(format!(
                    "{}: expected no value, found {}",
                    self.path,
                    listed(found)
                )),
            };
        }
        if nodes.is_empty() {
            return Err(format!("{}: no value", self.path));
        }
        let regex = match &self.matches {
            Some(re) => Some(regex::Regex::new(re).map_err(|e| e.to_string())?),
            None => None,
        };
        let meets = |found: &Value| {
            let text = found.as_str();
            if let Some(expected) = &self.equals {
                found == expected
            } else if let Some(re) = &regex {
                text.is_some_and(|t| re.is_match(t))
            } else if let Some(needle) = &self.contains {
                text.is_some_and(|t| t.contains(needle.as_str()))
            } else {
                false
            }
        };
        let wanted = self
            .equals
            .as_ref()
            .map(|v| format!("equal to {v}"))
            .or_else(|| self.matches.as_ref().map(|r| format!("matching /{r}/")))
            .or_else(|| self.contains.as_ref().map(|c| format!("containing {c:?}")))
            .unwrap_or_default();
        match self.match_mode.unwrap_or_default() {
            MatchMode::All => {
                let failing: Vec<&Value> = nodes.iter().copied().filter(|n| !meets(n)).collect();
                if failing.is_empty() {
                    Ok(())
                } else if nodes.len() == 1 {
                    Err(format!(
                        "{}: expected a value {wanted}, found {}",
                        self.path, failing[0]
                    ))
                } else {
                    Err(format!(
                        "{}: expected all {} values {wanted}, but {} are not: {}",
                        self.path,
                        nodes.len(),
                        failing.len(),
                        listed(&failing)
                    ))
                }
            }
            MatchMode::Any => {
                if nodes.iter().any(|n| meets(n)) {
                    Ok(())
                } else {
                    Err(format!(
                        "{}: expected any value {wanted}, found {}",
                        self.path,
                        listed(&nodes)
                    ))
                }
            }
        }
    }
}

/// The selected values as one JSON list, for messages.
fn listed(nodes: &[&Value]) -> Value {
    Value::Array(nodes.iter().map(|n| (*n).clone()).collect())
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
    fn every_selected_node_is_judged_not_only_the_first() {
        // Two containers' checks with the same id: the first passes, the second fails.
        let doc = json!({"items": [{"checks": [
            {"id": "aws.sts.assume-role", "status": "pass", "message": "assumed role/a"},
            {"id": "aws.sts.assume-role", "status": "fail", "message": "AccessDenied"},
        ]}]});
        let status = "$.items[0].checks[?@.id=='aws.sts.assume-role'].status";
        // Default (all): the failing second node is seen.
        let err = a(&format!("{{path: \"{status}\", equals: pass}}"))
            .check(&doc)
            .unwrap_err();
        assert!(
            err.contains("but 1 are not") && err.contains("fail"),
            "{err}"
        );
        assert!(
            a(&format!("{{path: \"{status}\", equals: pass, match: all}}"))
                .check(&doc)
                .is_err()
        );
        // any: one node is enough, whichever it is.
        assert!(
            a(&format!("{{path: \"{status}\", equals: fail, match: any}}"))
                .check(&doc)
                .is_ok()
        );
        assert!(
            a(&format!("{{path: \"{status}\", equals: skip, match: any}}"))
                .check(&doc)
                .is_err()
        );
        let message = "$.items[0].checks[*].message";
        assert!(
            a(&format!(
                "{{path: '{message}', contains: AccessDenied, match: any}}"
            ))
            .check(&doc)
            .is_ok()
        );
        assert!(
            a(&format!(
                "{{path: '{message}', matches: '^(assumed|Access)'}}"
            ))
            .check(&doc)
            .is_ok()
        );
        assert!(
            a(&format!("{{path: '{message}', contains: AccessDenied}}"))
                .check(&doc)
                .is_err()
        );
    }

    #[test]
    fn zero_matches_fail_in_both_modes_and_absent_sees_every_match() {
        let doc = json!({"items": [{"checks": [{"id": "a.b", "status": "pass"}, {"id": "a.b", "status": "pass"}]}]});
        for mode in ["all", "any"] {
            let err = a(&format!(
                "{{path: '$.items[0].nothing[*]', equals: 1, match: {mode}}}"
            ))
            .check(&doc)
            .unwrap_err();
            assert!(err.contains("no value"), "{mode}: {err}");
        }
        let err = a("{path: \"$.items[0].checks[?@.id=='a.b']\", absent: true}")
            .check(&doc)
            .unwrap_err();
        assert!(err.matches("\"a.b\"").count() == 2, "{err}");
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
        assert!(a("{path: '$.x', equals: 1, match: any}").validate().is_ok());
        assert!(
            a("{path: '$.x', absent: true, match: all}")
                .validate()
                .is_err()
        );
        assert!(
            a("{path: '$.x', sameAs: plan, match: any}")
                .validate()
                .is_err()
        );
        assert!(
            serde_saphyr::from_str::<Assertion>("{path: '$.x', equals: 1, match: some}").is_err()
        );
    }
}
