//! The namespace a ServiceAccount token names, read without verifying anything: for routing a
//! request and labelling it in the request log. Whoever serves the request validates the token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// `kubernetes.io.namespace` (else the namespace in `sub`) of an unverified JWT.
pub fn token_namespace(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    claims
        .get("kubernetes.io")
        .and_then(|k| k.get("namespace"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            claims
                .get("sub")?
                .as_str()?
                .strip_prefix("system:serviceaccount:")?
                .split(':')
                .next()
                .map(str::to_owned)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwt(claims: Value) -> String {
        format!(
            "e30.{}.sig",
            URL_SAFE_NO_PAD.encode(claims.to_string().as_bytes())
        )
    }

    #[test]
    fn reads_the_kubernetes_claim_then_the_subject() {
        assert_eq!(
            token_namespace(&jwt(json!({"kubernetes.io": {"namespace": "apps"}}))),
            Some("apps".to_owned())
        );
        assert_eq!(
            token_namespace(&jwt(json!({"sub": "system:serviceaccount:ns1:sa"}))),
            Some("ns1".to_owned())
        );
        assert_eq!(token_namespace(&jwt(json!({"sub": "someone"}))), None);
        assert_eq!(token_namespace("garbage"), None);
    }
}
