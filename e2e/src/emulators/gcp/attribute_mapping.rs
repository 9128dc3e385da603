//! A workload identity provider's attribute mapping and attribute condition, applied to a
//! verified subject token as Google STS applies them: the mapping turns the token's claims
//! (`assertion`) into `google.subject`, `google.groups` and `attribute.*`; the condition (CEL
//! over `assertion`, `google` and `attribute`) must then be true, else the token is refused.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::cel::{CelError, Program};
use super::google_error::OAuthError;

/// Google's default for OIDC providers without a mapping.
pub const DEFAULT_SUBJECT_MAPPING: &str = "assertion.sub";
/// `google.subject` longer than this is refused.
const MAX_SUBJECT_BYTES: usize = 127;

/// What the mapping produced for one token.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedAttributes {
    pub subject: String,
    /// `attribute.NAME` → value (without the `attribute.` prefix).
    pub attributes: BTreeMap<String, Value>,
}

/// Whether a mapping key is one Google accepts.
fn is_known_target(key: &str) -> bool {
    matches!(
        key,
        "google.subject" | "google.groups" | "google.display_name"
    ) || key.strip_prefix("attribute.").is_some_and(|name| {
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The setup errors Google's API would refuse the provider for.
pub fn validate(mapping: &BTreeMap<String, String>, condition: Option<&str>) -> Result<(), String> {
    if !mapping.is_empty() && !mapping.contains_key("google.subject") {
        return Err("the attribute mapping must map google.subject".to_owned());
    }
    for (key, expression) in mapping {
        if !is_known_target(key) {
            return Err(format!(
                "attribute mapping key {key:?} is not google.subject, google.groups, google.display_name or attribute.NAME"
            ));
        }
        Program::parse(expression).map_err(|e| format!("attribute mapping {key}: {e}"))?;
    }
    if let Some(condition) = condition {
        Program::parse(condition).map_err(|e| format!("attribute condition: {e}"))?;
    }
    Ok(())
}

/// Maps `claims` and judges the condition; the error is STS's answer.
pub fn map_and_check(
    mapping: &BTreeMap<String, String>,
    condition: Option<&str>,
    claims: &Value,
) -> Result<MappedAttributes, OAuthError> {
    let default_mapping = BTreeMap::from([(
        "google.subject".to_owned(),
        DEFAULT_SUBJECT_MAPPING.to_owned(),
    )]);
    let mapping = if mapping.is_empty() {
        &default_mapping
    } else {
        mapping
    };
    let assertion = BTreeMap::from([("assertion", claims.clone())]);
    let mut google = Map::new();
    let mut attributes = BTreeMap::new();
    for (key, expression) in mapping {
        let value = Program::parse(expression)
            .and_then(|program| program.evaluate(&assertion))
            .map_err(|err| mapping_failed(key, &err))?;
        if let Some(name) = key.strip_prefix("attribute.") {
            attributes.insert(name.to_owned(), value);
        } else if let Some(name) = key.strip_prefix("google.") {
            google.insert(name.to_owned(), value);
        }
    }
    let subject = match google.get("subject") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(OAuthError::invalid_grant(
                "The mapped attribute 'google.subject' must not be empty.",
            ));
        }
    };
    if subject.len() > MAX_SUBJECT_BYTES {
        return Err(OAuthError::invalid_grant(
            "The mapped attribute 'google.subject' exceeds the 127 byte limit.",
        ));
    }
    if let Some(condition) = condition {
        let variables = BTreeMap::from([
            ("assertion", claims.clone()),
            ("google", Value::Object(google)),
            (
                "attribute",
                Value::Object(attributes.clone().into_iter().collect()),
            ),
        ]);
        // An expression that errors rejects like one that is false.
        let allowed = Program::parse(condition)
            .and_then(|program| program.evaluate(&variables))
            .is_ok_and(|value| value == Value::Bool(true));
        if !allowed {
            return Err(OAuthError::unauthorized_client(
                "The given credential is rejected by the attribute condition.",
            ));
        }
    }
    Ok(MappedAttributes {
        subject,
        attributes,
    })
}

fn mapping_failed(key: &str, err: &CelError) -> OAuthError {
    OAuthError::invalid_grant(format!(
        "The attribute mapping for '{key}' could not be evaluated against the credential: {err}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims() -> Value {
        json!({
            "sub": "system:serviceaccount:apps:reader",
            "kubernetes.io": {"namespace": "apps", "serviceaccount": {"name": "reader"}},
        })
    }

    fn mapping(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn default_mapping_is_the_subject() {
        let mapped = map_and_check(&BTreeMap::new(), None, &claims()).expect("accepted");
        assert_eq!(mapped.subject, "system:serviceaccount:apps:reader");
        assert!(mapped.attributes.is_empty());
    }

    #[test]
    fn mapping_sets_subject_and_attributes() {
        let mapping = mapping(&[
            (
                "google.subject",
                "assertion['kubernetes.io'].serviceaccount.name",
            ),
            (
                "attribute.namespace",
                "assertion['kubernetes.io']['namespace']",
            ),
        ]);
        let mapped = map_and_check(
            &mapping,
            Some("attribute.namespace == 'apps' && google.subject == 'reader'"),
            &claims(),
        )
        .expect("accepted");
        assert_eq!(mapped.subject, "reader");
        assert_eq!(mapped.attributes["namespace"], json!("apps"));
    }

    #[test]
    fn a_condition_that_is_false_or_fails_rejects_with_googles_words() {
        for condition in [
            "assertion.sub == 'system:serviceaccount:apps:writer'",
            "assertion['kubernetes.io']['namespace'] in ['batch', 'jobs']",
            "assertion.missing == 'x'",
            "assertion.sub",
        ] {
            let err = map_and_check(&BTreeMap::new(), Some(condition), &claims()).unwrap_err();
            assert_eq!(err.error, "unauthorized_client", "{condition}");
            assert_eq!(
                err.description, "The given credential is rejected by the attribute condition.",
                "{condition}"
            );
        }
    }

    #[test]
    fn a_mapping_to_nothing_is_refused() {
        let err = map_and_check(
            &mapping(&[("google.subject", "assertion.nope")]),
            None,
            &claims(),
        )
        .unwrap_err();
        assert_eq!(err.error, "invalid_grant");
        let err =
            map_and_check(&mapping(&[("google.subject", "''")]), None, &claims()).unwrap_err();
        assert!(err.description.contains("must not be empty"), "{err:?}");
    }

    #[test]
    fn setup_validation() {
        assert!(validate(&BTreeMap::new(), Some("assertion.sub == 'x'")).is_ok());
        assert!(validate(&BTreeMap::new(), Some("assertion.sub = 'x'")).is_err());
        assert!(validate(&mapping(&[("attribute.ns", "assertion.sub")]), None).is_err());
        assert!(
            validate(
                &mapping(&[("google.subject", "assertion.sub"), ("subject", "x")]),
                None
            )
            .is_err()
        );
        assert!(
            validate(
                &mapping(&[
                    ("google.subject", "assertion.sub"),
                    ("attribute.ns", "assertion['kubernetes.io'].namespace")
                ]),
                None
            )
            .is_ok()
        );
    }
}
