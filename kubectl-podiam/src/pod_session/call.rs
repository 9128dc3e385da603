//! One HTTP call made from inside the pod, as the plugin describes it to the session script.

use std::time::Duration;

/// The field separator of a request line (ASCII unit separator): not IFS white space, so
/// empty fields survive `read`.
pub const SEPARATOR: char = '\u{1f}';

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
        }
    }
}

/// A secret the pod reads from one of its own files and sends only to the call's endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretFromFile {
    /// Appended to the form body as `&NAME=<file content>` (a JWT needs no escaping).
    FormField { path: String, name: String },
    /// Sent as the header `NAME: <file content>`.
    Header { path: String, name: String },
}

/// A request header; a secret one (a bearer token obtained by an earlier call) is never shown.
#[derive(Clone)]
pub struct Header {
    pub name: String,
    pub value: String,
    pub secret: bool,
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.secret {
            write!(f, "{}: <redacted>", self.name)
        } else {
            write!(f, "{}: {}", self.name, self.value)
        }
    }
}

/// What to call. The body is the non-secret part, already encoded by the caller.
#[derive(Clone)]
pub struct PodCall {
    pub method: Method,
    pub url: String,
    /// The client's own bound (curl `--max-time`, `timeout` around wget, python's timeout).
    pub timeout: Duration,
    pub content_type: Option<String>,
    pub body: String,
    /// True when `body` carries a secret the plugin holds (never shown).
    pub body_secret: bool,
    pub secret: Option<SecretFromFile>,
    /// A CA bundle in the pod to trust instead of the image's default (the SDK's own
    /// variable, e.g. `AWS_CA_BUNDLE`).
    pub ca_file: Option<String>,
    /// At most three.
    pub headers: Vec<Header>,
}

impl std::fmt::Debug for PodCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodCall")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .field("body_bytes", &self.body.len())
            .field("secret", &self.secret)
            .field("ca_file", &self.ca_file)
            .field("headers", &self.headers)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallLineError {
    #[error("a field of the call to {url} holds a newline or a field separator")]
    BadField { url: String },
    #[error("a call takes at most three headers")]
    TooManyHeaders,
}

impl PodCall {
    pub fn get(url: impl Into<String>, timeout: Duration) -> Self {
        PodCall {
            method: Method::Get,
            url: url.into(),
            timeout,
            content_type: None,
            body: String::new(),
            body_secret: false,
            secret: None,
            ca_file: None,
            headers: Vec::new(),
        }
    }

    /// A form POST (`application/x-www-form-urlencoded`).
    pub fn post_form(url: impl Into<String>, body: String, timeout: Duration) -> Self {
        PodCall {
            method: Method::Post,
            content_type: Some("application/x-www-form-urlencoded".into()),
            body,
            ..PodCall::get(url, timeout)
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push(Header {
            name: name.into(),
            value: value.into(),
            secret: false,
        });
        self
    }

    pub fn secret_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push(Header {
            name: name.into(),
            value: value.into(),
            secret: true,
        });
        self
    }

    pub fn with_ca_file(mut self, ca_file: Option<String>) -> Self {
        self.ca_file = ca_file;
        self
    }

    pub fn with_secret(mut self, secret: SecretFromFile) -> Self {
        self.secret = Some(secret);
        self
    }

    /// The host of the URL, for messages (`sts.amazonaws.com`).
    pub fn host(&self) -> &str {
        let rest = self
            .url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, r)| r);
        let authority = rest.split(['/', '?']).next().unwrap_or(rest);
        match authority.rsplit_once(':') {
            Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
            _ => authority,
        }
    }

    /// The request line the script reads (without the trailing newline).
    pub fn line(&self, id: u32) -> Result<String, CallLineError> {
        if self.headers.len() > 3 {
            return Err(CallLineError::TooManyHeaders);
        }
        let (secret_file, secret_target) = match &self.secret {
            None => (String::new(), String::new()),
            Some(SecretFromFile::FormField { path, name }) => {
                (path.clone(), format!("form:{name}"))
            }
            Some(SecretFromFile::Header { path, name }) => (path.clone(), format!("header:{name}")),
        };
        let mut fields = vec![
            id.to_string(),
            self.method.as_str().to_string(),
            self.url.clone(),
            self.timeout.as_secs().max(1).to_string(),
            self.content_type.clone().unwrap_or_default(),
            self.body.clone(),
            secret_file,
            secret_target,
            self.ca_file.clone().unwrap_or_default(),
        ];
        fields.extend(
            self.headers
                .iter()
                .map(|h| format!("{}: {}", h.name, h.value)),
        );
        if fields.iter().any(|f| f.contains(['\n', '\r', SEPARATOR])) {
            return Err(CallLineError::BadField {
                url: self.url.clone(),
            });
        }
        Ok(fields.join(&SEPARATOR.to_string()))
    }
}

/// `application/x-www-form-urlencoded` of `pairs`, as the SDKs encode their forms.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(value: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const FORM: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    utf8_percent_encode(value, FORM).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_keeps_empty_fields_and_refuses_newlines() {
        let call = PodCall::post_form(
            "https://sts.amazonaws.com/",
            form(&[
                ("Action", "AssumeRoleWithWebIdentity"),
                ("RoleArn", "arn:aws:iam::1:role/r"),
            ]),
            Duration::from_secs(5),
        )
        .with_secret(SecretFromFile::FormField {
            path: "/var/run/token".into(),
            name: "WebIdentityToken".into(),
        });
        let line = call.line(7).unwrap();
        let fields: Vec<&str> = line.split(SEPARATOR).collect();
        assert_eq!(fields[0], "7");
        assert_eq!(fields[1], "POST");
        assert_eq!(fields[3], "5");
        assert_eq!(
            fields[5],
            "Action=AssumeRoleWithWebIdentity&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr"
        );
        assert_eq!(fields[6], "/var/run/token");
        assert_eq!(fields[7], "form:WebIdentityToken");
        let bad = PodCall::get("http://x/\nINJECTED", Duration::from_secs(1));
        assert!(bad.line(1).is_err());
    }

    #[test]
    fn debug_never_shows_a_secret_header_or_the_body() {
        let call = PodCall::post_form("https://x/", "secret-body".into(), Duration::from_secs(1))
            .secret_header("Authorization", "Bearer ya29.secret");
        let shown = format!("{call:?}");
        assert!(
            !shown.contains("ya29") && !shown.contains("secret-body"),
            "{shown}"
        );
    }

    #[test]
    fn host_of_a_url() {
        let call = |u: &str| PodCall::get(u, Duration::from_secs(1));
        assert_eq!(
            call("https://sts.amazonaws.com/").host(),
            "sts.amazonaws.com"
        );
        assert_eq!(
            call("http://169.254.170.23/v1/credentials").host(),
            "169.254.170.23"
        );
        assert_eq!(call("https://10.0.0.1:8443/x?y").host(), "10.0.0.1");
    }
}
