//! AWS from inside the pod: AssumeRoleWithWebIdentity (IRSA) or the Pod Identity agent, at
//! the endpoint the pod's SDK chooses, then GetCallerIdentity signed with the credentials,
//! which never leave the probe's memory.

use std::time::Duration;

use serde::Deserialize;

use crate::endpoints::aws_sts;
use crate::endpoints::ca_bundle::Client as CaClient;
use crate::http::Request;
use crate::run::Probe;
use crate::sigv4::{self, Credentials, Signing};
use crate::url::Url;

const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// STS as most of the pod's possible SDKs would call it (the plugin's rule:
/// `mechanisms/aws_irsa/in_pod.rs`), with its signing region.
pub struct Sts {
    pub url: String,
    pub region: String,
    pub because: String,
}

pub fn sts(p: &Probe) -> Sts {
    let lookup = |name: &str| p.target.var(name);
    let mut view = aws_sts::pod_view(&lookup).endpoints;
    view.sort_by_key(|(_, families)| std::cmp::Reverse(families.len()));
    match view.into_iter().next() {
        Some((e, families)) => Sts {
            url: e.url,
            region: e.signing_region.unwrap_or_else(|| "us-east-1".into()),
            because: format!(
                "{} ({})",
                e.because,
                families
                    .iter()
                    .map(|f| f.label())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        None => Sts {
            url: "https://sts.amazonaws.com".into(),
            region: "us-east-1".into(),
            because: "no SDK resolves an endpoint from this environment".into(),
        },
    }
}

pub fn irsa(p: &mut Probe) {
    let Some(role) = p.var("AWS_ROLE_ARN") else {
        return p.error("AWS_ROLE_ARN is not set");
    };
    let Some(token) = p.token("AWS_WEB_IDENTITY_TOKEN_FILE") else {
        return;
    };
    let sts = sts(p);
    let session = p
        .var("AWS_ROLE_SESSION_NAME")
        .unwrap_or_else(|| format!("podiam-probe-{}", sigv4::now_amz_date()));
    let body = form(&[
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", &role),
        ("RoleSessionName", &session),
        (
            "WebIdentityToken",
            String::from_utf8_lossy(token.trim_ascii()).as_ref(),
        ),
    ]);
    drop(token);
    let request = Request::post(sts.url.clone(), FORM, body.into_bytes(), p.options.timeout);
    let Some(answer) = p.call(
        "sts:AssumeRoleWithWebIdentity",
        &sts.because,
        &request,
        CaClient::AwsGoV2,
    ) else {
        return;
    };
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    if answer.status != 200 {
        return p.cloud_error(tag(&text, "Code"), tag(&text, "Message"));
    }
    let (Some(id), Some(secret)) = (tag(&text, "AccessKeyId"), tag(&text, "SecretAccessKey"))
    else {
        return p.error("STS answered 200 without credentials");
    };
    let creds = Credentials {
        access_key_id: id,
        secret_access_key: secret,
        session_token: tag(&text, "SessionToken"),
    };
    let assumed = tag(&text, "Arn");
    drop(text);
    let principal = caller_identity(p, &creds, &sts).or(assumed);
    if let Some(principal) = principal {
        p.identity("aws", principal, &sts.url);
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerCredentials {
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    token: Option<String>,
}

pub fn pod_identity(p: &mut Probe) {
    let Some(uri) = p.var("AWS_CONTAINER_CREDENTIALS_FULL_URI") else {
        return p.error("AWS_CONTAINER_CREDENTIALS_FULL_URI is not set");
    };
    let authorization = match p.var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        Some(_) => match p.token("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            Some(t) => Some(String::from_utf8_lossy(t.trim_ascii()).into_owned()),
            None => return,
        },
        None => p.var("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
    };
    let mut request = Request::get(uri.clone(), p.options.timeout);
    if let Some(a) = &authorization {
        request = request.header("Authorization", a);
    }
    let because = "AWS_CONTAINER_CREDENTIALS_FULL_URI".to_string();
    let Some(answer) = p.call(
        "pod-identity:credentials",
        &because,
        &request,
        CaClient::AwsGoV2,
    ) else {
        return;
    };
    drop(request);
    if answer.status != 200 {
        let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        let field = |k: &str| body.get(k).and_then(|v| v.as_str()).map(str::to_string);
        return p.cloud_error(
            field("code").or(field("Code")),
            field("message").or(field("Message")),
        );
    }
    let Ok(c) = serde_json::from_slice::<ContainerCredentials>(&answer.body) else {
        return p.error("the Pod Identity agent answered 200 without credentials");
    };
    drop(answer);
    let creds = Credentials {
        access_key_id: c.access_key_id,
        secret_access_key: c.secret_access_key,
        session_token: c.token,
    };
    let sts = sts(p);
    if let Some(principal) = caller_identity(p, &creds, &sts) {
        p.identity("aws", principal, &uri);
    }
}

/// STS GetCallerIdentity signed with `creds`: the ARN, None when it failed (recorded).
pub fn caller_identity(p: &mut Probe, creds: &Credentials, sts: &Sts) -> Option<String> {
    let timeout = p.options.timeout;
    caller_identity_within(p, creds, sts, timeout)
}

pub fn caller_identity_within(
    p: &mut Probe,
    creds: &Credentials,
    sts: &Sts,
    timeout: Duration,
) -> Option<String> {
    let url = Url::parse(&sts.url).ok()?;
    let body = b"Action=GetCallerIdentity&Version=2011-06-15";
    let amz_date = sigv4::now_amz_date();
    let host = url.authority();
    let signed = sigv4::sign(
        &Signing {
            method: "POST",
            host: &host,
            path: url.path_only(),
            query: url.query(),
            headers: &[("content-type", FORM)],
            body,
            region: &sts.region,
            service: "sts",
            amz_date: &amz_date,
        },
        creds,
    );
    let mut request = Request::post(sts.url.clone(), FORM, body.to_vec(), timeout);
    request.headers.extend(signed);
    let answer = p.call(
        "sts:GetCallerIdentity",
        &sts.because,
        &request,
        CaClient::AwsGoV2,
    )?;
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    if answer.status != 200 {
        p.cloud_error(tag(&text, "Code"), tag(&text, "Message"));
        return None;
    }
    tag(&text, "Arn")
}

/// `application/x-www-form-urlencoded` of `pairs`.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The text of the first `<name>…</name>` (XML entities decoded).
pub fn tag(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(
        xml[start..end]
            .trim()
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_and_xml() {
        assert_eq!(
            form(&[("RoleArn", "arn:aws:iam::1:role/r"), ("x", "a b")]),
            "RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&x=a%20b"
        );
        let xml = "<ErrorResponse><Error><Code>AccessDenied</Code><Message>Not authorized &amp; no</Message></Error></ErrorResponse>";
        assert_eq!(tag(xml, "Code").as_deref(), Some("AccessDenied"));
        assert_eq!(tag(xml, "Message").as_deref(), Some("Not authorized & no"));
        assert_eq!(tag(xml, "Arn"), None);
    }
}
