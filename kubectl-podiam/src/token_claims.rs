//! Claims of a Kubernetes ServiceAccount token, decoded WITHOUT verifying the signature: the
//! cloud verifies; the plugin only needs to show what the token says. The raw token never
//! leaves this module's callers' memory, and no error message quotes it.

use serde::{Deserialize, Serialize};

/// Larger than any real SA token by far; bigger input is rejected before decoding.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Claims {
    pub iss: Option<String>,
    pub sub: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub nbf: Option<i64>,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: Option<KubernetesClaims>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct KubernetesClaims {
    pub namespace: Option<String>,
    pub serviceaccount: Option<NamedRef>,
    pub pod: Option<NamedRef>,
    pub node: Option<NamedRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct NamedRef {
    pub name: Option<String>,
    pub uid: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("the token is empty")]
    Empty,
    #[error(
        "the token is more than {MAX_TOKEN_BYTES} bytes ({0} read), larger than any ServiceAccount token"
    )]
    TooLarge(usize),
    #[error("the token is not a JWT ({0})")]
    Malformed(String),
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

/// Decodes the payload of a compact JWT. Trailing whitespace (files end in newlines) is ignored.
pub fn decode(token: &[u8]) -> Result<Claims, ClaimsError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(ClaimsError::TooLarge(token.len()));
    }
    let token = token.trim_ascii();
    if token.is_empty() {
        return Err(ClaimsError::Empty);
    }
    if token.iter().filter(|b| **b == b'.').count() != 2 {
        return Err(ClaimsError::Malformed(
            "expected three dot-separated parts".into(),
        ));
    }
    jsonwebtoken::dangerous::insecure_decode::<Claims>(token)
        .map(|data| data.claims)
        // jsonwebtoken's messages describe the failure kind, never the input.
        .map_err(|e| ClaimsError::Malformed(e.to_string()))
}

impl Claims {
    pub fn pod_name(&self) -> Option<&str> {
        self.kubernetes.as_ref()?.pod.as_ref()?.name.as_deref()
    }
}

/// Seconds since the Unix epoch, for comparing with `exp`/`iat` claims.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn jwt(payload: &str) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k"}"#),
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn decodes_a_bound_service_account_token() {
        let token = jwt(
            r#"{"iss":"https://oidc.example/id/X","sub":"system:serviceaccount:default:s3-reader","aud":["sts.amazonaws.com"],"exp":2000000000,"iat":1,"kubernetes.io":{"namespace":"default","serviceaccount":{"name":"s3-reader","uid":"u"},"pod":{"name":"s3-pod","uid":"p"}}}"#,
        );
        let claims = decode(format!("{token}\n").as_bytes()).unwrap();
        assert_eq!(
            claims.sub.as_deref(),
            Some("system:serviceaccount:default:s3-reader")
        );
        assert_eq!(claims.aud, vec!["sts.amazonaws.com"]);
        assert_eq!(claims.pod_name(), Some("s3-pod"));
    }

    #[test]
    fn accepts_a_single_string_audience() {
        let claims = decode(jwt(r#"{"aud":"sts.amazonaws.com"}"#).as_bytes()).unwrap();
        assert_eq!(claims.aud, vec!["sts.amazonaws.com"]);
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(
            decode(b"not a token"),
            Err(ClaimsError::Malformed(_))
        ));
        assert_eq!(decode(b"  \n"), Err(ClaimsError::Empty));
    }

    #[test]
    fn rejects_truncated_tokens() {
        let token = jwt(r#"{"sub":"x"}"#);
        let truncated = &token[..token.len() / 2];
        assert!(decode(truncated.as_bytes()).is_err());
        let two_parts = token.rsplit_once('.').unwrap().0;
        assert!(matches!(
            decode(two_parts.as_bytes()),
            Err(ClaimsError::Malformed(_))
        ));
    }

    #[test]
    fn rejects_non_base64_payload() {
        assert!(matches!(
            decode(b"eyJhbGciOiJSUzI1NiJ9.$$$not-base64$$$.sig"),
            Err(ClaimsError::Malformed(_))
        ));
    }

    #[test]
    fn rejects_non_json_payload() {
        let token = format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode("{}"),
            URL_SAFE_NO_PAD.encode("not json")
        );
        assert!(matches!(
            decode(token.as_bytes()),
            Err(ClaimsError::Malformed(_))
        ));
    }

    #[test]
    fn rejects_oversized_tokens_before_decoding() {
        let huge = vec![b'a'; 1024 * 1024];
        assert_eq!(decode(&huge), Err(ClaimsError::TooLarge(1024 * 1024)));
    }

    #[test]
    fn error_messages_never_quote_the_token() {
        let token = jwt(r#"{"sub": 12}"#);
        let err = decode(token.as_bytes()).unwrap_err().to_string();
        let payload = token.split('.').nth(1).unwrap();
        assert!(!err.contains(payload), "{err}");
    }
}
