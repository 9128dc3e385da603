//! Label selectors as NetworkPolicy reads them: `{}` selects everything, matchLabels and
//! matchExpressions are ANDed.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

/// The label the API server sets on every namespace (immutable, equal to its name).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    requirements(selector).all(|r| r.holds(labels))
}

/// A namespace selector against a namespace whose labels may be unknown (None): decided from
/// the name label alone when the selector asks nothing else, unknown (None) otherwise.
pub fn matches_namespace(
    selector: &LabelSelector,
    name: &str,
    labels: Option<&BTreeMap<String, String>>,
) -> Option<bool> {
    let mut known = labels.cloned().unwrap_or_default();
    known.insert(NAMESPACE_NAME_LABEL.to_string(), name.to_string());
    if labels.is_some() {
        return Some(matches(selector, &known));
    }
    let (by_name, others): (Vec<_>, Vec<_>) =
        requirements(selector).partition(|r| r.key() == NAMESPACE_NAME_LABEL);
    if !by_name.iter().all(|r| r.holds(&known)) {
        return Some(false);
    }
    if others.is_empty() { Some(true) } else { None }
}

/// One requirement of a selector: a matchLabels pair or a matchExpression.
enum Requirement<'a> {
    Equals(&'a str, &'a str),
    Expression(&'a LabelSelectorRequirement),
}

impl Requirement<'_> {
    fn key(&self) -> &str {
        match self {
            Requirement::Equals(k, _) => k,
            Requirement::Expression(e) => &e.key,
        }
    }

    fn holds(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::Equals(k, v) => labels.get(*k).is_some_and(|l| l == v),
            Requirement::Expression(e) => {
                let value = labels.get(&e.key);
                let values = e.values.as_deref().unwrap_or_default();
                match e.operator.as_str() {
                    "In" => value.is_some_and(|v| values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    // The API rejects any other operator; such a selector selects nothing.
                    _ => false,
                }
            }
        }
    }
}

fn requirements(selector: &LabelSelector) -> impl Iterator<Item = Requirement<'_>> {
    let equals = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| Requirement::Equals(k, v));
    let expressions = selector
        .match_expressions
        .iter()
        .flatten()
        .map(Requirement::Expression);
    equals.chain(expressions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selector(yaml: &str) -> LabelSelector {
        let value: serde_json::Value = serde_saphyr::from_str(yaml).unwrap();
        serde_json::from_value(value).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_selects_all_and_operators_follow_the_api() {
        let none = labels(&[]);
        let app = labels(&[("app", "web"), ("tier", "front")]);
        assert!(matches(&selector("{}"), &none));
        assert!(matches(&selector("matchLabels: {app: web}"), &app));
        assert!(!matches(&selector("matchLabels: {app: db}"), &app));
        let expr = |op: &str, values: &str| {
            selector(&format!(
                "matchExpressions: [{{key: app, operator: {op}{values}}}]"
            ))
        };
        assert!(matches(&expr("In", ", values: [web, api]"), &app));
        assert!(!matches(&expr("In", ", values: [db]"), &app));
        assert!(matches(&expr("NotIn", ", values: [db]"), &app));
        assert!(matches(&expr("NotIn", ", values: [db]"), &none));
        assert!(!matches(&expr("NotIn", ", values: [web]"), &app));
        assert!(matches(&expr("Exists", ""), &app));
        assert!(!matches(&expr("Exists", ""), &none));
        assert!(matches(&expr("DoesNotExist", ""), &none));
        assert!(!matches(&expr("DoesNotExist", ""), &app));
        // matchLabels AND matchExpressions.
        let both = selector(
            "{matchLabels: {app: web}, matchExpressions: [{key: tier, operator: In, values: [back]}]}",
        );
        assert!(!matches(&both, &app));
    }

    #[test]
    fn unknown_namespace_labels_decide_only_by_name() {
        let by_name = selector("matchLabels: {kubernetes.io/metadata.name: kube-system}");
        assert_eq!(matches_namespace(&by_name, "kube-system", None), Some(true));
        assert_eq!(matches_namespace(&by_name, "default", None), Some(false));
        assert_eq!(
            matches_namespace(&selector("{}"), "default", None),
            Some(true)
        );
        let by_team = selector("matchLabels: {team: infra}");
        assert_eq!(matches_namespace(&by_team, "kube-system", None), None);
        let known = labels(&[("team", "infra")]);
        assert_eq!(
            matches_namespace(&by_team, "kube-system", Some(&known)),
            Some(true)
        );
        // The name label is there even when a read Namespace lacks it.
        assert_eq!(
            matches_namespace(&by_name, "kube-system", Some(&known)),
            Some(true)
        );
    }
}
