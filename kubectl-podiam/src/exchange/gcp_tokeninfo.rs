//! Google's tokeninfo, asked from this machine about the access token a pod's metadata server
//! returned: only Google can say whether that token is one it issued, and to whom. The pod's
//! own answers (email, token) come through the image's HTTP client and may be forged.
//!
//! `POST https://oauth2.googleapis.com/tokeninfo` with `access_token` in a form body (Google
//! takes it in the query too; a body keeps the token out of URLs). A valid token: 200
//! `{"azp","aud","scope","exp","expires_in","email","email_verified","access_type"}`, numbers as
//! strings, `email` only when the token carries the email scope. Anything else: 400
//! `{"error":"invalid_token","error_description":"Invalid Value"}`.
//!
//! Why reqwest: one form POST; Google's Rust SDKs have no tokeninfo client.

use serde::Deserialize;

use super::CloudError;
use super::gcp_metadata::AccessToken;
use super::gcp_sts::error_of;

/// Google's tokeninfo when neither the flag nor `PODIAM_GCP_TOKENINFO_URL` is set.
pub const DEFAULT_URL: &str = "https://oauth2.googleapis.com/tokeninfo";

/// What Google says about a token it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The account the token belongs to; absent without the email scope (and for federated
    /// tokens, which belong to no account).
    pub email: Option<String>,
    pub expires_in: Option<i64>,
}

/// What tokeninfo's answer means for the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Google issued the token and it is live.
    Confirmed(TokenInfo),
    /// Google does not know the token (`invalid_token`), or refused the request (4xx): its code
    /// and message.
    Rejected { code: String, message: String },
    /// No usable answer: a 5xx or 429, or a 200 that is not tokeninfo's JSON.
    Unavailable(String),
}

/// Google writes numbers as strings here ("3599"); accept both.
#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    Int(i64),
    Text(String),
}

#[derive(Deserialize)]
struct Body {
    email: Option<String>,
    expires_in: Option<Number>,
    error: Option<serde_json::Value>,
}

/// The verdict of one answer (`status`, `body`). Never quotes a 200 body (it is about a token).
pub fn classify(status: u16, body: &str) -> Verdict {
    match status {
        200 => match serde_json::from_str::<Body>(body) {
            Ok(parsed) if parsed.error.is_none() => Verdict::Confirmed(TokenInfo {
                email: parsed
                    .email
                    .map(|e| e.trim().to_string())
                    .filter(|e| !e.is_empty()),
                expires_in: parsed.expires_in.and_then(|n| match n {
                    Number::Int(i) => Some(i),
                    Number::Text(t) => t.trim().parse().ok(),
                }),
            }),
            _ => Verdict::Unavailable("answered 200 without tokeninfo's JSON".into()),
        },
        429 | 500..=599 => {
            let (code, message) = error_of(status, body);
            Verdict::Unavailable(format!("answered {status} ({code}: {message})"))
        }
        _ => {
            let (code, message) = error_of(status, body);
            Verdict::Rejected { code, message }
        }
    }
}

/// `--gcp-tokeninfo-url` (clap also reads `PODIAM_GCP_TOKENINFO_URL`), else Google's.
pub fn endpoint(flag: Option<&str>) -> String {
    flag.map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or(DEFAULT_URL)
        .to_owned()
}

/// Asks tokeninfo about `token`. `Err` only when there was no HTTP answer.
pub async fn lookup(
    http: &reqwest::Client,
    url: &str,
    token: &AccessToken,
) -> Result<Verdict, CloudError> {
    let response = http
        .post(url)
        .form(&[("access_token", token.token.as_str())])
        .send()
        .await
        .map_err(|e| CloudError::Unreachable(e.without_url().to_string()))?;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    Ok(classify(status, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn googles_answer_for_a_service_account_token() {
        let body = r#"{"azp":"117","aud":"117","scope":"https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/userinfo.email","exp":"1712345678","expires_in":"3599","email":"gsa@p.iam.gserviceaccount.com","email_verified":"true","access_type":"online"}"#;
        assert_eq!(
            classify(200, body),
            Verdict::Confirmed(TokenInfo {
                email: Some("gsa@p.iam.gserviceaccount.com".into()),
                expires_in: Some(3599),
            })
        );
        assert_eq!(
            classify(200, r#"{"scope":"x","expires_in":12}"#),
            Verdict::Confirmed(TokenInfo {
                email: None,
                expires_in: Some(12),
            })
        );
    }

    #[test]
    fn unknown_token_is_rejected_with_googles_words() {
        assert_eq!(
            classify(
                400,
                r#"{"error":"invalid_token","error_description":"Invalid Value"}"#
            ),
            Verdict::Rejected {
                code: "invalid_token".into(),
                message: "Invalid Value".into(),
            }
        );
    }

    #[test]
    fn server_trouble_and_foreign_answers_are_unavailable() {
        assert!(matches!(
            classify(503, "<html>unavailable</html>"),
            Verdict::Unavailable(m) if m.contains("503")
        ));
        assert!(matches!(classify(429, ""), Verdict::Unavailable(_)));
        // A 200 that is not tokeninfo (a captive portal, a wrong URL) proves nothing, and its
        // body is never quoted.
        let html = classify(200, "<html>ya29.secret</html>");
        assert!(matches!(&html, Verdict::Unavailable(m) if !m.contains("ya29")));
        assert!(matches!(
            classify(200, r#"{"error":"invalid_token"}"#),
            Verdict::Unavailable(_)
        ));
    }

    #[test]
    fn endpoint_override() {
        assert_eq!(endpoint(None), DEFAULT_URL);
        assert_eq!(endpoint(Some("  ")), DEFAULT_URL);
        assert_eq!(
            endpoint(Some("http://127.0.0.1:9/tokeninfo")),
            "http://127.0.0.1:9/tokeninfo"
        );
    }
}
