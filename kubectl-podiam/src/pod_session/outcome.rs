//! What a call from inside the pod came to: an HTTP answer (any status), or a failure with a
//! named cause read from the client's own exit code and words (curl, busybox or GNU wget,
//! python3, nc).

use std::time::Duration;

/// An HTTP answer. Its body may hold credentials: never Debug-printed.
pub struct CallAnswer {
    /// `curl`, `wget`, `python3` or `nc`: which client judged the call (busybox wget does not
    /// verify TLS certificates).
    pub client: String,
    pub status: u16,
    pub body: Vec<u8>,
    /// busybox wget prints no body for an error status: the cloud's error is then unknown.
    pub body_available: bool,
}

impl std::fmt::Debug for CallAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallAnswer")
            .field("client", &self.client)
            .field("status", &self.status)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// Why no HTTP answer came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallFailure {
    #[error("the image has none of curl, wget, python3")]
    NoClient,
    #[error("the container cannot read {0}")]
    SecretUnreadable(String),
    #[error("DNS: {detail}")]
    Dns { detail: String },
    #[error("connection refused: {detail}")]
    Refused { detail: String },
    #[error("no route: {detail}")]
    NoRoute { detail: String },
    #[error("timeout: no answer within {}s", .after.as_secs())]
    Timeout { after: Duration },
    #[error("TLS: the server's certificate is not trusted by the pod ({detail})")]
    TlsUntrusted { detail: String },
    #[error("TLS: the server's certificate does not name the host ({detail})")]
    TlsName { detail: String },
    #[error("TLS: {detail}")]
    Tls { detail: String },
    #[error("proxy: {detail}")]
    Proxy { detail: String },
    #[error("{client} failed (exit {rc}): {detail}")]
    Other {
        client: String,
        rc: i32,
        detail: String,
    },
    #[error("the session in the pod ended: {0}")]
    SessionBroken(String),
    /// The pod reaches the endpoint over TCP, but its only client (busybox wget) cannot make
    /// or verify the TLS half: the exchange itself must be made elsewhere.
    #[error(
        "the pod reaches the endpoint over TCP, but its only client, busybox wget, does not verify TLS"
    )]
    TlsNotJudged,
}

impl CallFailure {
    /// A short name of the cause for reports and tests: dns, refused, no-route, timeout,
    /// tls-untrusted, tls-name, tls, proxy, no-client, unreadable, other, session.
    pub fn kind(&self) -> &'static str {
        match self {
            CallFailure::NoClient => "no-client",
            CallFailure::SecretUnreadable(_) => "unreadable",
            CallFailure::Dns { .. } => "dns",
            CallFailure::Refused { .. } => "refused",
            CallFailure::NoRoute { .. } => "no-route",
            CallFailure::Timeout { .. } => "timeout",
            CallFailure::TlsUntrusted { .. } => "tls-untrusted",
            CallFailure::TlsName { .. } => "tls-name",
            CallFailure::Tls { .. } => "tls",
            CallFailure::Proxy { .. } => "proxy",
            CallFailure::Other { .. } => "other",
            CallFailure::SessionBroken(_) => "session",
            CallFailure::TlsNotJudged => "tls-not-judged",
        }
    }
}

pub type CallOutcome = Result<CallAnswer, CallFailure>;

/// The framed output of one call: stdout between `begin` and `end`, the client and its exit
/// code from the `end` line, and the call's stderr.
pub struct RawCall<'a> {
    pub client: &'a str,
    pub rc: i32,
    pub stdout: &'a [u8],
    pub stderr: &'a str,
    pub boundary: &'a str,
    pub timeout: Duration,
}

/// Longest client message kept: enough for a cause, never a body.
const DETAIL_CHARS: usize = 300;

pub fn classify(raw: &RawCall<'_>) -> CallOutcome {
    let stderr = raw.stderr.trim();
    let detail = || last_line(stderr);
    match raw.client {
        "none" => Err(CallFailure::NoClient),
        "cat" => Err(CallFailure::SecretUnreadable(detail())),
        "curl" | "python3" => {
            if let Some((body, status)) = split_status(raw.stdout, raw.boundary)
                && raw.rc == 0
            {
                return Ok(CallAnswer {
                    client: raw.client.into(),
                    status,
                    body,
                    body_available: true,
                });
            }
            if raw.client == "curl" {
                Err(curl_failure(raw.rc, stderr, raw.timeout))
            } else {
                Err(python_failure(stderr, raw.timeout, raw.rc))
            }
        }
        "wget" => wget_outcome(raw),
        "nc" => nc_outcome(raw),
        // busybox wget on https: DNS, refused, no route and timeouts are the pod's path; a
        // failure past the connection is busybox's own TLS, not what the pod's SDK would see.
        "busybox-wget-tls" => match wget_outcome(raw) {
            Err(CallFailure::Tls { .. } | CallFailure::Other { .. }) => {
                Err(CallFailure::TlsNotJudged)
            }
            other => other,
        },
        other => Err(CallFailure::Other {
            client: other.into(),
            rc: raw.rc,
            detail: detail(),
        }),
    }
}

/// curl `-w '\n<b> httpstatus %{http_code}\n'`: the body before the marker, the status after.
fn split_status(stdout: &[u8], boundary: &str) -> Option<(Vec<u8>, u16)> {
    let marker = format!("\n{boundary} httpstatus ");
    let at = find_last(stdout, marker.as_bytes())?;
    let rest = String::from_utf8_lossy(&stdout[at + marker.len()..]);
    let status = rest.trim().parse().ok()?;
    Some((stdout[..at].to_vec(), status))
}

fn curl_failure(rc: i32, stderr: &str, timeout: Duration) -> CallFailure {
    let detail = last_line(stderr);
    let lower = detail.to_ascii_lowercase();
    match rc {
        6 => CallFailure::Dns { detail },
        5 => CallFailure::Proxy {
            detail: format!("the proxy's name does not resolve: {detail}"),
        },
        7 if lower.contains("no route") || lower.contains("network is unreachable") => {
            CallFailure::NoRoute { detail }
        }
        7 => CallFailure::Refused { detail },
        28 => CallFailure::Timeout { after: timeout },
        51 => CallFailure::TlsName { detail },
        60 if lower.contains("subject name") || lower.contains("does not match") => {
            CallFailure::TlsName { detail }
        }
        60 | 77 => CallFailure::TlsUntrusted { detail },
        35 | 58 | 59 | 66 | 80 | 83 | 90 | 91 => CallFailure::Tls { detail },
        56 | 97 if lower.contains("proxy") || lower.contains("connect tunnel") => {
            CallFailure::Proxy { detail }
        }
        _ => CallFailure::Other {
            client: "curl".into(),
            rc,
            detail,
        },
    }
}

fn python_failure(stderr: &str, timeout: Duration, rc: i32) -> CallFailure {
    let Some(line) = stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("podiam-cause: "))
    else {
        return CallFailure::Other {
            client: "python3".into(),
            rc,
            detail: last_line(stderr),
        };
    };
    let (kind, message) = line.split_once(": ").unwrap_or((line, ""));
    let detail = truncate(message);
    match kind {
        "dns" => CallFailure::Dns { detail },
        "refused" => CallFailure::Refused { detail },
        "timeout" => CallFailure::Timeout { after: timeout },
        "tls-untrusted" => CallFailure::TlsUntrusted { detail },
        "tls-name" => CallFailure::TlsName { detail },
        "tls" => CallFailure::Tls { detail },
        "proxy" => CallFailure::Proxy { detail },
        _ => CallFailure::Other {
            client: "python3".into(),
            rc,
            detail,
        },
    }
}

/// busybox wget (`-S`: the status lines on stderr; no body on an error status) or GNU wget.
fn wget_outcome(raw: &RawCall<'_>) -> CallOutcome {
    let stderr = raw.stderr;
    let status = stderr
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            l.strip_prefix("HTTP/")
                .and_then(|r| r.split_whitespace().nth(1))
                .and_then(|s| s.parse::<u16>().ok())
        })
        .next_back();
    if raw.rc == 0 {
        return Ok(CallAnswer {
            client: "wget".into(),
            status: status.unwrap_or(200),
            body: raw.stdout.to_vec(),
            body_available: true,
        });
    }
    // `timeout` killed it (SIGTERM: 143), or GNU timeout's 124.
    if raw.rc == 143 || raw.rc == 124 {
        return Err(CallFailure::Timeout { after: raw.timeout });
    }
    if let Some(status) = status.filter(|s| *s >= 400) {
        return Ok(CallAnswer {
            client: "wget".into(),
            status,
            body: raw.stdout.to_vec(),
            body_available: !raw.stdout.is_empty(),
        });
    }
    let detail = last_line(stderr);
    let lower = detail.to_ascii_lowercase();
    Err(
        if lower.contains("bad address") || lower.contains("unable to resolve") {
            CallFailure::Dns { detail }
        } else if lower.contains("refused") {
            CallFailure::Refused { detail }
        } else if lower.contains("no route") || lower.contains("unreachable") {
            CallFailure::NoRoute { detail }
        } else if lower.contains("timed out") {
            CallFailure::Timeout { after: raw.timeout }
        } else if lower.contains("ssl") || lower.contains("tls") || lower.contains("certificate") {
            CallFailure::Tls { detail }
        } else {
            CallFailure::Other {
                client: "wget".into(),
                rc: raw.rc,
                detail,
            }
        },
    )
}

/// A raw HTTP/1.0 exchange through `nc`: the status line, headers, blank line, body.
fn nc_outcome(raw: &RawCall<'_>) -> CallOutcome {
    let text = raw.stdout;
    if let Some(head_end) = find_last_first(text, b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&text[..head_end]);
        if let Some(status) = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
        {
            return Ok(CallAnswer {
                client: "nc".into(),
                status,
                body: text[head_end + 4..].to_vec(),
                body_available: true,
            });
        }
    }
    if raw.rc == 143 || raw.rc == 124 || (text.is_empty() && raw.rc == 0) {
        return Err(CallFailure::Timeout { after: raw.timeout });
    }
    let detail = last_line(raw.stderr);
    let lower = detail.to_ascii_lowercase();
    Err(if lower.contains("bad address") {
        CallFailure::Dns { detail }
    } else if lower.contains("refused") {
        CallFailure::Refused { detail }
    } else if lower.contains("no route") || lower.contains("unreachable") {
        CallFailure::NoRoute { detail }
    } else {
        CallFailure::Other {
            client: "nc".into(),
            rc: raw.rc,
            detail,
        }
    })
}

fn last_line(text: &str) -> String {
    truncate(
        text.lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or(""),
    )
}

fn truncate(text: &str) -> String {
    text.chars().take(DETAIL_CHARS).collect()
}

fn find_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

fn find_last_first(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(client: &'a str, rc: i32, stdout: &'a [u8], stderr: &'a str) -> RawCall<'a> {
        RawCall {
            client,
            rc,
            stdout,
            stderr,
            boundary: "podiam-b",
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn curl_answers_and_causes() {
        let ok = classify(&raw("curl", 0, b"<xml/>\npodiam-b httpstatus 403\n", "")).unwrap();
        assert_eq!((ok.status, ok.body.as_slice()), (403, &b"<xml/>"[..]));
        let kind = |rc, msg| classify(&raw("curl", rc, b"", msg)).unwrap_err().kind();
        assert_eq!(
            kind(6, "curl: (6) Could not resolve host: sts.amazonaws.com"),
            "dns"
        );
        assert_eq!(
            kind(
                7,
                "curl: (7) Failed to connect to 10.0.0.1 port 443: Connection refused"
            ),
            "refused"
        );
        assert_eq!(
            kind(7, "curl: (7) Failed to connect: No route to host"),
            "no-route"
        );
        assert_eq!(kind(28, "curl: (28) Operation timed out"), "timeout");
        assert_eq!(
            kind(
                60,
                "curl: (60) SSL certificate problem: unable to get local issuer certificate"
            ),
            "tls-untrusted"
        );
        assert_eq!(
            kind(
                60,
                "curl: (60) SSL: no alternative certificate subject name matches target host name 'x'"
            ),
            "tls-name"
        );
        assert_eq!(kind(35, "curl: (35) OpenSSL: wrong version number"), "tls");
        assert_eq!(
            kind(56, "curl: (56) CONNECT tunnel failed, response 403"),
            "proxy"
        );
        assert_eq!(
            kind(5, "curl: (5) Could not resolve proxy: proxy.corp"),
            "proxy"
        );
    }

    #[test]
    fn busybox_wget_answers_and_causes() {
        let ok = classify(&raw("wget", 0, b"{}", "  HTTP/1.1 200 OK\n")).unwrap();
        assert_eq!(ok.status, 200);
        let denied = classify(&raw(
            "wget",
            1,
            b"",
            "  HTTP/1.1 403 Forbidden\nwget: server returned error: HTTP/1.1 403 Forbidden",
        ))
        .unwrap();
        assert_eq!((denied.status, denied.body_available), (403, false));
        let kind = |rc, msg| classify(&raw("wget", rc, b"", msg)).unwrap_err().kind();
        assert_eq!(kind(1, "wget: bad address 'sts.amazonaws.com'"), "dns");
        assert_eq!(
            kind(
                1,
                "wget: can't connect to remote host (127.0.0.1): Connection refused"
            ),
            "refused"
        );
        assert_eq!(kind(143, "Terminated"), "timeout");
    }

    #[test]
    fn python_and_nc() {
        let kind = |msg| classify(&raw("python3", 1, b"", msg)).unwrap_err().kind();
        assert_eq!(
            kind("podiam-cause: dns: [Errno -2] Name or service not known"),
            "dns"
        );
        assert_eq!(
            kind("podiam-cause: tls-untrusted: certificate verify failed"),
            "tls-untrusted"
        );
        let put = classify(&raw(
            "nc",
            0,
            b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc",
            "",
        ))
        .unwrap();
        assert_eq!((put.status, put.body.as_slice()), (200, &b"abc"[..]));
        assert_eq!(
            classify(&raw("nc", 143, b"", "")).unwrap_err().kind(),
            "timeout"
        );
        assert_eq!(
            classify(&raw("none", 127, b"", "")).unwrap_err().kind(),
            "no-client"
        );
    }

    #[test]
    fn debug_of_an_answer_hides_its_body() {
        let answer = CallAnswer {
            client: "curl".into(),
            status: 200,
            body: b"SecretAccessKey".to_vec(),
            body_available: true,
        };
        assert!(!format!("{answer:?}").contains("Secret"));
    }
}
