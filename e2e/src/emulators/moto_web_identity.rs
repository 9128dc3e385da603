//! Getting role credentials from moto once the gate has validated a web identity token.
//!
//! moto (with IAM enforcement on) needs every request signed, but clients send
//! AssumeRoleWithWebIdentity unsigned. So the gate sends moto its own AssumeRoleWithWebIdentity,
//! signed by the admin. moto then registers an assumed-role session for the role: the returned
//! key resolves to `assumed-role/ROLE/SESSION` and S3 is authorized by the role's policies.
//! (A signed `sts:AssumeRole` would not work: moto checks the trust policy for it against the
//! admin.) The client's token is not passed on. Role chaining (`role_chaining.rs`) mints its
//! sessions the same way, once the gate has decided the caller may assume the role.

use std::time::SystemTime;

use anyhow::{Context, Result, anyhow, bail};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4::SigningParams;
use aws_smithy_runtime_api::client::identity::Identity;

use super::credentials::AdminCredentials;
use super::hop_budgets;
use super::issued_secrets::{SecretKind, record};

/// Credentials moto minted for the role session.
pub struct RoleSessionCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: String,
}

pub async fn assume_role_in_moto(
    http: &reqwest::Client,
    moto_url: &str,
    admin: &AdminCredentials,
    role_arn: &str,
    role_session_name: &str,
    duration_seconds: i32,
) -> Result<RoleSessionCredentials> {
    let body = form_encode(&[
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", role_arn),
        ("RoleSessionName", role_session_name),
        ("WebIdentityToken", "validated-by-podiam-gate"),
        ("DurationSeconds", &duration_seconds.to_string()),
    ]);
    admin_sts_call(http, moto_url, admin, "AssumeRoleWithWebIdentity", body).await
}

async fn admin_sts_call(
    http: &reqwest::Client,
    moto_url: &str,
    admin: &AdminCredentials,
    action: &str,
    body: String,
) -> Result<RoleSessionCredentials> {
    let url = format!("{moto_url}/");
    let host = moto_url.trim_start_matches("http://");
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";

    let identity: Identity = admin.sdk_credentials().into();
    let params = SigningParams::builder()
        .identity(&identity)
        .region(super::REGION)
        .name("sts")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .context("building SigV4 parameters")?
        .into();
    let signable = SignableRequest::new(
        "POST",
        url.as_str(),
        [("host", host), ("content-type", content_type)].into_iter(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .context("preparing the request to sign")?;
    let (instructions, _signature) = sign(signable, &params)
        .context("signing the request to moto")?
        .into_parts();

    let mut request = http
        .post(&url)
        .header("host", host)
        .header("content-type", content_type);
    for (name, value) in instructions.headers() {
        request = request.header(name, value);
    }
    let response = request
        .body(body)
        .send()
        .await
        .map_err(|err| anyhow!("STS {action}: {}", hop_budgets::moto_failure(&err)))?;
    let status = response.status();
    let text = response.text().await.map_err(|err| {
        anyhow!(
            "reading moto's {action} answer: {}",
            hop_budgets::moto_failure(&err)
        )
    })?;
    if !status.is_success() {
        let code = xml_text(&text, "Code").unwrap_or("unknown");
        bail!("moto refused {action}: HTTP {status} {code}");
    }
    let field = |tag: &str| {
        xml_text(&text, tag)
            .map(str::to_owned)
            .with_context(|| format!("moto's answer has no {tag}"))
    };
    let credentials = RoleSessionCredentials {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: field("SecretAccessKey")?,
        session_token: field("SessionToken")?,
        expiration: field("Expiration")?,
    };
    record(SecretKind::AwsAccessKeyId, &credentials.access_key_id);
    record(
        SecretKind::AwsSecretAccessKey,
        &credentials.secret_access_key,
    );
    record(SecretKind::AwsSessionToken, &credentials.session_token);
    Ok(credentials)
}

/// The text of the first `<tag>…</tag>` (moto's values need no unescaping).
pub fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(&xml[start..end])
}

/// `application/x-www-form-urlencoded` exactly as Python's `urlencode` does it, because moto
/// re-encodes the parsed form that way to check the signature.
fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(key, value)| format!("{}={}", quote_plus(key), quote_plus(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn quote_plus(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                encoded.push(byte as char);
            }
            b' ' => encoded.push('+'),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_python_urlencode() {
        assert_eq!(
            form_encode(&[("RoleArn", "arn:aws:iam::1:role/a b"), ("X", "a+b=c~")]),
            "RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fa+b&X=a%2Bb%3Dc~"
        );
    }
}
