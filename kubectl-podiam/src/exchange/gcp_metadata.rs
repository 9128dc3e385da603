//! Talking to the GKE metadata server from inside the pod, with whatever HTTP client the image
//! has (exec runs the command; this module builds it and reads its output). Busybox wget is
//! never given `-T`: busybox 1.35 segfaults on it, so the exec is bounded from our side.

use std::fmt;

use serde::Deserialize;

/// An HTTP client a container image may have, in the order they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpClient {
    Wget,
    Curl,
    Python3,
}

/// Reads a URL with one header and prints `STATUS\n` then the body, errors included.
const PYTHON_GET: &str = "import sys,urllib.request,urllib.error\n\
r=urllib.request.Request(sys.argv[1],headers={sys.argv[2]:sys.argv[3]})\n\
try:\n resp=urllib.request.urlopen(r,timeout=float(sys.argv[4]));code=resp.status;body=resp.read()\n\
except urllib.error.HTTPError as e:\n code=e.code;body=e.read()\n\
sys.stdout.write(str(code)+'\\n');sys.stdout.flush();sys.stdout.buffer.write(body)\n";

impl HttpClient {
    pub const ALL: [HttpClient; 3] = [HttpClient::Wget, HttpClient::Curl, HttpClient::Python3];

    pub fn name(self) -> &'static str {
        match self {
            HttpClient::Wget => "wget",
            HttpClient::Curl => "curl",
            HttpClient::Python3 => "python3",
        }
    }

    /// The argv that GETs `url` with `header: value`. `timeout_secs` only bounds python3
    /// (curl and wget are bounded by the exec timeout).
    pub fn command(self, url: &str, header: (&str, &str), timeout_secs: u64) -> Vec<String> {
        let line = format!("{}: {}", header.0, header.1);
        let argv: Vec<&str> = match self {
            HttpClient::Wget => vec!["wget", "-q", "-O", "-", "--header", &line, url],
            HttpClient::Curl => vec!["curl", "-sS", "-H", &line, "-w", "\\n%{http_code}", url],
            HttpClient::Python3 => {
                return vec![
                    "python3".into(),
                    "-c".into(),
                    PYTHON_GET.into(),
                    url.into(),
                    header.0.into(),
                    header.1.into(),
                    timeout_secs.max(1).to_string(),
                ];
            }
        };
        argv.into_iter().map(str::to_string).collect()
    }

    /// Reads the client's output. `Err` means no HTTP answer (connection, DNS, timeout).
    pub fn read(self, stdout: Vec<u8>, stderr: &str, success: bool) -> Result<Answer, String> {
        match self {
            HttpClient::Wget if success => Ok(Answer {
                status: Some(200),
                body: stdout,
            }),
            HttpClient::Wget => {
                // busybox: "wget: server returned error: HTTP/1.1 403 Forbidden".
                if let Some(rest) = stderr.split("server returned error:").nth(1) {
                    let status = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok());
                    return Ok(Answer {
                        status,
                        body: stdout,
                    });
                }
                // GNU wget -q: silent, exit 8 on an HTTP error, 4 on a network failure.
                if stderr.trim().is_empty() {
                    return Ok(Answer {
                        status: None,
                        body: stdout,
                    });
                }
                Err(stderr.trim().to_string())
            }
            HttpClient::Curl => {
                let (body, code) = match stdout.iter().rposition(|b| *b == b'\n') {
                    Some(i) => (stdout[..i].to_vec(), &stdout[i + 1..]),
                    None => (Vec::new(), &stdout[..]),
                };
                match std::str::from_utf8(code)
                    .ok()
                    .and_then(|c| c.trim().parse::<u16>().ok())
                {
                    Some(0) | None => Err(non_empty(stderr, "curl got no HTTP answer")),
                    Some(code) => Ok(Answer {
                        status: Some(code),
                        body,
                    }),
                }
            }
            HttpClient::Python3 => {
                let newline = stdout.iter().position(|b| *b == b'\n');
                let status = newline
                    .and_then(|i| std::str::from_utf8(&stdout[..i]).ok())
                    .and_then(|s| s.trim().parse::<u16>().ok());
                match (status, newline) {
                    (Some(code), Some(i)) => Ok(Answer {
                        status: Some(code),
                        body: stdout[i + 1..].to_vec(),
                    }),
                    _ => Err(last_line(stderr)),
                }
            }
        }
    }
}

fn non_empty(text: &str, fallback: &str) -> String {
    let t = text.trim();
    if t.is_empty() {
        fallback.into()
    } else {
        t.into()
    }
}

/// A Python traceback's last line says what went wrong (e.g. `URLError … refused`).
fn last_line(stderr: &str) -> String {
    non_empty(
        stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or(""),
        "python3 got no HTTP answer",
    )
}

/// An HTTP answer from the metadata server. The body may hold a token: it is never printed.
pub struct Answer {
    /// None when the client reports an HTTP error without its code (GNU wget -q).
    pub status: Option<u16>,
    pub body: Vec<u8>,
}

impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// What an error answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataError {
    /// 403 `Permission 'iam.serviceAccounts.getAccessToken' denied…`: the GSA does not let
    /// the KSA act as it (no `roles/iam.workloadIdentityUser` binding, or no such GSA).
    MissingBinding(String),
    /// 403 `Missing required header "Metadata-Flavor"`.
    MissingHeader(String),
    /// 404: no such path or account on this server.
    NotFound(String),
    /// 5xx or 429: worth retrying (the server may still be starting).
    Unavailable(u16, String),
    /// Any other status, or an HTTP error whose status the client did not tell.
    Other(Option<u16>, String),
}

impl MetadataError {
    pub fn retryable(&self) -> bool {
        matches!(self, MetadataError::Unavailable(..))
    }
}

/// Short, printable text of an error body (never the body of a success).
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut short: String = text.chars().take(300).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

pub fn classify(answer: &Answer) -> Result<(), MetadataError> {
    let body = excerpt(&answer.body);
    match answer.status {
        Some(200..=299) => Ok(()),
        Some(403) if body.contains(crate::cloud::gcp::DENIED_GET_ACCESS_TOKEN) => {
            Err(MetadataError::MissingBinding(body))
        }
        Some(403) if body.contains(crate::cloud::gcp::MISSING_HEADER) => {
            Err(MetadataError::MissingHeader(body))
        }
        Some(404) => Err(MetadataError::NotFound(body)),
        Some(code @ (429 | 500..=599)) => Err(MetadataError::Unavailable(code, body)),
        other => Err(MetadataError::Other(other, body)),
    }
}

/// An OAuth access token, kept in memory only; `Debug` never shows it.
#[derive(Clone)]
pub struct AccessToken {
    pub token: String,
    pub expires_in: Option<i64>,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: Option<String>,
    expires_in: Option<i64>,
    token_type: Option<String>,
}

/// `{"access_token","expires_in","token_type":"Bearer"}` from `…/token`.
pub fn parse_token(body: &[u8]) -> Result<AccessToken, String> {
    let parsed: TokenBody = serde_json::from_slice(body)
        .map_err(|e| format!("the token answer is not the expected JSON ({e})"))?;
    if let Some(kind) = parsed.token_type.as_deref()
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(format!("token_type is {kind:?}, not Bearer"));
    }
    match parsed.access_token {
        Some(token) if !token.trim().is_empty() => Ok(AccessToken {
            token,
            expires_in: parsed.expires_in,
        }),
        _ => Err("the token answer has no access_token".into()),
    }
}

/// The text of a small plain answer (`email`, `project-id`).
pub fn parse_text(body: &[u8]) -> Result<String, String> {
    let text = String::from_utf8_lossy(body).trim().to_string();
    if text.is_empty() || text.len() > 512 || text.contains(['\n', '<']) {
        return Err(format!("unexpected answer {:?}", excerpt(body)));
    }
    Ok(text)
}

/// `http://HOST` for the pod: `GCE_METADATA_HOST` (host[:port]) when set, else the link-local IP.
pub fn base_url(metadata_host: Option<&str>) -> String {
    let host = metadata_host
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .unwrap_or(crate::cloud::gcp::METADATA_HOST);
    let host = host.trim_start_matches("http://").trim_end_matches('/');
    format!("http://{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: Some(status),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn token_answers() {
        let t = parse_token(
            br#"{"access_token":"ya29.secret","expires_in":3599,"token_type":"Bearer"}"#,
        )
        .unwrap();
        assert_eq!(t.expires_in, Some(3599));
        assert!(!format!("{t:?}").contains("ya29"));
        assert!(parse_token(b"{}").is_err());
        assert!(parse_token(b"<html>").is_err());
        assert!(parse_token(br#"{"access_token":"x","token_type":"MAC"}"#).is_err());
    }

    #[test]
    fn error_answers_map_to_causes() {
        let denied = answer(
            403,
            "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).",
        );
        assert!(matches!(
            classify(&denied),
            Err(MetadataError::MissingBinding(_))
        ));
        let header = answer(
            403,
            "Missing required header \"Metadata-Flavor\": \"Google\"",
        );
        assert!(matches!(
            classify(&header),
            Err(MetadataError::MissingHeader(_))
        ));
        assert!(matches!(
            classify(&answer(404, "not found")),
            Err(MetadataError::NotFound(_))
        ));
        let busy = classify(&answer(503, "")).unwrap_err();
        assert!(busy.retryable());
        assert!(!classify(&answer(403, "other")).unwrap_err().retryable());
        assert!(classify(&answer(200, "x")).is_ok());
    }

    #[test]
    fn client_outputs() {
        let busybox = HttpClient::Wget
            .read(
                Vec::new(),
                "wget: server returned error: HTTP/1.1 403 Forbidden\n",
                false,
            )
            .unwrap();
        assert_eq!(busybox.status, Some(403));
        assert!(
            HttpClient::Wget
                .read(
                    Vec::new(),
                    "wget: can't connect to remote host (169.254.169.254): Connection refused",
                    false
                )
                .is_err()
        );
        let ok = HttpClient::Wget.read(b"a@b".to_vec(), "", true).unwrap();
        assert_eq!((ok.status, ok.body.as_slice()), (Some(200), &b"a@b"[..]));

        let curl = HttpClient::Curl
            .read(b"denied\n403".to_vec(), "", true)
            .unwrap();
        assert_eq!(
            (curl.status, curl.body.as_slice()),
            (Some(403), &b"denied"[..])
        );
        let refused = HttpClient::Curl
            .read(b"\n000".to_vec(), "curl: (7) Failed to connect", false)
            .unwrap_err();
        assert!(refused.contains("(7)"));

        let py = HttpClient::Python3
            .read(b"200\nme@p.iam.gserviceaccount.com".to_vec(), "", true)
            .unwrap();
        assert_eq!(py.status, Some(200));
        let traceback = "Traceback (most recent call last):\n  ...\nurllib.error.URLError: <urlopen error [Errno 111] Connection refused>\n";
        assert!(
            HttpClient::Python3
                .read(Vec::new(), traceback, false)
                .unwrap_err()
                .contains("refused")
        );
    }

    #[test]
    fn commands_never_pass_a_wget_timeout() {
        let argv =
            HttpClient::Wget.command("http://169.254.169.254/x", ("Metadata-Flavor", "Google"), 5);
        assert_eq!(
            argv,
            [
                "wget",
                "-q",
                "-O",
                "-",
                "--header",
                "Metadata-Flavor: Google",
                "http://169.254.169.254/x"
            ]
        );
        assert!(!argv.iter().any(|a| a == "-T"));
    }

    #[test]
    fn metadata_host_override() {
        assert_eq!(base_url(None), "http://169.254.169.254");
        assert_eq!(base_url(Some("10.213.0.1:8080")), "http://10.213.0.1:8080");
        assert_eq!(base_url(Some("  ")), "http://169.254.169.254");
    }

    #[test]
    fn plain_answers() {
        assert_eq!(
            parse_text(b"a@b.iam.gserviceaccount.com\n").unwrap(),
            "a@b.iam.gserviceaccount.com"
        );
        assert!(parse_text(b"").is_err());
        assert!(parse_text(b"<html>\n</html>").is_err());
    }
}
