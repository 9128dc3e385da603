//! STS's query-protocol answer to AssumeRoleWithWebIdentity, read from the bytes the pod's own
//! client received (the exchange ran inside the pod): the credentials and assumed-role ARN, or
//! AWS's `ErrorResponse` code and message.

use aws_credential_types::Credentials;
use serde::Deserialize;

use super::CloudError;

/// The role the token was exchanged for. Debug of `Credentials` redacts the secrets.
#[derive(Debug, Clone)]
pub struct WebIdentityAnswer {
    pub assumed_role_arn: String,
    pub credentials: Credentials,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Response {
    assume_role_with_web_identity_result: Result_,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Result_ {
    credentials: XmlCredentials,
    assumed_role_user: AssumedRoleUser,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XmlCredentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    #[serde(default)]
    expiration: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssumedRoleUser {
    arn: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ErrorResponse {
    error: XmlError,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct XmlError {
    code: String,
    #[serde(default)]
    message: String,
}

/// Reads STS's answer (`status` and body). An error status with AWS's `ErrorResponse` is a
/// rejection with its code; anything else unreadable says so without quoting the body (it may
/// hold credentials).
pub fn parse(status: u16, body: &[u8]) -> Result<WebIdentityAnswer, CloudError> {
    let text = String::from_utf8_lossy(body);
    if (200..300).contains(&status) {
        let response: Response =
            quick_xml::de::from_str(&text).map_err(|_| CloudError::Rejected {
                code: "UnreadableAnswer".into(),
                message: format!(
                    "HTTP {status} with a body that is not STS's AssumeRoleWithWebIdentityResponse ({} bytes)",
                    body.len()
                ),
            })?;
        let result = response.assume_role_with_web_identity_result;
        let expiration = chrono_free_expiry(&result.credentials.expiration);
        return Ok(WebIdentityAnswer {
            assumed_role_arn: result.assumed_role_user.arn,
            credentials: Credentials::new(
                result.credentials.access_key_id,
                result.credentials.secret_access_key,
                Some(result.credentials.session_token),
                expiration,
                "podiam-web-identity-in-pod",
            ),
        });
    }
    match quick_xml::de::from_str::<ErrorResponse>(&text) {
        Ok(e) => Err(CloudError::Rejected {
            code: e.error.code,
            message: e.error.message,
        }),
        Err(_) => Err(CloudError::Rejected {
            code: format!("HTTP{status}"),
            message: format!(
                "HTTP {status} without STS's ErrorResponse ({} bytes)",
                body.len()
            ),
        }),
    }
}

/// `2026-12-03T07:00:00Z` → a SystemTime; None when absent or unreadable (the SDK then
/// treats the credentials as not expiring, which is harmless for one verification).
fn chrono_free_expiry(text: &str) -> Option<std::time::SystemTime> {
    use aws_sdk_sts::primitives::{DateTime, DateTimeFormat};
    DateTime::from_str(text, DateTimeFormat::DateTime)
        .ok()
        .and_then(|d| std::time::SystemTime::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:default:s3-reader</SubjectFromWebIdentityToken>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/my-pod-role/podiam-s3-pod</Arn>
      <AssumedRoleId>AROA:podiam-s3-pod</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
      <SecretAccessKey>not-shown</SecretAccessKey>
      <SessionToken>also-not-shown</SessionToken>
      <Expiration>2026-12-03T08:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"#;

    #[test]
    fn credentials_and_the_assumed_role() {
        let answer = parse(200, OK.as_bytes()).unwrap();
        assert_eq!(
            answer.assumed_role_arn,
            "arn:aws:sts::123456789012:assumed-role/my-pod-role/podiam-s3-pod"
        );
        assert_eq!(answer.credentials.access_key_id(), "ASIAEXAMPLE");
        assert!(answer.credentials.expiry().is_some());
        assert!(!format!("{answer:?}").contains("not-shown"));
    }

    #[test]
    fn aws_errors_keep_their_code() {
        let body = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error><RequestId>x</RequestId></ErrorResponse>"#;
        assert_eq!(
            parse(403, body.as_bytes()).unwrap_err(),
            CloudError::Rejected {
                code: "AccessDenied".into(),
                message: "Not authorized to perform sts:AssumeRoleWithWebIdentity".into()
            }
        );
        let garbage = parse(200, b"<html>SecretAccessKey=abc</html>").unwrap_err();
        assert!(!garbage.to_string().contains("abc"), "{garbage}");
        assert!(
            matches!(parse(502, b"bad gateway"), Err(CloudError::Rejected { code, .. }) if code == "HTTP502")
        );
    }
}
